import type { Clock, TimerHandle } from '../shared/clock.ts';

/** One point of a drain's work over time. */
export interface DrainSample {
  /** Milliseconds since the drain began. */
  readonly elapsedMs: number;
  /** HTTP requests in flight to the target, over every data plane. */
  readonly requestsInFlight: number;
  /** Upgraded (WebSocket) connections open to it. */
  readonly tunnelsOpen: number;
}

/** The most samples a series keeps: enough for a small chart, small enough to keep with 1000 records. */
export const MAX_DRAIN_SAMPLES = 120;
/** The first sampling interval; it doubles each time the series is thinned. */
export const FIRST_SAMPLE_INTERVAL_MS = 250;

/**
 * The requests in flight and tunnels open of one drain over time, so a person can see how it drained
 * (the dashboard draws it against the deadline). Bounded whatever the drain's length: sampled every
 * 250 ms at first; when the series would pass `max` samples every other one is dropped and the
 * interval doubles, so a drain of any length keeps at most `max` evenly spaced samples, the first and
 * the newest included. A one-hour drain ends with a sample about every minute.
 */
export class DrainSeries {
  readonly #max: number;
  #samples: DrainSample[] = [];
  #intervalMs: number;

  /** `max` must be even, so thinning keeps the newest sample. */
  constructor(max = MAX_DRAIN_SAMPLES, firstIntervalMs = FIRST_SAMPLE_INTERVAL_MS) {
    this.#max = max;
    this.#intervalMs = firstIntervalMs;
  }

  /** How long until the next sample is due. */
  get intervalMs(): number {
    return this.#intervalMs;
  }

  add(sample: DrainSample): void {
    const last = this.#samples.at(-1);
    // Time never runs back within one series (a wall-clock step must not draw a loop).
    const elapsedMs = Math.max(0, last?.elapsedMs ?? 0, Math.round(sample.elapsedMs));
    this.#samples.push({ elapsedMs, requestsInFlight: sample.requestsInFlight, tunnelsOpen: sample.tunnelsOpen });
    if (this.#samples.length > this.#max) {
      this.#samples = this.#samples.filter((_, i) => i % 2 === 0);
      this.#intervalMs *= 2;
    }
  }

  /** A copy of the samples, oldest first. */
  samples(): DrainSample[] {
    return [...this.#samples];
  }
}

/**
 * The series of the drains in progress, each sampled on its own timer until it is stopped. Kept beside
 * the drains rather than in their state so that only the drains room and the records know about it.
 */
export class DrainSampler {
  readonly #clock: Clock;
  readonly #running = new Map<string, { series: DrainSeries; startedAt: number; timer: TimerHandle | null }>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /**
   * Starts sampling the drain of `key` that began at `startedAt` (wall ms), at once and then on its
   * timer; `read` gives the target's work now, or null once the drain is over (the sampler stops).
   */
  start(key: string, startedAt: number, read: () => { requests: number; tunnels: number } | null): void {
    this.stop(key);
    const entry = { series: new DrainSeries(), startedAt, timer: null as TimerHandle | null };
    this.#running.set(key, entry);
    const sample = (): void => {
      if (this.#running.get(key) !== entry) return;
      const work = read();
      if (work === null) {
        this.stop(key);
        return;
      }
      entry.series.add({ elapsedMs: this.#clock.wallTime() - startedAt, requestsInFlight: work.requests, tunnelsOpen: work.tunnels });
      entry.timer = this.#clock.setTimer(entry.series.intervalMs, sample);
    };
    sample();
  }

  /** The samples so far of the drain of `key` (empty when none is sampled). */
  samples(key: string): DrainSample[] {
    return this.#running.get(key)?.series.samples() ?? [];
  }

  /** The series with a last sample of the work now, for the record of a drain that ends. */
  final(key: string, work: { requests: number; tunnels: number }): DrainSample[] {
    const entry = this.#running.get(key);
    if (entry === undefined) return [];
    const copy = new DrainSeries();
    for (const s of entry.series.samples()) copy.add(s);
    copy.add({ elapsedMs: this.#clock.wallTime() - entry.startedAt, requestsInFlight: work.requests, tunnelsOpen: work.tunnels });
    return copy.samples();
  }

  stop(key: string): void {
    const entry = this.#running.get(key);
    if (entry === undefined) return;
    entry.timer?.cancel();
    this.#running.delete(key);
  }

  stopAll(): void {
    for (const key of [...this.#running.keys()]) this.stop(key);
  }
}
