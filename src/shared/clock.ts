/**
 * Time, injected. Everything that decides behaviour by time (drain deadlines, health-check intervals,
 * hook heartbeats) takes a Clock so tests can drive it with a FakeClock. Monotonic time (`now`) and
 * wall time (`wallTime`) are kept apart: deadlines are measured on the monotonic clock, and only
 * persisted or displayed as wall time.
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Monotonic milliseconds; only differences are meaningful. */
  now(): number;
  /** Milliseconds since the Unix epoch. */
  wallTime(): number;
  /** Runs `fn` once after `ms` milliseconds. The timer does not keep the process alive. */
  setTimer(ms: number, fn: () => void): TimerHandle;
}

export class RealClock implements Clock {
  now(): number {
    return performance.now();
  }
  wallTime(): number {
    return Date.now();
  }
  setTimer(ms: number, fn: () => void): TimerHandle {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  }
}

export const realClock: Clock = new RealClock();
