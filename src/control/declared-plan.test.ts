import assert from 'node:assert/strict';
import { test } from 'node:test';
import { healthCheckWithDefaults } from '../domain/health-check.ts';
import { describeOp, planDeclared, type CurrentState, type CurrentTargetGroup, type DeclaredOp } from './declared-plan.ts';
import type { DeclaredState, DeclaredTargetGroup } from './declared-state.ts';

/** A file: load balancer `web` with one listener, and groups (the first one forwarded to), each listing `targets` ports. */
function file(o: { port?: number; address?: string; groups?: string[]; targets?: number[]; attributes?: Record<string, string>; interval?: number } = {}): DeclaredState {
  const groups = o.groups ?? ['web'];
  return {
    instances: [],
    loadBalancers: [
      {
        name: 'web',
        type: 'application',
        attributes: {},
        listeners: [{ protocol: 'HTTP', port: o.port ?? 8080, address: o.address ?? '127.0.0.1', targetGroup: groups[0] ?? 'web' }],
      },
    ],
    targetGroups: groups.map(
      (name): DeclaredTargetGroup => ({
        name,
        protocol: 'HTTP',
        port: 80,
        targetType: 'ip',
        healthCheck: o.interval === undefined ? {} : { intervalSeconds: o.interval },
        attributes: o.attributes ?? { 'deregistration_delay.timeout_seconds': '30' },
        targets: (o.targets ?? [3001, 3002]).map((port) => ({ id: '10.0.0.1', port })),
      }),
    ),
  };
}

/** What exists once `d` was applied in full, with nothing changed through the API since. */
function appliedState(d: DeclaredState): CurrentState {
  return {
    instances: [...d.instances],
    targetGroups: d.targetGroups.map((g) => ({
      name: g.name,
      protocol: g.protocol,
      port: g.port,
      healthCheck: healthCheckWithDefaults(g.protocol, g.healthCheck),
      attributes: { ...g.attributes },
      source: 'config' as const,
      targets: g.targets.map((t) => ({ id: t.id, port: t.port ?? g.port, source: 'config' as const, draining: false })),
    })),
    loadBalancers: d.loadBalancers.map((lb) => ({
      name: lb.name,
      type: lb.type,
      attributes: { ...lb.attributes },
      source: 'config' as const,
      listeners: lb.listeners.map((l) => ({
        port: l.port,
        protocol: l.protocol,
        address: l.address ?? '0.0.0.0',
        targetGroup: l.targetGroup,
        source: 'config' as const,
        certificateArns: l.certificateArns ?? [],
        sslPolicy: l.protocol === 'HTTPS' || l.protocol === 'TLS' ? (l.sslPolicy ?? 'ELBSecurityPolicy-TLS13-1-2-2021-06') : undefined,
        attributes: { ...(l.attributes ?? {}) },
      })),
    })),
  };
}

/** `state` with group `name` changed by `change` (what an API call would have done). */
function withGroup(state: CurrentState, name: string, change: (g: CurrentTargetGroup) => CurrentTargetGroup): CurrentState {
  return { ...state, targetGroups: state.targetGroups.map((g) => (g.name === name ? change(g) : g)) };
}

const target = (port: number) => ({ id: '10.0.0.1', port });
/** What a plain (HTTP or TCP) listener's spec holds of TLS and attributes. */
const PLAIN = { certificateArns: [], sslPolicy: undefined, attributes: {} };

test('the same file over an unchanged state: no operation, nothing kept', () => {
  const f = file();
  assert.deepEqual(planDeclared(f, f, appliedState(f)), { ops: [], kept: [] });
});

test('the same file after API changes: no operation; each change is kept and named', () => {
  const f = file();
  let now = withGroup(appliedState(f), 'web', (g) => ({
    ...g,
    attributes: { ...g.attributes, 'deregistration_delay.timeout_seconds': '120', 'load_balancing.algorithm.type': 'least_outstanding_requests' },
    healthCheck: { ...g.healthCheck, intervalSeconds: 10 },
    // 3001 deregistered and its drain over; 3002 deregistered and draining.
    targets: [{ ...target(3002), source: 'config', draining: true }],
  }));
  now = { ...now, loadBalancers: now.loadBalancers.map((lb) => ({ ...lb, listeners: lb.listeners.map((l) => ({ ...l, targetGroup: 'api-made' })) })) };
  const plan = planDeclared(f, f, now);
  assert.deepEqual(plan.ops, []);
  assert.deepEqual(plan.kept, [
    'target group web health check intervalSeconds 10, set through the API (the file says 30)',
    'target group web attribute deregistration_delay.timeout_seconds 120, set through the API (the file says 30)',
    'target 10.0.0.1:3001 in target group web deregistered through the API',
    'target 10.0.0.1:3002 in target group web draining, deregistered through the API',
    'listener web:8080 forwards to target group api-made, set through the API (the file says web)',
  ]);
  // An attribute the file never named is the API's alone: not even reported.
  assert.ok(!plan.kept.some((k) => k.includes('load_balancing.algorithm.type')));
});

test('no file applied before (a state from an earlier ebb): the file wins for what it declares', () => {
  const f = file();
  const now = withGroup(appliedState(f), 'web', (g) => ({
    ...g,
    attributes: { 'deregistration_delay.timeout_seconds': '120', 'load_balancing.algorithm.type': 'least_outstanding_requests' },
    healthCheck: { ...g.healthCheck, intervalSeconds: 10 },
    targets: [{ ...target(3002), source: 'config', draining: true }, { ...target(3009), source: 'config', draining: false }, { ...target(3010), source: 'api', draining: false }],
  }));
  const plan = planDeclared(null, f, now);
  assert.deepEqual(plan.ops, [
    {
      op: 'setTargetGroup',
      name: 'web',
      healthCheck: { intervalSeconds: 30 },
      attributes: { 'deregistration_delay.timeout_seconds': '30', 'load_balancing.algorithm.type': null },
    },
    { op: 'registerTargets', group: 'web', targets: [target(3001), target(3002)] },
    // 3009 came from the file before and is no longer listed; 3010 came from the API and stays.
    { op: 'deregisterTargets', group: 'web', targets: [target(3009)] },
  ] satisfies DeclaredOp[]);
  assert.deepEqual(plan.kept, []);
});

test('a target added and one removed in the same reload; one whose port changed is both', () => {
  const before = file({ targets: [3001, 3002] });
  const plan = planDeclared(before, file({ targets: [3001, 3003] }), appliedState(before));
  assert.deepEqual(plan.ops, [
    { op: 'registerTargets', group: 'web', targets: [target(3003)] },
    { op: 'deregisterTargets', group: 'web', targets: [target(3002)] },
  ]);
});

test('targets the file adds or drops where the API got there first: only what is still to do', () => {
  const before = file({ targets: [3001, 3002, 3004] });
  const now = withGroup(appliedState(before), 'web', (g) => ({
    ...g,
    // The API: 3002 already deregistered (gone), 3003 already registered, 3005 deregistered and draining.
    targets: [
      { ...target(3001), source: 'config', draining: false },
      { ...target(3003), source: 'api', draining: false },
      { ...target(3004), source: 'config', draining: false },
      { ...target(3005), source: 'api', draining: true },
    ],
  }));
  const plan = planDeclared(before, file({ targets: [3001, 3003, 3005] }), now);
  assert.deepEqual(plan.ops, [
    // 3005 is newly listed: registered again, which ends its drain.
    { op: 'registerTargets', group: 'web', targets: [target(3005)] },
    { op: 'deregisterTargets', group: 'web', targets: [target(3004)] },
  ]);
  assert.deepEqual(plan.kept, []);
});

test('an attribute the file changes is set, one the file drops is unset; the API-changed others stay', () => {
  const before = file({ attributes: { 'deregistration_delay.timeout_seconds': '30', 'slow_start.duration_seconds': '60' } });
  const now = withGroup(appliedState(before), 'web', (g) => ({
    ...g,
    attributes: { ...g.attributes, 'deregistration_delay.timeout_seconds': '120', 'stickiness.lb_cookie.duration_seconds': '600' },
  }));
  const after = file({ attributes: { 'deregistration_delay.timeout_seconds': '10' }, interval: 15 });
  const plan = planDeclared(before, after, now);
  assert.deepEqual(plan.ops, [
    {
      op: 'setTargetGroup',
      name: 'web',
      healthCheck: { intervalSeconds: 15 },
      attributes: { 'deregistration_delay.timeout_seconds': '10', 'slow_start.duration_seconds': null },
    },
  ]);
  assert.deepEqual(plan.kept, []);
});

test('a group renamed: the new one is created with its targets, the listener moves, the old one drains and goes', () => {
  const before = file({ groups: ['web'] });
  const plan = planDeclared(before, file({ groups: ['web-v2'] }), appliedState(before));
  assert.deepEqual(
    plan.ops.map((o) => o.op),
    ['createTargetGroup', 'modifyListener', 'registerTargets', 'removeTargetGroup'],
  );
  assert.deepEqual(plan.ops[1], {
    op: 'modifyListener',
    lb: 'web',
    listener: { port: 8080, protocol: 'HTTP', address: '127.0.0.1', targetGroup: 'web-v2', ...PLAIN },
  });
  assert.deepEqual(plan.ops[2], { op: 'registerTargets', group: 'web-v2', targets: [target(3001), target(3002)] });
  assert.deepEqual(plan.ops[3], { op: 'removeTargetGroup', name: 'web' });
});

test('a listener port changed: the new port opens before the old one closes', () => {
  const before = file({ port: 8080 });
  const plan = planDeclared(before, file({ port: 8081 }), appliedState(before));
  assert.deepEqual(plan.ops, [
    { op: 'createListener', lb: 'web', listener: { port: 8081, protocol: 'HTTP', address: '127.0.0.1', targetGroup: 'web', ...PLAIN } },
    { op: 'deleteListener', lb: 'web', port: 8080 },
  ]);
});

test('a listener address changed: reopened, keeping the target group the API chose', () => {
  const before = file();
  const now = appliedState(before);
  const moved = { ...now, loadBalancers: now.loadBalancers.map((lb) => ({ ...lb, listeners: lb.listeners.map((l) => ({ ...l, targetGroup: 'api-made' })) })) };
  const plan = planDeclared(before, file({ address: '0.0.0.0' }), moved);
  assert.deepEqual(plan.ops, [{ op: 'reopenListener', lb: 'web', listener: { port: 8080, protocol: 'HTTP', address: '0.0.0.0', targetGroup: 'api-made', ...PLAIN } }]);
  assert.deepEqual(plan.kept, ['listener web:8080 forwards to target group api-made, set through the API (the file says web)']);
});

test('a group or listener deleted through the API stays deleted until the file changes it', () => {
  const f = file({ groups: ['web', 'spare'] });
  const applied = appliedState(f);
  const now: CurrentState = {
    ...applied,
    targetGroups: applied.targetGroups.filter((g) => g.name !== 'spare'),
    loadBalancers: applied.loadBalancers.map((lb) => ({ ...lb, listeners: [] })),
  };
  const unchanged = planDeclared(f, f, now);
  assert.deepEqual(unchanged.ops, []);
  assert.deepEqual(unchanged.kept, ['target group spare deleted through the API', 'listener web:8080 deleted through the API']);

  // The file now lists one target in each group and moves the listener: both come back as the file says.
  const changed = planDeclared(f, file({ groups: ['web', 'spare'], targets: [3001], address: '0.0.0.0' }), now);
  assert.deepEqual(changed.ops, [
    { op: 'createTargetGroup', group: file({ groups: ['web', 'spare'], targets: [3001] }).targetGroups[1] },
    { op: 'createListener', lb: 'web', listener: { port: 8080, protocol: 'HTTP', address: '0.0.0.0', targetGroup: 'web', ...PLAIN } },
    { op: 'deregisterTargets', group: 'web', targets: [target(3002)] },
    { op: 'registerTargets', group: 'spare', targets: [target(3001)] },
  ]);
  assert.deepEqual(changed.kept, []);
});

test('a listener the file newly forwards to a group the API deleted brings the group back', () => {
  const before = file({ groups: ['web', 'spare'] });
  const applied = appliedState(before);
  const now: CurrentState = { ...applied, targetGroups: applied.targetGroups.filter((g) => g.name !== 'spare') };
  const plan = planDeclared(before, file({ groups: ['spare', 'web'] }), now);
  assert.deepEqual(
    plan.ops.map((o) => o.op),
    ['createTargetGroup', 'modifyListener', 'registerTargets'],
  );
  assert.deepEqual(plan.kept, []);
});

test('what the file no longer declares is removed: its load balancer, its listener, its group', () => {
  const before = file({ groups: ['web', 'old'] });
  const empty: DeclaredState = { instances: [], loadBalancers: [], targetGroups: [] };
  const plan = planDeclared(before, empty, appliedState(before));
  assert.deepEqual(plan.ops, [
    { op: 'deleteLoadBalancer', name: 'web' },
    { op: 'removeTargetGroup', name: 'web' },
    { op: 'removeTargetGroup', name: 'old' },
  ]);
});

test('a resource made through the API that the file newly declares is adopted and made to match the file', () => {
  const f = file();
  const applied = appliedState(f);
  const now: CurrentState = {
    ...applied,
    targetGroups: applied.targetGroups.map((g) => ({ ...g, source: 'api', attributes: {}, targets: [] })),
    loadBalancers: applied.loadBalancers.map((lb) => ({ ...lb, source: 'api', listeners: lb.listeners.map((l) => ({ ...l, source: 'api' })) })),
  };
  const plan = planDeclared({ instances: [], loadBalancers: [], targetGroups: [] }, f, now);
  assert.deepEqual(
    plan.ops.map((o) => o.op),
    ['adoptTargetGroup', 'setTargetGroup', 'adoptLoadBalancer', 'adoptListener', 'registerTargets'],
  );
});

/** `f` with its listener made HTTPS with `certificateArns`, and the given policy. */
function https(f: DeclaredState, certificateArns: string[], sslPolicy?: string): DeclaredState {
  return {
    ...f,
    loadBalancers: f.loadBalancers.map((lb) => ({
      ...lb,
      listeners: lb.listeners.map((l) => ({ ...l, protocol: 'HTTPS' as const, certificateArns, ...(sslPolicy !== undefined && { sslPolicy }) })),
    })),
  };
}

test('an HTTPS listener: the policy left out is the default, no change; the file changing its certificates is applied, the API changing its policy is kept', () => {
  const before = https(file(), ['arn:a']);
  assert.deepEqual(planDeclared(before, before, appliedState(before)), { ops: [], kept: [] }, 'ebb\'s default policy is what the file means by none');
  const now = appliedState(before);
  const apiPolicy: CurrentState = {
    ...now,
    loadBalancers: now.loadBalancers.map((lb) => ({ ...lb, listeners: lb.listeners.map((l) => ({ ...l, sslPolicy: 'ELBSecurityPolicy-2016-08' })) })),
  };
  const plan = planDeclared(before, https(file(), ['arn:a', 'arn:b']), apiPolicy);
  assert.deepEqual(plan.ops, [
    {
      op: 'modifyListener',
      lb: 'web',
      listener: { port: 8080, protocol: 'HTTPS', address: '127.0.0.1', targetGroup: 'web', certificateArns: ['arn:a', 'arn:b'], sslPolicy: 'ELBSecurityPolicy-2016-08', attributes: {} },
    },
  ]);
  assert.deepEqual(plan.kept, ['listener web:8080 SSL policy ELBSecurityPolicy-2016-08, set through the API (the file says ELBSecurityPolicy-TLS13-1-2-2021-06)']);
  assert.equal(
    describeOp(plan.ops[0] as DeclaredOp),
    'listener web:8080: HTTPS, forwarding to target group web; certificates arn:a, arn:b (the first is the default); policy ELBSecurityPolicy-2016-08',
    'ebb check and the log say what changes',
  );
  // The file now names a policy of its own: that is a change of the file's, applied.
  const own = planDeclared(before, https(file(), ['arn:a'], 'ELBSecurityPolicy-TLS13-1-3-2021-06'), apiPolicy);
  assert.equal(own.ops[0]?.op === 'modifyListener' ? own.ops[0].listener.sslPolicy : undefined, 'ELBSecurityPolicy-TLS13-1-3-2021-06');
});
