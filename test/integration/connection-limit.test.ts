/**
 * The connection limit derived from the open-file limit, end to end: a process started under
 * `ulimit -n` refuses connections beyond the limit (Node's `maxConnections`), logs them at most once
 * per interval per listener with their count, counts each one, and serves again once connections
 * close. First with two bare `http.Server`s sharing one budget (test/fixtures/connection-limit-server.ts),
 * then with `ebb serve` itself once its listeners use the limit.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { after as afterAll, test } from 'node:test';
import { ACCEPT_COPIES } from '../../src/dataplane/accept-copies.ts';
import { deriveConnectionLimit, DROP_MESSAGE } from '../../src/dataplane/connection-limit.ts';
import { spawnTsx, type NodeProcess } from '../support/ebb-process.ts';
import { CLI, Cleanup, freePort, REPO_ROOT, sleep, startBackend, tempDir, waitFor, writeConfig } from './harness.ts';

const FIXTURE = join(REPO_ROOT, 'test/fixtures/connection-limit-server.ts');

/**
 * `node --import tsx ARGS` under `ulimit -n nofile`, its JSON stdout lines parsed; at cleanup it gets
 * SIGTERM by pid, then SIGKILL.
 */
function spawnLimited(cleanup: Cleanup, nofile: number, args: readonly string[], env: NodeJS.ProcessEnv = {}): NodeProcess {
  return spawnTsx(cleanup, args, { env, nofile, stopGraceMs: 3000 });
}

/** A connection that made one keep-alive request, got its answer, and now stays open. */
async function hold(cleanup: Cleanup, port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  cleanup.add(() => socket.destroy());
  socket.setEncoding('latin1');
  socket.on('error', () => undefined);
  const answered = await new Promise<boolean>((resolve) => {
    let data = '';
    const timer = setTimeout(() => resolve(false), 5000);
    socket.on('data', (d: string) => {
      data += d;
      const end = data.indexOf('\r\n\r\n');
      const length = /\r\ncontent-length: *([0-9]+)/i.exec(data.slice(0, end));
      if (end >= 0 && length !== null && data.length >= end + 4 + Number(length[1])) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(false);
    });
    socket.write('GET / HTTP/1.1\r\nHost: test\r\n\r\n');
  });
  if (!answered) throw new Error(`a held connection to ${port} was not answered`);
  return socket;
}

/** Opens a connection and sends a request: true if it was closed without an answer (refused at accept). */
function refused(cleanup: Cleanup, port: number): Promise<boolean> {
  const socket = net.connect(port, '127.0.0.1');
  cleanup.add(() => socket.destroy());
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, 5000);
    socket.on('data', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(false);
    });
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.write('GET / HTTP/1.1\r\nHost: test\r\n\r\n');
  });
}

/** One GET on a fresh connection; the status, or 0 if it failed. */
function status(port: number, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve({ status: 0, body }));
    });
    req.setTimeout(3000, () => req.destroy());
    req.on('error', () => resolve({ status: 0, body: '' }));
  });
}

/** Retries a GET for up to `ms` until it is answered 200. */
async function servedAgain(port: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if ((await status(port)).status === 200) return true;
    await sleep(50);
  }
  return false;
}

const drops = (logs: ReadonlyArray<Record<string, unknown>>, listener?: string): Array<Record<string, unknown>> =>
  logs.filter((l) => l['msg'] === DROP_MESSAGE && (listener === undefined || l['listener'] === listener));
const sumDropped = (lines: ReadonlyArray<Record<string, unknown>>): number => lines.reduce((n, l) => n + Number(l['dropped']), 0);

const cleanup = new Cleanup();
afterAll(() => cleanup.run());

test('under ulimit -n 64, two servers share 16 connections; the rest are refused, logged, counted, and served again later', async () => {
  const c = new Cleanup();
  cleanup.add(() => c.run());
  const proc = spawnLimited(c, 64, [FIXTURE], { LOG_INTERVAL_MS: '300' });
  const ready = await proc.waitForLog((l) => l['event'] === 'ready', 15_000);
  assert.ok(ready !== null, `the fixture did not start: ${proc.stderr()}`);
  assert.equal(ready['nofile'], 64);
  assert.equal(ready['maxConnections'], 16);
  assert.match(String(ready['derivation']), /^floor\(\(64 open files - 32 reserved\) \/ 2\) = 16/);
  const [portA, portB] = ready['ports'] as [number, number];

  // 10 on a and 6 on b spend the budget of 16 between them.
  const held: net.Socket[] = [];
  for (let i = 0; i < 10; i++) held.push(await hold(c, portA));
  for (let i = 0; i < 6; i++) held.push(await hold(c, portB));

  const refusedA = await Promise.all(Array.from({ length: 3 }, () => refused(c, portA)));
  const refusedB = await Promise.all(Array.from({ length: 2 }, () => refused(c, portB)));
  assert.deepEqual([...refusedA, ...refusedB], [true, true, true, true, true], 'connections beyond the limit are closed unanswered');

  // The first refusal per listener is logged at once; the rest within one more interval, with their count.
  assert.ok(await waitFor(() => sumDropped(drops(proc.logs, 'a')) === 3 && sumDropped(drops(proc.logs, 'b')) === 2, 3000), JSON.stringify(proc.logs));
  const linesA = drops(proc.logs, 'a');
  assert.equal(linesA[0]?.['dropped'], 1, 'the first line comes at the first refusal');
  assert.ok(linesA.length <= 2, 'refusals within an interval share one line');
  const last = linesA.at(-1)!;
  assert.equal(last['droppedTotal'], 3);
  assert.equal(last['maxConnections'], 16);
  assert.equal(last['level'], 'warn');
  assert.match(String(last['derivation']), /64 open files/);
  assert.match(String(last['action']), /ulimit -n/);

  // Freeing connections on a makes room on b too: the budget is shared.
  for (const s of held.splice(0, 3)) s.destroy();
  assert.ok(await servedAgain(portB, 3000), 'b serves again once a has closed connections');
  for (const s of held.splice(0)) s.destroy();
  assert.ok(await servedAgain(portA, 3000), 'a serves again once connections closed');

  const counters = JSON.parse((await status(portA, '/counters')).body) as { droppedTotal: number; dropped: Record<string, number> };
  // At least the five refused above; a retry of servedAgain may race the close of a freed connection and be refused too.
  const { a = 0, b = 0 } = counters.dropped;
  assert.ok(a >= 3 && b >= 2, JSON.stringify(counters));
  assert.equal(counters.droppedTotal, a + b);
  assert.deepEqual(
    proc.logs.filter((l) => l['event'] === 'server-error'),
    [],
    'no accept error: the limit keeps the process below its descriptor limit',
  );

  process.kill(proc.pid, 'SIGTERM');
  assert.ok(await waitFor(() => proc.child.exitCode !== null || proc.child.signalCode !== null, 5000), 'the fixture stops on SIGTERM');
});

/**
 * Whether the data plane's listener calls `attachConnectionLimit` yet: any non-test source under
 * src/dataplane other than the module itself (the listener lives in listener-set.ts, or listener.ts).
 */
function listenerWired(): boolean {
  const dir = join(REPO_ROOT, 'src/dataplane');
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('connection-limit.ts'))
    .some((f) => {
      try {
        return readFileSync(join(dir, f), 'utf8').includes('attachConnectionLimit(');
      } catch {
        return false;
      }
    });
}
const wired = listenerWired();

test(
  'ebb serve under ulimit -n 128 refuses connections beyond its derived limit, logs and counts them, and serves again',
  { skip: !wired && 'no listener in src/dataplane (listener-set.ts or listener.ts) calls attachConnectionLimit yet; this test runs once it is wired' },
  async () => {
    const c = new Cleanup();
    cleanup.add(() => c.run());
    const NOFILE = 128;
    // 32 derived, less 4 for the 7 extra descriptors of the listener's socket (ACCEPT_COPIES, accept-copies.ts).
    const max = deriveConnectionLimit({ soft: NOFILE, source: 'proc' }).maxConnections - Math.ceil((ACCEPT_COPIES - 1) / 2);
    const backend = await startBackend('a', c);
    const dir = await tempDir(c);
    const listenerPort = await freePort();
    const configPath = await writeConfig(dir, { listenerPort, targets: [backend.port], healthCheck: false });
    const ebb = spawnLimited(c, NOFILE, [CLI, 'serve', '--workers', '1', '--config', configPath, '--admin', '127.0.0.1:0', '--state-dir', join(dir, 'state'), '--no-auth']);
    const started = await ebb.waitForLog((l) => l['event'] === 'ebb:started', 15_000);
    assert.ok(started !== null, `ebb serve did not start: ${ebb.stderr()}`);
    assert.equal((await status(listenerPort)).status, 200);
    // The budget above counts the copies: wait until they are made (a helper process, shortly after the listener opens).
    const copied = await ebb.waitForLog((l) => l['msg'] === 'listening socket copied', 10_000);
    assert.equal(copied?.['descriptors'], ACCEPT_COPIES, `the listener's socket was not copied: ${JSON.stringify(ebb.logs.filter((l) => l['level'] === 'warn'))}`);

    // Each held connection made a proxied request, so it also has (had) a target connection.
    const held: net.Socket[] = [];
    for (let i = 0; i < max; i++) held.push(await hold(c, listenerPort));
    const refusals = await Promise.all(Array.from({ length: 3 }, () => refused(c, listenerPort)));
    assert.deepEqual(refusals, [true, true, true]);

    const first = await ebb.waitForLog((l) => l['msg'] === DROP_MESSAGE, 3000);
    assert.ok(first !== null, 'the first refusal is logged at once');
    assert.equal(first['maxConnections'], max);
    assert.equal(first['dropped'], 1);
    assert.match(String(first['derivation']), new RegExp(`${NOFILE} open files`));
    assert.match(String(first['action']), /ulimit -n/);
    // The other two are reported together at the end of ebb's 10 s interval.
    assert.ok(await waitFor(() => sumDropped(drops(ebb.logs)) === 3, 15_000), JSON.stringify(drops(ebb.logs)));
    assert.equal(drops(ebb.logs).at(-1)?.['droppedTotal'], 3);

    for (const s of held.splice(0)) s.destroy();
    assert.ok(await servedAgain(listenerPort, 3000), 'ebb serves again once connections closed');
    assert.deepEqual(
      ebb.logs.filter((l) => l['level'] === 'error'),
      [],
    );
  },
);
