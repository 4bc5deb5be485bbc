import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import type { ListenerSettings } from '../../src/domain/routing-snapshot.ts';
import type { HttpDataPlane, HttpDataPlaneOptions } from '../../src/dataplane/http-data-plane.ts';
import { rawRequest, sleep, snapshot, startPlane, waitFor } from './dataplane-helpers.ts';

/**
 * Clients that misbehave at the byte level, against raw targets that record every byte they get
 * and everything they send, in order. What is proved is what a smuggling attempt needs: bytes sent
 * behind an upgrade request reach the target only after it has answered (as tunnel bytes after a
 * 101, as a request of their own after a refusal), a bad chunked body is refused at once and never
 * leaves a half-sent request on a target connection that is used again, and nothing a client sends
 * after a refused request reaches a target.
 */

type DesyncMode = ListenerSettings['desyncMode'];
const MODES: readonly DesyncMode[] = ['monitor', 'defensive', 'strictest'];

const planes: HttpDataPlane[] = [];
const targets: RecordingTarget[] = [];
const clients = new Set<net.Socket>();
after(async () => {
  for (const dp of planes) dp.destroy();
  for (const c of clients) c.destroy();
  await Promise.all(targets.map((t) => t.close()));
});

async function planeFor(targetPort: number, settings: Partial<ListenerSettings> = {}, options: HttpDataPlaneOptions = {}): Promise<number> {
  const { dp, port } = await startPlane(snapshot([targetPort], { settings }), [], options);
  planes.push(dp);
  return port;
}

// ---------------------------------------------------------------------------------------------
// A strict reader of what ebb sends a target. ebb writes every head itself, so anything a strict
// HTTP/1.1 reader would not take is a defect: a bare LF, a header line that is not `token: value`,
// two framing headers, a Content-Length that is not digits, a coding other than `chunked`, a Host
// that is missing or repeated, a chunk that is not `hex CRLF data CRLF`.

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP\/1\.1$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

interface SeenRequest {
  readonly method: string;
  readonly target: string;
  /** Header names lower-cased, values as sent. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly framing: 'none' | 'length' | 'chunked';
  readonly body: string;
}

function header(r: SeenRequest, name: string): string[] {
  return r.headers.filter(([n]) => n === name).map(([, v]) => v);
}

/** One request from `b` at `from`: the request and where the next begins, 'partial', or why it is not strict HTTP/1.1. */
function readRequest(b: string, from: number): { request: SeenRequest; next: number } | 'partial' | { error: string } {
  const end = b.indexOf('\r\n\r\n', from);
  const bare = bareLf(b, from, end < 0 ? b.length : end + 4);
  if (bare >= 0) return { error: `bare LF at ${bare}` };
  if (end < 0) return 'partial';
  const lines = b.slice(from, end).split('\r\n');
  const line = REQUEST_LINE.exec(lines[0] as string);
  if (line === null) return { error: `request line ${JSON.stringify(lines[0])}` };
  const headers: Array<[string, string]> = [];
  for (const l of lines.slice(1)) {
    const colon = l.indexOf(':');
    const name = l.slice(0, colon);
    const value = l.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (colon <= 0 || !TOKEN.test(name) || !FIELD_VALUE.test(value) || l.includes('\r')) return { error: `header line ${JSON.stringify(l)}` };
    headers.push([name.toLowerCase(), value]);
  }
  const cl = headers.filter(([n]) => n === 'content-length');
  const te = headers.filter(([n]) => n === 'transfer-encoding');
  const hosts = headers.filter(([n]) => n === 'host');
  if (hosts.length !== 1) return { error: `${hosts.length} Host headers` };
  if (cl.length + te.length > 1) return { error: `${cl.length} Content-Length and ${te.length} Transfer-Encoding` };
  const base = { method: line[1] as string, target: line[2] as string, headers };
  let at = end + 4;
  if (cl.length === 1) {
    const v = (cl[0] as [string, string])[1];
    if (!/^[0-9]{1,15}$/.test(v)) return { error: `Content-Length ${JSON.stringify(v)}` };
    const n = Number(v);
    if (b.length < at + n) return 'partial';
    return { request: { ...base, framing: 'length', body: b.slice(at, at + n) }, next: at + n };
  }
  if (te.length === 0) return { request: { ...base, framing: 'none', body: '' }, next: at };
  if ((te[0] as [string, string])[1] !== 'chunked') return { error: `Transfer-Encoding ${JSON.stringify(te[0])}` };
  let body = '';
  for (;;) {
    const nl = b.indexOf('\r\n', at);
    if (nl < 0) return b.length - at > 20 ? { error: 'chunk size line too long' } : 'partial';
    const size = b.slice(at, nl);
    if (!/^[0-9a-f]{1,13}$/i.test(size)) return { error: `chunk size ${JSON.stringify(size)}` };
    const n = parseInt(size, 16);
    const data = nl + 2;
    if (b.length < data + n + 2) return 'partial';
    if (b.slice(data + n, data + n + 2) !== '\r\n') return { error: `no CRLF after a chunk of ${n}` };
    at = data + n + 2;
    if (n === 0) return { request: { ...base, framing: 'chunked', body }, next: at };
    body += b.slice(data, data + n);
  }
}

function bareLf(b: string, from: number, to: number): number {
  for (let i = b.indexOf('\n', from); i >= 0 && i < to; i = b.indexOf('\n', i + 1)) if (b[i - 1] !== '\r') return i;
  return -1;
}

// ---------------------------------------------------------------------------------------------
// A raw target that records, in one ordered log across its connections, what it received and what
// it sent.

interface TargetConnection {
  readonly id: number;
  readonly socket: net.Socket;
  /** Every byte received, latin1. */
  bytes: string;
  readonly requests: SeenRequest[];
  /** Bytes after the requests read so far (a request not yet whole). */
  rest: string;
  error: string | null;
  /** After a 101: bytes are echoed, not parsed. */
  tunnel: boolean;
  /** ebb ended or closed it. */
  closed: boolean;
}

interface LogEntry {
  readonly conn: number;
  readonly what: 'recv' | 'sent' | 'closed';
  readonly data: string;
}

interface RecordingTarget {
  readonly port: number;
  readonly log: LogEntry[];
  readonly connections: TargetConnection[];
  /** Writes `bytes` to the connection and logs them. */
  send(c: TargetConnection, bytes: string): void;
  close(): Promise<void>;
}

/** `answer` is called for each whole request (default: 200 with the request's target in X-Echo-Path). */
async function recordingTarget(answer?: (c: TargetConnection, r: SeenRequest, t: RecordingTarget) => void): Promise<RecordingTarget> {
  const log: LogEntry[] = [];
  const connections: TargetConnection[] = [];
  const server = net.createServer((socket) => {
    const c: TargetConnection = { id: connections.length, socket, bytes: '', requests: [], rest: '', error: null, tunnel: false, closed: false };
    connections.push(c);
    socket.setEncoding('latin1');
    socket.on('error', () => {});
    const closed = (): void => {
      if (c.closed) return;
      c.closed = true;
      log.push({ conn: c.id, what: 'closed', data: '' });
    };
    socket.on('end', closed);
    socket.on('close', closed);
    socket.on('data', (d: string) => {
      c.bytes += d;
      log.push({ conn: c.id, what: 'recv', data: d });
      if (c.tunnel) return t.send(c, d);
      c.rest += d;
      while (c.error === null && !c.tunnel) {
        const r = readRequest(c.rest, 0);
        if (r === 'partial') return;
        if ('error' in r) {
          c.error = r.error;
          return;
        }
        c.rest = c.rest.slice(r.next);
        c.requests.push(r.request);
        if (answer !== undefined) answer(c, r.request, t);
        else t.send(c, echo(r.request));
      }
      // Bytes that came behind the switching request in the same read go down the tunnel too.
      if (c.tunnel && c.rest !== '') {
        const held = c.rest;
        c.rest = '';
        t.send(c, held);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const t: RecordingTarget = {
    port: (server.address() as AddressInfo).port,
    log,
    connections,
    send(c, bytes) {
      log.push({ conn: c.id, what: 'sent', data: bytes });
      if (c.socket.writable) c.socket.write(bytes, 'latin1');
    },
    close: () =>
      new Promise<void>((r) => {
        for (const c of connections) c.socket.destroy();
        server.close(() => r());
      }),
  };
  targets.push(t);
  return t;
}

function echo(r: SeenRequest): string {
  const body = `ok ${r.target}`;
  return `HTTP/1.1 200 OK\r\nX-Echo-Path: ${r.target}\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
}

/** Everything the target received before its first logged write that matches `sent`. */
function receivedBefore(t: RecordingTarget, sent: RegExp): string {
  const at = t.log.findIndex((e) => e.what === 'sent' && sent.test(e.data));
  assert.ok(at >= 0, `the target never sent ${String(sent)}`);
  return t.log
    .slice(0, at)
    .filter((e) => e.what === 'recv')
    .map((e) => e.data)
    .join('');
}

// ---------------------------------------------------------------------------------------------
// A strict reader of what a client gets: whole responses framed by Content-Length or chunked.

interface SeenResponse {
  readonly status: number;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: string;
}

/** Every whole response in `b`, and the bytes after them (a partial response, or garbage). */
function readResponses(b: string): { responses: SeenResponse[]; rest: string } {
  const responses: SeenResponse[] = [];
  let at = 0;
  for (;;) {
    const end = b.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const lines = b.slice(at, end).split('\r\n');
    const m = /^HTTP\/1\.1 ([0-9]{3}) [^\r\n]*$/.exec(lines[0] as string);
    if (m === null) break;
    const headers = lines.slice(1).map((l): [string, string] => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]);
    const cl = headers.find(([n]) => n === 'content-length');
    const chunked = headers.some(([n, v]) => n === 'transfer-encoding' && v === 'chunked');
    let next = end + 4;
    let body = '';
    if (chunked) {
      let ok = false;
      for (;;) {
        const nl = b.indexOf('\r\n', next);
        if (nl < 0) break;
        const n = parseInt(b.slice(next, nl), 16);
        if (!Number.isInteger(n) || b.length < nl + 2 + n + 2) break;
        body += b.slice(nl + 2, nl + 2 + n);
        next = nl + 2 + n + 2;
        if (n === 0) {
          ok = true;
          break;
        }
      }
      if (!ok) break;
    } else if (cl !== undefined) {
      const n = Number(cl[1]);
      if (b.length < next + n) break;
      body = b.slice(next, next + n);
      next += n;
    }
    responses.push({ status: Number(m[1]), headers, body });
    at = next;
  }
  return { responses, rest: b.slice(at) };
}

function responseHeader(r: SeenResponse | undefined, name: string): string | undefined {
  return r?.headers.find(([n]) => n === name)?.[1];
}

/**
 * A client connection: writes `first`, and once what it has received matches `then.after`, writes
 * each of `then.bytes` with a pause between. Resolves when ebb closes the connection (`closed`
 * true), 100 ms after `until` holds of what came back (time for anything more to show), or when
 * `ms` passes; with what came back and when its first byte did.
 */
function converse(
  port: number,
  first: string,
  ms: number,
  then?: { after: RegExp; bytes: readonly string[] },
  until?: (out: string) => boolean,
): Promise<{ out: string; closed: boolean; firstByteMs: number }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    clients.add(s);
    const start = performance.now();
    let firstByteMs = -1;
    let out = '';
    let sentMore = false;
    let finished = false;
    const done = (closed: boolean): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      clients.delete(s);
      s.destroy();
      resolve({ out, closed, firstByteMs });
    };
    const timer = setTimeout(() => done(false), ms);
    s.setEncoding('latin1');
    s.on('error', () => {});
    s.on('data', (d: string) => {
      if (firstByteMs < 0) firstByteMs = performance.now() - start;
      out += d;
      if (until?.(out) === true) setTimeout(() => done(false), 100);
      if (then !== undefined && !sentMore && then.after.test(out)) {
        sentMore = true;
        void (async () => {
          for (const piece of then.bytes) {
            if (s.destroyed) return;
            s.write(piece, 'latin1');
            await sleep(10);
          }
        })();
      }
    });
    s.on('close', () => done(true));
    s.write(first, 'latin1');
  });
}

// ---------------------------------------------------------------------------------------------
// 1. An upgrade request with a second request behind it in the same write.

const UPGRADE = 'GET /chat HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n';
/**
 * Framed two ways: a Content-Length reader takes `5\r\nh` as its body and `ello…` as the start of
 * a next request; a chunked reader (RFC 9112 §6.3: Transfer-Encoding wins) takes `hello`. It
 * also forges X-Forwarded-For.
 */
const FOLLOW_UP =
  'POST /smuggled HTTP/1.1\r\nHost: victim.example\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n5\r\nhello\r\n0\r\n\r\n';
/** How long the target waits before answering an upgrade: time for early bytes to show up if ebb sent any. */
const ANSWER_DELAY_MS = 150;

/** The target got exactly one whole request before `sent`: ebb's upgrade head, and nothing of the follow-up. */
function assertOnlyUpgradeBefore(t: RecordingTarget, sent: RegExp): void {
  const before = receivedBefore(t, sent);
  const r = readRequest(before, 0);
  assert.ok(typeof r === 'object' && 'request' in r, `the target had a whole request before answering: ${JSON.stringify(before)}`);
  assert.equal(r.next, before.length, `nothing came behind the upgrade request before the target answered: ${JSON.stringify(before)}`);
  assert.equal(r.request.target, '/chat');
  assert.doesNotMatch(before, /smuggled|6\.6\.6\.6|hello/);
}

for (const mode of MODES) {
  test(`${mode}: bytes behind an upgrade request reach the target only after its 101, as tunnel bytes, and come back to the client verbatim`, async () => {
    const t = await recordingTarget((c, r, target) => {
      if (header(r, 'upgrade').length === 0) return target.send(c, echo(r));
      setTimeout(() => {
        target.send(c, 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
        c.tunnel = true;
      }, ANSWER_DELAY_MS);
    });
    const port = await planeFor(t.port, { desyncMode: mode });
    const s = net.connect(port, '127.0.0.1');
    clients.add(s);
    let out = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (out += d));
    s.on('error', () => {});
    s.write(UPGRADE + FOLLOW_UP, 'latin1');
    assert.ok(await waitFor(() => out.endsWith(FOLLOW_UP), 1500), `the echo of the follow-up: ${JSON.stringify(out)}`);
    s.destroy();

    assert.equal(t.connections.length, 1, 'one target connection: the upgrade');
    assertOnlyUpgradeBefore(t, /^HTTP\/1\.1 101 /);
    const conn = t.connections[0] as TargetConnection;
    assert.equal(conn.error, null);
    assert.equal(conn.bytes.slice(conn.bytes.indexOf('\r\n\r\n') + 4), FOLLOW_UP, 'after the switch the target got the follow-up bytes as they were sent');
    assert.match(out, /^HTTP\/1\.1 101 [^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\nPOST \/smuggled /);
    assert.equal(out.slice(out.indexOf('\r\n\r\n') + 4), FOLLOW_UP, 'the client gets the 101 head, then only the echo');
  });
}

/** 426 with a body framed by Content-Length, or by chunked. */
const DECLINES: ReadonlyArray<[string, string]> = [
  ['Content-Length', 'HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 11\r\n\r\nhello world'],
  ['chunked', 'HTTP/1.1 426 Upgrade Required\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n'],
];

/** A target that declines every upgrade with `decline` after a pause, and echoes any other request. */
function decliningTarget(decline: string): Promise<RecordingTarget> {
  return recordingTarget((c, r, target) => {
    if (header(r, 'upgrade').length === 0) return target.send(c, echo(r));
    setTimeout(() => target.send(c, decline), ANSWER_DELAY_MS);
  });
}

for (const mode of MODES) {
  test(`${mode}: an upgrade declined with 426 and a body; the follow-up behind it is a request of its own, classified, never glued to the 426`, async () => {
    const t = await decliningTarget((DECLINES[0] as [string, string])[1]);
    const port = await planeFor(t.port, { desyncMode: mode });
    const { out, closed } = await converse(port, UPGRADE + FOLLOW_UP, 2000, undefined, (o) => readResponses(o).responses.length >= 2);
    const { responses, rest } = readResponses(out);
    assert.equal(rest, '', `nothing but whole responses: ${JSON.stringify(out)}`);
    const [declined, second] = responses;
    assert.equal(declined?.status, 426, out);
    assert.equal(declined.body, 'hello world', 'the whole 426 body, as its Content-Length says');
    assertOnlyUpgradeBefore(t, /^HTTP\/1\.1 426 /);
    const followUps = t.connections.flatMap((c) => c.requests).filter((r) => r.target === '/smuggled');
    for (const c of t.connections) assert.equal(c.error, null, `target connection ${c.id}: ${c.error}`);

    if (mode === 'strictest') {
      // Ambiguous is refused: a 400, the connection closed, and the target never sees it.
      assert.equal(responses.length, 2, out);
      assert.equal(second?.status, 400);
      assert.equal(responseHeader(second, 'connection'), 'close');
      assert.ok(closed, 'the client connection is closed');
      assert.equal(followUps.length, 0);
      assert.doesNotMatch(t.connections.map((c) => c.bytes).join(''), /smuggled/);
      return;
    }
    // monitor and defensive forward it with ebb's framing: chunked only, the real client appended to X-Forwarded-For.
    assert.equal(responses.length, 2, out);
    assert.equal(second?.status, 200);
    assert.equal(responseHeader(second, 'x-echo-path'), '/smuggled');
    assert.equal(followUps.length, 1);
    const f = followUps[0] as SeenRequest;
    assert.equal(f.framing, 'chunked');
    assert.deepEqual(header(f, 'content-length'), []);
    assert.deepEqual(header(f, 'transfer-encoding'), ['chunked']);
    assert.equal(f.body, 'hello');
    assert.deepEqual(header(f, 'x-forwarded-for'), ['6.6.6.6, 127.0.0.1']);
    const followConn = t.connections.find((c) => c.requests.includes(f)) as TargetConnection;
    const upgradeConn = t.connections.find((c) => c.requests.some((r) => r.target === '/chat')) as TargetConnection;
    assert.notEqual(followConn, upgradeConn, 'the follow-up is not written on the connection of the declined upgrade');
    assert.ok(await waitFor(() => upgradeConn.closed, 1000), 'the connection of a declined upgrade is not reused');
    if (mode === 'defensive') {
      // Ambiguous: forwarded, then both connections closed.
      assert.equal(responseHeader(second, 'connection'), 'close');
      assert.ok(closed, 'the client connection is closed');
      assert.ok(await waitFor(() => followConn.closed, 1000), 'the target connection is closed');
    } else {
      assert.equal(responseHeader(second, 'connection'), undefined, 'monitor keeps the connection');
      assert.ok(!closed);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// 2. A declined upgrade's body reaches the client whole.

for (const [framing, decline] of DECLINES) {
  test(`an upgrade declined with 426 and a ${framing} body: the client gets the body`, async () => {
    const t = await decliningTarget(decline);
    const port = await planeFor(t.port);
    const { out } = await converse(port, UPGRADE, 1000, undefined, (o) => readResponses(o).responses.length >= 1);
    const { responses, rest } = readResponses(out);
    assert.equal(rest, '', JSON.stringify(out));
    assert.equal(responses.length, 1, out);
    assert.equal(responses[0]?.status, 426);
    assert.equal(responses[0]?.body, 'hello world');
    assert.equal(responseHeader(responses[0], 'upgrade'), undefined, 'a hop-by-hop Upgrade is not relayed');
  });
}

// ---------------------------------------------------------------------------------------------
// 3. Malformed chunked request bodies.

const BAD_CHUNKS: ReadonlyArray<[string, string]> = [
  ['size zz', 'zz\r\nabc\r\n0\r\n\r\n'],
  ['size -3', '-3\r\nabc\r\n0\r\n\r\n'],
  ['size 0x3', '0x3\r\nabc\r\n0\r\n\r\n'],
  ['size 2^72', '1000000000000000000\r\nabc\r\n0\r\n\r\n'],
  ['no CRLF after the data', '3\r\nabcXY5\r\nhello\r\n0\r\n\r\n'],
  ['a bare LF after the size', '3\nabc\r\n0\r\n\r\n'],
  ['a 20 KB extension', `3;${'e'.repeat(20_000)}\r\nabc\r\n0\r\n\r\n`],
];

const BAD_HEAD = 'POST /bad HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\n\r\n';

for (const pooled of [true, false]) {
  for (const [name, body] of BAD_CHUNKS) {
    test(`chunked body with ${name}, ${pooled ? 'on a pooled' : 'on a new'} target connection: 400 at once, both connections closed, the next request clean`, async () => {
      const t = await recordingTarget();
      const port = await planeFor(t.port, {}, pooled ? {} : { maxIdlePerTarget: 0 });
      // A client connection's first request always gets a target connection of its own (as HAProxy's
      // `http-reuse safe`); its second takes the pooled one the first released.
      const prime = pooled ? 'GET /prime HTTP/1.1\r\nHost: app.example\r\n\r\n' : '';
      const start = performance.now();
      const { out, closed, firstByteMs } = await converse(port, prime + BAD_HEAD + body, 2000);
      const elapsed = performance.now() - start;
      const { responses, rest } = readResponses(out);
      assert.equal(rest, '', JSON.stringify(out));
      assert.deepEqual(
        responses.map((r) => [r.status, responseHeader(r, 'connection')]),
        pooled ? [[200, undefined], [400, 'close']] : [[400, 'close']],
      );
      assert.ok(firstByteMs >= 0 && firstByteMs < 1000, `the 400 came after ${firstByteMs.toFixed(0)} ms`);
      assert.ok(closed && elapsed < 1500, `the client connection is closed (${closed}, after ${elapsed.toFixed(0)} ms)`);

      // The target connection the request was streamed on (the pooled one, when there was one) is
      // closed, as is every other: none is left to carry a next request behind a half-sent one.
      const carried = t.connections.filter((c) => c.bytes.includes('/bad'));
      assert.ok(carried.length <= 1, 'the bad request went on one connection');
      if (pooled) {
        const primed = t.connections.find((c) => c.requests.some((r) => r.target === '/prime'));
        assert.ok(primed !== undefined && carried.every((c) => c === primed), 'the bad request went on the pooled connection');
      }
      const before = [...t.connections];
      assert.ok(await waitFor(() => before.every((c) => c.closed), 1000), 'the target connection the body was streamed on is closed');
      for (const c of t.connections) {
        assert.equal(c.error, null, `target connection ${c.id}: ${c.error}`);
        assert.ok(!c.requests.some((r) => r.target === '/bad'), 'the bad request never reaches a target whole');
      }

      const next = await rawRequest(port, 'POST /next HTTP/1.1\r\nHost: app.example\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnext');
      const answered = readResponses(next).responses;
      assert.equal(answered[0]?.status, 200, next);
      assert.equal(responseHeader(answered[0], 'x-echo-path'), '/next');
      const nextConn = t.connections.find((c) => c.requests.some((r) => r.target === '/next'));
      assert.ok(nextConn !== undefined);
      assert.ok(!before.includes(nextConn), 'the next request is not written behind the half-sent one');
      assert.equal(nextConn.error, null);
      assert.equal(nextConn.rest, '', 'the next request arrived whole, with nothing before or after it');
      assert.equal(nextConn.requests.at(-1)?.body, 'next');
    });
  }
}

// ---------------------------------------------------------------------------------------------
// 4. Bytes after a refused request.

interface Refusal {
  readonly name: string;
  readonly mode: DesyncMode;
  readonly bytes: string;
  readonly status: number;
}

const REFUSALS: readonly Refusal[] = [
  { name: 'differing Content-Length (Severe)', mode: 'defensive', bytes: 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!', status: 400 },
  { name: 'Content-Length with Transfer-Encoding (Ambiguous)', mode: 'strictest', bytes: `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, status: 400 },
  { name: 'a method that is not a token', mode: 'monitor', bytes: 'G@T / HTTP/1.1\r\nHost: x\r\n\r\n', status: 400 },
  { name: 'HTTP/2.0', mode: 'monitor', bytes: 'GET / HTTP/2.0\r\nHost: x\r\n\r\n', status: 505 },
  { name: 'a bad chunk size, after the head was forwarded', mode: 'monitor', bytes: `${BAD_HEAD}zz\r\n`, status: 400 },
  { name: 'too many headers', mode: 'monitor', bytes: `GET / HTTP/1.1\r\nHost: x\r\n${'X-H: 1\r\n'.repeat(60)}\r\n`, status: 431 },
];

/** A request that would be forwarded if it were ever read, and junk. */
const STRAY = ['GET /stray-1 HTTP/1.1\r\nHost: x\r\n\r\n', 'POST /stray-2 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n', `stray\x00\xff${'s'.repeat(3000)}\r\n\r\n`];

for (const r of REFUSALS) {
  test(`${r.mode}: nothing a client sends after a refused request (${r.name}) reaches a target`, async () => {
    const t = await recordingTarget();
    const port = await planeFor(t.port, { desyncMode: r.mode, maxHeadersCount: 50 });
    // Behind the refused request in the same write, then more once the refusal has come back.
    const { out, closed } = await converse(port, r.bytes + (STRAY[0] as string), 2000, { after: /^HTTP\/1\.1 \d{3} [\s\S]*\r\n\r\n/, bytes: STRAY });
    const { responses } = readResponses(out);
    assert.deepEqual(responses.map((x) => x.status), [r.status], out);
    assert.ok(closed, 'the connection is closed');
    await sleep(50);
    const all = t.connections.map((c) => c.bytes).join('');
    assert.doesNotMatch(all, /stray/, 'no stray byte reached a target');
    assert.ok(!t.connections.some((c) => c.requests.length > 0), 'no request reached a target whole');
  });
}

test('defensive: nothing after an Ambiguous request that was forwarded and closed reaches a target', async () => {
  const t = await recordingTarget();
  const port = await planeFor(t.port, { desyncMode: 'defensive' });
  const ambiguous = 'POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n';
  const { out, closed } = await converse(port, ambiguous + (STRAY[0] as string), 2000, { after: /^HTTP\/1\.1 200 [\s\S]*ok \/first/, bytes: STRAY });
  const { responses } = readResponses(out);
  assert.deepEqual(responses.map((x) => [x.status, responseHeader(x, 'connection')]), [[200, 'close']], out);
  assert.ok(closed);
  await sleep(50);
  assert.deepEqual(t.connections.flatMap((c) => c.requests.map((q) => q.target)), ['/first']);
  assert.doesNotMatch(t.connections.map((c) => c.bytes).join(''), /stray/);
});
