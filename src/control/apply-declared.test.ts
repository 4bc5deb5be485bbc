import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { FakeDataPlane } from '../../test/fakes/fake-data-plane.ts';
import { FakeHealthChecker } from '../../test/fakes/fake-health-checker.ts';
import { EbbError } from '../shared/errors.ts';
import { InMemoryStateStore } from '../store/in-memory-state-store.ts';
import { applyDeclared, checkDeclared, PartlyAppliedError } from './apply-declared.ts';
import { ControlPlane } from './control-plane.ts';
import { LAST_APPLIED_KEY, type DeclaredState } from './declared-state.ts';

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

async function setup(store = new InMemoryStateStore(), clock = new FakeClock()) {
  const dp = new FakeDataPlane();
  const cp = new ControlPlane({ clock, store, dataPlanes: [dp], healthChecker: new FakeHealthChecker() });
  await cp.start();
  return { cp, dp, store, clock };
}

const at = (port: number) => [{ id: '127.0.0.1', port }];

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

test('a restart with the same file changes nothing: a target deregistered through the API goes on draining', async () => {
  const store = new InMemoryStateStore();
  const clock = new FakeClock();
  const first = await setup(store, clock);
  await applyDeclared(first.cp, declared({ delay: '60' }));
  const tg = first.cp.describeTargetGroups({ names: ['web'] })[0]!;
  first.dp.request(`${tg.arn}|127.0.0.1|3002`, 1);
  await first.cp.deregisterTargets(tg.arn, at(3002));
  await first.cp.modifyTargetGroupAttributes(tg.arn, { 'load_balancing.algorithm.type': 'least_outstanding_requests', 'deregistration_delay.timeout_seconds': '90' });
  await first.cp.close(); // as if killed: the drain is in the store

  clock.advance(10_000);
  const second = await setup(store, clock);
  const result = await applyDeclared(second.cp, declared({ delay: '60' }));
  assert.deepEqual([result.created, result.changed, result.removed, result.registered, result.deregistered, result.applied], [[], [], [], 0, 0, []]);
  assert.equal(result.mergedWith, 'the file as last applied');
  assert.deepEqual(result.kept, [
    'target group web attribute deregistration_delay.timeout_seconds 90, set through the API (the file says 60)',
    'target 127.0.0.1:3002 in target group web draining, deregistered through the API',
  ]);
  const health = second.cp.describeTargetHealth(tg.arn, at(3002))[0];
  assert.equal(health?.health.state, 'draining');
  assert.equal(health?.drain?.deadline, Date.UTC(2026, 0, 1) + 60_000, 'the drain keeps its deadline');
  assert.deepEqual(second.cp.drainRecords().map((r) => r.outcome), [], 'no drain was cancelled');
  assert.equal(second.cp.describeTargetGroupAttributes(tg.arn)['load_balancing.algorithm.type'], 'least_outstanding_requests');
  clock.advance(50_000);
  await second.cp.close();
  assert.deepEqual(second.cp.drainRecords().map((r) => r.outcome), ['deadline'], 'the drain ran to its deadline');
});

test('a state from before ebb kept the applied file: the file wins for what it declares once, then the API is kept', async () => {
  const store = new InMemoryStateStore();
  const first = await setup(store);
  await applyDeclared(first.cp, declared());
  const tg = first.cp.describeTargetGroups({ names: ['web'] })[0]!;
  await first.cp.deregisterTargets(tg.arn, at(3002));
  await first.cp.modifyTargetGroupAttributes(tg.arn, { 'deregistration_delay.timeout_seconds': '90' });
  await first.cp.close();
  await store.commit([{ op: 'delete', kind: 'meta', key: LAST_APPLIED_KEY }]);

  const second = await setup(store);
  assert.equal(second.cp.lastAppliedDeclaration(), null);
  const wins = await applyDeclared(second.cp, declared());
  assert.match(wins.mergedWith, /^nothing: .*the file wins/);
  assert.deepEqual([wins.changed, wins.registered, wins.kept], [['target group web'], 1, []]);
  assert.equal(second.cp.describeTargetGroupAttributes(tg.arn)['deregistration_delay.timeout_seconds'], '30');
  assert.deepEqual(second.cp.lastAppliedDeclaration(), declared(), 'the file is recorded as applied');

  await second.cp.deregisterTargets(tg.arn, at(3002));
  const kept = await applyDeclared(second.cp, declared());
  assert.deepEqual([kept.registered, kept.kept], [0, ['target 127.0.0.1:3002 in target group web deregistered through the API']]);
});

test('an attribute changed through the API is kept until the file changes it; then the file\'s value is set', async () => {
  const { cp } = await setup();
  await applyDeclared(cp, declared());
  const tg = cp.describeTargetGroups({ names: ['web'] })[0]!;
  await cp.modifyTargetGroupAttributes(tg.arn, { 'deregistration_delay.timeout_seconds': '90' });
  await applyDeclared(cp, declared());
  assert.equal(cp.describeTargetGroupAttributes(tg.arn)['deregistration_delay.timeout_seconds'], '90');
  const changed = await applyDeclared(cp, declared({ delay: '45' }));
  assert.deepEqual(changed.applied, ['target group web: set deregistration_delay.timeout_seconds to 45']);
  assert.equal(cp.describeTargetGroupAttributes(tg.arn)['deregistration_delay.timeout_seconds'], '45');
});

test('a change that does not fit what the API set is refused before anything changes', async () => {
  const { cp } = await setup();
  const file = (timeout?: number): DeclaredState => ({
    ...declared(),
    targetGroups: [{ ...declared().targetGroups[0]!, healthCheck: timeout === undefined ? {} : { timeoutSeconds: timeout } }],
  });
  await applyDeclared(cp, file());
  const tg = cp.describeTargetGroups({ names: ['web'] })[0]!;
  await cp.modifyTargetGroup(tg.arn, { intervalSeconds: 5, timeoutSeconds: 2 });
  await assert.rejects(
    applyDeclared(cp, { ...file(8), targetGroups: [{ ...file(8).targetGroups[0]!, targets: [] }] }),
    (e: unknown) => EbbError.is(e) && e.code === 'ConfigInvalid' && /target group 'web'.*timeoutSeconds \(8\).*intervalSeconds \(5\).*Nothing was changed/.test(e.message),
  );
  assert.equal(cp.registrationsOf(tg.arn).filter((r) => !r.draining).length, 2, 'no target was deregistered');
});

test('a change that fails part-way can be undone: the steps made are taken back, the last applied file stays the base', async () => {
  const { cp, dp } = await setup();
  await applyDeclared(cp, declared());
  const tg = cp.describeTargetGroups({ names: ['web'] })[0]!;
  await cp.deregisterTargets(tg.arn, at(3002)); // through the API, before the failed change
  const next: DeclaredState = {
    ...declared({ delay: '7', targets: [3001, 3003] }),
    loadBalancers: [{ ...declared().loadBalancers[0]!, listeners: [...declared().loadBalancers[0]!.listeners, { protocol: 'HTTP', port: 9090, address: '127.0.0.1', targetGroup: 'web' }] }],
  };
  dp.failListener = 9090; // the port is taken between the checks and the change
  const failure = await applyDeclared(cp, next).then(
    () => assert.fail('the change should fail'),
    (e: unknown) => e,
  );
  assert.ok(failure instanceof PartlyAppliedError);
  assert.match(failure.message, /9090/);
  assert.equal(cp.describeTargetGroupAttributes(tg.arn)['deregistration_delay.timeout_seconds'], '7', 'the group was changed before the listener failed');
  const undone = await failure.undo(cp);
  assert.deepEqual(undone.applied, ['target group web: set deregistration_delay.timeout_seconds to 30']);
  assert.equal(cp.describeTargetGroupAttributes(tg.arn)['deregistration_delay.timeout_seconds'], '30');
  assert.deepEqual(cp.registrationsOf(tg.arn).map((r) => r.port), [3001], 'the API\'s deregistration was not undone');
  assert.deepEqual(cp.lastAppliedDeclaration(), declared());
});

test('a load balancer the file drops while its deletion protection is on (set through the API) is refused before anything changes', async () => {
  const { cp } = await setup();
  await applyDeclared(cp, declared({ targets: [3001] }));
  const lb = cp.describeLoadBalancers({ names: ['web'] })[0]!;
  await cp.modifyLoadBalancerAttributes(lb.arn, { 'deletion_protection.enabled': 'true' });
  const empty: DeclaredState = { instances: [], loadBalancers: [], targetGroups: [] };
  await assert.rejects(
    applyDeclared(cp, empty),
    (e: unknown) => EbbError.is(e) && e.code === 'ConfigInvalid' && /Load balancer 'web' .*deletion protection is on/.test(e.message),
  );
  assert.equal(cp.describeTargetGroups({ names: ['web'] }).length, 1, 'nothing was changed');
  assert.deepEqual(cp.lastAppliedDeclaration(), declared({ targets: [3001] }));
});
