import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ListenerSettings } from '../../domain/routing-snapshot.ts';
import { BodyMode, isRejection } from '../request-guard.ts';
import type { RequestPlan } from '../request-guard.ts';
import { planHttp2Request } from './request-plan.ts';

const SETTINGS: ListenerSettings = {
  idleTimeoutMs: 60_000,
  clientHeaderTimeoutMs: 60_000,
  targetConnectTimeoutMs: 10_000,
  targetResponseTimeoutMs: 60_000,
  maxHeaderBytes: 16_384,
  maxHeadersCount: 20,
  xffMode: 'append',
  desyncMode: 'defensive',
  http2: true,
  tcpIdleTimeoutMs: 350_000,
};

const GET = [':method', 'GET', ':scheme', 'https', ':authority', 'example.com', ':path', '/a?b=1'];

function plan(raw: string[], endStream = true, settings: Partial<ListenerSettings> = {}): RequestPlan {
  const p = planHttp2Request(raw, endStream, { ...SETTINGS, ...settings }, '192.0.2.7', 443);
  if (isRejection(p)) throw new Error(`refused: ${p.status} ${p.reason}`);
  return p;
}

function refusal(raw: string[], endStream = true, settings: Partial<ListenerSettings> = {}): string {
  const p = planHttp2Request(raw, endStream, { ...SETTINGS, ...settings }, '192.0.2.7', 443);
  return isRejection(p) ? `${p.status} ${p.reason}` : 'planned';
}

test('a GET becomes an HTTP/1.1 request line, :authority the Host, with X-Forwarded-* for https', () => {
  const p = plan([...GET, 'accept', '*/*', 'user-agent', 'curl/8']);
  assert.equal(
    p.head,
    'GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\naccept: */*\r\nuser-agent: curl/8\r\nX-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\n',
  );
  assert.equal(p.bodyMode, BodyMode.None);
  assert.equal(p.version, 'HTTP/2.0');
  assert.equal(p.host, 'example.com');
  assert.equal(p.userAgent, 'curl/8');
  assert.equal(p.url, '/a?b=1');
  assert.equal(p.addHost, false);
  assert.equal(p.closeAfter, false);
  assert.equal(p.verdict.tier, 'Compliant');
});

test('the body is framed by ebb: Content-Length when the client gave one, else chunked; none with END_STREAM', () => {
  const post = [':method', 'POST', ':authority', 'x', ':path', '/'];
  const sized = plan([...post, 'content-length', '5'], false);
  assert.equal(sized.bodyMode, BodyMode.ContentLength);
  assert.equal(sized.contentLength, 5);
  assert.match(sized.head, /\r\nContent-Length: 5\r\n$/);
  const streamed = plan(post, false);
  assert.equal(streamed.bodyMode, BodyMode.Chunked);
  assert.match(streamed.head, /\r\nTransfer-Encoding: chunked\r\n$/);
  const empty = plan(post, true);
  assert.equal(empty.bodyMode, BodyMode.None);
  assert.match(empty.head, /\r\nContent-Length: 0\r\n$/, 'a POST without content still says so');
  const zero = plan([...post, 'content-length', '0'], false);
  assert.equal(zero.bodyMode, BodyMode.None, 'content-length 0: the DATA frame that ends the stream carries nothing');
  assert.doesNotMatch(plan(GET, true).head, /Content-Length/, 'a GET without content gets no Content-Length');
});

test('hop-by-hop, look-alike framing and forged X-Forwarded fields never reach the target', () => {
  const p = plan([...GET, 'te', 'trailers', 'transfer_encoding', 'chunked', 'x-forwarded-proto', 'http', 'x-forwarded-port', '1', 'x-ok', 'yes']);
  assert.doesNotMatch(p.head, /\r\nte:|transfer_encoding|X-Forwarded-Proto: http\r|X-Forwarded-Port: 1\r/);
  assert.match(p.head, /\r\nx-ok: yes\r\n/);
});

test('values with control bytes and names that are not tokens are dropped', () => {
  const p = plan([...GET, 'x-bad', 'a\x01b', 'x bad', 'v', 'x-good', 'v\x80']);
  assert.doesNotMatch(p.head, /x-bad|x bad/);
  assert.match(p.head, /\r\nx-good: v\x80\r\n/);
});

test('cookie fields split by HTTP/2 are joined into one', () => {
  const p = plan([...GET, 'cookie', 'a=1', 'x', 'y', 'cookie', 'b=2']);
  assert.match(p.head, /\r\ncookie: a=1; b=2\r\n/);
  assert.equal(p.head.match(/cookie/g)?.length, 1);
});

test('X-Forwarded-For follows the listener mode', () => {
  const withXff = [...GET, 'x-forwarded-for', '198.51.100.1'];
  assert.match(plan(withXff).head, /X-Forwarded-For: 198\.51\.100\.1, 192\.0\.2\.7\r\n/);
  assert.match(plan(withXff, true, { xffMode: 'preserve' }).head, /X-Forwarded-For: 198\.51\.100\.1\r\n/);
  assert.doesNotMatch(plan(withXff, true, { xffMode: 'remove' }).head, /X-Forwarded-For/);
});

test('Host: from :authority, else the host field, else added by the request path once it picks', () => {
  const noAuthority = [':method', 'GET', ':scheme', 'https', ':path', '/'];
  assert.match(plan([...noAuthority, 'host', 'h.example']).head, /\r\nHost: h\.example\r\n/);
  assert.equal(plan(noAuthority).addHost, true);
  assert.equal(plan([...GET, 'host', 'EXAMPLE.com']).head.match(/Host:|host:/gi)?.length, 1, 'one Host when both agree');
  assert.equal(refusal([...GET, 'host', 'other.example']), '400 authority-host-mismatch');
  assert.equal(refusal([...noAuthority, 'host', 'a', 'host', 'b']), '400 duplicate-host');
  assert.equal(refusal([':method', 'GET', ':authority', 'u@h', ':path', '/']), '400 bad-request-target');
});

test('the request target: escaped as HTTP/1.1 targets are; origin form or * only', () => {
  assert.match(plan([':method', 'GET', ':authority', 'x', ':path', '/a b\x7f']).head, /^GET \/a%20b%7F HTTP\/1\.1\r\n/);
  assert.match(plan([':method', 'OPTIONS', ':authority', 'x', ':path', '*']).head, /^OPTIONS \* HTTP\/1\.1\r\n/);
  assert.equal(refusal([':method', 'GET', ':authority', 'x', ':path', 'http://x/']), '400 bad-request-target');
  assert.equal(refusal([':method', 'GET', ':authority', 'x', ':path', '*']), '400 bad-request-target');
});

test('limits and methods: header count (431), header list size (431), CONNECT (501), a method that is not a token (400)', () => {
  const many: string[] = [...GET];
  for (let i = 0; i < 21; i++) many.push(`x-h${i}`, 'v');
  assert.equal(refusal(many), '431 too-many-headers');
  assert.equal(refusal([...GET, 'x-big', 'a'.repeat(200)], true, { maxHeaderBytes: 256 }), '431 head-too-large');
  assert.equal(refusal([':method', 'CONNECT', ':authority', 'x:443']), '501 connect-not-supported');
  assert.equal(refusal([':method', 'G T', ':authority', 'x', ':path', '/']), '400 bad-method');
});

test('Expect: 100-continue is answered by ebb only when a body follows', () => {
  const post = [':method', 'POST', ':authority', 'x', ':path', '/', 'expect', '100-continue'];
  assert.equal(plan(post, false).expectContinue, true);
  assert.equal(plan(post, true).expectContinue, false);
  assert.doesNotMatch(plan(post, false).head, /expect/i);
});
