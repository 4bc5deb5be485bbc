import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import type { ListenerSettings } from '../domain/routing-snapshot.ts';
import { BodyMode, clientAddressOf, inspectRequest, targetHostHeader } from './request-guard.ts';
import type { RequestPlan } from './request-guard.ts';

const SETTINGS: ListenerSettings = {
  idleTimeoutMs: 60_000,
  clientHeaderTimeoutMs: 10_000,
  targetConnectTimeoutMs: 1_000,
  targetResponseTimeoutMs: 10_000,
  maxHeaderBytes: 16_384,
  maxHeadersCount: 5,
  xffMode: 'append',
};

interface Case {
  readonly name: string;
  readonly version?: string;
  readonly method?: string;
  readonly url?: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly settings?: Partial<ListenerSettings>;
  /** The rejection expected, or the plan. */
  readonly reject?: { status: number; reason: string };
  readonly body?: BodyMode;
  readonly contentLength?: number;
  readonly addHost?: boolean;
  /** Header lines (without CRLF) the head must contain, and must not contain. */
  readonly has?: readonly string[];
  readonly lacks?: readonly string[];
}

function fakeRequest(c: Case): IncomingMessage {
  const [major, minor] = (c.version ?? '1.1').split('.').map(Number);
  return {
    method: c.method ?? 'GET',
    url: c.url ?? '/path?q=1',
    httpVersionMajor: major,
    httpVersionMinor: minor,
    rawHeaders: c.headers.flat(),
  } as unknown as IncomingMessage;
}

const H: readonly [string, string] = ['Host', 'app.example'];

const CASES: readonly Case[] = [
  // Versions
  { name: 'HTTP/1.1 with Host', headers: [H], body: BodyMode.None, has: ['GET /path?q=1 HTTP/1.1', 'Host: app.example'] },
  { name: 'HTTP/0.9', version: '0.9', headers: [], reject: { status: 400, reason: 'http-0.9' } },
  { name: 'HTTP/2.0 request line', version: '2.0', headers: [H], reject: { status: 505, reason: 'http-version-not-supported' } },
  { name: 'HTTP/1.2', version: '1.2', headers: [H], reject: { status: 505, reason: 'http-version-not-supported' } },
  { name: 'HTTP/3.0', version: '3.0', headers: [H], reject: { status: 505, reason: 'http-version-not-supported' } },
  { name: 'HTTP/1.1 without Host', headers: [['Accept', '*/*']], reject: { status: 400, reason: 'missing-host' } },
  { name: 'HTTP/1.0 without Host is forwarded as 1.1, Host added later', version: '1.0', headers: [], addHost: true, has: ['GET /path?q=1 HTTP/1.1'], lacks: ['Host: app.example'] },
  { name: 'HTTP/1.0 with Host keeps it', version: '1.0', headers: [H], addHost: false, has: ['GET /path?q=1 HTTP/1.1', 'Host: app.example'] },
  // Host
  { name: 'two Host headers', headers: [H, ['host', 'other.example']], reject: { status: 400, reason: 'duplicate-host' } },
  // Framing
  { name: 'Content-Length', method: 'POST', headers: [H, ['Content-Length', '12']], body: BodyMode.ContentLength, contentLength: 12, has: ['Content-Length: 12'] },
  { name: 'Content-Length 0 has no body', method: 'POST', headers: [H, ['Content-Length', '0']], body: BodyMode.None, has: ['Content-Length: 0'] },
  { name: 'two Content-Length headers', method: 'POST', headers: [H, ['Content-Length', '1'], ['Content-Length', '1']], reject: { status: 400, reason: 'duplicate-content-length' } },
  { name: 'signed Content-Length', method: 'POST', headers: [H, ['Content-Length', '+5']], reject: { status: 400, reason: 'bad-content-length' } },
  { name: 'Content-Length list', method: 'POST', headers: [H, ['Content-Length', '5, 5']], reject: { status: 400, reason: 'bad-content-length' } },
  { name: 'Content-Length of 16 digits', method: 'POST', headers: [H, ['Content-Length', '1234567890123456']], reject: { status: 400, reason: 'bad-content-length' } },
  { name: 'chunked', method: 'POST', headers: [H, ['Transfer-Encoding', 'chunked']], body: BodyMode.Chunked, has: ['Transfer-Encoding: chunked'] },
  { name: 'chunked in capitals with spaces', method: 'POST', headers: [H, ['Transfer-Encoding', ' CHUNKED ']], body: BodyMode.Chunked },
  { name: 'chunked after a no-break space', method: 'POST', headers: [H, ['Transfer-Encoding', '\u00a0chunked']], reject: { status: 400, reason: 'bad-transfer-encoding' } },
  { name: 'Content-Length with leading zeros is re-serialised', method: 'POST', headers: [H, ['Content-Length', '005']], body: BodyMode.ContentLength, has: ['Content-Length: 5'], lacks: ['Content-Length: 005'] },
  { name: 'absolute-form target: origin form, authority as the only Host', url: 'http://other.example:8080/p?q=1', headers: [H], body: BodyMode.None, has: ['GET /p?q=1 HTTP/1.1', 'Host: other.example:8080'], lacks: ['Host: app.example'] },
  { name: 'absolute-form target without a path', url: 'http://other.example', headers: [H], body: BodyMode.None, has: ['GET / HTTP/1.1', 'Host: other.example'], lacks: ['Host: app.example'] },
  { name: 'a request target that is neither origin nor absolute form', url: 'ftp://x/y', headers: [H], reject: { status: 400, reason: 'bad-request-target' } },
  { name: 'gzip, chunked', method: 'POST', headers: [H, ['Transfer-Encoding', 'gzip, chunked']], reject: { status: 400, reason: 'bad-transfer-encoding' } },
  { name: 'identity', method: 'POST', headers: [H, ['Transfer-Encoding', 'identity']], reject: { status: 400, reason: 'bad-transfer-encoding' } },
  { name: 'two Transfer-Encoding headers', method: 'POST', headers: [H, ['Transfer-Encoding', 'chunked'], ['Transfer-Encoding', 'chunked']], reject: { status: 400, reason: 'duplicate-transfer-encoding' } },
  { name: 'Content-Length and Transfer-Encoding', method: 'POST', headers: [H, ['Content-Length', '3'], ['Transfer-Encoding', 'chunked']], reject: { status: 400, reason: 'content-length-and-transfer-encoding' } },
  { name: 'Transfer-Encoding on HTTP/1.0', version: '1.0', method: 'POST', headers: [H, ['Transfer-Encoding', 'chunked']], reject: { status: 400, reason: 'transfer-encoding-on-http-1.0' } },
  { name: 'Transfer_Encoding look-alike', method: 'POST', headers: [H, ['Transfer_Encoding', 'chunked']], reject: { status: 400, reason: 'suspicious-header-name' } },
  { name: 'Content_Length look-alike', method: 'POST', headers: [H, ['content_length', '5']], reject: { status: 400, reason: 'suspicious-header-name' } },
  // Header count
  { name: 'as many headers as the limit', headers: [H, ['A', '1'], ['B', '2'], ['C', '3'], ['D', '4']], body: BodyMode.None },
  { name: 'more headers than the limit', headers: [H, ['A', '1'], ['B', '2'], ['C', '3'], ['D', '4'], ['E', '5']], reject: { status: 431, reason: 'too-many-headers' } },
  // Hop-by-hop and Connection-named headers
  {
    name: 'hop-by-hop headers dropped',
    headers: [H, ['Connection', 'keep-alive'], ['Keep-Alive', 'timeout=5'], ['TE', 'trailers'], ['Upgrade', 'h2c']],
    has: ['Host: app.example'],
    lacks: ['Connection: keep-alive', 'Keep-Alive: timeout=5', 'TE: trailers', 'Upgrade: h2c'],
  },
  { name: 'headers named by Connection dropped, Host kept', headers: [H, ['Connection', 'X-Secret, host'], ['X-Secret', 's']], has: ['Host: app.example'], lacks: ['X-Secret: s'] },
  { name: 'Expect dropped (ebb answered 100 Continue)', method: 'POST', headers: [H, ['Expect', '100-continue'], ['Content-Length', '1']], lacks: ['Expect: 100-continue'] },
  // X-Forwarded-*
  { name: 'X-Forwarded-For appended', headers: [H, ['X-Forwarded-For', '10.0.0.1']], has: ['X-Forwarded-For: 10.0.0.1, 192.0.2.7', 'X-Forwarded-Proto: http', 'X-Forwarded-Port: 8080'] },
  { name: 'X-Forwarded-For preserved', headers: [H, ['X-Forwarded-For', '10.0.0.1']], settings: { xffMode: 'preserve' }, has: ['X-Forwarded-For: 10.0.0.1'], lacks: ['X-Forwarded-For: 10.0.0.1, 192.0.2.7'] },
  { name: 'X-Forwarded-For removed', headers: [H, ['X-Forwarded-For', '10.0.0.1']], settings: { xffMode: 'remove' }, lacks: ['X-Forwarded-For: 10.0.0.1'] },
  { name: "a client's X-Forwarded-Proto and Port replaced", headers: [H, ['X-Forwarded-Proto', 'https'], ['X-Forwarded-Port', '1']], has: ['X-Forwarded-Proto: http', 'X-Forwarded-Port: 8080'], lacks: ['X-Forwarded-Proto: https', 'X-Forwarded-Port: 1'] },
];

for (const c of CASES) {
  test(`inspectRequest: ${c.name}`, () => {
    const plan: RequestPlan = { head: '', bodyMode: BodyMode.None, contentLength: 0, addHost: false };
    const r = inspectRequest(fakeRequest(c), { ...SETTINGS, ...c.settings }, '192.0.2.7', 8080, plan);
    if (c.reject !== undefined) {
      assert.deepEqual(r, c.reject);
      return;
    }
    assert.equal(r, null, `rejected: ${JSON.stringify(r)}`);
    const lines = plan.head.split('\r\n');
    assert.equal(lines.at(-1), '', 'the head ends with CRLF (the blank line is added by the request path)');
    assert.ok(!plan.head.endsWith('\r\n\r\n'));
    if (c.body !== undefined) assert.equal(plan.bodyMode, c.body);
    if (c.contentLength !== undefined) assert.equal(plan.contentLength, c.contentLength);
    if (c.addHost !== undefined) assert.equal(plan.addHost, c.addHost);
    for (const h of c.has ?? []) assert.ok(lines.includes(h), `missing ${JSON.stringify(h)} in ${JSON.stringify(lines)}`);
    for (const h of c.lacks ?? []) assert.ok(!lines.includes(h), `unexpected ${JSON.stringify(h)} in ${JSON.stringify(lines)}`);
  });
}

test('targetHostHeader brackets IPv6 addresses', () => {
  assert.equal(targetHostHeader('10.0.0.5', 80), '10.0.0.5:80');
  assert.equal(targetHostHeader('::1', 8080), '[::1]:8080');
  assert.equal(targetHostHeader('backend.internal', 81), 'backend.internal:81');
});

test('clientAddressOf shows IPv4-mapped addresses as IPv4', () => {
  assert.equal(clientAddressOf('::ffff:192.0.2.1'), '192.0.2.1');
  assert.equal(clientAddressOf('2001:db8::1'), '2001:db8::1');
  assert.equal(clientAddressOf(undefined), 'unknown');
});
