/**
 * The pause after failed launches, by group: it doubles with each failure in a row, up to a cap, so
 * a template that crashes at start is not relaunched in a spin. Failures seen together (several
 * instances of one round) count once. Wall-clock times: the pause is shown in activities.
 */
interface Backoff {
  failures: number;
  /** Wall ms before which the group launches nothing. */
  until: number;
  /** Wall ms of the failure that was counted last. */
  countedAt: number;
}

export class LaunchBackoff {
  readonly #byGroup = new Map<string, Backoff>();
  readonly #baseMs: number;
  readonly #maxMs: number;

  constructor(baseMs: number, maxMs: number) {
    this.#baseMs = baseMs;
    this.#maxMs = maxMs;
  }

  /** Counts a failure at `now`; returns the failures in a row and the pause now running. */
  failed(group: string, now: number): { failures: number; pauseMs: number } {
    const previous = this.#byGroup.get(group);
    const sameRound = previous !== undefined && now < previous.countedAt + Math.min(1000, this.#baseMs);
    const failures = sameRound ? previous.failures : (previous?.failures ?? 0) + 1;
    const pauseMs = Math.min(this.#maxMs, this.#baseMs * 2 ** (failures - 1));
    this.#byGroup.set(group, sameRound ? previous : { failures, until: now + pauseMs, countedAt: now });
    return { failures, pauseMs };
  }

  /** Whether the group may launch at `now`. */
  allows(group: string, now: number): boolean {
    return now >= (this.#byGroup.get(group)?.until ?? 0);
  }

  failures(group: string): number {
    return this.#byGroup.get(group)?.failures ?? 0;
  }

  /** When paused groups may launch again (for the next pass's wake-up). */
  wakes(now: number, groups: ReadonlySet<string>): number[] {
    return [...this.#byGroup].filter(([name, b]) => b.until > now && groups.has(name)).map(([, b]) => b.until);
  }

  /** The run of failures is over (an instance stayed up), or the group is gone. */
  clear(group: string): void {
    this.#byGroup.delete(group);
  }
}
