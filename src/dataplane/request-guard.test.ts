import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ListenerSettings } from '../domain/routing-snapshot.ts';
import { RequestBodyReader } from './request-body.ts';
import { BodyMode, clientAddressOf, desyncAction, isRejection, planRequest, targetHostHeader } from './request-guard.ts';
import type { RequestPlan, RequestRejection } from './request-guard.ts';
import { HeadScanner, parseRequestHead } from './request-head.ts';

const SETTINGS: ListenerSettings = {
  idleTimeoutMs: 60_000,
  clientHeaderTimeoutMs: 10_000,
  targetConnectTimeoutMs: 1_000,
  targetResponseTimeoutMs: 10_000,
  maxHeaderBytes: 16_384,
  maxHeadersCount: 6,
  xffMode: 'append',
  desyncMode: 'defensive',
  http2: true,
  tcpIdleTimeoutMs: 350_000,
};

/** Plans the head in `raw` (CRLF lines, without the blank line) for client 10.0.0.9 on listener port 8080. */
function plan(raw: string, settings: Partial<ListenerSettings> = {}): RequestPlan | RequestRejection {
  return planRequest(parseRequestHead(`${raw}\r\n`), { ...SETTINGS, ...settings }, '10.0.0.9', 8080);
}

function planned(raw: string, settings: Partial<ListenerSettings> = {}): RequestPlan {
  const p = plan(raw, settings);
  if (isRejection(p)) throw new Error(`refused: ${p.status} ${p.reason}`);
  return p;
}

test('the desync table: what each mode does with each tier', () => {
  const table = {
    monitor: ['forward', 'forward', 'forward', 'forward'],
    defensive: ['forward', 'forward', 'close', 'refuse'],
    strictest: ['forward', 'refuse', 'refuse', 'refuse'],
  } as const;
  for (const [mode, actions] of Object.entries(table)) {
    (['Compliant', 'Acceptable', 'Ambiguous', 'Severe'] as const).forEach((tier, i) => {
      assert.equal(desyncAction(tier, mode as ListenerSettings['desyncMode']), actions[i], `${tier} in ${mode}`);
    });
  }
});

test('a compliant request: origin form at HTTP/1.1, X-Forwarded-* added, hop-by-hop dropped', () => {
  const p = planned('GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\nX-Forwarded-For: 1.2.3.4\r\nAccept: */*');
  assert.equal(p.verdict.tier, 'Compliant');
  assert.equal(p.bodyMode, BodyMode.None);
  assert.equal(p.closeAfter, false);
  assert.equal(p.keepAlive, true);
  assert.equal(
    p.head,
    'GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-Forwarded-For: 1.2.3.4, 10.0.0.9\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: 8080\r\n',
  );
});

test('on an HTTPS listener X-Forwarded-Proto is https, and a client\'s own X-Forwarded-Proto and -Port are replaced', () => {
  const p = planRequest(parseRequestHead('GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: 80\r\n'), SETTINGS, '10.0.0.9', 8443, 'https');
  if (isRejection(p)) throw new Error('refused');
  assert.equal(p.head, 'GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.9\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 8443\r\n');
});

test('framing is ebb’s own: one Content-Length, or chunked without a length', () => {
  const cl = planned('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 007');
  assert.equal(cl.bodyMode, BodyMode.ContentLength);
  assert.equal(cl.contentLength, 7);
  assert.match(cl.head, /\r\nContent-Length: 7\r\n/);
  const both = planned('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked');
  assert.equal(both.verdict.reason, 'BothTeClPresent');
  assert.equal(both.bodyMode, BodyMode.Chunked);
  assert.equal(both.closeAfter, true, 'Ambiguous in defensive mode: both connections close after it');
  assert.doesNotMatch(both.head, /Content-Length/i);
  assert.match(both.head, /\r\nTransfer-Encoding: chunked\r\n$/);
  // A body coded before chunked keeps its codings: ebb re-frames the chunks, the bytes stay gzip.
  const gz = planned('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: GZIP , chunked');
  assert.equal(gz.bodyMode, BodyMode.Chunked);
  assert.match(gz.head, /\r\nTransfer-Encoding: gzip, chunked\r\n$/);
  const identity = planned('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity, chunked');
  assert.match(identity.head, /\r\nTransfer-Encoding: chunked\r\n$/, 'identity codes nothing');
  assert.equal(planned('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0').head.includes('Content-Length: 0\r\n'), true);
});

test('refusals whatever the mode: unframeable bodies, a second Host, too many headers, other HTTP versions, CONNECT', () => {
  for (const mode of ['monitor', 'defensive', 'strictest'] as const) {
    const s = { desyncMode: mode };
    const lengths = plan('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6', s) as RequestRejection;
    assert.deepEqual([lengths.status, lengths.reason], [400, mode === 'monitor' ? 'unframeable-body' : 'desync-severe:MultipleContentLength']);
    assert.equal((plan('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity', s) as { status: number }).status, 400);
    assert.equal((plan('GET / HTTP/1.1\r\nHost: a\r\nHost: b', s) as { status: number }).status, 400);
    assert.deepEqual(plan('GET / HTTP/2.0\r\nHost: a', s), { status: 505, reason: 'http-version-not-supported' });
    assert.deepEqual(plan(`GET / HTTP/1.1\r\nHost: a${'\r\nX-A: 1'.repeat(6)}`, s), { status: 431, reason: 'too-many-headers' });
    assert.equal((plan('CONNECT a:443 HTTP/1.1\r\nHost: a:443', s) as { status: number }).status, 501);
  }
});

test('monitor forwards what defensive refuses, in ebb’s own framing; strictest refuses what defensive forwards', () => {
  const severe = 'GET / HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b';
  assert.equal((plan(severe) as { status: number }).status, 400);
  const m = planned(severe, { desyncMode: 'monitor' });
  assert.equal(m.verdict.tier, 'Severe');
  assert.doesNotMatch(m.head, /X-Bad/, 'a header with a NUL is never written');
  const acceptable = 'GET /a b HTTP/1.1\r\nHost: x';
  const d = planned(acceptable);
  assert.equal(d.verdict.reason, 'SpaceInUri');
  assert.match(d.head, /^GET \/a%20b HTTP\/1\.1\r\n/, 'a space in the target is escaped');
  assert.equal((plan(acceptable, { desyncMode: 'strictest' }) as { status: number }).status, 400);
});

test('look-alike framing names, non-token names and folded lines are dropped', () => {
  const p = planned('POST / HTTP/1.1\r\nHost: x\r\nTransfer_Encoding: chunked\r\nX-Name : v\r\nX-A: 1\r\n  more\r\nContent-Length: 0');
  assert.equal(p.verdict.tier, 'Ambiguous');
  assert.doesNotMatch(p.head, /Transfer_Encoding|X-Name|more/);
  assert.match(p.head, /\r\nX-A: 1\r\n/);
});

test('HTTP/1.0, HTTP/0.9, missing Host, absolute form, Expect and upgrades', () => {
  const ten = planned('GET / HTTP/1.0');
  assert.equal(ten.http10, true);
  assert.equal(ten.keepAlive, false);
  assert.equal(ten.addHost, true);
  assert.equal(planned('GET / HTTP/1.0\r\nConnection: keep-alive').keepAlive, true);
  const nine = planned('GET /old');
  assert.equal(nine.verdict.reason, 'NonCompliantVersion');
  assert.equal(nine.http10, true);
  assert.match(nine.head, /^GET \/old HTTP\/1\.1\r\n/);
  const abs = planned('GET http://example.com:81/p?q HTTP/1.1\r\nHost: other');
  assert.match(abs.head, /^GET \/p\?q HTTP\/1\.1\r\nHost: example\.com:81\r\n/);
  const cont = planned('PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3');
  assert.equal(cont.expectContinue, true);
  assert.doesNotMatch(cont.head, /Expect/);
  const ws = planned('GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k');
  assert.equal(ws.upgrade, 'websocket');
  assert.match(ws.head, /\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n$/);
  assert.equal((plan('POST /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 3') as { reason: string }).reason, 'upgrade-with-body');
  assert.match(planned('OPTIONS * HTTP/1.1\r\nHost: x').head, /^OPTIONS \* HTTP\/1\.1\r\n/);
  assert.deepEqual(plan('GET * HTTP/1.1\r\nHost: x'), { status: 400, reason: 'bad-request-target' }, 'the asterisk form is for OPTIONS only');
  // No h2c (as on ALB): forwarded as a plain request, without Upgrade, Connection or HTTP2-Settings.
  for (const value of ['h2c', 'H2C', 'websocket, h2c']) {
    const h2c = planned(`GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: ${value}\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA`);
    assert.equal(h2c.upgrade, null, value);
    assert.doesNotMatch(h2c.head, /upgrade|http2-settings|connection/i, value);
  }
});

/** Where a scanner finds the end of `bytes` when they arrive cut at `cut` (two reads). */
function headEnd(bytes: string, cut = bytes.length): { end: number; crlf: boolean; single: boolean } {
  const buf = Buffer.from(bytes, 'latin1');
  const s = new HeadScanner();
  let end = s.scan(buf.subarray(0, cut));
  if (end < 0) end = s.scan(buf);
  return { end, crlf: s.crlf, single: s.single };
}

test('request heads: found at their blank line with CRLF or bare LF line ends, whatever the read boundaries', () => {
  const crlf = 'GET / HTTP/1.1\r\nHost: x\r\n\r\nNEXT';
  for (let cut = 0; cut <= crlf.length; cut++) assert.deepEqual(headEnd(crlf, cut), { end: crlf.length - 4, crlf: true, single: false }, `cut ${cut}`);
  const lf = 'GET / HTTP/1.1\nHost: x\n\nNEXT';
  for (let cut = 0; cut <= lf.length; cut++) assert.deepEqual(headEnd(lf, cut), { end: lf.length - 4, crlf: false, single: false }, `cut ${cut}`);
  assert.equal(headEnd(crlf.slice(0, 20)).end, -1);
  // HTTP/0.9: the request line alone.
  assert.deepEqual(headEnd('GET /old\r\nNEXT'), { end: 10, crlf: true, single: true });
  // A lone LF inside a CRLF head stays in its line (the classifier finds it Severe).
  const inValue = 'GET / HTTP/1.1\r\nX-A: a\nb\r\n\r\n';
  assert.deepEqual(headEnd(inValue), { end: inValue.length, crlf: true, single: false });
  const inUri = 'GET /a\nHTTP/1.1 HTTP/1.1\r\nHost: x\r\n\r\n';
  assert.deepEqual(headEnd(inUri), { end: inUri.length, crlf: true, single: false });
  const head = parseRequestHead('GET / HTTP/1.1\nHost: x\n', false);
  assert.deepEqual(head.rawDefects.map((d) => d.reason), ['NonCrLfLineTermination']);
  assert.deepEqual(parseRequestHead('GET / HTTP/1.1\r\nNo colon here\r\n').rawDefects.map((d) => d.reason), ['MissingHeaderColon']);
  assert.equal(parseRequestHead('GET /a\nHTTP/1.1 HTTP/1.1\r\n').uri, '/a\nHTTP/1.1');
});

/** Feeds `bytes` to a reader cut at `cut`; returns the body read, the offset after it, or the error. */
function readBody(chunked: boolean, length: number, bytes: string, cut: number): { body: string; end: number; error: string | null } {
  const r = new RequestBodyReader(chunked, length);
  let body = '';
  let ended = false;
  const sink = { onBodyData: (c: Buffer) => (body += c.toString('latin1')), onBodyEnd: () => (ended = true) };
  const buf = Buffer.from(bytes, 'latin1');
  const first = r.feed(buf.subarray(0, cut), 0, sink);
  if (first < 0) return { body, end: -1, error: r.error };
  if (ended) return { body, end: first, error: null };
  const second = r.feed(buf.subarray(cut), 0, sink);
  if (second < 0) return { body, end: -1, error: r.error };
  return { body, end: ended ? cut + second : -2, error: null };
}

test('request bodies: Content-Length and chunked, at every cut, end where they end', () => {
  const chunked = '3;ext=1\r\nabc\r\n5 \t; e\r\n01234\r\n5 \r\n56789\r\n0\r\nX-T: 1\r\n\r\nNEXT';
  for (let cut = 0; cut <= chunked.length; cut++) {
    const r = readBody(true, 0, chunked, cut);
    assert.equal(r.error, null, `cut ${cut}`);
    assert.equal(r.body, 'abc0123456789', `cut ${cut}`);
    assert.equal(r.end, chunked.length - 4, `cut ${cut}`);
  }
  const r = readBody(false, 5, 'helloNEXT', 2);
  assert.deepEqual([r.body, r.end], ['hello', 5]);
});

test('malformed chunked bodies are errors at once', () => {
  const bad: Array<[string, string]> = [
    ['zz\r\n', 'bad-chunk-size'],
    ['-3\r\nabc\r\n', 'bad-chunk-size'],
    ['0x3\r\nabc\r\n', 'bad-chunk-size'],
    [`${'f'.repeat(18)}\r\n`, 'chunk-size-too-large'],
    ['3\nabc\r\n', 'bare-lf'],
    ['3\r\nabcX\r\n', 'missing-crlf-after-chunk'],
    ['3\r\nabc\n0\r\n\r\n', 'missing-crlf-after-chunk'],
    [`3;${'e'.repeat(20_000)}\r\n`, 'chunk-extension-too-long'],
    ['0\r\nX: 1\n\r\n', 'bad-trailer'],
    // Whitespace after the size may only be followed by an extension's `;` or the line's end (RFC 9112 §7.1.1).
    ['3 xyz\r\nabc\r\n', 'bad-chunk-extension'],
    ['3 \t\n', 'bare-lf'],
  ];
  for (const [bytes, error] of bad) assert.equal(readBody(true, 0, bytes, bytes.length).error, error, JSON.stringify(bytes.slice(0, 20)));
});

test('helpers: target Host header and client address', () => {
  assert.equal(targetHostHeader('10.0.0.1', 80), '10.0.0.1:80');
  assert.equal(targetHostHeader('::1', 8080), '[::1]:8080');
  assert.equal(clientAddressOf('::ffff:127.0.0.1'), '127.0.0.1');
  assert.equal(clientAddressOf(undefined), 'unknown');
});
