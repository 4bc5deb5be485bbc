import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { FakeDataPlane } from '../../test/fakes/fake-data-plane.ts';
import { FakeHealthChecker } from '../../test/fakes/fake-health-checker.ts';
import { FakeInstanceRunner } from '../../test/fakes/fake-instance-runner.ts';
import { ControlPlane } from '../control/control-plane.ts';
import { targetKey } from '../domain/resources.ts';
import { EbbError } from '../shared/errors.ts';
import { InMemoryStateStore } from '../store/in-memory-state-store.ts';
import { AutoScaling } from './auto-scaling.ts';
import { applyAutoScaling, checkAutoScaling, recordsOfFacade, recordsOfStore } from './declared.ts';
import type { DeclaredAutoScaling, DeclaredGroup } from './declared-plan.ts';

const TERMINATING = 'autoscaling:EC2_INSTANCE_TERMINATING';

async function settle(rounds = 30): Promise<void> {
  for (let n = 0; n < rounds; n++) await new Promise<void>((resolve) => setImmediate(resolve));
}

async function setup(store = new InMemoryStateStore(), runner?: FakeInstanceRunner, clock = new FakeClock()) {
  const health = new FakeHealthChecker();
  const cp = new ControlPlane({ clock, store, dataPlanes: [new FakeDataPlane()], healthChecker: health });
  await cp.start();
  const run = runner ?? new FakeInstanceRunner(clock);
  const as = new AutoScaling({ clock, store, control: cp, runner: run, engine: { tickMs: 1000, launchBackoffBaseMs: 1000 } });
  await as.start();
  let tg = cp.describeTargetGroups().find((g) => g.name === 'app');
  if (tg === undefined) {
    tg = await cp.createTargetGroup({ name: 'app', protocol: 'HTTP', port: 80, targetType: 'instance', attributes: { 'deregistration_delay.timeout_seconds': '0' } });
    await cp.createTargetGroup({ name: 'ips', protocol: 'HTTP', port: 80, targetType: 'ip' });
  }
  const tgArn = tg.arn;
  const advance = async (ms: number, step = 500): Promise<void> => {
    for (let t = 0; t < ms; t += step) {
      clock.advance(step);
      await settle();
    }
  };
  const healthy = (): void => {
    for (const t of cp.describeTargetHealth(tgArn)) if (t.health.state === 'initial') health.pass(targetKey(tgArn, t.id, t.port), 2);
  };
  const group = (name = 'web') => as.describeAutoScalingGroups([name])[0];
  const close = async (): Promise<void> => {
    await as.close();
    await cp.close();
  };
  return { clock, store, cp, runner: run, as, tgArn, advance, healthy, group, close };
}

function web(extra: Partial<DeclaredGroup> = {}): DeclaredGroup {
  return {
    name: 'web',
    launchTemplate: 'app',
    launchTemplateVersion: '$Default',
    minSize: 1,
    maxSize: 6,
    desiredCapacity: 2,
    targetGroups: ['app'],
    loadBalancerNames: [],
    healthCheckType: 'EC2',
    healthCheckGracePeriod: 0,
    terminationPolicies: ['Default'],
    newInstancesProtectedFromScaleIn: false,
    lifecycleHooks: [{ name: 'drain-notify', transition: TERMINATING, heartbeatTimeout: 60, defaultResult: 'CONTINUE' }],
    ...extra,
  };
}

function file(env = 'production', groups: DeclaredGroup[] = [web()]): DeclaredAutoScaling {
  return { launchTemplates: [{ name: 'app', data: { command: ['node', 'server.js'], environment: { NODE_ENV: env }, stopTimeoutSeconds: 5 } }], groups };
}

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    assert.ok(EbbError.is(error) && error.code === 'ConfigInvalid', String(error));
    return error.message;
  }
  assert.fail('the file was accepted');
}

describe('the Auto Scaling part of the file, applied as a three-way merge', () => {
  test('a first apply creates the template and the group with its hook, attached to the target group; its instances launch from the file\'s command', async () => {
    const s = await setup();
    const r = await applyAutoScaling(s.as, s.cp, file());
    assert.deepEqual(r.applied, ['created launch template app', 'created Auto Scaling group web (desired capacity 2)']);
    assert.match(r.mergedWith, /^nothing/);
    const g = s.group()?.group;
    assert.equal(g?.source, 'config');
    assert.deepEqual(g?.targetGroupArns, [s.tgArn]);
    assert.deepEqual(g?.launchTemplate, { name: 'app', version: '$Default' });
    assert.deepEqual(s.as.describeLifecycleHooks('web').map((h) => [h.name, h.heartbeatTimeoutSeconds, h.defaultResult, h.source]), [['drain-notify', 60, 'CONTINUE', 'config']]);
    await s.advance(1000);
    assert.equal(s.runner.launches.length, 2);
    assert.deepEqual(s.runner.launches[0]?.run, { argv: ['node', 'server.js'] });
    assert.equal(s.runner.launches[0]?.environment['NODE_ENV'], 'production');
    // Applying the same file again changes nothing and keeps nothing.
    const again = await applyAutoScaling(s.as, s.cp, file());
    assert.deepEqual([again.applied, again.kept, again.mergedWith], [[], [], 'the file as last applied']);
    await s.close();
  });

  test('SetDesiredCapacity through the API survives a reload that did not change desiredCapacity; a changed desiredCapacity applies', async () => {
    const s = await setup();
    await applyAutoScaling(s.as, s.cp, file());
    await s.as.setDesiredCapacity('web', 4);
    const kept = await applyAutoScaling(s.as, s.cp, file());
    assert.deepEqual(kept.applied, []);
    assert.deepEqual(kept.kept, ['Auto Scaling group web desiredCapacity 4, set through the API (the file says 2)']);
    assert.equal(s.group()?.group.desiredCapacity, 4);
    const changed = await applyAutoScaling(s.as, s.cp, file('production', [web({ desiredCapacity: 3, maxSize: 5 })]));
    assert.deepEqual(changed.applied, ['Auto Scaling group web: set maxSize to 5, desiredCapacity to 3']);
    assert.deepEqual(changed.kept, []);
    assert.deepEqual([s.group()?.group.desiredCapacity, s.group()?.group.maxSize], [3, 5]);
    await s.close();
  });

  test('a changed template makes a new default version and starts no instance refresh; running instances keep their version', async () => {
    const s = await setup();
    await applyAutoScaling(s.as, s.cp, file());
    await s.advance(2000);
    s.healthy();
    await s.advance(2000);
    const before = s.group()?.instances.map((i) => [i.instanceId, i.launchTemplate?.version]);
    const r = await applyAutoScaling(s.as, s.cp, file('staging'));
    assert.deepEqual(r.applied, ["launch template app: version 2, with the file's new data, is now the default (instances running keep theirs; no instance refresh is started)"]);
    const t = s.as.describeLaunchTemplates({ names: ['app'] })[0];
    assert.deepEqual([t?.defaultVersion, t?.latestVersion], [2, 2]);
    await s.advance(3000);
    assert.deepEqual(s.as.describeInstanceRefreshes('web'), []);
    assert.deepEqual(s.group()?.instances.map((i) => [i.instanceId, i.launchTemplate?.version]), before);
    // A scale-out launches from the new default.
    await s.as.setDesiredCapacity('web', 3);
    await s.advance(1000);
    assert.equal(s.runner.launches.at(-1)?.environment['NODE_ENV'], 'staging');
    await s.close();
  });

  test('a default version chosen through the API is kept while the file\'s template is unchanged', async () => {
    const s = await setup();
    await applyAutoScaling(s.as, s.cp, file());
    await s.as.createLaunchTemplateVersion({ template: { name: 'app' }, sourceVersion: '1', data: { environment: { NODE_ENV: 'canary' } } });
    await s.as.modifyLaunchTemplate({ name: 'app' }, '2');
    const r = await applyAutoScaling(s.as, s.cp, file());
    assert.deepEqual(r.applied, []);
    assert.deepEqual(r.kept, ["launch template app default version 2, set through the API (the file's data is not that version's)"]);
    await s.close();
  });

  test('a group the file no longer declares scales to nothing with its terminating hooks and drains, then is deleted; its template goes at the next apply', async () => {
    const s = await setup();
    await applyAutoScaling(s.as, s.cp, file());
    await s.advance(2000);
    s.healthy();
    await s.advance(2000);
    const r = await applyAutoScaling(s.as, s.cp, { launchTemplates: [], groups: [] });
    assert.deepEqual(r.applied, ['Auto Scaling group web no longer declared: its 2 instance(s) drain and stop (terminating hooks run), then it is deleted']);
    assert.deepEqual(r.kept, ['launch template app, no longer declared, stays while Auto Scaling group web uses it; it is deleted at the first reload or start after']);
    await s.advance(2000);
    const leaving = s.group()?.instances ?? [];
    assert.deepEqual(leaving.map((i) => i.lifecycleState), ['Terminating:Wait', 'Terminating:Wait'], 'the terminating hook holds them (ForceDelete would skip it)');
    for (const i of leaving) await s.as.completeLifecycleAction({ group: 'web', hookName: 'drain-notify', instanceId: i.instanceId, result: 'CONTINUE' });
    await s.advance(3000);
    assert.equal(s.group(), undefined, 'the group is gone once its instances are');
    assert.deepEqual(s.runner.signals.map((x) => x.split(':')[1]), ['SIGTERM', 'SIGTERM']);
    const later = await applyAutoScaling(s.as, s.cp, { launchTemplates: [], groups: [] });
    assert.deepEqual(later.applied, ['deleted launch template app']);
    await s.close();
  });

  test('a group made through the API that the file declares becomes the file\'s and is made to match it; an API group it does not name is left alone', async () => {
    const s = await setup();
    await applyAutoScaling(s.as, s.cp, file('production', []));
    await s.as.createAutoScalingGroup({ name: 'web', launchTemplate: { name: 'app' }, minSize: 0, maxSize: 2, desiredCapacity: 0, targetGroupArns: [] });
    await s.as.createAutoScalingGroup({ name: 'other', launchTemplate: { name: 'app' }, minSize: 0, maxSize: 1 });
    await s.as.putLifecycleHook({ group: 'web', name: 'api-hook', transition: TERMINATING });
    const r = await applyAutoScaling(s.as, s.cp, file());
    assert.deepEqual(r.applied, [
      'Auto Scaling group web, made through the API, now declared by the file',
      'Auto Scaling group web: set minSize to 1, maxSize to 6, desiredCapacity to 2',
      'Auto Scaling group web: attached target group app',
      'Auto Scaling group web: put lifecycle hook drain-notify',
      'Auto Scaling group web: deleted lifecycle hook api-hook',
    ]);
    assert.equal(s.group()?.group.source, 'config');
    assert.equal(s.group('other')?.group.source, 'api');
    await s.close();
  });

  test('what the API changed on a hook or an attachment is kept; what the file changed there is applied', async () => {
    const s = await setup();
    await applyAutoScaling(s.as, s.cp, file());
    await s.as.putLifecycleHook({ group: 'web', name: 'drain-notify', heartbeatTimeoutSeconds: 120 });
    await s.as.detachLoadBalancerTargetGroups('web', [s.tgArn]);
    const kept = await applyAutoScaling(s.as, s.cp, file());
    assert.deepEqual(kept.kept, ['target group app detached from Auto Scaling group web through the API', 'lifecycle hook drain-notify of Auto Scaling group web changed through the API']);
    assert.deepEqual(kept.applied, []);
    const hook = { name: 'drain-notify', transition: TERMINATING, heartbeatTimeout: 90, defaultResult: 'ABANDON', notificationCommand: ['true'] } as const;
    const changed = await applyAutoScaling(s.as, s.cp, file('production', [web({ lifecycleHooks: [hook] })]));
    assert.deepEqual(changed.applied, ['Auto Scaling group web: put lifecycle hook drain-notify']);
    assert.deepEqual(s.as.describeLifecycleHooks('web').map((h) => [h.heartbeatTimeoutSeconds, h.defaultResult, h.notificationCommand]), [[90, 'ABANDON', ['true']]]);
    // Dropping the command (a field a put keeps) replaces the hook.
    const dropped = await applyAutoScaling(s.as, s.cp, file());
    assert.deepEqual(dropped.applied, ['Auto Scaling group web: replaced lifecycle hook drain-notify']);
    assert.equal(s.as.describeLifecycleHooks('web')[0]?.notificationCommand, undefined);
    await s.close();
  });

  test('a file that cannot be applied is refused whole, each problem at its field, and nothing changes', async () => {
    const s = await setup();
    await applyAutoScaling(s.as, s.cp, file());
    await s.as.updateAutoScalingGroup({ name: 'web', maxSize: 3 });
    const bad = file('staging', [
      web({ desiredCapacity: 5 }),
      web({ name: 'api', launchTemplate: 'nope', targetGroups: ['app', 'ips', 'missing'], loadBalancerNames: ['classic'] }),
      web({ name: 'v', launchTemplateVersion: '7' }),
    ]);
    const message = refusal(() => checkAutoScaling(bad, recordsOfFacade(s.as), s.cp));
    assert.deepEqual(message.split('\n'), [
      "autoScalingGroups[0]: the file's change to Auto Scaling group web does not fit the sizes it keeps from the API (minSize 1, maxSize 3, desiredCapacity 2): Desired capacity:5 must be between the specified min size:1 and max size:3",
      'autoScalingGroups[1].launchTemplate: names launch template "nope", which is neither declared under launchTemplates nor exists (declared: app); declare it, or create it first (aws ec2 create-launch-template)',
      'autoScalingGroups[1].targetGroups[1]: target group "ips" has target type ip; Auto Scaling registers instances, so it needs target type instance',
      'autoScalingGroups[1].targetGroups[2]: names target group "missing", which is neither declared under targetGroups nor exists; declare it, or create it first (aws elbv2 create-target-group)',
      'autoScalingGroups[1].loadBalancerNames[0]: names Classic load balancer "classic", which does not exist; create it first (aws elb create-load-balancer)',
      'autoScalingGroups[2].launchTemplateVersion: launch template "app" has no version 7; it has 1, 2',
      'Nothing was changed.',
    ]);
    await assert.rejects(applyAutoScaling(s.as, s.cp, bad), (e: unknown) => EbbError.is(e) && e.code === 'ConfigInvalid');
    assert.deepEqual(s.as.describeLaunchTemplates().map((t) => t.latestVersion), [1], 'no template version was made');
    assert.deepEqual(s.as.describeAutoScalingGroups().map((g) => g.group.name), ['web']);
    await s.close();
  });

  test('target groups count as the file\'s load balancing part leaves them: one it creates may be named, one it removes may not', async () => {
    const s = await setup();
    const tg = { name: 'fresh', protocol: 'HTTP', port: 80, targetType: 'instance', healthCheck: {}, attributes: {}, targets: [] } as const;
    const ok = checkAutoScaling(file('production', [web({ targetGroups: ['fresh'] })]), recordsOfFacade(s.as), s.cp, [{ op: 'createTargetGroup', group: tg }]);
    assert.deepEqual(ok.problems, []);
    const message = refusal(() => checkAutoScaling(file(), recordsOfFacade(s.as), s.cp, [{ op: 'removeTargetGroup', name: 'app' }], { where: (p) => `ebb.yaml:9:9: ${p.join('.')}` }));
    assert.match(message, /^ebb\.yaml:9:9: autoScalingGroups\.0\.targetGroups\.0: names target group "app", which is neither declared under targetGroups nor exists/);
    await s.close();
  });

  test('a group deleted through the API stays deleted while the file does not change it; changed in the file, it is made again', async () => {
    const s = await setup();
    await applyAutoScaling(s.as, s.cp, file());
    await s.as.deleteAutoScalingGroup('web', true);
    await s.advance(3000);
    assert.equal(s.group(), undefined);
    const kept = await applyAutoScaling(s.as, s.cp, file());
    assert.deepEqual(kept.kept, ['Auto Scaling group web deleted through the API']);
    const changed = await applyAutoScaling(s.as, s.cp, file('production', [web({ desiredCapacity: 1 })]));
    assert.deepEqual(changed.applied, ['created Auto Scaling group web (desired capacity 1)']);
    await s.close();
  });

  test('the last applied file is kept in the store: after a restart the merge is against it, and the checks before a start read the same records', async () => {
    const store = new InMemoryStateStore();
    const clock = new FakeClock();
    const runner = new FakeInstanceRunner(clock);
    const first = await setup(store, runner, clock);
    await applyAutoScaling(first.as, first.cp, file());
    await first.as.setDesiredCapacity('web', 5);
    await first.close();
    const second = await setup(store, runner, clock);
    const loaded = await store.load();
    const plan = checkAutoScaling(file(), recordsOfStore(loaded), second.cp);
    assert.deepEqual([plan.ops, plan.kept], [[], ['Auto Scaling group web desiredCapacity 5, set through the API (the file says 2)']]);
    const r = await applyAutoScaling(second.as, second.cp, file());
    assert.equal(r.mergedWith, 'the file as last applied');
    assert.equal(second.group()?.group.desiredCapacity, 5);
    await second.close();
  });
});
