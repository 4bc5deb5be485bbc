import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FakeDataPlane } from '../../test/fakes/fake-data-plane.ts';
import { FakeHealthChecker } from '../../test/fakes/fake-health-checker.ts';
import { targetKey } from '../domain/resources.ts';
import { ControlPlane } from './control-plane.ts';
import { failCommit, settle, setup } from '../../test/support/control-plane-harness.ts';

describe('target lifecycle through the control plane', () => {
  test('registration → initial → healthy after the healthy threshold', async () => {
    const s = await setup();
    assert.deepEqual(s.stateOf(3001), {
      state: 'initial',
      reason: 'Elb.InitialHealthChecking',
      description: 'Initial health checks in progress',
    });
    assert.equal(s.health.targets.length, 2, 'both targets are health-checked');
    s.health.pass(s.a);
    assert.equal(s.stateOf(3001)?.state, 'initial', 'one pass is below the threshold of 2');
    s.health.pass(s.a);
    assert.deepEqual(s.stateOf(3001), { state: 'healthy' });
    const toHealthy = s.states.find((e) => e.port === 3001 && e.to.state === 'healthy');
    assert.equal(toHealthy?.from.state, 'initial');
    assert.equal(typeof toHealthy?.at, 'number');
  });

  test('healthy → unhealthy after the unhealthy threshold, with the reason and code', async () => {
    const s = await setup();
    s.health.pass(s.a, 2);
    s.health.pass(s.b, 2);
    s.health.fail(s.a, 'Target.ResponseCodeMismatch', 1, 503);
    assert.equal(s.stateOf(3001)?.state, 'healthy');
    s.health.fail(s.a, 'Target.ResponseCodeMismatch', 1, 503);
    assert.deepEqual(s.stateOf(3001), {
      state: 'unhealthy',
      reason: 'Target.ResponseCodeMismatch',
      description: 'Health checks failed with these codes: [503]',
    });
    assert.deepEqual(s.dp.routable(s.tg.arn), ['127.0.0.1:3002'], 'no new work for the unhealthy target');
    s.health.fail(s.a, 'Target.Timeout');
    assert.equal(s.stateOf(3001)?.reason, 'Target.Timeout');
    s.health.pass(s.a, 2);
    assert.equal(s.stateOf(3001)?.state, 'healthy');
  });

  test('initial → unhealthy when the first checks fail', async () => {
    const s = await setup();
    s.health.fail(s.a, 'Target.FailedHealthChecks', 2);
    assert.deepEqual(s.stateOf(3001), { state: 'unhealthy', reason: 'Target.FailedHealthChecks', description: 'Health checks failed' });
  });

  test('fail-open: with every target unhealthy, all registered targets get work', async () => {
    const s = await setup();
    s.health.fail(s.a, 'Target.Timeout', 2);
    s.health.fail(s.b, 'Target.Timeout', 2);
    const route = s.dp.latest.targetGroups.get(s.tg.arn);
    assert.equal(route?.failOpen, true);
    assert.deepEqual(s.dp.routable(s.tg.arn), ['127.0.0.1:3001', '127.0.0.1:3002']);
    s.health.pass(s.b, 2);
    assert.equal(s.dp.latest.targetGroups.get(s.tg.arn)?.failOpen, false);
    assert.deepEqual(s.dp.routable(s.tg.arn), ['127.0.0.1:3002']);
  });

  test('fail-open never includes a draining target', async () => {
    const s = await setup();
    s.dp.request(s.a, 1);
    await s.cp.deregisterTargets(s.tg.arn, [{ id: '127.0.0.1', port: 3001 }]);
    s.health.fail(s.b, 'Target.Timeout', 2);
    assert.equal(s.dp.latest.targetGroups.get(s.tg.arn)?.failOpen, true);
    assert.deepEqual(s.dp.routable(s.tg.arn), ['127.0.0.1:3002']);
  });
});

describe('drains', () => {
  test('deregistration → draining, then unused as soon as the last request ends (early)', async () => {
    const s = await setup({ delay: 10 });
    s.health.pass(s.a, 2);
    s.health.pass(s.b, 2);
    s.dp.request(s.a, 1);
    await s.cp.deregisterTargets(s.tg.arn, [{ id: '127.0.0.1', port: 3001 }]);
    assert.deepEqual(s.stateOf(3001), {
      state: 'draining',
      reason: 'Target.DeregistrationInProgress',
      description: 'Target deregistration is in progress',
    });
    assert.deepEqual(s.dp.routable(s.tg.arn), ['127.0.0.1:3002'], 'no new work from the instant of deregistration');
    s.clock.advance(2000);
    assert.equal(s.stateOf(3001)?.state, 'draining');
    s.dp.request(s.a, -1);
    await settle();
    assert.deepEqual(s.stateOf(3001), { state: 'unused', reason: 'Target.NotRegistered', description: 'Target is not registered to the target group' });
    assert.equal(s.cp.describeTargetHealth(s.tg.arn).length, 1, 'gone from the group');
    assert.equal(s.drains.length, 1);
    assert.equal(s.drains[0]?.outcome, 'idle');
    assert.equal(s.drains[0]?.requestsCompleted, 1);
    assert.equal(s.drains[0]?.endedAt - (s.drains[0]?.startedAt ?? 0), 2000);
    assert.equal(s.clock.pendingTimers(), 0, 'the deadline timer is cancelled');
  });

  test('an idle target is removed at once on deregistration', async () => {
    const s = await setup({ delay: 300 });
    await s.cp.deregisterTargets(s.tg.arn, [{ id: '127.0.0.1', port: 3001 }]);
    assert.equal(s.stateOf(3001)?.state, 'unused');
    assert.equal(s.drains[0]?.outcome, 'idle');
  });

  test('at the deadline what remains is cut and counted', async () => {
    const s = await setup({ delay: 1 });
    s.dp.request(s.a, 1);
    s.dp.request(s.a, 1);
    await s.cp.deregisterTargets(s.tg.arn, [{ id: '127.0.0.1', port: 3001 }]);
    s.clock.advance(999);
    await settle();
    assert.equal(s.stateOf(3001)?.state, 'draining');
    s.clock.advance(1);
    await settle();
    assert.equal(s.stateOf(3001)?.state, 'unused');
    assert.deepEqual(s.dp.terminated, [s.a]);
    assert.equal(s.drains[0]?.outcome, 'deadline');
    assert.equal(s.drains[0]?.requestsCut, 2);
  });

  test('a delay of 0 ends the drain at once, cutting what is in flight', async () => {
    const s = await setup({ delay: 0 });
    s.dp.request(s.a, 1);
    await s.cp.deregisterTargets(s.tg.arn, [{ id: '127.0.0.1', port: 3001 }]);
    assert.equal(s.stateOf(3001)?.state, 'unused');
    assert.equal(s.drains[0]?.outcome, 'deadline');
    assert.equal(s.drains[0]?.requestsCut, 1);
  });

  test('a per-call timeout overrides the group attribute', async () => {
    const s = await setup({ delay: 300 });
    s.dp.request(s.a, 1);
    await s.cp.deregisterTargets(s.tg.arn, [{ id: '127.0.0.1', port: 3001 }], { timeoutSeconds: 2 });
    s.clock.advance(2000);
    await settle();
    assert.equal(s.drains[0]?.timeoutSeconds, 2);
    assert.equal(s.drains[0]?.outcome, 'deadline');
  });

  test('re-registering a draining target cancels its drain and returns it to service', async () => {
    const s = await setup({ delay: 10 });
    s.health.pass(s.a, 2);
    s.dp.request(s.a, 1);
    await s.cp.deregisterTargets(s.tg.arn, [{ id: '127.0.0.1', port: 3001 }]);
    assert.equal(s.stateOf(3001)?.state, 'draining');
    await s.cp.registerTargets(s.tg.arn, [{ id: '127.0.0.1', port: 3001 }]);
    assert.deepEqual(s.stateOf(3001), { state: 'healthy' }, 'health checks kept running, so it is healthy at once');
    assert.ok(s.dp.routable(s.tg.arn).includes('127.0.0.1:3001'));
    assert.equal(s.drains[0]?.outcome, 'cancelled');
    s.clock.advance(20_000);
    s.dp.request(s.a, -1);
    await settle();
    assert.equal(s.stateOf(3001)?.state, 'healthy', 'neither the old deadline nor idleness ends anything');
  });

  test('registering a draining target named twice in one call cancels its one drain once', async () => {
    const s = await setup({ delay: 10 });
    s.dp.request(s.a, 1);
    await s.cp.deregisterTargets(s.tg.arn, [{ id: '127.0.0.1', port: 3001 }]);
    await s.cp.registerTargets(s.tg.arn, [
      { id: '127.0.0.1', port: 3001 },
      { id: '127.0.0.1', port: 3001 },
    ]);
    assert.deepEqual(s.drains.map((r) => r.outcome), ['cancelled'], 'one drain: one drain:end event');
    assert.equal(s.cp.drainRecords().length, 1, 'one drain: one record');
    assert.equal((await s.store.load()).get('drainRecord')?.size, 1, 'one record stored');
  });

  test('deleting a group reports each of its targets leaving, draining or not', async () => {
    const s = await setup({ delay: 10 });
    const spare = await s.cp.createTargetGroup({ name: 'spare', protocol: 'HTTP', port: 80, targetType: 'ip' });
    await s.cp.registerTargets(spare.arn, [{ id: '127.0.0.5' }, { id: '127.0.0.6' }]);
    s.dp.request(targetKey(spare.arn, '127.0.0.6', 80), 1);
    await s.cp.deregisterTargets(spare.arn, [{ id: '127.0.0.6' }]);
    s.states.length = 0;
    await s.cp.deleteTargetGroup(spare.arn);
    assert.deepEqual(
      s.states.map((e) => [e.targetId, e.from.state, e.to.state, e.to.reason]),
      [
        ['127.0.0.5', 'unused', 'unused', 'Target.NotRegistered'],
        ['127.0.0.6', 'draining', 'unused', 'Target.NotRegistered'],
      ],
    );
    assert.equal(s.states[0]?.from.reason, 'Target.NotInUse');
    assert.equal(s.drains.at(-1)?.outcome, 'cancelled');
  });

  test('a target that turns unhealthy while draining keeps draining to the same deadline', async () => {
    const s = await setup({ delay: 5 });
    s.health.pass(s.a, 2);
    s.dp.request(s.a, 1);
    await s.cp.deregisterTargets(s.tg.arn, [{ id: '127.0.0.1', port: 3001 }]);
    s.health.fail(s.a, 'Target.Timeout', 3);
    assert.equal(s.stateOf(3001)?.state, 'draining');
    assert.ok(!s.dp.routable(s.tg.arn).includes('127.0.0.1:3001'));
    s.clock.advance(5000);
    await settle();
    assert.equal(s.drains[0]?.outcome, 'deadline');
  });

  test('an unhealthy target keeps its in-flight work with no deadline', async () => {
    const s = await setup({ delay: 1 });
    s.health.pass(s.a, 2);
    s.health.pass(s.b, 2);
    s.dp.request(s.a, 1);
    s.health.fail(s.a, 'Target.Timeout', 2);
    s.clock.advance(60_000);
    await settle();
    assert.deepEqual(s.dp.terminated, [], 'nothing is cut');
    assert.equal(s.stateOf(3001)?.state, 'unhealthy');
  });

  test('a drain ends only when every data plane is idle', async () => {
    const s = await setup({ delay: 10, dataPlanes: 2 });
    const [dp0, dp1] = s.dps as [FakeDataPlane, FakeDataPlane];
    dp0.request(s.a, 1);
    dp1.request(s.a, 1);
    await s.cp.deregisterTargets(s.tg.arn, [{ id: '127.0.0.1', port: 3001 }]);
    dp0.request(s.a, -1);
    await settle();
    assert.equal(s.stateOf(3001)?.state, 'draining', 'the second data plane still has a request');
    dp1.request(s.a, -1);
    await settle();
    assert.equal(s.stateOf(3001)?.state, 'unused');
    assert.equal(s.drains[0]?.requestsCompleted, 2);
  });

  test('a drain whose end cannot be saved is retried, and ends once the store takes it', async () => {
    const s = await setup({ delay: 10 });
    s.dp.request(s.a, 1);
    await s.cp.deregisterTargets(s.tg.arn, [{ id: '127.0.0.1', port: 3001 }]);
    s.store.failNextCommit();
    s.dp.request(s.a, -1);
    await settle();
    assert.equal(s.stateOf(3001)?.state, 'draining', 'not ended: the change was not saved');
    assert.deepEqual(s.dp.routable(s.tg.arn), ['127.0.0.1:3002'], 'and still gets no new work');
    s.clock.advance(1000);
    await settle();
    assert.equal(s.stateOf(3001)?.state, 'unused');
    assert.equal(s.drains[0]?.outcome, 'idle');
  });

  test('a drain whose end cannot be saved during DeregisterTargets holds up neither the call nor the other targets', async () => {
    const s = await setup({ delay: 10 });
    s.dp.request(s.a, 1); // 3001 busy: it drains to its deadline
    failCommit(s.store, 2); // 1: the deregistration; 2: the end of 3002's drain (idle at once)
    await s.cp.deregisterTargets(s.tg.arn, [
      { id: '127.0.0.1', port: 3002 },
      { id: '127.0.0.1', port: 3001 },
    ]);
    assert.equal(s.stateOf(3001)?.state, 'draining');
    await settle();
    assert.equal(s.stateOf(3002)?.state, 'unused', 'the end that could not be saved is retried, and saved');
    assert.deepEqual(s.drains.map((r) => [r.port, r.outcome]), [[3002, 'idle']]);
    s.clock.advance(10_000);
    await settle();
    assert.equal(s.stateOf(3001)?.state, 'unused', 'the later target got its deadline timer');
    assert.deepEqual(s.drains.map((r) => [r.port, r.outcome]), [[3002, 'idle'], [3001, 'deadline']]);
  });

  test('with a delay of 0, an end that cannot be saved is retried without cutting twice', async () => {
    const s = await setup({ delay: 0 });
    s.dp.request(s.a, 1);
    failCommit(s.store, 2);
    await s.cp.deregisterTargets(s.tg.arn, [{ id: '127.0.0.1', port: 3001 }]);
    assert.equal(s.stateOf(3001)?.state, 'draining', 'not ended: the end was not saved');
    assert.deepEqual(s.dp.routable(s.tg.arn), ['127.0.0.1:3002'], 'and it gets no new work');
    await settle();
    assert.equal(s.stateOf(3001)?.state, 'unused');
    assert.deepEqual(s.dp.terminated, [s.a], 'cut once');
    assert.equal(s.drains[0]?.outcome, 'deadline');
    assert.equal(s.drains[0]?.requestsCut, 1, 'what was cut is counted once');
  });

  test('close cancels a retry set before it, and an idle report after it queues nothing', async () => {
    const s = await setup({ delay: 10 });
    s.dp.request(s.a, 1);
    s.dp.request(s.b, 1);
    await s.cp.deregisterTargets(s.tg.arn, [
      { id: '127.0.0.1', port: 3001 },
      { id: '127.0.0.1', port: 3002 },
    ]);
    s.store.failNextCommit();
    s.dp.request(s.a, -1); // the end of 3001's drain fails: a retry is set for 1 s later
    await settle();
    await s.cp.close();
    assert.equal(s.clock.pendingTimers(), 0, 'no timer outlives close');
    let attempts = 0;
    const commit = s.store.commit.bind(s.store);
    s.store.commit = (ops) => {
      attempts += 1;
      return commit(ops);
    };
    s.dp.request(s.b, -1); // 3002 goes idle after close
    s.clock.advance(60_000);
    await settle();
    assert.equal(attempts, 0, 'nothing runs after close');
    assert.equal(s.stateOf(3001)?.state, 'draining');
    assert.equal(s.stateOf(3002)?.state, 'draining');
  });

  test('drain records stay within their limit, in memory and in the store, whatever ends the drains', async () => {
    const s = await setup({ delay: 10, drainRecordLimit: 2 });
    const a = { id: '127.0.0.1', port: 3001 };
    s.dp.request(s.a, 1);
    for (let i = 0; i < 3; i++) {
      await s.cp.deregisterTargets(s.tg.arn, [a]);
      await s.cp.registerTargets(s.tg.arn, [a]); // cancelled
    }
    await s.cp.deregisterTargets(s.tg.arn, [a]);
    s.dp.request(s.a, -1); // ends idle
    await settle();
    assert.deepEqual(s.drains.map((r) => r.outcome), ['cancelled', 'cancelled', 'cancelled', 'idle']);
    assert.deepEqual(s.cp.drainRecords().map((r) => r.outcome), ['cancelled', 'idle']);
    const stored = (await s.store.load()).get('drainRecord');
    assert.equal(stored?.size, 2);
  });

  test('a drain survives a restart and ends at its original deadline', async () => {
    const s = await setup({ delay: 10 });
    s.dp.request(s.a, 1);
    await s.cp.deregisterTargets(s.tg.arn, [{ id: '127.0.0.1', port: 3001 }]);
    s.clock.advance(4000);
    await s.cp.close();
    // A new process: same store, a fresh data plane with nothing in flight.
    const dp = new FakeDataPlane('dp-new');
    const cp2 = new ControlPlane({ clock: s.clock, store: s.store, dataPlanes: [dp], healthChecker: new FakeHealthChecker() });
    await cp2.start();
    const stateOf = () => cp2.describeTargetHealth(s.tg.arn, [{ id: '127.0.0.1', port: 3001 }])[0]?.health.state;
    assert.equal(stateOf(), 'draining');
    assert.deepEqual(dp.routable(s.tg.arn), ['127.0.0.1:3002'], 'the draining target is not routed after the restart');
    s.clock.advance(5999);
    await settle();
    assert.equal(stateOf(), 'draining');
    s.clock.advance(1);
    await settle();
    assert.equal(stateOf(), 'unused');
    assert.equal(cp2.drainRecords().at(-1)?.outcome, 'deadline');
  });
});
