import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { resetSocket } from './reset-socket.ts';

const servers: net.Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

async function connected(): Promise<{ near: net.Socket; far: Promise<net.Socket> }> {
  const server = net.createServer();
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const far = (once(server, 'connection') as Promise<[net.Socket]>).then(([s]) => {
    s.on('error', () => {});
    return s;
  });
  const near = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
  await once(near, 'connect');
  return { near, far };
}

test('a socket is reset: the peer sees ECONNRESET and the socket closes', async () => {
  const { near, far } = await connected();
  const peer = await far;
  const peerError = once(peer, 'error') as Promise<[NodeJS.ErrnoException]>;
  resetSocket(near);
  await once(near, 'close');
  const [error] = await peerError;
  assert.equal(error.code, 'ECONNRESET');
});

test('a socket whose FIN is not yet sent (ended in the same turn) still closes; libuv would refuse the reset and leave it open', async () => {
  const { near, far } = await connected();
  await far;
  const errors: string[] = [];
  near.on('error', (e: NodeJS.ErrnoException) => errors.push(`${e.syscall} ${e.code}`));
  near.end();
  resetSocket(near);
  const closed = await Promise.race([once(near, 'close').then(() => true), new Promise((r) => setTimeout(() => r(false), 2000))]);
  assert.equal(closed, true, 'the socket closed');
  assert.deepEqual(errors, [], 'no reset EINVAL');
});
