/**
 * `retiringPool`: a running ebb's data-plane workers as the one data plane a hot restart retires
 * (docs/restart.md). The workers are real `RemoteDataPlane`s on memory links, each link's worker end
 * scripted by the test; the pool around them is the part that forks processes, so a stand-in gives
 * the planes and records `close` and `destroy`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { LISTENER_SETTINGS, ScriptedWorker, turns, wire } from '../../test/support/remote-data-plane-harness.ts';
import type { SocketHandle } from '../dataplane/listen-mode.ts';
import type { ListenerRoute, RoutingSnapshot, TargetGroupRoute } from '../domain/routing-snapshot.ts';
import { memoryLinkPair, type Link } from '../workers/link.ts';
import { RemoteDataPlane } from '../workers/remote-data-plane.ts';
import type { WorkerPool } from '../workers/worker-pool.ts';
import { retiringPool } from './retiring-data-plane.ts';

/** `n` workers as a pool hands them to the retiring data plane; `calls`: what was asked of the pool itself. */
function rig(n: number, mode: 'reuseport' | 'shared' = 'reuseport') {
  const clock = new FakeClock();
  const planes = Array.from({ length: n }, (_, i) => new RemoteDataPlane({ id: `worker-${i + 1}`, clock, log: () => {}, reportIntervalMs: 50 }));
  const workers = planes.map((plane) => {
    const [control, worker] = memoryLinkPair();
    const scripted = new ScriptedWorker(worker);
    void plane.attach(control);
    return scripted;
  });
  const calls: string[] = [];
  // As WorkerPool does: close asks each worker's data plane to close.
  const pool = {
    dataPlanes: planes,
    close: async (deadlineMs: number) => {
      calls.push(`close ${deadlineMs}`);
      await Promise.all(planes.map((p) => p.close(deadlineMs)));
    },
    destroy: () => void calls.push('destroy'),
    retire: () => void calls.push('retire'),
  };
  const retiring = retiringPool(pool as unknown as WorkerPool, 4242, mode, clock);
  const idle: string[] = [];
  retiring.onIdle((key) => idle.push(key));
  return { clock, planes, workers, calls, retiring, idle };
}

function listener(arn: string, port: number): ListenerRoute {
  return { arn, protocol: 'HTTP', address: '127.0.0.1', port, targetGroupArn: 'tg-1', settings: LISTENER_SETTINGS, tls: null };
}

function routes(version: number, listeners: ListenerRoute[], targetPort: number): RoutingSnapshot {
  const group: TargetGroupRoute = {
    arn: 'tg-1',
    name: 'tg',
    protocol: 'HTTP',
    targetTls: null,
    proxyProtocolV2: false,
    connectionTermination: false,
    algorithm: 'round_robin',
    failOpen: false,
    slowStartMs: 0,
    targets: [{ key: `tg-1|127.0.0.1|${targetPort}`, host: '127.0.0.1', port: targetPort, healthyForMs: null }],
  };
  return { version, listeners, targetGroups: new Map([['tg-1', group]]) };
}

test('activity is summed over the workers, and unsettled while any one of them is', async () => {
  const { workers, retiring } = rig(3);
  const [w1, w2, w3] = workers as [ScriptedWorker, ScriptedWorker, ScriptedWorker];
  w1.activity(wire('k', { requests: 1, completed: 4, connections: 1 }));
  w2.activity(wire('k', { requests: 2, tunnels: 1, completed: 5, connections: 2 }), wire('other', { requests: 9 }));
  w3.activity(wire('k', { tunnels: 2, completed: 1 }));
  await turns();
  assert.deepEqual(retiring.activity('k'), { requests: 3, tunnels: 3, completed: 10, connections: 3 });
  assert.deepEqual(retiring.activity('unknown'), { requests: 0, tunnels: 0, completed: 0, connections: 0 });
  assert.deepEqual([...retiring.entries.keys()].sort(), ['k', 'other'], 'the keys any worker counts');

  const applying = retiring.apply(routes(2, [], 3001));
  await turns();
  assert.equal(retiring.activity('k').unsettled, true, 'no worker has confirmed the snapshot');
  w1.appliedLast([wire('k', { requests: 1, completed: 4, connections: 1 })]);
  w2.appliedLast([wire('k', { requests: 2, tunnels: 1, completed: 5, connections: 2 })]);
  await turns();
  assert.equal(retiring.activity('k').unsettled, true, 'one worker has not confirmed it yet');
  w3.appliedLast([]);
  await applying;
  assert.deepEqual(retiring.activity('k'), { requests: 3, tunnels: 1, completed: 10, connections: 3 }, 'settled: no unsettled field; w3 has no work left');
});

test('onIdle tells a key only once it is idle in every worker', async () => {
  const { workers, retiring, idle } = rig(2);
  const [w1, w2] = workers as [ScriptedWorker, ScriptedWorker];
  w1.activity(wire('k', { requests: 1 }), wire('solo', { tunnels: 1 }));
  w2.activity(wire('k', { requests: 2 }));
  await turns();
  w1.say({ type: 'idle', activity: wire('k', { completed: 1 }) });
  await turns();
  assert.deepEqual(idle, [], 'the other worker still has two requests on it');
  w2.say({ type: 'activity', activity: [wire('k', { requests: 1, completed: 1 })] });
  await turns();
  assert.deepEqual(idle, []);
  w2.say({ type: 'idle', activity: wire('k', { completed: 2 }) });
  await turns();
  assert.deepEqual(idle, ['k']);
  assert.equal(retiring.activity('k').completed, 3);
  w1.say({ type: 'idle', activity: wire('solo', { completed: 1 }) });
  await turns();
  assert.deepEqual(idle, ['k', 'solo'], 'a key only one worker had is idle when that one says so');
});

test('onIdle waits for a worker whose counts are unsettled, and tells the key once it confirms the snapshot', async () => {
  const { workers, retiring, idle } = rig(2);
  const [w1, w2] = workers as [ScriptedWorker, ScriptedWorker];
  w1.activity(wire('k', { requests: 1 }));
  await turns();
  const applying = retiring.apply(routes(2, [], 3001));
  await turns();
  w1.appliedLast([wire('k', { requests: 1 })]);
  await turns();
  w1.say({ type: 'idle', activity: wire('k', { completed: 1 }) });
  await turns();
  assert.deepEqual(idle, [], "w2 has not confirmed the snapshot: its work on k is not known");
  w2.appliedLast([]);
  await applying;
  assert.deepEqual(idle, ['k'], 'w2 settled with nothing on k: the drain that asked looks again');
});

test('terminate asks every worker and sums what they cut', async () => {
  const { workers, retiring } = rig(3);
  const cutting = retiring.terminate('k');
  await turns();
  const results = [
    { requestsCut: 1, tunnelsClosed: 0, connectionsClosed: 2 },
    { requestsCut: 0, tunnelsClosed: 3, connectionsClosed: 1 },
    { requestsCut: 4, tunnelsClosed: 1, connectionsClosed: 0 },
  ];
  workers.forEach((w, i) => {
    const asked = w.last('terminate');
    assert.equal(asked.key, 'k');
    w.say({ type: 'terminated', seq: asked.seq, result: results[i] });
  });
  assert.deepEqual(await cutting, { requestsCut: 5, tunnelsClosed: 4, connectionsClosed: 3 });
});

test("apply (routes only): each worker gets the snapshot's routes with the listeners frozen at the first call", async () => {
  const { planes, workers, retiring } = rig(2);
  // What the workers were serving before the handover: one listener.
  const before = Promise.all(planes.map((p) => p.apply(routes(1, [listener('l-old', 8080)], 3001))));
  await turns();
  for (const w of workers) w.appliedLast();
  await before;
  assert.deepEqual(retiring.listenAddresses(), [{ address: '127.0.0.1', port: 8080 }]);

  const first = retiring.apply(routes(2, [listener('l-new', 9090)], 3002));
  await turns();
  for (const w of workers) {
    const sent = w.last('apply').snapshot;
    assert.equal(sent.version, 2);
    assert.deepEqual(
      sent.listeners.map((l) => [l.arn, l.port]),
      [['l-old', 8080]],
      "the worker keeps the listener it had, not the successor's",
    );
    assert.deepEqual(
      sent.targetGroups.flatMap((g) => g.targets.map((t) => t.port)),
      [3002],
      "the successor's routes",
    );
    w.appliedLast();
  }
  assert.deepEqual(await first, { listenerErrors: [] });

  const second = retiring.apply(routes(3, [listener('l-other', 7070), listener('l-old', 8080)], 3003));
  await turns();
  for (const w of workers) {
    const sent = w.last('apply').snapshot;
    assert.equal(sent.version, 3);
    assert.deepEqual(
      sent.listeners.map((l) => l.arn),
      ['l-old'],
      'a later snapshot still carries the first listeners',
    );
    assert.deepEqual(
      sent.targetGroups.flatMap((g) => g.targets.map((t) => t.port)),
      [3003],
    );
    w.appliedLast();
  }
  await second;
  assert.deepEqual(retiring.listenAddresses(), [{ address: '127.0.0.1', port: 8080 }]);
});

test('apply (routes only) on workers that had no snapshot: they get no listeners, then or later', async () => {
  const { workers, retiring } = rig(2);
  assert.deepEqual(retiring.listenAddresses(), []);
  const first = retiring.apply(routes(1, [listener('l-1', 8080)], 3001));
  await turns();
  for (const w of workers) {
    assert.deepEqual(w.last('apply').snapshot.listeners, []);
    w.appliedLast();
  }
  await first;
  const second = retiring.apply(routes(2, [listener('l-1', 8080)], 3001));
  await turns();
  for (const w of workers) assert.deepEqual(w.last('apply').snapshot.listeners, []);
  for (const w of workers) w.appliedLast();
  await second;
});

test('handOver: the workers\' starting counts are summed under ebb-<pid>; other data planes\' are kept; health passes as it is', () => {
  const { retiring } = rig(3);
  assert.equal(retiring.id, 'ebb-4242');
  const health = [{ key: 'k1', state: 'healthy' }] as unknown as Parameters<typeof retiring.handOver>[0]['health'];
  const out = retiring.handOver({
    drains: [
      {
        key: 'k1',
        completedAtStart: [
          ['worker-1', 3],
          ['ebb-17', 11],
          ['worker-2', 4],
          ['worker-3', 0],
        ],
      },
      { key: 'k2', completedAtStart: [['worker-2', 6]] },
    ],
    health,
  });
  assert.deepEqual(out.drains, [
    {
      key: 'k1',
      completedAtStart: [
        ['ebb-17', 11],
        ['ebb-4242', 7],
      ],
    },
    { key: 'k2', completedAtStart: [['ebb-4242', 6]] },
  ]);
  assert.equal(out.health, health);
});

test("socketsPerAddress: one per worker when each has its own socket (reuseport), 1 when they share one", () => {
  assert.equal(rig(3, 'reuseport').retiring.socketsPerAddress, 3);
  assert.equal(rig(1, 'reuseport').retiring.socketsPerAddress, 1);
  assert.equal(rig(3, 'shared').retiring.socketsPerAddress, 1);
});

test("completedWork sums the workers' own completed counters as they report them", async () => {
  const { workers, retiring } = rig(2);
  const [w1, w2] = workers as [ScriptedWorker, ScriptedWorker];
  assert.equal(retiring.completedWork(), 0);
  w1.say({ type: 'activity', activity: [wire('a', { completed: 3 }), wire('b', { completed: 2 })], completed: 5 });
  w2.say({ type: 'activity', activity: [wire('a', { completed: 5 })], completed: 5 });
  await turns();
  assert.equal(retiring.completedWork(), 10);
  w1.say({ type: 'activity', activity: [wire('a', { completed: 4 })], completed: 6 });
  // w2 forgot `a` and began its count for it again; its own total goes on.
  w2.say({ type: 'activity', activity: [wire('a', { completed: 1 })], completed: 6 });
  await turns();
  assert.equal(retiring.completedWork(), 12);
});

test("close and destroy go to the pool; connectionsCut sums the workers' closed answers", async () => {
  const { workers, retiring, calls } = rig(3);
  assert.equal(retiring.connectionsCut(), 0);
  const closing = retiring.close(2500);
  await turns();
  assert.deepEqual(calls, ['close 2500']);
  const [w1, w2, w3] = workers as [ScriptedWorker, ScriptedWorker, ScriptedWorker];
  w1.say({ type: 'closed', seq: w1.last('close').seq, connectionsCut: 2 });
  w2.say({ type: 'closed', seq: w2.last('close').seq, connectionsCut: 5 });
  // A worker of an older ebb says nothing of what it cut.
  w3.say({ type: 'closed', seq: w3.last('close').seq });
  await closing;
  assert.equal(retiring.connectionsCut(), 7);
  retiring.destroy();
  assert.deepEqual(calls, ['close 2500', 'destroy']);
});

/** A link whose peer the test plays by hand: what was sent, and messages delivered with a handle. */
function handLink() {
  const sent: object[] = [];
  let listener: (message: unknown, handle?: unknown) => void = () => {};
  const link: Link = {
    send: (m) => {
      sent.push(m);
      return true;
    },
    sendHandle: () => Promise.resolve(false),
    onMessage: (l) => void (listener = l),
    onClose: () => {},
    close: () => {},
  };
  return { link, sent, deliver: (message: object, handle?: SocketHandle) => listener(message, handle) };
}

class Handle implements SocketHandle {
  closes = 0;
  close(): void {
    this.closes++;
  }
}

/** Each worker answers `listening` with a socket per port in `ports` (the same address for all). */
async function handedOver(mode: 'reuseport' | 'shared', ports: number[]) {
  const clock = new FakeClock();
  const planes = [1, 2].map((i) => new RemoteDataPlane({ id: `worker-${i}`, clock, log: () => {}, reportIntervalMs: 50 }));
  const links = planes.map((p) => {
    const l = handLink();
    void p.attach(l.link);
    return l;
  });
  const retiring = retiringPool({ dataPlanes: planes, close: async () => {}, destroy: () => {}, retire: () => {} } as unknown as WorkerPool, 1, mode);
  const sockets = retiring.socketsToHandOver();
  const handles: Handle[][] = links.map((l) => {
    const asked = l.sent.find((m): m is { type: 'listening'; seq: number } => (m as { type: string }).type === 'listening');
    assert.ok(asked !== undefined, 'each worker is asked for its listening sockets');
    const own = ports.map((port) => {
      const h = new Handle();
      l.deliver({ type: 'socket', seq: asked.seq, address: '127.0.0.1', port }, h);
      return h;
    });
    l.deliver({ type: 'listening', seq: asked.seq, count: ports.length });
    return own;
  });
  return { out: await sockets, handles };
}

test("socketsToHandOver: under reuseport every worker's socket goes, but one of a port-0 listener (shared by all)", async () => {
  const { out, handles } = await handedOver('reuseport', [8080, 0]);
  const [[a8080, a0], [b8080, b0]] = handles as [[Handle, Handle], [Handle, Handle]];
  assert.deepEqual(
    out.map((s) => [s.port, s.release]),
    [
      [8080, true],
      [0, true],
      [8080, true],
    ],
  );
  assert.deepEqual(
    out.map((s) => s.handle),
    [a8080, a0, b8080],
  );
  assert.deepEqual(
    [a8080, a0, b8080, b0].map((h) => h.closes),
    [0, 0, 0, 1],
    'the copy of the shared socket is closed here',
  );
});

test('socketsToHandOver: with one shared socket per address, one copy goes and the others are closed', async () => {
  const { out, handles } = await handedOver('shared', [8080, 8081]);
  const [[a8080, a8081], [b8080, b8081]] = handles as [[Handle, Handle], [Handle, Handle]];
  assert.deepEqual(
    out.map((s) => s.handle),
    [a8080, a8081],
  );
  assert.deepEqual(
    [a8080, a8081, b8080, b8081].map((h) => h.closes),
    [0, 0, 1, 1],
  );
});
