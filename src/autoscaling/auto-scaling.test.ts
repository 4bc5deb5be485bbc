import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { FakeDataPlane } from '../../test/fakes/fake-data-plane.ts';
import { FakeHealthChecker } from '../../test/fakes/fake-health-checker.ts';
import { FakeInstanceRunner } from '../../test/fakes/fake-instance-runner.ts';
import { ControlPlane } from '../control/control-plane.ts';
import { targetKey } from '../domain/resources.ts';
import { InMemoryStateStore } from '../store/in-memory-state-store.ts';
import { AutoScaling } from './auto-scaling.ts';
import type { LifecycleEvent } from './events.ts';

const USER_DATA = Buffer.from('#!/bin/sh\nexec sleep 60\n').toString('base64');

/** Lets queued work (promise chains, the serial queues) run. */
async function settle(rounds = 30): Promise<void> {
  for (let n = 0; n < rounds; n++) await new Promise<void>((resolve) => setImmediate(resolve));
}

async function setup(options: { delay?: number; store?: InMemoryStateStore; runner?: FakeInstanceRunner; clock?: FakeClock } = {}) {
  const clock = options.clock ?? new FakeClock();
  const store = options.store ?? new InMemoryStateStore();
  const dp = new FakeDataPlane();
  const health = new FakeHealthChecker();
  const cp = new ControlPlane({ clock, store, dataPlanes: [dp], healthChecker: health });
  await cp.start();
  const runner = options.runner ?? new FakeInstanceRunner(clock);
  const as = new AutoScaling({ clock, store, control: cp, runner, engine: { tickMs: 1000, launchBackoffBaseMs: 1000 }, log: (e) => { if (process.env['AS_DEBUG'] !== undefined) console.log(JSON.stringify(e)); } });
  await as.start();
  const lifecycle: LifecycleEvent[] = [];
  as.events.on('autoscaling:lifecycle', (e) => lifecycle.push(e));
  let tg = cp.describeTargetGroups().find((g) => g.name === 'app');
  if (tg === undefined) {
    const lb = await cp.createLoadBalancer({ name: 'web' });
    tg = await cp.createTargetGroup({
      name: 'app',
      protocol: 'HTTP',
      port: 80,
      targetType: 'instance',
      healthCheck: { intervalSeconds: 5, timeoutSeconds: 2, healthyThresholdCount: 2, unhealthyThresholdCount: 2 },
      attributes: { 'deregistration_delay.timeout_seconds': String(options.delay ?? 30) },
    });
    await cp.createListener({ loadBalancerArn: lb.arn, protocol: 'HTTP', port: 8080, defaultActions: [{ type: 'forward', targetGroupArn: tg.arn }] });
  }
  const tgArn = tg.arn;
  const keyOf = (id: string) => targetKey(tgArn, id, cp.describeTargetHealth(tgArn).find((t) => t.id === id)?.port ?? 0);
  const healthOf = (id: string) => cp.describeTargetHealth(tgArn).find((t) => t.id === id)?.health.state;
  const members = (group = 'g') => as.describeAutoScalingGroups([group])[0]?.instances ?? [];
  /** Passes every registered target's health checks. */
  const allHealthy = () => {
    for (const t of cp.describeTargetHealth(tgArn)) if (t.health.state === 'initial') health.pass(targetKey(tgArn, t.id, t.port), 2);
  };
  /** Moves time on in steps, letting the engine act in between. */
  const run = async (ms: number, step = 500) => {
    for (let t = 0; t < ms; t += step) {
      clock.advance(step);
      await settle();
    }
  };
  const close = async () => {
    await as.close();
    await cp.close();
  };
  return { clock, store, dp, health, cp, runner, as, tgArn, keyOf, healthOf, members, allHealthy, run, lifecycle, close };
}

async function group(s: Awaited<ReturnType<typeof setup>>, desired: number, extra: Record<string, unknown> = {}) {
  const lt = await s.as.createLaunchTemplate({ name: 'app', data: { userData: USER_DATA, stopTimeoutSeconds: 5 } });
  await s.as.createAutoScalingGroup({ name: 'g', launchTemplate: { id: lt.id, version: '$Latest' }, minSize: 0, maxSize: 6, desiredCapacity: desired, targetGroupArns: [s.tgArn], ...extra });
  await s.run(1000);
  s.allHealthy();
  await s.run(1000);
  s.allHealthy();
  await s.run(500);
  return lt;
}

describe('Auto Scaling groups of processes', () => {
  test('a group launches its desired capacity, registers each instance by id on its own port, InService once registered', async () => {
    const s = await setup();
    await group(s, 2);
    const members = s.members();
    assert.equal(members.length, 2);
    assert.deepEqual(members.map((i) => i.lifecycleState), ['InService', 'InService']);
    for (const i of members) {
      assert.match(i.instanceId, /^i-[0-9a-f]{17}$/);
      assert.equal(s.healthOf(i.instanceId), 'healthy');
    }
    assert.equal(s.runner.launches.length, 2);
    assert.equal(s.runner.launches[0]?.group, 'g');
    assert.ok('script' in (s.runner.launches[0]?.run ?? {}), 'user data runs as a script');
    const activities = s.as.describeScalingActivities({ group: 'g' });
    assert.equal(activities.length, 2);
    assert.ok(activities.every((a) => a.statusCode === 'Successful' && a.description.startsWith('Launching a new EC2 instance: i-')));
    await s.close();
  });

  test('scale-in: the instance is deregistered, its drain ends, and only then is it sent SIGTERM', async () => {
    const s = await setup({ delay: 30 });
    await group(s, 2);
    // A request in flight on each instance.
    for (const i of s.members()) s.dp.request(s.keyOf(i.instanceId), 1);
    await s.as.setDesiredCapacity('g', 1);
    await s.run(2000);
    const a = s.members().find((i) => i.lifecycleState === 'Terminating');
    const b = s.members().find((i) => i.lifecycleState === 'InService');
    assert.ok(a !== undefined && b !== undefined, 'one instance leaves, one stays');
    assert.equal(s.healthOf(a.instanceId), 'draining');
    assert.deepEqual(s.runner.signalsOf(a.instanceId), [], 'no signal while its drain runs');
    const activity = s.as.describeScalingActivities({ group: 'g' }).find((x) => x.description === `Terminating EC2 instance: ${a.instanceId}`);
    assert.equal(activity?.statusCode, 'WaitingForELBConnectionDraining');
    s.dp.request(s.keyOf(a.instanceId), -1); // the request completes; the drain ends idle
    await s.run(1500);
    assert.deepEqual(s.runner.signalsOf(a.instanceId), ['SIGTERM']);
    assert.deepEqual(s.members().map((i) => i.instanceId), [b.instanceId]);
    const done = s.as.describeScalingActivities({ group: 'g', activityIds: [activity?.activityId ?? ''] })[0];
    assert.equal(done?.statusCode, 'Successful');
    assert.match(done?.cause ?? '', /desired capacity from 2 to 1/);
    assert.deepEqual(
      s.lifecycle.filter((e) => e.instanceId === a.instanceId).map((e) => e.to).slice(-3),
      ['Terminating', 'Terminating:Proceed', 'Terminated'],
    );
    await s.close();
  });

  test('a terminating hook holds the instance in Terminating:Wait until CompleteLifecycleAction; a heartbeat extends it; the default result applies at the timeout', async () => {
    const s = await setup({ delay: 0 });
    await group(s, 2);
    await s.as.putLifecycleHook({ group: 'g', name: 'hold', transition: 'autoscaling:EC2_INSTANCE_TERMINATING', heartbeatTimeoutSeconds: 60, defaultResult: 'CONTINUE' });
    const [a, b] = s.members();
    assert.ok(a !== undefined && b !== undefined);
    await s.as.terminateInstanceInAutoScalingGroup(a.instanceId, true);
    await s.run(1000);
    assert.equal(s.members().find((i) => i.instanceId === a.instanceId)?.lifecycleState, 'Terminating:Wait');
    await s.run(50_000);
    await s.as.recordLifecycleActionHeartbeat({ group: 'g', hookName: 'hold', instanceId: a.instanceId });
    await s.run(30_000);
    assert.equal(s.members().find((i) => i.instanceId === a.instanceId)?.lifecycleState, 'Terminating:Wait', 'the heartbeat at 51 s holds it past 60 s');
    assert.deepEqual(s.runner.signalsOf(a.instanceId), []);
    await s.as.completeLifecycleAction({ group: 'g', hookName: 'hold', instanceId: a.instanceId, result: 'CONTINUE' });
    await s.run(1000);
    assert.deepEqual(s.runner.signalsOf(a.instanceId), ['SIGTERM']);
    assert.equal(s.as.describeAutoScalingGroups(['g'])[0]?.group.desiredCapacity, 1, 'ShouldDecrementDesiredCapacity');
    // Without a call, the default result at the heartbeat timeout.
    await s.as.terminateInstanceInAutoScalingGroup(b.instanceId, false);
    await s.run(1000);
    assert.equal(s.members().find((i) => i.instanceId === b.instanceId)?.lifecycleState, 'Terminating:Wait');
    await s.run(61_000);
    assert.deepEqual(s.runner.signalsOf(b.instanceId), ['SIGTERM'], 'CONTINUE at the timeout');
    await s.close();
  });

  test('standby: the instance drains and keeps running; ExitStandby puts it back; desired capacity follows ShouldDecrementDesiredCapacity', async () => {
    const s = await setup({ delay: 30 });
    await group(s, 2);
    const [a] = s.members();
    assert.ok(a !== undefined);
    s.dp.request(s.keyOf(a.instanceId), 1);
    await s.as.enterStandby('g', [a.instanceId], true);
    await s.run(1000);
    assert.equal(s.members().find((i) => i.instanceId === a.instanceId)?.lifecycleState, 'EnteringStandby');
    s.dp.request(s.keyOf(a.instanceId), -1);
    await s.run(1000);
    assert.equal(s.members().find((i) => i.instanceId === a.instanceId)?.lifecycleState, 'Standby');
    assert.equal(s.as.describeAutoScalingGroups(['g'])[0]?.group.desiredCapacity, 1);
    assert.equal(s.members().length, 2, 'no replacement was launched');
    assert.ok(s.runner.isRunning(a.instanceId), 'the process runs on in Standby');
    assert.deepEqual(s.runner.signalsOf(a.instanceId), []);
    await s.as.exitStandby('g', [a.instanceId]);
    await s.run(1000);
    s.allHealthy();
    await s.run(1000);
    assert.equal(s.members().find((i) => i.instanceId === a.instanceId)?.lifecycleState, 'InService');
    assert.equal(s.as.describeAutoScalingGroups(['g'])[0]?.group.desiredCapacity, 2);
    assert.equal(s.runner.launches.length, 2);
    // Without decrementing, a replacement is launched while the instance is in Standby.
    await s.as.enterStandby('g', [a.instanceId], false);
    s.dp.request(s.keyOf(a.instanceId), 1);
    s.dp.request(s.keyOf(a.instanceId), -1);
    await s.run(2000);
    assert.equal(s.runner.launches.length, 3);
    await s.close();
  });

  test('a crashed instance is replaced; an instance failing its ELB checks is drained and replaced', async () => {
    const s = await setup({ delay: 0 });
    await group(s, 2, { healthCheckType: 'ELB', healthCheckGracePeriodSeconds: 10 });
    const [a, b] = s.members();
    assert.ok(a !== undefined && b !== undefined);
    await s.run(15_000); // past the launch window and the grace period
    s.runner.exit(a.instanceId, 1);
    await s.run(2000);
    assert.ok(!s.members().some((i) => i.instanceId === a.instanceId));
    assert.equal(s.runner.launches.length, 3);
    assert.match(s.as.describeScalingActivities({ group: 'g' }).find((x) => x.description.includes(a.instanceId) && x.description.startsWith('Terminating'))?.cause ?? '', /EC2 health check/);
    // A's replacement is not ready yet: no more than a tenth of the group (one) is replaced at a time.
    s.health.fail(s.keyOf(b.instanceId), 'Target.Timeout', 2);
    await s.run(2000);
    assert.deepEqual(s.runner.signalsOf(b.instanceId), [], 'B waits while the replacement is not healthy');
    s.allHealthy();
    await s.run(12_000); // healthy, then warmed up (the group's warm-up is its grace period, 10 s)
    assert.deepEqual(s.runner.signalsOf(b.instanceId), ['SIGTERM']);
    assert.equal(s.runner.launches.length, 4);
    await s.close();
  });

  test('a template whose process exits at once backs off exponentially, and the activity says why', async () => {
    const s = await setup();
    const lt = await s.as.createLaunchTemplate({ name: 'bad', data: { userData: USER_DATA } });
    await s.as.createAutoScalingGroup({ name: 'g', launchTemplate: { id: lt.id }, minSize: 1, maxSize: 1, targetGroupArns: [s.tgArn] });
    const launchTimes: number[] = [];
    for (let t = 0; t < 40_000; t += 100) {
      for (const id of s.runner.running()) {
        launchTimes.push(s.clock.now());
        s.runner.exit(id, 3);
      }
      s.clock.advance(100);
      await settle(10);
    }
    assert.ok(launchTimes.length >= 4 && launchTimes.length <= 7, `launches in 40 s: ${launchTimes.length}`);
    const gaps = launchTimes.slice(1).map((t, n) => t - (launchTimes[n] ?? 0));
    assert.ok((gaps.at(-1) ?? 0) >= 3 * (gaps[0] ?? 0), `the pauses grow: ${gaps.join(', ')}`);
    const failed = s.as.describeScalingActivities({ group: 'g' }).find((x) => x.statusCode === 'Failed');
    assert.match(failed?.statusMessage ?? '', /exited with code 3 .* waits \d+ s before the next launch/);
    await s.close();
  });

  test('instance refresh replaces every instance with the new version, keeping 100 % healthy with MaxHealthyPercentage 200', async () => {
    const s = await setup({ delay: 0 });
    const lt = await group(s, 3);
    const before = s.members().map((i) => i.instanceId);
    await s.as.createLaunchTemplateVersion({ template: { id: lt.id }, data: { userData: USER_DATA, environment: { V: '2' } } });
    const id = await s.as.startInstanceRefresh({ group: 'g', preferences: { minHealthyPercentage: 100, maxHealthyPercentage: 200, instanceWarmupSeconds: 0 } });
    for (let n = 0; n < 30; n++) {
      await s.run(1000);
      // Sampled before the new instances pass their checks, and after.
      const before = s.cp.describeTargetHealth(s.tgArn).filter((t) => t.health.state === 'healthy').length;
      s.allHealthy();
      await s.run(500);
      const after = s.cp.describeTargetHealth(s.tgArn).filter((t) => t.health.state === 'healthy').length;
      assert.ok(before >= 3 && after >= 3, `at least 3 healthy at every step (saw ${before}, then ${after})`);
      if (s.as.describeInstanceRefreshes('g', [id])[0]?.status === 'Successful') break;
    }
    assert.equal(s.runner.launches.length, 6, 'three new instances, no more (nothing launched only to be scaled in)');
    const r = s.as.describeInstanceRefreshes('g', [id])[0];
    assert.equal(r?.status, 'Successful');
    assert.equal(r?.percentageComplete, 100);
    const after = s.members();
    assert.equal(after.length, 3);
    assert.ok(after.every((i) => !before.includes(i.instanceId) && i.launchTemplate?.version === 2));
    await s.close();
  });

  test('a restart adopts the running instances and resumes a scale-in drain', async () => {
    const clock = new FakeClock();
    const store = new InMemoryStateStore();
    const runner = new FakeInstanceRunner(clock);
    const s = await setup({ store, runner, clock, delay: 30 });
    await group(s, 2);
    for (const i of s.members()) s.dp.request(s.keyOf(i.instanceId), 1);
    await s.as.setDesiredCapacity('g', 1);
    await s.run(1000);
    const a = s.members().find((i) => i.lifecycleState === 'Terminating');
    const b = s.members().find((i) => i.lifecycleState === 'InService');
    assert.ok(a !== undefined && b !== undefined);
    assert.equal(s.healthOf(a.instanceId), 'draining');
    await s.close();
    const t = await setup({ store, runner, clock, delay: 30 });
    await t.run(2000);
    assert.equal(t.members().find((i) => i.instanceId === a.instanceId)?.lifecycleState, 'Terminating', 'still draining after the restart');
    assert.deepEqual(runner.signalsOf(a.instanceId), []);
    await t.run(30_000); // the restored drain ends at its deadline
    assert.deepEqual(runner.signalsOf(a.instanceId), ['SIGTERM'], 'stopped once, after its drain');
    assert.deepEqual(runner.signalsOf(b.instanceId), [], 'the adopted instance keeps running');
    assert.deepEqual(t.members().map((i) => [i.instanceId, i.lifecycleState]), [[b.instanceId, 'InService']]);
    assert.equal(runner.launches.length, 2, 'nothing launched twice');
    assert.equal(t.healthOf(b.instanceId) !== undefined, true, 'still registered');
    await t.close();
  });

  test('a launching hook holds a new instance in Pending:Wait, unregistered; CONTINUE puts it in service, ABANDON terminates it and launches another', async () => {
    const s = await setup({ delay: 0 });
    const lt = await s.as.createLaunchTemplate({ name: 'app', data: { userData: USER_DATA } });
    await s.as.createAutoScalingGroup({
      name: 'g',
      launchTemplate: { id: lt.id },
      minSize: 0,
      maxSize: 2,
      desiredCapacity: 1,
      targetGroupArns: [s.tgArn],
      lifecycleHooks: [{ group: 'g', name: 'warm', transition: 'autoscaling:EC2_INSTANCE_LAUNCHING', heartbeatTimeoutSeconds: 30 }],
    });
    await s.run(1000);
    const [held] = s.members();
    assert.equal(held?.lifecycleState, 'Pending:Wait');
    assert.equal(s.healthOf(held?.instanceId ?? ''), undefined, 'not registered while held');
    await s.as.completeLifecycleAction({ group: 'g', hookName: 'warm', instanceId: held?.instanceId ?? '', result: 'ABANDON' });
    await s.run(1000);
    assert.deepEqual(s.runner.signalsOf(held?.instanceId ?? ''), ['SIGTERM'], 'an abandoned launch is stopped');
    const [next] = s.members();
    assert.ok(next !== undefined && next.instanceId !== held?.instanceId, 'another is launched');
    assert.equal(next.lifecycleState, 'Pending:Wait');
    await s.as.completeLifecycleAction({ group: 'g', hookName: 'warm', instanceId: next.instanceId, result: 'CONTINUE' });
    await s.run(1000);
    assert.equal(s.members()[0]?.lifecycleState, 'InService');
    assert.equal(s.healthOf(next.instanceId), 'initial', 'registered once the hook let it go');
    // The default result (ABANDON) at the heartbeat timeout.
    await s.as.setDesiredCapacity('g', 2);
    await s.run(1000);
    const third = s.members().find((i) => i.lifecycleState === 'Pending:Wait');
    assert.ok(third !== undefined);
    await s.run(31_000);
    assert.deepEqual(s.runner.signalsOf(third.instanceId), ['SIGTERM']);
    await s.close();
  });

  test('attach and detach: a server ebb did not launch joins the group and its target group, and leaves after its drain without a signal', async () => {
    const s = await setup({ delay: 30 });
    await group(s, 1);
    await s.cp.putInstance({ id: 'i-0aaaaaaaaaaaaaaa1', address: '127.0.0.1' });
    await s.as.attachInstances('g', ['i-0aaaaaaaaaaaaaaa1']);
    await s.run(1000);
    const attached = s.members().find((i) => i.instanceId === 'i-0aaaaaaaaaaaaaaa1');
    assert.equal(attached?.lifecycleState, 'InService');
    assert.equal(attached?.port, 80, "registered on its target group's port");
    assert.equal(s.as.describeAutoScalingGroups(['g'])[0]?.group.desiredCapacity, 2);
    assert.equal(s.healthOf('i-0aaaaaaaaaaaaaaa1'), 'initial');
    await assert.rejects(s.as.attachInstances('g', ['i-0bbbbbbbbbbbbbbb2']), /not one ebb knows: declare it under instances:/);
    s.dp.request(s.keyOf('i-0aaaaaaaaaaaaaaa1'), 1);
    const [activity] = await s.as.detachInstances('g', ['i-0aaaaaaaaaaaaaaa1'], true);
    assert.equal(activity?.description, 'Detaching EC2 instance: i-0aaaaaaaaaaaaaaa1');
    await s.run(1000);
    assert.equal(s.members().find((i) => i.instanceId === 'i-0aaaaaaaaaaaaaaa1')?.lifecycleState, 'Detaching');
    assert.equal(s.healthOf('i-0aaaaaaaaaaaaaaa1'), 'draining');
    s.dp.request(s.keyOf('i-0aaaaaaaaaaaaaaa1'), -1);
    await s.run(1000);
    assert.equal(s.members().some((i) => i.instanceId === 'i-0aaaaaaaaaaaaaaa1'), false);
    assert.equal(s.as.describeAutoScalingGroups(['g'])[0]?.group.desiredCapacity, 1);
    assert.equal(s.runner.launches.length, 1, 'no replacement: the desired capacity was decremented');
    assert.ok(s.cp.describeInstances().some((i) => i.id === 'i-0aaaaaaaaaaaaaaa1'), 'the declared server stays known to the control plane');
    await s.close();
  });

  test('DeleteAutoScalingGroup: refused with instances; ForceDelete drains every instance before it stops it, skipping the hooks, then the group is gone', async () => {
    const s = await setup({ delay: 30 });
    await group(s, 2);
    await s.as.putLifecycleHook({ group: 'g', name: 'hold', transition: 'autoscaling:EC2_INSTANCE_TERMINATING', heartbeatTimeoutSeconds: 300 });
    await assert.rejects(s.as.deleteAutoScalingGroup('g', false), /while there are instances still in the group/);
    const ids = s.members().map((i) => i.instanceId);
    for (const id of ids) s.dp.request(s.keyOf(id), 1);
    await s.as.deleteAutoScalingGroup('g', true);
    await s.run(2000);
    assert.deepEqual(s.members().map((i) => i.lifecycleState), ['Terminating', 'Terminating']);
    assert.deepEqual(ids.flatMap((id) => s.runner.signalsOf(id)), [], 'nothing is signalled while its drain runs');
    for (const id of ids) s.dp.request(s.keyOf(id), -1);
    await s.run(2000);
    for (const id of ids) assert.deepEqual(s.runner.signalsOf(id), ['SIGTERM']);
    assert.deepEqual(s.as.describeAutoScalingGroups(['g']), []);
    assert.deepEqual(s.cp.describeTargetHealth(s.tgArn), []);
    assert.ok(!s.cp.describeInstances().some((i) => ids.includes(i.id)), 'the control plane forgot the terminated instances');
    await s.close();
  });

  test('refused commands change nothing: min above max, desired outside, unknown template or target group', async () => {
    const s = await setup();
    const lt = await s.as.createLaunchTemplate({ name: 'app', data: { userData: USER_DATA } });
    const base = { name: 'g', launchTemplate: { id: lt.id }, minSize: 1, maxSize: 2 };
    await assert.rejects(s.as.createAutoScalingGroup({ ...base, minSize: 3 }), /MinSize \(3\) must be less than or equal to MaxSize \(2\)/);
    await assert.rejects(s.as.createAutoScalingGroup({ ...base, desiredCapacity: 5 }), /Desired capacity:5 must be between/);
    await assert.rejects(s.as.createAutoScalingGroup({ ...base, launchTemplate: { name: 'nope' } }), (e: Error & { code?: string }) => e.code === 'ValidationError');
    await assert.rejects(s.as.createAutoScalingGroup({ ...base, targetGroupArns: [`${s.tgArn}x`] }), /Provided Target Groups may not be valid/);
    assert.deepEqual(s.as.describeAutoScalingGroups(), []);
    assert.equal(s.runner.launches.length, 0);
    await s.as.createAutoScalingGroup(base);
    await assert.rejects(s.as.createAutoScalingGroup(base), (e: Error & { code?: string }) => e.code === 'AlreadyExists');
    await assert.rejects(s.as.setDesiredCapacity('g', 3), /above max value 2/);
    await assert.rejects(s.as.startInstanceRefresh({ group: 'g', preferences: { minHealthyPercentage: 100, maxHealthyPercentage: 100 } }), /leaves no room/);
    assert.equal(s.as.describeAutoScalingGroups(['g'])[0]?.group.desiredCapacity, 1);
    assert.deepEqual(s.as.describeInstanceRefreshes('g'), []);
    await s.close();
  });

  test('a small group at 100/110 still launches before it terminates: one at a time, never below 100 % ready', async () => {
    const s = await setup({ delay: 0 });
    const lt = await group(s, 3);
    await s.as.createLaunchTemplateVersion({ template: { id: lt.id }, data: { userData: USER_DATA, environment: { V: '2' } } });
    const id = await s.as.startInstanceRefresh({ group: 'g', preferences: { minHealthyPercentage: 100, maxHealthyPercentage: 110, instanceWarmupSeconds: 0 } });
    for (let n = 0; n < 40 && s.as.describeInstanceRefreshes('g', [id])[0]?.status !== 'Successful'; n++) {
      await s.run(500);
      assert.ok(s.members().filter((i) => i.departure === undefined).length <= 4, 'at most one above the desired capacity');
      const healthy = s.cp.describeTargetHealth(s.tgArn).filter((t) => t.health.state === 'healthy').length;
      assert.ok(healthy >= 3, `never below 3 healthy (saw ${healthy})`);
      s.allHealthy();
    }
    assert.equal(s.as.describeInstanceRefreshes('g', [id])[0]?.status, 'Successful');
    assert.equal(s.runner.launches.length, 6);
    await s.close();
  });

  test('an instance deregistered from a target group detached from its group is not signalled until that drain ends too', async () => {
    const s = await setup({ delay: 300 });
    await group(s, 1);
    const [a] = s.members();
    assert.ok(a !== undefined);
    s.dp.request(s.keyOf(a.instanceId), 1);
    await s.as.detachLoadBalancerTargetGroups('g', [s.tgArn]);
    await s.run(1000);
    assert.equal(s.healthOf(a.instanceId), 'draining');
    await s.as.terminateInstanceInAutoScalingGroup(a.instanceId, false);
    await s.run(3000);
    assert.deepEqual(s.runner.signalsOf(a.instanceId), [], 'no SIGTERM while the detached group still drains it');
    s.dp.request(s.keyOf(a.instanceId), -1);
    await s.run(2000);
    assert.deepEqual(s.runner.signalsOf(a.instanceId), ['SIGTERM']);
    await s.close();
  });

  test('ForceDelete skips the terminating hook of an instance already draining when it came', async () => {
    const s = await setup({ delay: 30 });
    await group(s, 2);
    await s.as.putLifecycleHook({ group: 'g', name: 'hold', transition: 'autoscaling:EC2_INSTANCE_TERMINATING', heartbeatTimeoutSeconds: 3600 });
    for (const i of s.members()) s.dp.request(s.keyOf(i.instanceId), 1);
    await s.as.setDesiredCapacity('g', 1);
    await s.run(1000);
    const leaving = s.members().find((i) => i.lifecycleState === 'Terminating');
    assert.ok(leaving !== undefined);
    await s.as.deleteAutoScalingGroup('g', true);
    for (const i of s.members()) s.dp.request(s.keyOf(i.instanceId), -1);
    await s.run(3000);
    assert.deepEqual(s.runner.signalsOf(leaving.instanceId), ['SIGTERM'], 'not held in Terminating:Wait');
    assert.deepEqual(s.as.describeAutoScalingGroups(['g']), []);
    await s.close();
  });

  test('a launch that cannot start counts once per round however many instances it was for, with one activity each', async () => {
    const s = await setup();
    const lt = await s.as.createLaunchTemplate({ name: 'app', data: { userData: USER_DATA } });
    s.runner.failLaunches = new Error('spawn ENOENT');
    await s.as.createAutoScalingGroup({ name: 'g', launchTemplate: { id: lt.id }, minSize: 0, maxSize: 5, desiredCapacity: 5 });
    await s.run(500);
    assert.equal(s.runner.launches.length, 1, 'the round stops at its first failure');
    const failed = s.as.describeScalingActivities({ group: 'g' }).filter((a) => a.statusCode === 'Failed');
    assert.equal(failed.length, 1);
    assert.match(failed[0]?.statusMessage ?? '', /spawn ENOENT.*waits 1 s before the next launch \(failure 1 in a row\)/);
    await s.close();
  });

  test('after a restart, a lifecycle action still waiting is notified again with its token', async () => {
    const messages: Array<Record<string, string>> = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        messages.push(JSON.parse(body) as Record<string, string>);
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    try {
      const clock = new FakeClock();
      const store = new InMemoryStateStore();
      const runner = new FakeInstanceRunner(clock);
      const s = await setup({ store, runner, clock, delay: 0 });
      await group(s, 1);
      await s.as.putLifecycleHook({ group: 'g', name: 'hold', transition: 'autoscaling:EC2_INSTANCE_TERMINATING', heartbeatTimeoutSeconds: 300, notificationTargetArn: url });
      await s.as.setDesiredCapacity('g', 0);
      await s.run(1000);
      const waitFor = async (n: number) => {
        for (let k = 0; k < 100 && messages.length < n; k++) await new Promise((r) => setTimeout(r, 20));
      };
      await waitFor(2);
      const first = messages.find((m) => m['LifecycleTransition'] === 'autoscaling:EC2_INSTANCE_TERMINATING');
      assert.ok(first !== undefined, 'the action was notified');
      assert.equal(messages[0]?.['Event'], 'autoscaling:TEST_NOTIFICATION');
      await s.close();
      const t = await setup({ store, runner, clock, delay: 0 });
      await waitFor(3);
      const again = messages.filter((m) => m['LifecycleActionToken'] === first['LifecycleActionToken']);
      assert.equal(again.length, 2, 'notified again after the restart, with the same token');
      await t.as.completeLifecycleAction({ group: 'g', hookName: 'hold', token: first['LifecycleActionToken'] ?? '', result: 'CONTINUE' });
      await t.run(1000);
      assert.deepEqual(runner.running(), []);
      await t.close();
    } finally {
      server.close();
    }
  });
});

