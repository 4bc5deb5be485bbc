import { connect } from 'node:net';
import { errorText, failed, hostPort, type CheckOutcome, type ProbeTarget } from './check-outcome.ts';
import type { CheckSignal } from './check-signal.ts';

/**
 * A TCP health check: the target is healthy when a connection opens. The connection is closed at
 * once; nothing is sent. A refused or reset connection is Target.FailedHealthChecks. The timeout is
 * the scheduler's (it aborts `signal` and reports Target.Timeout).
 */
export function tcpCheck(target: ProbeTarget, signal: CheckSignal): Promise<CheckOutcome> {
  return new Promise((resolve) => {
    const where = hostPort(target.host, target.port);
    let settled = false;
    const settle = (outcome: CheckOutcome): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(outcome);
    };
    const onAbort = (): void => settle(failed('Target.Timeout', `TCP connect to ${where} aborted`));
    const socket = connect({ host: target.host, port: target.port });
    socket.setNoDelay(true);
    socket.once('connect', () => settle({ ok: true }));
    socket.once('error', (err) => settle(failed('Target.FailedHealthChecks', `TCP connect to ${where} failed: ${errorText(err)}`)));
    socket.once('close', () => settle(failed('Target.FailedHealthChecks', `TCP connection to ${where} closed before it opened`)));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
}
