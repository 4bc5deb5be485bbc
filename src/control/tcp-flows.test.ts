import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { FakeDataPlane } from '../../test/fakes/fake-data-plane.ts';
import { FakeHealthChecker } from '../../test/fakes/fake-health-checker.ts';
import { InMemoryStateStore } from '../store/in-memory-state-store.ts';
import { targetKey } from '../domain/resources.ts';
import { ControlPlane } from './control-plane.ts';
import type { DrainRecord } from './outputs.ts';

/** A network load balancer with one TCP listener forwarding to a TCP group of two targets, both healthy. */
async function setup(attributes: Record<string, string>) {
  const clock = new FakeClock();
  const dp = new FakeDataPlane('dp0');
  const health = new FakeHealthChecker();
  const cp = new ControlPlane({ clock, store: new InMemoryStateStore(), dataPlanes: [dp], healthChecker: health });
  await cp.start();
  const drains: DrainRecord[] = [];
  cp.events.on('drain:end', (r) => drains.push(r));
  const lb = await cp.createLoadBalancer({ name: 'nlb', type: 'network' });
  const tg = await cp.createTargetGroup({
    name: 'flows',
    protocol: 'TCP',
    port: 80,
    targetType: 'ip',
    healthCheck: { intervalSeconds: 10, timeoutSeconds: 5, healthyThresholdCount: 2, unhealthyThresholdCount: 2 },
    attributes,
  });
  await cp.createListener({ loadBalancerArn: lb.arn, protocol: 'TCP', port: 9000, defaultActions: [{ type: 'forward', targetGroupArn: tg.arn }] });
  await cp.registerTargets(tg.arn, [
    { id: '127.0.0.1', port: 3001 },
    { id: '127.0.0.1', port: 3002 },
  ]);
  const a = targetKey(tg.arn, '127.0.0.1', 3001);
  const b = targetKey(tg.arn, '127.0.0.1', 3002);
  health.pass(a, 2);
  health.pass(b, 2);
  const stateOf = (port: number) => cp.describeTargetHealth(tg.arn, [{ id: '127.0.0.1', port }])[0]?.health;
  return { clock, dp, health, cp, tg, a, b, drains, stateOf };
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('a TCP group at its drain deadline', () => {
  test('without connection termination the flows are left open, counted in the record, and the target is unused', async () => {
    const s = await setup({ 'deregistration_delay.timeout_seconds': '2' });
    s.dp.tunnel(s.a, 1);
    await s.cp.deregisterTargets(s.tg.arn, [{ id: '127.0.0.1', port: 3001 }]);
    assert.equal(s.stateOf(3001)?.state, 'draining');
    s.clock.advance(2000);
    await settle();
    assert.deepEqual(s.dp.terminated, [], 'no flow is cut');
    assert.equal(s.drains[0]?.outcome, 'deadline');
    assert.equal(s.drains[0]?.flowsLeftOpen, 1);
    assert.equal(s.drains[0]?.tunnelsClosed, 0);
    assert.equal(s.stateOf(3001)?.state, 'unused');
  });

  test('with connection termination the flows are closed at the deadline and counted', async () => {
    const s = await setup({ 'deregistration_delay.timeout_seconds': '2', 'deregistration_delay.connection_termination.enabled': 'true' });
    s.dp.tunnel(s.a, 1);
    await s.cp.deregisterTargets(s.tg.arn, [{ id: '127.0.0.1', port: 3001 }]);
    s.clock.advance(2000);
    await settle();
    assert.deepEqual(s.dp.terminated, [s.a]);
    assert.equal(s.drains[0]?.tunnelsClosed, 1);
    assert.equal(s.drains[0]?.flowsLeftOpen, undefined);
  });

  test('the drain ends early when the last flow closes (NLB waits the whole delay; ebb does not)', async () => {
    const s = await setup({ 'deregistration_delay.timeout_seconds': '300' });
    s.dp.tunnel(s.a, 1);
    await s.cp.deregisterTargets(s.tg.arn, [{ id: '127.0.0.1', port: 3001 }]);
    s.clock.advance(1000);
    s.dp.tunnel(s.a, -1);
    await settle();
    assert.equal(s.drains[0]?.outcome, 'idle');
    assert.equal(s.stateOf(3001)?.state, 'unused');
  });
});

describe('a TCP group target that fails its health checks', () => {
  test('by default its flows are closed as it turns unhealthy', async () => {
    const s = await setup({});
    s.dp.tunnel(s.a, 1);
    s.health.fail(s.a, 'Target.FailedHealthChecks');
    await settle();
    assert.deepEqual(s.dp.terminated, [], 'one failure is below the threshold');
    s.health.fail(s.a, 'Target.FailedHealthChecks');
    await settle();
    assert.equal(s.stateOf(3001)?.state, 'unhealthy');
    assert.deepEqual(s.dp.terminated, [s.a]);
  });

  test('its flows are closed only once every data plane has applied the publication that stops new flows to it', async () => {
    const s = await setup({});
    s.dp.tunnel(s.a, 1);
    s.dp.holdApplies = true; // a busy worker: it has the snapshot but has not answered
    s.health.fail(s.a, 'Target.FailedHealthChecks', 2);
    await settle();
    assert.equal(s.stateOf(3001)?.state, 'unhealthy');
    assert.deepEqual(s.dp.routable(s.tg.arn), ['127.0.0.1:3002'], 'the publication without it went out');
    assert.deepEqual(s.dp.terminated, [], 'its flows wait for that publication to be applied');
    s.dp.releaseApplies();
    await settle();
    assert.deepEqual(s.dp.terminated, [s.a]);
  });

  test('a target that recovers before the publication is applied keeps its flows', async () => {
    const s = await setup({});
    s.dp.tunnel(s.a, 1);
    s.dp.holdApplies = true;
    s.health.fail(s.a, 'Target.FailedHealthChecks', 2);
    await settle();
    s.health.pass(s.a, 2);
    s.dp.releaseApplies();
    await settle();
    assert.deepEqual(s.stateOf(3001), { state: 'healthy' });
    assert.deepEqual(s.dp.terminated, []);
  });

  test('while the group fails open nothing is closed', async () => {
    const s = await setup({});
    s.health.fail(s.b, 'Target.FailedHealthChecks', 2);
    await settle();
    s.dp.terminated.length = 0;
    s.health.fail(s.a, 'Target.FailedHealthChecks', 2);
    await settle();
    assert.deepEqual(s.dp.terminated, [], 'the last routable target failing makes the group fail open');
  });

  test('with termination off and a draining interval it reads unhealthy.draining, then unhealthy, and its flows close', async () => {
    const s = await setup({
      'target_health_state.unhealthy.connection_termination.enabled': 'false',
      'target_health_state.unhealthy.draining_interval_seconds': '30',
    });
    s.dp.tunnel(s.a, 1);
    s.health.fail(s.a, 'Target.FailedHealthChecks', 2);
    await settle();
    assert.equal(s.stateOf(3001)?.state, 'unhealthy.draining');
    assert.equal(s.stateOf(3001)?.reason, 'Target.FailedHealthChecks');
    assert.deepEqual(s.dp.terminated, []);
    assert.deepEqual(s.dp.routable(s.tg.arn), ['127.0.0.1:3002'], 'no new flow goes to it');
    s.clock.advance(30_000);
    await settle();
    assert.equal(s.stateOf(3001)?.state, 'unhealthy');
    assert.deepEqual(s.dp.terminated, [s.a]);
  });

  test('recovering during the draining interval keeps its flows', async () => {
    const s = await setup({
      'target_health_state.unhealthy.connection_termination.enabled': 'false',
      'target_health_state.unhealthy.draining_interval_seconds': '30',
    });
    s.dp.tunnel(s.a, 1);
    s.health.fail(s.a, 'Target.FailedHealthChecks', 2);
    await settle();
    s.health.pass(s.a, 2);
    await settle();
    assert.deepEqual(s.stateOf(3001), { state: 'healthy' });
    s.clock.advance(30_000);
    await settle();
    assert.deepEqual(s.dp.terminated, []);
  });

  test('with termination off and no interval its flows live on', async () => {
    const s = await setup({ 'target_health_state.unhealthy.connection_termination.enabled': 'false' });
    s.dp.tunnel(s.a, 1);
    s.health.fail(s.a, 'Target.FailedHealthChecks', 2);
    await settle();
    assert.equal(s.stateOf(3001)?.state, 'unhealthy');
    s.clock.advance(600_000);
    await settle();
    assert.deepEqual(s.dp.terminated, []);
  });
});
