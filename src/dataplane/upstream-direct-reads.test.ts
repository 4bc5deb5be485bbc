import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { snapshot, startPlane } from '../../test/integration/dataplane-helpers.ts';
import type { HttpDataPlane } from './http-data-plane.ts';

/**
 * A plain target connection reads into a buffer it reuses (upstream-connection.ts): a body chunk
 * passed on from it must not be read into again while a write to a slow client still holds it. Each
 * response here is bytes no two positions of which repeat for megabytes, sent faster than the client
 * reads, so a buffer read into too early would show as wrong bytes in what the client gets.
 */

/** `n` bytes of a sequence that differs at every position (and from one `seed` to the next). */
function body(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

const BIG = 12 * 1024 * 1024;
const PIECE = 8 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

let backend: net.Server;
let dp: HttpDataPlane;
let port: number;

before(async () => {
  // Answers each request on a connection with the body seeded by its path (/length/N or /chunked/N),
  // in 8 KiB pieces, one per turn of the event loop: the data plane reads them in pieces smaller than
  // a socket's high-water mark, so a write to the full client socket queues and says to go on.
  backend = net.createServer((s) => {
    let head = '';
    const send = (pieces: Array<string | Buffer>): void => {
      const next = (): void => {
        const p = pieces.shift();
        if (p === undefined || s.destroyed) return;
        s.write(p);
        setImmediate(next);
      };
      next();
    };
    s.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      let end: number;
      while ((end = head.indexOf('\r\n\r\n')) >= 0) {
        const line = head.slice(0, head.indexOf('\r\n'));
        head = head.slice(end + 4);
        const [, kind, seed] = (line.split(' ')[1] as string).split('/');
        const b = body(BIG, Number(seed));
        const pieces: Array<string | Buffer> = [];
        if (kind === 'chunked') {
          pieces.push('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
          for (let i = 0; i < b.length; i += PIECE) {
            const piece = b.subarray(i, i + PIECE);
            pieces.push(Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]));
          }
          pieces.push('0\r\n\r\n');
        } else {
          pieces.push(`HTTP/1.1 200 OK\r\nContent-Length: ${b.length}\r\n\r\n`);
          for (let i = 0; i < b.length; i += PIECE) pieces.push(b.subarray(i, i + PIECE));
        }
        send(pieces);
      }
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  ({ dp, port } = await startPlane(snapshot([(backend.address() as net.AddressInfo).port])));
});

after(async () => {
  dp.destroy();
  await new Promise<void>((r) => backend.close(() => r()));
});

/**
 * Sends the requests for `paths` on one connection, one after another, reading slowly (nothing for
 * the first 500 ms of each, then a pause every few reads); returns each response's body.
 */
async function slowly(paths: readonly string[]): Promise<Buffer[]> {
  const s = net.connect(port, '127.0.0.1');
  const bodies: Buffer[] = [];
  try {
    for (const path of paths) {
      s.pause();
      s.write(`GET ${path} HTTP/1.1\r\nHost: t\r\n\r\n`);
      await new Promise((r) => setTimeout(r, 500));
      bodies.push(await readResponse(s));
    }
  } finally {
    s.destroy();
  }
  return bodies;
}

/** Reads one response (Content-Length or chunked framing) off `s`, pausing 5 ms every 8 reads. */
function readResponse(s: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    let reads = 0;
    let resume: NodeJS.Timeout | undefined;
    const done = (b: Buffer, rest: Buffer): void => {
      clearTimeout(resume);
      s.off('data', onData);
      if (rest.length > 0) s.unshift(rest);
      s.pause();
      resolve(b);
    };
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      if (++reads % 8 === 0) {
        s.pause();
        resume = setTimeout(() => s.resume(), 5);
      }
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      const rest = buf.subarray(end + 4);
      const length = /content-length: (\d+)/i.exec(head);
      if (length !== null) {
        const n = Number(length[1]);
        if (rest.length >= n) done(rest.subarray(0, n), rest.subarray(n));
        return;
      }
      if (!/transfer-encoding: chunked/i.test(head)) return reject(new Error(`unexpected head ${head}`));
      const parts: Buffer[] = [];
      let at = 0;
      for (;;) {
        const nl = rest.indexOf('\r\n', at);
        if (nl < 0) return;
        const size = parseInt(rest.subarray(at, nl).toString('latin1'), 16);
        if (size === 0) {
          if (rest.length < nl + 4) return;
          return done(Buffer.concat(parts), rest.subarray(nl + 4));
        }
        if (rest.length < nl + 2 + size + 2) return;
        parts.push(rest.subarray(nl + 2, nl + 2 + size));
        at = nl + 2 + size + 2;
      }
    };
    s.on('data', onData);
    s.resume();
  });
}

test('a large body read faster than the client takes it arrives byte for byte (Content-Length)', { timeout: 20_000 }, async () => {
  const [first, second] = await slowly(['/length/1', '/length/2']);
  assert.equal(first?.length, BIG);
  assert.equal(sha(first as Buffer), sha(body(BIG, 1)));
  assert.equal(sha(second as Buffer), sha(body(BIG, 2)));
});

test('a large chunked body read faster than the client takes it arrives byte for byte', { timeout: 20_000 }, async () => {
  const [first, second] = await slowly(['/chunked/3', '/length/4']);
  assert.equal(first?.length, BIG);
  assert.equal(sha(first as Buffer), sha(body(BIG, 3)));
  assert.equal(sha(second as Buffer), sha(body(BIG, 4)));
});
