/**
 * Polite closing of HTTP/1.1 client connections, read off the wire by raw socket clients: at a drain
 * deadline and at ebb's shutdown, the last response on a connection that closes carries
 * `Connection: close`, and a response still streaming at the deadline is cut, counted (the drain's
 * TerminateResult), logged as a cut with the bytes the client got, and published with its reason.
 */
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import net from 'node:net';
import { after, test } from 'node:test';
import { CHANNEL_NAMES } from '../../src/dataplane/channels.ts';
import type { RequestEndMessage } from '../../src/dataplane/channels.ts';
import { keyOf, LISTENER, pinned, snapshot, startBackend, startPlane, waitFor } from './dataplane-helpers.ts';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const BAD_GATEWAY_CLOSE =
  'HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: 16\r\nServer: ebb\r\nConnection: close\r\n\r\n502 Bad Gateway\n';

/** A raw client connection: what it has read, and whether (and how) ebb closed it. */
interface RawClient {
  readonly socket: net.Socket;
  /** Everything read so far, latin1. */
  text(): string;
  /** Resolves once ebb has closed the connection: 'end' after a FIN, 'reset' on an error. */
  readonly closed: Promise<'end' | 'reset'>;
  send(bytes: string): void;
}

async function rawClient(port: number): Promise<RawClient> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  cleanups.push(() => socket.destroy());
  let got = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (got += d));
  const closed = new Promise<'end' | 'reset'>((resolve) => {
    socket.once('end', () => resolve('end'));
    socket.once('error', () => resolve('reset'));
  });
  return { socket, text: () => got, closed, send: (b) => socket.write(b, 'latin1') };
}

/** A response's head (up to its blank line, which it keeps), and what follows. */
const headOf = (text: string): string => text.slice(0, text.indexOf('\r\n\r\n') + 4);
const bodyOf = (text: string): string => text.slice(text.indexOf('\r\n\r\n') + 4);

const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: ebb.test\r\n\r\n`;

/** A backend: `/stream` sends its head and a first part, then nothing; `/wait` never answers; `/slow` answers after 300 ms. */
async function backend(): Promise<{ port: number }> {
  const b = await startBackend('T', (req, res) => {
    if (req.url === '/wait') return;
    if (req.url === '/stream') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('part one\n');
      return;
    }
    const answer = (): void => void res.end('done');
    if (req.url === '/slow') setTimeout(answer, 300);
    else answer();
  });
  cleanups.push(() => b.close());
  return b;
}

function subscribeEnds(): { ends: RequestEndMessage[]; stop: () => void } {
  const ends: RequestEndMessage[] = [];
  const listener = (m: unknown): void => void ends.push(m as RequestEndMessage);
  diagnosticsChannel.subscribe(CHANNEL_NAMES.requestEnd, listener);
  const stop = (): void => void diagnosticsChannel.unsubscribe(CHANNEL_NAMES.requestEnd, listener);
  cleanups.push(stop);
  return { ends, stop };
}

interface CutLine {
  msg: string;
  listener: string;
  targetKey: string;
  target: string;
  status: number;
  bytesSent: number;
  url: string;
}

test('at a drain deadline: a request still waiting gets a 502 with Connection: close; a streaming response is cut, counted, logged with the bytes sent, and published as cut', async () => {
  const t = await backend();
  const logs: object[] = [];
  const { dp, port } = await startPlane(snapshot([t.port]), logs);
  cleanups.push(() => dp.destroy());
  const { ends, stop } = subscribeEnds();
  const key = keyOf(t.port);

  const streaming = await rawClient(port);
  streaming.send(get('/stream'));
  const waiting = await rawClient(port);
  waiting.send(get('/wait'));
  assert.ok(await waitFor(() => streaming.text().includes('part one') && dp.activity(key).requests === 2));
  await dp.apply(pinned(snapshot([], { version: 2 }), port));

  const result = await dp.terminate(key);
  assert.equal(result.requestsCut, 2);
  assert.equal(await waiting.closed, 'end');
  assert.equal(waiting.text(), BAD_GATEWAY_CLOSE, 'the exact answer: a 502 that says the connection closes');
  await streaming.closed;
  const gotStream = streaming.text();
  assert.match(headOf(gotStream), /^HTTP\/1\.1 200 OK\r\n.*\r\nTransfer-Encoding: chunked\r\n/s);
  assert.equal(bodyOf(gotStream), '9\r\npart one\n\r\n');
  assert.ok(!gotStream.includes('0\r\n\r\n'), 'no last chunk: the client can tell the response was cut');

  const cut = logs.filter((l): l is CutLine => (l as { msg?: string }).msg === 'response cut at drain deadline');
  assert.equal(cut.length, 1);
  assert.deepEqual(
    { ...cut[0], bytesSent: 0 },
    { level: 'warn', msg: 'response cut at drain deadline', dataPlane: 'test', listener: LISTENER, targetKey: key, target: `127.0.0.1:${t.port}`, status: 200, bytesSent: 0, method: 'GET', url: '/stream' },
  );
  assert.equal(cut[0]?.bytesSent, Buffer.byteLength(gotStream, 'latin1'), 'bytesSent is what the client got');
  stop();
  const reasons = ends.map((e) => `${e.url} ${e.status} ${e.errorReason}`).sort();
  assert.deepEqual(reasons, ['/stream 200 terminated:cut', '/wait 502 terminated']);
});

test("at a drain deadline, a response from the draining target that finished before it kept its client connection open: the connection is not the target's", async () => {
  const t = await backend();
  const other = await backend();
  const { dp, port } = await startPlane(snapshot([t.port]));
  cleanups.push(() => dp.destroy());
  const c = await rawClient(port);
  c.send(get('/slow'));
  assert.ok(await waitFor(() => dp.activity(keyOf(t.port)).requests === 1));
  await dp.apply(pinned(snapshot([other.port], { version: 2 }), port));
  assert.ok(await waitFor(() => c.text().endsWith('done')));
  assert.ok(!/connection: close/i.test(c.text()));
  assert.equal((await dp.terminate(keyOf(t.port))).requestsCut, 0);
  c.send(get('/next'));
  assert.ok(await waitFor(() => (c.text().match(/HTTP\/1\.1 200/g) ?? []).length === 2), 'the next request on the same connection is answered');
});

test("at ebb's shutdown: an idle keep-alive connection is kept a moment for a request on its way (answered with Connection: close), a busy one's response carries Connection: close; at the deadline a silent idle one ends, a waiting request gets a 502 with Connection: close and a streaming response is cut and logged", async () => {
  const t = await backend();
  const logs: object[] = [];
  const { dp, port } = await startPlane(snapshot([t.port], { settings: { targetResponseTimeoutMs: 10_000 } }), logs);
  cleanups.push(() => dp.destroy());
  const { ends, stop } = subscribeEnds();
  const key = keyOf(t.port);

  const idle = await rawClient(port);
  idle.send(get('/first'));
  assert.ok(await waitFor(() => idle.text().endsWith('done')));
  const late = await rawClient(port);
  late.send(get('/first'));
  assert.ok(await waitFor(() => late.text().endsWith('done')));
  const busy = await rawClient(port);
  busy.send(get('/slow'));
  const streaming = await rawClient(port);
  streaming.send(get('/stream'));
  const waiting = await rawClient(port);
  waiting.send(get('/wait'));
  assert.ok(await waitFor(() => dp.activity(key).requests === 3 && streaming.text().includes('part one')));

  const t0 = Date.now();
  const closing = dp.close(600);
  // A request that was on its way as the close began: closing the idle connection at once would reset it.
  await new Promise((resolve) => setTimeout(resolve, 100));
  late.send(get('/late'));
  assert.equal(await late.closed, 'end');
  assert.match(late.text(), /done\r?\n?HTTP\/1\.1 200 OK\r\n(.*\r\n)?Connection: close\r\n/s, 'the late request is answered, with Connection: close');
  assert.ok(late.text().endsWith('done'));
  assert.equal(await idle.closed, 'end');
  assert.ok(Date.now() - t0 >= 550, 'the silent idle connection was kept until the deadline (its grace is longer)');
  assert.equal(await busy.closed, 'end');
  assert.match(headOf(busy.text()), /^HTTP\/1\.1 200 OK\r\n(.*\r\n)?Connection: close\r\n/s);
  assert.equal(bodyOf(busy.text()), 'done');
  await closing;
  const took = Date.now() - t0;
  assert.ok(took >= 550 && took < 1500, `closed after ${took} ms`);
  assert.equal(await waiting.closed, 'end');
  assert.equal(waiting.text(), BAD_GATEWAY_CLOSE);
  await streaming.closed;
  assert.ok(!streaming.text().includes('0\r\n\r\n'));

  assert.ok(logs.some((l) => (l as { msg?: string }).msg === 'shutdown deadline reached'));
  const cut = logs.filter((l): l is CutLine => (l as { msg?: string }).msg === 'response cut at listener close deadline');
  assert.equal(cut.length, 1);
  assert.equal(cut[0]?.url, '/stream');
  assert.equal(cut[0]?.bytesSent, Buffer.byteLength(streaming.text(), 'latin1'));
  stop();
  const reasons = ends.map((e) => `${e.url} ${e.status} ${e.errorReason}`).sort();
  assert.deepEqual(reasons, ['/first 200 null', '/first 200 null', '/late 200 null', '/slow 200 null', '/stream 200 listener-closed:cut', '/wait 502 listener-closed']);
});

test("at ebb's shutdown with a long deadline: a silent idle keep-alive connection ends politely (FIN) after a short grace, not at the deadline", async () => {
  const t = await backend();
  const { dp, port } = await startPlane(snapshot([t.port]), []);
  cleanups.push(() => dp.destroy());
  const idle = await rawClient(port);
  idle.send(get('/first'));
  assert.ok(await waitFor(() => idle.text().endsWith('done')));
  const fresh = await rawClient(port);
  const t0 = Date.now();
  const closing = dp.close(10_000);
  assert.equal(await idle.closed, 'end');
  assert.equal(await fresh.closed, 'end');
  const took = Date.now() - t0;
  assert.ok(took >= 900 && took < 3000, `the idle connections ended ${took} ms after the close began`);
  await closing;
  assert.ok(Date.now() - t0 < 5000, 'the close did not wait for its deadline');
});
