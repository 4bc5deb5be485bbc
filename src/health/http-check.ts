import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { errorText, failed, hostPort, type CheckOutcome, type ProbeTarget } from './check-outcome.ts';

/** At most this much of a health-check response body is read; the rest is dropped with the socket. */
export const MAX_HEALTH_BODY_BYTES = 64 * 1024;

export interface HttpProbe extends ProbeTarget {
  readonly protocol: 'HTTP' | 'HTTPS';
  readonly path: string;
  /** True when the status code counts as healthy (from `parseMatcher`). */
  readonly matches: (status: number) => boolean;
  /** The matcher as written, for messages. */
  readonly matcher: string;
  /** HTTPS: the CA the target's certificate must chain to (the group's `ebb.target_tls.ca_file`); null or absent: not verified. */
  readonly caPem?: string | null;
}

const USER_AGENT = 'ebb-HealthChecker/1.0';

/**
 * One HTTP(S) health check: `GET path` with `Connection: close` on a fresh connection (no pooling,
 * one request per check). The status code decides: outside the matcher is
 * Target.ResponseCodeMismatch; a connect error, a reset or a response Node cannot parse is
 * Target.FailedHealthChecks. The body is read and discarded, up to MAX_HEALTH_BODY_BYTES; the check
 * ends when the body ends (or the bound is reached), so a body that stalls counts against the
 * timeout. The timeout itself is the scheduler's: it aborts `signal` and reports Target.Timeout.
 *
 * HTTPS checks do not verify the target's certificate (`rejectUnauthorized: false`): targets
 * commonly present self-signed certificates, and AWS's health checker does not verify them either.
 * When the group names a CA (`caPem`), its chain must lead to that CA, as the requests' connections
 * check it (its names are not checked); an empty CA (a file that could not be read) trusts nothing.
 */
export function httpCheck(probe: HttpProbe, signal: AbortSignal): Promise<CheckOutcome> {
  return new Promise((resolve) => {
    const where = hostPort(probe.host, probe.port);
    const what = `${probe.protocol} GET ${probe.path} to ${where}`;
    let settled = false;
    let req: ClientRequest | undefined;
    const settle = (outcome: CheckOutcome): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      req?.destroy();
      resolve(outcome);
    };
    const onAbort = (): void => settle(failed('Target.Timeout', `${what} aborted`));
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });

    const options = {
      host: probe.host,
      port: probe.port,
      method: 'GET',
      path: probe.path,
      agent: false as const,
      headers: { host: where, connection: 'close', 'user-agent': USER_AGENT, accept: '*/*' },
    };
    const onResponse = (res: IncomingMessage): void => {
      const status = res.statusCode ?? 0;
      const outcome: CheckOutcome = probe.matches(status)
        ? { ok: true }
        : failed('Target.ResponseCodeMismatch', `${what} answered ${status}; the matcher expects ${probe.matcher}`, status);
      let read = 0;
      res.on('data', (chunk: Buffer) => {
        read += chunk.length;
        if (read >= MAX_HEALTH_BODY_BYTES) settle(outcome);
      });
      res.once('end', () => settle(outcome));
      // A mismatched status stays a mismatch even if the body then breaks off.
      const cutShort = (why: string): void =>
        settle(outcome.ok ? failed('Target.FailedHealthChecks', `${what}: response cut short${why}`) : outcome);
      res.once('error', (err) => cutShort(`: ${errorText(err)}`));
      res.once('aborted', () => cutShort(''));
    };
    req =
      probe.protocol === 'HTTPS'
        ? httpsRequest(
            { ...options, ...verification(probe.caPem ?? null), ...(isIP(probe.host) === 0 ? { servername: probe.host } : {}) },
            onResponse,
          )
        : httpRequest(options, onResponse);
    req.once('error', (err) => settle(failed('Target.FailedHealthChecks', `${what} failed: ${errorText(err)}`)));
    req.once('close', () => settle(failed('Target.FailedHealthChecks', `${what}: connection closed without a complete response`)));
    req.end();
  });
}

/** How an HTTPS check treats the target's certificate: unverified, or chained to the group's CA. */
function verification(caPem: string | null): { rejectUnauthorized: boolean; ca?: string[]; checkServerIdentity?: () => undefined } {
  if (caPem === null) return { rejectUnauthorized: false };
  return { rejectUnauthorized: true, ca: caPem === '' ? [] : [caPem], checkServerIdentity: () => undefined };
}
