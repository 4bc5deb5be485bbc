/**
 * Recent target response times per target group, for the recommended deregistration delay. Each group
 * keeps a ring of its last `capacity` requests (their time, target response time and whole duration),
 * so memory is bounded by capacity × groups however busy ebb is; samples older than `maxAgeMs` are
 * left out of what is reported, so a quiet group's recommendation follows its recent behaviour.
 */
export interface ResponseTimeOptions {
  /** Samples kept per group (the newest). Default 4096. */
  readonly capacity?: number;
  /** Samples older than this are left out. Default 1 hour. */
  readonly maxAgeMs?: number;
  /** Groups kept at most; the one that reported longest ago is dropped first. Default 1024. */
  readonly maxGroups?: number;
}

export const DEFAULT_RESPONSE_TIME_CAPACITY = 4096;
export const DEFAULT_RESPONSE_TIME_MAX_AGE_MS = 60 * 60 * 1000;

/** What a group's window holds now. */
export interface ResponseTimeSummary {
  readonly sampleSize: number;
  /** Wall-clock ms of the oldest and newest sample counted; null without samples. */
  readonly oldestAt: number | null;
  readonly newestAt: number | null;
  /** p99 of the target response time (request sent → response head received), ms; null without samples. */
  readonly p99TargetResponseMs: number | null;
  /** p99 of the whole request (head received → response sent), ms: what a drain waits for; null without samples. */
  readonly p99RequestDurationMs: number | null;
}

class Ring {
  readonly at: Float64Array;
  readonly response: Float64Array;
  readonly duration: Float64Array;
  next = 0;
  size = 0;
  lastAt = 0;

  constructor(capacity: number) {
    this.at = new Float64Array(capacity);
    this.response = new Float64Array(capacity);
    this.duration = new Float64Array(capacity);
  }
}

export class ResponseTimes {
  readonly capacity: number;
  readonly maxAgeMs: number;
  readonly #maxGroups: number;
  readonly #rings = new Map<string, Ring>();

  constructor(options: ResponseTimeOptions = {}) {
    this.capacity = options.capacity ?? DEFAULT_RESPONSE_TIME_CAPACITY;
    this.maxAgeMs = options.maxAgeMs ?? DEFAULT_RESPONSE_TIME_MAX_AGE_MS;
    this.#maxGroups = options.maxGroups ?? 1024;
  }

  /** One request a target of the group answered: when it ended (wall ms), its target response time and its duration. */
  record(targetGroupArn: string, at: number, targetResponseMs: number, durationMs: number): void {
    let ring = this.#rings.get(targetGroupArn);
    if (ring === undefined) {
      if (this.#rings.size >= this.#maxGroups) this.#dropStalest();
      ring = new Ring(this.capacity);
      this.#rings.set(targetGroupArn, ring);
    }
    ring.at[ring.next] = at;
    ring.response[ring.next] = targetResponseMs;
    ring.duration[ring.next] = Math.max(durationMs, targetResponseMs);
    ring.next = (ring.next + 1) % this.capacity;
    ring.size = Math.min(ring.size + 1, this.capacity);
    ring.lastAt = at;
  }

  /** Forgets a group (deleted). */
  forget(targetGroupArn: string): void {
    this.#rings.delete(targetGroupArn);
  }

  /** The group's samples not older than maxAgeMs at `now` (wall ms). */
  summary(targetGroupArn: string, now: number): ResponseTimeSummary {
    const ring = this.#rings.get(targetGroupArn);
    const responses: number[] = [];
    const durations: number[] = [];
    let oldestAt: number | null = null;
    let newestAt: number | null = null;
    if (ring !== undefined) {
      const since = now - this.maxAgeMs;
      for (let i = 0; i < ring.size; i++) {
        const at = ring.at[i] ?? 0;
        if (at < since) continue;
        responses.push(ring.response[i] ?? 0);
        durations.push(ring.duration[i] ?? 0);
        oldestAt = oldestAt === null ? at : Math.min(oldestAt, at);
        newestAt = newestAt === null ? at : Math.max(newestAt, at);
      }
    }
    return {
      sampleSize: responses.length,
      oldestAt,
      newestAt,
      p99TargetResponseMs: percentile(responses, 99),
      p99RequestDurationMs: percentile(durations, 99),
    };
  }

  #dropStalest(): void {
    let stalest: string | undefined;
    let at = Infinity;
    for (const [arn, ring] of this.#rings) {
      if (ring.lastAt < at) {
        at = ring.lastAt;
        stalest = arn;
      }
    }
    if (stalest !== undefined) this.#rings.delete(stalest);
  }
}

/**
 * The nearest-rank percentile: the smallest value with at least p % of the values at or below it
 * (https://en.wikipedia.org/wiki/Percentile#The_nearest-rank_method). It is always an observed value,
 * never an interpolation, so the p99 of fewer than 100 samples is their maximum. Null for no values.
 */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] ?? null;
}
