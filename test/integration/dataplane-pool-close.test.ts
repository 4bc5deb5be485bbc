import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import type { HttpDataPlane } from '../../src/dataplane/http-data-plane.ts';
import { rawRequest, snapshot, startPlane, waitFor } from './dataplane-helpers.ts';

/**
 * How ebb closes target connections it does not keep. A whole, idle connection the pool has no room
 * for is reset, so that ebb's host keeps no TIME-WAIT socket for it: with clients that do not keep
 * their connections, each request's target connection is one of those. Any other close is a FIN.
 */

const planes: HttpDataPlane[] = [];
const servers: net.Server[] = [];
after(() => {
  for (const dp of planes) dp.destroy();
  for (const s of servers) s.close();
});

/** A target answering `ok` to each request, recording how each of its connections ended: 'fin' or 'reset'. */
async function endRecordingTarget(): Promise<{ port: number; ends: string[] }> {
  const ends: string[] = [];
  const server = net.createServer((socket) => {
    let buf = '';
    let ended = false;
    const end = (how: string): void => {
      if (!ended) ends.push(how);
      ended = true;
    };
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      buf += d;
      while (buf.includes('\r\n\r\n')) {
        buf = buf.slice(buf.indexOf('\r\n\r\n') + 4);
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      }
    });
    socket.on('end', () => {
      end('fin');
      socket.end();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => end(err.code === 'ECONNRESET' ? 'reset' : (err.code ?? 'error')));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, ends };
}

test("a whole connection the pool has no room for is reset, leaving no TIME-WAIT socket on ebb's host", async () => {
  const target = await endRecordingTarget();
  const { dp, port } = await startPlane(snapshot([target.port]), [], { maxIdlePerTarget: 0 });
  planes.push(dp);
  for (let i = 0; i < 3; i++) assert.match(await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 200 /);
  assert.ok(await waitFor(() => target.ends.length === 3, 2000), `ends: ${JSON.stringify(target.ends)}`);
  assert.deepEqual(target.ends, ['reset', 'reset', 'reset']);
});

test('with room in the pool the connection is kept, and the target sees no close at all', async () => {
  const target = await endRecordingTarget();
  const { dp, port } = await startPlane(snapshot([target.port]));
  planes.push(dp);
  assert.match(await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 200 /);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(target.ends, []);
  dp.destroy();
  assert.ok(await waitFor(() => target.ends.length === 1, 2000));
  assert.deepEqual(target.ends, ['fin'], 'closing the data plane closes its pooled connections politely');
});
