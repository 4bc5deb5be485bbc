import { connect as netConnect, isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { errorText, failed, hostPort, type CheckOutcome, type ProbeTarget } from './check-outcome.ts';
import type { CheckSignal } from './check-signal.ts';
import { HealthResponseReader, type ReadProgress } from './health-response.ts';

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
/** What a request line cannot carry (Node's http.request refuses the same). */
const INVALID_PATH = /[^\u0021-\u00ff]/;

/**
 * One HTTP(S) health check: `GET path` with `Connection: close` on a fresh connection (no pooling,
 * one request per check), written on a socket of its own and its answer read by
 * HealthResponseReader. The status code decides: outside the matcher is
 * Target.ResponseCodeMismatch; a connect error, a reset or an answer that cannot be read as HTTP/1.x
 * is Target.FailedHealthChecks. The body is read and discarded, up to MAX_HEALTH_BODY_BYTES; the check
 * ends when the body ends (or the bound is reached), so a body that stalls counts against the
 * timeout. The timeout itself is the scheduler's: it aborts `signal` and reports Target.Timeout.
 *
 * HTTPS checks do not verify the target's certificate (`rejectUnauthorized: false`): targets
 * commonly present self-signed certificates, and AWS's health checker does not verify them either.
 * When the group names a CA (`caPem`), its chain must lead to that CA, as the requests' connections
 * check it (its names are not checked); an empty CA (a file that could not be read) trusts nothing.
 */
export function httpCheck(probe: HttpProbe, signal: CheckSignal): Promise<CheckOutcome> {
  return new Promise((resolve) => {
    const where = hostPort(probe.host, probe.port);
    const what = `${probe.protocol} GET ${probe.path} to ${where}`;
    if (INVALID_PATH.test(probe.path)) {
      resolve(failed('Target.FailedHealthChecks', `${what} not sent: the path has characters a request line cannot carry`));
      return;
    }
    if (signal.aborted) {
      resolve(failed('Target.Timeout', `${what} aborted`));
      return;
    }
    const socket =
      probe.protocol === 'HTTPS'
        ? tlsConnect({ host: probe.host, port: probe.port, ...verification(probe.caPem ?? null), ...(isIP(probe.host) === 0 ? { servername: probe.host } : {}) })
        : netConnect({ host: probe.host, port: probe.port });
    const reader = new HealthResponseReader(MAX_HEALTH_BODY_BYTES);
    let settled = false;
    const settle = (outcome: CheckOutcome): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(outcome);
    };
    const onAbort = (): void => settle(failed('Target.Timeout', `${what} aborted`));
    signal.addEventListener('abort', onAbort, { once: true });
    const mismatch = (status: number): CheckOutcome =>
      failed('Target.ResponseCodeMismatch', `${what} answered ${status}; the matcher expects ${probe.matcher}`, status);
    // A mismatched status stays a mismatch even if the body then breaks off.
    const broken = (why: string): CheckOutcome =>
      reader.status !== 0 && !probe.matches(reader.status) ? mismatch(reader.status) : failed('Target.FailedHealthChecks', `${what}: ${why}`);
    const decide = (progress: ReadProgress): void => {
      if (progress.state === 'done') settle(probe.matches(progress.status) ? { ok: true } : mismatch(progress.status));
      else if (progress.state === 'bad') settle(broken(progress.why));
    };
    socket.on('data', (chunk: Buffer) => decide(reader.push(chunk)));
    socket.once('end', () => decide(reader.end()));
    socket.once('close', () => decide(reader.end()));
    socket.once('error', (err) => settle(reader.status === 0 ? failed('Target.FailedHealthChecks', `${what} failed: ${errorText(err)}`) : broken(`response cut short: ${errorText(err)}`)));
    // Written at once: the socket holds it until the connection (and for HTTPS the handshake) is made.
    socket.write(`GET ${probe.path} HTTP/1.1\r\nHost: ${where}\r\nConnection: close\r\nUser-Agent: ${USER_AGENT}\r\nAccept: */*\r\n\r\n`, 'latin1');
  });
}

/** How an HTTPS check treats the target's certificate: unverified, or chained to the group's CA. */
function verification(caPem: string | null): { rejectUnauthorized: boolean; ca?: string[]; checkServerIdentity?: () => undefined } {
  if (caPem === null) return { rejectUnauthorized: false };
  return { rejectUnauthorized: true, ca: caPem === '' ? [] : [caPem], checkServerIdentity: () => undefined };
}
