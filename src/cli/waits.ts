import type { AdminClient } from './admin-client.ts';
import type { WaitAnswer } from './wire.ts';

/** The longest wait ebb takes in one call (`GET /ebb/v1/wait`, timeout at most 3600 s). */
const MAX_WAIT_SECONDS = 3600;
/** Beyond the wait's own timeout, how long the answer may take to arrive. */
const ANSWER_MARGIN_MS = 30_000;

/**
 * Waits on ebb's barrier (`GET /ebb/v1/wait`) until `kind` holds for the target, or `timeoutSeconds`
 * passed (undefined: as long as it takes, in calls of at most an hour each). Resolves with the last
 * answer: the one that reached the condition, said there is nothing to wait for, or timed out.
 */
export async function waitUntil(
  client: AdminClient,
  kind: 'drained' | 'not-routed',
  group: string,
  target: string,
  timeoutSeconds: number | undefined,
): Promise<WaitAnswer> {
  const deadline = timeoutSeconds === undefined ? Infinity : Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const left = deadline === Infinity ? MAX_WAIT_SECONDS : Math.max(0, (deadline - Date.now()) / 1000);
    const chunk = Math.round(Math.min(MAX_WAIT_SECONDS, left) * 1000) / 1000;
    const answer = await client.getJson<WaitAnswer>('wait', { targetGroup: group, target, for: kind, timeout: chunk }, { timeoutMs: chunk * 1000 + ANSWER_MARGIN_MS });
    if (answer.outcome !== 'timeout' || Date.now() >= deadline) return answer;
  }
}
