/**
 * Which target connection a request goes on, and what happens when a pooled one fails under it. A
 * client connection's first request gets a connection of its own (HAProxy's `http-reuse safe`); later
 * requests take idle pooled ones. A target may close an idle connection just as a request goes out on
 * it, and may have read it first: ebb sends such a request again on a new connection only when sending
 * it twice is harmless (no body, an idempotent method), and answers 502 otherwise.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, test } from 'node:test';
import { Cleanup } from '../support/cleanup.ts';
import { request, snapshot, startPlane } from './dataplane-helpers.ts';
import { startTcpBackend, type TcpBackend } from './tcp-helpers.ts';

const c = new Cleanup();
after(() => c.run());

/** What a raw target saw, and how it answers. */
interface Seen {
  /** The request lines each connection read, by connection (numbered from 1 in the answers). */
  readonly connections: string[][];
  /** While true, a second request on a connection resets it unanswered (a target closing an idle connection as the request arrives). */
  resetReused: boolean;
}

/** A keep-alive HTTP/1.1 target that answers each request with the number of its connection, and a data plane in front of it. */
async function setup(): Promise<{ seen: Seen; target: TcpBackend; port: number; agent: http.Agent }> {
  const seen: Seen = { connections: [], resetReused: false };
  const target = await startTcpBackend(c, 'raw', (socket) => {
    const lines: string[] = [];
    seen.connections.push(lines);
    const id = seen.connections.length;
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
  const { dp, port } = await startPlane(snapshot([target.port]));
  c.add(() => dp.destroy());
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  c.add(() => agent.destroy());
  return { seen, target, port, agent };
}

test("a client connection's first request gets a target connection of its own, though one is idle; its next requests reuse", async () => {
  const { seen, target, port, agent } = await setup();
  assert.equal((await request(port, { path: '/one' })).body, 'conn-1');
  assert.equal(target.sockets[0]?.destroyed, false, 'conn-1 stays open, idle in the pool');
  assert.equal((await request(port, { path: '/two', agent })).body, 'conn-2', 'a new client connection: a new target connection');
  assert.equal((await request(port, { path: '/three', agent })).body, 'conn-2', 'the next request took the idle one it had used (LIFO)');
  assert.equal((await request(port, { path: '/four', agent, method: 'POST', body: 'x=1' })).body, 'conn-2');
  assert.deepEqual(seen.connections, [['GET /one HTTP/1.1'], ['GET /two HTTP/1.1', 'GET /three HTTP/1.1', 'POST /four HTTP/1.1']]);
});

test('a GET on a pooled connection the target resets unanswered is sent again on a new connection', async () => {
  const { seen, port, agent } = await setup();
  assert.equal((await request(port, { path: '/first', agent })).body, 'conn-1');
  seen.resetReused = true;
  const r = await request(port, { path: '/again', agent });
  assert.equal(r.status, 200);
  assert.equal(r.body, 'conn-2', 'answered on the new connection');
  assert.deepEqual(seen.connections, [['GET /first HTTP/1.1', 'GET /again HTTP/1.1'], ['GET /again HTTP/1.1']]);
});

test('a POST (even without a body) or a PUT with a body, on a pooled connection the target resets unanswered, is not sent again: 502', async () => {
  const { seen, port, agent } = await setup();
  const resetOnReuse = async (path: string, opts: Parameters<typeof request>[1]): Promise<number> => {
    seen.resetReused = false;
    await request(port, { path: `${path}-warm`, agent });
    seen.resetReused = true;
    // Bounded: a request sent again without the body it had would wait for that body.
    return (await request(port, { path, agent, timeoutMs: 5000, ...opts }).catch(() => ({ status: 0 }))).status;
  };
  // No body, but not an idempotent method: the target may have acted on it.
  assert.equal(await resetOnReuse('/post', { method: 'POST', headers: { 'Content-Length': '0' } }), 502);
  // An idempotent method, but a body ebb has already streamed away and does not keep.
  assert.equal(await resetOnReuse('/put', { method: 'PUT', body: 'x=1' }), 502);
  assert.deepEqual(seen.connections, [
    ['GET /post-warm HTTP/1.1', 'POST /post HTTP/1.1'],
    ['GET /put-warm HTTP/1.1', 'PUT /put HTTP/1.1'],
  ]);
});
