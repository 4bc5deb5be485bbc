import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import tls from 'node:tls';
import { DirectReader, LARGE_READ_BUFFER, SMALL_READ_BUFFER, directReadOption, inSharedReadBuffer, ownedChunk, readSharedInPlace } from './direct-reads.ts';
import type { ReadOutcome } from './direct-reads.ts';
import { sleep, waitFor } from '../../../test/support/timing.ts';

const servers: net.Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

/** A server on 127.0.0.1 whose accepted sockets go to `onSocket`; resolves with its port. */
async function listen(onSocket: (s: net.Socket) => void, server = net.createServer({ allowHalfOpen: true })): Promise<number> {
  server.on('connection', onSocket);
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** The connections `server` counts as open. */
const openConnections = (server: net.Server): Promise<number> => new Promise((r) => server.getConnections((_e, n) => r(n)));

test('an accepted socket is read in place: its bytes come through the reader, its writes go out, and the server counts it until it is closed', async () => {
  const chunks: Buffer[] = [];
  let accepted: net.Socket | null = null;
  const ended: Promise<unknown>[] = [];
  const server = net.createServer({ allowHalfOpen: true });
  const port = await listen((s) => {
    const reader = new DirectReader((chunk) => {
      chunks.push(Buffer.from(chunk));
      return 'free';
    });
    assert.ok(reader.readInPlace(s), 'a plain TCP socket is read in place');
    accepted = s;
    ended.push(once(s, 'end'));
  }, server);
  const client = net.connect(port, '127.0.0.1');
  await once(client, 'connect');
  client.write('hello ');
  client.write('world');
  await waitFor(() => Buffer.concat(chunks).toString() === 'hello world');
  assert.equal(Buffer.concat(chunks).toString(), 'hello world');
  assert.equal(await openConnections(server), 1, 'counted while open');
  client.end();
  assert.equal(ended.length, 1);
  await ended[0];
  const socket = accepted as unknown as net.Socket;
  const closed = once(socket, 'close');
  socket.end('bye');
  const reply = await new Promise<string>((resolve) => {
    let got = '';
    client.on('data', (b: Buffer) => (got += b.toString()));
    client.on('end', () => resolve(got));
  });
  assert.equal(reply, 'bye', 'writes go out through the same socket');
  await closed;
  assert.equal(await openConnections(server), 0);
});

test('a socket with bytes already read, or a TLS socket, is not read in place and is left as it was', async () => {
  const results: boolean[] = [];
  const port = await listen((s) => {
    s.once('data', (b: Buffer) => {
      s.pause();
      s.unshift(b);
      results.push(new DirectReader(() => 'free').readInPlace(s));
      const fake = new tls.TLSSocket(new net.Socket());
      results.push(new DirectReader(() => 'free').readInPlace(fake));
      fake.destroy();
      s.once('data', (again: Buffer) => {
        assert.equal(again.toString(), 'first');
        s.destroy();
      });
      s.resume();
    });
  });
  const client = net.connect(port, '127.0.0.1');
  client.on('error', () => {});
  client.write('first');
  await once(client, 'close');
  assert.deepEqual(results, [false, false]);
});

test('the read buffer is small for small reads, the large one once a read fills it, and never read into while a write holds it', async () => {
  const seen: { chunk: Buffer; copy: Buffer; size: number }[] = [];
  let current: Buffer | null = null;
  const option = directReadOption((chunk): ReadOutcome => {
    // Every chunk is kept (as a pending write would keep it): none may change after its read.
    seen.push({ chunk, copy: Buffer.from(chunk), size: chunk.buffer.byteLength });
    return 'held';
  });
  const giveBuffer = option.buffer as () => Buffer;
  const wrapped: net.OnReadOpts = {
    buffer: () => (current = giveBuffer()),
    callback: (n, buf) => option.callback(n, buf),
  };
  const port = await listen((s) => {
    let n = 0;
    const big = Buffer.alloc(1024 * 1024, 7);
    const send = (): void => {
      n++;
      // small, then a megabyte, then small twice (the first small read after bulk still lands in the big buffer)
      if (n === 1) s.write('a'.repeat(100), () => setTimeout(send, 20));
      else if (n === 2) s.write(big, () => setTimeout(send, 20));
      else if (n === 3) s.write('y'.repeat(100), () => setTimeout(send, 20));
      else s.end('z'.repeat(100));
    };
    send();
  });
  const client = net.connect({ port, host: '127.0.0.1', onread: wrapped });
  await once(client, 'end');
  client.destroy();
  assert.ok(current !== null);
  for (const { chunk, copy } of seen) assert.ok(chunk.equals(copy), 'a held chunk was overwritten by a later read');
  assert.equal(seen[0]?.size, SMALL_READ_BUFFER, 'the first read lands in a small buffer');
  assert.ok(seen.some((s) => s.size === LARGE_READ_BUFFER && s.chunk.length > SMALL_READ_BUFFER), 'bulk is read a large buffer at a time');
  assert.equal(seen.at(-1)?.size, SMALL_READ_BUFFER, 'a small read after bulk gives the small buffer back');
  assert.equal(Buffer.concat(seen.map((s) => s.copy)).length, 100 + 1024 * 1024 + 200);
});

test('a chunk written at once frees the buffer: the next read lands in the same memory', async () => {
  const buffers = new Set<ArrayBufferLike>();
  let total = 0;
  let reads = 0;
  const option = directReadOption((chunk) => {
    buffers.add(chunk.buffer);
    total += chunk.length;
    reads++;
    return 'free';
  });
  const port = await listen((s) => {
    let i = 0;
    const tick = (): void => {
      if (++i > 5) {
        s.end();
        return;
      }
      s.write('x'.repeat(50), () => setTimeout(tick, 10));
    };
    tick();
  });
  const client = net.connect({ port, host: '127.0.0.1', onread: option });
  await once(client, 'end');
  client.destroy();
  assert.equal(total, 250);
  assert.ok(reads > 1, `the writes 10 ms apart came as ${reads} read(s); the test needs more than one`);
  assert.equal(buffers.size, 1, `${reads} small reads, one buffer`);
});

test('shared reads: accepted sockets read in place into the one buffer, what is kept is copied out of it, and pause() stops the reads', async () => {
  const memory = new Set<ArrayBufferLike>();
  const kept: Buffer[] = [];
  const accepted: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true });
  const port = await listen((s) => {
    const taken = readSharedInPlace(s, {
      directRead(chunk: Buffer) {
        memory.add(chunk.buffer);
        assert.ok(inSharedReadBuffer(chunk));
        const own = ownedChunk(chunk);
        assert.ok(!inSharedReadBuffer(own) && own !== chunk, 'a kept chunk is a copy');
        kept.push(own);
        return 'free';
      },
    });
    assert.ok(taken, 'a plain TCP socket is read in place');
    accepted.push(s);
  }, server);
  const clients = [net.connect(port, '127.0.0.1'), net.connect(port, '127.0.0.1')];
  await Promise.all(clients.map((c) => once(c, 'connect')));
  const settle = (n: number): Promise<boolean> => waitFor(() => kept.length >= n);
  clients[0]?.write('first connection');
  await settle(1);
  clients[1]?.write('second');
  await settle(2);
  assert.deepEqual(
    kept.map((b) => b.toString()),
    ['first connection', 'second'],
    'the copy kept from the first read is not overwritten by the second',
  );
  assert.equal(memory.size, 1, 'both connections read into the same memory');
  assert.ok(!inSharedReadBuffer(Buffer.from('elsewhere')));
  // pause() stops the handle's reads, as for a socket made with `onread`; resume() starts them again.
  accepted[0]?.pause();
  clients[0]?.write('after pause');
  await sleep(50);
  assert.equal(kept.length, 2, 'nothing is read while paused');
  accepted[0]?.resume();
  await settle(3);
  assert.equal(kept[2]?.toString(), 'after pause');
  // The end of stream still comes through net.Socket: 'end', then the server's count drops on close.
  const ended = once(accepted[1] as net.Socket, 'end');
  clients[1]?.end();
  await ended;
  for (const s of accepted) s.destroy();
  await waitFor(async () => (await openConnections(server)) === 0);
  assert.equal(await openConnections(server), 0);
  for (const c of clients) c.destroy();
});

test('a socket read in place after it delivered a chunk as a stream (a PROXY header) stays paused: its stream does not start the reads again', async () => {
  const got: string[] = [];
  let accepted: net.Socket | null = null;
  const port = await listen((s) => {
    s.once('data', (header: Buffer) => {
      got.push(`stream:${header.toString()}`);
      // As the inbound PROXY reader and then a TCP flow do: within the 'data' event, read in place and pause.
      assert.ok(
        new DirectReader((chunk) => {
          got.push(chunk.toString());
          return 'free';
        }).readInPlace(s),
      );
      s.pause();
      accepted = s;
    });
  });
  const client = net.connect(port, '127.0.0.1');
  await once(client, 'connect');
  client.write('HEADER');
  await waitFor(() => accepted !== null);
  await sleep(20);
  client.write('body');
  await sleep(60);
  assert.deepEqual(got, ['stream:HEADER'], 'nothing is read while the socket is paused');
  (accepted as unknown as net.Socket).resume();
  await waitFor(() => got.length >= 2);
  assert.deepEqual(got, ['stream:HEADER', 'body'], 'resume() reads what waited');
  client.destroy();
  (accepted as unknown as net.Socket).destroy();
});
