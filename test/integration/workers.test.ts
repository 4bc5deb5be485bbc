/**
 * `ebb serve --workers 2` as a real process (docs/workers.md): two data-plane processes share the
 * listener, driven by the one control plane in ebb's own process.
 *
 * Which worker carried a request is read from the kernel, not from ebb: each request the backend
 * gets arrives on a connection whose other end is a socket some process holds open, found through
 * /proc/<pid>/fd and /proc/net/tcp. So the test sees the workers as an operator would, by pid.
 *
 * One ebb for the whole story, step by step: requests served by both workers and counted by the
 * metrics and the access log in ebb's own process, and their client connections (kept open, then
 * closed); a drain with requests in flight in both workers that ends only after the last; a worker
 * killed with SIGKILL while a drain waits on it, which stops waiting (and its connection leaves the
 * active count), a replacement, and traffic going on; SIGTERM, and no process left. A second, short ebb is
 * killed with SIGKILL itself, which it cannot handle: its workers must not outlive it.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { workerListenMode } from '../../src/dataplane/listen-mode.ts';
import { takesCap, YOUNG_GENERATION_OPTION } from '../../src/shared/young-generation.ts';
import { waitForStart } from '../support/ebb-process.ts';
import { scrape } from './metrics-scrape.ts';
import { after, Cleanup, configYaml, freePort, get, sleep, spawnEbb, tempDir, waitFor, writeFileAtomic } from './harness.ts';
import { alive, commandLine } from '../support/processes.ts';

/** A backend that knows, for each request, the port of ebb's end of the connection it came on. */
interface PortBackend {
  readonly port: number;
  /** ebb's local port for each request in flight. */
  readonly inFlight: Set<number>;
  /** When the last request finished (Date.now()). */
  lastFinishedAt: number;
  served: number;
}

async function portBackend(cleanup: Cleanup): Promise<PortBackend> {
  const timers = new Set<NodeJS.Timeout>();
  const state = { port: 0, inFlight: new Set<number>(), lastFinishedAt: 0, served: 0 };
  const server = http.createServer((req, res) => {
    const from = req.socket.remotePort ?? 0;
    const ms = Math.min(30_000, Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0));
    state.inFlight.add(from);
    const done = (): void => {
      state.inFlight.delete(from);
      state.lastFinishedAt = Date.now();
    };
    res.on('close', done);
    const timer = setTimeout(() => {
      timers.delete(timer);
      state.served++;
      res.end('ok');
    }, ms);
    timers.add(timer);
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.port = (server.address() as AddressInfo).port;
  cleanup.add(() => {
    for (const t of timers) clearTimeout(t);
    server.closeAllConnections();
    server.close();
  });
  return state;
}

/** For each TCP connection to `remotePort`: its local port → the pid (of `pids`) holding the socket. */
function socketOwners(pids: readonly number[], remotePort: number): Map<number, number> {
  const inodeToPid = new Map<string, number>();
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m?.[1] !== undefined) inodeToPid.set(m[1], pid);
      } catch {
        // closed meanwhile
      }
    }
  }
  const owners = new Map<number, number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      const [local, remote, inode] = [f[1], f[2], f[9]];
      if (local === undefined || remote === undefined || inode === undefined) continue;
      if (parseInt(remote.split(':')[1] ?? '', 16) !== remotePort) continue;
      const pid = inodeToPid.get(inode);
      if (pid !== undefined) owners.set(parseInt(local.split(':')[1] ?? '', 16), pid);
    }
  }
  return owners;
}

/** Listening sockets on `port` (one shared by every worker, or one per worker with SO_REUSEPORT). */
function listeningSockets(port: number): number {
  let n = 0;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[3] === '0A' && parseInt(f[1]?.split(':')[1] ?? '', 16) === port) n++;
  }
  return n;
}


async function postJson(admin: string, path: string, body: object): Promise<Record<string, unknown>> {
  const res = await fetch(`http://${admin}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = (await res.json()) as Record<string, unknown>;
  assert.equal(res.status, 200, `${path}: ${JSON.stringify(json)}`);
  return json;
}

async function waitDrained(admin: string, target: number, timeoutS: number): Promise<{ at: number; answer: Record<string, unknown> }> {
  const res = await fetch(`http://${admin}/ebb/v1/wait?targetGroup=web&target=127.0.0.1:${target}&for=drained&timeout=${timeoutS}`);
  const answer = (await res.json()) as Record<string, unknown>;
  return { at: Date.now(), answer };
}

/** A request on a connection of its own, so the kernel chooses a worker for each; resolves with its status, or 'cut'. */
const fresh = (port: number, path: string): Promise<number | 'cut'> =>
  new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve('cut'));
    });
    req.on('error', () => resolve('cut'));
  });

test('ebb serve --workers 2: both workers serve, telemetry is whole, drains wait on both, a killed worker is replaced', { skip: process.platform !== 'linux' && 'reads /proc', timeout: 90_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await portBackend(c);
  const B = await portBackend(c);
  const dir = await tempDir(c);
  const listenerPort = await freePort();
  const accessLog = join(dir, 'access.log');
  const yaml = configYaml({ listenerPort, targets: [A.port, B.port], healthCheck: false, delaySeconds: 30, lbAttributes: { 'ebb.shutdown_timeout.seconds': 10 } });
  const configPath = join(dir, 'ebb.yaml');
  await writeFileAtomic(configPath, `${yaml}accessLog:\n  output: file\n  path: ${accessLog}\n  format: json\n`);
  const ebb = spawnEbb(c, ['--config', configPath, '--admin', '127.0.0.1:0', '--state-dir', join(dir, 'state'), '--no-auth', '--workers', '2']);
  const started = await waitForStart(ebb, 30_000);
  const admin = String(started['admin']);
  const workers = started['workers'] as number[];
  assert.equal(workers.length, 2, `ebb:started names its two workers: ${JSON.stringify(started)}`);
  const everyWorker = new Set(workers);
  // Workers leave with ebb; any left by a failed run are killed by pid.
  c.add(() => {
    for (const pid of everyWorker) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  // Each worker runs with the options ebb got, and V8's young generation capped where that lowers it
  // (src/shared/young-generation.ts: a heap limit of 2 GiB or more, as this process's).
  const capped = takesCap(['--import', 'tsx']);
  for (const pid of workers) {
    const argv = commandLine(pid);
    assert.ok(argv.includes(YOUNG_GENERATION_OPTION) === capped && argv.includes('tsx'), `worker ${pid} (cap expected: ${capped}): ${argv.join(' ')}`);
  }

  // 1. Requests spread over both workers (each on a new connection), all answered.
  const statuses: Array<number | 'cut'> = [];
  for (let batch = 0; batch < 6; batch++) statuses.push(...(await Promise.all(Array.from({ length: 10 }, () => fresh(listenerPort, '/')))));
  assert.deepEqual(new Set(statuses), new Set([200]), `every request answered: ${statuses.join(' ')}`);
  const carriers = new Set([...socketOwners(workers, A.port).values(), ...socketOwners(workers, B.port).values()]);
  t.diagnostic(`workers ${workers.join(', ')}; kept connections to the backends from ${[...carriers].join(', ')}`);
  assert.deepEqual(carriers, new Set(workers), 'both workers carried requests to the backends');
  const mode = workerListenMode();
  assert.equal(listeningSockets(listenerPort), mode === 'reuseport' ? 2 : 1, `listen mode ${mode}: a socket per worker, or one shared`);

  // 2. The metrics and the access log, in ebb's own process, count the requests of both workers.
  assert.ok(
    await waitFor(async () => (await scrape(Number(admin.split(':')[1]))).sum('ebb_request_count') === 60, 5000, 100),
    `ebb_request_count sums to 60: ${(await scrape(Number(admin.split(':')[1]))).sum('ebb_request_count')}`,
  );
  const logLines = (): number => readFileSync(accessLog, 'utf8').split('\n').filter((l) => l.length > 0).length;
  assert.ok(await waitFor(() => logLines() === 60, 5000, 50), `60 access-log lines: ${logLines()}`);

  // 2b. Client connections, accepted by the workers, counted in ebb's own process as one load balancer's.
  const adminPort = Number(admin.split(':')[1]);
  const connections = async (): Promise<{ active: number; accepted: number }> => {
    const m = await scrape(adminPort);
    return { active: m.sum('ebb_active_connection_count'), accepted: m.sum('ebb_new_connection_count') };
  };
  const KEPT = 8;
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: KEPT });
  c.add(() => keepAlive.destroy());
  // Concurrent, so each request opens a connection of its own; the agent then keeps all of them open.
  const kept = await Promise.all(
    Array.from({ length: KEPT }, () =>
      new Promise<number>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: listenerPort, path: '/slow?ms=200', agent: keepAlive }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        }).on('error', reject);
      }),
    ),
  );
  assert.deepEqual(new Set(kept), new Set([200]));
  assert.equal(Object.values(keepAlive.freeSockets).flat().length, KEPT, 'the agent keeps its connections open');
  assert.ok(await waitFor(async () => (await connections()).active === KEPT, 3000, 50), `ebb_active_connection_count is ${KEPT}: ${JSON.stringify(await connections())}`);
  const counted = await connections();
  assert.ok(counted.accepted >= 60 + KEPT, `ebb_new_connection_count counts every connection of step 1 and these: ${counted.accepted}`);
  keepAlive.destroy();
  assert.ok(await waitFor(async () => (await connections()).active === 0, 3000, 50), `ebb_active_connection_count back to 0: ${JSON.stringify(await connections())}`);

  // 3. A drain with requests in flight to A in both workers ends when the last of them has, not before.
  const slow: Array<Promise<number | 'cut'>> = [];
  const inBoth = (): boolean => new Set([...A.inFlight].map((p) => socketOwners(workers, A.port).get(p))).size === 2;
  for (let i = 0; i < 24 && !inBoth(); i++) {
    slow.push(fresh(listenerPort, `/slow?ms=${1500 + i * 50}`));
    await sleep(20);
  }
  assert.ok(await waitFor(inBoth, 1000), 'requests to A in flight in both workers');
  await postJson(admin, '/ebb/v1/deregister', { targetGroup: 'web', targets: [`127.0.0.1:${A.port}`] });
  const drainedA = await waitDrained(admin, A.port, 20);
  assert.deepEqual(new Set(await Promise.all(slow)), new Set([200]), 'every request in flight finished');
  const recordA = drainedA.answer['drain'] as Record<string, unknown>;
  assert.equal(drainedA.answer['outcome'], 'drained');
  assert.equal(recordA['outcome'], 'idle', JSON.stringify(recordA));
  assert.ok(drainedA.at >= A.lastFinishedAt, `the drain ended ${drainedA.at - A.lastFinishedAt} ms after A's last request finished, not before`);

  // 4. A worker killed while a drain waits on it: the drain stops waiting, the worker is replaced, traffic goes on.
  const held = fresh(listenerPort, '/slow?ms=25000');
  assert.ok(await waitFor(() => B.inFlight.size === 1, 2000), 'a long request in flight to B');
  const victim = socketOwners(workers, B.port).get([...B.inFlight][0] ?? 0);
  assert.ok(victim !== undefined && workers.includes(victim), 'the worker carrying it is known');
  await postJson(admin, '/ebb/v1/register', { targetGroup: 'web', targets: [`127.0.0.1:${A.port}`] });
  await postJson(admin, '/ebb/v1/deregister', { targetGroup: 'web', targets: [`127.0.0.1:${B.port}`], timeoutSeconds: 60 });
  const drainB = waitDrained(admin, B.port, 30);
  await sleep(300);
  assert.ok((await connections()).active >= 1, 'the connection of the long request is counted');
  const killedAt = Date.now();
  process.kill(victim, 'SIGKILL');
  const drainedB = await drainB;
  t.diagnostic(`drain of B ended ${drainedB.at - killedAt} ms after its worker was killed: ${JSON.stringify(drainedB.answer['drain'])}`);
  assert.equal(drainedB.answer['outcome'], 'drained');
  assert.ok(drainedB.at - killedAt < 5000, 'the drain stopped waiting on the dead worker (its delay was 60 s)');
  assert.equal(await held, 'cut', 'the request the dead worker carried was cut');
  const replaced = await ebb.waitForLog((l) => l['event'] === 'worker:ready' && l['pid'] !== workers[0] && l['pid'] !== workers[1], 15_000);
  assert.ok(replaced !== null, 'a replacement worker is ready');
  const replacement = replaced['pid'] as number;
  everyWorker.add(replacement);
  assert.ok(ebb.logs.some((l) => l['event'] === 'worker:exit' && l['pid'] === victim && l['signal'] === 'SIGKILL'), 'the death is logged');
  const afterKill = await Promise.all(Array.from({ length: 20 }, () => fresh(listenerPort, '/')));
  assert.deepEqual(new Set(afterKill), new Set([200]), `traffic goes on: ${afterKill.join(' ')}`);
  const m = await scrape(Number(admin.split(':')[1]));
  assert.equal(m.value('ebb_worker_restarts_total'), 1, 'the restart is counted in the metrics');
  assert.ok((m.value('ebb_worker_connections_lost_total') ?? 0) >= 1, `the dead worker's connection is counted as lost: ${m.value('ebb_worker_connections_lost_total')}`);
  // The dead worker could not say its connection closed: it goes from the active count with the worker.
  assert.ok(await waitFor(async () => (await connections()).active === 0, 3000, 50), `no connection counted open after the kill: ${JSON.stringify(await connections())}`);

  // 5. SIGTERM: ebb and every worker it ran exit; none is left.
  ebb.child.kill('SIGTERM');
  const code = await Promise.race([ebb.exited, after(15_000, 'still running')]);
  assert.equal(code, 0, `ebb exits 0: ${ebb.stderr()}`);
  assert.ok(await waitFor(() => [...everyWorker].every((pid) => !alive(pid)), 3000), `no worker left: ${[...everyWorker].filter(alive).join(', ')}`);
  assert.equal((await get(listenerPort, '/').catch(() => null)) === null, true, 'nothing listens any more');
});

test('ebb serve --workers 2 killed with SIGKILL: no worker outlives it', { skip: process.platform !== 'linux' && 'reads /proc', timeout: 45_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const backend = await portBackend(c);
  const dir = await tempDir(c);
  const listenerPort = await freePort();
  const configPath = join(dir, 'ebb.yaml');
  await writeFileAtomic(configPath, configYaml({ listenerPort, targets: [backend.port], healthCheck: false }));
  const ebb = spawnEbb(c, ['--config', configPath, '--admin', '127.0.0.1:0', '--state-dir', join(dir, 'state'), '--no-auth', '--workers', '2']);
  const started = await waitForStart(ebb, 30_000);
  const workers = started['workers'] as number[];
  assert.equal(workers.length, 2, `ebb:started names its two workers: ${JSON.stringify(started)}`);
  c.add(() => {
    for (const pid of workers) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  assert.ok(workers.every(alive), 'both workers run');
  // The workers in use (connections to the backend kept open in their pools) when ebb dies.
  const statuses = await Promise.all(Array.from({ length: 6 }, () => fresh(listenerPort, '/')));
  assert.deepEqual(new Set(statuses), new Set([200]), `served before the kill: ${statuses.join(' ')}`);

  const ebbPid = ebb.child.pid;
  assert.ok(ebbPid !== undefined);
  const killedAt = Date.now();
  process.kill(ebbPid, 'SIGKILL');
  assert.notEqual(await Promise.race([ebb.exited, after(5000, 'still running')]), 'still running', 'ebb is gone');
  assert.ok(await waitFor(() => workers.every((pid) => !alive(pid)), 5000, 20), `no worker outlives ebb: still running ${workers.filter(alive).join(', ')}`);
  t.diagnostic(`workers ${workers.join(', ')} gone ${Date.now() - killedAt} ms after ebb (${ebbPid}) was killed`);
  assert.equal(await get(listenerPort, '/').catch(() => null), null, 'nothing listens any more');
});
