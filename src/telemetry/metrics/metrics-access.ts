import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ebbError, type EbbError } from '../../shared/errors.ts';

/**
 * Who may read `/metrics`. Prometheus cannot sign requests with SigV4; what its scrape configuration
 * can send is a bearer token (`authorization: { credentials_file: … }`, or the older
 * `bearer_token_file`), as `Authorization: Bearer <token>` (Prometheus documentation, Configuration,
 * `<scrape_config>` and `<authorization>`). So ebb takes a token from a file the operator names, or
 * serves the page to anyone when told to, and otherwise refuses it.
 */
export type MetricsAccess =
  | { readonly kind: 'token'; readonly token: string }
  /** `admin.metrics.public: true`, or the whole admin API without authentication (`--no-auth`). */
  | { readonly kind: 'public' }
  /** Neither a token nor `public`: refused with a message saying how to open it. */
  | { readonly kind: 'closed' };

/** How to configure access, for the messages that refuse a scrape. */
const HOW =
  'set admin.metrics.bearerTokenFile to a file holding a token and have Prometheus send it ' +
  '(authorization: { credentials_file: FILE } in the scrape config), or set admin.metrics.public: true to serve /metrics without one';

/**
 * Reads the token file at start. Its content, trimmed of surrounding whitespace (Prometheus trims the
 * file it sends from the same way, so one file can serve both), is the token; an empty or unreadable
 * file refuses the start (ConfigInvalid), since a scrape could never succeed.
 */
export async function readBearerTokenFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message;
    throw ebbError('ConfigInvalid', `admin.metrics.bearerTokenFile: cannot read ${path}: ${why}. Name a readable file holding the token Prometheus sends.`);
  }
  const token = text.trim();
  if (token === '') {
    throw ebbError('ConfigInvalid', `admin.metrics.bearerTokenFile: ${path} is empty. Write the token Prometheus sends into it.`);
  }
  return token;
}

/** Why a scrape was refused: the error, and the `WWW-Authenticate` challenge to send with a 401. */
export interface MetricsRefusal {
  readonly error: EbbError;
  readonly challenge: string | null;
}

/**
 * Checks a request's `Authorization` header against the access; null lets it through. The scheme is
 * matched case-insensitively (RFC 9110 §11.1); a missing or wrong token is 401 with a `Bearer`
 * challenge, `invalid_token` for a wrong one (RFC 6750 §3, §3.1); a closed endpoint is 403, since no
 * credentials could open it.
 */
export function checkMetricsAccess(access: MetricsAccess, authorization: string | undefined): MetricsRefusal | null {
  switch (access.kind) {
    case 'public':
      return null;
    case 'closed':
      return { error: ebbError('MetricsNotEnabled', `/metrics is not enabled: ${HOW}.`), challenge: null };
    case 'token': {
      const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
      if (m === null) {
        const what = authorization === undefined ? 'has no Authorization header' : 'has an Authorization header that is not "Bearer <token>"';
        return {
          error: ebbError('MetricsUnauthorized', `The request ${what}. /metrics takes the token in admin.metrics.bearerTokenFile as "Authorization: Bearer <token>"; ${HOW}.`),
          challenge: 'Bearer realm="ebb metrics"',
        };
      }
      if (!sameToken(m[1] ?? '', access.token)) {
        return {
          error: ebbError('MetricsUnauthorized', 'The bearer token does not match the one in admin.metrics.bearerTokenFile; send the token that file holds.'),
          challenge: 'Bearer realm="ebb metrics", error="invalid_token"',
        };
      }
      return null;
    }
    default: {
      const never: never = access;
      return never;
    }
  }
}

/**
 * Compares in constant time. `timingSafeEqual` needs buffers of one length (Node documentation,
 * crypto.timingSafeEqual), and comparing lengths first would tell a prober the token's length, so the
 * SHA-256 digests are compared instead.
 */
function sameToken(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}
