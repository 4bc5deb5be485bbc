import assert from 'node:assert/strict';
import http from 'node:http';
import { after, test } from 'node:test';
import type { Backend } from './dataplane-helpers.ts';
import {
  connectOutcome,
  keyOf,
  LISTENER,
  openWs,
  pinned,
  request,
  sleep,
  snapshot,
  startBackend,
  startPlane,
  startWsBackend,
  waitFor,
  within,
} from './dataplane-helpers.ts';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function twoBackends(handler?: http.RequestListener): Promise<[Backend, Backend]> {
  const a = await startBackend('A', handler);
  const b = await startBackend('B');
  cleanups.push(() => a.close(), () => b.close());
  return [a, b];
}

test("a keep-alive client's next request goes to the other target once the first leaves the snapshot", async () => {
  const [a, b] = await twoBackends();
  const { dp, port } = await startPlane(snapshot([a.port, b.port]));
  cleanups.push(() => dp.destroy());
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  cleanups.push(() => agent.destroy());
  const first = await request(port, { agent });
  assert.equal(first.body, 'A');
  await dp.apply(pinned(snapshot([b.port], { version: 2 }), port));
  const next: string[] = [];
  for (let i = 0; i < 5; i++) next.push((await request(port, { agent })).body);
  assert.deepEqual(next, ['B', 'B', 'B', 'B', 'B']);
});

test('an in-flight request completes after its target leaves the snapshot; onIdle fires then', async () => {
  const [a, b] = await twoBackends((_req, res) => {
    setTimeout(() => res.end('A-slow'), 400);
  });
  const { dp, port } = await startPlane(snapshot([a.port, b.port]));
  cleanups.push(() => dp.destroy());
  const idle: Array<{ key: string; at: number }> = [];
  dp.onIdle((key) => idle.push({ key, at: Date.now() }));
  const inflight = request(port);
  assert.ok(await waitFor(() => dp.activity(keyOf(a.port)).requests === 1));
  await dp.apply(pinned(snapshot([b.port], { version: 2 }), port));
  assert.equal(idle.length, 0, 'not idle while the request runs');
  assert.equal((await request(port)).body, 'B');
  const r = await inflight;
  const doneAt = Date.now();
  assert.equal(r.status, 200);
  assert.equal(r.body, 'A-slow');
  assert.ok(await waitFor(() => idle.length === 1, 500));
  assert.equal(idle[0]?.key, keyOf(a.port));
  assert.ok(Math.abs((idle[0]?.at ?? 0) - doneAt) < 200);
  const act = dp.activity(keyOf(a.port));
  assert.equal(act.requests, 0);
  assert.equal(act.completed, 1);
  // The connection that served it is closed, not pooled.
  assert.ok(await waitFor(() => a.openConnections() === 0, 1000));
});

test('onIdle fires at apply() for a removed target that is already idle', async () => {
  const [a, b] = await twoBackends();
  const { dp, port } = await startPlane(snapshot([a.port, b.port]));
  cleanups.push(() => dp.destroy());
  const idle: string[] = [];
  dp.onIdle((key) => idle.push(key));
  await dp.apply(pinned(snapshot([b.port], { version: 2 }), port));
  assert.deepEqual(idle, [keyOf(a.port)]);
});

test('idle pooled connections to a target are closed when it leaves the snapshot', async () => {
  const [a, b] = await twoBackends();
  const { dp, port } = await startPlane(snapshot([a.port]));
  cleanups.push(() => dp.destroy());
  await Promise.all([request(port), request(port), request(port)]);
  assert.ok(a.openConnections() >= 1, 'pooled connections stay open');
  const before = a.openConnections();
  // A keep-alive client's second request takes a pooled connection (its first gets one of its own).
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });
  cleanups.push(() => keepAlive.destroy());
  await request(port, { agent: keepAlive });
  const withFirst = a.openConnections();
  assert.equal(withFirst, before + 1, 'the first request of a client connection opens a target connection of its own');
  await request(port, { agent: keepAlive });
  assert.equal(a.openConnections(), withFirst, 'a pooled connection is reused');
  await dp.apply(pinned(snapshot([b.port], { version: 2 }), port));
  assert.ok(await waitFor(() => a.openConnections() === 0, 1000), `still open: ${a.openConnections()}`);
});

test('terminate() cuts a response mid-stream and counts it; one not started gets 502', async () => {
  const streaming = await startBackend('S', (req, res) => {
    if (req.url === '/wait') return; // never answers
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.write('part one\n');
  });
  cleanups.push(() => streaming.close());
  const { dp, port } = await startPlane(snapshot([streaming.port]));
  cleanups.push(() => dp.destroy());
  const key = keyOf(streaming.port);
  const cut = new Promise<{ got: string; aborted: boolean }>((resolve) => {
    http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let got = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (got += c));
      res.on('error', () => {});
      res.on('close', () => resolve({ got, aborted: !res.complete }));
    });
  });
  const waiting = request(port, { path: '/wait' });
  assert.ok(await waitFor(() => dp.activity(key).requests === 2));
  await sleep(50);
  await dp.apply(pinned(snapshot([], { version: 2 }), port));
  const result = await dp.terminate(key);
  assert.equal(result.requestsCut, 2);
  assert.ok(result.connectionsClosed >= 2);
  const c = await cut;
  assert.equal(c.got, 'part one\n');
  assert.equal(c.aborted, true);
  const w = await waiting;
  assert.equal(w.status, 502);
  assert.equal(w.headers.connection, 'close');
  assert.equal(dp.activity(key).requests, 0);
});

test('a WebSocket keeps exchanging after its target leaves the snapshot; terminate() closes it with 1001', async () => {
  const ws = await startWsBackend();
  cleanups.push(() => ws.close());
  const other = await startBackend('B');
  cleanups.push(() => other.close());
  const { dp, port } = await startPlane(snapshot([ws.port]));
  cleanups.push(() => dp.destroy());
  const key = keyOf(ws.port);
  const { client, messages, closed } = await openWs(port, '/chat');
  cleanups.push(() => client.terminate());
  client.send('one');
  assert.ok(await waitFor(() => messages.length === 1));
  assert.equal(dp.activity(key).tunnels, 1);
  await dp.apply(pinned(snapshot([other.port], { version: 2 }), port));
  for (let i = 0; i < 3; i++) client.send(`after-${i}`);
  assert.ok(await waitFor(() => messages.length === 4));
  assert.deepEqual(messages, ['echo:one', 'echo:after-0', 'echo:after-1', 'echo:after-2']);
  const idle: string[] = [];
  dp.onIdle((k) => idle.push(k));
  const result = await dp.terminate(key);
  assert.equal(result.tunnelsClosed, 1);
  const c = await closed;
  assert.equal(c.code, 1001);
  assert.equal(c.reason, 'going away');
  assert.equal(dp.activity(key).tunnels, 0);
  assert.deepEqual(idle, [key]);
});

test('a second close() resolves only when the first close is done', async () => {
  const slow = await startBackend('slow2', (_req, res) => {
    setTimeout(() => res.end('done'), 400);
  });
  cleanups.push(() => slow.close());
  const { dp, port } = await startPlane(snapshot([slow.port]));
  cleanups.push(() => dp.destroy());
  const inflight = request(port);
  assert.ok(await waitFor(() => dp.activity(keyOf(slow.port)).requests === 1));
  let firstDone = false;
  const first = dp.close(3000).then(() => (firstDone = true));
  await dp.close(0);
  assert.equal(firstDone || (await within(first, 10)) !== 'timeout', true, 'the second close waited for the first');
  assert.equal(dp.activity(keyOf(slow.port)).requests, 0, 'the request in flight finished before either close resolved');
  assert.equal((await inflight).body, 'done');
});

test('close(deadline) lets a 500 ms request finish and refuses new connections', async () => {
  const slow = await startBackend('slow', (_req, res) => {
    setTimeout(() => res.end('done'), 500);
  });
  cleanups.push(() => slow.close());
  const { dp, port } = await startPlane(snapshot([slow.port]));
  cleanups.push(() => dp.destroy());
  const inflight = request(port);
  assert.ok(await waitFor(() => dp.activity(keyOf(slow.port)).requests === 1));
  const t0 = Date.now();
  const closing = dp.close(3000);
  await sleep(50);
  assert.equal(await connectOutcome(port), 'ECONNREFUSED');
  const r = await inflight;
  assert.equal(r.status, 200);
  assert.equal(r.body, 'done');
  assert.equal(r.headers.connection, 'close');
  await closing;
  assert.ok(Date.now() - t0 < 2000, 'close resolves once the work is done, not at the deadline');
});

test('close(deadline) ends what is left at the deadline: a request still waiting for its response gets a 502 with Connection: close', async () => {
  const never = await startBackend('never', () => {});
  cleanups.push(() => never.close());
  const { dp, port } = await startPlane(snapshot([never.port], { settings: { targetResponseTimeoutMs: 10_000 } }));
  cleanups.push(() => dp.destroy());
  const inflight = request(port).then(
    (r) => `status ${r.status}`,
    (e: NodeJS.ErrnoException) => e.code ?? 'error',
  );
  assert.ok(await waitFor(() => dp.activity(keyOf(never.port)).requests === 1));
  const t0 = Date.now();
  await dp.close(300);
  const elapsed = Date.now() - t0;
  assert.ok(elapsed >= 250 && elapsed < 1500, `closed after ${elapsed} ms`);
  assert.equal(await inflight, 'status 502');
});

test('a removed listener stops accepting, finishes in-flight work with Connection: close', async () => {
  const slow = await startBackend('slow', (_req, res) => {
    setTimeout(() => res.end('done'), 300);
  });
  cleanups.push(() => slow.close());
  const { dp, port } = await startPlane(snapshot([slow.port]));
  cleanups.push(() => dp.destroy());
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  cleanups.push(() => agent.destroy());
  const inflight = request(port, { agent });
  assert.ok(await waitFor(() => dp.activity(keyOf(slow.port)).requests === 1));
  const r = await dp.apply({ version: 2, listeners: [], targetGroups: new Map() });
  assert.deepEqual(r.listenerErrors, []);
  assert.equal(dp.boundPort(LISTENER), null);
  const res = await inflight;
  assert.equal(res.body, 'done');
  assert.equal(res.headers.connection, 'close');
  assert.equal(await connectOutcome(port), 'ECONNREFUSED');
});

test('completed counts only responses relayed whole, not cut, failed or abandoned ones', async () => {
  const streaming = await startBackend('S', (req, res) => {
    if (req.url === '/full') return void res.end('whole');
    if (req.url === '/reset') return void req.socket.destroy();
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.write('part one\n'); // never ends
  });
  cleanups.push(() => streaming.close());
  const { dp, port } = await startPlane(snapshot([streaming.port]));
  cleanups.push(() => dp.destroy());
  const key = keyOf(streaming.port);
  assert.equal((await request(port, { path: '/full' })).body, 'whole');
  assert.equal(dp.activity(key).completed, 1);
  // A target that resets the connection: ebb answers 502.
  assert.equal((await request(port, { path: '/reset' })).status, 502);
  // A client that goes away mid-response.
  await new Promise<void>((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/stream', agent: false }, (res) => {
      res.once('data', () => req.destroy());
      res.on('error', () => {});
    });
    req.on('error', () => {});
    req.on('close', () => resolve());
  });
  assert.ok(await waitFor(() => dp.activity(key).requests === 0));
  // A response cut at a drain deadline.
  const cut = new Promise<void>((resolve) => {
    http.get({ host: '127.0.0.1', port, path: '/stream', agent: false }, (res) => {
      res.on('data', () => {});
      res.on('error', () => {});
      res.on('close', () => resolve());
    });
  });
  assert.ok(await waitFor(() => dp.activity(key).requests === 1));
  await sleep(50);
  await dp.apply(pinned(snapshot([], { version: 2 }), port));
  await dp.terminate(key);
  await cut;
  assert.equal(dp.activity(key).requests, 0);
  assert.equal(dp.activity(key).completed, 1, 'only the whole response counts');
});

test("terminate() closes a WebSocket as soon as the client answers ebb's close frame, not at the end of the grace", async () => {
  const ws = await startWsBackend();
  cleanups.push(() => ws.close());
  const grace = 3000;
  const { dp, port } = await startPlane(snapshot([ws.port]), [], { tunnelCloseGraceMs: grace });
  cleanups.push(() => dp.destroy());
  const key = keyOf(ws.port);
  const { client, closed } = await openWs(port);
  cleanups.push(() => client.terminate());
  const echoed = new Promise<string>((resolve) => client.once('message', (m) => resolve(m.toString())));
  client.send('hi');
  assert.equal(await echoed, 'echo:hi');
  await dp.apply(pinned(snapshot([], { version: 2 }), port));
  const t0 = Date.now();
  const result = await dp.terminate(key);
  const took = Date.now() - t0;
  assert.equal(result.tunnelsClosed, 1);
  assert.ok(took < grace / 2, `terminate() took ${took} ms (grace ${grace} ms)`);
  assert.equal((await closed).code, 1001);
  assert.equal(dp.activity(key).tunnels, 0);
});

test('a removed listener closes what is still open at its deadline: tunnels with 1001, then requests (502)', async () => {
  const ws = await startWsBackend((req, res) => {
    if (req.url === '/never') return; // never answers
    res.end('ok');
  });
  cleanups.push(() => ws.close());
  const deadline = 400;
  const snap = snapshot([ws.port], { settings: { targetResponseTimeoutMs: 10_000 } });
  const { dp, port } = await startPlane(snap, [], { listenerCloseTimeoutMs: deadline });
  cleanups.push(() => dp.destroy());
  const key = keyOf(ws.port);
  const { client, closed } = await openWs(port);
  cleanups.push(() => client.terminate());
  const hanging = request(port, { path: '/never' }).then(
    (r) => `status ${r.status}`,
    (e: NodeJS.ErrnoException) => e.code ?? 'error',
  );
  assert.ok(await waitFor(() => dp.activity(key).requests === 1 && dp.activity(key).tunnels === 1));
  // The listener leaves the snapshot; the target group (and its target) stays.
  const t0 = Date.now();
  await dp.apply({ version: 2, listeners: [], targetGroups: snap.targetGroups });
  const echoed = new Promise<string>((resolve) => client.once('message', (m) => resolve(m.toString())));
  client.send('still here');
  assert.equal(await echoed, 'echo:still here', 'the tunnel keeps working until the deadline');
  const c = await within(closed, 3000);
  assert.ok(c !== 'timeout', 'the tunnel is closed at the deadline');
  assert.equal(c.code, 1001);
  const after = c.at - t0;
  assert.ok(after >= deadline - 50 && after < deadline + 1000, `closed ${after} ms after the removal`);
  assert.equal(await hanging, 'status 502');
  assert.ok(await waitFor(() => dp.activity(key).tunnels === 0 && dp.activity(key).requests === 0));
});

test("a target's entry is freed by an apply() after it left the snapshot and stayed idle for the retention time", async () => {
  const [a, b] = await twoBackends((req, res) => {
    if (req.url === '/slow') return void setTimeout(() => res.end('slow'), 300);
    res.end('A');
  });
  const retain = 150;
  const { dp, port } = await startPlane(snapshot([a.port, b.port]), [], { idleEntryRetainMs: retain });
  cleanups.push(() => dp.destroy());
  const keyA = keyOf(a.port);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  cleanups.push(() => agent.destroy());
  while ((await request(port, { agent })).body !== 'A'); // round robin: at most two requests
  assert.equal(dp.activity(keyA).completed, 1);
  // A leaves the snapshot; its counter is still readable during the retention time, even across applies.
  await dp.apply(pinned(snapshot([b.port], { version: 2 }), port));
  await dp.apply(pinned(snapshot([b.port], { version: 3 }), port));
  assert.ok(dp.entries.has(keyA));
  assert.equal(dp.activity(keyA).completed, 1);
  await sleep(retain + 50);
  assert.ok(dp.entries.has(keyA), 'freed lazily, by an apply()');
  await dp.apply(pinned(snapshot([b.port], { version: 4 }), port));
  assert.equal(dp.entries.has(keyA), false, 'freed');
  assert.deepEqual(dp.activity(keyA), { requests: 0, tunnels: 0, completed: 0 });
  assert.ok(dp.entries.has(keyOf(b.port)), 'a routable entry stays');
  // A busy entry is not freed, however long its request runs; it is once idle past the retention.
  await dp.apply(pinned(snapshot([a.port], { version: 5 }), port));
  const slow = request(port, { path: '/slow' });
  assert.ok(await waitFor(() => dp.activity(keyA).requests === 1));
  await dp.apply(pinned(snapshot([b.port], { version: 6 }), port));
  await sleep(retain + 50);
  await dp.apply(pinned(snapshot([b.port], { version: 7 }), port));
  assert.equal(dp.activity(keyA).requests, 1, 'kept while busy');
  assert.equal((await slow).body, 'slow');
  assert.equal(dp.activity(keyA).completed, 1, 'the drain can read its count after the request ends');
  await sleep(retain + 50);
  await dp.apply(pinned(snapshot([b.port], { version: 8 }), port));
  assert.equal(dp.entries.has(keyA), false);
});
