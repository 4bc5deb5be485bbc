/**
 * Plain client connections are read into one buffer they all share (tcp/direct-reads.ts,
 * `adoptForSharedReads`): each read is overwritten by the next read of any connection. These tests
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
import { request, sleep, snapshot, startBackend, startPlane } from './dataplane-helpers.ts';
import type { HttpDataPlane } from '../../src/dataplane/http-data-plane.ts';

let backend: Backend;
let dp: HttpDataPlane;
let port: number;

before(async () => {
  // Answers with the SHA-256 of the body and the URL. It reads nothing of a body for its first 150 ms
  // and then reads slowly, so the kernel's buffers fill and ebb's writes to it are left in flight
  // (holding the chunks they write) while other connections are read.
  backend = await startBackend('digest', (req, res) => {
    const hash = createHash('sha256');
    req.pause();
    setTimeout(() => req.resume(), 150);
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      req.pause();
      setTimeout(() => req.resume(), 1);
    });
    req.on('end', () => res.end(`${req.url ?? ''} ${hash.digest('hex')}`));
  });
  ({ dp, port } = await startPlane(snapshot([backend.port])));
});
after(async () => {
  dp.destroy();
  await backend.close();
});

const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** GETs on keep-alive connections until `stop` is set: reads that land in the shared buffer meanwhile. */
async function readsMeanwhile(stop: { done: boolean }, connections: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  let answered = 0;
  await Promise.all(
    Array.from({ length: connections }, async (_, i) => {
      for (let n = 0; !stop.done && n < 5000; n++) {
        const r = await request(port, { path: `/other-${i}-${'q'.repeat(200 + i)}`, agent });
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
  for (let i = 0; i < 100 && !got.includes('/second-request '); i++) await sleep(10);
  socket.destroy();
  assert.match(got, /\/first-request [0-9a-f]{64}/, 'the first request was answered');
  assert.match(got, /\/second-request [0-9a-f]{64}/, 'the pipelined request kept its bytes across the other read');
  assert.equal(backend.seen.filter((s) => s.url.startsWith('/second-req')).map((s) => s.url).join(), '/second-request');
});
