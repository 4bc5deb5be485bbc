/**
 * Plain client connections are read into one buffer they all share (tcp/direct-reads.ts,
 * `readSharedInPlace`): each read is overwritten by the next read of any connection. These tests
 * make other connections read between the moments a connection's bytes are kept — a head split
 * across reads, pipelined bytes, request bodies a slow target holds in ebb's writes — with contents
 * that differ byte by byte, so a kept view of the shared buffer instead of a copy shows as wrong bytes.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { after, before, test } from 'node:test';
import type { Backend } from './dataplane-helpers.ts';
import { request, sleep, snapshot, startBackend, startPlane, waitFor } from './dataplane-helpers.ts';
import type { HttpDataPlane } from '../../src/dataplane/http-data-plane.ts';

let backend: Backend;

/**
 * Reads `stream` as a slow target does: nothing for its first 150 ms, then a pause after each chunk,
 * so the kernel's buffers fill and ebb's writes to it are left in flight (holding the chunks they
 * write) while other connections are read. Calls `done` with the SHA-256 of all it read.
 */
function digestSlowly(stream: NodeJS.ReadableStream, done: (hex: string) => void): void {
  const hash = createHash('sha256');
  stream.pause();
  setTimeout(() => stream.resume(), 150);
  stream.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    stream.pause();
    setTimeout(() => stream.resume(), 1);
  });
  stream.on('end', () => done(hash.digest('hex')));
}
let dp: HttpDataPlane;
let port: number;

before(async () => {
  // Answers with the URL and the SHA-256 of the body, read slowly.
  backend = await startBackend('digest', (req, res) => digestSlowly(req, (hex) => res.end(`${req.url ?? ''} ${hex}`)));
  ({ dp, port } = await startPlane(snapshot([backend.port])));
});
after(async () => {
  dp.destroy();
  await backend.close();
});

const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** GETs on keep-alive connections until `stop` is set: reads that land in the shared buffer meanwhile. */
async function readsMeanwhile(stop: { done: boolean }, connections: number, to = port): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  let answered = 0;
  await Promise.all(
    Array.from({ length: connections }, async (_, i) => {
      for (let n = 0; !stop.done && n < 5000; n++) {
        const r = await request(to, { path: `/other-${i}-${'q'.repeat(200 + i)}`, agent });
        assert.equal(r.status, 200);
        answered++;
      }
    }),
  );
  agent.destroy();
  return answered;
}

test('request bodies a slow target holds in flight arrive byte for byte while other connections are read', async () => {
  const stop = { done: false };
  const others = readsMeanwhile(stop, 4);
  const uploads = Array.from({ length: 4 }, async (_, i) => {
    const body = randomBytes(6 * 1024 * 1024 + i * 1013);
    const chunked = i % 2 === 1;
    const r = await new Promise<string>((resolve, reject) => {
      const headers = chunked ? {} : { 'Content-Length': String(body.length) };
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: `/upload-${i}`, headers, agent: false }, (res) => {
        let text = '';
        res.setEncoding('latin1');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      // In pieces of uneven size, so reads end at different places in the shared buffer.
      for (let off = 0; off < body.length; off += 40_000 + i * 777) req.write(body.subarray(off, off + 40_000 + i * 777));
      req.end();
    });
    assert.equal(r, `/upload-${i} ${digest(body)}`, `upload ${i} (${chunked ? 'chunked' : 'Content-Length'}) reached the target intact`);
  });
  await Promise.all(uploads);
  stop.done = true;
  assert.ok((await others) > 0, 'other connections were read while the bodies were');
});

test('a head split across reads, and a request pipelined behind another, keep their bytes while other connections are read', async () => {
  const socket = net.connect(port, '127.0.0.1');
  let got = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (got += d));
  await new Promise((resolve) => socket.once('connect', resolve));
  // The first head whole and a part of the second: the part is kept until the rest comes.
  socket.write('GET /first-request HTTP/1.1\r\nHost: a\r\n\r\nGET /second-req');
  await sleep(30);
  // Another connection's read overwrites the start of the shared buffer with other bytes meanwhile.
  const other = await request(port, { path: `/${'z'.repeat(300)}` });
  assert.equal(other.status, 200);
  socket.write('uest HTTP/1.1\r\nHost: a\r\n\r\n');
  await waitFor(() => got.includes('/second-request '));
  socket.destroy();
  assert.match(got, /\/first-request [0-9a-f]{64}/, 'the first request was answered');
  assert.match(got, /\/second-request [0-9a-f]{64}/, 'the pipelined request kept its bytes across the other read');
  assert.equal(backend.seen.filter((s) => s.url.startsWith('/second-req')).map((s) => s.url).join(), '/second-request');
});

test("a tunnel's bytes, which a slow target holds in flight, arrive byte for byte while other connections are read", async () => {
  // A target that switches protocols on an upgrade request, reads the new protocol's bytes slowly,
  // and answers their SHA-256 once the client's side ends.
  const target = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  target.on('upgrade', (_req: http.IncomingMessage, socket: net.Socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: digest\r\n\r\n');
    digestSlowly(socket, (hex) => socket.end(hex));
  });
  target.listen(0, '127.0.0.1');
  await new Promise((resolve) => target.once('listening', resolve));
  const plane = await startPlane(snapshot([(target.address() as net.AddressInfo).port]));
  try {
    const stop = { done: false };
    // Small reads and large ones (64 KiB uploads), so the whole shared buffer is overwritten meanwhile.
    const others = readsMeanwhile(stop, 2, plane.port);
    const uploads = Array.from({ length: 2 }, async () => {
      for (let n = 0; !stop.done && n < 1000; n++) {
        const r = await request(plane.port, { method: 'POST', path: '/upload', body: randomBytes(512 * 1024) });
        assert.equal(r.status, 200);
      }
    });
    const body = randomBytes(6 * 1024 * 1024);
    const socket = net.connect(plane.port, '127.0.0.1');
    let got = Buffer.alloc(0);
    socket.on('data', (b: Buffer) => (got = Buffer.concat([got, b])));
    const closed = new Promise((resolve) => socket.on('close', resolve));
    socket.write('GET /tunnel HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: digest\r\n\r\n');
    await waitFor(() => got.includes('\r\n\r\n'));
    assert.match(got.toString('latin1'), /^HTTP\/1\.1 101 /, 'the target switched protocols');
    for (let off = 0; off < body.length; off += 50_001) socket.write(body.subarray(off, off + 50_001));
    socket.end();
    await closed;
    stop.done = true;
    await Promise.all(uploads);
    const answer = got.toString('latin1');
    assert.equal(answer.slice(answer.indexOf('\r\n\r\n') + 4), digest(body), 'the tunnel carried every byte intact');
    assert.ok((await others) > 0, 'other connections were read while the tunnel was');
  } finally {
    plane.dp.destroy();
    target.close();
  }
});
