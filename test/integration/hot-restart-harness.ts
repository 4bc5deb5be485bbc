/**
 * What the hot-restart tests share: `ebb serve` and every process that replaces it run as one family
 * under a small Python subreaper (prctl PR_SET_CHILD_SUBREAPER), to which a successor is reparented
 * once its parent has exited; it reaps each and prints `{"event":"reaper:exit","pid","code"}` into the
 * same pipe as ebb's log lines (a negative code is the signal that killed it). Also a bounded load of
 * keep-alive and new-connection clients, and a backend that holds `/hold` requests until released.
 * Cleanup kills every pid seen (from `ebb:started`, `restart:starting` and `worker:start` lines), then the subreaper.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import type { TestContext } from 'node:test';
import { DescribeTargetHealthCommand, type ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import type { LogLine } from '../support/ebb-process.ts';
import { ACCESS_KEY_ID, SECRET_ACCESS_KEY } from './api-harness.ts';
import { sign } from './ebb-api-harness.ts';
import { isLive, readProcStat } from '../../src/instances/proc-stat.ts';
import { takesCap, YOUNG_GENERATION_OPTION } from '../../src/shared/young-generation.ts';
import { startBackend, type Backend } from '../support/backends.ts';
import { commandLine } from '../support/processes.ts';
import { CLI, Cleanup, get, REPO_ROOT, settle, waitFor } from './harness.ts';

export const REAPER = `
import ctypes, json, os, sys
# One write per line: the ebb processes write to the same pipe, and print() may split a line from its newline.
def say(fields): os.write(1, (json.dumps(fields) + '\\n').encode())
if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0: sys.exit('prctl(PR_SET_CHILD_SUBREAPER) failed')
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
say({'event': 'reaper:spawned', 'pid': pid})
while True:
    try:
        done, status = os.wait()
    except ChildProcessError:
        break
    say({'event': 'reaper:exit', 'pid': done, 'code': os.waitstatus_to_exitcode(status)})
`;

export const skip = process.platform !== 'linux' ? 'needs Linux (a subreaper)' : spawnSync('python3', ['--version']).status !== 0 ? 'needs python3 (the subreaper)' : false;

/** `ebb serve` and every process that hot restarts replace it with, as one family under the subreaper. */
export interface Family {
  readonly logs: LogLine[];
  /** Every ebb pid seen. */
  readonly pids: Set<number>;
  /** Every data-plane worker pid seen (`worker:start`, with `--workers 2` or more). */
  readonly workerPids: Set<number>;
  /** How each reaped ebb process ended: exit code, or minus the signal. */
  readonly exits: Map<number, number>;
  stderr(): string;
  /** The first line from index `from` on matching `pred`, or null after `ms`. */
  waitForLog(pred: (l: LogLine) => boolean, ms: number, from?: number): Promise<LogLine | null>;
  /** Resolves once the pipe is closed: no process of the family is left. */
  readonly closed: Promise<void>;
  tail(): string;
}

/** In ebb's own process (`--workers 1`) unless `args` say how many workers. */
export function spawnFamily(c: Cleanup, args: readonly string[]): Family {
  const workers = args.some((a) => a === '--workers' || a.startsWith('--workers=')) ? [] : ['--workers', '1'];
  const root = spawn('python3', ['-c', REAPER, process.execPath, '--import', 'tsx', CLI, 'serve', ...workers, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, EBB_ACCESS_KEY_ID: ACCESS_KEY_ID, EBB_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY },
  });
  const logs: LogLine[] = [];
  const pids = new Set<number>();
  const workerPids = new Set<number>();
  const exits = new Map<number, number>();
  let partial = '';
  let err = '';
  root.stdout.setEncoding('utf8');
  root.stderr.setEncoding('utf8');
  root.stderr.on('data', (d: string) => (err += d));
  root.stdout.on('data', (chunk: string) => {
    partial += chunk;
    for (let nl = partial.indexOf('\n'); nl >= 0; nl = partial.indexOf('\n')) {
      const text = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { unparsed: text };
      }
      logs.push(line);
      const pid = line['event'] === 'restart:starting' ? line['successor'] : line['pid'];
      if (typeof pid !== 'number') continue;
      if (line['event'] === 'reaper:exit') exits.set(pid, Number(line['code']));
      else if (line['event'] === 'worker:start') workerPids.add(pid);
      else if (['reaper:spawned', 'ebb:started', 'restart:starting'].includes(String(line['event']))) pids.add(pid);
    }
  });
  const closed = new Promise<void>((r) => root.on('close', () => r()));
  c.add(async () => {
    for (const pid of [...pids, ...workerPids]) if (alive(pid)) tryKill(pid, 'SIGKILL');
    if (!(await waitFor(() => root.exitCode !== null, 2000)) && root.pid !== undefined) tryKill(root.pid, 'SIGKILL');
  });
  const family: Family = {
    logs,
    pids,
    workerPids,
    exits,
    stderr: () => err,
    closed,
    tail: () => `${logs.slice(-12).map((l) => JSON.stringify(l)).join('\n')}\n${err.slice(-1500)}`,
    waitForLog: async (pred, ms, from = 0) => {
      let found: LogLine | null = null;
      await waitFor(() => (found = logs.slice(from).find(pred) ?? null) !== null, ms, 10);
      return found;
    },
  };
  return family;
}

/** Whether `pid` runs: a zombie (exited, not yet reaped) counts as gone. */
export function alive(pid: number): boolean {
  return isLive(readProcStat(pid));
}

export function tryKill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // gone already
  }
}

export interface Restarted {
  readonly pid: number;
  readonly signalledAt: number;
  readonly startedAt: number;
  /** When the old process was seen reaped. */
  readonly oldExitedAt: number;
}

/** SIGUSR2 to `old`; waits for its successor's `ebb:started` and its own exit 0, and checks both. */
export async function restart(f: Family, old: number, admin: string, ms = 12_000): Promise<Restarted> {
  const from = f.logs.length;
  const signalledAt = Date.now();
  process.kill(old, 'SIGUSR2');
  const started = await f.waitForLog((l) => l['event'] === 'ebb:started' && l['predecessor'] === old, ms, from);
  assert.ok(started !== null, `no successor of ${old} said ebb:started within ${ms} ms:\n${f.tail()}`);
  const startedAt = Date.now();
  const pid = started['pid'];
  assert.ok(typeof pid === 'number' && pid !== old, `ebb:started names its own pid: ${JSON.stringify(started)}`);
  assert.equal(started['admin'], admin, 'the successor serves the admin API on the same address');
  const argv = commandLine(pid);
  const capped = takesCap(['--import', 'tsx']);
  assert.equal(argv.includes(YOUNG_GENERATION_OPTION), capped, `the successor runs with the young generation cap where it lowers it (${capped}): ${argv.join(' ')}`);
  assert.ok(await waitFor(() => f.exits.has(old), ms, 10), `the old process ${old} did not exit within ${ms} ms:\n${f.tail()}`);
  const oldExitedAt = Date.now();
  assert.equal(f.exits.get(old), 0, `the old process ${old} exits 0:\n${f.tail()}`);
  assert.ok(f.logs.slice(from).some((l) => l['event'] === 'restart:handed-over' && l['successor'] === pid), `${old} logged restart:handed-over to ${pid}`);
  const done = await f.waitForLog((l) => l['event'] === 'restart:predecessor-done' && l['predecessor'] === old, 3000, from);
  assert.ok(done !== null, `${pid} logged restart:predecessor-done for ${old}`);
  return { pid, signalledAt, startedAt, oldExitedAt };
}

export interface Sample {
  readonly client: string;
  readonly sentAt: number;
  readonly doneAt: number;
  readonly status: number;
  readonly backend: string;
  readonly error: string | null;
}

/** Clients sending GETs back to back, each until stopped, its deadline, or `maxPerClient` requests. */
export function startLoad(port: number, o: { keepAlive: number; fresh: number; maxMs: number; maxPerClient: number }): { samples: Sample[]; endsAt: number; stop(): Promise<Sample[]> } {
  const samples: Sample[] = [];
  const end = Date.now() + o.maxMs;
  let stopped = false;
  const client = async (name: string, agent: http.Agent | undefined): Promise<void> => {
    for (let i = 0; !stopped && Date.now() < end && i < o.maxPerClient; i++) {
      const s = await settle(get(port, `/${name}-${i}`, agent, 5000));
      const r = s.reply;
      samples.push({ client: name, sentAt: r?.sentAt ?? s.at, doneAt: s.at, status: r?.status ?? 0, backend: r?.backend ?? '', error: s.error?.message ?? null });
    }
    agent?.destroy();
  };
  const clients = [
    ...Array.from({ length: o.keepAlive }, (_, k) => client(`ka${k}`, new http.Agent({ keepAlive: true, maxSockets: 1 }))),
    ...Array.from({ length: o.fresh }, (_, k) => client(`new${k}`, undefined)),
  ];
  return {
    samples,
    endsAt: end,
    stop: async () => {
      stopped = true;
      await Promise.all(clients);
      return samples;
    },
  };
}

export async function healthOf(client: ElasticLoadBalancingV2Client, tgArn: string, port: number): Promise<string> {
  const r = await client.send(new DescribeTargetHealthCommand({ TargetGroupArn: tgArn, Targets: [{ Id: '127.0.0.1', Port: port }] }));
  return r.TargetHealthDescriptions?.[0]?.TargetHealth?.State ?? '(none)';
}

/** GET on ebb's own API, signed; the parsed JSON. */
export async function ebbApi(admin: string, path: string): Promise<Record<string, unknown>> {
  const endpoint = `http://${admin}`;
  const headers = await sign(endpoint, 'GET', path, '', {}, { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY });
  const port = Number(admin.split(':')[1]);
  const reply = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(reply.status, 200, `${path}: ${reply.body}`);
  return JSON.parse(reply.body) as Record<string, unknown>;
}

/**
 * A backend that answers as the harness's do (body and X-Backend: its name), except `/hold`, which it
 * answers only at `release()`: a request kept in flight for exactly as long as a step needs, however
 * long the restart around it takes.
 */
export async function holdingBackend(name: string, c: Cleanup): Promise<{ backend: Backend; release: () => void }> {
  const held: Array<() => void> = [];
  const backend = await startBackend(name, {
    cleanup: c,
    handler: (req, res) => {
      const answer = (): void => void res.writeHead(200, { 'x-backend': name, 'content-type': 'text/plain' }).end(name);
      req.resume();
      req.on('end', () => (req.url === '/hold' ? held.push(answer) : answer()));
    },
  });
  return { backend, release: () => held.splice(0).forEach((answer) => answer()) };
}

export const failures = (samples: readonly Sample[]): string[] =>
  samples.filter((s) => s.error !== null || s.status !== 200).map((s) => `${s.client}: ${s.status} ${s.error ?? ''} (sent at ${s.sentAt}, failed at ${s.doneAt})`);


/** Steps of one test as subtests, each going on from where the one before left ebb: after a failure, the rest are skipped. */
export function stepper(t: TestContext): (name: string, fn: () => Promise<void>) => Promise<void> {
  let failed: string | null = null;
  return (name, fn) =>
    t.test(name, { skip: failed === null ? false : `step ${failed} failed` }, async () => {
      try {
        await fn();
      } catch (error) {
        failed = name.slice(0, name.indexOf('.'));
        throw error;
      }
    });
}
