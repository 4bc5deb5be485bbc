import type { RequestEndMessage } from './channels.ts';

/**
 * What a batch of `ebb:request:end` messages adds to ALB's request metrics, folded where they are
 * published: a worker (`ebb serve --workers N`) sends this digest to ebb's process every batch instead
 * of each message, when no access log there needs the messages themselves (docs/workers.md).
 *
 * Why: with workers, every request's message was serialized in its worker and parsed and published
 * again in ebb's process, about 6 µs of a worker's CPU and 7.6 µs of ebb's own per request (measured
 * with `npm run bench -- --workers 2 --profile`), on the cores the workers serve from. Folding costs a
 * worker two Map lookups and a few additions per request, and ebb's process reads one small record
 * per batch.
 *
 * The digest keeps exactly what the metrics count (request-metrics.ts reads it as it reads the
 * messages): per listener, its processed bytes and ebb's own answers by status; per target group under
 * it, the requests, the targets' statuses, the target response times in the metric's buckets, and
 * connection and TLS failures; and, for the recommended deregistration delay (response-time-feed.ts),
 * up to `DIGEST_SAMPLES` of the requests a target answered, chosen evenly from the batch.
 */

/**
 * Target response time buckets, in seconds: prom-client's defaults (5 ms to 10 s) and 30 s and 60 s
 * beyond, since ALB's idle timeout, the longest a target may take, is 60 s by default.
 */
export const RESPONSE_TIME_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Requests a target answered kept per digest, for the response-time window. */
export const DIGEST_SAMPLES = 256;

/** A sample: `[targetGroupArn, ended at (wall-clock ms), target response ms, duration ms]`. */
export type ResponseSample = readonly [string, number, number, number];

export interface RequestDigestMessage {
  /** Request ends folded into this digest. */
  readonly requests: number;
  readonly listeners: readonly ListenerDigest[];
  readonly samples: readonly ResponseSample[];
}

export interface ListenerDigest {
  readonly listenerArn: string;
  /** Bytes received and sent, heads and bodies. */
  readonly bytes: number;
  /** ebb's own answers of status 300 and above (no target status): `[status, count]`. */
  readonly elb: ReadonlyArray<readonly [number, number]>;
  readonly groups: readonly GroupDigest[];
}

export interface GroupDigest {
  readonly targetGroupArn: string;
  /** Requests given a target of this group. */
  readonly requests: number;
  /** The targets' statuses: `[status, count]`. */
  readonly targetStatus: ReadonlyArray<readonly [number, number]>;
  /** Target response times, in seconds: per `RESPONSE_TIME_BUCKETS` bucket (not cumulative), their sum and count. */
  readonly responseTime: { readonly counts: readonly number[]; readonly sum: number; readonly count: number };
  readonly connectionErrors: number;
  readonly tlsErrors: number;
}

/** Which target metric a request's error reason adds to, if any. */
export function targetFailureOf(errorReason: string | null): 'connection' | 'tls' | null {
  if (errorReason === null) return null;
  // `connect-refused` and `connect-timeout` are the data plane's kinds for a connection to the target
  // that was never established, `target-tls` for a TLS handshake with it that failed (errors.ts).
  if (errorReason.startsWith('connect-refused') || errorReason.startsWith('connect-timeout')) return 'connection';
  if (errorReason.startsWith('target-tls')) return 'tls';
  return null;
}

/** The bucket a response time (seconds) falls in; `RESPONSE_TIME_BUCKETS.length` beyond the last. */
export function responseTimeBucket(seconds: number): number {
  const bounds = RESPONSE_TIME_BUCKETS;
  for (let i = 0; i < bounds.length; i++) if (seconds <= (bounds[i] as number)) return i;
  return bounds.length;
}

interface GroupFold {
  requests: number;
  readonly targetStatus: Map<number, number>;
  readonly counts: number[];
  sum: number;
  count: number;
  connectionErrors: number;
  tlsErrors: number;
}

interface ListenerFold {
  bytes: number;
  readonly elb: Map<number, number>;
  readonly groups: Map<string, GroupFold>;
}

/**
 * Folds request ends until `take`. Bounded by what it folds: one entry per listener and target group
 * seen in the batch, one per distinct status, and `DIGEST_SAMPLES` samples.
 */
export class RequestDigest {
  #requests = 0;
  #listeners = new Map<string, ListenerFold>();
  #samples: ResponseSample[] = [];
  /** Requests a target answered in this batch (the reservoir's count). */
  #answered = 0;
  readonly #random: () => number;

  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  get size(): number {
    return this.#requests;
  }

  add(m: RequestEndMessage): void {
    this.#requests++;
    const l = this.#listenerFold(m.listenerArn);
    l.bytes += m.receivedBytes + m.sentBytes;
    if (m.targetKey !== null && m.targetGroupArn !== null) {
      const g = this.#groupFold(l, m.targetGroupArn);
      g.requests++;
      if (m.targetStatus !== null) g.targetStatus.set(m.targetStatus, (g.targetStatus.get(m.targetStatus) ?? 0) + 1);
      if (m.targetResponseMs >= 0) {
        const seconds = m.targetResponseMs / 1000;
        const bucket = responseTimeBucket(seconds);
        if (bucket < g.counts.length) g.counts[bucket] = (g.counts[bucket] as number) + 1;
        g.sum += seconds;
        g.count++;
      }
      const failure = targetFailureOf(m.errorReason);
      if (failure === 'connection') g.connectionErrors++;
      else if (failure === 'tls') g.tlsErrors++;
    }
    if (m.targetStatus === null && m.status >= 300) l.elb.set(m.status, (l.elb.get(m.status) ?? 0) + 1);
    if (m.fromTarget && m.targetGroupArn !== null && m.targetResponseMs >= 0 && Number.isFinite(m.requestTime) && Number.isFinite(m.durationMs)) this.#sample(m);
  }

  /**
   * Adds a digest made elsewhere (a worker's, which the ebb retiring at a hot restart passes on to the
   * next): its counts whole, its samples as if each were one answered request of this batch.
   */
  merge(d: RequestDigestMessage): void {
    this.#requests += d.requests;
    for (const ld of d.listeners) {
      const l = this.#listenerFold(ld.listenerArn);
      l.bytes += ld.bytes;
      for (const [status, n] of ld.elb) l.elb.set(status, (l.elb.get(status) ?? 0) + n);
      for (const gd of ld.groups) {
        const g = this.#groupFold(l, gd.targetGroupArn);
        g.requests += gd.requests;
        for (const [status, n] of gd.targetStatus) g.targetStatus.set(status, (g.targetStatus.get(status) ?? 0) + n);
        for (let i = 0; i < g.counts.length; i++) g.counts[i] = (g.counts[i] as number) + (gd.responseTime.counts[i] ?? 0);
        g.sum += gd.responseTime.sum;
        g.count += gd.responseTime.count;
        g.connectionErrors += gd.connectionErrors;
        g.tlsErrors += gd.tlsErrors;
      }
    }
    for (const sample of d.samples) this.#keep(sample);
  }

  /** The digest of everything added since the last `take` (null when nothing was), and a fresh start. */
  take(): RequestDigestMessage | null {
    if (this.#requests === 0) return null;
    const listeners: ListenerDigest[] = [];
    for (const [listenerArn, l] of this.#listeners) {
      const groups: GroupDigest[] = [];
      for (const [targetGroupArn, g] of l.groups) {
        groups.push({
          targetGroupArn,
          requests: g.requests,
          targetStatus: [...g.targetStatus],
          responseTime: { counts: g.counts, sum: g.sum, count: g.count },
          connectionErrors: g.connectionErrors,
          tlsErrors: g.tlsErrors,
        });
      }
      listeners.push({ listenerArn, bytes: l.bytes, elb: [...l.elb], groups });
    }
    const digest: RequestDigestMessage = { requests: this.#requests, listeners, samples: this.#samples };
    this.#requests = 0;
    this.#answered = 0;
    this.#listeners = new Map();
    this.#samples = [];
    return digest;
  }

  #listenerFold(listenerArn: string): ListenerFold {
    let l = this.#listeners.get(listenerArn);
    if (l === undefined) {
      l = { bytes: 0, elb: new Map(), groups: new Map() };
      this.#listeners.set(listenerArn, l);
    }
    return l;
  }

  #groupFold(l: ListenerFold, targetGroupArn: string): GroupFold {
    let g = l.groups.get(targetGroupArn);
    if (g === undefined) {
      g = { requests: 0, targetStatus: new Map(), counts: RESPONSE_TIME_BUCKETS.map(() => 0), sum: 0, count: 0, connectionErrors: 0, tlsErrors: 0 };
      l.groups.set(targetGroupArn, g);
    }
    return g;
  }

  #sample(m: RequestEndMessage): void {
    this.#keep([m.targetGroupArn as string, m.requestTime + m.durationMs, m.targetResponseMs, m.durationMs]);
  }

  /** Reservoir sampling: each answered request of the batch is kept with the same chance. */
  #keep(sample: ResponseSample): void {
    const seen = ++this.#answered;
    if (this.#samples.length < DIGEST_SAMPLES) {
      this.#samples.push(sample);
      return;
    }
    const slot = Math.floor(this.#random() * seen);
    if (slot < DIGEST_SAMPLES) this.#samples[slot] = sample;
  }
}

/** Says what is wrong with a digest that came over a link (it is read field by field by metrics), or null. */
export function digestProblem(v: unknown): string | null {
  if (!isRecord(v)) return 'is not an object';
  if (!isCount(v['requests'])) return "has no count 'requests'";
  const listeners = v['listeners'];
  const samples = v['samples'];
  if (!Array.isArray(listeners) || !Array.isArray(samples)) return "must have the lists 'listeners' and 'samples'";
  for (const l of listeners) {
    if (!isRecord(l) || typeof l['listenerArn'] !== 'string' || !isCount(l['bytes']) || !isPairs(l['elb']) || !Array.isArray(l['groups'])) {
      return 'has a listener that is not {listenerArn, bytes, elb, groups}';
    }
    for (const g of l['groups'] as unknown[]) {
      if (!isRecord(g) || typeof g['targetGroupArn'] !== 'string' || !isCount(g['requests']) || !isPairs(g['targetStatus'])) return 'has a target group that is not {targetGroupArn, requests, targetStatus, ...}';
      if (!isCount(g['connectionErrors']) || !isCount(g['tlsErrors'])) return 'has a target group without its error counts';
      const rt = g['responseTime'];
      if (!isRecord(rt) || !isCount(rt['count']) || !isFiniteNumber(rt['sum']) || (rt['sum'] as number) < 0) return 'has a target group whose responseTime is not {counts, sum, count}';
      const counts = rt['counts'];
      if (!Array.isArray(counts) || counts.length !== RESPONSE_TIME_BUCKETS.length || !counts.every(isCount)) {
        return `has response time counts that are not ${RESPONSE_TIME_BUCKETS.length} counts (one per bucket)`;
      }
      if ((counts as number[]).reduce((a, b) => a + b, 0) > (rt['count'] as number)) return 'has response time buckets holding more than its count';
    }
  }
  if (samples.length > DIGEST_SAMPLES) return `has more than ${DIGEST_SAMPLES} samples`;
  for (const s of samples) {
    if (!Array.isArray(s) || s.length !== 4 || typeof s[0] !== 'string' || !s.slice(1).every(isFiniteNumber) || (s[2] as number) < 0) {
      return 'has a sample that is not [targetGroupArn, endedAt, targetResponseMs, durationMs]';
    }
  }
  return null;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): boolean {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

function isFiniteNumber(v: unknown): boolean {
  return typeof v === 'number' && Number.isFinite(v);
}

function isPairs(v: unknown): boolean {
  return Array.isArray(v) && v.every((p) => Array.isArray(p) && p.length === 2 && Number.isSafeInteger(p[0]) && isCount(p[1]));
}
