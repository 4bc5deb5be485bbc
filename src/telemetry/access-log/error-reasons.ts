import type { ProxyErrorKind } from '../../dataplane/errors.ts';

/**
 * The `error_reason` field of ebb's access-log lines: one token per way a request can fail.
 *
 * ALB fills `error_reason` only for its own features (Lambda targets, authentication, WAF; "Error
 * reason codes" in "Access logs for your Application Load Balancer") and writes `-` for the rest, so
 * a 502 there says nothing about why. ebb writes a code of its own there instead, in ALB's style (one
 * CamelCase token, no spaces, so the Athena table's `"([^ ]*)"` group reads it). These codes are
 * ebb's, not AWS's; docs/access-logs.md lists them. A reason the data plane gains later and this
 * table lacks still yields one token (its words in CamelCase), never a broken line.
 */

/** Each ProxyError kind (src/dataplane/errors.ts): typed as a full record, so a new kind fails the build here. */
export const PROXY_ERROR_REASONS: { readonly [K in ProxyErrorKind]: string } = {
  'no-target': 'NoRoutableTarget',
  'no-target-group': 'NoTargetGroup',
  'connect-refused': 'TargetConnectionError',
  'connect-timeout': 'TargetConnectionTimeout',
  'target-tls': 'TargetTLSNegotiationError',
  'upstream-reset': 'TargetConnectionClosed',
  'upstream-garbage': 'TargetMalformedResponse',
  'response-timeout': 'TargetResponseTimeout',
  'idle-timeout': 'TargetIdleTimeout',
  'client-timeout': 'ClientIdleTimeout',
  terminated: 'DeregistrationDelayExpired',
  'listener-closed': 'ListenerCloseTimeoutExpired',
  'bad-request-body': 'ClientMalformedBody',
  'client-aborted': 'ClientClosedConnection',
};

/**
 * The reasons ebb refuses a request for while reading its head (client-connection.ts, request-guard.ts),
 * before any routing: the request reaches no rule and no target group.
 */
export const REFUSAL_REASONS: Readonly<Record<string, string>> = {
  'header-timeout': 'ClientHeaderTimeout',
  'head-too-large': 'RequestHeaderTooLarge',
  'too-many-headers': 'TooManyHeaders',
  'duplicate-host': 'DuplicateHostHeader',
  'http-version-not-supported': 'HttpVersionNotSupported',
  'bad-method': 'InvalidMethod',
  'bad-request-target': 'InvalidRequestTarget',
  'unframeable-body': 'UnframeableBody',
  'connect-not-supported': 'ConnectNotSupported',
  'upgrade-with-body': 'UpgradeWithBody',
  // `desync-<tier>:<reason>`: refused by the listener's routing.http.desync_mitigation_mode. The
  // classification and its reason are in the line's own `classification` fields.
  'desync-acceptable': 'DesyncMitigationAcceptable',
  'desync-ambiguous': 'DesyncMitigationAmbiguous',
  'desync-severe': 'DesyncMitigationSevere',
};

/** What an access-log line needs to know of a failure. */
export interface FailureFacts {
  /** `kind`, `kind:detail` (a ProxyError) or a refusal reason; null on success. */
  readonly errorReason: string | null;
  readonly status: number;
  /** Null when no target was picked. */
  readonly targetKey: string | null;
}

/** `idle-timeout` is both a target's silence (a ProxyError) and, answered 408 with no target, a client's half-sent next request. */
function isClientIdle(f: FailureFacts): boolean {
  return f.status === 408 && f.targetKey === null;
}

/** The reason's head: what precedes the first `:` (a ProxyError's detail, a desync classification reason). */
function head(reason: string): string {
  const colon = reason.indexOf(':');
  return colon === -1 ? reason : reason.slice(0, colon);
}

/** Whether ebb refused the request before routing it (no rule matched, no target group chosen). */
export function refusedBeforeRouting(f: FailureFacts): boolean {
  if (f.errorReason === null) return false;
  const h = head(f.errorReason);
  if (h === 'idle-timeout') return isClientIdle(f);
  return Object.hasOwn(REFUSAL_REASONS, h);
}

/** The `error_reason` token for a request's end, or null (`-`) when it succeeded. */
export function errorReasonCode(f: FailureFacts): string | null {
  if (f.errorReason === null) return null;
  const h = head(f.errorReason);
  if (h === 'idle-timeout' && isClientIdle(f)) return 'ClientIdleTimeout';
  if (Object.hasOwn(PROXY_ERROR_REASONS, h)) return PROXY_ERROR_REASONS[h as ProxyErrorKind];
  if (Object.hasOwn(REFUSAL_REASONS, h)) return REFUSAL_REASONS[h] ?? null;
  const words = h.split(/[^A-Za-z0-9]+/).filter((w) => w !== '');
  if (words.length === 0) return 'Unknown';
  return words.map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('');
}

/** Every code ebb writes, for the documentation test. */
export function allErrorReasonCodes(): string[] {
  return [...new Set([...Object.values(PROXY_ERROR_REASONS), ...Object.values(REFUSAL_REASONS)])].sort();
}
