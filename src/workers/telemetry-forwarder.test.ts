import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import net, { type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { CHANNEL_NAMES, flowEndChannel, requestEndChannel, tlsErrorChannel, tunnelOpenChannel } from '../dataplane/channels.ts';
import { attachConnectionLimit, ConnectionLimit } from '../dataplane/connection-limit.ts';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { decodeFromWorker } from './protocol.ts';
import type { FromWorker } from './protocol.ts';
import { plain, TelemetryForwarder } from './telemetry-forwarder.ts';

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
