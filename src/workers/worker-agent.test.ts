import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import type { TargetActivity } from '../domain/data-plane-port.ts';
import { HttpDataPlane } from '../dataplane/http-data-plane.ts';
import { CHANNEL_NAMES } from '../dataplane/channels.ts';
import type { InheritedSockets, SocketHandle } from '../dataplane/listen-mode.ts';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { keyOf, LISTENER, snapshot, startBackend } from '../../test/integration/dataplane-helpers.ts';
import { Cleanup } from '../../test/support/cleanup.ts';
import { request } from '../../test/support/http-client.ts';
import { sleep, waitUntil } from '../../test/support/timing.ts';
import { memoryLinkPair } from './link.ts';
import type { Link } from './link.ts';
import { decodeFromWorker, encodeSnapshot, PROTOCOL_VERSION } from './protocol.ts';
import type { FromWorker, ToWorker } from './protocol.ts';
import { WorkerAgent } from './worker-agent.ts';
import type { AgentDataPlane } from './worker-agent.ts';

type Of<T extends FromWorker['type']> = Extract<FromWorker, { type: T }>;

/** The control side of a memory link, scripted: what the worker said, decoded, in order. */
class ControlSide {
  readonly received: FromWorker[] = [];
  closedReason: string | null = null;
  readonly #link: Link;

  constructor(link: Link) {
    this.#link = link;
    link.onMessage((m) => this.received.push(decodeFromWorker(m)));
    link.onClose((reason) => (this.closedReason = reason));
  }

  send(message: ToWorker | Record<string, unknown>): void {
    assert.equal(this.#link.send(message), true);
  }

  of<T extends FromWorker['type']>(type: T): Array<Of<T>> {
    return this.received.filter((m): m is Of<T> => m.type === type);
  }

  async next<T extends FromWorker['type']>(type: T, pred: (m: Of<T>) => boolean = () => true, ms = 3000): Promise<Of<T>> {
    let found: Of<T> | undefined;
    await waitUntil(() => (found = this.of(type).find(pred)) !== undefined, `a '${type}' message`, ms);
    return found as Of<T>;
  }
}

interface Rig {
  readonly control: ControlSide;
  readonly agent: WorkerAgent;
  readonly clock: FakeClock;
  readonly exits: number[];
  readonly local: object[];
  readonly dataPlane: () => HttpDataPlane;
}

function rig(cleanup: Cleanup): Rig {
  const [controlLink, workerLink] = memoryLinkPair();
  const clock = new FakeClock();
  const exits: number[] = [];
  const local: object[] = [];
  let made: HttpDataPlane | null = null;
  const agent = new WorkerAgent({
    link: workerLink,
    clock,
    pid: 4242,
    onExit: (code) => exits.push(code),
    localLog: (line) => local.push(line),
    orphanDeadlineMs: 200,
    createDataPlane: (id, log) => (made = new HttpDataPlane({ id, log })),
  });
  cleanup.add(() => made?.destroy());
  cleanup.add(() => controlLink.close());
  return {
    control: new ControlSide(controlLink),
    agent,
    clock,
    exits,
    local,
    dataPlane: () => {
      assert.ok(made !== null, 'the data plane is made at hello');
      return made;
    },
  };
}

const hello = (id = 'dp-w1'): ToWorker => ({ type: 'hello', protocol: PROTOCOL_VERSION, dataPlaneId: id, reportIntervalMs: 100 });

type Backend = Awaited<ReturnType<typeof startBackend>>;

/** A rig whose worker serves: a backend, hello (as `dataPlaneId`), the first snapshot applied, and the listener's port. */
async function serving(t: { after(fn: () => unknown): void }, dataPlaneId?: string): Promise<Rig & { port: number; backend: Backend }> {
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const backend = await startBackend('a');
  cleanup.add(() => backend.close());
  const r = rig(cleanup);
  r.control.send(hello(dataPlaneId));
  r.control.send({ type: 'apply', seq: 1, snapshot: encodeSnapshot(snapshot([backend.port])) });
  await r.control.next('applied');
  return { ...r, backend, port: r.dataPlane().boundPort(LISTENER) as number };
}

test('ready, hello, apply: the listener opens and the answer carries the snapshot version', async (t) => {
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const backend = await startBackend('a');
  cleanup.add(() => backend.close());
  const { control, dataPlane } = rig(cleanup);
  const ready = await control.next('ready');
  assert.deepEqual(ready, { type: 'ready', protocols: [1], pid: 4242 });
  control.send(hello());
  control.send({ type: 'apply', seq: 1, snapshot: encodeSnapshot(snapshot([backend.port], { version: 7 })) });
  const applied = await control.next('applied');
  assert.deepEqual({ seq: applied.seq, version: applied.version, listenerErrors: applied.listenerErrors }, { seq: 1, version: 7, listenerErrors: [] });
  assert.equal(dataPlane().id, 'dp-w1', 'the data plane is named by hello');
  const port = dataPlane().boundPort(LISTENER);
  assert.ok(port !== null);
  const reply = await request(port);
  assert.equal(reply.status, 200);
  assert.equal(reply.body, 'a');
});

test('a target removed with a request in flight: applied counts it, idle follows when it ends', async (t) => {
  const { control, port, backend } = await serving(t);
  const slow = request(port, { path: '/slow?ms=400' });
  await waitUntil(() => backend.inFlight() === 1, 'the request at the backend');
  const key = keyOf(backend.port);
  control.send({ type: 'apply', seq: 2, snapshot: encodeSnapshot(snapshot([], { port, version: 2 })) });
  const applied = await control.next('applied', (m) => m.seq === 2);
  const counted = applied.activity.find((a) => a.key === key);
  assert.deepEqual(counted && { requests: counted.requests, tunnels: counted.tunnels }, { requests: 1, tunnels: 0 }, 'the request in flight is in the answer');
  assert.equal(control.of('idle').length, 0);
  assert.equal((await slow).status, 200);
  const idle = await control.next('idle');
  assert.equal(idle.activity.key, key);
  assert.deepEqual({ requests: idle.activity.requests, tunnels: idle.activity.tunnels, completed: idle.activity.completed }, { requests: 0, tunnels: 0, completed: 1 });
});

test('activity: the changed keys at most every reportIntervalMs, on the injected clock; nothing when nothing changed', async (t) => {
  const { control, clock, port, backend } = await serving(t);
  for (let i = 0; i < 3; i++) assert.equal((await request(port)).status, 200);
  assert.equal(control.of('activity').length, 0, 'nothing before the interval');
  clock.advance(99);
  await sleep(100);
  assert.equal(control.of('activity').length, 0, 'still nothing at 99 ms');
  clock.advance(1);
  const report = await control.next('activity');
  const a = report.activity.find((x) => x.key === keyOf(backend.port));
  assert.deepEqual(a && { requests: a.requests, completed: a.completed }, { requests: 0, completed: 3 });
  clock.advance(100);
  clock.advance(100);
  await sleep(100);
  assert.equal(control.of('activity').length, 1, 'unchanged counts are not sent again');
});

test('telemetry: the requests a worker serves reach the control side as channel events, named by its id', async (t) => {
  const { control, clock, dataPlane } = await serving(t, 'dp-w9');
  assert.equal((await request(dataPlane().boundPort(LISTENER) as number, { path: '/x' })).status, 200);
  clock.advance(20);
  const batch = await control.next('telemetry');
  const ends = batch.events.filter(([name]) => name === CHANNEL_NAMES.requestEnd).map(([, m]) => m as Record<string, unknown>);
  assert.equal(ends.length, 1);
  assert.equal(ends[0]?.['dataPlaneId'], 'dp-w9');
  assert.equal(ends[0]?.['url'], '/x');
  assert.equal(ends[0]?.['status'], 200);
});

test('terminate cuts what is in flight and answers with the counts', async (t) => {
  const { control, port, backend } = await serving(t);
  const slow = request(port, { path: '/slow?ms=5000' }).catch(() => null);
  await waitUntil(() => backend.inFlight() === 1, 'the request at the backend');
  control.send({ type: 'terminate', seq: 5, key: keyOf(backend.port) });
  const answer = await control.next('terminated');
  assert.equal(answer.seq, 5);
  assert.equal(answer.result.requestsCut, 1);
  await slow;
});

test('close: in-flight work finishes, the last counts go, then closed, then the agent exits', async (t) => {
  const { control, exits, port, backend } = await serving(t);
  const slow = request(port, { path: '/slow?ms=300' });
  await waitUntil(() => backend.inFlight() === 1, 'the request at the backend');
  control.send({ type: 'close', seq: 9, deadlineMs: 5000 });
  assert.equal((await slow).status, 200, 'the request in flight finished');
  const closed = await control.next('closed');
  assert.equal(closed.seq, 9);
  const last = control.received.indexOf(closed) - 1;
  const before = control.received.slice(0, last + 1);
  const lastCounts = before.filter((m): m is Of<'activity'> => m.type === 'activity').flatMap((m) => m.activity);
  assert.equal(lastCounts.at(-1)?.completed, 1, 'the final counts are sent before closed');
  assert.ok(before.some((m) => m.type === 'telemetry'), 'telemetry is flushed before closed');
  await waitUntil(() => exits.length === 1, 'the agent to exit');
  assert.deepEqual(exits, [0]);
  assert.equal((await request(port).catch((e: Error) => e)) instanceof Error, true, 'the listener is closed');
});

test('a message that cannot be read closes the link, and the worker stops (it is never left running)', async (t) => {
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const { control, exits, local } = rig(cleanup);
  control.send(hello());
  control.send({ type: 'apply', seq: 'one' });
  await waitUntil(() => control.closedReason !== null, 'the link to close');
  await waitUntil(() => exits.length === 1, 'the agent to exit');
  const said = JSON.stringify(local);
  assert.match(said, /field 'seq' must be a non-negative integer/);
});

test('a protocol version the worker does not speak closes the link, saying which it speaks', async (t) => {
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const { control, exits, local } = rig(cleanup);
  control.send({ type: 'hello', protocol: 99, dataPlaneId: 'x', reportIntervalMs: 100 });
  await waitUntil(() => exits.length === 1, 'the agent to exit');
  // The memory link tells the other side of a close a turn later, after the messages sent before it.
  await waitUntil(() => control.closedReason !== null, 'the control side to see the link closed');
  assert.match(JSON.stringify(local), /protocol 99; this worker speaks 1/);
});

test('the control side gone (link closed): listeners stop at once, in-flight work gets the orphan deadline, then exit', async (t) => {
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const backend = await startBackend('a');
  cleanup.add(() => backend.close());
  const [controlLink, workerLink] = memoryLinkPair();
  const exits: number[] = [];
  let made: HttpDataPlane | null = null;
  const clock = new FakeClock();
  new WorkerAgent({ link: workerLink, clock, onExit: (c) => exits.push(c), orphanDeadlineMs: 300, createDataPlane: (id, log) => (made = new HttpDataPlane({ id, log })) });
  cleanup.add(() => made?.destroy());
  const control = new ControlSide(controlLink);
  control.send(hello());
  control.send({ type: 'apply', seq: 1, snapshot: encodeSnapshot(snapshot([backend.port])) });
  await control.next('applied');
  const port = (made as unknown as HttpDataPlane).boundPort(LISTENER) as number;
  const slow = request(port, { path: '/slow?ms=3000' }).then(
    (r) => r.status,
    () => 'cut',
  );
  await waitUntil(() => backend.inFlight() === 1, 'the request at the backend');
  controlLink.close();
  await waitUntil(() => exits.length === 1, 'the agent to exit', 3000);
  const outcome = await slow;
  assert.ok(outcome === 502 || outcome === 'cut', `cut at the orphan deadline (a 502 or a closed connection), not left running; got ${outcome}`);
  assert.equal((await request(port).catch((e: Error) => e)) instanceof Error, true, 'the listener is closed');
});

test('answers the link refuses wait in order and go when it takes them again; reports wait behind them', async () => {
  let accepting = false;
  const sent: FromWorker[] = [];
  let onMessage: (m: unknown) => void = () => {};
  const link: Link = {
    send: (m) => {
      if (!accepting) return false;
      sent.push(m as FromWorker);
      return true;
    },
    sendHandle: () => Promise.resolve(false),
    onMessage: (l) => (onMessage = l),
    onClose: () => {},
    close: () => {},
  };
  const clock = new FakeClock();
  const counts = new Map<string, TargetActivity>([['k', { requests: 1, tunnels: 0, completed: 0, connections: 1 }]]);
  const fake: AgentDataPlane = {
    id: 'fake',
    entries: counts,
    apply: async () => ({ listenerErrors: [] }),
    activity: (key) => counts.get(key) ?? { requests: 0, tunnels: 0, completed: 0 },
    terminate: async () => ({ requestsCut: 0, tunnelsClosed: 0, connectionsClosed: 0 }),
    onIdle: () => {},
    close: async () => {},
    destroy: () => {},
  };
  new WorkerAgent({ link, clock, pid: 1, onExit: () => {}, createDataPlane: () => fake });
  onMessage(hello());
  onMessage({ type: 'apply', seq: 1, snapshot: encodeSnapshot(snapshot([1])) });
  onMessage({ type: 'terminate', seq: 2, key: 'k' });
  await new Promise((r) => setImmediate(r));
  clock.advance(100);
  assert.equal(sent.length, 0);
  accepting = true;
  counts.set('k', { requests: 0, tunnels: 0, completed: 1, connections: 1 });
  clock.advance(10);
  assert.deepEqual(
    sent.map((m) => m.type),
    ['ready', 'applied', 'terminated'],
    'in order, once the link takes them',
  );
  clock.advance(100);
  assert.deepEqual(
    sent.map((m) => m.type),
    ['ready', 'applied', 'terminated', 'activity'],
  );
  assert.deepEqual((sent[3] as Of<'activity'>).activity, [{ key: 'k', requests: 0, tunnels: 0, completed: 1, connections: 1 }]);
});


/**
 * A link whose control side the test plays by hand: it delivers messages with a handle (a process's IPC
 * channel carries one; the memory link does not), and records what the agent sends, by sendHandle too.
 */
function handLink() {
  const sent: FromWorker[] = [];
  const handed: Array<{ readonly message: FromWorker; readonly handle: unknown }> = [];
  const state = { closed: false, takesHandles: true };
  let listener: (message: unknown, handle?: unknown) => void = () => {};
  const closeListeners: Array<(reason: string) => void> = [];
  const link: Link = {
    send: (m) => !state.closed && sent.push(decodeFromWorker(m)) > 0,
    sendHandle: (m, handle) => {
      if (state.closed || !state.takesHandles) return Promise.resolve(false);
      sent.push(decodeFromWorker(m));
      handed.push({ message: decodeFromWorker(m), handle });
      return Promise.resolve(true);
    },
    onMessage: (l) => void (listener = l),
    onClose: (l) => void closeListeners.push(l),
    close: () => {
      if (state.closed) return;
      state.closed = true;
      for (const l of closeListeners) l('closed by this side');
    },
  };
  const of = <T extends FromWorker['type']>(type: T): Array<Of<T>> => sent.filter((m): m is Of<T> => m.type === type);
  return { link, sent, handed, state, of, deliver: (message: ToWorker, handle?: unknown) => listener(message, handle) };
}

class RecordingHandle implements SocketHandle {
  closes = 0;
  close(): void {
    this.closes++;
  }
}

type Listening = ReturnType<NonNullable<AgentDataPlane['listeningSockets']>>;

/** A data plane that does what it is told: `onApply` runs in `apply`; it says its `listening` sockets, and `cut` once closed. */
function stubPlane(o: { onApply?: () => Promise<void> | void; listening?: () => Listening; cut?: number } = {}): AgentDataPlane {
  let closed = false;
  return {
    id: 'stub',
    entries: new Map(),
    apply: async () => {
      await o.onApply?.();
      return { listenerErrors: [] };
    },
    activity: () => ({ requests: 0, tunnels: 0, completed: 0 }),
    terminate: async () => ({ requestsCut: 0, tunnelsClosed: 0, connectionsClosed: 0 }),
    onIdle: () => {},
    close: async () => void (closed = true),
    destroy: () => {},
    ...(o.listening !== undefined && { listeningSockets: o.listening }),
    get closeOutcome() {
      return closed && o.cut !== undefined ? { connectionsCut: o.cut } : null;
    },
  };
}

/** An agent on a handLink; `inherited()`: what createDataPlane was given as its third argument. */
function handRig(plane: (inherited: InheritedSockets) => AgentDataPlane = () => stubPlane()) {
  const h = handLink();
  const local: object[] = [];
  let given: InheritedSockets | null = null;
  new WorkerAgent({ link: h.link, clock: new FakeClock(), pid: 7, onExit: () => {}, localLog: (line) => local.push(line), createDataPlane: (_id, _log, inherited) => plane((given = inherited)) });
  const inherited = (): InheritedSockets => {
    assert.ok(given !== null, 'the data plane is made at hello');
    return given;
  };
  return { ...h, local, inherited };
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test("sockets handed over before hello reach the data plane's maker, each with its handle, in order", () => {
  const { deliver, inherited, state } = handRig();
  const [a, b, c] = [new RecordingHandle(), new RecordingHandle(), new RecordingHandle()];
  deliver({ type: 'socket', address: '127.0.0.1', port: 8080 }, a);
  deliver({ type: 'socket', address: '127.0.0.1', port: 8080 }, b);
  deliver({ type: 'socket', address: '::1', port: 443 }, c);
  deliver(hello());
  const got = inherited();
  assert.equal(got.take('127.0.0.1', 8080), a);
  assert.equal(got.take('127.0.0.1', 8080), b);
  assert.equal(got.take('127.0.0.1', 8080), null);
  assert.equal(got.take('::1', 443), c);
  assert.equal(state.closed, false);
});

test("a 'socket' after hello, or one without its handle, closes the link saying why", () => {
  const late = handRig();
  late.deliver(hello());
  late.deliver({ type: 'socket', address: '127.0.0.1', port: 8080 }, new RecordingHandle());
  assert.equal(late.state.closed, true);
  assert.match(JSON.stringify(late.local), /a 'socket' after 'hello'; sockets are handed over before it/);
  assert.equal(late.inherited().has('127.0.0.1', 8080), false, 'the data plane never sees it');

  const bare = handRig();
  bare.deliver({ type: 'socket', address: '127.0.0.1', port: 8080 });
  assert.equal(bare.state.closed, true);
  assert.match(JSON.stringify(bare.local), /a 'socket' for 127\.0\.0\.1:8080 came without its handle/);
  assert.match(JSON.stringify(bare.of('log')), /came without its handle/, 'said to the control side too, before the close');
});

test("'listening' is answered with a socket per listening socket, each by sendHandle, then the count", async (t) => {
  const open = net.createServer();
  await new Promise<void>((resolve) => open.listen(0, '127.0.0.1', resolve));
  t.after(() => open.close());
  const listening: Listening = [
    { address: '127.0.0.1', port: 8080, server: open },
    // A listener that is not bound (closed, or still binding): it has no handle to send.
    { address: '127.0.0.1', port: 9090, server: net.createServer() },
    { address: '::', port: 0, server: open },
  ];
  const { deliver, handed, sent, of, state } = handRig(() => stubPlane({ listening: () => listening }));
  deliver(hello());
  deliver({ type: 'listening', seq: 12 });
  await flush();
  const handle = (open as unknown as { _handle: unknown })._handle;
  assert.ok(handle !== null && handle !== undefined);
  assert.deepEqual(
    handed.map((h) => [h.message, h.handle === handle]),
    [
      [{ type: 'socket', seq: 12, address: '127.0.0.1', port: 8080 }, true],
      [{ type: 'socket', seq: 12, address: '::', port: 0 }, true],
    ],
  );
  assert.deepEqual(sent.filter((m) => m.type === 'socket' || m.type === 'listening').at(-1), { type: 'listening', seq: 12, count: 2 }, 'after the sockets');

  state.takesHandles = false;
  deliver({ type: 'listening', seq: 13 });
  await flush();
  assert.deepEqual(of('listening').at(-1), { type: 'listening', seq: 13, count: 0 }, 'sockets the link did not take are not counted');
});

test("'listening' before hello, or to a data plane that cannot say its sockets, is answered with a count of 0", async () => {
  const { deliver, of, handed } = handRig();
  deliver({ type: 'listening', seq: 1 });
  deliver(hello());
  deliver({ type: 'listening', seq: 2 });
  await flush();
  assert.deepEqual(of('listening'), [
    { type: 'listening', seq: 1, count: 0 },
    { type: 'listening', seq: 2, count: 0 },
  ]);
  assert.deepEqual(handed, []);
});

test("'closed' carries the client connections the data plane cut at its close deadline; none said when it says none", async () => {
  const cutting = handRig(() => stubPlane({ cut: 3 }));
  cutting.deliver(hello());
  cutting.deliver({ type: 'close', seq: 4, deadlineMs: 100 });
  await flush();
  assert.deepEqual(cutting.of('closed'), [{ type: 'closed', seq: 4, connectionsCut: 3 }]);

  const none = handRig();
  none.deliver(hello());
  none.deliver({ type: 'close', seq: 5, deadlineMs: 100 });
  await flush();
  assert.deepEqual(none.of('closed'), [{ type: 'closed', seq: 5 }]);
});

test('after the first snapshot is applied, the handed-over sockets no listener took are closed, and said', async () => {
  let finishApply: () => void = () => {};
  let applies = 0;
  const taken: Array<SocketHandle | null> = [];
  const { deliver, of } = handRig((inherited) =>
    stubPlane({
      // The snapshot's one listener listens on the first socket of its address.
      onApply: () => {
        if (applies++ > 0) return;
        taken.push(inherited.take('127.0.0.1', 8080));
        return new Promise<void>((resolve) => (finishApply = resolve));
      },
    }),
  );
  const [used, spare, gone] = [new RecordingHandle(), new RecordingHandle(), new RecordingHandle()];
  deliver({ type: 'socket', address: '127.0.0.1', port: 8080 }, used);
  deliver({ type: 'socket', address: '127.0.0.1', port: 8080 }, spare);
  deliver({ type: 'socket', address: '127.0.0.1', port: 9090 }, gone);
  deliver(hello());
  deliver({ type: 'apply', seq: 1, snapshot: encodeSnapshot(snapshot([1])) });
  await flush();
  assert.deepEqual(taken, [used]);
  assert.deepEqual([spare.closes, gone.closes], [0, 0], 'not while the snapshot is being applied');
  finishApply();
  await flush();
  assert.equal(of('applied').length, 1);
  assert.deepEqual([used.closes, spare.closes, gone.closes], [0, 1, 1]);
  const said = of('log').find((m) => m.line['msg'] === 'handed-over sockets no listener took, closed');
  assert.deepEqual(said?.line['addresses'], ['127.0.0.1:8080', '127.0.0.1:9090']);

  deliver({ type: 'apply', seq: 2, snapshot: encodeSnapshot(snapshot([1], { version: 2 })) });
  await flush();
  assert.equal(of('applied').length, 2);
  assert.deepEqual([used.closes, spare.closes, gone.closes], [0, 1, 1], 'closed once');
});
