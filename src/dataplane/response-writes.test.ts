import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { snapshot, startPlane } from '../../test/integration/dataplane-helpers.ts';
import type { HttpDataPlane } from './http-data-plane.ts';

/**
 * How the client connection writes a response: a head is held until the body's first bytes (or the
 * end of the target's read), a small body goes in the same string as its head or chunk framing and a
 * large one is written as it is. Whatever the path, the client gets every byte as the target sent it.
 */

/** Every byte value, `times` times over (so a latin1 round trip that changed any byte would show). */
function allBytes(times: number): Buffer {
  const b = Buffer.alloc(256 * times);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7 + (i >> 8)) & 0xff;
  return b;
}

const SMALL = allBytes(2); // 512 bytes: written with its head
const LARGE = allBytes(400); // 100 KiB: written as it is

/** What the target sends for each path: pieces written one after another, `delayMs` apart. */
const ROUTES: Record<string, { pieces: Array<string | Buffer>; delayMs: number }> = {
  '/small': { pieces: [Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${SMALL.length}\r\n\r\n`), SMALL])], delayMs: 0 },
  '/large': { pieces: [Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${LARGE.length}\r\n\r\n`), LARGE])], delayMs: 0 },
  '/later': { pieces: [`HTTP/1.1 200 OK\r\nContent-Length: ${SMALL.length}\r\n\r\n`, SMALL], delayMs: 300 },
  '/chunked': {
    pieces: [
      Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${SMALL.length.toString(16)}\r\n`), SMALL, Buffer.from('\r\n')]),
      Buffer.concat([Buffer.from(`${LARGE.length.toString(16)}\r\n`), LARGE, Buffer.from('\r\n0\r\n\r\n')]),
    ],
    delayMs: 50,
  },
  '/empty': { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'], delayMs: 0 },
};

let backend: net.Server;
let dp: HttpDataPlane;
let port: number;

before(async () => {
  backend = net.createServer((s) => {
    s.on('error', () => {});
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const path = buf.slice(buf.indexOf(' ') + 1, buf.indexOf(' ', buf.indexOf(' ') + 1));
        buf = buf.slice(end + 4);
        const route = ROUTES[path];
        if (route === undefined) {
          s.write('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
          continue;
        }
        route.pieces.forEach((p, i) => setTimeout(() => s.write(p), i * route.delayMs));
      }
    });
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  ({ dp, port } = await startPlane(snapshot([(backend.address() as net.AddressInfo).port])));
});

after(async () => {
  dp.destroy();
  await new Promise<void>((r) => backend.close(() => r()));
});

interface Received {
  /** The response head, without its blank line. */
  head: string;
  body: Buffer;
  /** ms from the request to the end of the head, and to the last byte of the body. */
  headAt: number;
  doneAt: number;
}

/** One GET on a new connection; the body decoded from Content-Length or chunked framing. */
function get(path: string): Promise<Received> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const t0 = performance.now();
    let raw = Buffer.alloc(0);
    let headEnd = -1;
    let headAt = 0;
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no whole response to ${path} within 3 s: ${raw.toString('latin1', 0, 200)}`));
    }, 3000);
    s.on('error', reject);
    s.on('data', (d: Buffer) => {
      raw = Buffer.concat([raw, d]);
      if (headEnd < 0) {
        headEnd = raw.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        headAt = performance.now() - t0;
      }
      const head = raw.toString('latin1', 0, headEnd);
      const body = decode(head, raw.subarray(headEnd + 4));
      if (body === null) return;
      clearTimeout(timer);
      s.destroy();
      resolve({ head, body, headAt, doneAt: performance.now() - t0 });
    });
    s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  });
}

/** The whole body, or null while more bytes are needed. */
function decode(head: string, rest: Buffer): Buffer | null {
  const cl = /\r\ncontent-length: (\d+)/i.exec(head);
  if (cl !== null) return rest.length >= Number(cl[1]) ? rest.subarray(0, Number(cl[1])) : null;
  assert.match(head, /\r\nTransfer-Encoding: chunked/);
  const parts: Buffer[] = [];
  let off = 0;
  for (;;) {
    const nl = rest.indexOf('\r\n', off);
    if (nl < 0) return null;
    const size = parseInt(rest.toString('latin1', off, nl), 16);
    if (size === 0) return rest.length >= nl + 4 ? Buffer.concat(parts) : null;
    if (rest.length < nl + 2 + size + 2) return null;
    parts.push(rest.subarray(nl + 2, nl + 2 + size));
    assert.equal(rest.toString('latin1', nl + 2 + size, nl + 4 + size), '\r\n');
    off = nl + 4 + size;
  }
}

test('a small body written with its head arrives byte for byte', async () => {
  const r = await get('/small');
  assert.match(r.head, /^HTTP\/1\.1 200 OK\r\n/);
  assert.ok(r.body.equals(SMALL));
});

test('a large body arrives byte for byte', async () => {
  const r = await get('/large');
  assert.ok(r.body.equals(LARGE));
});

test('a head whose body comes later is written when the target read ends, not held for the body', async () => {
  const r = await get('/later');
  assert.ok(r.body.equals(SMALL));
  assert.ok(r.headAt < 200, `head after ${r.headAt.toFixed(0)} ms`);
  assert.ok(r.doneAt >= 250, `body after ${r.doneAt.toFixed(0)} ms`);
});

test('a chunked body, small chunk then large, arrives re-chunked and byte for byte', async () => {
  const r = await get('/chunked');
  assert.ok(r.body.equals(Buffer.concat([SMALL, LARGE])));
});

test('an empty body ends with its head', async () => {
  const r = await get('/empty');
  assert.equal(r.body.length, 0);
  assert.match(r.head, /\r\nContent-Length: 0/);
});
