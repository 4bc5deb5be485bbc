import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { FakeDataPlane } from '../../test/fakes/fake-data-plane.ts';
import { FakeHealthChecker } from '../../test/fakes/fake-health-checker.ts';
import { EbbError } from '../shared/errors.ts';
import { InMemoryStateStore } from '../store/in-memory-state-store.ts';
import { applyDeclared, checkDeclared } from './apply-declared.ts';
import { ControlPlane } from './control-plane.ts';
import type { DeclaredState } from './declared-state.ts';

function declared(o: { address?: string; delay?: string; targets?: number[]; groups?: string[] } = {}): DeclaredState {
  const groups = o.groups ?? ['web'];
  return {
    instances: [],
    loadBalancers: [
      {
        name: 'web',
        type: 'application',
        attributes: {},
        listeners: [{ protocol: 'HTTP', port: 8080, address: o.address ?? '127.0.0.1', targetGroup: groups[0] ?? 'web' }],
      },
    ],
    targetGroups: groups.map((name) => ({
      name,
      protocol: 'HTTP' as const,
      port: 80,
      targetType: 'ip' as const,
      healthCheck: {},
      attributes: { 'deregistration_delay.timeout_seconds': o.delay ?? '30' },
      targets: (o.targets ?? [3001, 3002]).map((port) => ({ id: '127.0.0.1', port })),
    })),
  };
}

async function setup() {
  const dp = new FakeDataPlane();
  const cp = new ControlPlane({ clock: new FakeClock(), store: new InMemoryStateStore(), dataPlanes: [dp], healthChecker: new FakeHealthChecker() });
  await cp.start();
  return { cp, dp };
}

test('the file is applied as a difference: changed attributes, a moved address, a dropped target drains', async () => {
  const { cp, dp } = await setup();
  const first = await applyDeclared(cp, declared());
  assert.deepEqual(first.created, ['target group web', 'load balancer web', 'listener web:8080']);
  assert.equal(first.registered, 2);
  const tg = cp.describeTargetGroups({ names: ['web'] })[0]!;
  dp.request(`${tg.arn}|127.0.0.1|3002`, 1); // 3002 is busy, so its drain is visible

  const second = await applyDeclared(cp, declared({ address: '0.0.0.0', delay: '7', targets: [3001] }));
  assert.deepEqual(second.changed, ['target group web', 'listener web:8080']);
  assert.equal(second.deregistered, 1);
  assert.equal(cp.describeTargetGroupAttributes(tg.arn)['deregistration_delay.timeout_seconds'], '7');
  const lb = cp.describeLoadBalancers()[0]!;
  const listeners = cp.describeListeners({ loadBalancerArn: lb.arn });
  assert.deepEqual(listeners.map((l) => [l.address, l.port, l.source]), [['0.0.0.0', 8080, 'config']]);
  assert.equal(cp.describeTargetHealth(tg.arn, [{ id: '127.0.0.1', port: 3002 }])[0]?.health.state, 'draining');

  const third = await applyDeclared(cp, declared({ address: '0.0.0.0', delay: '7', targets: [3001] }));
  assert.deepEqual([third.created, third.changed, third.removed, third.registered, third.deregistered], [[], [], [], 0, 0], 'the same file changes nothing');
});

test('targets and groups created through the API are left alone', async () => {
  const { cp } = await setup();
  await applyDeclared(cp, declared());
  const tg = cp.describeTargetGroups({ names: ['web'] })[0]!;
  await cp.registerTargets(tg.arn, [{ id: '127.0.0.1', port: 3009 }]);
  const other = await cp.createTargetGroup({ name: 'api-made', protocol: 'HTTP', port: 80, targetType: 'ip' });
  await applyDeclared(cp, declared({ targets: [3001] }));
  assert.ok(cp.registrationsOf(tg.arn).some((r) => r.port === 3009 && !r.draining), 'an API-registered target stays');
  assert.ok(cp.describeTargetGroups({ arns: [other.arn] }).length === 1, 'an API-created group stays');
});

test('a group the file no longer declares goes once its listener moves away', async () => {
  const { cp } = await setup();
  await applyDeclared(cp, declared({ groups: ['web', 'old'] }));
  const result = await applyDeclared(cp, declared({ groups: ['web'] }));
  assert.deepEqual(result.removed, ['target group old']);
  assert.ok(!cp.describeTargetGroups().some((tg) => tg.name === 'old'));
});

test('checks refuse a change before anything is applied', async () => {
  const { cp } = await setup();
  await applyDeclared(cp, declared());
  const tg = cp.describeTargetGroups({ names: ['web'] })[0]!;
  const moved: DeclaredState = {
    ...declared(),
    loadBalancers: [{ ...declared().loadBalancers[0]!, listeners: [{ protocol: 'HTTP', port: 9999, address: '127.0.0.1', targetGroup: 'web' }] }],
  };
  await assert.rejects(
    checkDeclared(cp, moved, { checkPort: () => Promise.resolve('EADDRINUSE') }),
    (e: unknown) => EbbError.is(e) && e.code === 'ConfigInvalid' && /9999.*EADDRINUSE/.test(e.message),
  );
  const changedPort: DeclaredState = { ...declared(), targetGroups: [{ ...declared().targetGroups[0]!, port: 81 }] };
  await assert.rejects(applyDeclared(cp, changedPort), (e: unknown) => EbbError.is(e) && /cannot change in place/.test(e.message));
  assert.equal(cp.describeTargetGroups({ arns: [tg.arn] })[0]?.port, 80, 'nothing changed');
});
