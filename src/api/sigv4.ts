import { createHash, timingSafeEqual } from 'node:crypto';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { ebbError } from '../shared/errors.ts';
import { NodeSha256 } from '../shared/node-sha256.ts';

/**
 * AWS Signature Version 4 verification for the admin endpoint (docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html).
 *
 * The clients sign different header sets (the aws CLI and boto3 sign `content-type;host;x-amz-date`,
 * the JS SDK eight headers), so the canonical request is rebuilt from the request's own SignedHeaders
 * list. The payload hash in the canonical request is always ebb's own SHA-256 of the body that
 * arrived: a client's `x-amz-content-sha256` must equal it, and `UNSIGNED-PAYLOAD` or a streaming
 * payload is refused, so a signature never leaves the body (and so the Action) open to change.
 * The expected signature is computed by `@smithy/signature-v4` (the AWS SDK's own signer) over
 * exactly the headers the client signed, and compared in constant time.
 */

export interface Credential {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/** Request headers by lower-case name: a string, or every value the request carried (`IncomingMessage.headersDistinct`). */
export type RequestHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

/** What the verifier needs to know about one request. Header names are lower case. */
export interface SignedRequest {
  readonly method: string;
  /** The path without the query string. */
  readonly path: string;
  /** The raw query string (after `?`), or ''. */
  readonly rawQuery: string;
  /**
   * Pass `req.headersDistinct` so a header sent twice is seen: node's `req.headers` keeps only the first
   * `host` or `content-type`, and a signature must not be checked against one copy while another is used.
   */
  readonly headers: RequestHeaders;
  readonly body: Buffer;
  /**
   * The signing name the request's Version belongs to (`elasticloadbalancing` or `autoscaling`); the
   * credential scope must name it. Undefined when the Version is unknown (the call then fails anyway).
   */
  readonly expectedService?: string | undefined;
}

export interface VerifiedCaller {
  readonly accessKeyId: string;
  readonly region: string;
  readonly service: string;
}

/** The parts of an Authorization header, checked for form only (no secret involved). */
export interface ParsedAuthorization {
  readonly accessKeyId: string;
  /** yyyymmdd from the credential scope. */
  readonly scopeDate: string;
  readonly region: string;
  readonly service: string;
  /** Sorted, unique, lower case; always includes `host` and `x-amz-date`. */
  readonly signedHeaders: readonly string[];
  readonly signature: string;
  /** The X-Amz-Date header, yyyymmddTHHMMSSZ. */
  readonly amzDate: string;
  readonly signingTime: number;
}

/** Clients must sign within this much of ebb's clock, either way (AWS allows 15 minutes). */
export const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;

const AUTH_PATTERN =
  /^AWS4-HMAC-SHA256 Credential=([^/\s,]+)\/(\d{8})\/([^/\s,]+)\/([^/\s,]+)\/aws4_request, ?SignedHeaders=([a-z0-9;_.-]+), ?Signature=([0-9a-f]{64})$/;
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * Checks that a request carries a well-formed SigV4 Authorization header and X-Amz-Date, without
 * reading the body or knowing any secret. The admin endpoint calls it before it reads a body.
 * Throws MissingAuthenticationToken (403) or IncompleteSignature (400).
 */
export function parseAuthorization(headers: RequestHeaders, rawQuery: string): ParsedAuthorization {
  const authorizations = values(headers, 'authorization');
  if (authorizations.length === 0) {
    if (/(^|&)X-Amz-Signature=/.test(rawQuery)) {
      throw ebbError('IncompleteSignature', 'Presigned URLs are not accepted by ebb: sign the request with an Authorization header');
    }
    throw ebbError(
      'MissingAuthenticationToken',
      'Request is missing Authentication Token: sign it with AWS Signature Version 4 using an access key configured in admin.credentials or EBB_ACCESS_KEY_ID, or, when none is, the one ebb keeps in its state directory (credentials, profile ebb)',
    );
  }
  if (authorizations.length > 1) {
    throw ebbError('IncompleteSignature', 'The request carries more than one Authorization header: send exactly one');
  }
  const m = AUTH_PATTERN.exec((authorizations[0] ?? '').trim());
  if (m === null) {
    throw ebbError(
      'IncompleteSignature',
      "Authorization header is not a valid AWS4-HMAC-SHA256 header: expected 'AWS4-HMAC-SHA256 Credential=KEY/yyyymmdd/region/service/aws4_request, SignedHeaders=..., Signature=<64 hex>'",
    );
  }
  const [, accessKeyId = '', scopeDate = '', region = '', service = '', signedHeaderList = '', signature = ''] = m;
  const signedHeaders = signedHeaderList.split(';');
  for (let i = 0; i < signedHeaders.length; i++) {
    const name = signedHeaders[i] ?? '';
    const prev = signedHeaders[i - 1];
    if (name === '' || (prev !== undefined && prev >= name)) {
      throw ebbError(
        'IncompleteSignature',
        `SignedHeaders '${signedHeaderList}' must list each header name once, in lower case, sorted (as every SigV4 signer does)`,
      );
    }
  }
  if (!signedHeaders.includes('host')) {
    throw ebbError('IncompleteSignature', "The request signature must cover the 'host' header: add host to SignedHeaders");
  }
  if (!signedHeaders.includes('x-amz-date')) {
    throw ebbError('IncompleteSignature', "The request signature must cover the 'x-amz-date' header: add x-amz-date to SignedHeaders");
  }
  const dates = values(headers, 'x-amz-date');
  if (dates.length > 1) {
    throw ebbError('IncompleteSignature', 'The request carries more than one X-Amz-Date header: send exactly one');
  }
  const amzDate = dates[0];
  const dm = amzDate === undefined ? null : AMZ_DATE.exec(amzDate);
  if (amzDate === undefined || dm === null) {
    throw ebbError('IncompleteSignature', 'The X-Amz-Date header is missing or not in the form yyyymmddTHHMMSSZ');
  }
  const [y, mo, d, h, mi, s] = dm.slice(1).map(Number) as [number, number, number, number, number, number];
  const signing = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  if (
    signing.getUTCFullYear() !== y ||
    signing.getUTCMonth() !== mo - 1 ||
    signing.getUTCDate() !== d ||
    signing.getUTCHours() !== h ||
    signing.getUTCMinutes() !== mi ||
    signing.getUTCSeconds() !== s
  ) {
    throw ebbError('IncompleteSignature', `The X-Amz-Date header '${amzDate}' is not a valid date`);
  }
  return { accessKeyId, scopeDate, region, service, signedHeaders, signature, amzDate, signingTime: signing.getTime() };
}

/** InvalidClientTokenId (403), the AWS answer for an access key the service does not know. */
export function unknownAccessKey(accessKeyId: string): Error {
  return ebbError('InvalidClientTokenId', `The security token included in the request is invalid: access key '${accessKeyId}' is not configured in ebb (admin.credentials, EBB_ACCESS_KEY_ID, or the state directory's credentials file when neither is set)`);
}

export class SigV4Verifier {
  readonly #secrets = new Map<string, string>();
  /** One signer per configured access key (so bounded by the configuration). */
  readonly #signers = new Map<string, SignatureV4>();
  readonly #wallTime: () => number;
  readonly #region: string;

  /**
   * `wallTime` gives milliseconds since the epoch (the injected clock's `wallTime`); `region` is ebb's
   * own (`admin.region`, the region in its ARNs), the only one a credential scope may name.
   */
  constructor(credentials: readonly Credential[], wallTime: () => number, region: string) {
    for (const c of credentials) this.#secrets.set(c.accessKeyId, c.secretAccessKey);
    this.#wallTime = wallTime;
    this.#region = region;
  }

  /** Whether `accessKeyId` is one of the configured keys (no secret is compared). */
  knows(accessKeyId: string): boolean {
    return this.#secrets.has(accessKeyId);
  }

  /** Resolves with who signed, or rejects with the AWS error a client would get. */
  async verify(req: SignedRequest): Promise<VerifiedCaller> {
    const auth = parseAuthorization(req.headers, req.rawQuery);
    const { accessKeyId, scopeDate, region, service, signedHeaders, amzDate } = auth;
    if (amzDate.slice(0, 8) !== scopeDate) {
      throw ebbError(
        'SignatureDoesNotMatch',
        `Date in the credential scope (${scopeDate}) does not match the day of X-Amz-Date (${amzDate}): sign with one date`,
      );
    }
    if (req.expectedService !== undefined && service !== req.expectedService) {
      throw ebbError(
        'SignatureDoesNotMatch',
        `Credential should be scoped to correct service: '${req.expectedService}' (the request's Version belongs to it), not '${service}'`,
      );
    }
    // A signature is valid in the one region its scope names, and an AWS endpoint refuses any other
    // with SignatureDoesNotMatch, "Credential should be scoped to a valid region" (IAM user guide,
    // "Troubleshoot signed requests for AWS APIs", credential scope errors). Accepting it would give a
    // client set up for eu-west-1 answers with ebb's ARNs of another region.
    if (region !== this.#region) {
      throw ebbError(
        'SignatureDoesNotMatch',
        `Credential should be scoped to a valid region, not '${region}': this ebb's region is '${this.#region}' (admin.region in its config file). Sign for '${this.#region}' (for example aws --region ${this.#region}, or region: '${this.#region}' in an SDK client)`,
      );
    }
    const now = this.#wallTime();
    if (Math.abs(now - auth.signingTime) > MAX_CLOCK_SKEW_MS) {
      throw ebbError(
        'RequestExpired',
        `Request has expired: it was signed at ${new Date(auth.signingTime).toISOString()} and ebb's clock says ${new Date(now).toISOString()}; signatures are valid for 15 minutes either way. Check the client's clock.`,
      );
    }
    const secret = this.#secrets.get(accessKeyId);
    if (secret === undefined) throw unknownAccessKey(accessKeyId);

    // The payload hash must be ebb's own hash of the body that arrived. The signer takes a client's
    // x-amz-content-sha256 as the payload hash when present, so that header is held to the body here.
    const bodyHash = sha256Hex(req.body);
    const declared = values(req.headers, 'x-amz-content-sha256');
    if (declared.length > 1) {
      throw ebbError('SignatureDoesNotMatch', 'The request carries more than one x-amz-content-sha256 header: send exactly one');
    }
    const declaredHash = declared[0]?.trim();
    if (declaredHash !== undefined) {
      if (declaredHash === 'UNSIGNED-PAYLOAD' || declaredHash.startsWith('STREAMING-')) {
        throw ebbError(
          'SignatureDoesNotMatch',
          `ebb requires the signature to cover the body: x-amz-content-sha256 '${declaredHash}' is not accepted; send the hex SHA-256 of the body, or leave the header out`,
        );
      }
      if (!SHA256_HEX.test(declaredHash) || declaredHash !== bodyHash) {
        throw ebbError('SignatureDoesNotMatch', 'The x-amz-content-sha256 header does not match the SHA-256 of the request body');
      }
    }

    // Header names come from the request's SignedHeaders: keep them as plain data (no prototype).
    const headers = Object.create(null) as Record<string, string>;
    for (const name of signedHeaders) {
      const vs = values(req.headers, name);
      if (vs.length === 0) {
        throw ebbError('SignatureDoesNotMatch', `The signed header '${name}' is missing from the request`);
      }
      if (vs.length > 1) {
        throw ebbError('SignatureDoesNotMatch', `The signed header '${name}' appears ${vs.length} times in the request: send each signed header once`);
      }
      headers[name] = vs[0] ?? '';
    }
    const request = new HttpRequest({
      method: req.method.toUpperCase(),
      protocol: 'http:',
      hostname: headers['host'] ?? '',
      path: req.path,
      query: parseQuery(req.rawQuery),
      headers,
      body: req.body,
    });
    const signed = await this.#signer(accessKeyId, secret).sign(request, {
      signingDate: new Date(auth.signingTime),
      signingRegion: region,
      signingService: service,
      // Sign exactly what the client signed, even headers the signer would otherwise skip.
      signableHeaders: new Set(signedHeaders),
    });
    const expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers['authorization'] ?? ''))?.[1] ?? '';
    const a = Buffer.from(expected, 'utf8');
    const b = Buffer.from(auth.signature, 'utf8');
    if (a.length !== b.length || !timingSafeEqual(a, b)) {
      throw ebbError(
        'SignatureDoesNotMatch',
        'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.',
      );
    }
    return { accessKeyId, region, service };
  }

  #signer(accessKeyId: string, secretAccessKey: string): SignatureV4 {
    let signer = this.#signers.get(accessKeyId);
    if (signer === undefined) {
      signer = new SignatureV4({
        credentials: { accessKeyId, secretAccessKey },
        region: 'us-east-1',
        service: 'elasticloadbalancing',
        sha256: NodeSha256,
        applyChecksum: false,
      });
      this.#signers.set(accessKeyId, signer);
    }
    return signer;
  }
}

/**
 * Every value of a header, in arrival order ([] when absent). `name` may come from SignedHeaders, so
 * only the object's own entries count (node's headersDistinct has no prototype; a caller's object may).
 */
function values(headers: RequestHeaders, name: string): readonly string[] {
  const v = Object.hasOwn(headers, name) ? headers[name] : undefined;
  if (v === undefined) return [];
  return typeof v === 'string' ? [v] : v;
}

function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * The query string as the signer wants it: decoded names to one value or several. The names are the
 * client's, so the object has no prototype (`?__proto__=1` or `?toString=1` stay ordinary keys).
 */
function parseQuery(rawQuery: string): Record<string, string | string[]> {
  const query = Object.create(null) as Record<string, string | string[]>;
  for (const pair of rawQuery.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const k = safeDecode(eq === -1 ? pair : pair.slice(0, eq));
    const v = safeDecode(eq === -1 ? '' : pair.slice(eq + 1));
    const prev = query[k];
    query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return query;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}
