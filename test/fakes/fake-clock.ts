import type { Clock, TimerHandle } from '../../src/shared/clock.ts';

interface PendingTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** A Clock that moves only when told to. `advance` fires due timers in deadline order. */
export class FakeClock implements Clock {
  #now = 0;
  #wallOffset: number;
  #seq = 0;
  #timers: PendingTimer[] = [];

  constructor(wallStart = Date.UTC(2026, 0, 1)) {
    this.#wallOffset = wallStart;
  }

  now(): number {
    return this.#now;
  }

  wallTime(): number {
    return this.#wallOffset + this.#now;
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    const timer: PendingTimer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn, cancelled: false };
    this.#timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order, including ones set meanwhile. */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      this.#timers = this.#timers.filter((t) => !t.cancelled);
      this.#timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.#timers[0];
      if (next === undefined || next.at > target) break;
      this.#timers.shift();
      this.#now = Math.max(this.#now, next.at);
      next.fn();
    }
    this.#now = target;
  }

  pendingTimers(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }
}
