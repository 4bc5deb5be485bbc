/**
 * HTTP/2 and draining (issue 10, test 4, and "Polite closing" for HTTP/2), through a real HTTPS
 * listener of an HttpDataPlane: a stream is an in-flight request on its target, so a drain waits for
 * it and ends when it does while the same connection's new streams go elsewhere; a drain deadline
 * cuts that target's streams and leaves the connection up; ebb's close and a listener's removal send
 * GOAWAY, let the streams in flight finish, then close the connection, and cut what remains at the
 * deadline.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import diagnosticsChannel from 'node:diagnostics_channel';
import http2 from 'node:http2';
import type { ClientHttp2Session } from 'node:http2';
import { test } from 'node:test';
import { CHANNEL_NAMES } from '../../src/dataplane/channels.ts';
import type { Http2SessionEndMessage, RequestEndMessage } from '../../src/dataplane/channels.ts';
import type { HttpDataPlane } from '../../src/dataplane/http-data-plane.ts';
import { testCa } from '../support/certs.ts';
import { Cleanup } from '../support/cleanup.ts';
import { keyOf, pinned, sleep, snapshot, startBackend, startPlane, waitFor } from './dataplane-helpers.ts';
import type { Backend } from './dataplane-helpers.ts';
import { asHttps, h2Connect, h2Get } from './http2-harness.ts';

const { NGHTTP2_NO_ERROR, NGHTTP2_INTERNAL_ERROR } = http2.constants;

interface Plane {
  readonly dp: HttpDataPlane;
  readonly port: number;
  readonly logs: object[];
  readonly idle: string[];
}

async function plane(c: Cleanup, backends: readonly Backend[], options: { listenerCloseTimeoutMs?: number; http2?: boolean } = {}): Promise<Plane> {
  const logs: object[] = [];
  const snap = asHttps(snapshot(backends.map((b) => b.port), { settings: { http2: options.http2 ?? true } }));
  const { dp, port } = await startPlane(snap, logs, options.listenerCloseTimeoutMs === undefined ? {} : { listenerCloseTimeoutMs: options.listenerCloseTimeoutMs });
  c.add(() => dp.destroy());
  const idle: string[] = [];
  dp.onIdle((k) => idle.push(k));
  return { dp, port, logs, idle };
}

async function connect(c: Cleanup, port: number): Promise<ClientHttp2Session> {
  const client = await h2Connect(port);
  c.add(() => client.destroy());
  return client;
}

/** A backend that answers `/stream` with a head and a first chunk, then nothing until the test says. */
async function streamingBackend(c: Cleanup, name: string): Promise<Backend & { finish: () => void }> {
  const open = new Set<() => void>();
  const b = await startBackend(name, (req, res) => {
    if (req.url === '/stream') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first ');
      open.add(() => res.end('last'));
      return;
    }
    if (req.url?.startsWith('/slow') === true) {
      const timer = setTimeout(() => res.end(`${name} slow`), Number(new URL(req.url, 'http://x').searchParams.get('ms') ?? '500'));
      res.on('close', () => clearTimeout(timer));
      return;
    }
    res.setHeader('x-backend', name);
    res.end(name);
  });
  c.add(() => b.close());
  return Object.assign(b, { finish: () => open.forEach((f) => f()) });
}

test('a stream in flight on A finishes when A leaves the routes, the same connection goes on to B, and A is idle only then', { timeout: 15_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await streamingBackend(c, 'A');
  const B = await streamingBackend(c, 'B');
  const p = await plane(c, [A]);
  const client = await connect(c, p.port);

  const slow = h2Get(client, '/slow?ms=400');
  assert.ok(await waitFor(() => A.inFlight() === 1), 'the slow stream reached A');
  const started = Date.now();
  await p.dp.apply(pinned(asHttps(snapshot([B.port], { version: 2 })), p.port));
  assert.equal(p.dp.activity(keyOf(A.port)).requests, 1, "the stream is A's request in flight");

  const during = await Promise.all([h2Get(client, '/n1'), h2Get(client, '/n2'), h2Get(client, '/n3')]);
  assert.deepEqual(during.map((r) => r.body), ['B', 'B', 'B'], 'new streams on the same connection go to B');
  assert.deepEqual(p.idle, [], 'A is not idle while its stream runs');

  const r = await slow;
  assert.equal(r.status, 200);
  assert.equal(r.body, 'A slow', 'the stream on A finished, whole');
  assert.ok(await waitFor(() => p.idle.includes(keyOf(A.port))), 'onIdle(A) once it finished');
  assert.ok(Date.now() - started >= 250, 'and not before');
  assert.equal(p.dp.activity(keyOf(A.port)).completed, 1);
  assert.equal(client.closed || client.destroyed, false, 'the connection was never bound to A');
});

test('a drain deadline cuts the streams to A (RST_STREAM once the response started, 502 before) and the connection stays up', { timeout: 15_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await streamingBackend(c, 'A');
  const B = await streamingBackend(c, 'B');
  const p = await plane(c, [A]);
  const client = await connect(c, p.port);
  const ends: RequestEndMessage[] = [];
  const onEnd = (m: unknown): void => void ends.push(m as RequestEndMessage);
  diagnosticsChannel.subscribe(CHANNEL_NAMES.requestEnd, onEnd);
  c.add(() => diagnosticsChannel.unsubscribe(CHANNEL_NAMES.requestEnd, onEnd));

  // One stream whose response has started (a head and a chunk), one still waiting for its answer.
  const streaming = client.request({ ':path': '/stream' });
  let got = '';
  streaming.setEncoding('utf8');
  streaming.on('data', (d: string) => (got += d));
  streaming.on('error', () => {});
  const streamingClosed = new Promise<number>((r) => streaming.on('close', () => r(streaming.rstCode ?? -1)));
  assert.ok(await waitFor(() => got === 'first '), 'the response has started');
  const waiting = h2Get(client, '/slow?ms=5000');
  assert.ok(await waitFor(() => A.inFlight() === 2));

  await p.dp.apply(pinned(asHttps(snapshot([B.port], { version: 2 })), p.port));
  const result = await p.dp.terminate(keyOf(A.port));
  assert.equal(result.requestsCut, 2, 'both of A\'s streams are cut and counted');

  assert.equal(await streamingClosed, NGHTTP2_INTERNAL_ERROR, 'the started response is reset: RST_STREAM INTERNAL_ERROR');
  assert.equal(got, 'first ', 'nothing after the cut');
  const w = await waiting;
  assert.equal(w.status, 502, 'the one not answered yet gets a 502');
  assert.equal(p.dp.activity(keyOf(A.port)).requests, 0);

  const after = await h2Get(client, '/after');
  assert.equal(after.status, 200, 'the connection itself stays up');
  assert.equal(after.body, 'B');
  const cut = ends.filter((e) => e.targetKey === keyOf(A.port));
  assert.deepEqual(cut.map((e) => e.errorReason).sort(), ['terminated', 'terminated:cut']);
  assert.ok(cut.every((e) => e.version === 'HTTP/2.0'));
  assert.ok(p.logs.some((l) => (l as { msg?: string }).msg === 'response cut at drain deadline'));
});

test("ebb's close: GOAWAY first, the stream in flight finishes, then the connection closes", { timeout: 15_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await streamingBackend(c, 'A');
  const p = await plane(c, [A]);
  const client = await connect(c, p.port);
  const events: string[] = [];
  const goaway = new Promise<{ code: number; at: number }>((r) => client.once('goaway', (code: number) => r({ code, at: Date.now() })));
  const closed = new Promise<number>((r) => client.once('close', () => r(Date.now())));

  const slow = h2Get(client, '/slow?ms=400').then((r) => {
    events.push('slow done');
    return r;
  });
  assert.ok(await waitFor(() => A.inFlight() === 1));
  const closing = p.dp.close(5_000).then(() => events.push('dp closed'));
  const g = await goaway;
  events.push('goaway');
  assert.equal(g.code, NGHTTP2_NO_ERROR, 'a polite GOAWAY');
  // Node 20's client refuses a request after GOAWAY at once; Node 24's cancels it as a pending stream.
  const refused = await new Promise<boolean>((resolve) => {
    try {
      const late = client.request({ ':path': '/late' });
      late.on('error', () => resolve(true));
      late.on('response', () => resolve(false));
    } catch {
      resolve(true);
    }
  });
  assert.equal(refused, true, 'no new stream after it');
  const r = await slow;
  assert.equal(r.status, 200);
  assert.equal(r.body, 'A slow', 'the stream in flight finished whole');
  const closedAt = await closed;
  events.push('client closed');
  await closing;
  assert.ok(closedAt >= g.at);
  assert.deepEqual(events.slice(0, 2), ['goaway', 'slow done'], `GOAWAY came before the stream ended: ${events.join(', ')}`);
  assert.ok(events.indexOf('client closed') > events.indexOf('slow done'));
});

test("at ebb's close deadline the stream still in flight is cut and counted; the session end says so", { timeout: 15_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await streamingBackend(c, 'A');
  const p = await plane(c, [A]);
  const client = await connect(c, p.port);
  const sessions: Http2SessionEndMessage[] = [];
  const onSession = (m: unknown): void => void sessions.push(m as Http2SessionEndMessage);
  diagnosticsChannel.subscribe(CHANNEL_NAMES.http2SessionEnd, onSession);
  c.add(() => diagnosticsChannel.unsubscribe(CHANNEL_NAMES.http2SessionEnd, onSession));

  c.add(() => A.finish());
  const localPort = client.socket.localPort;
  const streaming = client.request({ ':path': '/stream' });
  let got = '';
  streaming.setEncoding('utf8');
  streaming.on('data', (d: string) => (got += d));
  streaming.on('error', () => {});
  const streamingClosed = new Promise<number>((r) => streaming.on('close', () => r(streaming.rstCode ?? -1)));
  assert.ok(await waitFor(() => got === 'first '));
  const goaway = new Promise<number>((r) => client.once('goaway', (code: number) => r(code)));
  const t0 = Date.now();
  await p.dp.close(300);
  assert.equal(await goaway, NGHTTP2_NO_ERROR, 'GOAWAY came first');
  assert.equal(await streamingClosed, NGHTTP2_INTERNAL_ERROR, 'then, at the deadline, RST_STREAM');
  assert.ok(Date.now() - t0 < 3_000);
  assert.ok(p.logs.some((l) => (l as { msg?: string; streams?: number }).msg === 'http2 streams cut' && (l as { streams?: number }).streams === 1), 'the cut is logged and counted');
  const mine = (): Http2SessionEndMessage | undefined => sessions.find((m) => m.clientPort === localPort);
  assert.ok(await waitFor(() => mine() !== undefined), 'the session end is published');
  assert.equal(mine()?.reason, 'shutdown');
  assert.equal(mine()?.streamsCut, 1);
  assert.equal(mine()?.streams, 1);
});

test("a listener's removal: GOAWAY, the stream in flight finishes, the connection closes; other listeners are not touched", { timeout: 15_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await streamingBackend(c, 'A');
  const p = await plane(c, [A]);
  const client = await connect(c, p.port);
  const goaway = new Promise<number>((r) => client.once('goaway', (code: number) => r(code)));
  const closed = new Promise<void>((r) => client.once('close', () => r()));
  const slow = h2Get(client, '/slow?ms=500');
  assert.ok(await waitFor(() => A.inFlight() === 1));
  await p.dp.apply({ version: 2, listeners: [], targetGroups: asHttps(snapshot([A.port])).targetGroups });
  assert.equal(await goaway, NGHTTP2_NO_ERROR);
  const r = await slow;
  assert.equal(r.status, 200);
  assert.equal(r.body, 'A slow');
  await closed;
});

test('curl --http2 through the HTTPS listener speaks HTTP/2; with routing.http2.enabled false it gets HTTP/1.1', { timeout: 15_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await streamingBackend(c, 'A');
  const on = await plane(c, [A]);
  const off = await plane(c, [A], { http2: false });
  const curl = (port: number): Promise<string> =>
    new Promise((resolve, reject) =>
      execFile(
        'curl',
        ['-sS', '--http2', '--max-time', '5', '--resolve', `localhost:${port}:127.0.0.1`, '--cacert', testCa().certFile, '-w', ' %{http_version}', `https://localhost:${port}/`],
        { timeout: 10_000 },
        (err, stdout, stderr) => (err === null ? resolve(stdout) : reject(new Error(`${err.message}: ${stderr}`))),
      ),
    );
  assert.equal(await curl(on.port), 'A 2');
  assert.equal(await curl(off.port), 'A 1.1');
  await sleep(0);
});
