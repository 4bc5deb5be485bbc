import { createHash, timingSafeEqual } from 'node:crypto';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { ebbError } from '../shared/errors.ts';

/**
 * AWS Signature Version 4 verification for the admin endpoint (aws-api.md §2).
 *
 * The clients sign different header sets (the aws CLI and boto3 sign `content-type;host;x-amz-date`,
 * the JS SDK eight headers), so the canonical request is rebuilt from the request's own SignedHeaders
 * list. The expected signature is computed by `@smithy/signature-v4` (the signer the JS SDK uses) for
 * the date, region and service the client put in its credential scope, and compared in constant time.
 */

export interface Credential {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/** What the verifier needs to know about one request. Header names are lower case. */
export interface SignedRequest {
  readonly method: string;
  /** The path without the query string. */
  readonly path: string;
  /** The raw query string (after `?`), or ''. */
  readonly rawQuery: string;
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  readonly body: Buffer;
}

export interface VerifiedCaller {
  readonly accessKeyId: string;
  readonly region: string;
  readonly service: string;
}

/** Clients must sign within this much of ebb's clock, either way (AWS allows 15 minutes). */
export const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;

const AUTH_PATTERN =
  /^AWS4-HMAC-SHA256 Credential=([^/\s,]+)\/(\d{8})\/([^/\s,]+)\/([^/\s,]+)\/aws4_request, ?SignedHeaders=([a-z0-9;_.-]+), ?Signature=([0-9a-f]{64})$/;
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

export class SigV4Verifier {
  readonly #secrets = new Map<string, string>();
  readonly #signers = new Map<string, SignatureV4>();
  readonly #wallTime: () => number;

  /** `wallTime` gives milliseconds since the epoch (the injected clock's `wallTime`). */
  constructor(credentials: readonly Credential[], wallTime: () => number) {
    for (const c of credentials) this.#secrets.set(c.accessKeyId, c.secretAccessKey);
    this.#wallTime = wallTime;
  }

  /** Resolves with who signed, or rejects with the AWS error a client would get. */
  async verify(req: SignedRequest): Promise<VerifiedCaller> {
    const authorization = header(req.headers, 'authorization');
    if (authorization === undefined) {
      if (/(^|&)X-Amz-Signature=/.test(req.rawQuery)) {
        throw ebbError('IncompleteSignature', 'Presigned URLs are not accepted by ebb: sign the request with an Authorization header');
      }
      throw ebbError(
        'MissingAuthenticationToken',
        'Request is missing Authentication Token: sign it with AWS Signature Version 4 using an access key configured in admin.credentials or EBB_ACCESS_KEY_ID',
      );
    }
    const m = AUTH_PATTERN.exec(authorization.trim());
    if (m === null) {
      throw ebbError(
        'IncompleteSignature',
        "Authorization header is not a valid AWS4-HMAC-SHA256 header: expected 'AWS4-HMAC-SHA256 Credential=KEY/yyyymmdd/region/service/aws4_request, SignedHeaders=..., Signature=<64 hex>'",
      );
    }
    const [, accessKeyId = '', scopeDate = '', region = '', service = '', signedHeaderList = '', signature = ''] = m;
    const signedHeaders = signedHeaderList.split(';');
    if (!signedHeaders.includes('host')) {
      throw ebbError('IncompleteSignature', "The request signature must cover the 'host' header");
    }
    if (!signedHeaders.includes('x-amz-date')) {
      throw ebbError('IncompleteSignature', "The request signature must cover the 'x-amz-date' header");
    }
    const amzDate = header(req.headers, 'x-amz-date');
    const dm = amzDate === undefined ? null : AMZ_DATE.exec(amzDate);
    if (amzDate === undefined || dm === null) {
      throw ebbError('IncompleteSignature', "The X-Amz-Date header is missing or not in the form yyyymmddTHHMMSSZ");
    }
    const signingDate = new Date(Date.UTC(+dm[1]!, +dm[2]! - 1, +dm[3]!, +dm[4]!, +dm[5]!, +dm[6]!));
    if (Number.isNaN(signingDate.getTime())) {
      throw ebbError('IncompleteSignature', `The X-Amz-Date header '${amzDate}' is not a valid date`);
    }
    if (amzDate.slice(0, 8) !== scopeDate) {
      throw ebbError('SignatureDoesNotMatch', `The credential scope date ${scopeDate} does not match X-Amz-Date ${amzDate}`);
    }
    const now = this.#wallTime();
    if (Math.abs(now - signingDate.getTime()) > MAX_CLOCK_SKEW_MS) {
      throw ebbError(
        'RequestExpired',
        `Request has expired: it was signed at ${signingDate.toISOString()} and ebb's clock says ${new Date(now).toISOString()}; signatures are valid for 15 minutes either way. Check the client's clock.`,
      );
    }
    const secret = this.#secrets.get(accessKeyId);
    if (secret === undefined) {
      throw ebbError('InvalidClientTokenId', `The security token included in the request is invalid: access key '${accessKeyId}' is not configured in ebb`);
    }

    // The JS SDK sends the body's hash; it must be the hash of what arrived.
    const declaredHash = header(req.headers, 'x-amz-content-sha256');
    if (declaredHash !== undefined && declaredHash !== 'UNSIGNED-PAYLOAD') {
      const actual = createHash('sha256').update(req.body).digest('hex');
      if (declaredHash !== actual) {
        throw ebbError('SignatureDoesNotMatch', 'The x-amz-content-sha256 header does not match the request body');
      }
    }

    const headers: Record<string, string> = {};
    for (const name of signedHeaders) {
      const value = header(req.headers, name);
      if (value === undefined) {
        throw ebbError('SignatureDoesNotMatch', `The signed header '${name}' is missing from the request`);
      }
      headers[name] = value;
    }
    const query: Record<string, string | string[]> = {};
    for (const pair of req.rawQuery.split('&')) {
      if (pair === '') continue;
      const eq = pair.indexOf('=');
      const k = safeDecode(eq === -1 ? pair : pair.slice(0, eq));
      const v = safeDecode(eq === -1 ? '' : pair.slice(eq + 1));
      const prev = query[k];
      query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
    }
    const request = new HttpRequest({
      method: req.method.toUpperCase(),
      protocol: 'http:',
      hostname: headers['host'] ?? '',
      path: req.path,
      query,
      headers,
      body: req.body,
    });
    const signer = this.#signer(accessKeyId, secret, header(req.headers, 'x-amz-security-token'));
    const signed = await signer.sign(request, {
      signingDate,
      signingRegion: region,
      signingService: service,
      // Sign exactly what the client signed, even headers the signer would otherwise skip.
      signableHeaders: new Set(signedHeaders),
    });
    const expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers['authorization'] ?? ''))?.[1] ?? '';
    const a = Buffer.from(expected, 'utf8');
    const b = Buffer.from(signature, 'utf8');
    if (a.length !== b.length || !timingSafeEqual(a, b)) {
      throw ebbError(
        'SignatureDoesNotMatch',
        'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.',
      );
    }
    return { accessKeyId, region, service };
  }

  #signer(accessKeyId: string, secretAccessKey: string, sessionToken: string | undefined): SignatureV4 {
    const key = `${accessKeyId}\n${sessionToken ?? ''}`;
    let signer = this.#signers.get(key);
    if (signer === undefined) {
      signer = new SignatureV4({
        credentials: sessionToken === undefined ? { accessKeyId, secretAccessKey } : { accessKeyId, secretAccessKey, sessionToken },
        region: 'us-east-1',
        service: 'elasticloadbalancing',
        sha256: Sha256,
        applyChecksum: false,
      });
      // Bounded: one signer per configured key (and session token seen); drop all if it grows.
      if (this.#signers.size > 1000) this.#signers.clear();
      this.#signers.set(key, signer);
    }
    return signer;
  }
}

function header(headers: SignedRequest['headers'], name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : v.join(',');
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}
