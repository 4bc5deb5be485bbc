import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { ebbError } from '../shared/errors.ts';

/**
 * AWS Signature Version 4 verification for the admin endpoint (aws-api.md §2).
 *
 * The clients sign different header sets (the aws CLI and boto3 sign `content-type;host;x-amz-date`,
 * the JS SDK eight headers), so the canonical request is rebuilt from the request's own SignedHeaders
 * list. The payload hash in the canonical request is always ebb's own SHA-256 of the body that
 * arrived: a client's `x-amz-content-sha256` must equal it, and `UNSIGNED-PAYLOAD` or a streaming
 * payload is refused, so a signature never leaves the body (and so the Action) open to change.
 * The expected signature is compared in constant time.
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
const SIGNING_KEY_CACHE_LIMIT = 256;

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
      'Request is missing Authentication Token: sign it with AWS Signature Version 4 using an access key configured in admin.credentials or EBB_ACCESS_KEY_ID',
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

export class SigV4Verifier {
  readonly #secrets = new Map<string, string>();
  /** Derived signing keys by access key, date, region and service (bounded). */
  readonly #keys = new Map<string, Buffer>();
  readonly #wallTime: () => number;

  /** `wallTime` gives milliseconds since the epoch (the injected clock's `wallTime`). */
  constructor(credentials: readonly Credential[], wallTime: () => number) {
    for (const c of credentials) this.#secrets.set(c.accessKeyId, c.secretAccessKey);
    this.#wallTime = wallTime;
  }

  /** Resolves with who signed, or rejects with the AWS error a client would get. */
  async verify(req: SignedRequest): Promise<VerifiedCaller> {
    return Promise.resolve().then(() => this.verifySync(req));
  }

  /** `verify` without the promise: returns who signed, or throws the AWS error a client would get. */
  verifySync(req: SignedRequest): VerifiedCaller {
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
    const now = this.#wallTime();
    if (Math.abs(now - auth.signingTime) > MAX_CLOCK_SKEW_MS) {
      throw ebbError(
        'RequestExpired',
        `Request has expired: it was signed at ${new Date(auth.signingTime).toISOString()} and ebb's clock says ${new Date(now).toISOString()}; signatures are valid for 15 minutes either way. Check the client's clock.`,
      );
    }
    const secret = this.#secrets.get(accessKeyId);
    if (secret === undefined) {
      throw ebbError('InvalidClientTokenId', `The security token included in the request is invalid: access key '${accessKeyId}' is not configured in ebb`);
    }

    // The payload hash is always ebb's own hash of the body that arrived.
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

    let canonicalHeaders = '';
    for (const name of signedHeaders) {
      const vs = values(req.headers, name);
      if (vs.length === 0) {
        throw ebbError('SignatureDoesNotMatch', `The signed header '${name}' is missing from the request`);
      }
      if (vs.length > 1) {
        throw ebbError('SignatureDoesNotMatch', `The signed header '${name}' appears ${vs.length} times in the request: send each signed header once`);
      }
      canonicalHeaders += `${name}:${(vs[0] ?? '').trim().replace(/\s+/g, ' ')}\n`;
    }
    const canonicalRequest = [
      req.method.toUpperCase(),
      canonicalPath(req.path),
      canonicalQuery(req.rawQuery),
      canonicalHeaders,
      signedHeaders.join(';'),
      bodyHash,
    ].join('\n');
    const scope = `${scopeDate}/${region}/${service}/aws4_request`;
    const stringToSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${sha256Hex(canonicalRequest)}`;
    const expected = createHmac('sha256', this.#signingKey(accessKeyId, secret, scopeDate, region, service)).update(stringToSign, 'utf8').digest('hex');
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

  #signingKey(accessKeyId: string, secret: string, date: string, region: string, service: string): Buffer {
    const id = `${accessKeyId}\n${date}\n${region}\n${service}`;
    let key = this.#keys.get(id);
    if (key === undefined) {
      const kDate = createHmac('sha256', `AWS4${secret}`).update(date, 'utf8').digest();
      const kRegion = createHmac('sha256', kDate).update(region, 'utf8').digest();
      const kService = createHmac('sha256', kRegion).update(service, 'utf8').digest();
      key = createHmac('sha256', kService).update('aws4_request', 'utf8').digest();
      // Bounded: regions are the client's choice, so drop everything when it grows.
      if (this.#keys.size >= SIGNING_KEY_CACHE_LIMIT) this.#keys.clear();
      this.#keys.set(id, key);
    }
    return key;
  }
}

/** Every value of a header, in arrival order ([] when absent). */
function values(headers: RequestHeaders, name: string): readonly string[] {
  const v = headers[name];
  if (v === undefined) return [];
  return typeof v === 'string' ? [v] : v;
}

function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** RFC 3986 encoding as SigV4 wants it: everything but unreserved characters, upper-case hex. */
function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The canonical URI for services other than S3: dot segments removed, each segment encoded once more. */
function canonicalPath(path: string): string {
  const segments: string[] = [];
  for (const s of path.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') segments.pop();
    else segments.push(s);
  }
  const trailing = segments.length > 0 && path.endsWith('/') ? '/' : '';
  return `/${segments.map(uriEncode).join('/')}${trailing}`;
}

/** The canonical query string: decoded pairs re-encoded, sorted by name then value, without X-Amz-Signature. */
function canonicalQuery(rawQuery: string): string {
  const pairs: [string, string][] = [];
  for (const pair of rawQuery.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const k = uriEncode(safeDecode(eq === -1 ? pair : pair.slice(0, eq)));
    if (k === 'X-Amz-Signature') continue;
    pairs.push([k, uriEncode(safeDecode(eq === -1 ? '' : pair.slice(eq + 1)))]);
  }
  pairs.sort(([ka, va], [kb, vb]) => (ka < kb ? -1 : ka > kb ? 1 : va < vb ? -1 : va > vb ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}
