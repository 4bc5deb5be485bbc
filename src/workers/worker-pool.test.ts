import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import cluster from 'node:cluster';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { test, type TestContext } from 'node:test';
import type { RoutingSnapshot } from '../domain/routing-snapshot.ts';
import { realClock } from '../shared/clock.ts';
import { WorkerPool, type WorkerPoolOptions } from './worker-pool.ts';

const ENTRY = new URL('./pool.test-worker.ts', import.meta.url).pathname;

function snapshot(version: number): RoutingSnapshot {
  return { version, listeners: [], targetGroups: new Map() };
}

/** Running and not a zombie (an orphan reparented to a PID 1 that does not reap stays a zombie). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > until) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function makePool(t: TestContext, options: Partial<WorkerPoolOptions> = {}): { pool: WorkerPool; logs: Array<Record<string, unknown>> } {
  const logs: Array<Record<string, unknown>> = [];
  const pool = new WorkerPool({
    count: 2,
    entry: ENTRY,
    execArgv: ['--import', 'tsx'],
    clock: realClock,
    log: (e) => logs.push(e),
    restartBackoffMs: 50,
    ...options,
  });
  t.after(async () => {
    const pids = pool.pids;
    pool.destroy();
    await waitFor("the pool's workers to exit", () => !pids.some(alive), 5000);
  });
  return { pool, logs };
}

test('start forks N workers, each attached to its own data plane, which applies through it', async (t) => {
  const { pool } = makePool(t);
  await pool.start();
  const pids = pool.pids;
  assert.equal(new Set(pids).size, 2);
  assert.ok(pids.every((pid) => alive(pid) && pid !== process.pid));
  assert.deepEqual(
    pool.dataPlanes.map((dp) => dp.id),
    ['worker-1', 'worker-2'],
  );
  assert.deepEqual(await Promise.all(pool.dataPlanes.map((dp) => dp.apply(snapshot(1)))), [{ listenerErrors: [] }, { listenerErrors: [] }]);
  // The test worker answers with one key of its own, with two connections.
  assert.deepEqual(
    pool.dataPlanes.map((dp) => dp.connections()),
    [2, 2],
  );
  assert.equal(pool.dataPlanes[0]?.activity(`work-of-${pids[0]}`).requests, 1);
});

test('a worker killed with SIGKILL is replaced: its work is released, the new one gets the latest snapshot', async (t) => {
  const { pool, logs } = makePool(t);
  await pool.start();
  const plane = pool.dataPlanes[0];
  assert.ok(plane !== undefined);
  await Promise.all(pool.dataPlanes.map((dp) => dp.apply(snapshot(3))));
  const [victim, survivor] = pool.pids;
  assert.ok(victim !== undefined && survivor !== undefined);
  const idle: string[] = [];
  plane.onIdle((key) => idle.push(key));
  // The worker says its two client connections after its `applied`: read here before it dies.
  await waitFor("the worker's client connections to be told", () => plane.clientConnections() === 2);

  process.kill(victim, 'SIGKILL');
  await waitFor('the replacement to be attached', () => pool.restarts === 1 && plane.attached && pool.pids.length === 2);
  assert.ok(!pool.pids.includes(victim));
  assert.ok(pool.pids.includes(survivor), 'the other worker is left alone');
  assert.deepEqual(idle.slice(0, 1), [`work-of-${victim}`], 'a drain waiting on the dead worker is told its key is idle');
  assert.equal(pool.connectionsLost, 2);
  const exit = logs.find((e) => e['event'] === 'worker:exit');
  assert.deepEqual([exit?.['pid'], exit?.['signal'], exit?.['connectionsLost'], exit?.['level']], [victim, 'SIGKILL', 2, 'error']);
  const replacement = pool.pids.find((pid) => pid !== survivor);
  await waitFor('the replacement to confirm the latest snapshot', () => plane.activity(`work-of-${replacement}`).requests === 1);
  assert.equal(plane.activity(`work-of-${victim}`).requests, 0);
});

test('a worker that dies after ready while start() waits for the others is replaced, and its slot applies', async (t) => {
  const marker = join(mkdtempSync(join(tmpdir(), 'ebb-pool-')), 'first');
  t.after(() => rmSync(dirname(marker), { recursive: true, force: true }));
  const { pool, logs } = makePool(t, { env: { TEST_WORKER_MODE: 'first-dies', TEST_WORKER_MARKER: marker } });
  await pool.start();
  // The first worker was ready at once and died ~50 ms later; the others took 1.5 s, so start() was still waiting.
  assert.ok(
    logs.some((e) => e['event'] === 'worker:exit' && e['code'] === 1),
    'a worker died during start',
  );
  await waitFor('every slot to have a worker again', () => pool.restarts === 1 && pool.dataPlanes.every((dp) => dp.attached), 10_000);
  assert.deepEqual(await Promise.all(pool.dataPlanes.map((dp) => dp.apply(snapshot(1)))), [{ listenerErrors: [] }, { listenerErrors: [] }]);
});

test('a replacement whose fork fails (spawn error) is logged and tried again; the control process lives on', async (t) => {
  const { pool, logs } = makePool(t, { count: 1 });
  await pool.start();
  const plane = pool.dataPlanes[0];
  const [victim] = pool.pids;
  assert.ok(plane !== undefined && victim !== undefined);
  // node:cluster keeps settings across setupPrimary calls: a cwd that does not exist makes every fork fail with ENOENT ('error', no 'exit').
  cluster.setupPrimary({ cwd: '/nonexistent-ebb-test-dir' });
  t.after(() => cluster.setupPrimary({ cwd: undefined }));
  process.kill(victim, 'SIGKILL');
  await waitFor('a fork to fail and another to be scheduled', () => logs.filter((e) => e['event'] === 'worker:restart-scheduled').length >= 2);
  assert.match(String(logs.find((e) => e['event'] === 'worker:error')?.['error']), /ENOENT/);
  assert.equal(plane.attached, false);
  cluster.setupPrimary({ cwd: undefined });
  await waitFor('a later try to start a worker', () => plane.attached && pool.pids.length === 1);
  assert.deepEqual(await plane.apply(snapshot(2)), { listenerErrors: [] });
});

test('close asks every worker to close and resolves when all have exited', async (t) => {
  const { pool, logs } = makePool(t, { count: 3 });
  await pool.start();
  const pids = pool.pids;
  assert.equal(pids.length, 3);
  await pool.close(2000);
  assert.deepEqual(pids.filter(alive), []);
  assert.deepEqual(pool.pids, []);
  assert.equal(pool.restarts, 0, 'workers that close are not replaced');
  assert.deepEqual(
    logs.filter((e) => e['event'] === 'worker:exit').map((e) => [e['code'], e['level']]),
    [
      [0, 'info'],
      [0, 'info'],
      [0, 'info'],
    ],
  );
});

test('a worker that ignores close is killed after the deadline and the grace', async (t) => {
  const { pool, logs } = makePool(t, { count: 1, env: { TEST_WORKER_MODE: 'stubborn' }, killGraceMs: 100 });
  await pool.start();
  const [pid] = pool.pids;
  assert.ok(pid !== undefined);
  await pool.close(100);
  assert.equal(alive(pid), false);
  assert.ok(logs.some((e) => e['event'] === 'worker:kill' && e['pid'] === pid && e['signal'] === 'SIGKILL'));
});

test('start fails, saying why, when a worker exits before it is ready; none is left running', async (t) => {
  const { pool } = makePool(t, { env: { TEST_WORKER_MODE: 'crash' } });
  await assert.rejects(pool.start(), /worker-1: worker \d+ ended before it was ready/);
  assert.deepEqual(pool.pids, []);
  assert.equal(pool.restarts, 0);
});

test('start fails when a worker speaks another protocol version, naming both', async (t) => {
  const { pool } = makePool(t, { count: 1, env: { TEST_WORKER_MODE: 'old' } });
  await assert.rejects(pool.start(), /speaks protocol versions 99 and this process speaks 1/);
  assert.deepEqual(pool.pids, []);
});

test('start fails when a worker never says ready within the time it has', async (t) => {
  const { pool } = makePool(t, { count: 1, env: { TEST_WORKER_MODE: 'mute' }, readyTimeoutMs: 3000 });
  await assert.rejects(pool.start(), /did not say it was ready within 3000 ms/);
  assert.deepEqual(pool.pids, []);
});

test('workers do not outlive a control process killed with SIGKILL', async (t) => {
  const primary = spawn(process.execPath, ['--import', 'tsx', ENTRY, 'primary', '2'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let workerPids: number[] = [];
  t.after(() => {
    if (primary.exitCode === null && primary.signalCode === null) primary.kill('SIGKILL');
    for (const pid of workerPids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  const firstLine = await new Promise<string>((resolve, reject) => {
    createInterface({ input: primary.stdout }).once('line', resolve);
    primary.once('exit', (code) => reject(new Error(`the control process exited (${code}) before starting its workers`)));
  });
  workerPids = JSON.parse(firstLine) as number[];
  assert.equal(workerPids.length, 2);
  assert.ok(workerPids.every(alive));
  primary.kill('SIGKILL');
  await waitFor('the workers to exit', () => !workerPids.some(alive), 10_000);
});

/** A listening socket's handle whose closes are counted (it still travels over IPC as the TCP wrap it is). */
async function countedHandle(t: TestContext): Promise<{ handle: { close(cb?: () => void): void }; port: number; closes: () => number }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => void server.close());
  const port = (server.address() as net.AddressInfo).port;
  const handle = (server as unknown as { _handle: { close(cb?: () => void): void } })._handle;
  let closes = 0;
  const close = handle.close.bind(handle);
  handle.close = (cb?: () => void): void => {
    closes++;
    close(cb);
  };
  return { handle, port, closes: () => closes };
}

function listenerAt(version: number, port: number): RoutingSnapshot {
  return { ...snapshot(version), listeners: [{ arn: `arn:test:listener/${port}`, address: '127.0.0.1', port } as unknown as RoutingSnapshot['listeners'][number]] };
}

test("handed-over sockets: a replacement gets its slot's, and this process's copies go once no listener has their address", async (t) => {
  const kept = await countedHandle(t);
  const dropped = await countedHandle(t);
  const { pool, logs } = makePool(t, {
    count: 1,
    inherited: [
      { address: '127.0.0.1', port: kept.port, handles: [kept.handle] },
      { address: '127.0.0.1', port: dropped.port, handles: [dropped.handle] },
    ],
  });
  await pool.start();
  const [plane] = pool.dataPlanes;
  assert.ok(plane !== undefined);
  assert.equal(logs.find((e) => e['event'] === 'worker:ready')?.['inheritedSockets'], 2, 'the first worker is handed both');
  await plane.apply(listenerAt(1, kept.port));
  assert.deepEqual([kept.closes(), dropped.closes()], [0, 1], 'the copy of a socket no listener has is closed; the other is kept');
  const [victim] = pool.pids;
  assert.ok(victim !== undefined);
  process.kill(victim, 'SIGKILL');
  await waitFor('the replacement', () => pool.restarts === 1 && plane.attached);
  const ready = logs.filter((e) => e['event'] === 'worker:ready');
  assert.equal(ready.at(-1)?.['inheritedSockets'], 1, "the replacement is handed its slot's socket again");
  pool.destroy();
  assert.equal(kept.closes(), 1, 'the last copy goes with the pool');
});

test('a retiring pool does not replace a worker that dies', async (t) => {
  const { pool, logs } = makePool(t);
  await pool.start();
  pool.retire();
  const [victim] = pool.pids;
  assert.ok(victim !== undefined);
  process.kill(victim, 'SIGKILL');
  await waitFor('the worker to be let go', () => logs.some((e) => e['event'] === 'worker:exit'));
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(pool.restarts, 0);
  assert.equal(pool.pids.length, 1);
  assert.equal(logs.some((e) => e['event'] === 'worker:restart-scheduled'), false);
});

test('request ends: each change of way is logged once with why; once telemetry is handed on (a hot restart) they stay raw', (t) => {
  const { pool, logs } = makePool(t);
  const ways = (): unknown[] => logs.filter((l) => l['event'] === 'workers:request-ends').map((l) => [l['way'], l['why']]);
  pool.requestEnds('raw');
  pool.requestEnds('digest');
  pool.requestEnds('digest');
  assert.deepEqual(ways(), [['digest', 'no access log: each batch sends what the metrics count']], 'raw is the start; a repeat says nothing');
  pool.handTelemetryOn();
  pool.requestEnds('digest');
  assert.deepEqual(ways().slice(1), [['raw', "a hot restart: the next ebb reads the workers' telemetry"]], 'an access log turned off later does not fold them again');
});
