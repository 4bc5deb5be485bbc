import assert from 'node:assert/strict';
import net from 'node:net';
import { after, test } from 'node:test';
import { WebSocket } from 'ws';
import { keyOf, openWs, request, sleep, snapshot, startBackend, startPlane, startWsBackend, waitFor, within } from './dataplane-helpers.ts';

/**
 * The listener's idle timeout (`idle_timeout.timeout_seconds`) is an inactivity timeout over the
 * whole exchange, both sides, and over tunnels; the target response timeout still bounds the time
 * to the first byte of the response.
 */

const IDLE = 300;
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A raw client: sends `bytes`, collects what comes back until the server closes or `ms` passes. */
function rawClient(port: number, bytes: string): { out: () => string; closed: Promise<number>; socket: net.Socket } {
  const s = net.connect(port, '127.0.0.1');
  const t0 = Date.now();
  let out = '';
  s.setEncoding('latin1');
  s.on('data', (d: string) => (out += d));
  s.on('error', () => {});
  const closed = new Promise<number>((resolve) => s.on('close', () => resolve(Date.now() - t0)));
  s.write(bytes, 'latin1');
  cleanups.push(() => s.destroy());
  return { out: () => out, closed, socket: s };
}

test('a request body that stalls gets 408 and both connections are closed', async () => {
  const backend = await startBackend('B', (req, res) => {
    req.on('data', () => {});
    req.on('end', () => res.end('got it'));
  });
  cleanups.push(() => backend.close());
  const { dp, port } = await startPlane(snapshot([backend.port], { settings: { idleTimeoutMs: IDLE } }));
  cleanups.push(() => dp.destroy());
  const c = rawClient(port, 'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc');
  assert.ok(await waitFor(() => backend.openConnections() === 1));
  const closedAfter = await within(c.closed, 3000);
  assert.notEqual(closedAfter, 'timeout', 'the stalled client connection is closed');
  assert.ok((closedAfter as number) >= IDLE - 50, `closed after ${String(closedAfter)} ms`);
  assert.match(c.out(), /^HTTP\/1\.1 408 /, c.out());
  assert.match(c.out(), /connection: close/i);
  assert.ok(await waitFor(() => backend.openConnections() === 0, 1000), 'the target connection is closed too');
  assert.equal(dp.activity(keyOf(backend.port)).requests, 0);
});

test('a body that trickles in more often than the idle timeout is not cut', async () => {
  const backend = await startBackend('B', (req, res) => {
    let n = 0;
    req.on('data', (d: Buffer) => (n += d.length));
    req.on('end', () => res.end(`got ${n}`));
  });
  cleanups.push(() => backend.close());
  const { dp, port } = await startPlane(snapshot([backend.port], { settings: { idleTimeoutMs: IDLE } }));
  cleanups.push(() => dp.destroy());
  const c = rawClient(port, 'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\nConnection: close\r\n\r\n');
  for (let i = 0; i < 8; i++) {
    await sleep(IDLE / 3);
    c.socket.write('x');
  }
  assert.notEqual(await within(c.closed, 2000), 'timeout');
  assert.match(c.out(), /^HTTP\/1\.1 200 [\s\S]*got 8$/, c.out());
});

test('a target that sends its head and then stalls: the client is cut after the idle timeout', async () => {
  const backend = await startBackend('B', (_req, res) => {
    res.writeHead(200, { 'Content-Length': '100' });
    res.write('first part');
  });
  cleanups.push(() => backend.close());
  const logs: object[] = [];
  const { dp, port } = await startPlane(snapshot([backend.port], { settings: { idleTimeoutMs: IDLE, targetResponseTimeoutMs: 10_000 } }), logs);
  cleanups.push(() => dp.destroy());
  const c = rawClient(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  const closedAfter = await within(c.closed, 3000);
  assert.notEqual(closedAfter, 'timeout', 'the client connection is cut');
  assert.ok((closedAfter as number) >= IDLE - 50, `cut after ${String(closedAfter)} ms`);
  assert.match(c.out(), /^HTTP\/1\.1 200 [\s\S]*first part$/, c.out());
  assert.ok(await waitFor(() => backend.openConnections() === 0, 1000), 'the target connection is closed');
  assert.equal(dp.activity(keyOf(backend.port)).requests, 0);
  assert.equal(dp.activity(keyOf(backend.port)).completed, 0);
  assert.ok(logs.some((l) => (l as { kind?: string }).kind === 'idle-timeout'), JSON.stringify(logs));
});

test('a response that streams more often than the idle timeout is relayed whole', async () => {
  const backend = await startBackend('B', (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    let i = 0;
    const t = setInterval(() => {
      res.write(`${i}\n`);
      if (++i === 6) {
        clearInterval(t);
        res.end();
      }
    }, IDLE / 3);
  });
  cleanups.push(() => backend.close());
  const { dp, port } = await startPlane(snapshot([backend.port], { settings: { idleTimeoutMs: IDLE } }));
  cleanups.push(() => dp.destroy());
  const r = await request(port);
  assert.equal(r.body, '0\n1\n2\n3\n4\n5\n');
});

test('the time to the first byte is bounded by the target response timeout, not the idle timeout', async () => {
  const backend = await startBackend('B', (req, res) => {
    if (req.url === '/never') return;
    setTimeout(() => res.end('late but in time'), IDLE * 2);
  });
  cleanups.push(() => backend.close());
  const { dp, port } = await startPlane(snapshot([backend.port], { settings: { idleTimeoutMs: IDLE, targetResponseTimeoutMs: IDLE * 4 } }));
  cleanups.push(() => dp.destroy());
  const ok = await request(port);
  assert.equal(ok.status, 200);
  assert.equal(ok.body, 'late but in time');
  const t0 = Date.now();
  const never = await request(port, { path: '/never' });
  assert.equal(never.status, 504);
  assert.ok(Date.now() - t0 >= IDLE * 4 - 100, `504 after ${Date.now() - t0} ms`);
});

test('an idle keep-alive client connection is closed after the idle timeout', async () => {
  const backend = await startBackend('B');
  cleanups.push(() => backend.close());
  const { dp, port } = await startPlane(snapshot([backend.port], { settings: { idleTimeoutMs: IDLE } }));
  cleanups.push(() => dp.destroy());
  const c = rawClient(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  const closedAfter = await within(c.closed, 3000);
  assert.notEqual(closedAfter, 'timeout');
  assert.match(c.out(), /^HTTP\/1\.1 200 /);
});

test('empty lines between requests start the header timeout: a client that sends only them is cut (408)', async () => {
  const backend = await startBackend('B');
  cleanups.push(() => backend.close());
  const { dp, port } = await startPlane(snapshot([backend.port], { settings: { idleTimeoutMs: 400, clientHeaderTimeoutMs: 300 } }));
  cleanups.push(() => dp.destroy());
  const c = rawClient(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  // An empty line every 100 ms: more often than the idle timeout, and never a request.
  const drip = setInterval(() => c.socket.writable && c.socket.write('\r\n'), 100);
  cleanups.push(() => clearInterval(drip));
  const closedAfter = await within(c.closed, 3000);
  clearInterval(drip);
  assert.notEqual(closedAfter, 'timeout', 'still open after 3 s of empty lines');
  assert.match(c.out(), /^HTTP\/1\.1 200 [^]*HTTP\/1\.1 408 /, c.out());
});

test('an idle WebSocket tunnel is closed (1001) after the idle timeout; an active one stays open', async () => {
  const ws = await startWsBackend();
  cleanups.push(() => ws.close());
  const { dp, port } = await startPlane(snapshot([ws.port], { settings: { idleTimeoutMs: IDLE } }));
  cleanups.push(() => dp.destroy());
  const key = keyOf(ws.port);
  const idle = await openWs(port);
  const active = await openWs(port);
  cleanups.push(() => idle.client.terminate(), () => active.client.terminate());
  const t0 = Date.now();
  // The active one exchanges a message every IDLE/3 for about 3 idle periods.
  for (let i = 0; i < 9; i++) {
    active.client.send(`m${i}`);
    await sleep(IDLE / 3);
  }
  const idleClosed = await within(idle.closed, 1000);
  assert.notEqual(idleClosed, 'timeout', 'the idle tunnel is closed');
  assert.equal((idleClosed as { code: number }).code, 1001);
  const after = (idleClosed as { at: number }).at - t0;
  assert.ok(after >= IDLE - 50 && after < IDLE + 800, `closed after ${after} ms`);
  assert.equal(active.client.readyState, WebSocket.OPEN, 'the active tunnel is still open');
  assert.ok(await waitFor(() => active.messages.length === 9));
  assert.equal(dp.activity(key).tunnels, 1);
  // Once it goes quiet, it is closed too.
  const activeClosed = await within(active.closed, IDLE + 1500);
  assert.notEqual(activeClosed, 'timeout');
  assert.ok(await waitFor(() => dp.activity(key).tunnels === 0));
});
