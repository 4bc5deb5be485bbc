import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { FakeDataPlane } from '../../test/fakes/fake-data-plane.ts';
import { FakeHealthChecker } from '../../test/fakes/fake-health-checker.ts';
import { EbbError } from '../shared/errors.ts';
import { InMemoryStateStore } from '../store/in-memory-state-store.ts';
import { defaultHealthCheck } from '../domain/health-check.ts';
import { targetKey, type LoadBalancerRecord, type TargetGroupRecord } from '../domain/resources.ts';
import { ControlPlane } from './control-plane.ts';
import type { TargetStateEvent } from './events.ts';
import type { DrainRecord } from './outputs.ts';
import { put } from './store-transaction.ts';

async function setup(options: { delay?: number; dataPlanes?: number; drainRecordLimit?: number } = {}) {
  const clock = new FakeClock();
  const store = new InMemoryStateStore();
  const dps = Array.from({ length: options.dataPlanes ?? 1 }, (_, i) => new FakeDataPlane(`dp${i}`));
  const health = new FakeHealthChecker();
  const cp = new ControlPlane({ clock, store, dataPlanes: dps, healthChecker: health, drainRecordLimit: options.drainRecordLimit ?? 1000 });
  await cp.start();
  const states: TargetStateEvent[] = [];
  const drains: DrainRecord[] = [];
  cp.events.on('target:state', (e) => states.push(e));
  cp.events.on('drain:end', (r) => drains.push(r));
  const lb = await cp.createLoadBalancer({ name: 'web' });
  const tg = await cp.createTargetGroup({
    name: 'web',
    protocol: 'HTTP',
    port: 80,
    targetType: 'ip',
    healthCheck: { intervalSeconds: 5, timeoutSeconds: 2, healthyThresholdCount: 2, unhealthyThresholdCount: 2 },
    attributes: { 'deregistration_delay.timeout_seconds': String(options.delay ?? 10) },
  });
  await cp.createListener({ loadBalancerArn: lb.arn, protocol: 'HTTP', port: 8080, defaultActions: [{ type: 'forward', targetGroupArn: tg.arn }] });
  await cp.registerTargets(tg.arn, [
    { id: '127.0.0.1', port: 3001 },
    { id: '127.0.0.1', port: 3002 },
  ]);
  const a = targetKey(tg.arn, '127.0.0.1', 3001);
  const b = targetKey(tg.arn, '127.0.0.1', 3002);
  const stateOf = (port: number) => cp.describeTargetHealth(tg.arn, [{ id: '127.0.0.1', port }])[0]?.health;
  return { clock, store, dps, dp: dps[0] as FakeDataPlane, health, cp, tg, lb, a, b, states, drains, stateOf };
}

/** Makes the `n`th commit from now fail (as a full disk would), changing nothing; the others go through. */
function failCommit(store: InMemoryStateStore, n: number): void {
  const commit = store.commit.bind(store);
  let calls = 0;
  store.commit = (ops) => {
    calls += 1;
    if (calls === n) return Promise.reject(new EbbError('StoreUnavailable', 'The state store could not write (simulated).'));
    return commit(ops);
  };
}

/** Lets queued control-plane work (promise chains) run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

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

describe('validation', () => {
  test('out-of-range delay, unknown attribute, duplicate name, unknown group', async () => {
    const s = await setup();
    await assert.rejects(
      s.cp.modifyTargetGroupAttributes(s.tg.arn, { 'deregistration_delay.timeout_seconds': '4000' }),
      (e: unknown) => EbbError.is(e) && e.code === 'ValidationError' && /0 to 3600/.test(e.message),
    );
    await assert.rejects(
      s.cp.modifyTargetGroupAttributes(s.tg.arn, { 'no.such.key': '1' }),
      (e: unknown) => EbbError.is(e) && e.code === 'ValidationError',
    );
    await assert.rejects(
      s.cp.createTargetGroup({ name: 'web', protocol: 'HTTP', port: 80 }),
      (e: unknown) => EbbError.is(e) && e.code === 'DuplicateTargetGroupName',
    );
    await assert.rejects(
      s.cp.registerTargets(`${s.tg.arn}x`, [{ id: '127.0.0.1' }]),
      (e: unknown) => EbbError.is(e) && e.code === 'TargetGroupNotFound',
    );
    await assert.rejects(s.cp.addTags(['not-an-arn'], [{ key: 'k', value: 'v' }]), (e: unknown) => EbbError.is(e) && e.code === 'ValidationError');
    assert.throws(() => s.cp.describeTags(['not-an-arn']), (e: unknown) => EbbError.is(e) && e.code === 'ValidationError');
    await assert.rejects(s.cp.putInstance({ id: 'web-1', address: '127.0.0.1' }), (e: unknown) => EbbError.is(e) && /i- followed by/.test(e.message));
    assert.throws(
      () => s.cp.describeTargetGroups({ arns: ['not-an-arn'] }),
      (e: unknown) => EbbError.is(e) && e.code === 'ValidationError' && /not a valid target group ARN/.test(e.message),
    );
    await assert.rejects(
      s.cp.deleteTargetGroup(s.tg.arn),
      (e: unknown) => EbbError.is(e) && e.code === 'ResourceInUse',
    );
    await assert.rejects(
      s.cp.modifyTargetGroupAttributes(s.tg.arn, { 'deregistration_delay.timeout_seconds': '20', 'stickiness.enabled': 'true' }),
      (e: unknown) => EbbError.is(e) && e.code === 'ValidationError' && /not supported by ebb yet/.test(e.message),
      'a value ebb cannot honour yet is refused, not ignored',
    );
    assert.equal(s.cp.describeTargetGroupAttributes(s.tg.arn)['deregistration_delay.timeout_seconds'], '10', 'nothing changed');
  });

  test('deleting by a malformed ARN is a ValidationError; a well-formed unknown one succeeds, as on AWS', async () => {
    const s = await setup();
    const commits = s.store.commits;
    for (const arn of ['not-an-arn', s.tg.arn]) {
      await assert.rejects(
        s.cp.deleteLoadBalancer(arn),
        (e: unknown) => EbbError.is(e) && e.code === 'ValidationError' && /not a valid load balancer ARN/.test(e.message),
        arn,
      );
    }
    for (const arn of ['not-an-arn', s.lb.arn]) {
      await assert.rejects(
        s.cp.deleteTargetGroup(arn),
        (e: unknown) => EbbError.is(e) && e.code === 'ValidationError' && /not a valid target group ARN/.test(e.message),
        arn,
      );
    }
    await s.cp.deleteLoadBalancer(`${s.lb.arn}0`);
    await s.cp.deleteTargetGroup(`${s.tg.arn}0`);
    assert.equal(s.store.commits, commits, 'nothing was written');
    assert.equal(s.cp.describeLoadBalancers().length, 1);
  });

  test('slow start with least outstanding requests is refused, whichever is set first and however it arrives', async () => {
    const s = await setup();
    const refused = (e: unknown) =>
      EbbError.is(e) && e.code === 'InvalidConfigurationRequest' && /You cannot enable both slow start mode and least outstanding requests/.test(e.message);
    const LOR = { 'load_balancing.algorithm.type': 'least_outstanding_requests' };
    const SLOW = { 'slow_start.duration_seconds': '30' };
    await assert.rejects(s.cp.modifyTargetGroupAttributes(s.tg.arn, { ...LOR, ...SLOW }), refused, 'both in one call');
    await s.cp.modifyTargetGroupAttributes(s.tg.arn, SLOW);
    await assert.rejects(s.cp.modifyTargetGroupAttributes(s.tg.arn, LOR), refused, 'least outstanding onto slow start');
    await s.cp.modifyTargetGroupAttributes(s.tg.arn, { ...LOR, 'slow_start.duration_seconds': '0' });
    await assert.rejects(s.cp.modifyTargetGroupAttributes(s.tg.arn, SLOW), refused, 'slow start onto least outstanding');
    assert.equal(s.cp.describeTargetGroupAttributes(s.tg.arn)['slow_start.duration_seconds'], '0');
    // A group the configuration file declares is created with its attributes.
    await assert.rejects(s.cp.createTargetGroup({ name: 'file', protocol: 'HTTP', port: 80, attributes: { ...LOR, ...SLOW } }), refused);
  });

  test('access logs need a bucket: enabling them without one is refused, on the set a change leaves', async () => {
    const s = await setup();
    const refused = (e: unknown) => EbbError.is(e) && e.code === 'InvalidConfigurationRequest' && /access_logs\.s3\.bucket is required/.test(e.message);
    await assert.rejects(s.cp.modifyLoadBalancerAttributes(s.lb.arn, { 'access_logs.s3.enabled': 'true' }), refused);
    assert.equal(s.cp.describeLoadBalancerAttributes(s.lb.arn)['access_logs.s3.enabled'], 'false', 'nothing changed');
    await s.cp.modifyLoadBalancerAttributes(s.lb.arn, { 'access_logs.s3.bucket': 'logs' });
    await s.cp.modifyLoadBalancerAttributes(s.lb.arn, { 'access_logs.s3.enabled': 'true' });
    await assert.rejects(s.cp.modifyLoadBalancerAttributes(s.lb.arn, { 'access_logs.s3.bucket': '' }), refused, 'the bucket cannot be emptied while logs are on');
  });

  test('an HTTPS target group is made (ebb speaks TLS to its targets) and checked over HTTPS by default; an HTTP group may be checked over HTTPS', async () => {
    const s = await setup();
    const tls = await s.cp.createTargetGroup({ name: 'tls', protocol: 'HTTPS', port: 443, targetType: 'ip' });
    assert.deepEqual(
      { protocol: tls.healthCheck.protocol, timeout: tls.healthCheck.timeoutSeconds, matcher: tls.healthCheck.matcher },
      { protocol: 'HTTPS', timeout: 5, matcher: '200' },
    );
    const stack = await s.cp.createLoadBalancerStack({
      loadBalancer: { name: 'legacy', type: 'classic' },
      targetGroups: [{ name: 'legacy-443', protocol: 'HTTPS', port: 443 }],
      listeners: [{ protocol: 'HTTP', port: 9100, targetGroupName: 'legacy-443' }],
    });
    assert.equal(stack.targetGroups[0]?.protocol, 'HTTPS');
    const checked = await s.cp.createTargetGroup({ name: 'checked', protocol: 'HTTP', port: 80, healthCheck: { protocol: 'HTTPS', port: 443 } });
    assert.equal(checked.healthCheck.protocol, 'HTTPS');
  });

  test('an HTTP group is not checked over TCP, however the check is set; a Classic load balancer\'s group may be', async () => {
    const s = await setup();
    const refused = (e: unknown) => EbbError.is(e) && e.code === 'ValidationError' && /TCP is not supported for health checks of an HTTP target group/.test(e.message);
    await assert.rejects(s.cp.createTargetGroup({ name: 'tcp-checked', protocol: 'HTTP', port: 80, healthCheck: { protocol: 'TCP' } }), refused);
    await assert.rejects(s.cp.modifyTargetGroup(s.tg.arn, { protocol: 'TCP' }), refused);
    assert.equal(s.cp.describeTargetGroups({ arns: [s.tg.arn] })[0]?.healthCheck.protocol, 'HTTP');
    const stack = await s.cp.createLoadBalancerStack({
      loadBalancer: { name: 'legacy', type: 'classic' },
      targetGroups: [{ name: 'legacy-80', protocol: 'HTTP', port: 80, targetType: 'instance', healthCheck: { protocol: 'TCP', port: 80 } }],
      listeners: [{ protocol: 'HTTP', port: 9100, targetGroupName: 'legacy-80' }],
    });
    const [group] = stack.targetGroups;
    assert.equal(group?.healthCheck.protocol, 'TCP', "Classic's default check is TCP");
    const back = await s.cp.modifyTargetGroup(group?.arn ?? '', { protocol: 'HTTP', path: '/' });
    assert.equal(back.healthCheck.protocol, 'HTTP');
    assert.equal((await s.cp.modifyTargetGroup(group?.arn ?? '', { protocol: 'TCP' })).healthCheck.protocol, 'TCP');
  });

  test('a listener created without an address listens where the node puts its load balancer\'s scheme', async () => {
    const s = await setup();
    const forward = [{ type: 'forward' as const, targetGroupArn: s.tg.arn }];
    assert.equal(s.cp.describeListeners({ loadBalancerArn: s.lb.arn })[0]?.address, '0.0.0.0', 'internet-facing: every interface');
    const inside = await s.cp.createLoadBalancer({ name: 'inside', scheme: 'internal' });
    const l = await s.cp.createListener({ loadBalancerArn: inside.arn, protocol: 'HTTP', port: 9200, defaultActions: forward });
    assert.equal(l.address, '127.0.0.1', 'internal: loopback by default');
    assert.equal(s.dp.latest.listeners.find((x) => x.arn === l.arn)?.address, '127.0.0.1', 'and that is what the data plane binds');
    const given = await s.cp.createListener({ loadBalancerArn: inside.arn, protocol: 'HTTP', port: 9201, address: '127.0.0.3', defaultActions: forward });
    assert.equal(given.address, '127.0.0.3', 'an address given wins');

    const cp = new ControlPlane({
      clock: new FakeClock(),
      store: new InMemoryStateStore(),
      dataPlanes: [new FakeDataPlane()],
      listenAddresses: { 'internet-facing': '10.0.0.5', internal: '10.1.0.5' },
    });
    await cp.start();
    const tg = await cp.createTargetGroup({ name: 'g', protocol: 'HTTP', port: 80, targetType: 'ip' });
    const out = await cp.createLoadBalancer({ name: 'out' });
    const outside = await cp.createListener({ loadBalancerArn: out.arn, protocol: 'HTTP', port: 80, defaultActions: [{ type: 'forward', targetGroupArn: tg.arn }] });
    assert.equal(outside.address, '10.0.0.5');
    const stack = await cp.createLoadBalancerStack({
      loadBalancer: { name: 'legacy', type: 'classic', scheme: 'internal' },
      targetGroups: [{ name: 'legacy-80', protocol: 'HTTP', port: 80 }],
      listeners: [{ protocol: 'HTTP', port: 80, targetGroupName: 'legacy-80' }],
    });
    assert.equal(stack.listeners[0]?.address, '10.1.0.5', 'a Classic load balancer\'s listeners too');
    assert.throws(
      () => new ControlPlane({ clock: new FakeClock(), store: new InMemoryStateStore(), dataPlanes: [], listenAddresses: { internal: 'localhost' } }),
      (e: unknown) => EbbError.is(e) && e.code === 'ValidationError' && /internal.*localhost.*IP address/.test(e.message),
    );
  });

  test('a listener that cannot bind is rolled back', async () => {
    const s = await setup();
    s.dp.failListener = 9090;
    await assert.rejects(
      s.cp.createListener({ loadBalancerArn: s.lb.arn, protocol: 'HTTP', port: 9090, defaultActions: [{ type: 'forward', targetGroupArn: s.tg.arn }] }),
      (e: unknown) => EbbError.is(e) && e.code === 'InvalidConfigurationRequest' && /9090/.test(e.message),
    );
    assert.equal(s.cp.describeListeners({ loadBalancerArn: s.lb.arn }).length, 1);
  });

  test('a load balancer stack is created whole, or not at all', async () => {
    const s = await setup();
    const stack = {
      loadBalancer: { name: 'legacy', type: 'classic' as const },
      targetGroups: [{ name: 'legacy-80', protocol: 'HTTP' as const, port: 80, targetType: 'instance' as const }],
      listeners: [
        { protocol: 'HTTP' as const, port: 9100, targetGroupName: 'legacy-80' },
        { protocol: 'HTTP' as const, port: 9101, targetGroupName: 'legacy-80' },
      ],
    };
    const commitsBefore = s.store.commits;
    s.dp.failListener = 9101;
    await assert.rejects(
      s.cp.createLoadBalancerStack(stack),
      (e: unknown) => EbbError.is(e) && e.code === 'InvalidConfigurationRequest' && /9101.*Nothing was created/.test(e.message),
    );
    assert.equal(s.cp.describeLoadBalancers({ type: 'classic' }).length, 0);
    assert.ok(!s.cp.describeTargetGroups().some((tg) => tg.name === 'legacy-80'));
    assert.equal(s.store.commits - commitsBefore, 2, 'one commit to create, one to undo');
    await assert.rejects(
      s.cp.createLoadBalancerStack({ ...stack, listeners: [stack.listeners[0]!, { ...stack.listeners[0]!, targetGroupName: 'legacy-80' }] }),
      (e: unknown) => EbbError.is(e) && e.code === 'DuplicateListener',
    );
    assert.equal(s.store.commits - commitsBefore, 2, 'a refused stack writes nothing');
    s.dp.failListener = null;
    const made = await s.cp.createLoadBalancerStack(stack);
    assert.equal(made.listeners.length, 2);
    assert.deepEqual(s.cp.describeListeners({ loadBalancerArn: made.loadBalancer.arn }).map((l) => l.port), [9100, 9101]);
    assert.deepEqual(s.cp.loadBalancersOfTargetGroup(made.targetGroups[0]!.arn), [made.loadBalancer.arn]);
  });

  test('a Classic load balancer stored with its settings in ebb:classic-* tags has them moved into its record, once, at start', async () => {
    const store = new InMemoryStateStore();
    const prefix = 'arn:aws:elasticloadbalancing:us-east-1:123456789012';
    const lbArn = `${prefix}:loadbalancer/old`;
    const tgArn = `${prefix}:targetgroup/classic-old-8080/0123456789abcdef`;
    const listenerArn = `${prefix}:listener/old/0123456789abcdef`;
    await store.commit([
      put('loadBalancer', lbArn, {
        arn: lbArn, name: 'old', type: 'classic', scheme: 'internet-facing', createdAt: 0, attributes: {}, source: 'api',
        tags: [
          { key: 'team', value: 'web' },
          { key: 'ebb:classic-draining-timeout', value: '120' },
          { key: 'ebb:classic-cross-zone', value: 'true' },
        ],
      }),
      put('targetGroup', tgArn, {
        arn: tgArn, name: 'classic-old-8080', protocol: 'HTTP', port: 8080, targetType: 'instance', healthCheck: defaultHealthCheck('HTTP'),
        attributes: { 'deregistration_delay.timeout_seconds': '0' }, createdAt: 0, source: 'api',
        tags: [
          { key: 'ebb:classic-lb', value: 'old' },
          { key: 'ebb:classic-instance-port', value: '8080' },
        ],
      }),
      put('listener', listenerArn, {
        arn: listenerArn, loadBalancerArn: lbArn, protocol: 'HTTP', port: 9100, address: '0.0.0.0', tags: [], source: 'api',
        defaultActions: [{ type: 'forward', targetGroupArn: tgArn }],
      }),
    ]);
    const cp = new ControlPlane({ clock: new FakeClock(), store, dataPlanes: [new FakeDataPlane()] });
    await cp.start();
    const [lb] = cp.describeLoadBalancers({ type: 'classic' });
    assert.deepEqual(lb?.classic, { drainingTimeoutSeconds: 120, crossZone: true });
    assert.deepEqual(lb?.tags, [{ key: 'team', value: 'web' }]);
    assert.deepEqual(cp.describeTargetGroups({ arns: [tgArn] })[0]?.tags, []);
    const stored = await store.load();
    assert.deepEqual((stored.get('loadBalancer')?.get(lbArn) as LoadBalancerRecord).classic, { drainingTimeoutSeconds: 120, crossZone: true });
    assert.deepEqual((stored.get('loadBalancer')?.get(lbArn) as LoadBalancerRecord).tags, [{ key: 'team', value: 'web' }], 'the old tags are dropped');
    assert.deepEqual((stored.get('targetGroup')?.get(tgArn) as TargetGroupRecord).tags, []);
    await cp.close();
    const commits = store.commits;
    const again = new ControlPlane({ clock: new FakeClock(), store, dataPlanes: [new FakeDataPlane()] });
    await again.start();
    assert.equal(store.commits, commits, 'nothing left to move');
    assert.deepEqual(again.describeLoadBalancers({ type: 'classic' })[0]?.classic, { drainingTimeoutSeconds: 120, crossZone: true });
  });

  test('a group no listener uses reports Target.NotInUse and is not health-checked', async () => {
    const s = await setup();
    const other = await s.cp.createTargetGroup({ name: 'spare', protocol: 'HTTP', port: 80, targetType: 'ip' });
    await s.cp.registerTargets(other.arn, [{ id: '127.0.0.2' }]);
    assert.equal(s.cp.describeTargetHealth(other.arn)[0]?.health.reason, 'Target.NotInUse');
    assert.ok(!s.health.targets.some((t) => t.host === '127.0.0.2'));
  });
});
