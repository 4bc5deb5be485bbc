/** The control plane's 'validation' suite, apart from control-plane.test.ts: what it refuses and what it settles when given attributes, names, ARNs, health checks, listeners and whole stacks. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { FakeDataPlane } from '../../test/fakes/fake-data-plane.ts';
import { EbbError } from '../shared/errors.ts';
import { InMemoryStateStore } from '../store/in-memory-state-store.ts';
import { defaultHealthCheck } from '../domain/health-check.ts';
import type { LoadBalancerRecord, TargetGroupRecord } from '../domain/resources.ts';
import { ControlPlane } from './control-plane.ts';
import { put } from './store-transaction.ts';
import { setup } from '../../test/support/control-plane-harness.ts';

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
