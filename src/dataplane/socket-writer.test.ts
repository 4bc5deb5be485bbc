import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { SocketWriter } from './socket-writer.ts';

const open: (net.Server | net.Socket)[] = [];
after(() => {
  for (const o of open) if (o instanceof net.Server) o.close();
  else o.destroy();
});

/** A connected pair on 127.0.0.1: `near` is written to, `far` (paused until asked) collects what arrives. */
async function pair(): Promise<{ near: net.Socket; far: net.Socket; received: () => Buffer; ended: Promise<unknown> }> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  open.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const near = net.connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1' });
  await once(near, 'connect');
  const [far] = await accepted;
  open.push(near, far);
  const chunks: Buffer[] = [];
  far.on('data', (b: Buffer) => chunks.push(b));
  const ended = once(far, 'end');
  return { near, far, received: () => Buffer.concat(chunks), ended };
}

test('writes the kernel takes at once return true and leave nothing held; text goes as latin1, byte for byte', async () => {
  const { near, far, received, ended } = await pair();
  const w = new SocketWriter(near);
  assert.equal(w.latin1('HTTP/1.1 200 OK\r\n\r\n'), true);
  assert.equal(w.buffer(Buffer.from([0, 255, 10])), true);
  assert.equal(w.latin1('\u00ff\u0080'), true);
  assert.equal(w.holdsWrite, false);
  assert.equal(near.writableLength, 0, 'nothing went through net.Socket');
  far.resume();
  near.end();
  await ended;
  assert.deepEqual([...received()], [...Buffer.from('HTTP/1.1 200 OK\r\n\r\n', 'latin1'), 0, 255, 10, 0xff, 0x80]);
});

test('a write the kernel cannot take whole: false, held until libuv has written it, then drain; writes meanwhile keep their order, and end() waits for all', async () => {
  const { near, far, received, ended } = await pair();
  const w = new SocketWriter(near);
  const big = Buffer.alloc(24 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i);
  assert.equal(w.buffer(big), false, 'the caller is told to wait for drain');
  assert.equal(w.holdsWrite, true, 'the chunk is still read from');
  w.latin1('after-1');
  w.buffer(Buffer.from('after-2'));
  const drained = once(near, 'drain');
  far.resume();
  await drained;
  // The writes made meanwhile went through net.Socket, behind the held one: held until they are out too.
  for (let i = 0; i < 100 && w.holdsWrite; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(w.holdsWrite, false);
  near.end('the-end');
  await ended;
  const all = received();
  assert.equal(all.length, big.length + 'after-1after-2the-end'.length);
  assert.ok(all.subarray(0, big.length).equals(big), 'the held chunk arrives whole');
  assert.equal(all.subarray(big.length).toString(), 'after-1after-2the-end');
});

test('each write refreshes the socket idle timer, as net.Socket does', async () => {
  const { near, far } = await pair();
  far.resume();
  const w = new SocketWriter(near);
  let timedOut = false;
  near.setTimeout(150, () => (timedOut = true));
  for (let i = 0; i < 6; i++) {
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(w.latin1('tick'), true);
  }
  assert.equal(near.writableLength, 0, 'the writes went straight to the handle');
  assert.equal(timedOut, false, 'writes every 60 ms keep a 150 ms idle timer from firing');
  await once(near, 'timeout');
});

test('a write on a corked socket, or one that is still connecting, goes through net.Socket', async () => {
  const { near, far, received, ended } = await pair();
  const w = new SocketWriter(near);
  near.cork();
  w.latin1('a');
  assert.equal(near.writableLength, 1, 'queued in net.Socket while corked');
  near.uncork();
  far.resume();
  near.end();
  await ended;
  assert.equal(received().toString(), 'a');

  const server = net.createServer((s) => s.pipe(s));
  open.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const connecting = net.connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1' });
  open.push(connecting);
  const early = new SocketWriter(connecting);
  early.latin1('early');
  assert.ok(connecting.writableLength > 0, 'queued until the connection is open');
  const [echo] = (await once(connecting, 'data')) as [Buffer];
  assert.equal(echo.toString(), 'early');
});

test('a held write that fails destroys the socket with a write error', async () => {
  const { near, far } = await pair();
  near.on('data', () => {});
  near.pause();
  const w = new SocketWriter(near);
  const failed = once(near, 'error') as Promise<[NodeJS.ErrnoException]>;
  assert.equal(w.buffer(Buffer.alloc(24 * 1024 * 1024)), false);
  far.resetAndDestroy();
  const [error] = await failed;
  assert.ok(['ECONNRESET', 'EPIPE'].includes(error.code ?? ''), `got ${error.code}`);
  assert.ok(near.destroyed);
});
