/**
 * What one control plane hands to the next at a hot restart (docs/restart.md): the drains it tracked
 * and the health its checks settled, taken up by a second control plane on the same store. Each
 * process has its own monotonic clock, so the second runs on a FakeClock of its own that shares only
 * the wall time.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { FakeDataPlane } from '../../test/fakes/fake-data-plane.ts';
import { FakeHealthChecker } from '../../test/fakes/fake-health-checker.ts';
import { setup } from '../../test/support/control-plane-harness.ts';
import type { DataPlane } from '../domain/data-plane-port.ts';
import { InMemoryStateStore } from '../store/in-memory-state-store.ts';
import { memoryLinkPair, type Link } from '../workers/link.ts';
import { decodeToWorker, type ToWorker } from '../workers/protocol.ts';
import { RemoteDataPlane } from '../workers/remote-data-plane.ts';
import { ControlPlane } from '../control/control-plane.ts';
import type { HandOver } from '../control/hand-over.ts';

/** Lets queued control-plane work (promise chains) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** The running ebb: one control plane, its data plane `dp-old`, targets 3001 and 3002 in group `web` behind listener 8080. */
function running(delaySeconds = 10) {
  // A monotonic clock that has run a while, unlike the next process's.
  return setup({ delay: delaySeconds, dataPlaneIds: ['dp-old'], clockAdvanceMs: 1_000_000 });
}

/**
 * The ebb that takes over: a control plane on the same store and its own clock, with its own data
 * plane and the predecessor's (same id as the old one, its counters going on from where they were).
 */
async function successor(store: InMemoryStateStore, wallTime: number, handOver?: HandOver, predecessor: DataPlane = new FakeDataPlane('dp-old')) {
  const clock = new FakeClock(wallTime);
  const own = new FakeDataPlane('dp-new');
  const cp = new ControlPlane({ clock, store, dataPlanes: [own, predecessor], healthChecker: new FakeHealthChecker() });
  await cp.start(handOver);
  return { clock, own, predecessor, cp };
}

/** Moves the predecessor plane's counters for `key` to `completed` done and `inFlight` still running. */
function counters(dp: FakeDataPlane, key: string, completed: number, inFlight: number): void {
  for (let i = 0; i < completed + inFlight; i++) dp.request(key, 1);
  for (let i = 0; i < completed; i++) dp.request(key, -1);
}

describe('drains handed over', () => {
  test('a handed-over drain ends idle as soon as the predecessor finishes, counting what it completed since the drain began', async () => {
    const old = await running(10);
    counters(old.dp, old.a, 5, 2);
    await old.cp.deregisterTargets(old.tg.arn, [{ id: '127.0.0.1', port: 3001 }]);
    old.clock.advance(2_000);
    const handOver = old.cp.handOver();
    assert.deepEqual(handOver.drains, [{ key: old.a, completedAtStart: [['dp-old', 5]] }]);
    await old.cp.close();

    const predecessor = new FakeDataPlane('dp-old');
    counters(predecessor, old.a, 5, 2);
    const next = await successor(old.store, old.clock.wallTime(), handOver, predecessor);
    const stateOf = () => next.cp.describeTargetHealth(old.tg.arn, [{ id: '127.0.0.1', port: 3001 }])[0]?.health.state;
    assert.equal(stateOf(), 'draining');
    assert.deepEqual(next.own.routable(old.tg.arn), ['127.0.0.1:3002'], 'no new work for the draining target');

    next.clock.advance(1_000);
    predecessor.request(old.a, -1);
    await settle();
    assert.equal(stateOf(), 'draining', 'one request is still in flight');
    predecessor.request(old.a, -1);
    await settle();
    assert.equal(stateOf(), 'unused', 'ended 3 s into a 10 s drain');
    const record = next.cp.drainRecords().at(-1);
    assert.equal(record?.outcome, 'idle');
    assert.equal(record?.requestsCompleted, 2, '7 completed by the predecessor, 5 of them before the drain began');
    assert.equal(record?.endedAt, old.clock.wallTime() + 1_000);
    assert.equal(next.clock.pendingTimers() > 0, false, 'its deadline timer is gone');
  });

  test('a drain not handed over is taken as restored: an idle report does not end it, its deadline does', async () => {
    const old = await running(10);
    counters(old.dp, old.a, 0, 1);
    counters(old.dp, old.b, 0, 1);
    await old.cp.deregisterTargets(old.tg.arn, [
      { id: '127.0.0.1', port: 3001 },
      { id: '127.0.0.1', port: 3002 },
    ]);
    old.clock.advance(4_000);
    const handOver = old.cp.handOver();
    await old.cp.close();

    const predecessor = new FakeDataPlane('dp-old');
    counters(predecessor, old.a, 0, 1);
    counters(predecessor, old.b, 0, 1);
    const next = await successor(old.store, old.clock.wallTime(), { ...handOver, drains: handOver.drains.filter((d) => d.key === old.a) }, predecessor);
    const stateOf = (port: number) => next.cp.describeTargetHealth(old.tg.arn, [{ id: '127.0.0.1', port }])[0]?.health.state;
    predecessor.request(old.a, -1);
    predecessor.request(old.b, -1);
    await settle();
    assert.equal(stateOf(3001), 'unused', 'handed over: ends idle');
    assert.equal(stateOf(3002), 'draining', 'not handed over: its work is not known, so it waits for its deadline');
    next.clock.advance(5_999);
    await settle();
    assert.equal(stateOf(3002), 'draining');
    next.clock.advance(1);
    await settle();
    assert.equal(stateOf(3002), 'unused');
    assert.deepEqual(
      next.cp.drainRecords().map((r) => [r.port, r.outcome]),
      [
        [3001, 'idle'],
        [3002, 'deadline'],
      ],
    );
  });

  test('a control plane hands over the drains it began, not the ones it restored after a crash', async () => {
    const old = await running(10);
    counters(old.dp, old.b, 0, 1);
    await old.cp.deregisterTargets(old.tg.arn, [{ id: '127.0.0.1', port: 3002 }]);
    await old.cp.close();
    // Started without a handover (after a crash): the drain of 3002 is restored, its work unknown.
    const crashed = await successor(old.store, old.clock.wallTime());
    crashed.own.request(old.a, 1);
    await crashed.cp.deregisterTargets(old.tg.arn, [{ id: '127.0.0.1', port: 3001 }]);
    assert.deepEqual(crashed.cp.handOver().drains, [{ key: old.a, completedAtStart: [['dp-new', 0], ['dp-old', 0]] }]);
  });
});

describe('health handed over', () => {
  test("a healthy target is routable in the next control plane's first snapshot, with its slow-start age; an unhealthy one is not", async () => {
    const old = await running();
    old.health.pass(old.a, 2);
    old.health.pass(old.b, 2);
    old.health.fail(old.b, 'Target.ResponseCodeMismatch', 2, 502);
    old.clock.advance(7_000);
    const handOver = old.cp.handOver();
    assert.deepEqual(
      [...handOver.health].sort((x, y) => x.key.localeCompare(y.key)),
      [
        { key: old.a, health: 'healthy', failure: null, healthyForMs: 7_000 },
        { key: old.b, health: 'unhealthy', failure: { reason: 'Target.ResponseCodeMismatch', statusCode: 502 }, healthyForMs: null },
      ],
    );
    await old.cp.close();

    const next = await successor(old.store, old.clock.wallTime(), handOver);
    const first = next.own.snapshots[0];
    assert.ok(first !== undefined);
    const group = first.targetGroups.get(old.tg.arn);
    assert.equal(group?.failOpen, false);
    assert.deepEqual(
      group?.targets.map((t) => [t.port, t.healthyForMs]),
      [[3001, 7_000]],
      'only the healthy target, 7 s into its slow start',
    );
    assert.deepEqual(next.cp.describeTargetHealth(old.tg.arn, [{ id: '127.0.0.1', port: 3002 }])[0]?.health, {
      state: 'unhealthy',
      reason: 'Target.ResponseCodeMismatch',
      description: 'Health checks failed with these codes: [502]',
    });
  });

  test('without a handover every target starts initial, and the group fails open to both', async () => {
    const old = await running();
    old.health.pass(old.a, 2);
    old.health.fail(old.b, 'Target.Timeout', 2);
    await old.cp.close();
    const next = await successor(old.store, old.clock.wallTime());
    const group = next.own.snapshots[0]?.targetGroups.get(old.tg.arn);
    assert.equal(group?.failOpen, true);
    assert.deepEqual(group?.targets.map((t) => t.port), [3001, 3002]);
  });

  test('health of a target the store no longer has is skipped', async () => {
    const old = await running();
    old.health.pass(old.a, 2);
    const handOver = old.cp.handOver();
    await old.cp.close();
    const next = await successor(old.store, old.clock.wallTime(), { drains: [], health: [...handOver.health, { key: 'gone|10.0.0.9|80', health: 'healthy', failure: null, healthyForMs: 1 }] });
    assert.deepEqual(next.own.routable(old.tg.arn), ['127.0.0.1:3001']);
  });
});

/**
 * The predecessor's data plane as the successor sees it (a RemoteDataPlane for the ebb it replaces), and
 * the far end of its link once it attaches, scripted by the test: what it received, and what it says.
 */
function predecessorPlane() {
  const plane = new RemoteDataPlane({ id: 'dp-old', clock: new FakeClock(), log: () => undefined, reportIntervalMs: 100, predecessor: true });
  const received: ToWorker[] = [];
  let link: Link | null = null;
  const attach = (): void => {
    const [control, worker] = memoryLinkPair();
    worker.onMessage((m) => received.push(decodeToWorker(m)));
    link = worker;
    void plane.attach(control);
  };
  const say = (message: object): void => assert.equal(link?.send(message), true);
  const last = <T extends ToWorker['type']>(type: T): Extract<ToWorker, { type: T }> => {
    const found = received.filter((m) => m.type === type).at(-1);
    assert.ok(found !== undefined, `the predecessor received no '${type}'; it received ${received.map((m) => m.type).join(', ')}`);
    return found as Extract<ToWorker, { type: T }>;
  };
  return { plane, received, attach, say, last };
}

const NOTHING_CUT = { requestsCut: 0, tunnelsClosed: 0, connectionsClosed: 0 };

describe('drains whose deadline passed during the handover', () => {
  test('a handed-over drain is cut in the predecessor once it attaches, and its record counts what was cut there', async () => {
    const old = await running(10);
    counters(old.dp, old.a, 5, 2);
    await old.cp.deregisterTargets(old.tg.arn, [{ id: '127.0.0.1', port: 3001 }]);
    old.clock.advance(9_000);
    const handOver = old.cp.handOver();
    await old.cp.close();

    // The state took 2 s to hand over: the drain's deadline passed 1 s before the next control plane started.
    const predecessor = predecessorPlane();
    const next = await successor(old.store, old.clock.wallTime() + 2_000, handOver, predecessor.plane);
    const startedAt = next.clock.wallTime();
    const stateOf = () => next.cp.describeTargetHealth(old.tg.arn, [{ id: '127.0.0.1', port: 3001 }])[0]?.health.state;
    next.clock.advance(0);
    await settle();
    assert.equal(stateOf(), 'draining', 'its work is in the predecessor, which has not attached yet');
    assert.deepEqual(next.own.terminated, [old.a], "this process's own data plane is cut at once");
    assert.deepEqual(next.cp.drainRecords(), []);

    next.clock.advance(500);
    predecessor.attach();
    await settle();
    const terminate = predecessor.last('terminate');
    assert.equal(terminate.key, old.a);
    predecessor.say({ type: 'applied', seq: predecessor.last('apply').seq, version: 1, listenerErrors: [], activity: [{ key: old.a, requests: 2, tunnels: 0, completed: 5, connections: 2 }] });
    predecessor.say({ type: 'terminated', seq: terminate.seq, result: { requestsCut: 2, tunnelsClosed: 0, connectionsClosed: 2 } });
    await settle();
    assert.equal(stateOf(), 'unused');
    const record = next.cp.drainRecords().at(-1);
    assert.equal(record?.outcome, 'deadline');
    assert.equal(record?.requestsCut, 2, 'the two requests the predecessor still had');
    assert.equal(record?.connectionsClosed, 2);
    assert.equal(record?.requestsCompleted, 0);
    assert.equal(record?.endedAt, startedAt + 500, 'ended when the predecessor answered');
  });

  test('a drain not handed over ends at once at start, with nothing cut and nothing asked of the predecessor', async () => {
    const old = await running(10);
    counters(old.dp, old.a, 5, 2);
    await old.cp.deregisterTargets(old.tg.arn, [{ id: '127.0.0.1', port: 3001 }]);
    old.clock.advance(9_000);
    const handOver = old.cp.handOver();
    await old.cp.close();

    const predecessor = predecessorPlane();
    const next = await successor(old.store, old.clock.wallTime() + 2_000, { ...handOver, drains: [] }, predecessor.plane);
    await settle();
    assert.equal(next.cp.describeTargetHealth(old.tg.arn, [{ id: '127.0.0.1', port: 3001 }])[0]?.health.state, 'unused');
    const record = next.cp.drainRecords().at(-1);
    assert.equal(record?.outcome, 'deadline');
    assert.deepEqual([record?.requestsCut, record?.tunnelsClosed, record?.connectionsClosed], [0, 0, 0]);
    assert.deepEqual(next.own.terminated, []);
    predecessor.attach();
    await settle();
    assert.equal(predecessor.received.filter((m) => m.type === 'terminate').length, 0);
  });

  test('a terminate asked of a predecessor not yet attached waits: nothing cut if it never comes, its answer if it attaches', async () => {
    const gone = predecessorPlane();
    let settled: unknown = null;
    const abandoned = gone.plane.terminate('k').then((result) => (settled = result));
    await settle();
    assert.equal(settled, null, 'it waits for the predecessor');
    gone.plane.stopExpecting();
    assert.deepEqual(await abandoned, NOTHING_CUT);

    const late = predecessorPlane();
    settled = null;
    const answered = late.plane.terminate('k').then((result) => (settled = result));
    await settle();
    assert.equal(settled, null);
    late.attach();
    await settle();
    const terminate = late.last('terminate');
    assert.equal(terminate.key, 'k');
    late.say({ type: 'terminated', seq: terminate.seq, result: { requestsCut: 1, tunnelsClosed: 1, connectionsClosed: 2 } });
    assert.deepEqual(await answered, { requestsCut: 1, tunnelsClosed: 1, connectionsClosed: 2 });
  });
});

describe('a handed-over drain with nothing left', () => {
  test('the predecessor finished its work while the state was handed over: the drain ends idle at start, nothing sampling it', async () => {
    const old = await running(10);
    counters(old.dp, old.a, 5, 2);
    await old.cp.deregisterTargets(old.tg.arn, [{ id: '127.0.0.1', port: 3001 }]);
    old.clock.advance(2_000);
    const handOver = old.cp.handOver();
    await old.cp.close();

    // Its last two requests ended before this control plane listened: their idle report went to no one.
    const predecessor = new FakeDataPlane('dp-old');
    counters(predecessor, old.a, 7, 0);
    const next = await successor(old.store, old.clock.wallTime(), handOver, predecessor);
    await settle();
    assert.equal(next.cp.describeTargetHealth(old.tg.arn, [{ id: '127.0.0.1', port: 3001 }])[0]?.health.state, 'unused', 'not 8 s later at its deadline');
    const record = next.cp.drainRecords().at(-1);
    assert.equal(record?.outcome, 'idle');
    assert.equal(record?.requestsCompleted, 2);
    assert.equal(record?.endedAt, old.clock.wallTime());
  });

  test('a predecessor that attached and said it is idle before the drain was restored: the drain ends idle once its snapshot is answered', async () => {
    const old = await running(10);
    counters(old.dp, old.a, 5, 2);
    await old.cp.deregisterTargets(old.tg.arn, [{ id: '127.0.0.1', port: 3001 }]);
    old.clock.advance(2_000);
    const handOver = old.cp.handOver();
    await old.cp.close();

    const predecessor = predecessorPlane();
    predecessor.attach();
    predecessor.say({ type: 'activity', activity: [{ key: old.a, requests: 0, tunnels: 0, completed: 7, connections: 0 }] });
    await settle();
    const next = await successor(old.store, old.clock.wallTime(), handOver, predecessor.plane);
    await settle();
    // Asked through its records, not its health: describing a draining target reads its activity, which would look again by itself.
    assert.deepEqual(next.cp.drainRecords(), [], 'the snapshot it was sent at start is not answered yet');
    predecessor.say({ type: 'applied', seq: predecessor.last('apply').seq, version: 1, listenerErrors: [], activity: [] });
    await settle();
    assert.equal(next.cp.describeTargetHealth(old.tg.arn, [{ id: '127.0.0.1', port: 3001 }])[0]?.health.state, 'unused');
    assert.equal(next.cp.drainRecords().at(-1)?.outcome, 'idle');
    assert.equal(next.cp.drainRecords().at(-1)?.requestsCompleted, 2);
  });
});
