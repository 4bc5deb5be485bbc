import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { DirectReader, DirectWriter } from './direct-reads.ts';
import type { ReadOutcome } from './direct-reads.ts';
import { nativeStreams, tcpHandleOf } from './native-streams.ts';

const open: (net.Server | net.Socket)[] = [];
after(() => {
  for (const o of open) if (o instanceof net.Server) o.close();
  else o.destroy();
});

/** A connected pair on 127.0.0.1: `near` is ours, `far` the peer's accepted socket (paused until asked). */
async function pair(): Promise<{ near: net.Socket; far: net.Socket }> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  open.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const near = net.connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  await once(near, 'connect');
  const [far] = await accepted;
  open.push(near, far);
  return { near, far };
}

function handleRead(socket: net.Socket): unknown {
  return (socket as unknown as { _handle: { onread: unknown } })._handle.onread;
}

test('Node 20 and 24 give ebb their stream layer: flows write and read past net.Socket', () => {
  // Every Node ebb supports has it; if a new one does not, flows still work (through net.Socket) but
  // cost more, and this says so first.
  assert.ok(nativeStreams !== null, `process.binding('stream_wrap') has no WriteWrap or stream state on Node ${process.version}`);
});

test('a write the kernel takes at once is free at once; one it cannot take holds the chunk, stops the reader and says when the socket is writable again', async () => {
  const { near, far } = await pair();
  assert.ok(tcpHandleOf(near, { connected: true }) !== null);
  let writable = 0;
  const writer = new DirectWriter(near, () => writable++);
  assert.equal(writer.write(Buffer.from('small')), 'free');
  // The peer reads nothing yet: 32 MiB cannot all go into the kernel's buffers at once.
  const big = Buffer.alloc(32 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i);
  assert.equal(writer.write(big), 'held-full');
  assert.equal(writable, 0);
  const got: Buffer[] = [];
  let total = 0;
  far.on('data', (b: Buffer) => {
    got.push(b);
    total += b.length;
  });
  far.resume();
  for (let i = 0; i < 500 && writable === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(writable, 1, 'told once the held write is done');
  assert.equal(writer.write(Buffer.from('after')), 'free', 'the next write goes straight out again');
  near.end();
  await once(far, 'end');
  const all = Buffer.concat(got);
  assert.equal(total, 5 + big.length + 5);
  assert.equal(all.subarray(0, 5).toString(), 'small');
  assert.ok(all.subarray(5, 5 + big.length).equals(big), 'the held chunk arrives whole and in order');
  assert.equal(all.subarray(5 + big.length).toString(), 'after');
});

test('while net.Socket has bytes queued, writes go through it, in order, with its drain', async () => {
  const { near, far } = await pair();
  const big = Buffer.alloc(16 * 1024 * 1024, 1);
  near.write(big);
  assert.ok(near.writableLength > 0, 'the first write is queued in net.Socket');
  let writable = 0;
  const writer = new DirectWriter(near, () => writable++);
  const outcome: ReadOutcome = writer.write(Buffer.from('tail'));
  assert.notEqual(outcome, 'free');
  const got: Buffer[] = [];
  far.on('data', (b: Buffer) => got.push(b));
  far.resume();
  await once(near, 'drain');
  near.end();
  await once(far, 'end');
  const all = Buffer.concat(got);
  assert.equal(all.length, big.length + 4);
  assert.equal(all.subarray(big.length).toString(), 'tail');
  assert.equal(writable, 0, 'a write through net.Socket is followed by its drain, not by onWritable');
});

test('a writer that has written straight to the handle goes through net.Socket again when the socket has bytes queued, and once it is destroyed', async () => {
  const { near, far } = await pair();
  const writer = new DirectWriter(near, () => {});
  assert.equal(writer.write(Buffer.from('one')), 'free', 'straight to the handle');
  // Writes through net.Socket that the kernel cannot take at once: the first waits in libuv, the
  // second in net.Socket's own buffer. The writer's next chunk must follow both, not overtake them.
  const big = Buffer.alloc(16 * 1024 * 1024, 2);
  near.write(big);
  near.write(Buffer.from('mid'));
  assert.ok(near.writableLength > 0);
  assert.notEqual(writer.write(Buffer.from('two')), 'free', 'queued behind net.Socket\'s bytes');
  const got: Buffer[] = [];
  far.on('data', (b: Buffer) => got.push(b));
  far.resume();
  await once(near, 'drain');
  assert.equal(writer.write(Buffer.from('three')), 'free', 'straight to the handle again once the queue is empty');
  for (let i = 0; i < 200 && Buffer.concat(got).length < 3 + big.length + 11; i++) await new Promise((r) => setTimeout(r, 5));
  const all = Buffer.concat(got);
  assert.equal(all.subarray(0, 3).toString(), 'one');
  assert.ok(all.subarray(3, 3 + big.length).equals(big), 'net.Socket\'s bytes whole, in their place');
  assert.equal(all.subarray(3 + big.length).toString(), 'midtwothree');
  // Destroyed: the handle the writer found is closed, and the writer does not touch it again.
  const handle = tcpHandleOf(near, { connected: true });
  assert.ok(handle !== null);
  near.destroy();
  let touched = 0;
  handle.writeBuffer = () => {
    touched++;
    return 0;
  };
  writer.write(Buffer.from('late'));
  assert.equal(touched, 0, 'a destroyed socket\'s old handle is not written to');
  far.destroy();
});

test('Node drops a destroyed socket\'s handle and its reads at once, whether closed or reset (flows read and write handles on that)', async () => {
  for (const how of ['destroy', 'resetAndDestroy'] as const) {
    const { near, far } = await pair();
    const handle = (near as unknown as { _handle: { onread: unknown } })._handle;
    const reader = new DirectReader(() => 'free');
    reader.takeOver(near);
    const fastRead = handle.onread;
    assert.equal(typeof fastRead, 'function');
    near[how]();
    assert.equal((near as unknown as { _handle: unknown })._handle, null, `${how}: the socket no longer has its handle`);
    assert.notEqual(handle.onread, fastRead, `${how}: the handle's reads no longer reach the flow`);
    far.destroy();
  }
});

test('a writer goes through net.Socket once the socket was ended behind its back', async () => {
  const { near, far } = await pair();
  const writer = new DirectWriter(near, () => {});
  assert.equal(writer.write(Buffer.from('one')), 'free');
  near.end();
  const refused = once(near, 'error') as Promise<[NodeJS.ErrnoException]>;
  writer.write(Buffer.from('late'));
  const [error] = await refused;
  assert.equal(error.code, 'ERR_STREAM_WRITE_AFTER_END', 'net.Socket refuses it, not the kernel');
  far.destroy();
});

test('a held write that fails (the peer resets) destroys the socket with the error, and onWritable is not called', async () => {
  const { near, far } = await pair();
  let writable = 0;
  const writer = new DirectWriter(near, () => writable++);
  // No read sees the reset first (the socket's handle stops reading): the held write's completion does.
  const handle = tcpHandleOf(near, { connected: true });
  assert.ok(handle !== null);
  handle.reading = false;
  handle.readStop();
  const errored = once(near, 'error') as Promise<[NodeJS.ErrnoException]>;
  assert.equal(writer.write(Buffer.alloc(32 * 1024 * 1024)), 'held-full');
  far.resetAndDestroy();
  const [error] = await errored;
  assert.ok(['ECONNRESET', 'EPIPE'].includes(error.code ?? ''), `a write error, got ${error.code}`);
  assert.equal(error.syscall, 'write');
  assert.ok(near.destroyed);
  assert.equal(writable, 0);
});

test('a socket reset by ebb while a write is held: the write\'s completion finds it destroyed, and onWritable is not called', async () => {
  const { near, far } = await pair();
  let writable = 0;
  const writer = new DirectWriter(near, () => writable++);
  assert.equal(writer.write(Buffer.alloc(32 * 1024 * 1024)), 'held-full');
  const closed = once(near, 'close');
  near.resetAndDestroy();
  await closed;
  // libuv completes (cancels) the held write when the handle closes; give it a turn either way.
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(writable, 0);
  assert.doesNotThrow(() => writer.write(Buffer.from('late')), 'a later write goes to net.Socket, which refuses it');
  far.destroy();
});

test('a reader that takes over the handle gets every byte, stops on held-full until resumed, and still sees the end', async () => {
  const { near, far } = await pair();
  far.resume();
  const chunks: Buffer[] = [];
  let stopAfter = 1;
  const reader = new DirectReader((chunk): ReadOutcome => {
    chunks.push(Buffer.from(chunk));
    return --stopAfter === 0 ? 'held-full' : 'free';
  });
  // A socket made with the reader's option, then taken over, as a flow's target is.
  const server = net.createServer((s) => {
    s.write('one');
    setTimeout(() => s.end('two'), 50);
  });
  open.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const socket = net.connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', onread: reader.option });
  open.push(socket);
  reader.takeOver(socket);
  assert.equal((handleRead(socket) as { name: string }).name, 'fastRead', 'reads go past net.Socket');
  let ended = false;
  socket.on('end', () => (ended = true));
  for (let i = 0; i < 100 && chunks.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(Buffer.concat(chunks).toString(), 'one');
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(Buffer.concat(chunks).toString(), 'one', 'nothing is read while stopped');
  assert.equal(ended, false, 'the end waits in the kernel too');
  stopAfter = Infinity;
  socket.resume();
  await once(socket, 'end');
  assert.equal(Buffer.concat(chunks).toString(), 'onetwo');
  near.destroy();
});
