import diagnosticsChannel from 'node:diagnostics_channel';
import type { ResponseTimes } from '../api/ebb/response-times.ts';
import { CHANNEL_NAMES } from '../dataplane/channels.ts';
import type { RequestDigestMessage } from '../dataplane/request-digest.ts';

/**
 * Feeds the recommended-delay window (ResponseTimes) from the data plane's request-end channel: every
 * request a target answered, by its group. Returns the unsubscribe. The channel is the process's, so
 * requests of every data plane in the process are counted (each under its own group's ARN).
 *
 * With --workers the channel also carries events republished from worker processes, or their digests
 * (request-digest.ts) on a channel of their own. A subscriber that throws is rethrown by
 * diagnostics_channel as an uncaught exception, which would end ebb, so a message without the fields
 * read here is skipped rather than trusted (a digest was checked whole by the relay that published it).
 */
export function feedResponseTimes(times: ResponseTimes): () => void {
  const onMessage = (message: unknown): void => {
    if (typeof message !== 'object' || message === null) return;
    const m = message as Record<string, unknown>;
    const { targetGroupArn, fromTarget, targetResponseMs, requestTime, durationMs } = m;
    if (typeof targetGroupArn !== 'string' || fromTarget !== true) return;
    if (!isFiniteNumber(targetResponseMs) || targetResponseMs < 0) return;
    if (!isFiniteNumber(requestTime) || !isFiniteNumber(durationMs)) return;
    times.record(targetGroupArn, requestTime + durationMs, targetResponseMs, durationMs);
  };
  // A worker's digest (checked by its relay) carries a sample of the requests its targets answered.
  const onDigest = (message: unknown): void => {
    for (const [targetGroupArn, at, targetResponseMs, durationMs] of (message as RequestDigestMessage).samples) times.record(targetGroupArn, at, targetResponseMs, durationMs);
  };
  diagnosticsChannel.subscribe(CHANNEL_NAMES.requestEnd, onMessage);
  diagnosticsChannel.subscribe(CHANNEL_NAMES.requestDigest, onDigest);
  return () => {
    diagnosticsChannel.unsubscribe(CHANNEL_NAMES.requestEnd, onMessage);
    diagnosticsChannel.unsubscribe(CHANNEL_NAMES.requestDigest, onDigest);
  };
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}
