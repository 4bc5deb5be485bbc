import diagnosticsChannel from 'node:diagnostics_channel';
import type { ResponseTimes } from '../api/ebb/response-times.ts';
import { CHANNEL_NAMES, type RequestEndMessage } from '../dataplane/channels.ts';

/**
 * Feeds the recommended-delay window (ResponseTimes) from the data plane's request-end channel: every
 * request a target answered, by its group. Returns the unsubscribe. The channel is the process's, so
 * requests of every data plane in the process are counted (each under its own group's ARN).
 */
export function feedResponseTimes(times: ResponseTimes): () => void {
  const onMessage = (message: unknown): void => {
    const m = message as RequestEndMessage;
    if (m.targetGroupArn === null || !m.fromTarget || m.targetResponseMs < 0) return;
    times.record(m.targetGroupArn, m.requestTime + m.durationMs, m.targetResponseMs, m.durationMs);
  };
  diagnosticsChannel.subscribe(CHANNEL_NAMES.requestEnd, onMessage);
  return () => {
    diagnosticsChannel.unsubscribe(CHANNEL_NAMES.requestEnd, onMessage);
  };
}
