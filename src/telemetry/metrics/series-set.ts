/**
 * The series of one labelled metric that ebb has written, by their label values, so those of a load
 * balancer or target group that no longer exists can be removed (prom-client keeps a series until it
 * is removed: `metric.remove(labels)`, prom-client README, "Labels"). A series' child is kept too, so
 * the request path finds it with one Map lookup instead of prom-client hashing the labels each time.
 */
export interface LabelledMetric<L extends string, C> {
  labels(labels: Partial<Record<L, string | number>>): C;
  remove(labels: Partial<Record<L, string | number>>): void;
}

export class SeriesSet<L extends string, C> {
  readonly #metric: LabelledMetric<L, C>;
  readonly #series = new Map<string, { readonly labels: Readonly<Record<L, string>>; readonly child: C }>();

  constructor(metric: LabelledMetric<L, C>) {
    this.#metric = metric;
  }

  /** The series with these label values, created (at 0) the first time. */
  get(labels: Readonly<Record<L, string>>): C {
    const key = Object.values<string>(labels).join('\u0000');
    let s = this.#series.get(key);
    if (s === undefined) {
      s = { labels: { ...labels }, child: this.#metric.labels(labels) };
      this.#series.set(key, s);
    }
    return s.child;
  }

  /** Removes every series for which `keep` is false. */
  prune(keep: (labels: Readonly<Record<L, string>>) => boolean): void {
    for (const [key, s] of this.#series) {
      if (keep(s.labels)) continue;
      this.#metric.remove(s.labels);
      this.#series.delete(key);
    }
  }
}
