/**
 * HTTP/2 to clients (issue 10, "HTTP/2 to clients"): Node's HTTP/2 client and curl --http2 through an
 * HTTPS listener to HTTP/1.1 targets — streams of one connection spread over the targets, what a target
 * receives, request bodies with back-pressure, ebb's own answers, the header limits, and the session
 * messages.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import diagnosticsChannel from 'node:diagnostics_channel';
import http2 from 'node:http2';
import { after, before, test } from 'node:test';
import { CHANNEL_NAMES } from '../../src/dataplane/channels.ts';
import type { Http2SessionEndMessage, RequestEndMessage } from '../../src/dataplane/channels.ts';
import type { Backend, H2Front } from './http2-harness.ts';
import { CERTIFICATE_ARN, h2Connect, h2Get, h2Request, keyOf, snapshot, startBackend, startH2Front, waitFor } from './http2-harness.ts';
import { testCa } from '../support/certs.ts';

let a: Backend;
let b: Backend;
let front: H2Front;
const ends: RequestEndMessage[] = [];
const sessionEnds: Http2SessionEndMessage[] = [];
const onEnd = (m: unknown): void => void ends.push(m as RequestEndMessage);
const onSessionEnd = (m: unknown): void => void sessionEnds.push(m as Http2SessionEndMessage);

before(async () => {
  a = await startBackend('A');
  b = await startBackend('B');
  front = await startH2Front(snapshot([a.port, b.port]));
  diagnosticsChannel.subscribe(CHANNEL_NAMES.requestEnd, onEnd);
  diagnosticsChannel.subscribe(CHANNEL_NAMES.http2SessionEnd, onSessionEnd);
});
after(async () => {
  diagnosticsChannel.unsubscribe(CHANNEL_NAMES.requestEnd, onEnd);
  diagnosticsChannel.unsubscribe(CHANNEL_NAMES.http2SessionEnd, onSessionEnd);
  await front.close(500);
  await a.close();
  await b.close();
});

test('the streams of one connection are picked one by one: they reach both targets, as HTTP/1.1 with X-Forwarded-*', async () => {
  const client = await h2Connect(front.port);
  const aBefore = a.seen.length;
  const bBefore = b.seen.length;
  const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => h2Request(client, { ':path': `/s?i=${i}`, cookie: ['a=1', 'b=2'], 'x-custom': 'v' })));
  client.close();
  assert.deepEqual(replies.map((r) => r.status), Array(8).fill(200));
  assert.deepEqual(replies.map((r) => r.body).sort(), ['A', 'A', 'A', 'A', 'B', 'B', 'B', 'B'], 'round robin over the two targets, stream by stream');
  const seen = [...a.seen.slice(aBefore), ...b.seen.slice(bBefore)];
  assert.equal(seen.length, 8);
  for (const r of seen) {
    assert.equal(r.version, '1.1');
    assert.equal(r.headers.host, `localhost:${front.port}`, ':authority becomes Host');
    assert.equal(r.headers['x-forwarded-proto'], 'https');
    assert.equal(r.headers['x-forwarded-port'], String(front.port));
    assert.equal(r.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(r.headers.cookie, 'a=1; b=2', 'cookie fields joined into one');
    assert.equal(r.headers['x-custom'], 'v');
  }
  assert.equal(replies[0]?.headers['x-backend'] !== undefined, true, "the target's fields come back");
  assert.equal(replies[0]?.headers.connection, undefined);
  await waitFor(() => ends.filter((e) => e.url.startsWith('/s?i=')).length === 8);
  const mine = ends.filter((e) => e.url.startsWith('/s?i='));
  assert.equal(mine.length, 8, 'one request end per stream');
  for (const e of mine) {
    assert.equal(e.version, 'HTTP/2.0', 'logged with the version ALB logs for HTTP/2');
    assert.equal(e.status, 200);
    assert.equal(e.fromTarget, true);
    assert.equal(e.tls?.serverName, 'localhost');
    assert.equal(e.tls?.certificateArn, CERTIFICATE_ARN);
    assert.match(e.tls?.protocol ?? '', /^TLSv1\.[23]$/);
    assert.ok(e.targetKey === keyOf(a.port) || e.targetKey === keyOf(b.port));
    assert.ok(e.sentBytes >= 1 && e.receivedBytes > 0);
  }
});

test('curl --http2 multiplexes two requests on one connection; each is answered by its own pick', async () => {
  const url = `https://localhost:${front.port}`;
  const out = await new Promise<string>((resolve, reject) => {
    execFile(
      'curl',
      ['-sS', '--http2', '--cacert', testCa().certFile, '--parallel', '--parallel-immediate', '-w', '%{http_version} %{response_code} %{num_connects}\\n', `${url}/curl1`, `${url}/curl2`, '-o', '/dev/null', '-o', '/dev/null'],
      { timeout: 10_000 },
      (err, stdout, stderr) => (err === null ? resolve(stdout) : reject(new Error(`${err.message}: ${stderr}`))),
    );
  });
  const lines = out.trim().split('\n').sort();
  assert.equal(lines.length, 2);
  for (const l of lines) assert.match(l, /^2 200 [01]$/, `curl says HTTP/2 and 200: ${l}`);
  const curlSeen = [...a.seen, ...b.seen].filter((r) => r.url.startsWith('/curl'));
  assert.equal(curlSeen.length, 2);
  assert.ok(curlSeen.every((r) => r.headers['user-agent']?.startsWith('curl/') === true));
});

test('a request body streams to the target with back-pressure: a target that does not read stalls the client, then gets every byte', async () => {
  let release: () => void = () => {};
  const released = new Promise<void>((r) => (release = r));
  const slow = await startBackend('slow', (req, res) => {
    req.pause();
    void released.then(() => {
      const hash = createHash('sha256');
      req.on('data', (c: Buffer) => hash.update(c));
      req.on('end', () => res.end(hash.digest('hex')));
      req.resume();
    });
  });
  const f = await startH2Front(snapshot([slow.port]));
  const client = await h2Connect(f.port);
  try {
    const total = 16 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 7);
    const expected = createHash('sha256');
    const req = client.request({ ':method': 'POST', ':path': '/upload' }, { endStream: false });
    let written = 0;
    let stalledSince = 0;
    const reply = new Promise<{ status: number; body: string }>((resolve) => {
      let status = 0;
      let body = '';
      req.on('response', (h) => (status = Number(h[':status'])));
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('close', () => resolve({ status, body }));
    });
    const pump = async (): Promise<void> => {
      while (written < total) {
        expected.update(chunk);
        written += chunk.length;
        if (!req.write(chunk)) {
          stalledSince = Date.now();
          await new Promise<void>((r) => req.once('drain', r));
          stalledSince = 0;
        }
      }
      req.end();
    };
    const pumping = pump();
    // The client stalls once the windows and the buffers between ebb and the target are full.
    assert.ok(await waitFor(() => stalledSince !== 0 && Date.now() - stalledSince > 300, 5_000), 'the client should be held back');
    const heldAt = written;
    assert.ok(heldAt < total / 2, `ebb should not read the body ahead of the target: the client got ${heldAt} of ${total} bytes out`);
    release();
    await pumping;
    const r = await reply;
    assert.equal(r.status, 200);
    assert.equal(r.body, expected.digest('hex'), 'the target got the whole body, byte for byte');
    assert.equal(slow.seen[0]?.headers['transfer-encoding'], 'chunked', 'a body without content-length is sent chunked');
  } finally {
    client.close();
    await f.close(500);
    await slow.close();
  }
});

test('a body with content-length is sent with it; Expect: 100-continue is answered by ebb', async () => {
  const client = await h2Connect(front.port);
  const req = client.request({ ':method': 'PUT', ':path': '/put', 'content-length': '11', expect: '100-continue' }, { endStream: false });
  const continued = new Promise<boolean>((r) => {
    req.once('continue', () => r(true));
    req.once('response', () => r(false));
  });
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (d: string) => (body += d));
  assert.equal(await continued, true, 'ebb sends 100 Continue before it reads the body');
  req.end('hello world');
  await new Promise((r) => req.on('close', r));
  client.close();
  assert.ok(body === 'A' || body === 'B');
  const put = [...a.seen, ...b.seen].find((r) => r.url === '/put');
  assert.equal(put?.headers['content-length'], '11');
  assert.equal(put?.headers.expect, undefined, 'the target is not asked to continue: ebb did');
});

test("ebb's own answers go out on the stream, and the connection goes on: 503 with no target, 502 when the target refuses, 431 for too many fields", async () => {
  const empty = await startH2Front(snapshot([]));
  const client = await h2Connect(empty.port);
  const none = await h2Get(client, '/');
  assert.equal(none.status, 503);
  assert.equal(none.headers.server, 'ebb');
  assert.match(none.body, /^503 Service Unavailable/);
  await empty.apply(snapshot([1], { version: 2 })); // nothing listens on port 1
  const refused = await h2Get(client, '/');
  assert.equal(refused.status, 502);
  const many: Record<string, string> = { ':path': '/' };
  for (let i = 0; i < 60; i++) many[`x-field-${i}`] = 'v';
  const tooMany = await h2Request(client, many);
  assert.equal(tooMany.status, 431);
  const head = await h2Request(client, { ':method': 'HEAD', ':path': '/' });
  assert.equal(head.status, 502);
  assert.equal(head.body, '', 'no body for HEAD');
  assert.equal(client.closed || client.destroyed, false, 'the connection stays up through every answer');
  client.close();
  await empty.close(500);
});

test('a header list over the listener limit is refused; the connection serves the next stream', async () => {
  const client = await h2Connect(front.port);
  // h2Connect waited for ebb's SETTINGS, which the client acknowledges before it sends a stream: from
  // here nghttp2 enforces SETTINGS_MAX_HEADER_LIST_SIZE.
  assert.equal(client.remoteSettings.maxHeaderListSize, 16_384, "the listener's maxHeaderBytes, advertised");
  assert.equal(client.remoteSettings.maxConcurrentStreams, 128);
  await h2Get(client, '/warm');
  const big = await h2Request(client, { ':path': '/big', 'x-big': 'a'.repeat(20_000) });
  assert.ok(big.status === 431 || big.rstCode === http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, `refused (431 or RST ENHANCE_YOUR_CALM), got ${big.status}/${big.rstCode}`);
  assert.equal([...a.seen, ...b.seen].some((r) => r.url === '/big'), false, 'no target saw it');
  const next = await h2Get(client, '/after-big');
  assert.equal(next.status, 200);
  client.close();
});

test('responses without a body (HEAD, 204) end with their head; repeated single-value fields keep the first', async () => {
  const odd = await startBackend('odd', (req, res) => {
    if (req.url === '/204') {
      res.writeHead(204);
      res.end();
      return;
    }
    res.writeHead(200, [['Content-Type', 'text/plain'], ['Content-Type', 'text/html'], ['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2'], ['Content-Length', '2']]);
    res.end(req.method === 'HEAD' ? undefined : 'ok');
  });
  const f = await startH2Front(snapshot([odd.port]));
  const client = await h2Connect(f.port);
  try {
    const r = await h2Get(client, '/');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok');
    assert.equal(r.headers['content-type'], 'text/plain');
    assert.deepEqual(r.headers['set-cookie'], ['a=1', 'b=2']);
    const head = await h2Request(client, { ':method': 'HEAD', ':path': '/' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '2');
    assert.equal(head.body, '');
    const none = await h2Get(client, '/204');
    assert.equal(none.status, 204);
    assert.equal(none.error, null);
  } finally {
    client.close();
    await f.close(500);
    await odd.close();
  }
});

test('a connection with no stream for the idle timeout gets GOAWAY(NO_ERROR) and closes', async () => {
  const f = await startH2Front(snapshot([a.port], { settings: { idleTimeoutMs: 300 } }));
  const client = await h2Connect(f.port);
  const goaway = new Promise<number>((r) => client.once('goaway', (code: number) => r(code)));
  const closed = new Promise<number>((r) => client.once('close', () => r(Date.now())));
  const started = Date.now();
  assert.equal((await h2Get(client, '/')).status, 200);
  assert.equal(await goaway, http2.constants.NGHTTP2_NO_ERROR);
  const at = await closed;
  assert.ok(at - started >= 250 && at - started < 3_000, `closed after about the idle timeout (${at - started} ms)`);
  assert.ok(await waitFor(() => sessionEnds.some((m) => m.reason === 'idle_timeout' && m.streams === 1)), 'the session end says idle_timeout');
  await f.close(500);
});
