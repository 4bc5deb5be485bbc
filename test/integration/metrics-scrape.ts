/**
 * Reading `/metrics` in tests: the text is parsed by parse-prometheus-text-format (an npm parser of
 * the Prometheus text format, not ebb's own code), then looked up by name and labels.
 */
import parsePrometheusTextFormat, { type PrometheusFamily } from 'parse-prometheus-text-format';

export class Scrape {
  readonly families: ReadonlyMap<string, PrometheusFamily>;

  constructor(readonly text: string) {
    this.families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
  }

  /** The samples of a counter or gauge whose labels include `labels`, with their values. */
  samples(name: string, labels: Readonly<Record<string, string>> = {}): Array<{ labels: Readonly<Record<string, string>>; value: number }> {
    const family = this.families.get(name);
    if (family === undefined) return [];
    return family.metrics
      .filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
      .map((m) => ({ labels: m.labels ?? {}, value: Number(m.value) }));
  }

  /** The one sample with exactly these label values among those given, or undefined when there is none. */
  value(name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
    const found = this.samples(name, labels);
    if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} series`);
    return found[0]?.value;
  }

  /** The sum over the samples whose labels include `labels` (0 when none). */
  sum(name: string, labels: Readonly<Record<string, string>> = {}): number {
    return this.samples(name, labels).reduce((n, s) => n + s.value, 0);
  }

  type(name: string): PrometheusFamily['type'] | undefined {
    return this.families.get(name)?.type;
  }
}

/** GET /metrics on an admin endpoint; `token` is sent as a bearer token. */
export async function scrape(adminPort: number, token?: string): Promise<Scrape> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${text}`);
  return new Scrape(text);
}
