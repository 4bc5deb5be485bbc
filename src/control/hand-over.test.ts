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
import { targetKey } from '../domain/resources.ts';
import { InMemoryStateStore } from '../store/in-memory-state-store.ts';
import { ControlPlane } from './control-plane.ts';
import type { HandOver } from './hand-over.ts';

/** Lets queued control-plane work (promise chains) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** The running ebb: one control plane, its data plane `dp-old`, targets 3001 and 3002 in group `web` behind listener 8080. */
async function running(delaySeconds = 10) {
  const clock = new FakeClock();
  // A monotonic clock that has run a while, unlike the next process's.
  clock.advance(1_000_000);
  const store = new InMemoryStateStore();
  const dp = new FakeDataPlane('dp-old');
  const health = new FakeHealthChecker();
  const cp = new ControlPlane({ clock, store, dataPlanes: [dp], healthChecker: health });
  await cp.start();
  const lb = await cp.createLoadBalancer({ name: 'web' });
  const tg = await cp.createTargetGroup({
    name: 'web',
    protocol: 'HTTP',
    port: 80,
    targetType: 'ip',
    healthCheck: { intervalSeconds: 5, timeoutSeconds: 2, healthyThresholdCount: 2, unhealthyThresholdCount: 2 },
    attributes: { 'deregistration_delay.timeout_seconds': String(delaySeconds) },
  });
  await cp.createListener({ loadBalancerArn: lb.arn, protocol: 'HTTP', port: 8080, defaultActions: [{ type: 'forward', targetGroupArn: tg.arn }] });
  await cp.registerTargets(tg.arn, [
    { id: '127.0.0.1', port: 3001 },
    { id: '127.0.0.1', port: 3002 },
  ]);
  const a = targetKey(tg.arn, '127.0.0.1', 3001);
  const b = targetKey(tg.arn, '127.0.0.1', 3002);
  return { clock, store, dp, health, cp, tg, a, b };
}

/**
 * The ebb that takes over: a control plane on the same store and its own clock, with its own data
 * plane and the predecessor's (same id as the old one, its counters going on from where they were).
 */
async function successor(store: InMemoryStateStore, wallTime: number, handOver?: HandOver, predecessor = new FakeDataPlane('dp-old')) {
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
