import type { HealthFailureReason } from '../domain/target-health.ts';

/**
 * What one probe found. A check function settles exactly once; when its AbortSignal fires it closes
 * its socket and settles soon after (the scheduler has already reported the timeout and ignores it).
 */
export type CheckOutcome =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly reason: HealthFailureReason;
      readonly statusCode?: number;
      readonly detail: string;
    };

/** Where and how to probe, resolved from a HealthCheckTarget. */
export interface ProbeTarget {
  readonly host: string;
  readonly port: number;
}

export function failed(reason: HealthFailureReason, detail: string, statusCode?: number): CheckOutcome {
  return statusCode === undefined ? { ok: false, reason, detail } : { ok: false, reason, detail, statusCode };
}

/** `host:port`, with brackets around an IPv6 address. */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code !== undefined && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
