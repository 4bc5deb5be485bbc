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
 * What other tests share too (timing, ports, the HTTP client, backends, the ebb process) lives in
 * test/support and is re-exported here for the tests that import it from this module.
 */
import { existsSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import type { TargetHealthDescription } from '../../src/control/inputs.ts';
import type { TargetStateEvent } from '../../src/control/events.ts';
import type { Ebb } from '../../src/main/ebb.ts';
import { startBackend as startSupportBackend, type Backend } from '../support/backends.ts';
import { Cleanup, tempDir } from '../support/cleanup.ts';
import { spawnEbb, waitForStart, type NodeProcess } from '../support/ebb-process.ts';
import { get, type Reply } from '../support/http-client.ts';
import { freePort } from '../support/ports.ts';
import { waitFor } from '../support/timing.ts';

export type { Backend, SeenRequest } from '../support/backends.ts';
export { Cleanup, tempDir } from '../support/cleanup.ts';
export { CLI, REPO_ROOT, spawnEbb } from '../support/ebb-process.ts';
export { get, type Reply } from '../support/http-client.ts';
export { connectionRefused, freePort } from '../support/ports.ts';
export { after, sleep, waitFor } from '../support/timing.ts';

/** `ebb serve` started by `spawnEbb()`. */
export type Spawned = NodeProcess;

/** A backend on 127.0.0.1:0 (see the file comment for what it answers), closed at cleanup. Body: its name. */
export function startBackend(name: string, cleanup: Cleanup): Promise<Backend> {
  return startSupportBackend(name, { cleanup });
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
  // Loaded here, not at the top: most tests importing this module only spawn `ebb serve`, and loading
  // all of ebb costs each of their processes about a second of CPU.
  const { startEbb } = await import('../../src/main/ebb.ts');
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

/** Whether `path` exists. */
export const exists = (path: string): boolean => existsSync(path);

// ------------------------------------------------------------------ clients

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
  await waitForStart(ebb);
  return { ebb, dir, configPath, listenerPort, stateDir };
}
