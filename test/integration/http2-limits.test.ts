/**
 * HTTP/2 limits (docs/http2.md, "Limits"), seen from the wire: the concurrent-stream bound ebb
 * advertises and what a stream past it gets, the connection receive window ebb grants a client, and
 * the header-field count past which Node resets a stream before it is a request.
 *
 * Node's HTTP/2 client queues the streams beyond its peer's SETTINGS_MAX_CONCURRENT_STREAMS itself,
 * so the concurrency tests write frames by hand over a TLS socket that agreed `h2`.
 */
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import http from 'node:http';
import http2 from 'node:http2';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { CHANNEL_NAMES } from '../../src/dataplane/channels.ts';
import type { Http2SessionEndMessage } from '../../src/dataplane/channels.ts';
import { CONNECTION_WINDOW_BYTES, MAX_CONCURRENT_STREAMS, STREAM_WINDOW_BYTES } from '../../src/dataplane/http2/session-limits.ts';
import type { Backend, H2Front } from './http2-harness.ts';
import { h2Connect, h2Get, h2Request, snapshot, startBackend, startH2Front, waitFor } from './http2-harness.ts';
import { testCa } from '../support/certs.ts';
import { frame, indexed, literal, splitFrames, type Frame } from '../support/h2-frames.ts';

const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_PROTOCOL_ERROR, NGHTTP2_REFUSED_STREAM } = http2.constants;

/** The documented values (docs/http2.md), written out so a change to the settings fails here. */
const DOC_MAX_CONCURRENT_STREAMS = 128;
const DOC_CONNECTION_WINDOW = 1024 * 1024;
const DOC_STREAM_WINDOW = 65_535;
/** The listener's limits in the test snapshot (dataplane-helpers.ts SETTINGS). */
const MAX_HEADER_BYTES = 16_384;
const MAX_HEADERS_COUNT = 50;

/** HTTP/2 frame types and SETTINGS ids (RFC 9113 §6). */
const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PING = 0x6;
const GOAWAY = 0x7;
const WINDOW_UPDATE = 0x8;
const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const SETTINGS_ENABLE_PUSH = 0x2;
const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const SETTINGS_MAX_HEADER_LIST_SIZE = 0x6;

/** A target that holds every response until `release()`, so the streams stay in flight in ebb. */
interface HoldingBackend {
  readonly backend: Backend;
  held(): number;
  release(): void;
}

let a: Backend;
let holding: HoldingBackend;
let front: H2Front;
let holdFront: H2Front;

before(async () => {
  a = await startBackend('A');
  const waiting: http.ServerResponse[] = [];
  const backend = await startBackend('H', (req, res) => {
    req.resume();
    waiting.push(res);
  });
  holding = {
    backend,
    held: () => waiting.filter((r) => !r.writableEnded && !r.destroyed).length,
    release: () => {
      for (const res of waiting.splice(0)) if (!res.destroyed) res.end('H');
    },
  };
  front = await startH2Front(snapshot([a.port]));
  // A response timeout long enough that the held streams outlast the test's steps.
  holdFront = await startH2Front(snapshot([backend.port], { settings: { targetResponseTimeoutMs: 10_000 } }));
});
after(async () => {
  holding.release();
  await holdFront.close(500);
  await front.close(500);
  await holding.backend.close();
  await a.close();
});

test('the documented values are the ones in session-limits.ts', () => {
  assert.equal(MAX_CONCURRENT_STREAMS, DOC_MAX_CONCURRENT_STREAMS);
  assert.equal(CONNECTION_WINDOW_BYTES, DOC_CONNECTION_WINDOW);
  assert.equal(STREAM_WINDOW_BYTES, DOC_STREAM_WINDOW);
});

test('ebb advertises its limits in its SETTINGS, and raises the connection window to 1 MiB with a WINDOW_UPDATE on stream 0', async () => {
  const raw = await RawH2.connect(front.port, { ackSettings: true });
  try {
    const settings = await raw.waitFrame((f) => f.type === SETTINGS && (f.flags & ACK) === 0);
    const values = settingsOf(settings.payload);
    assert.equal(values.get(SETTINGS_MAX_CONCURRENT_STREAMS), DOC_MAX_CONCURRENT_STREAMS, 'SETTINGS_MAX_CONCURRENT_STREAMS');
    assert.equal(values.get(SETTINGS_INITIAL_WINDOW_SIZE), DOC_STREAM_WINDOW, 'SETTINGS_INITIAL_WINDOW_SIZE (the stream window)');
    assert.equal(values.get(SETTINGS_MAX_HEADER_LIST_SIZE), MAX_HEADER_BYTES, "SETTINGS_MAX_HEADER_LIST_SIZE: the listener's maxHeaderBytes");
    assert.equal(values.get(SETTINGS_ENABLE_PUSH), 0, 'no server push');
    const update = await raw.waitFrame((f) => f.type === WINDOW_UPDATE && f.stream === 0);
    const increment = update.payload.readUInt32BE(0) & 0x7fffffff;
    // The connection window starts at 65,535 whatever SETTINGS say (RFC 9113 §6.9.2); ebb's WINDOW_UPDATE raises it.
    assert.equal(65_535 + increment, DOC_CONNECTION_WINDOW, `the connection window is 1 MiB (increment ${increment})`);
    assert.equal(raw.frames.filter((f) => f.type === WINDOW_UPDATE && f.stream === 0).length, 1, 'one WINDOW_UPDATE on stream 0 before any data');
  } finally {
    raw.destroy();
  }

  // Node's client sees the same: the window it may send into on the connection, and each stream's.
  const client = await h2Connect(front.port);
  try {
    assert.ok(await waitFor(() => client.state.remoteWindowSize === DOC_CONNECTION_WINDOW, 1000), `remoteWindowSize ${client.state.remoteWindowSize}`);
    assert.equal(client.remoteSettings.initialWindowSize, DOC_STREAM_WINDOW);
    assert.equal(client.remoteSettings.maxConcurrentStreams, DOC_MAX_CONCURRENT_STREAMS);
  } finally {
    client.close();
  }
});

test('past 2 × (maxHeadersCount + 4) header fields Node resets the stream (ENHANCE_YOUR_CALM); up to it ebb answers 431; the connection goes on', async () => {
  const pairs = 2 * (MAX_HEADERS_COUNT + 4); // 108, pseudo-headers included
  const client = await h2Connect(front.port);
  try {
    const seenBefore = a.seen.length;
    // Node's client sends :method, :scheme, :authority and :path: four pseudo-headers.
    const withFields = (n: number, path: string): Record<string, string> => {
      const h: Record<string, string> = { ':path': path };
      for (let i = 0; i < n; i++) h[`x-f-${i}`] = 'v';
      return h;
    };
    const atBound = await h2Request(client, withFields(pairs - 4, '/at-bound'));
    assert.equal(atBound.status, 431, `${pairs} fields: ebb's own 431 (too-many-headers)`);
    assert.equal(atBound.headers.server, 'ebb');
    assert.equal(atBound.rstCode, 0);
    const past = await h2Request(client, withFields(pairs - 3, '/past-bound'));
    assert.equal(past.status, 0, `${pairs + 1} fields: no response`);
    assert.equal(past.rstCode, NGHTTP2_ENHANCE_YOUR_CALM, `${pairs + 1} fields: RST_STREAM ENHANCE_YOUR_CALM (got ${past.rstCode})`);
    assert.equal(a.seen.length, seenBefore, 'neither reached the target');
    const next = await h2Get(client, '/after-pairs');
    assert.equal(next.status, 200, 'the connection serves the next stream');
    assert.equal(client.closed || client.destroyed, false);
  } finally {
    client.close();
  }
});

test('a stream past the limit before the client acknowledged the SETTINGS is refused (REFUSED_STREAM); the 128 in flight are answered 200', async () => {
  const raw = await RawH2.connect(holdFront.port, { ackSettings: false });
  try {
    await raw.waitFrame((f) => f.type === SETTINGS && (f.flags & ACK) === 0);
    await checkConcurrency(raw, 'pre-ack');
  } finally {
    holding.release();
    raw.destroy();
  }
});

/*
 * With the SETTINGS acknowledged, nghttp2 (inside Node) treats a stream past SETTINGS_MAX_CONCURRENT_STREAMS
 * as a connection error, where RFC 9113 §5.1.2 asks for a stream error; Node gives no way to refuse the
 * stream alone. What ebb can hold, and this checks (docs/http2.md, "Limits"): the connection ends at once,
 * the extra stream never reaches the target, Node 24 says why in a GOAWAY PROTOCOL_ERROR (Node 20 closes
 * without one), and the streams Node cut are not taken for client resets (they once tripped the
 * rapid-reset guard: "http2 rapid reset", 101 resets, from a client that reset nothing).
 */
test('a stream past the limit on a client that acknowledged the SETTINGS ends the connection as a protocol error, not as rapid resets', async () => {
  const raw = await RawH2.connect(holdFront.port, { ackSettings: true });
  const logsBefore = holdFront.logs.length;
  const seenBefore = holding.backend.seen.length;
  const port = raw.localPort;
  assert.ok(port !== undefined);
  const ends: Http2SessionEndMessage[] = [];
  const onEnd = (m: unknown): void => {
    if ((m as Http2SessionEndMessage).clientPort === port) ends.push(m as Http2SessionEndMessage);
  };
  diagnosticsChannel.subscribe(CHANNEL_NAMES.http2SessionEnd, onEnd);
  try {
    await raw.waitFrame((f) => f.type === SETTINGS && (f.flags & ACK) === 0);
    await raw.waitFrame((f) => f.type === SETTINGS && (f.flags & ACK) !== 0); // ebb acknowledged ours: SETTINGS exchanged both ways
    const ids = Array.from({ length: DOC_MAX_CONCURRENT_STREAMS }, (_, i) => 2 * i + 1);
    raw.write(Buffer.concat(ids.map((id) => requestFrame(id, `/held?tag=acked&s=${id}`))));
    assert.ok(
      await waitFor(() => holding.held() === DOC_MAX_CONCURRENT_STREAMS, 5000),
      `the ${DOC_MAX_CONCURRENT_STREAMS} streams reach the target and are held there (${holding.held()})`,
    );
    raw.write(requestFrame(2 * DOC_MAX_CONCURRENT_STREAMS + 1, '/extra?tag=acked'));
    assert.ok(await waitFor(() => raw.closed, 3000), 'the connection ends');
    const major = Number(process.versions.node.split('.')[0]);
    if (major >= 24) assert.equal(raw.goawayCode(), NGHTTP2_PROTOCOL_ERROR, 'Node 24 sends GOAWAY PROTOCOL_ERROR first');
    assert.equal(holding.backend.seen.length - seenBefore, DOC_MAX_CONCURRENT_STREAMS, 'the stream past the limit never reached the target');
    const logs = holdFront.logs.slice(logsBefore) as { msg?: string; error?: string }[];
    assert.ok(
      logs.some((l) => l.msg === 'http2 session error' && l.error === 'Protocol error'),
      `ebb logs the protocol error: ${JSON.stringify(logs)}`,
    );
    assert.equal(
      logs.some((l) => l.msg === 'http2 rapid reset: connection closed'),
      false,
      `the streams Node cut are not counted as client resets: ${JSON.stringify(logs)}`,
    );
    assert.ok(await waitFor(() => ends.length > 0, 3000), 'the session end is published');
    assert.deepEqual(
      ends.map((m) => ({ reason: m.reason, clientResets: m.clientResets })),
      [{ reason: 'error', clientResets: 0 }],
      'it ended for the protocol error, with no client reset counted',
    );
  } finally {
    diagnosticsChannel.unsubscribe(CHANNEL_NAMES.http2SessionEnd, onEnd);
    holding.release();
    raw.destroy();
  }
});

/**
 * Opens 128 streams that the holding target keeps in flight, then two more: those are refused with
 * RST_STREAM (REFUSED_STREAM, or PROTOCOL_ERROR as RFC 9113 §5.1.2 also allows) and never reach the
 * target. Released, the 128 end with 200, and the connection serves a new stream.
 */
async function checkConcurrency(raw: RawH2, tag: string): Promise<void> {
  const seenBefore = holding.backend.seen.length;
  const ids = Array.from({ length: DOC_MAX_CONCURRENT_STREAMS }, (_, i) => 2 * i + 1);
  raw.write(Buffer.concat(ids.map((id) => requestFrame(id, `/held?tag=${tag}&s=${id}`))));
  assert.ok(
    await waitFor(() => holding.held() === DOC_MAX_CONCURRENT_STREAMS, 5000),
    `the ${DOC_MAX_CONCURRENT_STREAMS} streams reach the target and are held there (${holding.held()})`,
  );
  const extra = [2 * DOC_MAX_CONCURRENT_STREAMS + 1, 2 * DOC_MAX_CONCURRENT_STREAMS + 3];
  raw.write(Buffer.concat(extra.map((id) => requestFrame(id, `/extra?tag=${tag}&s=${id}`))));
  await waitFor(() => extra.every((id) => raw.stream(id).rst !== null) || raw.closed, 2000);
  const outcome = {
    extraResets: extra.map((id) => raw.stream(id).rst),
    extraAnswered: extra.filter((id) => raw.stream(id).status !== 0).length,
    goaway: raw.goawayCode(),
    closed: raw.closed,
  };
  assert.deepEqual(
    { ...outcome, extraResets: outcome.extraResets.map((c) => (c === NGHTTP2_PROTOCOL_ERROR ? NGHTTP2_REFUSED_STREAM : c)) },
    { extraResets: [NGHTTP2_REFUSED_STREAM, NGHTTP2_REFUSED_STREAM], extraAnswered: 0, goaway: null, closed: false },
    `the streams past the limit are refused, the connection stays (got ${JSON.stringify(outcome)})`,
  );
  assert.equal(holding.backend.seen.length - seenBefore, DOC_MAX_CONCURRENT_STREAMS, 'the refused streams never reached the target');

  holding.release();
  assert.ok(await waitFor(() => ids.every((id) => raw.stream(id).ended) || raw.closed, 5000), 'the held streams end');
  const statuses = new Map<number, number>();
  for (const id of ids) statuses.set(raw.stream(id).status, (statuses.get(raw.stream(id).status) ?? 0) + 1);
  assert.deepEqual([...statuses], [[200, DOC_MAX_CONCURRENT_STREAMS]], 'every stream within the limit is answered 200');
  assert.ok(
    ids.every((id) => raw.stream(id).rst === null && raw.stream(id).body === 'H'),
    'with the whole body',
  );

  // The slots are free again: the connection takes a new stream.
  const next = 2 * DOC_MAX_CONCURRENT_STREAMS + 5;
  raw.write(requestFrame(next, `/next?tag=${tag}`));
  await waitFor(() => holding.held() === 1, 2000);
  holding.release();
  assert.ok(await waitFor(() => raw.stream(next).ended, 2000), 'the next stream ends');
  assert.equal(raw.stream(next).status, 200, 'and is answered 200');
}

// --- a client that writes frames by hand

interface StreamSeen {
  /** The response's :status (0 before its HEADERS, -1 if not one of HPACK's static statuses). */
  status: number;
  body: string;
  ended: boolean;
  /** The RST_STREAM code, null while none came. */
  rst: number | null;
}

/** An `h2` TLS connection: sends the preface and an empty SETTINGS, answers PINGs, and keeps every frame ebb sends. */
class RawH2 {
  readonly frames: Frame[] = [];
  closed = false;
  readonly #socket: tls.TLSSocket;
  /** The client's own port, as ebb's messages name it. */
  get localPort(): number | undefined {
    return this.#socket.localPort;
  }
  readonly #streams = new Map<number, StreamSeen>();
  #pending: Buffer = Buffer.alloc(0);
  readonly #ackSettings: boolean;

  private constructor(socket: tls.TLSSocket, ackSettings: boolean) {
    this.#socket = socket;
    this.#ackSettings = ackSettings;
    socket.on('data', (d: Buffer) => this.#read(d));
    socket.on('close', () => (this.closed = true));
    socket.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'));
    socket.write(frame(SETTINGS, 0, 0, Buffer.alloc(0)));
  }

  /** `ackSettings`: acknowledge ebb's SETTINGS as a client must (false: never, so they stay pending in nghttp2). */
  static async connect(port: number, opts: { ackSettings: boolean }): Promise<RawH2> {
    const socket = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: testCa().certPem, ALPNProtocols: ['h2'] });
    socket.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', () => resolve());
      socket.once('error', reject);
    });
    assert.equal(socket.alpnProtocol, 'h2');
    return new RawH2(socket, opts.ackSettings);
  }

  write(bytes: Buffer): void {
    this.#socket.write(bytes);
  }

  destroy(): void {
    this.#socket.destroy();
  }

  stream(id: number): StreamSeen {
    let s = this.#streams.get(id);
    if (s === undefined) {
      s = { status: 0, body: '', ended: false, rst: null };
      this.#streams.set(id, s);
    }
    return s;
  }

  /** The error code of the GOAWAY ebb sent, null if none. */
  goawayCode(): number | null {
    const g = this.frames.find((f) => f.type === GOAWAY);
    return g === undefined ? null : g.payload.readUInt32BE(4);
  }

  async waitFrame(pred: (f: Frame) => boolean, ms = 2000): Promise<Frame> {
    await waitFor(() => this.frames.some(pred), ms);
    const f = this.frames.find(pred);
    if (f === undefined) throw new Error(`no such frame within ${ms} ms; got types ${this.frames.map((x) => x.type).join(',')}`);
    return f;
  }

  #read(d: Buffer): void {
    const { frames, rest } = splitFrames(Buffer.concat([this.#pending, d]));
    this.#pending = rest;
    for (const f of frames) {
      this.frames.push(f);
      this.#onFrame(f);
    }
  }

  #onFrame(f: Frame): void {
    if (f.type === SETTINGS && (f.flags & ACK) === 0 && this.#ackSettings) this.#socket.write(frame(SETTINGS, ACK, 0, Buffer.alloc(0)));
    else if (f.type === PING && (f.flags & ACK) === 0) this.#socket.write(frame(PING, ACK, 0, f.payload));
    else if (f.type === HEADERS && f.stream !== 0) {
      const s = this.stream(f.stream);
      // nghttp2 writes :status first; 200 and the other common statuses are HPACK static entries 8 to 14.
      const first = f.payload[0] ?? 0;
      s.status = first >= 0x88 && first <= 0x8e ? ([200, 204, 206, 304, 400, 404, 500][first - 0x88] as number) : -1;
      if ((f.flags & END_STREAM) !== 0) s.ended = true;
    } else if (f.type === DATA && f.stream !== 0) {
      const s = this.stream(f.stream);
      s.body += f.payload.toString('latin1');
      if ((f.flags & END_STREAM) !== 0) s.ended = true;
    } else if (f.type === RST_STREAM) {
      const s = this.stream(f.stream);
      s.rst = f.payload.readUInt32BE(0);
      s.ended = true;
    }
  }
}

/** A GET for `path` on stream `id`, ended with its HEADERS. */
function requestFrame(id: number, path: string): Buffer {
  const block = Buffer.concat([indexed(2) /* :method GET */, indexed(7) /* :scheme https */, literal(':path', path), literal(':authority', 'localhost')]);
  return frame(HEADERS, END_STREAM | END_HEADERS, id, block);
}

/** A SETTINGS payload's identifier → value pairs (RFC 9113 §6.5.1). */
function settingsOf(payload: Buffer): Map<number, number> {
  const out = new Map<number, number>();
  for (let off = 0; off + 6 <= payload.length; off += 6) out.set(payload.readUInt16BE(off), payload.readUInt32BE(off + 2));
  return out;
}
