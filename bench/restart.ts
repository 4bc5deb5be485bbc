/**
 * Hot restarts under load, as a client sees them:
 *
 *   node --import tsx bench/restart.ts [--restarts 20] [--seconds N] [--workers N]
 *
 * `ebb serve` (from its sources, under tsx) on a config with two backends (node:http servers in this
 * process, answering at once) on 127.0.0.1. A load from this process: keep-alive clients (one
 * connection each) and clients opening a new connection per request, each with one request in
 * flight, no retries. After a few seconds of load, SIGUSR2 to ebb's pid, again and again: each time
 * the benchmark waits for the new process's `ebb:started` (it names its pid and its predecessor) and
 * for the old pid to be gone, then lets the load run two seconds before the next.
 *
 * Printed: restarts done, requests, failed requests (by error, with when they happened), non-200
 * answers, p50/p99 latency overall, while a restart runs (sent from the SIGUSR2 to the old process's
 * exit: the new one starting beside the old), within 1 s of a handover (from 1 s before the new
 * `ebb:started` to 1 s after the old process's exit) and between restarts (more than 1 s after an
 * old process's exit, before the next SIGUSR2), and the time from SIGUSR2 to the new `ebb:started` and to
 * the old process's exit (median, max). The run is bounded by --seconds (default 180): restarts not
 * done by then are not done. Every process is stopped by pid at the end (SIGTERM to the last ebb,
 * SIGKILL after 15 s); every process carrying the run's marker in its environment is watched, and
 * any still running at the end is reported and killed. Exits 1 when a request failed, a restart did
 * not complete, or a process was left.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LatencyHistogram } from './deploy/histogram.ts';
import { freePort, isRunning, ProcessWatch, sleep, waitFor } from './deploy/processes.ts';
import { median } from './run/table.ts';

const MARKER_ENV = 'BENCH_RESTART_RUN';
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RESTART_BOUND_MS = 15_000;
const PAUSE_AFTER_RESTART_MS = 2000;
const BASELINE_MS = 2000;
const REQUEST_TIMEOUT_MS = 5000;
const KEEP_ALIVE_CLIENTS = 4;
const NEW_CONNECTION_CLIENTS = 4;

const { values } = parseArgs({ options: { restarts: { type: 'string', default: '20' }, seconds: { type: 'string', default: '180' }, workers: { type: 'string', default: '1' } } });
const RESTARTS = Number(values.restarts);
const SECONDS = Number(values.seconds);
/** `ebb serve --workers`: with 2 or more, every restart hands each worker's sockets to the new ebb's workers. */
const WORKERS = Number(values.workers);
if (!Number.isInteger(RESTARTS) || RESTARTS < 1 || RESTARTS > 500 || !(SECONDS >= 10 && SECONDS <= 3600) || !Number.isInteger(WORKERS) || WORKERS < 1 || WORKERS > 16) {
  process.stderr.write('usage: node --import tsx bench/restart.ts [--restarts 1-500] [--seconds 10-3600] [--workers 1-16]\n');
  process.exit(2);
}
const deadline = performance.now() + SECONDS * 1000;
const t0 = performance.now();
const say = (line: string): void => void process.stderr.write(`[restart ${((performance.now() - t0) / 1000).toFixed(1)}s] ${line}\n`);

// ------------------------------------------------------------------ backends

async function backend(name: string): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name }).end(name));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function configYaml(listenerPort: number, targets: readonly number[]): string {
  return `loadBalancers:
  - name: web
    listeners:
      - protocol: HTTP
        port: ${listenerPort}
        address: 127.0.0.1
        defaultActions:
          - type: forward
            targetGroup: web
targetGroups:
  - name: web
    protocol: HTTP
    port: 80
    healthCheck:
      path: /
      intervalSeconds: 5
      timeoutSeconds: 2
      healthyThresholdCount: 2
      unhealthyThresholdCount: 2
    attributes:
      deregistration_delay.timeout_seconds: 30
    targets:
${targets.map((p) => `      - { id: 127.0.0.1, port: ${p} }`).join('\n')}
`;
}

// ------------------------------------------------------------------ ebb and its log

type LogLine = Record<string, unknown> & { readonly seenAt: number };

function startEbb(dir: string, configPath: string, marker: string): { pid: number; logs: LogLine[]; stderr(): string } {
  const args = ['--import', 'tsx', 'src/main/cli.ts', 'serve', '--config', configPath, '--admin', '127.0.0.1:0', '--state-dir', path.join(dir, 'state'), '--no-auth', '--workers', String(WORKERS)];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, [MARKER_ENV]: marker } });
  if (child.pid === undefined) throw new Error('could not spawn ebb serve');
  const logs: LogLine[] = [];
  const raw = fs.createWriteStream(path.join(dir, 'ebb.log'));
  let partial = '';
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-8000)));
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    raw.write(chunk);
    partial += chunk;
    const seenAt = performance.now();
    for (let nl = partial.indexOf('\n'); nl >= 0; nl = partial.indexOf('\n')) {
      const text = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      try {
        logs.push({ ...(JSON.parse(text) as Record<string, unknown>), seenAt });
      } catch {
        logs.push({ unparsed: text, seenAt });
      }
    }
  });
  child.on('close', () => raw.end());
  return { pid: child.pid, logs, stderr: () => err };
}

// ------------------------------------------------------------------ load

interface Sample {
  /** performance.now() when sent. */
  readonly sentAt: number;
  readonly ms: number;
  /** null: a 200. Else the error code or `status N`. */
  readonly failure: string | null;
  readonly keepAlive: boolean;
}

function once(port: number, agent: http.Agent | false): Promise<string | null> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? null : `status ${res.statusCode}`));
      res.on('aborted', () => resolve('response aborted'));
      res.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

function startLoad(port: number): { samples: Sample[]; stop(): Promise<void> } {
  const samples: Sample[] = [];
  let stopping = false;
  const client = async (keepAlive: boolean): Promise<void> => {
    const agent = keepAlive ? new http.Agent({ keepAlive: true, maxSockets: 1 }) : false;
    while (!stopping && performance.now() < deadline) {
      const sentAt = performance.now();
      const failure = await once(port, agent);
      samples.push({ sentAt, ms: performance.now() - sentAt, failure, keepAlive });
      if (failure !== null) await sleep(5);
    }
    if (agent !== false) agent.destroy();
  };
  const clients = [...Array.from({ length: KEEP_ALIVE_CLIENTS }, () => client(true)), ...Array.from({ length: NEW_CONNECTION_CLIENTS }, () => client(false))];
  return {
    samples,
    stop: async () => {
      stopping = true;
      await Promise.all(clients);
    },
  };
}

// ------------------------------------------------------------------ the run

interface Restart {
  readonly old: number;
  readonly pid: number;
  readonly signalledAt: number;
  readonly startedMs: number;
  readonly exitedMs: number;
}

/** Every SIGUSR2 sent, completed or not: what a failed request is reported against. */
const signals: Array<{ readonly old: number; readonly at: number }> = [];

/** SIGUSR2 to `old`; resolves once a successor said ebb:started and `old` is gone, or with why not. */
async function restartOnce(ebb: ReturnType<typeof startEbb>, old: number): Promise<Restart | string> {
  const from = ebb.logs.length;
  const signalledAt = performance.now();
  signals.push({ old, at: signalledAt });
  process.kill(old, 'SIGUSR2');
  const bound = Math.min(RESTART_BOUND_MS, deadline - signalledAt);
  let started: LogLine | undefined;
  let exitedAt = 0;
  const end = signalledAt + bound;
  while (performance.now() < end && (started === undefined || exitedAt === 0)) {
    const lines = ebb.logs.slice(from);
    const failed = lines.find((l) => l['event'] === 'restart:failed');
    if (failed !== undefined) return `restart:failed ${JSON.stringify(failed)}`;
    started ??= lines.find((l) => l['event'] === 'ebb:started' && l['predecessor'] === old);
    if (exitedAt === 0 && !isRunning(old)) exitedAt = performance.now();
    await sleep(2);
  }
  if (started === undefined) return `no ebb:started from a successor of ${old} within ${(bound / 1000).toFixed(1)} s`;
  if (exitedAt === 0) return `the old process ${old} still runs ${(bound / 1000).toFixed(1)} s after SIGUSR2`;
  return { old, pid: Number(started['pid']), signalledAt, startedMs: started.seenAt - signalledAt, exitedMs: exitedAt - signalledAt };
}

function histogramOf(samples: readonly Sample[]): LatencyHistogram {
  const h = new LatencyHistogram();
  for (const s of samples) h.record(s.ms);
  return h;
}

const fmt = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-');

function report(samples: readonly Sample[], restarts: readonly Restart[], problem: string | null, pidsSeen: number, leftovers: readonly string[], ebbErrors: readonly LogLine[]): boolean {
  const inside = (s: Sample, from: (r: Restart) => number, to: (r: Restart) => number): boolean =>
    restarts.some((r) => s.sentAt >= r.signalledAt + from(r) && s.sentAt <= r.signalledAt + to(r));
  const during = samples.filter((s) => inside(s, () => 0, (r) => r.exitedMs));
  const handover = samples.filter((s) => inside(s, (r) => r.startedMs - 1000, (r) => r.exitedMs + 1000));
  const between = samples.filter((s) => !inside(s, () => 0, (r) => r.exitedMs + 1000));
  const restartsHit = new Set(
    samples.filter((s) => s.failure !== null).map((s) => signals.findLast((x) => x.at <= s.sentAt)?.at ?? -1),
  ).size;
  const failed = samples.filter((s) => s.failure !== null && !s.failure.startsWith('status '));
  const non200 = samples.filter((s) => s.failure?.startsWith('status ') === true);
  const kinds = new Map<string, number>();
  for (const s of [...failed, ...non200]) kinds.set(s.failure ?? '', (kinds.get(s.failure ?? '') ?? 0) + 1);
  const lines = [
    `\nHot restarts of ebb serve (SIGUSR2) under load: ${KEEP_ALIVE_CLIENTS} keep-alive and ${NEW_CONNECTION_CLIENTS} new-connection clients, no retries, 2 local backends, all on 127.0.0.1 (${os.cpus().length} CPUs)`,
    `restarts: ${restarts.length} of ${RESTARTS}${problem === null ? '' : ` (stopped: ${problem})`}`,
    `requests: ${samples.length} (keep-alive ${samples.filter((s) => s.keepAlive).length}, new connection ${samples.filter((s) => !s.keepAlive).length})`,
    `failed requests: ${failed.length}; non-200 answers: ${non200.length}${kinds.size === 0 ? '' : ` (${[...kinds].map(([k, n]) => `${k} ×${n}`).join(', ')})`}; restarts with a failed request: ${restartsHit} of ${signals.length}`,
  ];
  for (const s of [...failed, ...non200].slice(0, 20)) {
    const r = signals.findLast((x) => x.at <= s.sentAt);
    lines.push(`  ${s.failure ?? ''} (${s.keepAlive ? 'keep-alive' : 'new connection'}) sent ${r === undefined ? 'before the first SIGUSR2' : `${fmt(s.sentAt - r.at)} ms after SIGUSR2 to ${r.old}`}, failed after ${fmt(s.ms)} ms`);
  }
  lines.push('', '| latency (ms) | requests | p50 | p99 | max |', '|---|---|---|---|---|');
  for (const [name, set] of [
    ['overall', samples],
    ['while a restart runs (SIGUSR2 to the old exited)', during],
    ['within 1 s of a handover (new ebb:started - 1 s to old exited + 1 s)', handover],
    ['between restarts (over 1 s after the old exited)', between],
  ] as const) {
    const h = histogramOf(set);
    lines.push(`| ${name} | ${set.length} | ${fmt(h.quantile(0.5))} | ${fmt(h.quantile(0.99))} | ${fmt(h.count === 0 ? NaN : h.max)} |`);
  }
  const started = restarts.map((r) => r.startedMs);
  const exited = restarts.map((r) => r.exitedMs);
  lines.push(
    '',
    `SIGUSR2 → new ebb:started: median ${fmt(median(started))} ms, max ${fmt(Math.max(...started))} ms`,
    `SIGUSR2 → old process exited: median ${fmt(median(exited))} ms, max ${fmt(Math.max(...exited))} ms`,
    `processes carrying the run's marker in their environment: ${pidsSeen} seen; left running at the end: ${leftovers.length === 0 ? 'none' : leftovers.join('; ')}`,
    `ebb log lines at level error (or not JSON): ${ebbErrors.length}`,
    ...ebbErrors.slice(0, 10).map((l) => `  ${JSON.stringify(l)}`),
  );
  console.log(lines.join('\n'));
  return problem === null && failed.length === 0 && non200.length === 0 && leftovers.length === 0;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ebb-bench-restart-'));
  const marker = randomUUID();
  const watch = new ProcessWatch(MARKER_ENV, marker);
  const backends = [await backend('A'), await backend('B')];
  const listenerPort = await freePort();
  const configPath = path.join(dir, 'ebb.yaml');
  fs.writeFileSync(configPath, configYaml(listenerPort, backends.map((b) => b.port)));
  const ebb = startEbb(dir, configPath, marker);
  const pids = new Set<number>([ebb.pid]);
  let current = ebb.pid;
  const restarts: Restart[] = [];
  let load: ReturnType<typeof startLoad> | null = null;
  let problem: string | null = null;
  say(`ebb serve --workers ${WORKERS} (pid ${ebb.pid}) on 127.0.0.1:${listenerPort}, backends ${backends.map((b) => b.port).join(', ')}; log and state in ${dir}`);
  try {
    await waitFor('ebb:started', 30_000, () => {
      if (!isRunning(ebb.pid)) throw new Error(`ebb serve exited: ${ebb.stderr()}`);
      return ebb.logs.some((l) => l['event'] === 'ebb:started') ? true : undefined;
    }, 50);
    await waitFor('a 200 through the listener', 10_000, async () => ((await once(listenerPort, false)) === null ? true : undefined), 100);
    load = startLoad(listenerPort);
    await sleep(BASELINE_MS);
    for (let n = 1; n <= RESTARTS && problem === null; n++) {
      if (performance.now() + RESTART_BOUND_MS > deadline) problem = `--seconds ${SECONDS} reached`;
      else {
        const r = await restartOnce(ebb, current);
        if (typeof r === 'string') problem = r;
        else {
          restarts.push(r);
          pids.add(r.pid);
          current = r.pid;
          say(`restart ${n}: ${r.old} → ${r.pid}, started after ${fmt(r.startedMs)} ms, old gone after ${fmt(r.exitedMs)} ms`);
          await sleep(PAUSE_AFTER_RESTART_MS);
        }
      }
    }
    await sleep(Math.min(BASELINE_MS, Math.max(0, deadline - performance.now())));
  } catch (e) {
    problem = (e as Error).message;
  }
  if (problem !== null) say(`stopped: ${problem}`);
  await load?.stop();
  // The last ebb is stopped by its pid; a successor that a failed restart left is too.
  for (const l of ebb.logs) if (typeof l['successor'] === 'number') pids.add(l['successor']);
  for (const pid of pids) if (isRunning(pid)) process.kill(pid, 'SIGTERM');
  try {
    await waitFor('every ebb process to exit after SIGTERM', 15_000, () => ([...pids].some(isRunning) ? undefined : true), 50);
  } catch (e) {
    say(`${(e as Error).message}: SIGKILL`);
    for (const pid of pids) if (isRunning(pid)) process.kill(pid, 'SIGKILL');
  }
  const still = watch.stop();
  for (const pid of still) process.kill(pid, 'SIGKILL');
  const leftovers = still.map((pid) => `${pid} ${watch.seen.get(pid) ?? ''}`);
  await Promise.all(backends.map((b) => b.close()));
  const ebbErrors = ebb.logs.filter((l) => l['level'] === 'error' || 'unparsed' in l);
  const ok = report(load?.samples ?? [], restarts, problem, watch.seen.size, leftovers, ebbErrors);
  if (ok) fs.rmSync(dir, { recursive: true, force: true });
  else say(`kept ${dir} (ebb.log holds every line the ebb processes wrote)`);
  process.exitCode = ok ? 0 : 1;
}

await main();
