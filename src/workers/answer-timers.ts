import type { Clock, TimerHandle } from '../shared/clock.ts';

/**
 * The deadlines of one worker's unanswered calls (`apply`, `terminate`), by seq: a call not answered
 * within `timeoutMs` means the worker is stuck, and `onTimeout` gives it up. At most `max` at once.
 */
export class AnswerTimers {
  readonly #timers = new Map<number, TimerHandle>();
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly #max: number;

  constructor(clock: Clock, timeoutMs: number, max: number) {
    this.#clock = clock;
    this.#timeoutMs = timeoutMs;
    this.#max = max;
  }

  /** Starts the deadline of call `seq`; false (and nothing started) when `max` are already running. */
  start(seq: number, onTimeout: () => void): boolean {
    if (this.#timers.size >= this.#max) return false;
    this.#timers.set(
      seq,
      this.#clock.setTimer(this.#timeoutMs, () => {
        this.#timers.delete(seq);
        onTimeout();
      }),
    );
    return true;
  }

  answered(seq: number): void {
    this.#timers.get(seq)?.cancel();
    this.#timers.delete(seq);
  }

  /** The calls still waiting, by seq. */
  seqs(): number[] {
    return [...this.#timers.keys()];
  }

  cancelAll(): void {
    for (const timer of this.#timers.values()) timer.cancel();
    this.#timers.clear();
  }
}
