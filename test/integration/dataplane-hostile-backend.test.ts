import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import type { HttpDataPlane } from '../../src/dataplane/http-data-plane.ts';
import { rawRequest, request, sleep, snapshot, startPlane, within } from './dataplane-helpers.ts';

/**
 * Backends that misbehave at the byte level, written with raw sockets: a response head split over
 * several reads, a response nobody asked for. Each case was a defect: the first hung the request until
 * the idle timeout, the second delivered the stray bytes to the next client.
 */

const planes: HttpDataPlane[] = [];
const servers: net.Server[] = [];
after(async () => {
  for (const dp of planes) dp.destroy();
  for (const s of servers) s.close();
});

/** A raw TCP backend; `onRequest` gets the socket once a whole request head has arrived. */
async function rawBackend(onRequest: (socket: net.Socket, head: string) => void): Promise<number> {
  const server = net.createServer((socket) => {
    let buf = '';
    socket.setEncoding('latin1');
    socket.on('error', () => {});
    socket.on('data', (d: string) => {
      buf += d;
      let end: number;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        onRequest(socket, head);
      }
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

async function planFor(backendPort: number): Promise<number> {
  const { dp, port } = await startPlane(snapshot([backendPort]));
  planes.push(dp);
  return port;
}

/** Writes `pieces` with a pause between them, so each arrives in a read of its own. */
async function writeSlowly(socket: net.Socket, pieces: string[], gapMs = 20): Promise<void> {
  for (const p of pieces) {
    socket.write(p, 'latin1');
    await sleep(gapMs);
  }
}

const SPLITS: Array<[string, string[]]> = [
  ['a head cut before its blank line', ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\n', '\r\nhello']],
  ['a head cut inside its blank line', ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r', '\nhello']],
  ['a head cut in the status line', ['HTT', 'P/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello']],
  ['a chunked body after a split head', ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n', '\r\n5\r\nhello\r\n0\r\n\r\n']],
  ['a head of over 64 KiB in many reads', ['HTTP/1.1 200 OK\r\n', ...Array.from({ length: 10 }, (_, i) => `X-Pad-${i}: ${'p'.repeat(7000)}\r\n`), 'Content-Length: 5\r\n\r\nhello']],
];

for (const [name, pieces] of SPLITS) {
  test(`a response head that arrives in pieces is relayed: ${name}`, async () => {
    const backend = await rawBackend((s) => void writeSlowly(s, pieces));
    const port = await planFor(backend);
    const big = pieces.join('').length > 65536;
    if (big) {
      // Over ebb's response head limit: a prompt 502, never a hang.
      const r = await within(request(port), 2000);
      assert.notEqual(r, 'timeout');
      assert.equal(r === 'timeout' ? 0 : r.status, 502);
      return;
    }
    const r = await within(request(port), 2000);
    assert.notEqual(r, 'timeout', 'the request must not hang');
    if (r === 'timeout') return;
    assert.equal(r.status, 200);
    assert.equal(r.body, 'hello');
  });
}

test('every byte boundary of a response: the head and body cut in two reads always relays the same answer', async () => {
  const whole = 'HTTP/1.1 201 Created\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n';
  let cut = 1;
  const backend = await rawBackend((s) => void writeSlowly(s, [whole.slice(0, cut), whole.slice(cut)], 15));
  const port = await planFor(backend);
  for (cut = 1; cut < whole.length; cut++) {
    const r = await within(request(port), 2000);
    assert.notEqual(r, 'timeout', `cut at ${cut} hangs`);
    if (r === 'timeout') return;
    assert.equal(r.status, 201, `cut at ${cut}`);
    assert.equal(r.body, 'abcde', `cut at ${cut}`);
  }
});

test('a stray response from a backend never reaches another client; the connection it came on is closed', async () => {
  // The backend answers, then 100 ms later writes a second response nobody asked for.
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    socket.on('error', () => {});
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      while (buf.includes('\r\n\r\n')) {
        buf = buf.slice(buf.indexOf('\r\n\r\n') + 4);
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        setTimeout(() => socket.writable && socket.write('HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nINJECTED'), 100);
      }
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = await planFor((server.address() as AddressInfo).port);
  // New clients at several paces: whatever the stray's timing against the next request, no client gets it.
  const bodies: string[] = [];
  for (const gap of [0, 20, 50, 150]) {
    for (let i = 0; i < 10; i++) {
      bodies.push((await request(port)).body);
      await sleep(gap);
    }
  }
  assert.deepEqual(bodies, Array(40).fill('ok'));
  // Pipelined on one client connection too: each answer is its own.
  const raw = await rawRequest(port, 'GET /a HTTP/1.1\r\nHost: x\r\n\r\n', 400);
  assert.ok(!raw.includes('INJECTED'), raw);
  assert.ok(connections >= 2, 'a connection that received stray bytes is not reused');
});

test('a 204 with a Content-Length is relayed without it (a 204 has no content, RFC 9110 §8.6)', async () => {
  const backend = await rawBackend((s) => s.write('HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nX-A: 1\r\n\r\n'));
  const port = await planFor(backend);
  const out = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 1000);
  assert.match(out, /^HTTP\/1\.1 204 /);
  assert.match(out, /X-A: 1/);
  assert.doesNotMatch(out, /content-length/i);
});

test('a response coded with anything but chunked is a 502: ebb frames the body itself and drops no coding', async () => {
  for (const te of ['gzip, chunked', 'GZIP', 'chunked, chunked', 'deflate']) {
    const chunked = te.toLowerCase().endsWith('chunked');
    const backend = await rawBackend((s) => {
      s.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: ${te}\r\n\r\n${chunked ? '3\r\n\x1f\x8b\x08\r\n0\r\n\r\n' : '\x1f\x8b\x08'}`, 'latin1');
      if (!chunked) s.end();
    });
    const port = await planFor(backend);
    const out = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 1000);
    assert.match(out, /^HTTP\/1\.1 502 /, `Transfer-Encoding: ${te}`);
    assert.doesNotMatch(out, /\x1f\x8b/, `Transfer-Encoding: ${te}`);
  }
  // Chunked alone, or beside identity (which codes nothing), is relayed.
  const backend = await rawBackend((s) => s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: identity, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n'));
  const port = await planFor(backend);
  const out = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 1000);
  assert.match(out, /^HTTP\/1\.1 200 [^]*\r\n\r\n2\r\nok\r\n0\r\n\r\n$/);
});

test('no h2c: the upgrade is not forwarded, and a target that switches anyway gets the client a 502, never a tunnel', async () => {
  const heads: string[] = [];
  const backend = await rawBackend((s, head) => {
    heads.push(head);
    s.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
  });
  const port = await planFor(backend);
  const out = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 1000);
  assert.match(out, /^HTTP\/1\.1 502 /, out);
  assert.equal(heads.length, 1);
  assert.doesNotMatch(heads[0] as string, /upgrade|http2-settings/i);
});

test('a status outside 100–599 is a 502, as any other bad status line (on HTTP/2 Node could not even send it)', async () => {
  for (const status of ['600', '999', '099']) {
    const backend = await rawBackend((s) => s.write(`HTTP/1.1 ${status} Odd\r\nContent-Length: 2\r\n\r\nok`));
    const port = await planFor(backend);
    const out = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 1000);
    assert.match(out, /^HTTP\/1\.1 502 /, `status ${status}: ${out}`);
  }
});
