import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, test } from 'node:test';
import type { Backend } from './dataplane-helpers.ts';
import { keyOf, pinned, rawRequest, request, sleep, snapshot, startBackend, startPlane } from './dataplane-helpers.ts';
import type { HttpDataPlane } from '../../src/dataplane/http-data-plane.ts';
import diagnosticsChannel from 'node:diagnostics_channel';
import { CHANNEL_NAMES } from '../../src/dataplane/channels.ts';

let a: Backend;
let b: Backend;
let dp: HttpDataPlane;
let port: number;
const logs: object[] = [];
const cleanups: Array<() => unknown> = [];

before(async () => {
  a = await startBackend('A');
  b = await startBackend('B');
  ({ dp, port } = await startPlane(snapshot([a.port, b.port]), logs));
});
after(async () => {
  dp.destroy();
  for (const c of cleanups) await c();
  await a.close();
  await b.close();
});

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
after(() => agent.destroy());

/** Forgets the requests both shared targets have seen. */
function forgetSeen(): void {
  a.seen.length = 0;
  b.seen.length = 0;
}

test('round robin spreads requests over both targets', async () => {
  const got: string[] = [];
  for (let i = 0; i < 6; i++) got.push((await request(port, { agent })).body);
  assert.equal(got.filter((x) => x === 'A').length, 3);
  assert.equal(got.filter((x) => x === 'B').length, 3);
  assert.notEqual(got[0], got[1]);
  assert.equal(dp.activity(keyOf(a.port)).requests, 0);
  assert.ok(dp.activity(keyOf(a.port)).completed >= 3);
});

test('least outstanding sends to the target without a request in flight', async () => {
  let release: () => void = () => {};
  const slow = await startBackend('slow', (_req, res) => {
    release = () => res.end('slow');
  });
  const fast = await startBackend('fast');
  cleanups.push(() => slow.close(), () => fast.close());
  const p2 = await startPlane(snapshot([slow.port, fast.port], { algorithm: 'least_outstanding_requests' }));
  cleanups.push(() => p2.dp.destroy());
  const first = request(p2.port);
  await sleep(100);
  assert.equal(p2.dp.activity(keyOf(slow.port)).requests, 1);
  const bodies: string[] = [];
  for (let i = 0; i < 4; i++) bodies.push((await request(p2.port)).body);
  assert.deepEqual(bodies, ['fast', 'fast', 'fast', 'fast']);
  release();
  assert.equal((await first).body, 'slow');
});

test('503 when the group is empty or the listener has no group', async () => {
  const p2 = await startPlane(snapshot([]));
  cleanups.push(() => p2.dp.destroy());
  assert.equal((await request(p2.port)).status, 503);
  await p2.dp.apply(pinned(snapshot([a.port], { noGroup: true }), p2.port));
  assert.equal((await request(p2.port)).status, 503);
});

test('502 when the target refuses the connection or answers garbage', async () => {
  const free = net.createServer();
  await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
  const deadPort = (free.address() as net.AddressInfo).port;
  await new Promise<void>((r) => free.close(() => r()));
  const garbage = net.createServer((s) => {
    s.on('data', () => s.end('NOT HTTP AT ALL\r\n\r\n'));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => garbage.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => garbage.close(() => r())));
  const logs2: Array<Record<string, unknown>> = [];
  const p2 = await startPlane(snapshot([deadPort]), logs2);
  cleanups.push(() => p2.dp.destroy());
  assert.equal((await request(p2.port)).status, 502);
  assert.ok(logs2.some((l) => l.kind === 'connect-refused' && l.source === 'upstream'));
  await p2.dp.apply(pinned(snapshot([(garbage.address() as net.AddressInfo).port]), p2.port));
  assert.equal((await request(p2.port)).status, 502);
  assert.ok(logs2.some((l) => l.kind === 'upstream-garbage'));
});

test('504 when the target does not answer in time', async () => {
  const slow = await startBackend('slow', (_req, res) => {
    setTimeout(() => res.end('late'), 1500).unref();
  });
  cleanups.push(() => slow.close());
  const logs2: Array<Record<string, unknown>> = [];
  const p2 = await startPlane(snapshot([slow.port], { settings: { targetResponseTimeoutMs: 300 } }), logs2);
  cleanups.push(() => p2.dp.destroy());
  const t0 = Date.now();
  const r = await request(p2.port);
  assert.equal(r.status, 504);
  assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`);
  assert.ok(logs2.some((l) => l.kind === 'response-timeout'));
  assert.equal(p2.dp.activity(keyOf(slow.port)).requests, 0);
});

test('X-Forwarded-For is appended, Proto and Port set', async () => {
  forgetSeen();
  await request(port, { headers: { 'X-Forwarded-For': '203.0.113.7', 'X-Forwarded-Proto': 'https' } });
  const seen = [...a.seen, ...b.seen][0];
  assert.ok(seen);
  assert.equal(seen.headers['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
  assert.equal(seen.headers['x-forwarded-proto'], 'http');
  assert.equal(seen.headers['x-forwarded-port'], String(port));
});

test('xffMode remove drops X-Forwarded-For; preserve keeps it unchanged', async () => {
  const p2 = await startPlane(snapshot([a.port], { settings: { xffMode: 'remove' } }));
  cleanups.push(() => p2.dp.destroy());
  a.seen.length = 0;
  await request(p2.port, { headers: { 'X-Forwarded-For': '203.0.113.7' } });
  assert.equal(a.seen[0]?.headers['x-forwarded-for'], undefined);
  await p2.dp.apply(pinned(snapshot([a.port], { settings: { xffMode: 'preserve' } }), p2.port));
  a.seen.length = 0;
  await request(p2.port, { headers: { 'X-Forwarded-For': '203.0.113.7' } });
  assert.equal(a.seen[0]?.headers['x-forwarded-for'], '203.0.113.7');
});

test('hop-by-hop headers are stripped both ways', async () => {
  const hop = await startBackend('hop', (_req, res) => {
    res.setHeader('Connection', 'keep-alive, X-Secret');
    res.setHeader('X-Secret', 'internal');
    res.setHeader('Keep-Alive', 'timeout=99');
    res.setHeader('X-Kept', 'yes');
    res.end('hop');
  });
  cleanups.push(() => hop.close());
  const p2 = await startPlane(snapshot([hop.port]));
  cleanups.push(() => p2.dp.destroy());
  const r = await request(p2.port, {
    headers: { Connection: 'keep-alive, X-Drop-Me', 'X-Drop-Me': '1', 'Keep-Alive': '5', TE: 'trailers', 'Proxy-Connection': 'x', 'X-Stay': 'ok' },
  });
  const seen = hop.seen[0];
  assert.ok(seen);
  assert.equal(seen.headers['x-drop-me'], undefined);
  assert.equal(seen.headers['te'], undefined);
  assert.equal(seen.headers['proxy-connection'], undefined);
  assert.equal(seen.headers['keep-alive'], undefined);
  assert.equal(seen.headers['x-stay'], 'ok');
  assert.equal(r.headers['x-secret'], undefined);
  assert.notEqual(r.headers['keep-alive'], 'timeout=99');
  assert.equal(r.headers['x-kept'], 'yes');
});

test('request and response bodies are streamed both ways', async () => {
  const echo = await startBackend('echo', (req, res) => {
    res.setHeader('Content-Type', 'application/octet-stream');
    req.pipe(res);
  });
  cleanups.push(() => echo.close());
  const p2 = await startPlane(snapshot([echo.port]));
  cleanups.push(() => p2.dp.destroy());
  const big = 'x'.repeat(3 * 1024 * 1024);
  const r1 = await request(p2.port, { method: 'POST', body: big, headers: { 'Content-Length': String(big.length) } });
  assert.equal(r1.status, 200);
  assert.equal(r1.body.length, big.length);
  // chunked request body (no Content-Length) and chunked response
  const r2 = await new Promise<string>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: p2.port, method: 'POST', path: '/' }, (res) => {
      let s = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (s += c));
      res.on('end', () => resolve(s));
    });
    req.on('error', reject);
    req.write('hello ');
    setTimeout(() => req.end('world'), 50);
  });
  assert.equal(r2, 'hello world');
});

test('431 when the request has more headers than maxHeadersCount', async () => {
  const headers: Record<string, string> = {};
  for (let i = 0; i < 60; i++) headers[`x-h${i}`] = 'v';
  forgetSeen();
  const r = await request(port, { headers });
  assert.equal(r.status, 431);
  assert.equal(a.seen.length + b.seen.length, 0);
  assert.equal(r.headers.connection, 'close');
});

test("431 from the clientError path for a head over the listener's maxHeaderBytes", async () => {
  // 4 KiB is below Node's own default limit (16 KiB), so only the listener's setting refuses this head.
  const p2 = await startPlane(snapshot([a.port], { settings: { maxHeaderBytes: 4096 } }));
  cleanups.push(() => p2.dp.destroy());
  const out = await rawRequest(p2.port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(8_000)}\r\n\r\n`);
  assert.match(out, /^HTTP\/1\.1 431 /);
  assert.match(out, /Connection: close/i);
});

/**
 * Framing that some reader could take two ways, with what the default (defensive) desync mode does,
 * as ALB does: refuse (400, close), forward then close both connections, or forward.
 */
const SMUGGLING: Array<[string, string, 'refuse' | 'close' | 'forward']> = [
  ['Content-Length with Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'close'],
  ['duplicate Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello', 'close'],
  ['differing Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!', 'refuse'],
  ['a second Host', 'GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n', 'refuse'],
  ['Transfer-Encoding gzip, chunked', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n', 'forward'],
  ['Transfer-Encoding identity', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n', 'refuse'],
  ['two Transfer-Encoding headers', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'refuse'],
  ['HTTP/1.0 with Transfer-Encoding', 'POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'close'],
  ['obs-fold', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n', 'close'],
  ['Transfer_Encoding look-alike', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer_Encoding: chunked\r\nContent-Length: 0\r\n\r\n', 'close'],
  ['chunked after a no-break space', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \xa0chunked\r\n\r\n0\r\n\r\n', 'refuse'],
];

/** Sent in the same write behind each case: only a forwarded keep-alive request may let it through, as a request of its own. */
const PIPELINED = 'POST /smuggled HTTP/1.1\r\nHost: victim\r\nContent-Length: 0\r\n\r\n';

for (const [name, bytes, action] of SMUGGLING) {
  test(`${action} for ${name}`, async () => {
    forgetSeen();
    const out = await rawRequest(port, bytes + PIPELINED, action === 'forward' ? 500 : 2000);
    const seen = [...a.seen, ...b.seen];
    if (action === 'refuse') {
      assert.match(out, /^HTTP\/1\.1 400 /, out);
      assert.match(out, /connection: close/i);
      assert.doesNotMatch(out, /<timeout>/, 'the connection must be closed');
      assert.equal(out.match(/HTTP\/1\.1 /g)?.length, 1, 'one answer: the refusal');
      assert.deepEqual(seen.map((r) => r.url), [], 'nothing reaches a target, not even the request pipelined behind');
      return;
    }
    assert.match(out, /^HTTP\/1\.1 200 /, out);
    if (action === 'close') {
      assert.match(out, /connection: close/i);
      assert.doesNotMatch(out, /<timeout>/, 'the connection must be closed');
      assert.equal(out.match(/HTTP\/1\.1 /g)?.length, 1, 'one answer');
      assert.deepEqual(seen.map((r) => r.url), ['/'], 'the request reaches a target once, and nothing behind it does');
    } else {
      assert.deepEqual(seen.map((r) => r.url).sort(), ['/', '/smuggled'], 'two requests, each framed as ebb framed it');
    }
    for (const r of seen) {
      assert.ok(!('transfer_encoding' in r.headers), 'a look-alike framing header is never forwarded');
      assert.ok(!(r.headers['content-length'] !== undefined && r.headers['transfer-encoding'] !== undefined), 'one framing header');
    }
  });
}

test('a body coded before chunked reaches the target with its codings: ebb re-frames the chunks, never drops a coding', async () => {
  forgetSeen();
  const out = await rawRequest(port, 'POST /gz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n3\r\n\x1f\x8b\x08\r\n0\r\n\r\n');
  assert.match(out, /^HTTP\/1\.1 200 /);
  const seen = [...a.seen, ...b.seen];
  assert.deepEqual(seen.map((r) => [r.url, r.headers['transfer-encoding']]), [['/gz', 'gzip, chunked']]);
});

test('a valid chunked request still passes', async () => {
  const out = await rawRequest(port, 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
  assert.match(out, /^HTTP\/1\.1 200 /);
});

test('request end events are published only to subscribers', async () => {
  const got: Array<Record<string, unknown>> = [];
  const fn = (m: unknown): void => void got.push(m as Record<string, unknown>);
  diagnosticsChannel.subscribe(CHANNEL_NAMES.requestEnd, fn);
  try {
    await request(port);
  } finally {
    diagnosticsChannel.unsubscribe(CHANNEL_NAMES.requestEnd, fn);
  }
  assert.equal(got.length, 1);
  assert.equal(got[0]?.status, 200);
  assert.equal(got[0]?.targetGroupArn, 'arn:test:targetgroup/web');
  assert.equal(typeof got[0]?.durationMs, 'number');
  await request(port);
  assert.equal(got.length, 1);
});

test('a port already in use is reported, not thrown', async () => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => blocker.close(() => r())));
  const taken = (blocker.address() as net.AddressInfo).port;
  const p2 = await startPlane(snapshot([a.port]));
  cleanups.push(() => p2.dp.destroy());
  const r = await p2.dp.apply(snapshot([a.port], { port: taken }));
  assert.equal(r.listenerErrors.length, 1);
  assert.equal(r.listenerErrors[0]?.code, 'EADDRINUSE');
  assert.match(r.listenerErrors[0]?.message ?? '', /in use/);
});

test('a target that answers before reading the body is not reused for the next request', async () => {
  const early = await startBackend('early', (req, res) => {
    if (req.method === 'POST') {
      res.writeHead(413, { Connection: 'keep-alive' });
      res.end('too big');
      return;
    }
    res.end('fine');
  });
  cleanups.push(() => early.close());
  const p2 = await startPlane(snapshot([early.port]));
  cleanups.push(() => p2.dp.destroy());
  const big = 'y'.repeat(2 * 1024 * 1024);
  const r = await request(p2.port, { method: 'POST', body: big, headers: { 'Content-Length': String(big.length) } }).catch(
    (e: NodeJS.ErrnoException) => ({ status: -1, body: e.code ?? '', headers: {} }),
  );
  assert.ok(r.status === 413 || r.status === -1, `status ${r.status}`);
  for (let i = 0; i < 3; i++) assert.equal((await request(p2.port)).body, 'fine');
});

test('HTTP/0.9 (a request line without a version) is Acceptable: forwarded as HTTP/1.1, then the connection closes', async () => {
  forgetSeen();
  const out = await rawRequest(port, 'GET /old\r\n\r\n');
  assert.match(out, /^HTTP\/1\.1 200 /, out);
  assert.match(out, /connection: close/i);
  assert.doesNotMatch(out, /<timeout>/);
  const seen = [...a.seen, ...b.seen];
  assert.deepEqual(seen.map((r) => [r.url, r.version]), [['/old', '1.1']]);
});

for (const [name, bytes] of [
  ['an HTTP/2.0 request line', 'GET / HTTP/2.0\r\nHost: x\r\n\r\n'],
  ['an HTTP/2.0 upgrade request', 'GET / HTTP/2.0\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'],
  ['an HTTP/9.9 request line', 'GET / HTTP/9.9\r\nHost: x\r\n\r\n'],
  ['the HTTP/2 connection preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
] as const) {
  test(`505 and close for ${name}`, async () => {
    forgetSeen();
    const out = await rawRequest(port, bytes);
    assert.match(out, /^HTTP\/1\.1 505 /, out);
    assert.match(out, /connection: close/i);
    assert.doesNotMatch(out, /<timeout>/);
    assert.equal(a.seen.length + b.seen.length, 0);
  });
}

test('a malformed version is still 400', async () => {
  const out = await rawRequest(port, 'GET / HTTP/1.x\r\nHost: x\r\n\r\n');
  assert.match(out, /^HTTP\/1\.1 400 /, out);
});

test("HTTP/1.0 without Host is forwarded as HTTP/1.1 with the target's host:port", async () => {
  forgetSeen();
  const out = await rawRequest(port, 'GET /ten HTTP/1.0\r\n\r\n');
  assert.match(out, /^HTTP\/1\.1 200 /, out);
  const seen = [...a.seen, ...b.seen];
  assert.equal(seen.length, 1);
  const got = seen[0];
  assert.ok(got !== undefined);
  assert.equal(got.version, '1.1');
  const target = a.seen.length === 1 ? a : b;
  assert.equal(got.headers.host, `127.0.0.1:${target.port}`);
  // With a Host, HTTP/1.0 keeps it.
  forgetSeen();
  const out2 = await rawRequest(port, 'GET /ten HTTP/1.0\r\nHost: named.example\r\n\r\n');
  assert.match(out2, /^HTTP\/1\.1 200 /, out2);
  assert.equal([...a.seen, ...b.seen][0]?.headers.host, 'named.example');
});

test('a target that answers early while the request body is held back does not wedge the keep-alive client connection', async () => {
  // A raw target: for the POST it reads the head, stops reading (so ebb's writes back up and the
  // client's body is paused), then answers; a GET is answered at once.
  const sockets = new Set<net.Socket>();
  const target = net.createServer((s) => {
    sockets.add(s);
    let head = '';
    s.setEncoding('latin1');
    s.on('error', () => {});
    const onData = (d: string): void => {
      head += d;
      if (!head.includes('\r\n\r\n')) return;
      s.off('data', onData);
      if (head.startsWith('GET')) {
        s.end('HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecond');
        return;
      }
      s.pause();
      setTimeout(() => s.write('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 5\r\n\r\nearly'), 300);
    };
    s.on('data', onData);
  });
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        target.close(() => r());
      }),
  );
  const tport = (target.address() as net.AddressInfo).port;
  const p2 = await startPlane(snapshot([tport]));
  cleanups.push(() => p2.dp.destroy());
  const size = 16 * 1024 * 1024;
  const client = net.connect(p2.port, '127.0.0.1');
  cleanups.push(() => client.destroy());
  client.on('error', () => {});
  let got = '';
  client.setEncoding('latin1');
  client.on('data', (d: string) => (got += d));
  client.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
  client.write(Buffer.alloc(size, 0x61));
  client.write('GET /next HTTP/1.1\r\nHost: x\r\n\r\n');
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && !got.includes('second') && !client.destroyed) await sleep(20);
  assert.match(got, /^HTTP\/1\.1 413 /, got.slice(0, 200));
  assert.match(got, /early/);
  assert.match(got, /HTTP\/1\.1 200 OK[\s\S]*second$/, `the next request on the connection is answered; got ${JSON.stringify(got.slice(0, 300))}`);
});

test('malformed bytes pipelined behind a valid request: that request gets its own answer, the garbage a 400 after it, then the connection closes', async () => {
  forgetSeen();
  const out = await rawRequest(port, 'GET /first HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\x01 / HTTP/1.1\r\n\r\n');
  assert.match(out, /^HTTP\/1\.1 200 [\s\S]*HTTP\/1\.1 400 /, out);
  assert.doesNotMatch(out, /<timeout>/, 'the connection is closed afterwards');
  assert.deepEqual([...a.seen, ...b.seen].map((r) => r.url), ['/first']);
});

test('thousands of pipelined requests answered at once (503) are answered in order without deepening the stack', async () => {
  const p2 = await startPlane(snapshot([], { noGroup: true }));
  cleanups.push(() => p2.dp.destroy());
  const n = 3000;
  const out = await rawRequest(p2.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(n), 3000);
  assert.equal(out.match(/^HTTP\/1\.1 503 /gm)?.length, n);
});

test('a request end carries what an access-log line needs: addresses, times, bytes, statuses, classification', async () => {
  const got: Array<Record<string, unknown>> = [];
  const fn = (m: unknown): void => void got.push(m as Record<string, unknown>);
  diagnosticsChannel.subscribe(CHANNEL_NAMES.requestEnd, fn);
  try {
    const before = Date.now();
    await request(port, { path: '/logged?x=1', headers: { 'User-Agent': 'probe/1.0', Host: 'site.example' } });
    const refused = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n');
    assert.match(refused, /^HTTP\/1\.1 400 /);
    const p2 = await startPlane(snapshot([], { noGroup: true }));
    cleanups.push(() => p2.dp.destroy());
    await request(p2.port, { path: '/none' });
    assert.equal(got.length, 3, JSON.stringify(got));
    const [ok, bad, none] = got as [Record<string, unknown>, Record<string, unknown>, Record<string, unknown>];
    assert.equal(ok.status, 200);
    assert.equal(ok.targetStatus, 200);
    assert.equal(ok.fromTarget, true);
    assert.equal(ok.url, '/logged?x=1');
    assert.equal(ok.method, 'GET');
    assert.equal(ok.version, 'HTTP/1.1');
    assert.equal(ok.host, 'site.example');
    assert.equal(ok.userAgent, 'probe/1.0');
    assert.equal(ok.clientAddress, '127.0.0.1');
    assert.ok(Number(ok.clientPort) > 0);
    assert.equal(ok.listenerPort, port);
    assert.match(String(ok.target), /^127\.0\.0\.1:\d+$/);
    assert.ok(Number(ok.requestTime) >= before && Number(ok.requestTime) <= Date.now());
    assert.ok(Number(ok.requestProcessingMs) >= 0 && Number(ok.targetResponseMs) >= 0 && ok.responseProcessingMs === 0);
    assert.ok(Number(ok.receivedBytes) > 40, 'the head was counted');
    assert.ok(Number(ok.sentBytes) > 20, 'the response was counted');
    assert.equal(ok.classification, 'Compliant');
    assert.equal(ok.errorReason, null);
    assert.equal(bad.status, 400);
    assert.equal(bad.target, null);
    assert.equal(bad.targetStatus, null);
    assert.equal(bad.classification, 'Severe');
    assert.equal(bad.classificationReason, 'MultipleContentLength');
    assert.equal(bad.requestProcessingMs, -1);
    assert.match(String(bad.errorReason), /MultipleContentLength/);
    assert.equal(none.status, 503);
    assert.equal(none.errorReason, 'no-target-group');
    assert.equal(none.classification, 'Compliant');
  } finally {
    diagnosticsChannel.unsubscribe(CHANNEL_NAMES.requestEnd, fn);
  }
});
