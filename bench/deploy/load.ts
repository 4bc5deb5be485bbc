/**
 * A load for watching a deploy: a fixed number of keep-alive HTTP/1.1 clients (node:http, one Agent
 * with keepAlive), each sending GET to one URL again as soon as its previous answer is read, until
 * stopped. Every request is counted: ok when the status is 2xx and the body matches (`version N`),
 * failed otherwise, by kind (a connection refused or reset, a status, a timeout, an unexpected body).
 * No client retries: what fails here is what a client without retries sees.
 *
 * Requests are counted in named windows (`window('deploy')`), by the window in effect when they were
 * sent, each with its latency histogram (fixed memory), and per second of the run with the versions
 * that answered. As a command, for watching a deploy by hand:
 *
 *   node --import tsx bench/deploy/load.ts http://127.0.0.1:8080/ [--connections 16] [--seconds 600]
 *
 * prints a line a second and, when the time is up or on Ctrl-C, the totals; it exits 1 if any request failed.
 */
import http from 'node:http';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { LatencyHistogram } from './histogram.ts';

export interface LoadOptions {
  readonly url: string;
  /** Clients, each with at most one request in flight (default 16). */
  readonly connections?: number;
  /** A request with no answer this long fails as `timeout` (default 5000). */
  readonly timeoutMs?: number;
  /** What an ok body looks like; its first group is the version (default /^version (\S+)\n?$/). */
  readonly expect?: RegExp;
}

export interface WindowReport {
  readonly name: string;
  readonly requests: number;
  readonly ok: number;
  readonly failed: number;
  /** Failed requests by kind: `ECONNRESET`, `ECONNREFUSED`, `status 502`, `timeout`, `unexpected body`… */
  readonly failures: Readonly<Record<string, number>>;
  /** Latencies of every request of the window, ok or failed, in ms. */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** Seconds since the load started. */
  readonly from: number;
  readonly to: number;
}

export interface SecondReport {
  /** Seconds since the load started. */
  readonly second: number;
  readonly versions: Readonly<Record<string, number>>;
  readonly failed: number;
}

export interface LoadReport {
  readonly url: string;
  readonly connections: number;
  readonly total: WindowReport;
  readonly windows: readonly WindowReport[];
  readonly seconds: readonly SecondReport[];
}

/** Failure kinds kept apart; more distinct kinds than this are counted as `other`. */
const MAX_FAILURE_KINDS = 16;
/** Seconds kept in the per-second record (the newest are dropped beyond it). */
const MAX_SECONDS = 3600;

class Window {
  readonly histogram = new LatencyHistogram();
  readonly failures = new Map<string, number>();
  ok = 0;
  failed = 0;
  to: number | null = null;

  constructor(
    readonly name: string,
    readonly from: number,
  ) {}

  count(ms: number, failure: string | null): void {
    this.histogram.record(ms);
    if (failure === null) {
      this.ok++;
      return;
    }
    this.failed++;
    const kind = this.failures.has(failure) || this.failures.size < MAX_FAILURE_KINDS ? failure : 'other';
    this.failures.set(kind, (this.failures.get(kind) ?? 0) + 1);
  }

  /** This window's counts added to another's. */
  addTo(into: Window): void {
    into.histogram.add(this.histogram);
    into.ok += this.ok;
    into.failed += this.failed;
    for (const [k, n] of this.failures) into.failures.set(k, (into.failures.get(k) ?? 0) + n);
  }

  report(now: number): WindowReport {
    const h = this.histogram;
    return {
      name: this.name,
      requests: this.ok + this.failed,
      ok: this.ok,
      failed: this.failed,
      failures: Object.fromEntries(this.failures),
      p50: h.quantile(0.5),
      p99: h.quantile(0.99),
      max: h.count === 0 ? NaN : h.max,
      from: this.from,
      to: this.to ?? now,
    };
  }
}

export class Load {
  readonly #url: URL;
  readonly #connections: number;
  readonly #timeoutMs: number;
  readonly #expect: RegExp;
  readonly #agent: http.Agent;
  readonly #startedAt = performance.now();
  readonly #total = new Window('total', 0);
  readonly #windows: Window[] = [];
  readonly #seconds: Array<{ versions: Map<string, number>; failed: number }> = [];
  #current: Window;
  #stopping = false;
  readonly #clients: Array<Promise<void>>;

  constructor(options: LoadOptions) {
    this.#url = new URL(options.url);
    this.#connections = options.connections ?? 16;
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#expect = options.expect ?? /^version (\S+)\n?$/;
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: this.#connections });
    this.#current = new Window('load', 0);
    this.#windows.push(this.#current);
    this.#clients = Array.from({ length: this.#connections }, () => this.#client());
  }

  /** Seconds since the load started. */
  elapsed(): number {
    return (performance.now() - this.#startedAt) / 1000;
  }

  /** Requests sent from now on are counted in a new window of this name. */
  window(name: string): void {
    const now = this.elapsed();
    this.#current.to = now;
    this.#current = new Window(name, now);
    this.#windows.push(this.#current);
  }

  /** What has been counted so far (requests in flight are not yet counted). */
  report(): LoadReport {
    const now = this.elapsed();
    return {
      url: this.#url.href,
      connections: this.#connections,
      total: this.#total.report(now),
      windows: this.#windows.map((w) => w.report(now)),
      seconds: this.#seconds.map((s, second) => ({ second, versions: Object.fromEntries(s.versions), failed: s.failed })),
    };
  }

  /**
   * The windows whose names start with `prefix` (`deploy` for `deploy 1`, `deploy 2`…) counted as one;
   * `from` and `to` are then the first one's start and the last one's end. Undefined when there is none.
   */
  merged(prefix: string): WindowReport | undefined {
    const chosen = this.#windows.filter((w) => w.name.startsWith(prefix));
    const first = chosen[0];
    const last = chosen.at(-1);
    if (first === undefined || last === undefined) return undefined;
    const sum = new Window(prefix, first.from);
    for (const w of chosen) w.addTo(sum);
    sum.to = last.to;
    return sum.report(this.elapsed());
  }

  /** Stops sending, waits for the requests in flight (each bounded by the timeout), and reports. */
  async stop(): Promise<LoadReport> {
    this.#stopping = true;
    await Promise.all(this.#clients);
    this.#current.to = this.elapsed();
    this.#agent.destroy();
    return this.report();
  }

  async #client(): Promise<void> {
    while (!this.#stopping) {
      const window = this.#current;
      const t0 = performance.now();
      const { failure, version } = await this.#request();
      const ms = performance.now() - t0;
      window.count(ms, failure);
      this.#total.count(ms, failure);
      this.#perSecond(version, failure);
      // A refused connection fails at once: pause a little rather than spin while nothing listens.
      if (failure !== null) await new Promise((r) => setTimeout(r, 5));
    }
  }

  #perSecond(version: string | null, failure: string | null): void {
    const second = Math.floor(this.elapsed());
    if (second >= MAX_SECONDS) return;
    while (this.#seconds.length <= second) this.#seconds.push({ versions: new Map(), failed: 0 });
    const bucket = this.#seconds[second];
    if (bucket === undefined) return;
    if (failure !== null) bucket.failed++;
    else if (version !== null) bucket.versions.set(version, (bucket.versions.get(version) ?? 0) + 1);
  }

  #request(): Promise<{ failure: string | null; version: string | null }> {
    return new Promise((resolve) => {
      let settled = false;
      const done = (failure: string | null, version: string | null = null): void => {
        if (settled) return;
        settled = true;
        resolve({ failure, version });
      };
      const req = http.request(this.#url, { agent: this.#agent, method: 'GET' }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status < 200 || status > 299) return done(`status ${status}`);
          const match = this.#expect.exec(Buffer.concat(chunks).toString('utf8'));
          return match === null ? done('unexpected body') : done(null, match[1] ?? '');
        });
        // A response cut in the middle of its body ends with 'aborted', not 'end'.
        res.on('aborted', () => done('response aborted'));
      });
      req.setTimeout(this.#timeoutMs, () => {
        done('timeout');
        req.destroy();
      });
      req.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
      req.end();
    });
  }
}

/** One line for a window: requests, failures by kind, p50/p99. */
export function describeWindow(w: WindowReport): string {
  const kinds = Object.entries(w.failures)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  return (
    `${w.name} (${w.from.toFixed(1)}-${w.to.toFixed(1)} s): ${w.requests} requests, ${w.failed} failed` +
    `${kinds === '' ? '' : ` (${kinds})`}, p50 ${w.p50.toFixed(1)} ms, p99 ${w.p99.toFixed(1)} ms, max ${w.max.toFixed(1)} ms`
  );
}

/** The versions that answered, second by second: `12s v1 340 v2 95 failed 0`. */
export function describeSecond(s: SecondReport): string {
  const versions = Object.entries(s.versions)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([v, n]) => `v${v} ${n}`)
    .join(' ');
  return `${String(s.second).padStart(4)}s  ${versions === '' ? '-' : versions}  failed ${s.failed}`;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { connections: { type: 'string', default: '16' }, seconds: { type: 'string', default: '600' } },
  });
  const url = positionals[0];
  const connections = Number(values.connections);
  const seconds = Number(values.seconds);
  if (url === undefined || !Number.isInteger(connections) || connections < 1 || connections > 1024 || !(seconds > 0 && seconds <= 86_400)) {
    process.stderr.write('usage: node --import tsx bench/deploy/load.ts URL [--connections 1-1024] [--seconds N]\n');
    process.exit(2);
  }
  const load = new Load({ url, connections });
  let printed = 0;
  const ticker = setInterval(() => {
    const report = load.report();
    for (; printed < report.seconds.length - 1; printed++) {
      const s = report.seconds[printed];
      if (s !== undefined) process.stdout.write(`${describeSecond(s)}\n`);
    }
  }, 250);
  let finish: () => void = () => {};
  const finished = new Promise<void>((r) => (finish = r));
  const timer = setTimeout(finish, seconds * 1000);
  process.once('SIGINT', finish);
  process.once('SIGTERM', finish);
  await finished;
  clearTimeout(timer);
  clearInterval(ticker);
  const report = await load.stop();
  process.stdout.write(`${describeWindow(report.total)}\n`);
  process.exitCode = report.total.failed === 0 ? 0 : 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
