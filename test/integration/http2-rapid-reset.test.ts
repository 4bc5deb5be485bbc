/**
 * HTTP/2 abuse (issue 10, "Limits"): a rapid-reset client (CVE-2023-44487) is cut off with
 * GOAWAY(ENHANCE_YOUR_CALM) while a client on another connection keeps being served, and a
 * CONTINUATION flood (CVE-2024-27983 / nghttp2's CVE-2024-28182) ends the connection without
 * anything reaching a target, and a client that ignores GOAWAY does not keep its connection.
 */
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import http2 from 'node:http2';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { CHANNEL_NAMES } from '../../src/dataplane/channels.ts';
import type { Http2SessionEndMessage } from '../../src/dataplane/channels.ts';
import { RESET_LIMIT } from '../../src/dataplane/http2/session-limits.ts';
import type { Backend, H2Front } from './http2-harness.ts';
import { h2Connect, h2Get, snapshot, startBackend, startH2Front, waitFor, within } from './http2-harness.ts';
import { testCa } from '../support/certs.ts';
import { frame, indexed, literal, splitFrames } from '../support/h2-frames.ts';

const { NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_NO_ERROR } = http2.constants;

let a: Backend;
let front: H2Front;
const sessionEnds: Http2SessionEndMessage[] = [];
const onSessionEnd = (m: unknown): void => void sessionEnds.push(m as Http2SessionEndMessage);

before(async () => {
  a = await startBackend('A');
  front = await startH2Front(snapshot([a.port]));
  diagnosticsChannel.subscribe(CHANNEL_NAMES.http2SessionEnd, onSessionEnd);
});
after(async () => {
  diagnosticsChannel.unsubscribe(CHANNEL_NAMES.http2SessionEnd, onSessionEnd);
  await front.close(500);
  await a.close();
});

test('a client that opens and resets streams in a loop gets GOAWAY(ENHANCE_YOUR_CALM); another connection is served throughout', async () => {
  const attacker = await h2Connect(front.port);
  const normal = await h2Connect(front.port);
  const goaway = new Promise<{ code: number; last: number }>((r) => attacker.once('goaway', (code: number, last: number) => r({ code, last })));
  const attackerClosed = new Promise<void>((r) => attacker.once('close', () => r()));
  const seenBefore = a.seen.length;

  // The normal client keeps asking while the attack runs.
  let attackOver = false;
  const normalReplies: number[] = [];
  const normalLoop = (async () => {
    for (let i = 0; i < 200 && !attackOver; i++) normalReplies.push((await h2Get(normal, `/normal?i=${i}`)).status);
  })();

  // Up to 1000 streams opened and reset at once (RST_STREAM CANCEL), yielding every 50 so frames go out.
  let opened = 0;
  for (let i = 0; i < 1000 && !attacker.closed && !attacker.destroyed; i++) {
    try {
      const req = attacker.request({ ':path': `/attack?i=${i}` });
      req.on('error', () => {});
      req.close(NGHTTP2_CANCEL);
      opened++;
    } catch {
      break; // the session went away under the loop
    }
    if (i % 50 === 49) await new Promise<void>((r) => setImmediate(r));
  }
  const g = await goaway;
  await attackerClosed;
  attackOver = true;
  await normalLoop;

  assert.equal(g.code, NGHTTP2_ENHANCE_YOUR_CALM, 'the attacker is told to calm down');
  assert.ok(opened > RESET_LIMIT, `the attacker opened ${opened} streams before the cut`);
  assert.ok(normalReplies.length > 0 && normalReplies.every((s) => s === 200), `the other connection is served: ${normalReplies.join(',')}`);
  assert.equal(normal.closed || normal.destroyed, false, 'the other connection stays up');
  const next = await h2Get(normal, '/after-attack');
  assert.equal(next.status, 200);
  const attacks = a.seen.slice(seenBefore).filter((r) => r.url.startsWith('/attack')).length;
  assert.ok(attacks <= RESET_LIMIT, `streams reset in the read that opened them never reach the target (${attacks} did)`);
  assert.ok(front.logs.some((l) => (l as { msg?: string }).msg === 'http2 rapid reset: connection closed'), 'the cut is logged');
  assert.ok(await waitFor(() => sessionEnds.some((m) => m.reason === 'rapid_reset')), 'and published');
  const end = sessionEnds.find((m) => m.reason === 'rapid_reset');
  assert.ok(end !== undefined && end.clientResets === RESET_LIMIT + 1, `counted: ${end?.clientResets} resets`);
  assert.ok(end.streams < opened, `ebb took ${end.streams} of the ${opened} streams; those after its GOAWAY were refused`);
  assert.ok(g.last <= 2 * end.streams, `GOAWAY names the last stream ebb took (${g.last})`);
  normal.close();
});

test('resets with NO_ERROR count too: a client that lets each stream reach a target, then resets it, is cut off', async () => {
  const attacker = await h2Connect(front.port);
  const goaway = new Promise<number>((r) => attacker.once('goaway', (code: number) => r(code)));
  const seenBefore = a.seen.length;
  let opened = 0;
  for (let i = 0; i < 3 * RESET_LIMIT && !attacker.closed && !attacker.destroyed; i++) {
    try {
      const req = attacker.request({ ':path': `/slow?ms=2000&n=${i}` });
      req.on('error', () => {});
      opened++;
      // Let the stream start on ebb's side (it reaches the target), then reset it as "no error".
      await new Promise<void>((r) => setTimeout(r, 2));
      req.close(NGHTTP2_NO_ERROR);
    } catch {
      break;
    }
  }
  assert.equal(await goaway, NGHTTP2_ENHANCE_YOUR_CALM, `cut off after ${opened} streams`);
  assert.ok(opened <= 2 * RESET_LIMIT, `the guard tripped near its bound (${opened} streams opened)`);
  assert.ok(a.seen.length > seenBefore, 'the streams did reach the target before their reset');
});

test('a CONTINUATION flood ends the connection; nothing reaches a target', async () => {
  const seenBefore = a.seen.length;
  const socket = await rawH2(front.port);
  const received: Buffer[] = [];
  socket.on('data', (d: Buffer) => received.push(d));
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  socket.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'));
  socket.write(frame(0x4, 0, 0, Buffer.alloc(0))); // SETTINGS (empty)
  // HEADERS without END_HEADERS, then CONTINUATION frames of literal fields that never end the block:
  // nghttp2 (1.61 and later) allows 8 per header block, so the ninth ends the connection.
  socket.write(frame(0x1, 0x1 /* END_STREAM */, 1, Buffer.concat([indexed(2) /* :method GET */, indexed(4) /* :path / */, indexed(7) /* :scheme https */])));
  let sent = 0;
  for (let i = 0; i < 100 && !socket.destroyed; i++) {
    const ok = socket.write(frame(0x9, 0, 1, literal(`x-flood-${i}`, 'a'.repeat(100))));
    sent++;
    if (!ok) await new Promise<void>((r) => setTimeout(r, 1));
  }
  const outcome = await Promise.race([closed.then(() => 'closed'), new Promise<string>((r) => setTimeout(() => r('open'), 3_000).unref())]);
  socket.destroy();
  assert.equal(outcome, 'closed', `ebb closed the connection (after ${sent} CONTINUATION frames written)`);
  const frames = splitFrames(Buffer.concat(received)).frames;
  const goaway = frames.find((f) => f.type === 0x7);
  assert.ok(goaway !== undefined, 'with GOAWAY');
  assert.notEqual(goaway.payload.readUInt32BE(4), 0, `its code is an error (${goaway.payload.readUInt32BE(4)})`);
  assert.equal(a.seen.length, seenBefore, 'no request reached the target');
});

test('a client that ignores GOAWAY and keeps its side open does not keep the connection: ebb closes it a second later', async () => {
  const f = await startH2Front(snapshot([a.port], { settings: { idleTimeoutMs: 200 } }));
  let closed = false;
  try {
    const socket = await rawH2(f.port, true);
    const localPort = socket.localPort;
    const received: Buffer[] = [];
    socket.on('data', (d: Buffer) => received.push(d));
    const ended = new Promise<void>((r) => socket.once('end', () => r()));
    // The preface and SETTINGS, then nothing: no stream, no SETTINGS ACK, and no FIN after ebb's.
    socket.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'));
    socket.write(frame(0x4, 0, 0, Buffer.alloc(0)));
    await ended;
    const goawayAt = Date.now();
    const goaway = splitFrames(Buffer.concat(received)).frames.find((fr) => fr.type === 0x7);
    assert.ok(goaway !== undefined, 'GOAWAY first, at the idle timeout, then FIN');
    assert.equal(goaway.payload.readUInt32BE(4), 0, 'NO_ERROR');
    assert.ok(await waitFor(() => sessionEnds.some((m) => m.clientPort === localPort), 3_000), "ebb's session ends although the client never closed");
    const ms = Date.now() - goawayAt;
    assert.ok(ms >= 800, `a second after its FIN (${ms} ms)`);
    assert.equal(sessionEnds.find((m) => m.clientPort === localPort)?.reason, 'idle_timeout');
    // Nothing of the connection is left open on ebb's side: the listener closes at once.
    const t0 = Date.now();
    await f.close(5_000);
    closed = true;
    assert.ok(Date.now() - t0 < 1_000, `the listener had no connection left to wait for (${Date.now() - t0} ms)`);
    socket.destroy();
  } finally {
    if (!closed) await f.close(200);
  }
});

test('a connection nghttp2 ended for a protocol error, a stream open, is closed about an idle timeout later; a client that answers PINGs keeps a slow stream', async () => {
  // An idle timeout of 2 s: PINGs every 500 ms. Before the probe, Node 20 kept such a connection three idle timeouts.
  const f = await startH2Front(snapshot([a.port], { settings: { idleTimeoutMs: 2000, targetResponseTimeoutMs: 10_000 } }));
  try {
    const socket = await rawH2(f.port);
    const received: Buffer[] = [];
    socket.on('data', (d: Buffer) => received.push(d));
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    const t0 = performance.now();
    socket.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'));
    socket.write(frame(0x4, 0, 0, Buffer.alloc(0))); // SETTINGS (empty)
    const block = Buffer.concat([indexed(2) /* :method GET */, literal(':path', '/slow?ms=5000'), indexed(7) /* :scheme https */, literal(':authority', 'localhost')]);
    socket.write(frame(0x1, 0x5 /* END_STREAM | END_HEADERS */, 1, block));
    // DATA on a stream the client ended: nghttp2 sends GOAWAY(STREAM_CLOSED) and Node 20 stops reading.
    socket.write(frame(0x0, 0, 1, Buffer.from('x')));
    // The client stays, silent: only ebb can end the connection. Meanwhile a live client's slow stream outlasts several PINGs.
    const live = await h2Connect(f.port);
    const livePort = live.socket.localPort;
    const reply = await h2Get(live, '/slow?ms=2500');
    assert.equal(reply.status, 200, 'a client that answers PINGs is not cut, whatever its stream takes');
    live.close();
    assert.notEqual(await within(closed, 4000), 'timeout', 'closed about an idle timeout after the error');
    assert.ok(performance.now() - t0 < 5000, `closed at ${Math.round(performance.now() - t0)} ms`);
    const goaway = splitFrames(Buffer.concat(received)).frames.find((fr) => fr.type === 0x7);
    assert.equal(goaway?.payload.readUInt32BE(4), 5, 'the GOAWAY nghttp2 sent said STREAM_CLOSED');
    // Node 20 says nothing and the probe ends it; Node 24 reports the error and closes it itself.
    const reason = process.versions.node.startsWith('20.') ? 'no_ping_answer' : 'error';
    assert.ok(await waitFor(() => sessionEnds.some((m) => m.reason === reason), 1000), JSON.stringify(sessionEnds.map((m) => m.reason)));
    assert.ok(await waitFor(() => sessionEnds.some((m) => m.clientPort === livePort), 1000), 'the live client’s session ended when it closed');
    assert.equal(sessionEnds.find((m) => m.clientPort === livePort)?.reason, 'closed', 'the live client was not cut');
  } finally {
    await f.close(200);
  }
});

/** A TLS connection that agreed h2, for writing frames by hand; `halfOpen`: it never closes its side on its own. */
async function rawH2(port: number, halfOpen = false): Promise<tls.TLSSocket> {
  const socket = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: testCa().certPem, ALPNProtocols: ['h2'] });
  // Half-open: the client does not end its side when ebb ends its own.
  socket.allowHalfOpen = halfOpen;
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', reject);
  });
  assert.equal(socket.alpnProtocol, 'h2');
  return socket;
}

