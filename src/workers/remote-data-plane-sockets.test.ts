/**
 * RemoteDataPlane at a hot restart with workers (docs/workers.md): the sockets it hands a new worker
 * before its hello, the listening sockets it asks a worker for, and the counts the old workers' retirement
 * is told in (completed, client connections). The rest of RemoteDataPlane is in remote-data-plane.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { test } from 'node:test';
import { CHANNEL_NAMES } from '../dataplane/channels.ts';
import type { SocketHandle } from '../dataplane/listen-mode.ts';
import { childLink, type Link } from './link.ts';
import { decodeToWorker, type ToWorker } from './protocol.ts';
import { MAX_KEYS } from './worker-counts.ts';
import { setup, snapshot, turns, wire } from '../../test/support/remote-data-plane-harness.ts';

class RecordingHandle implements SocketHandle {
  closes = 0;
  close(): void {
    this.closes++;
  }
}

/**
 * A link the test plays the worker of by hand, for what the memory link cannot carry: handles. What
 * the plane sent, in order (`handle` when by sendHandle, whose promise `written` resolves), and
 * messages delivered with a handle.
 */
function handLink() {
  const sent: Array<{ readonly message: ToWorker; readonly handle?: unknown }> = [];
  const unwritten: Array<(ok: boolean) => void> = [];
  let listener: (message: unknown, handle?: unknown) => void = () => {};
  const link: Link = {
    send: (m) => sent.push({ message: decodeToWorker(m) }) > 0,
    sendHandle: (m, handle) => {
      sent.push({ message: decodeToWorker(m), handle });
      return new Promise((resolve) => unwritten.push(resolve));
    },
    onMessage: (l) => void (listener = l),
    onClose: () => {},
    close: () => {},
  };
  return { link, sent, written: () => unwritten.splice(0).forEach((resolve) => resolve(true)), deliver: (message: object, handle?: SocketHandle) => listener(message, handle) };
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('attach hands each inherited socket over, with its handle, before hello; it resolves once they are written out', async () => {
  const { plane } = setup();
  await plane.apply(snapshot(3));
  const [a, b, c] = [new RecordingHandle(), new RecordingHandle(), new RecordingHandle()];
  const h = handLink();
  let done = false;
  const inherited = [
    { address: '127.0.0.1', port: 8080, handle: a },
    { address: '127.0.0.1', port: 8080, handle: b },
    { address: '::1', port: 443, handle: c },
  ];
  const sending = plane.attach(h.link, inherited).then(() => (done = true));
  assert.deepEqual(h.sent.map((s) => s.message.type), ['socket', 'socket', 'socket', 'hello', 'apply']);
  assert.deepEqual(
    h.sent.slice(0, 3).map((s) => [s.message, s.handle]),
    [
      [{ type: 'socket', address: '127.0.0.1', port: 8080 }, a],
      [{ type: 'socket', address: '127.0.0.1', port: 8080 }, b],
      [{ type: 'socket', address: '::1', port: 443 }, c],
    ],
  );
  await flush();
  assert.equal(done, false, 'not before the sockets are written out: the caller closes its copies then');
  h.written();
  await sending;
  assert.deepEqual([a, b, c].map((x) => x.closes), [0, 0, 0], "the copies are the caller's to close");

  const bare = handLink();
  await plane.attach(bare.link);
  assert.deepEqual(bare.sent.map((s) => s.message.type), ['hello', 'apply'], 'with none to hand over: hello first, resolved at once');
});

test("listeningSockets: asks with 'listening', gathers the sockets answered for its seq, resolves on the 'listening' answer", async () => {
  const { plane, clock } = setup({ answerTimeoutMs: 1000 });
  const h = handLink();
  void plane.attach(h.link);
  let result: unknown = null;
  const asking = plane.listeningSockets().then((r) => (result = r));
  const ask = h.sent.at(-1)?.message;
  assert.ok(ask?.type === 'listening');
  const [a, b, stray] = [new RecordingHandle(), new RecordingHandle(), new RecordingHandle()];
  h.deliver({ type: 'socket', seq: ask.seq, address: '127.0.0.1', port: 8080 }, a);
  h.deliver({ type: 'socket', seq: ask.seq + 7, address: '127.0.0.1', port: 8081 }, stray);
  h.deliver({ type: 'socket', seq: ask.seq, address: '::', port: 0 }, b);
  await flush();
  assert.equal(result, null, 'not before the count');
  h.deliver({ type: 'listening', seq: ask.seq, count: 2 });
  await asking;
  assert.deepEqual(result, [
    { address: '127.0.0.1', port: 8080, handle: a },
    { address: '::', port: 0, handle: b },
  ]);
  assert.equal(stray.closes, 1, 'a socket for no question asked is closed, not leaked');
  assert.deepEqual([a.closes, b.closes], [0, 0]);
  assert.equal(clock.pendingTimers(), 0, 'the answer timer is gone');
  const late = new RecordingHandle();
  h.deliver({ type: 'socket', seq: ask.seq, address: '127.0.0.1', port: 8080 }, late);
  assert.equal(late.closes, 1, 'one that comes after the count is closed too');
});

test('listeningSockets resolves with what came if the worker is detached meanwhile, and with nothing without a worker', async () => {
  const { plane } = setup();
  assert.deepEqual(await plane.listeningSockets(), []);
  const h = handLink();
  void plane.attach(h.link);
  const asking = plane.listeningSockets();
  const ask = h.sent.at(-1)?.message;
  assert.ok(ask?.type === 'listening');
  const a = new RecordingHandle();
  h.deliver({ type: 'socket', seq: ask.seq, address: '127.0.0.1', port: 8080 }, a);
  plane.detach('the worker exited');
  assert.deepEqual(await asking, [{ address: '127.0.0.1', port: 8080, handle: a }]);
  const afterwards = new RecordingHandle();
  h.deliver({ type: 'socket', seq: ask.seq, address: '127.0.0.1', port: 8080 }, afterwards);
  assert.equal(afterwards.closes, 1, "a socket from a link no longer the plane's is closed");
  assert.deepEqual(await plane.listeningSockets(), []);
});

test("completedTotal is each worker's own completed counter as it reports it, kept across a new worker", async () => {
  const { plane, connect } = setup();
  const first = connect();
  first.say({ type: 'activity', activity: [wire('k', { completed: 5 }), wire('j', { completed: 1 })], completed: 6 });
  await turns();
  assert.equal(plane.completedTotal, 6);
  first.say({ type: 'idle', activity: wire('k', { completed: 7 }) });
  first.say({ type: 'activity', activity: [wire('j', { completed: 3 })], completed: 10 });
  await turns();
  assert.equal(plane.completedTotal, 10);
  first.say({ type: 'activity', activity: [], completed: 9 });
  first.say({ type: 'activity', activity: [] });
  await turns();
  assert.equal(plane.completedTotal, 10, 'a counter never goes back; a message without one changes nothing');
  plane.detach('the worker exited');
  assert.equal(plane.completedTotal, 10, 'what a gone worker completed stays');
  const second = connect();
  second.say({ type: 'activity', activity: [wire('k', { completed: 3 })], completed: 3 });
  await turns();
  assert.equal(plane.completedTotal, 13);
});

test('completedTotal does not count a key again when its counts were forgotten (past MAX_KEYS) and it reports again', async () => {
  const { plane, connect } = setup();
  const worker = connect();
  worker.say({ type: 'activity', activity: [wire('k', { completed: 5 })], completed: 5 });
  await turns();
  // As many quiet keys as are kept: k, the oldest quiet one, is forgotten.
  worker.say({ type: 'activity', activity: Array.from({ length: MAX_KEYS }, (_, i) => wire(`q${i}`)), completed: 5 });
  await turns();
  assert.equal([...plane.keys()].includes('k'), false);
  worker.say({ type: 'activity', activity: [wire('k', { completed: 6 })], completed: 6 });
  await turns();
  assert.equal(plane.completedTotal, 6, 'the worker completed 6 in all');
});

test("clientConnections: the open counts the worker's relayed connection messages last stated; none once it is detached", async () => {
  const { plane, connect } = setup();
  const worker = connect();
  const arn = (n: string): string => `arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/1111111111111111/${n}`;
  const say = (name: string, listener: string, open: number): [string, object] => [name, { pid: 4242, listenerArn: arn(listener), listenerPort: 8080, open }];
  assert.equal(plane.clientConnections(), 0);
  worker.say({
    type: 'telemetry',
    events: [say(CHANNEL_NAMES.connectionOpen, 'a', 1), say(CHANNEL_NAMES.connectionOpen, 'a', 2), say(CHANNEL_NAMES.connectionCount, 'b', 3)],
    dropped: 0,
  });
  await turns();
  assert.equal(plane.clientConnections(), 5);
  worker.say({ type: 'telemetry', events: [say(CHANNEL_NAMES.connectionClose, 'a', 1), say(CHANNEL_NAMES.connectionClose, 'b', 0)], dropped: 0 });
  await turns();
  assert.equal(plane.clientConnections(), 1);
  plane.detach('the worker exited');
  assert.equal(plane.clientConnections(), 0);
});

test('a worker over a process channel gets hello after 64 inherited sockets (one per listener address)', async (t) => {
  // A real child with an IPC channel, which reads and forgets what it is sent.
  const child = spawn(process.execPath, ['-e', 'process.on("message", (m, h) => h?.close?.())'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  t.after(() => child.kill());
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const handle = (server as unknown as { _handle: SocketHandle })._handle;
  const { plane, logs } = setup();
  const link = childLink(child);
  let closed: string | null = null;
  link.onClose((reason) => (closed = reason));
  const inherited = Array.from({ length: 64 }, (_, i) => ({ address: '127.0.0.1', port: 20_000 + i, handle }));
  await plane.attach(link, inherited);
  assert.deepEqual(
    logs.filter((e) => e['event'] === 'worker:unresponsive'),
    [],
    'hello is refused behind the sockets: the link counts them against its bound (DEFAULT_MAX_UNSENT)',
  );
  assert.equal(closed, null);
  assert.equal(plane.attached, true);
});
