import assert from 'node:assert/strict';
import net from 'node:net';
import { after, test } from 'node:test';
import tls from 'node:tls';
import { testCa, leafCert } from '../support/certs.ts';
import { keyOf, pinned, sleep, snapshot, startBackend, startPlane, waitFor, within } from './dataplane-helpers.ts';
import { httpsSnapshot, listenerCert } from './https-harness.ts';

/**
 * The client idle timeout as the listener's ticker keeps it (quiet-watch.ts): a connection is judged by
 * the bytes that moved on its socket, its reads and its writes, plain or TLS, never before the timeout
 * and at most a couple of ticks after it; a change of the timeout reaches the connections already open.
 */

const IDLE = 400;
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface KeptAlive {
  /** Sends one GET and resolves when its whole response (the backend's name, 1 byte) has come. */
  get(): Promise<void>;
  /** Milliseconds from `get`'s last response to the connection's close. */
  closedAfterLast: Promise<number>;
  closed: () => boolean;
}

function keptAlive(socket: net.Socket): KeptAlive {
  let out = '';
  let want = 0;
  let last = 0;
  let isClosed = false;
  let wake: (() => void) | null = null;
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => {
    out += d;
    if ((out.match(/HTTP\/1\.1 200 [^]*?\r\n\r\nB/g) ?? []).length >= want) {
      last = performance.now();
      wake?.();
    }
  });
  socket.on('error', () => {});
  const closedAfterLast = new Promise<number>((resolve) =>
    socket.on('close', () => {
      isClosed = true;
      resolve(performance.now() - last);
    }),
  );
  cleanups.push(() => socket.destroy());
  return {
    get: () => {
      want++;
      socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1');
      return new Promise<void>((resolve, reject) => {
        wake = resolve;
        setTimeout(() => reject(new Error(`no response ${want} in 2 s: ${out}`)), 2000).unref();
      });
    },
    closedAfterLast,
    closed: () => isClosed,
  };
}

function connected(socket: net.Socket, event = 'connect'): Promise<net.Socket> {
  return new Promise((resolve, reject) => socket.once(event, () => resolve(socket)).once('error', reject));
}

/** Requests every IDLE / 4 for 3 × IDLE keep the connection open; once they stop, it closes after IDLE, not before. */
async function activeThenQuiet(c: KeptAlive): Promise<void> {
  for (let i = 0; i < 12; i++) {
    await c.get();
    await sleep(IDLE / 4);
    assert.equal(c.closed(), false, `closed while active, after request ${i + 1}`);
  }
  const quiet = await within(c.closedAfterLast, 3000);
  assert.notEqual(quiet, 'timeout', 'the quiet connection is closed');
  assert.ok((quiet as number) >= IDLE - 5, `closed ${String(quiet)} ms after the last response`);
  assert.ok((quiet as number) < IDLE + 1000, `closed ${String(quiet)} ms after the last response`);
}

test('a plain keep-alive connection stays open while requests come more often than the idle timeout, and closes after it', async () => {
  const backend = await startBackend('B');
  cleanups.push(() => backend.close());
  const { dp, port } = await startPlane(snapshot([backend.port], { settings: { idleTimeoutMs: IDLE } }));
  cleanups.push(() => dp.destroy());
  await activeThenQuiet(keptAlive(await connected(net.connect(port, '127.0.0.1'))));
});

test('an HTTPS keep-alive connection: the same, from the bytes that moved under TLS', async () => {
  const backend = await startBackend('B');
  cleanups.push(() => backend.close());
  const cert = leafCert(['idle.test']);
  const { dp, port } = await startPlane(httpsSnapshot([backend.port], [listenerCert('c', cert, ['idle.test'])], { settings: { idleTimeoutMs: IDLE } }));
  cleanups.push(() => dp.destroy());
  const socket = tls.connect({ host: '127.0.0.1', port, servername: 'idle.test', ca: testCa().certPem, ALPNProtocols: ['http/1.1'] });
  await activeThenQuiet(keptAlive(await connected(socket, 'secureConnect')));
});

const BIG = 32 * 1024 * 1024;

/** A response of BIG bytes whose client stops reading at its first bytes: the plane's logs, the plane, the target's key, the client's socket, and when it stopped. */
async function stalledDownload(): Promise<{ logs: object[]; dp: Awaited<ReturnType<typeof startPlane>>['dp']; key: string; s: net.Socket; pausedAt: number }> {
  const body = Buffer.alloc(BIG, 'x');
  const backend = await startBackend('B', (_req, res) => res.end(body));
  cleanups.push(() => backend.close());
  const logs: object[] = [];
  const { dp, port } = await startPlane(snapshot([backend.port], { settings: { idleTimeoutMs: IDLE } }), logs);
  cleanups.push(() => dp.destroy());
  const s = await connected(net.connect(port, '127.0.0.1'));
  cleanups.push(() => s.destroy());
  s.on('error', () => {});
  s.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
  await new Promise((resolve) => s.once('data', resolve));
  s.pause();
  return { logs, dp, key: keyOf(backend.port), s, pausedAt: performance.now() };
}

const loggedKind = (logs: object[], kind: string): boolean => logs.some((l) => (l as { kind?: string }).kind === kind);

test('a client that stops reading a response is cut after the idle timeout, not before', async () => {
  const { logs, dp, key, s, pausedAt } = await stalledDownload();
  assert.ok(await waitFor(() => loggedKind(logs, 'client-timeout'), 3000), `cut: ${JSON.stringify(logs)}`);
  const after = performance.now() - pausedAt;
  assert.ok(after >= IDLE - 5, `cut ${after.toFixed(0)} ms after the client stopped reading`);
  let received = 0;
  s.on('data', (d: Buffer) => (received += d.length));
  s.resume();
  await within(new Promise((resolve) => s.once('close', resolve)), 3000);
  assert.ok(received < BIG, `the response was cut (${received} bytes read after the pause)`);
  assert.equal(dp.activity(key).completed, 0);
});

test('a new idle timeout reaches a connection already open', async () => {
  const backend = await startBackend('B');
  cleanups.push(() => backend.close());
  const first = snapshot([backend.port], { settings: { idleTimeoutMs: 60_000 } });
  const { dp, port } = await startPlane(first);
  cleanups.push(() => dp.destroy());
  const c = keptAlive(await connected(net.connect(port, '127.0.0.1')));
  await c.get();
  await sleep(IDLE);
  assert.equal(c.closed(), false);
  const r = await dp.apply(pinned(snapshot([backend.port], { settings: { idleTimeoutMs: IDLE }, version: 2 }), port));
  assert.deepEqual(r.listenerErrors, []);
  // Quiet for IDLE already: it goes within a tick or two of the change.
  assert.notEqual(await within(c.closedAfterLast, 1000), 'timeout', 'closed under the new idle timeout');
});

test('snapshots applied faster than the ticker ticks do not hold the idle timeout off', async () => {
  const backend = await startBackend('B');
  cleanups.push(() => backend.close());
  const settings = { idleTimeoutMs: IDLE };
  const { dp, port } = await startPlane(snapshot([backend.port], { settings }));
  cleanups.push(() => dp.destroy());
  const c = keptAlive(await connected(net.connect(port, '127.0.0.1')));
  await c.get();
  // An apply every 20 ms: the ticker's period here is IDLE / 8 = 50 ms.
  let version = 2;
  const churn = setInterval(() => void dp.apply(pinned(snapshot([backend.port], { settings, version: version++ }), port)), 20);
  cleanups.push(() => clearInterval(churn));
  const quiet = await within(c.closedAfterLast, 3000);
  clearInterval(churn);
  assert.ok(version > 10, `${version - 2} applies`);
  assert.notEqual(quiet, 'timeout', 'the idle connection is closed while snapshots keep coming');
  assert.ok((quiet as number) >= IDLE - 5, `closed ${String(quiet)} ms after the response`);
});

test('a client that stops reading but keeps sending bytes is cut after the idle timeout, named for the client', async () => {
  const { logs, dp, key, s, pausedAt } = await stalledDownload();
  // Bytes behind the request are held, unread by anyone, but they are bytes read on the client's socket:
  // the client's side is never quiet, and the target's (held for the client) ends it.
  const drip = setInterval(() => s.write('G'), IDLE / 4);
  cleanups.push(() => clearInterval(drip));
  assert.ok(await waitFor(() => loggedKind(logs, 'client-timeout'), 3 * IDLE + 2000), `cut: ${JSON.stringify(logs)}`);
  clearInterval(drip);
  const after = performance.now() - pausedAt;
  assert.ok(after >= IDLE - 5, `cut ${after.toFixed(0)} ms after the client stopped reading`);
  assert.ok(!loggedKind(logs, 'idle-timeout'), `named for the target: ${JSON.stringify(logs)}`);
  assert.ok(await waitFor(() => dp.activity(key).connections === 0, 2000), 'the target connection is closed');
});
