import type { Clock, TimerHandle } from '../../shared/clock.ts';
import { SlotSet, slotField } from '../../shared/slot-set.ts';

/** A flow as the idle sweep sees it. */
export interface IdleWatched {
  /** Set by the flow whenever a byte moves either way; the sweep reads and clears it. */
  moved: boolean;
  /** Called once, by the sweep, when nothing has moved for the timeout. */
  idleExpired(): void;
  /** The sweep's own: when (clock ms) it last saw the flow move, or when it was added. */
  quietSince: number;
  /** The sweep's own: the flow's index in its set (-1: not in it). */
  sweepSlot: number;
}

/**
 * The idle timeout of every flow of one listener, on one coarse ticker rather than a timer per flow
 * (as the HTTP listener checks header deadlines): a flow only sets a flag per read, and the sweep,
 * every quarter of the timeout (20 ms to 1 s), notes the flows that moved and expires those quiet
 * for the whole timeout. A flow is never expired early; it may be expired up to two ticks late (at
 * most 2 s on the default 350 s). The ticker runs only while the listener has flows. Each flow keeps
 * its own time and index, in a SlotSet rather than a Map (shared/slot-set.ts: flows come and go by the
 * thousand, and a Map's rebuilt tables kept closed ones alive).
 */
export class IdleSweep<T extends IdleWatched> {
  readonly #flows = new SlotSet<T>(slotField('sweepSlot'));
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
    return this.#flows.size;
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
    flow.quietSince = this.#clock.now();
    this.#flows.add(flow);
    if (this.#timer === null) this.#arm();
  }

  delete(flow: T): void {
    this.#flows.delete(flow);
    if (this.#flows.size === 0) this.stop();
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
    for (const flow of this.#flows) {
      if (flow.moved) {
        flow.moved = false;
        flow.quietSince = now;
      } else if (now - flow.quietSince >= timeout) expired.push(flow);
    }
    for (const flow of expired) {
      this.#flows.delete(flow);
      flow.idleExpired();
    }
    if (this.#flows.size > 0 && this.#timer === null) this.#arm();
  }
}
