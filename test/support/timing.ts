/**
 * Waiting in tests: a plain pause, polling until a condition holds, and racing a promise against a
 * deadline.
 */

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves with `value` after `ms`, without keeping the process alive (for Promise.race). */
export function after<T>(ms: number, value: T): Promise<T> {
  return new Promise((r) => setTimeout(() => r(value), ms).unref());
}

/**
 * Waits until `cond()` holds, checking every `everyMs`, up to `ms`; resolves with whether it held.
 * `cond` is checked once more at the deadline, so a condition that became true while the last pause
 * ran still counts.
 */
export async function waitFor(cond: () => boolean | Promise<boolean>, ms = 2000, everyMs = 5): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await sleep(everyMs);
  }
  return cond();
}

/** `waitFor` for a condition the test cannot go on without: rejects, naming `what`, if it never held. */
export async function waitUntil(cond: () => boolean | Promise<boolean>, what: string, ms = 2000, everyMs = 5): Promise<void> {
  if (!(await waitFor(cond, ms, everyMs))) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/**
 * What `p` resolves with if it settles within `ms`, else `fallback` ('timeout' unless given). The
 * timer is cleared once `p` wins, so a long `ms` does not hold the test process open.
 */
export function within<T, const F = 'timeout'>(p: Promise<T>, ms: number, fallback: F = 'timeout' as F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<F>((r) => (timer = setTimeout(() => r(fallback), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
