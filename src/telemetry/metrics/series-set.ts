import type { Metric, Registry } from 'prom-client';

/**
 * Labelled counters and histograms whose series are plain objects: the request path adds to a number
 * in a series it already holds, and the exposition reads the series when Prometheus scrapes.
 *
 * Why not prom-client's own Counter and Histogram for these: each `inc`/`observe` there, through a
 * child from `labels()` too, builds a string of every label name and value and looks it up in an
 * object (prom-client 15, lib/counter.js `incWithoutExemplar`, lib/histogram.js `observe`), which
 * cost a few microseconds per request for the six series a request touches. Here a caller that keeps
 * its series (ebb-metrics.ts memoizes them per listener and target group) pays one addition. The
 * families register themselves in a prom-client Registry as metrics (`get()` answers what prom-client's
 * Counter and Histogram answer, field for field), so `/metrics` is written by prom-client as before,
 * next to its own Gauges; series-set.test.ts checks the text is the same as theirs.
 *
 * A series exists from its first `series(labels)` (as prom-client's from its first `inc`/`observe`),
 * until `prune` removes it, and keeps the label values it was made with, so the series of a load
 * balancer or target group that no longer exists can be removed (prom-client keeps a series until it
 * is removed).
 */

/** One series of a counter. */
export class CounterSeries {
  value = 0;

  inc(by = 1): void {
    // As prom-client: a counter never goes down, and a value that is not a number is refused.
    if (!(by >= 0 && by < Infinity)) throw new TypeError(`a counter only adds a finite number ≥ 0, not ${by}`);
    this.value += by;
  }
}

/** One series of a histogram: the count of observations in each bucket (not cumulative), their sum and count. */
export class HistogramSeries {
  readonly #upperBounds: readonly number[];
  /** Observations per bucket: `counts[i]` those ≤ `upperBounds[i]` and > the bound before it. */
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(upperBounds: readonly number[]) {
    this.#upperBounds = upperBounds;
    this.counts = upperBounds.map(() => 0);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`a histogram observes finite numbers, not ${value}`);
    const bounds = this.#upperBounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= (bounds[i] as number)) {
        this.counts[i] = (this.counts[i] as number) + 1;
        break;
      }
    }
    this.sum += value;
    this.count += 1;
  }
}

type Labels<L extends string> = Readonly<Record<L, string>>;

/** A sample as prom-client's metrics give it from `get()`. */
interface Sample {
  readonly value: number;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly metricName?: string;
}

export interface FamilyOptions<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  readonly registers: readonly Registry[];
  /** Called at each exposition before the series are read (prom-client's `collect`). */
  readonly collect?: () => void;
}

abstract class SeriesFamily<L extends string, S> {
  readonly name: string;
  readonly help: string;
  abstract readonly type: 'counter' | 'histogram';
  readonly aggregator = 'sum';
  readonly labelNames: readonly L[];
  readonly #collect: (() => void) | undefined;
  readonly #series = new Map<string, { readonly labels: Labels<L>; readonly series: S }>();

  constructor(options: FamilyOptions<L>) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames;
    this.#collect = options.collect;
    // The registry only calls `get()` and `reset()` and reads the fields above (prom-client's Metric
    // shape); its TypeScript type names prom-client's classes, hence the cast.
    for (const r of options.registers) r.registerMetric(this as unknown as Metric);
  }

  protected abstract make(): S;
  protected abstract samples(labels: Labels<L>, series: S, out: Sample[]): void;

  /** The series with these label values, made (at 0) the first time. Callers on the request path keep it. */
  series(labels: Labels<L>): S {
    const key = this.labelNames.map((n) => labels[n]).join('\u0000');
    let s = this.#series.get(key);
    if (s === undefined) {
      // In the family's label order, as the exposition writes them.
      const own = Object.fromEntries(this.labelNames.map((n) => [n, labels[n]])) as Labels<L>;
      s = { labels: own, series: this.make() };
      this.#series.set(key, s);
    }
    return s.series;
  }

  /** Removes every series for which `keep` is false; a caller holding one must let it go. Returns how many were removed. */
  prune(keep: (labels: Labels<L>) => boolean): number {
    let removed = 0;
    for (const [key, s] of this.#series) {
      if (keep(s.labels)) continue;
      this.#series.delete(key);
      removed++;
    }
    return removed;
  }

  /** prom-client's `Registry#resetMetrics`. */
  reset(): void {
    this.#series.clear();
  }

  /** What prom-client's metrics answer: the registry writes the exposition from it. */
  async get(): Promise<{ name: string; help: string; type: 'counter' | 'histogram'; aggregator: 'sum'; values: Sample[] }> {
    this.#collect?.();
    const values: Sample[] = [];
    for (const { labels, series } of this.#series.values()) this.samples(labels, series, values);
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

export class CounterFamily<L extends string> extends SeriesFamily<L, CounterSeries> {
  readonly type = 'counter';

  protected make(): CounterSeries {
    return new CounterSeries();
  }

  protected samples(labels: Labels<L>, s: CounterSeries, out: Sample[]): void {
    out.push({ value: s.value, labels });
  }
}

export class HistogramFamily<L extends string> extends SeriesFamily<L, HistogramSeries> {
  readonly type = 'histogram';
  readonly upperBounds: readonly number[];

  constructor(options: FamilyOptions<L> & { readonly buckets: readonly number[] }) {
    super(options);
    this.upperBounds = [...options.buckets].sort((a, b) => a - b);
  }

  protected make(): HistogramSeries {
    return new HistogramSeries(this.upperBounds);
  }

  /** As prom-client's Histogram `get()`: each bucket cumulative with `le` first, then `+Inf`, `_sum` and `_count`. */
  protected samples(labels: Labels<L>, s: HistogramSeries, out: Sample[]): void {
    const bucket = `${this.name}_bucket`;
    let acc = 0;
    for (let i = 0; i < this.upperBounds.length; i++) {
      acc += s.counts[i] as number;
      out.push({ value: acc, metricName: bucket, labels: { le: this.upperBounds[i] as number, ...labels } });
    }
    out.push({ value: s.count, metricName: bucket, labels: { le: '+Inf', ...labels } });
    out.push({ value: s.sum, metricName: `${this.name}_sum`, labels: { ...labels } });
    out.push({ value: s.count, metricName: `${this.name}_count`, labels: { ...labels } });
  }
}
