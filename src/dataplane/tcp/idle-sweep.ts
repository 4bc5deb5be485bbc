import type { Clock, TimerHandle } from '../../shared/clock.ts';

/** A flow as the idle sweep sees it. */
export interface IdleWatched {
  /** Set by the flow whenever a byte moves either way; the sweep reads and clears it. */
  moved: boolean;
  /** Called once, by the sweep, when nothing has moved for the timeout. */
  idleExpired(): void;
}

/**
 * The idle timeout of every flow of one listener, on one coarse ticker rather than a timer per flow
 * (as the HTTP listener checks header deadlines): a flow only sets a flag per read, and the sweep,
 * every quarter of the timeout (20 ms to 1 s), notes the flows that moved and expires those quiet
 * for the whole timeout. A flow is never expired early; it may be expired up to two ticks late (at
 * most 2 s on the default 350 s). The ticker runs only while the listener has flows.
 */
export class IdleSweep<T extends IdleWatched> {
  /** Each flow and when (clock ms) the sweep last saw it move, or when it was added. */
  readonly #quietSince = new Map<T, number>();
  readonly #clock: Clock;
  #timeoutMs: number;
  #timer: TimerHandle | null = null;

  constructor(clock: Clock, timeoutMs: number) {
    this.#clock = clock;
    this.#timeoutMs = timeoutMs;
  }

  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  get size(): number {
    return this.#quietSince.size;
  }

  /** The time between two looks at the flows. */
  get tickMs(): number {
    return Math.min(1000, Math.max(20, Math.floor(this.#timeoutMs / 4)));
  }

  /** A new timeout (the listener's `tcp.idle_timeout.seconds` changed); it applies to the open flows too. */
  setTimeoutMs(ms: number): void {
    if (ms === this.#timeoutMs) return;
    this.#timeoutMs = ms;
    if (this.#timer !== null) {
      this.#timer.cancel();
      this.#arm();
    }
  }

  add(flow: T): void {
    flow.moved = false;
    this.#quietSince.set(flow, this.#clock.now());
    if (this.#timer === null) this.#arm();
  }

  delete(flow: T): void {
    this.#quietSince.delete(flow);
    if (this.#quietSince.size === 0) this.stop();
  }

  stop(): void {
    this.#timer?.cancel();
    this.#timer = null;
  }

  #arm(): void {
    this.#timer = this.#clock.setTimer(this.tickMs, () => this.#tick());
  }

  #tick(): void {
    this.#timer = null;
    const now = this.#clock.now();
    const timeout = this.#timeoutMs;
    const expired: T[] = [];
    for (const [flow, since] of this.#quietSince) {
      if (flow.moved) {
        flow.moved = false;
        this.#quietSince.set(flow, now);
      } else if (now - since >= timeout) expired.push(flow);
    }
    for (const flow of expired) {
      this.#quietSince.delete(flow);
      flow.idleExpired();
    }
    if (this.#quietSince.size > 0 && this.#timer === null) this.#arm();
  }
}
