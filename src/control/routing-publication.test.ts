import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { defaultHealthCheck } from '../domain/health-check.ts';
import { targetKey, type ListenerRecord, type LoadBalancerRecord, type TargetGroupRecord, type TargetRegistration } from '../domain/resources.ts';
import { TargetLifecycle } from '../domain/target-lifecycle.ts';
import { buildPublication, groupsInUse, type PublicationInput, type PublishedTarget } from './routing-publication.ts';

const LB: LoadBalancerRecord = {
  arn: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/1',
  name: 'web',
  type: 'application',
  scheme: 'internet-facing',
  createdAt: 0,
  attributes: { 'idle_timeout.timeout_seconds': '30' },
  tags: [],
  source: 'api',
};

function group(name: string, attributes: Record<string, string> = {}, checks = true): TargetGroupRecord {
  return {
    arn: `arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/${name}/1`,
    name,
    protocol: 'HTTP',
    port: 80,
    targetType: 'instance',
    healthCheck: { ...defaultHealthCheck('HTTP'), enabled: checks },
    attributes,
    tags: [],
    createdAt: 0,
    source: 'api',
  };
}

function listener(port: number, tg: TargetGroupRecord, lb = LB): ListenerRecord {
  return {
    arn: `${lb.arn.replace(':loadbalancer/', ':listener/')}/${port}`,
    loadBalancerArn: lb.arn,
    protocol: 'HTTP',
    port,
    address: '0.0.0.0',
    defaultActions: [{ type: 'forward', targetGroupArn: tg.arn }],
    tags: [],
    source: 'api',
  };
}

/** A registration whose lifecycle has passed its checks (healthy) or has not been checked yet. */
function target(tg: TargetGroupRecord, id: string, port: number, healthy: boolean): PublishedTarget & { life: TargetLifecycle } {
  const reg: TargetRegistration = { targetGroupArn: tg.arn, id, port, source: 'api' };
  const life = new TargetLifecycle(tg.healthCheck.enabled);
  if (healthy) life.observe({ key: '', ok: true }, { healthy: 1, unhealthy: 1 }, 1234);
  return { key: targetKey(tg.arn, id, port), reg, life };
}

function input(over: Partial<PublicationInput>): PublicationInput {
  return { version: 7, now: 2000, loadBalancers: new Map([[LB.arn, LB]]), listeners: [], targetGroups: [], targets: [], instances: new Map(), ...over };
}

describe('buildPublication', () => {
  test('routes healthy targets, resolves instance ids, and checks the targets of groups in use', () => {
    const web = group('web', { 'load_balancing.algorithm.type': 'least_outstanding_requests', 'slow_start.duration_seconds': '30' });
    const spare = group('spare');
    const a = target(web, '10.0.0.1', 8080, true);
    const b = target(web, 'i-0abc', 8081, true);
    const unknownInstance = target(web, 'i-0missing', 8082, true);
    const idle = target(spare, '10.0.0.9', 80, false);
    idle.life.setInUse(false); // the caller's part, from groupsInUse
    const out = buildPublication(
      input({
        listeners: [listener(80, web)],
        targetGroups: [web, spare],
        targets: [a, b, unknownInstance, idle],
        instances: new Map([['i-0abc', { id: 'i-0abc', address: 'app.internal' }]]),
      }),
    );
    assert.equal(out.snapshot.version, 7);
    assert.deepEqual(out.snapshot.listeners.map((l) => [l.port, l.targetGroupArn, l.settings.idleTimeoutMs]), [[80, web.arn, 30_000]]);
    const route = out.snapshot.targetGroups.get(web.arn);
    assert.equal(route?.algorithm, 'least_outstanding_requests');
    assert.equal(route?.slowStartMs, 30_000);
    assert.equal(route?.failOpen, false);
    assert.deepEqual(route?.targets, [
      { key: a.key, host: '10.0.0.1', port: 8080, healthyForMs: 766 },
      { key: b.key, host: 'app.internal', port: 8081, healthyForMs: 766 },
    ]);
    assert.deepEqual(out.snapshot.targetGroups.get(spare.arn)?.targets, [], 'a group no listener uses is published, empty');
    assert.deepEqual(
      out.checks.map((c) => [c.key, c.host, c.port]),
      [
        [a.key, '10.0.0.1', 8080],
        [b.key, 'app.internal', 8081],
      ],
      'no check for an instance with no address, nor for a group no listener uses',
    );
  });

  test('fails open when no target is routable, and never to a draining one', () => {
    const web = group('web');
    const a = target(web, '10.0.0.1', 80, false);
    const b = target(web, '10.0.0.2', 80, false);
    b.life.deregister();
    const route = buildPublication(input({ listeners: [listener(80, web)], targetGroups: [web], targets: [a, b] })).snapshot.targetGroups.get(web.arn);
    assert.equal(route?.failOpen, true);
    assert.deepEqual(route?.targets.map((t) => t.host), ['10.0.0.1']);
  });

  test('a group with checks off routes its targets and is not checked; a listener of a missing load balancer is left out', () => {
    const web = group('web', {}, false);
    const a = target(web, '10.0.0.1', 80, false);
    const orphan = listener(81, web, { ...LB, arn: `${LB.arn}x` });
    const out = buildPublication(input({ listeners: [listener(80, web), orphan], targetGroups: [web], targets: [a] }));
    assert.deepEqual(out.snapshot.targetGroups.get(web.arn)?.targets.map((t) => t.host), ['10.0.0.1']);
    assert.deepEqual(out.checks, []);
    assert.deepEqual(out.snapshot.listeners.map((l) => l.port), [80]);
  });

  test('is pure: the same input gives the same output and is left as it was', () => {
    const web = group('web');
    const a = target(web, '10.0.0.1', 80, true);
    const given = input({ listeners: [listener(80, web)], targetGroups: [web], targets: [a] });
    const before = JSON.stringify({ ...given, loadBalancers: [...given.loadBalancers], instances: [...given.instances] });
    const view = a.life.view();
    const first = buildPublication(given);
    const second = buildPublication(given);
    assert.deepEqual(first, second);
    assert.equal(JSON.stringify({ ...given, loadBalancers: [...given.loadBalancers], instances: [...given.instances] }), before);
    assert.deepEqual(a.life.view(), view, 'the lifecycle is read, not moved');
  });

  test('groupsInUse: the groups some listener forwards to', () => {
    const web = group('web');
    const api = group('api');
    assert.deepEqual([...groupsInUse([listener(80, web), listener(81, web), listener(82, api)])], [web.arn, api.arn]);
  });
});
