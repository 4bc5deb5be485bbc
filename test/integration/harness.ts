/**
 * A harness for end-to-end tests: real ebb, real sockets on 127.0.0.1.
 *
 * - `tempDir()`: a directory per test, removed by `cleanup()`.
 * - `startBackend()`: a node:http backend on port 0 that records the requests it got, answers
 *   `/health` 200 (or 503 when `healthy` is false), `/slow?ms=N` after N ms, anything else at once,
 *   and echoes WebSocket messages (`ws`).
 * - `writeConfig()`: a YAML file in the issue's shape with the backends' ports.
 * - `startInProcess()`: `startEbb()` with authentication off, its log kept in memory.
 * - `spawnEbb()`: `ebb serve` as a child process, its JSON log lines parsed.
 * - `get()`: one HTTP request, with which backend answered and when.
 *
 * Everything started is registered with a `Cleanup` and stopped by `cleanup.run()` (call it in after()).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import type { TargetHealthDescription } from '../../src/control/inputs.ts';
import type { TargetStateEvent } from '../../src/control/events.ts';
import { startEbb, type Ebb } from '../../src/main/ebb.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = join(REPO_ROOT, 'src/main/cli.ts');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until `cond()` holds, checking every 5 ms, up to `ms`; returns whether it held. */
export async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(5);
  }
  return cond();
}

/** Resolves with `value` after `ms`, without keeping the process alive (for Promise.race). */
export function after<T>(ms: number, value: T): Promise<T> {
  return new Promise((r) => setTimeout(() => r(value), ms).unref());
}

// ------------------------------------------------------------------ cleanup

/** Stops what a test started, last first. */
export class Cleanup {
  readonly #steps: Array<() => Promise<unknown> | unknown> = [];

  add(step: () => Promise<unknown> | unknown): void {
    this.#steps.push(step);
  }

  async run(): Promise<void> {
    while (this.#steps.length > 0) {
      const step = this.#steps.pop();
      try {
        await step?.();
      } catch {
        // keep cleaning up
      }
    }
  }
}

/** A fresh directory in the OS temp dir, removed at cleanup. */
export async function tempDir(cleanup: Cleanup): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ebb-e2e-'));
  cleanup.add(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A port that was free a moment ago (bound on :0, then closed). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Whether a TCP connection to the port is refused (nothing listening). */
export function connectionRefused(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, timeoutMs);
    s.on('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve(false);
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code === 'ECONNREFUSED');
    });
  });
}

// ------------------------------------------------------------------ backends

export interface SeenRequest {
  readonly url: string;
  readonly at: number;
  /** When the response was fully written (0 while running). */
  finishedAt: number;
  /** The connection closed before the response was written. */
  aborted: boolean;
}

export interface Backend {
  readonly name: string;
  readonly port: number;
  /** Requests other than health checks, in arrival order. */
  readonly seen: SeenRequest[];
  /** Health checks answered, and when each arrived. */
  healthChecks: number;
  readonly healthCheckTimes: number[];
  /** Answer health checks with 200 (true) or 503 (false). */
  healthy: boolean;
  /** WebSocket connections accepted, and how many are open. */
  wsAccepted: number;
  wsOpen: number;
  /** Requests currently being answered. */
  inFlight(): number;
  /** TCP connections open to it now (ebb's pooled connections, health checks, tunnels). */
  openConnections(): number;
  /** When the last non-health response was finished or aborted (0 if none). */
  lastFinishedAt(): number;
  close(): Promise<void>;
}

/** A backend on 127.0.0.1:0 (see the file comment for what it answers). Body: its name. */
export async function startBackend(name: string, cleanup: Cleanup): Promise<Backend> {
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer();
  const backend: Backend = {
    name,
    port: 0,
    seen: [],
    healthChecks: 0,
    healthCheckTimes: [],
    healthy: true,
    wsAccepted: 0,
    wsOpen: 0,
    inFlight: () => backend.seen.filter((r) => r.finishedAt === 0 && !r.aborted).length,
    lastFinishedAt: () => Math.max(0, ...backend.seen.map((r) => r.finishedAt)),
    openConnections: () => open,
    close: async () => undefined,
  };
  let open = 0;
  server.on('connection', (socket: net.Socket) => {
    open++;
    socket.on('close', () => open--);
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://backend');
    if (url.pathname === '/health') {
      backend.healthChecks++;
      backend.healthCheckTimes.push(Date.now());
      res.statusCode = backend.healthy ? 200 : 503;
      res.end(backend.healthy ? 'ok' : 'failing');
      return;
    }
    const seen: SeenRequest = { url: req.url ?? '', at: Date.now(), finishedAt: 0, aborted: false };
    backend.seen.push(seen);
    res.on('finish', () => (seen.finishedAt = Date.now()));
    res.on('close', () => {
      if (seen.finishedAt === 0) {
        seen.aborted = true;
        seen.finishedAt = Date.now();
      }
    });
    const answer = (): void => {
      res.setHeader('X-Backend', name);
      res.setHeader('Content-Type', 'text/plain');
      res.end(name);
    };
    req.resume();
    req.on('end', () => {
      if (url.pathname === '/slow') {
        const ms = Math.min(Number(url.searchParams.get('ms') ?? '1000'), 30_000);
        const timer = setTimeout(() => {
          timers.delete(timer);
          if (!res.destroyed) answer();
        }, ms);
        timers.add(timer);
        res.on('close', () => {
          clearTimeout(timer);
          timers.delete(timer);
        });
        return;
      }
      answer();
    });
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => {
    backend.wsAccepted++;
    backend.wsOpen++;
    ws.on('close', () => backend.wsOpen--);
    ws.on('error', () => undefined);
    ws.on('message', (data, isBinary) => ws.send(isBinary ? data : `${name}:${String(data)}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  (backend as { port: number }).port = (server.address() as AddressInfo).port;
  backend.close = () =>
    new Promise<void>((resolve) => {
      for (const t of timers) clearTimeout(t);
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      server.close(() => resolve());
    });
  cleanup.add(() => backend.close());
  return backend;
}

// ------------------------------------------------------------------ configuration

export interface ConfigOptions {
  readonly listenerPort: number;
  /** Target ports (127.0.0.1). */
  readonly targets: readonly number[];
  /** deregistration_delay.timeout_seconds; default 10. */
  readonly delaySeconds?: number;
  readonly algorithm?: 'round_robin' | 'least_outstanding_requests';
  /** Load balancer attributes (e.g. ebb.shutdown_timeout.seconds). */
  readonly lbAttributes?: Readonly<Record<string, string | number>>;
  /** Health checks: fast as AWS allows (5 s interval, thresholds 2). `false` disables them. */
  readonly healthCheck?: boolean;
}

/** The configuration file text, in the shape of issue 2 §2. */
export function configYaml(o: ConfigOptions): string {
  const lbAttrs = Object.entries(o.lbAttributes ?? {});
  const health =
    o.healthCheck === false
      ? ['    healthCheck:', '      enabled: false']
      : [
          '    healthCheck:',
          '      path: /health',
          '      intervalSeconds: 5',
          '      timeoutSeconds: 2',
          '      healthyThresholdCount: 2',
          '      unhealthyThresholdCount: 2',
          '      matcher: "200-399"',
        ];
  return [
    'loadBalancers:',
    '  - name: web',
    ...(lbAttrs.length === 0 ? [] : ['    attributes:', ...lbAttrs.map(([k, v]) => `      ${k}: ${String(v)}`)]),
    '    listeners:',
    '      - protocol: HTTP',
    `        port: ${o.listenerPort}`,
    '        address: 127.0.0.1',
    '        defaultActions:',
    '          - type: forward',
    '            targetGroup: web',
    'targetGroups:',
    '  - name: web',
    '    protocol: HTTP',
    '    port: 80',
    ...health,
    '    attributes:',
    `      deregistration_delay.timeout_seconds: ${o.delaySeconds ?? 10}`,
    `      load_balancing.algorithm.type: ${o.algorithm ?? 'round_robin'}`,
    ...(o.targets.length === 0 ? ['    targets: []'] : ['    targets:', ...o.targets.map((p) => `      - { id: 127.0.0.1, port: ${p} }`)]),
    '',
  ].join('\n');
}

/** Writes `text` to `path` atomically (a reader never sees half a file). */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

export async function writeConfig(dir: string, o: ConfigOptions, name = 'ebb.yaml'): Promise<string> {
  const path = join(dir, name);
  await writeFileAtomic(path, configYaml(o));
  return path;
}

// ------------------------------------------------------------------ ebb in process

export interface InProcess {
  readonly ebb: Ebb;
  readonly dir: string;
  readonly configPath: string;
  readonly listenerPort: number;
  readonly tgArn: string;
  readonly logs: Array<Record<string, unknown>>;
  /** Target state events, with the wall time they were seen. */
  readonly states: Array<TargetStateEvent & { seenAt: number }>;
  health(port: number): TargetHealthDescription;
  /** Ports of the targets the group lists (registered or draining). */
  listed(): number[];
  waitForState(port: number, state: string, ms: number): Promise<boolean>;
}

export interface InProcessOptions extends Omit<ConfigOptions, 'listenerPort' | 'targets'> {
  readonly backends: readonly Backend[];
}

/** ebb, started with `startEbb()` from a config file naming `backends`; stopped at cleanup. */
export async function startInProcess(cleanup: Cleanup, o: InProcessOptions): Promise<InProcess> {
  const dir = await tempDir(cleanup);
  const listenerPort = await freePort();
  const configPath = await writeConfig(dir, { ...o, listenerPort, targets: o.backends.map((b) => b.port) });
  const logs: Array<Record<string, unknown>> = [];
  const ebb = await startEbb({
    configPath,
    stateDir: join(dir, 'state'),
    adminAddress: '127.0.0.1:0',
    authentication: false,
    env: {},
    log: (entry) => logs.push(entry),
  });
  cleanup.add(async () => {
    const timer = setTimeout(() => ebb.dataPlane.destroy(), 2000);
    await ebb.shutdown();
    clearTimeout(timer);
  });
  const tg = ebb.control.describeTargetGroups({ names: ['web'] })[0];
  if (tg === undefined) throw new Error('target group web was not created');
  const states: InProcess['states'] = [];
  ebb.control.events.on('target:state', (e) => states.push({ ...e, seenAt: Date.now() }));
  const health = (port: number): TargetHealthDescription => {
    const d = ebb.control.describeTargetHealth(tg.arn, [{ id: '127.0.0.1', port }])[0];
    if (d === undefined) throw new Error(`no health for ${port}`);
    return d;
  };
  return {
    ebb,
    dir,
    configPath,
    listenerPort,
    tgArn: tg.arn,
    logs,
    states,
    health,
    listed: () => ebb.control.describeTargetHealth(tg.arn).map((d) => d.port),
    waitForState: (port, state, ms) => waitFor(() => health(port).health.state === state, ms),
  };
}

// ------------------------------------------------------------------ ebb as a process

export interface Spawned {
  readonly child: ChildProcess;
  readonly logs: Array<Record<string, unknown>>;
  stderr(): string;
  stdout(): string;
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  exitCode(): number | string | null;
  /** Waits for a log line matching `pred`; returns it, or null after `ms`. */
  waitForLog(pred: (line: Record<string, unknown>) => boolean, ms: number): Promise<Record<string, unknown> | null>;
}

/**
 * `ebb serve` as a child process (tsx, from the repository); killed at cleanup if still running.
 * `env` is added to this process's environment (default: no admin credentials).
 */
export function spawnEbb(cleanup: Cleanup, args: readonly string[], env: NodeJS.ProcessEnv = { EBB_ACCESS_KEY_ID: '', EBB_SECRET_ACCESS_KEY: '' }): Spawned {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve', ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const logs: Array<Record<string, unknown>> = [];
  let out = '';
  let partial = '';
  let err = '';
  let code: number | string | null = null;
  child.stdout?.setEncoding('utf8');
  child.stderr?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    out += chunk;
    partial += chunk;
    let nl = partial.indexOf('\n');
    while (nl >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ unparsed: line });
      }
      nl = partial.indexOf('\n');
    }
  });
  child.stderr?.on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (c, signal) => {
      code = c ?? signal ?? 'unknown';
      resolve(code);
    });
  });
  cleanup.add(async () => {
    if (code !== null) return;
    child.kill('SIGKILL');
    await exited;
  });
  return {
    child,
    logs,
    stderr: () => err,
    stdout: () => out,
    exited,
    exitCode: () => code,
    waitForLog: async (pred, ms) => {
      const end = Date.now() + ms;
      let from = 0;
      while (Date.now() < end) {
        for (; from < logs.length; from++) {
          const line = logs[from];
          if (line !== undefined && pred(line)) return line;
        }
        if (code !== null) return null;
        await sleep(10);
      }
      return logs.find(pred) ?? null;
    },
  };
}

/** Whether `path` exists. */
export const exists = (path: string): boolean => existsSync(path);

// ------------------------------------------------------------------ clients

export interface Reply {
  readonly status: number;
  readonly body: string;
  /** The backend that answered (X-Backend), or '' when ebb answered itself. */
  readonly backend: string;
  readonly headers: http.IncomingHttpHeaders;
  /** Local port of the client's connection (tells whether a keep-alive connection was reused). */
  readonly localPort: number;
  readonly sentAt: number;
  readonly doneAt: number;
}

/** One GET through ebb. `agent` keeps the client connection alive between calls. */
export function get(port: number, path = '/', agent?: http.Agent, timeoutMs = 15_000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const sentAt = Date.now();
    let localPort = 0;
    const req = http.request({ host: '127.0.0.1', port, path, method: 'GET', ...(agent === undefined ? { agent: false } : { agent }) }, (res) => {
      let body = '';
      localPort = res.socket.localPort ?? 0;
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body,
          backend: typeof res.headers['x-backend'] === 'string' ? res.headers['x-backend'] : '',
          headers: res.headers,
          localPort,
          sentAt,
          doneAt: Date.now(),
        }),
      );
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** A GET that resolves with the reply or the error (never rejects), and when it settled. */
export interface Settled {
  readonly reply: Reply | null;
  readonly error: Error | null;
  readonly at: number;
}

export async function settle(p: Promise<Reply>): Promise<Settled> {
  try {
    const reply = await p;
    return { reply, error: null, at: Date.now() };
  } catch (error) {
    return { reply: null, error: error as Error, at: Date.now() };
  }
}

/** Sends requests until one is answered by `backend` (round robin makes this quick); returns it. */
export async function getUntil(port: number, backend: string, path = '/', agent?: http.Agent, tries = 20): Promise<Reply> {
  for (let i = 0; i < tries; i++) {
    const r = await get(port, path, agent);
    if (r.backend === backend) return r;
  }
  throw new Error(`no request reached ${backend} in ${tries} tries`);
}

/**
 * Starts a `/slow?ms=N` request that the round robin of a two-target group sends to `a`: requests
 * go out until `b` answers one, so the next is `a`'s. Resolves once `a` has the request; the
 * settlement is wrapped so that awaiting this does not wait for the request itself.
 */
export async function slowOn(port: number, a: Backend, b: Backend, ms: number, agent?: http.Agent): Promise<{ done: Promise<Settled> }> {
  await getUntil(port, b.name);
  const before = a.seen.length;
  const done = settle(get(port, `/slow?ms=${ms}`, agent));
  if (!(await waitFor(() => a.seen.length > before, 1000))) throw new Error(`the slow request did not reach ${a.name}`);
  if (a.seen.at(-1)?.url !== `/slow?ms=${ms}`) throw new Error(`${a.name} got ${a.seen.at(-1)?.url ?? 'nothing'} instead of the slow request`);
  return { done };
}

// ------------------------------------------------------------------ load

export interface LoadResult {
  total: number;
  ok: number;
  /** Answers that were not 2xx, by status. */
  readonly non2xx: Map<number, number>;
  /** Requests that failed without an answer (first few messages kept). */
  failed: number;
  readonly errors: string[];
  readonly byBackend: Map<string, number>;
}

/**
 * `clients` keep-alive clients (one connection each) sending requests back to back until `duration`
 * has passed: a number of milliseconds, or a function that says whether to go on (checked before
 * each request), for a load that lasts as long as something else takes. `path(i)` chooses the path
 * of the client's i-th request.
 */
export async function runLoad(port: number, clients: number, duration: number | (() => boolean), path: (i: number) => string): Promise<LoadResult> {
  const result: LoadResult = { total: 0, ok: 0, non2xx: new Map(), failed: 0, errors: [], byBackend: new Map() };
  const end = typeof duration === 'number' ? Date.now() + duration : 0;
  const going = typeof duration === 'number' ? () => Date.now() < end : duration;
  const client = async (): Promise<void> => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; going() && i < 1_000_000; i++) {
        result.total++;
        try {
          const r = await get(port, path(i), agent, 10_000);
          if (r.status >= 200 && r.status < 300) result.ok++;
          else result.non2xx.set(r.status, (result.non2xx.get(r.status) ?? 0) + 1);
          result.byBackend.set(r.backend, (result.byBackend.get(r.backend) ?? 0) + 1);
        } catch (error) {
          result.failed++;
          if (result.errors.length < 10) result.errors.push((error as Error).message);
        }
      }
    } finally {
      agent.destroy();
    }
  };
  await Promise.all(Array.from({ length: clients }, () => client()));
  return result;
}

/** A one-line account of a load run. */
export function describeLoad(r: LoadResult): string {
  const by = [...r.byBackend].map(([k, v]) => `${k || 'ebb'} ${v}`).join(', ');
  const bad = [...r.non2xx].map(([k, v]) => `${k}×${v}`).join(', ');
  return `${r.total} requests: ${r.ok} 2xx, ${r.failed} failed${r.errors.length > 0 ? ` (${r.errors.join('; ')})` : ''}, non-2xx [${bad}]; by backend: ${by}`;
}

/** `ebb serve` on a config file in a fresh temp dir, with `--no-auth`; resolves once it has started. */
export async function serveConfig(
  cleanup: Cleanup,
  o: Omit<ConfigOptions, 'listenerPort'>,
): Promise<{ ebb: Spawned; dir: string; configPath: string; listenerPort: number; stateDir: string }> {
  const dir = await tempDir(cleanup);
  const listenerPort = await freePort();
  const configPath = await writeConfig(dir, { ...o, listenerPort });
  const stateDir = join(dir, 'state');
  const ebb = spawnEbb(cleanup, ['--config', configPath, '--admin', '127.0.0.1:0', '--state-dir', stateDir, '--no-auth']);
  const started = await ebb.waitForLog((l) => l['event'] === 'ebb:started', 15_000);
  if (started === null) throw new Error(`ebb serve did not start (exit ${String(ebb.exitCode())}): ${ebb.stderr()}`);
  return { ebb, dir, configPath, listenerPort, stateDir };
}
