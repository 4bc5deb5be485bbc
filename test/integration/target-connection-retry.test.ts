/**
 * Which target connection a request goes on, and what happens when a pooled one fails under it. A
 * client connection's first request gets a connection of its own (HAProxy's `http-reuse safe`); later
 * requests take idle pooled ones. A target may close an idle connection just as a request goes out on
 * it, and may have read it first: ebb sends such a request again on a new connection only when sending
 * it twice is harmless (no body, an idempotent method), and answers 502 otherwise.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, test } from 'node:test';
import { request, snapshot, startPlane } from './dataplane-helpers.ts';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** What a raw backend saw: per connection (numbered from 1), the request lines it read. */
interface RawBackend {
  readonly port: number;
  readonly connections: string[][];
  /** Whether each connection (numbered from 1) is still open. */
  readonly open: boolean[];
  /** While true, a second request on a connection resets it unanswered (a target closing an idle connection as the request arrives). */
  resetReused: boolean;
}

/** A keep-alive HTTP/1.1 backend that answers each request with the number of its connection. */
async function rawBackend(): Promise<RawBackend> {
  const seen = { connections: [] as string[][], open: [] as boolean[], resetReused: false };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    const lines: string[] = [];
    seen.connections.push(lines);
    seen.open.push(true);
    const id = seen.connections.length;
    sockets.add(socket);
    socket.on('close', () => {
      sockets.delete(socket);
      seen.open[id - 1] = false;
    });
    socket.on('error', () => {});
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const end = pending.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = pending.subarray(0, end).toString('latin1');
        const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        if (pending.length < end + 4 + length) return;
        pending = pending.subarray(end + 4 + length);
        lines.push(head.split('\r\n')[0] ?? '');
        if (lines.length > 1 && seen.resetReused) {
          socket.resetAndDestroy();
          return;
        }
        const body = `conn-${id}`;
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nContent-Type: text/plain\r\n\r\n${body}`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    connections: seen.connections,
    open: seen.open,
    get resetReused() {
      return seen.resetReused;
    },
    set resetReused(on: boolean) {
      seen.resetReused = on;
    },
  };
}

async function plane(backend: RawBackend): Promise<number> {
  const { dp, port } = await startPlane(snapshot([backend.port]));
  cleanups.push(() => dp.destroy());
  return port;
}

function keepAliveAgent(): http.Agent {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  cleanups.push(() => agent.destroy());
  return agent;
}

test("a client connection's first request gets a target connection of its own, though one is idle; its next requests reuse", async () => {
  const backend = await rawBackend();
  const port = await plane(backend);
  assert.equal((await request(port, { path: '/one' })).body, 'conn-1');
  assert.deepEqual(backend.open, [true], 'conn-1 stays open, idle in the pool');
  const agent = keepAliveAgent();
  assert.equal((await request(port, { path: '/two', agent })).body, 'conn-2', 'a new client connection: a new target connection');
  assert.equal((await request(port, { path: '/three', agent })).body, 'conn-2', 'the next request took the idle one it had used (LIFO)');
  assert.equal((await request(port, { path: '/four', agent, method: 'POST', body: 'x=1' })).body, 'conn-2');
  assert.deepEqual(backend.connections, [['GET /one HTTP/1.1'], ['GET /two HTTP/1.1', 'GET /three HTTP/1.1', 'POST /four HTTP/1.1']]);
});

test('a GET on a pooled connection the target resets unanswered is sent again on a new connection', async () => {
  const backend = await rawBackend();
  const port = await plane(backend);
  const agent = keepAliveAgent();
  assert.equal((await request(port, { path: '/first', agent })).body, 'conn-1');
  backend.resetReused = true;
  const r = await request(port, { path: '/again', agent });
  assert.equal(r.status, 200);
  assert.equal(r.body, 'conn-2', 'answered on the new connection');
  assert.deepEqual(backend.connections, [['GET /first HTTP/1.1', 'GET /again HTTP/1.1'], ['GET /again HTTP/1.1']]);
});

test('a POST on a pooled connection the target resets unanswered is not sent again: 502', async () => {
  const backend = await rawBackend();
  const port = await plane(backend);
  const agent = keepAliveAgent();
  assert.equal((await request(port, { path: '/first', agent })).body, 'conn-1');
  backend.resetReused = true;
  const post = await request(port, { path: '/post', agent, method: 'POST', body: 'x=1' });
  assert.equal(post.status, 502);
  assert.equal(backend.connections.length, 1, 'no new connection: the POST was not sent again');
  assert.deepEqual(backend.connections[0], ['GET /first HTTP/1.1', 'POST /post HTTP/1.1']);
});

test('a POST without a body, or a PUT with one, on a pooled connection the target resets unanswered is not sent again: 502', async () => {
  const backend = await rawBackend();
  const port = await plane(backend);
  const agent = keepAliveAgent();
  assert.equal((await request(port, { path: '/first', agent })).body, 'conn-1');
  backend.resetReused = true;
  // No body, but not an idempotent method: the target may have acted on it.
  const post = await request(port, { path: '/post', agent, method: 'POST', headers: { 'Content-Length': '0' } });
  assert.equal(post.status, 502);
  backend.resetReused = false;
  assert.equal((await request(port, { path: '/second', agent })).body, 'conn-2');
  backend.resetReused = true;
  // An idempotent method, but a body ebb has already streamed away and does not keep.
  const put = await request(port, { path: '/put', agent, method: 'PUT', body: 'x=1' });
  assert.equal(put.status, 502);
  assert.deepEqual(backend.connections, [
    ['GET /first HTTP/1.1', 'POST /post HTTP/1.1'],
    ['GET /second HTTP/1.1', 'PUT /put HTTP/1.1'],
  ]);
});
