import { STATUS_CODES } from 'node:http';

/**
 * Data-plane failures, classified the way a load balancer reports them: a `kind` (what went wrong), a
 * `source` (whose fault: the target, the client, or ebb), and the status the client is answered with.
 * Expected network failures are values, never thrown: the proxy turns each one into a `ProxyError`,
 * logs it with its reason, and answers with `status` when the response has not started yet.
 */
export type ProxyErrorKind =
  | 'no-target' // the group has no target to use (503)
  | 'no-target-group' // the listener forwards to no group (503)
  | 'connect-refused' // ECONNREFUSED and other connect failures (502)
  | 'connect-timeout' // no connection within targetConnectTimeoutMs (504)
  | 'target-tls' // the TLS handshake with an HTTPS group's target failed: refused, or its certificate not verified (502)
  | 'upstream-reset' // the target closed or reset the connection before the response ended (502)
  | 'upstream-garbage' // the target's answer is not valid HTTP/1.x (502)
  | 'response-timeout' // no response head within targetResponseTimeoutMs (504)
  | 'idle-timeout' // nothing moved between ebb and the target for idleTimeoutMs once it was answering (504, or the client is cut)
  | 'client-timeout' // nothing came from (or was read by) the client for idleTimeoutMs mid-request (408, or the client is cut)
  | 'terminated' // ebb cut the request at a drain deadline (502; detail `cut` when its response had started)
  | 'listener-closed' // its listener was closing (ebb's shutdown, or the listener's removal) and its deadline passed (502; `cut` likewise)
  | 'bad-request-body' // the client's chunked body is malformed (400)
  | 'client-aborted'; // the client went away before the response ended (no answer possible)

export type ProxyErrorSource = 'upstream' | 'downstream' | 'internal';

interface ProxyErrorSpec {
  readonly status: number;
  readonly source: ProxyErrorSource;
}

const PROXY_ERRORS: { readonly [K in ProxyErrorKind]: ProxyErrorSpec } = {
  'no-target': { status: 503, source: 'internal' },
  'no-target-group': { status: 503, source: 'internal' },
  'connect-refused': { status: 502, source: 'upstream' },
  'connect-timeout': { status: 504, source: 'upstream' },
  'target-tls': { status: 502, source: 'upstream' },
  'upstream-reset': { status: 502, source: 'upstream' },
  'upstream-garbage': { status: 502, source: 'upstream' },
  'response-timeout': { status: 504, source: 'upstream' },
  'idle-timeout': { status: 504, source: 'upstream' },
  'client-timeout': { status: 408, source: 'downstream' },
  terminated: { status: 502, source: 'internal' },
  'listener-closed': { status: 502, source: 'internal' },
  'bad-request-body': { status: 400, source: 'downstream' },
  'client-aborted': { status: 499, source: 'downstream' },
};

export class ProxyError {
  readonly status: number;
  readonly source: ProxyErrorSource;
  constructor(
    readonly kind: ProxyErrorKind,
    /** A short detail for the log (the OS error code, the parse failure). */
    readonly detail: string,
  ) {
    const spec = PROXY_ERRORS[kind];
    this.status = spec.status;
    this.source = spec.source;
  }
  /** The `error_reason` of access logs and request events: `kind` or `kind:detail`. */
  get reason(): string {
    return this.detail === '' ? this.kind : `${this.kind}:${this.detail}`;
  }
}

/** ebb's own answers (400, 408, 503, ...), by status, whether they close, and whether they answer a HEAD. */
const ANSWERS = new Map<string, string>();

/**
 * An answer of ebb's own, written on the client's socket: a short text body (none for a HEAD, RFC 9110
 * §9.3.2) and `Connection: close` when the connection closes after it. Built once per kind.
 */
export function errorAnswer(status: number, close: boolean, head: boolean): string {
  const key = `${status}${close ? 'c' : ''}${head ? 'h' : ''}`;
  let a = ANSWERS.get(key);
  if (a === undefined) {
    const text = STATUS_CODES[status] ?? '';
    const body = `${status} ${text}\n`;
    a = `HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nServer: ebb\r\n${close ? 'Connection: close\r\n' : ''}\r\n${head ? '' : body}`;
    ANSWERS.set(key, a);
  }
  return a;
}

/**
 * Classifies a socket error seen while connecting to or talking with a target. `handshaking`: the
 * TCP connection to an HTTPS target is open and its TLS handshake is not done (the detail is
 * OpenSSL's or Node's code: `DEPTH_ZERO_SELF_SIGNED_CERT`, `ERR_SSL_WRONG_VERSION_NUMBER`, ...).
 */
export function classifySocketError(err: NodeJS.ErrnoException, connected: boolean, handshaking = false): ProxyError {
  const code = err.code ?? 'EUNKNOWN';
  if (!connected) {
    if (handshaking) return new ProxyError('target-tls', code);
    if (code === 'ETIMEDOUT') return new ProxyError('connect-timeout', code);
    return new ProxyError('connect-refused', code);
  }
  return new ProxyError('upstream-reset', code);
}
