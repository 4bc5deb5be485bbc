import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import net, { type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { CHANNEL_NAMES, flowEndChannel, requestDigestChannel, requestEndChannel, tlsErrorChannel, tunnelOpenChannel } from '../dataplane/channels.ts';
import { attachConnectionLimit, ConnectionLimit } from '../dataplane/connection-limit.ts';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import type { RequestDigestMessage } from '../dataplane/request-digest.ts';
import { decodeFromWorker } from './protocol.ts';
import type { FromWorker } from './protocol.ts';
import { plain, TelemetryForwarder } from './telemetry-forwarder.ts';
import { TelemetryRelay } from './telemetry-relay.ts';

type Telemetry = Extract<FromWorker, { type: 'telemetry' }>;

function forwarder(options: { accept?: () => boolean; maxBatch?: number } = {}): { clock: FakeClock; sent: Telemetry[]; fwd: TelemetryForwarder } {
  const clock = new FakeClock();
  const sent: Telemetry[] = [];
  const accept = options.accept ?? (() => true);
  const fwd = new TelemetryForwarder({
    clock,
    flushMs: 20,
    ...(options.maxBatch !== undefined && { maxBatch: options.maxBatch }),
    send: (m) => {
      if (!accept()) return false;
      // As the link would carry it, and as the control side reads it.
      sent.push(decodeFromWorker(JSON.parse(JSON.stringify(m))) as Telemetry);
      return true;
    },
  });
  return { clock, sent, fwd };
}

test('events of every channel are batched in the order published and sent flushMs after the first', (t) => {
  const { clock, sent, fwd } = forwarder();
  fwd.start();
  t.after(() => fwd.stop());
  tunnelOpenChannel.publish({ dataPlaneId: 'w1', targetKey: 'k1' });
  tlsErrorChannel.publish({ dataPlaneId: 'w1', listenerArn: 'arn:l', reason: 'timeout', message: 'handshake timed out' });
  clock.advance(19);
  assert.equal(sent.length, 0, 'held until the batch is 20 ms old');
  clock.advance(1);
  assert.deepEqual(sent, [
    {
      type: 'telemetry',
      dropped: 0,
      events: [
        [CHANNEL_NAMES.tunnelOpen, { dataPlaneId: 'w1', targetKey: 'k1' }],
        [CHANNEL_NAMES.tlsError, { dataPlaneId: 'w1', listenerArn: 'arn:l', reason: 'timeout', message: 'handshake timed out' }],
      ],
    },
  ]);
  clock.advance(100);
  assert.equal(sent.length, 1, 'nothing more to send, nothing sent');
});

test('a full batch is sent at once', (t) => {
  const { clock, sent, fwd } = forwarder({ maxBatch: 3 });
  fwd.start();
  t.after(() => fwd.stop());
  for (let i = 0; i < 7; i++) tunnelOpenChannel.publish({ dataPlaneId: 'w1', targetKey: `k${i}` });
  assert.deepEqual(
    sent.map((m) => m.events.length),
    [3, 3],
  );
  clock.advance(20);
  assert.deepEqual(
    sent.map((m) => m.events.length),
    [3, 3, 1],
  );
  assert.deepEqual(
    sent.flatMap((m) => m.events.map(([, e]) => (e as { targetKey: string }).targetKey)),
    ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6'],
  );
});

test('a batch the link refuses is dropped and counted, and the count goes with the next batch sent', (t) => {
  let open = false;
  const { clock, sent, fwd } = forwarder({ accept: () => open, maxBatch: 2 });
  fwd.start();
  t.after(() => fwd.stop());
  for (let i = 0; i < 5; i++) tunnelOpenChannel.publish({ dataPlaneId: 'w1', targetKey: `k${i}` });
  clock.advance(20);
  assert.equal(sent.length, 0);
  assert.equal(fwd.droppedTotal, 5, 'two full batches and the last one, all refused');
  open = true;
  tunnelOpenChannel.publish({ dataPlaneId: 'w1', targetKey: 'k5' });
  clock.advance(20);
  assert.equal(sent.length, 1);
  assert.equal(sent[0]?.dropped, 5);
  assert.equal(sent[0]?.events.length, 1);
  // A count of drops alone is sent too, at the next flush, not held back until another event.
  open = false;
  tunnelOpenChannel.publish({ dataPlaneId: 'w1', targetKey: 'k6' });
  clock.advance(20);
  open = true;
  fwd.flush();
  assert.deepEqual(sent[1], { type: 'telemetry', events: [], dropped: 1 });
});

test('stop unsubscribes and sends what is batched; the channels go quiet again', () => {
  const { sent, fwd } = forwarder();
  fwd.start();
  assert.equal(requestEndChannel.hasSubscribers, true, 'subscribing is what makes the data plane publish');
  assert.equal(diagnosticsChannel.channel(CHANNEL_NAMES.connectionLost).hasSubscribers, false, "ebb's own process says a worker is gone, not the worker");
  flowEndChannel.publish({ dataPlaneId: 'w1', reason: 'closed' });
  fwd.stop();
  assert.equal(sent.length, 1);
  for (const name of Object.values(CHANNEL_NAMES)) assert.equal(diagnosticsChannel.channel(name).hasSubscribers, false, name);
  tunnelOpenChannel.publish({ dataPlaneId: 'w1', targetKey: 'late' });
  fwd.flush();
  assert.equal(sent.length, 1);
});

test("a worker's client connections go to the control side: accepted, refused at the limit, closed, each with its process and the listener's open count", async (t) => {
  const { clock, sent, fwd } = forwarder();
  fwd.start();
  t.after(() => fwd.stop());
  // As a worker's listener puts its server under the connection limit: one connection at a time here.
  const server = net.createServer();
  attachConnectionLimit(server, new ConnectionLimit({ maxConnections: 1 }), 'arn:l', () => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const first = net.connect(port, '127.0.0.1');
  t.after(() => first.destroy());
  const socket = await accepted;
  const refused = net.connect(port, '127.0.0.1');
  await new Promise((r) => refused.once('close', r));
  const closed = new Promise((r) => socket.once('close', r));
  first.destroy();
  await closed;
  clock.advance(20);
  const connection = { pid: process.pid, listenerArn: 'arn:l', listenerPort: port };
  assert.deepEqual(
    sent.flatMap((m) => m.events),
    [
      [CHANNEL_NAMES.connectionOpen, { ...connection, open: 1 }],
      [CHANNEL_NAMES.connectionRefused, connection],
      [CHANNEL_NAMES.connectionClose, { ...connection, open: 0 }],
    ],
  );
});

test('at its start, the connections open before it are stated (the ebb retiring at a hot restart holds some)', async (t) => {
  const server = net.createServer();
  attachConnectionLimit(server, new ConnectionLimit({ maxConnections: 10 }), 'arn:held', () => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const port = (server.address() as AddressInfo).port;
  // Accepted while this process's own metrics listened: their opens went there, not to the control side.
  const ownMetrics = (): void => {};
  diagnosticsChannel.subscribe(CHANNEL_NAMES.connectionOpen, ownMetrics);
  const accepted: net.Socket[] = [];
  server.on('connection', (s) => accepted.push(s));
  const clients = [net.connect(port, '127.0.0.1'), net.connect(port, '127.0.0.1')];
  t.after(() => clients.forEach((c) => c.destroy()));
  while (accepted.length < 2) await new Promise((r) => setTimeout(r, 5));
  diagnosticsChannel.unsubscribe(CHANNEL_NAMES.connectionOpen, ownMetrics);

  const { clock, sent, fwd } = forwarder();
  fwd.start();
  t.after(() => fwd.stop());
  clock.advance(20);
  assert.deepEqual(sent.flatMap((m) => m.events), [[CHANNEL_NAMES.connectionCount, { pid: process.pid, listenerArn: 'arn:held', listenerPort: port, open: 2 }]]);
  const closed = new Promise((r) => accepted[0]?.once('close', r));
  clients[0]?.destroy();
  await closed;
  clock.advance(20);
  assert.deepEqual(sent.at(-1)?.events, [[CHANNEL_NAMES.connectionClose, { pid: process.pid, listenerArn: 'arn:held', listenerPort: port, open: 1 }]]);
});

test('plain: channel records pass as they are; what JSON would lose or refuse is converted', () => {
  const record = { a: 'x', n: 1, b: true, z: null, tls: { cipher: 'c', serverName: null } };
  assert.equal(plain(record), record, 'no copy for a flat record');
  const odd = { big: 12n, err: new Error('boom'), inf: Infinity, map: new Map([['k', 1]]), set: new Set([1, 2]), fn: () => 1, u: undefined };
  assert.deepEqual(plain(odd), { big: '12', err: 'boom', inf: null, map: { k: 1 }, set: [1, 2] });
  assert.doesNotThrow(() => JSON.stringify(plain(odd)));
});

const LISTENER = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/1/l1';
const GROUP = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/1';

function requestEnd(status: number, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    dataPlaneId: 'w1',
    listenerArn: LISTENER,
    targetGroupArn: GROUP,
    targetKey: `${GROUP}|10.0.0.1|80`,
    status,
    targetStatus: status,
    fromTarget: true,
    requestTime: 1_790_000_000_000,
    durationMs: 2,
    targetResponseMs: 1,
    receivedBytes: 10,
    sentBytes: 20,
    errorReason: null,
    ...over,
  };
}

test("'digest': request ends fold into the batch's digest, every other channel goes as it is; 'raw' sends what was folded first", (t) => {
  const { clock, sent, fwd } = forwarder({ maxBatch: 3 });
  fwd.start();
  t.after(() => fwd.stop());
  // What the start states (connections open in listeners earlier tests left) is not this test's.
  fwd.flush();
  sent.length = 0;
  fwd.requestEnds('digest');
  requestEndChannel.publish(requestEnd(200));
  requestEndChannel.publish(requestEnd(404));
  tunnelOpenChannel.publish({ dataPlaneId: 'w1', targetKey: 'k1' });
  clock.advance(20);
  assert.equal(sent.length, 1);
  assert.deepEqual(sent[0]?.events, [[CHANNEL_NAMES.tunnelOpen, { dataPlaneId: 'w1', targetKey: 'k1' }]], 'no request end travels as a message');
  const digest = sent[0]?.digest as RequestDigestMessage;
  assert.equal(digest.requests, 2);
  assert.deepEqual(digest.listeners[0]?.groups[0]?.targetStatus, [[200, 1], [404, 1]]);
  assert.equal(digest.samples.length, 2);
  // A full digest goes at once, as a full batch of events does.
  for (let i = 0; i < 3; i++) requestEndChannel.publish(requestEnd(200));
  assert.equal(sent.length, 2);
  assert.equal(sent[1]?.digest?.requests, 3);
  // Switching to raw sends the folded ones first: each request end is in one digest or one message.
  requestEndChannel.publish(requestEnd(500));
  fwd.requestEnds('raw');
  assert.equal(sent.length, 3);
  assert.equal(sent[2]?.digest?.requests, 1);
  requestEndChannel.publish(requestEnd(201));
  clock.advance(20);
  assert.equal(sent.length, 4);
  assert.equal(sent[3]?.digest, undefined);
  assert.deepEqual(sent[3]?.events.map(([name, m]) => [name, (m as { status: number }).status]), [[CHANNEL_NAMES.requestEnd, 201]]);
});

test('a refused digest is counted as dropped requests; the relay publishes a digest on its channel and refuses one of another shape', (t) => {
  let open = false;
  const { clock, sent, fwd } = forwarder({ accept: () => open });
  fwd.start();
  t.after(() => fwd.stop());
  open = true;
  fwd.flush();
  sent.length = 0;
  open = false;
  fwd.requestEnds('digest');
  for (let i = 0; i < 4; i++) requestEndChannel.publish(requestEnd(200));
  clock.advance(20);
  assert.equal(fwd.droppedTotal, 4);
  open = true;
  requestEndChannel.publish(requestEnd(200));
  clock.advance(20);
  assert.equal(sent[0]?.dropped, 4);

  const relay = new TelemetryRelay();
  const seen: unknown[] = [];
  const onDigest = (m: unknown): void => void seen.push(m);
  diagnosticsChannel.subscribe(CHANNEL_NAMES.requestDigest, onDigest);
  t.after(() => diagnosticsChannel.unsubscribe(CHANNEL_NAMES.requestDigest, onDigest));
  relay.publish(sent[0]?.events ?? [], sent[0]?.dropped ?? 0, sent[0]?.digest);
  assert.equal(seen.length, 1);
  assert.equal((seen[0] as RequestDigestMessage).requests, 1);
  relay.publish([], 0, { requests: 1, listeners: [{ listenerArn: 'l' }], samples: [] });
  assert.equal(seen.length, 1, 'not published');
  assert.deepEqual([relay.refused, relay.dropped], [1, 4]);
});

test('digests published in this process (a retiring ebb relays its workers\' there) go on in the next batch, in either way', (t) => {
  const { clock, sent, fwd } = forwarder();
  fwd.start();
  t.after(() => fwd.stop());
  fwd.flush();
  sent.length = 0;
  const workers = forwarder();
  workers.fwd.start();
  workers.fwd.requestEnds('digest');
  requestEndChannel.publish(requestEnd(200));
  requestEndChannel.publish(requestEnd(503, { targetStatus: null, fromTarget: false, targetResponseMs: -1 }));
  workers.clock.advance(20);
  workers.fwd.stop();
  const relayed = workers.sent.find((m) => m.digest !== undefined)?.digest;
  assert.equal(relayed?.requests, 2);
  // This forwarder (raw: it also got the two request ends themselves above, as its own) passes the relayed digest on.
  sent.length = 0;
  fwd.flush();
  sent.length = 0;
  requestDigestChannel.publish(relayed);
  requestEndChannel.publish(requestEnd(201));
  clock.advance(20);
  assert.equal(sent.length, 1);
  assert.equal(sent[0]?.digest?.requests, 2, 'the relayed digest');
  assert.deepEqual(sent[0]?.events.map(([name]) => name), [CHANNEL_NAMES.requestEnd], 'and its own request end, as a message');
});
