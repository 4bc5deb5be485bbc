import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { AUTOSCALING_ACTIONS } from '../../src/api/autoscaling/autoscaling-model.ts';
import {
  FakeAutoScalingApi,
  GROUP_ARN,
  SAMPLE_TIME,
  sampleActivity,
  sampleGroup,
  sampleHook,
  sampleInstance,
  sampleRefresh,
  sampleTemplate,
  TEMPLATE_ID,
  TG_ARN,
} from '../fakes/fake-autoscaling-api.ts';
import { Botocore, call, missingBotocore } from './api-autoscaling-botocore.ts';

/**
 * ebb's Auto Scaling answers, read back by botocore's own Query parser with each operation's output
 * shape, and walked against the model: every element a member of its shape, required members
 * present, numbers, booleans, timestamps and enum values well formed. Then the values botocore
 * parsed are the ones the facade's records hold.
 */

const skip = missingBotocore();
let boto: Botocore;
before(() => {
  if (skip === null) boto = new Botocore();
});
after(() => boto?.close());

const I1 = 'i-0a1b2c3d4e5f60001';
const I2 = 'i-0a1b2c3d4e5f60002';
const I3 = 'i-0a1b2c3d4e5f60003';
const I4 = 'i-0a1b2c3d4e5f60004';
const CREATED = '2024-05-01T12:00:00+00:00';

/** The answer as botocore parses it, once the XML fits the model. */
async function answer(fake: FakeAutoScalingApi | undefined, operation: string, params: object = {}, validate = true): Promise<any> {
  const xml = await call(boto, fake, operation, params, validate);
  const { parsed, problems } = await boto.parse(operation, xml);
  assert.deepEqual(problems, [], `${operation}: ${xml}`);
  return parsed;
}

function groupsFake(): FakeAutoScalingApi {
  const { defaultInstanceWarmupSeconds: _warmup, ...noWarmup } = sampleGroup();
  return new FakeAutoScalingApi().returns('describeLaunchTemplates', [sampleTemplate()]).returns('describeAutoScalingGroups', [
    {
      group: sampleGroup(),
      instances: [
        sampleInstance(),
        sampleInstance({ instanceId: I2, lifecycleState: 'Terminating:Wait', healthStatus: 'Unhealthy', protectedFromScaleIn: true }),
        sampleInstance({ instanceId: I3, lifecycleState: 'Terminated' }),
        sampleInstance({ instanceId: I4, origin: 'attached', launchTemplate: undefined as never }),
      ],
    },
    { group: { ...noWarmup, name: 'old', arn: GROUP_ARN.replace('/web', '/old'), tags: [], deleting: { force: true, at: SAMPLE_TIME } }, instances: [] },
    { group: sampleGroup({ name: 'api', arn: GROUP_ARN.replace('/web', '/api'), tags: [{ key: 'team', value: 'core' }] }), instances: [] },
  ]);
}

test('DescribeAutoScalingGroups: every member of a group as the model has it', { skip: skip ?? false }, async () => {
  const fake = groupsFake();
  const out = await answer(fake, 'DescribeAutoScalingGroups');
  assert.equal(out.NextToken, undefined);
  const [web, old] = out.AutoScalingGroups;
  const launchTemplate = { LaunchTemplateId: TEMPLATE_ID, LaunchTemplateName: 'web-template', Version: '2' };
  assert.deepEqual(web, {
    AutoScalingGroupName: 'web',
    AutoScalingGroupARN: GROUP_ARN,
    // The group names its template by name only: the answer has both, as AWS gives them.
    LaunchTemplate: { LaunchTemplateId: TEMPLATE_ID, LaunchTemplateName: 'web-template', Version: '$Latest' },
    MinSize: 1,
    MaxSize: 4,
    DesiredCapacity: 2,
    DefaultCooldown: 300,
    AvailabilityZones: ['us-east-1a'],
    LoadBalancerNames: ['classic-web'],
    TargetGroupARNs: [TG_ARN],
    HealthCheckType: 'ELB',
    HealthCheckGracePeriod: 30,
    // A terminated instance is no longer the group's; an attached one is a server ebb does not run.
    Instances: [
      { InstanceId: I1, InstanceType: 'ebb.process', AvailabilityZone: 'us-east-1a', LifecycleState: 'InService', HealthStatus: 'Healthy', LaunchTemplate: launchTemplate, ProtectedFromScaleIn: false },
      { InstanceId: I2, InstanceType: 'ebb.process', AvailabilityZone: 'us-east-1a', LifecycleState: 'Terminating:Wait', HealthStatus: 'Unhealthy', LaunchTemplate: launchTemplate, ProtectedFromScaleIn: true },
      { InstanceId: I4, InstanceType: 'ebb.attached', AvailabilityZone: 'us-east-1a', LifecycleState: 'InService', HealthStatus: 'Healthy', ProtectedFromScaleIn: false },
    ],
    CreatedTime: CREATED,
    SuspendedProcesses: [],
    EnabledMetrics: [],
    Tags: [{ ResourceId: 'web', ResourceType: 'auto-scaling-group', Key: 'team', Value: 'edge', PropagateAtLaunch: true }],
    TerminationPolicies: ['OldestInstance', 'Default'],
    NewInstancesProtectedFromScaleIn: false,
    DefaultInstanceWarmup: 10,
    TrafficSources: [
      { Identifier: TG_ARN, Type: 'elbv2' },
      { Identifier: 'classic-web', Type: 'elb' },
    ],
  });
  assert.equal(old.Status, 'Delete in progress');
  assert.equal(old.DefaultInstanceWarmup, undefined);
  assert.equal(out.AutoScalingGroups[0].Status, undefined);

  const bare = await answer(fake, 'DescribeAutoScalingGroups', { IncludeInstances: false });
  assert.equal(bare.AutoScalingGroups[0].Instances, undefined);
  const edge = await answer(fake, 'DescribeAutoScalingGroups', { Filters: [{ Name: 'tag:team', Values: ['edge', 'ops'] }] });
  assert.deepEqual(edge.AutoScalingGroups.map((g: any) => g.AutoScalingGroupName), ['web']);
  const keyed = await answer(fake, 'DescribeAutoScalingGroups', { Filters: [{ Name: 'tag-key', Values: ['team'] }, { Name: 'tag-value', Values: ['core'] }] });
  assert.deepEqual(keyed.AutoScalingGroups.map((g: any) => g.AutoScalingGroupName), ['api']);
});

test('MaxRecords and NextToken page through groups, activities and tags', { skip: skip ?? false }, async () => {
  const fake = groupsFake();
  const first = await answer(fake, 'DescribeAutoScalingGroups', { MaxRecords: 2 });
  assert.deepEqual(first.AutoScalingGroups.map((g: any) => g.AutoScalingGroupName), ['web', 'old']);
  assert.equal(typeof first.NextToken, 'string');
  const second = await answer(fake, 'DescribeAutoScalingGroups', { MaxRecords: 2, NextToken: first.NextToken });
  assert.deepEqual(second.AutoScalingGroups.map((g: any) => g.AutoScalingGroupName), ['api']);
  assert.equal(second.NextToken, undefined);

  fake.returns('describeScalingActivities', [sampleActivity({ activityId: 'a-2' }), sampleActivity({ activityId: 'a-1' })]);
  const acts = await answer(fake, 'DescribeScalingActivities', { MaxRecords: 1 });
  assert.deepEqual(acts.Activities.map((a: any) => a.ActivityId), ['a-2']);
  const rest = await answer(fake, 'DescribeScalingActivities', { MaxRecords: 1, NextToken: acts.NextToken });
  assert.deepEqual(rest.Activities.map((a: any) => a.ActivityId), ['a-1']);
  assert.equal(rest.NextToken, undefined);

  const tags = await answer(fake, 'DescribeTags', { MaxRecords: 1 });
  assert.deepEqual(tags.Tags, [{ ResourceId: 'web', ResourceType: 'auto-scaling-group', Key: 'team', Value: 'edge', PropagateAtLaunch: true }]);
  const moreTags = await answer(fake, 'DescribeTags', { NextToken: tags.NextToken });
  assert.deepEqual(moreTags.Tags.map((t: any) => `${t.ResourceId}:${t.Value}`), ['api:core']);
  const filtered = await answer(fake, 'DescribeTags', { Filters: [{ Name: 'value', Values: ['core'] }, { Name: 'key', Values: ['team'] }] });
  assert.deepEqual(filtered.Tags.map((t: any) => t.ResourceId), ['api']);
});

test('DescribeAutoScalingInstances: HealthStatus in capitals, only instances still in a group', { skip: skip ?? false }, async () => {
  const fake = new FakeAutoScalingApi().returns('describeAutoScalingInstances', [
    sampleInstance(),
    sampleInstance({ instanceId: I2, healthStatus: 'Unhealthy', lifecycleState: 'Pending:Wait', protectedFromScaleIn: true }),
    sampleInstance({ instanceId: I3, group: null, lifecycleState: 'Detached' }),
    sampleInstance({ instanceId: I4, lifecycleState: 'Terminated' }),
  ]);
  const out = await answer(fake, 'DescribeAutoScalingInstances', { InstanceIds: [I1, I2, I3, I4] });
  const launchTemplate = { LaunchTemplateId: TEMPLATE_ID, LaunchTemplateName: 'web-template', Version: '2' };
  assert.deepEqual(out.AutoScalingInstances, [
    { InstanceId: I1, InstanceType: 'ebb.process', AutoScalingGroupName: 'web', AvailabilityZone: 'us-east-1a', LifecycleState: 'InService', HealthStatus: 'HEALTHY', LaunchTemplate: launchTemplate, ProtectedFromScaleIn: false },
    { InstanceId: I2, InstanceType: 'ebb.process', AutoScalingGroupName: 'web', AvailabilityZone: 'us-east-1a', LifecycleState: 'Pending:Wait', HealthStatus: 'UNHEALTHY', LaunchTemplate: launchTemplate, ProtectedFromScaleIn: true },
  ]);
});

test('activities: TerminateInstanceInAutoScalingGroup, DetachInstances, Enter/ExitStandby, DescribeScalingActivities', { skip: skip ?? false }, async () => {
  const ended = sampleActivity({ activityId: 'a-done', endTime: SAMPLE_TIME + 61_000, statusCode: 'Successful', statusMessage: 'drained', progress: 100 });
  const fake = new FakeAutoScalingApi()
    .returns('describeAutoScalingGroups', [{ group: sampleGroup(), instances: [] }])
    .returns('terminateInstanceInAutoScalingGroup', sampleActivity())
    .returns('detachInstances', [ended])
    .returns('enterStandby', [sampleActivity({ statusCode: 'WaitingForELBConnectionDraining', progress: 50 })])
    .returns('exitStandby', [sampleActivity({ statusCode: 'PreInService', progress: 30 })])
    .returns('describeScalingActivities', [ended, sampleActivity({ group: 'gone' })]);
  const terminated = await answer(fake, 'TerminateInstanceInAutoScalingGroup', { InstanceId: I1, ShouldDecrementDesiredCapacity: true });
  const a = sampleActivity();
  assert.deepEqual(terminated.Activity, {
    ActivityId: a.activityId,
    AutoScalingGroupName: 'web',
    Description: a.description,
    Cause: a.cause,
    StartTime: CREATED,
    StatusCode: 'InProgress',
    Progress: 0,
    Details: a.details,
    AutoScalingGroupARN: GROUP_ARN,
  });
  const detached = await answer(fake, 'DetachInstances', { InstanceIds: [I1], AutoScalingGroupName: 'web', ShouldDecrementDesiredCapacity: false });
  assert.equal(detached.Activities[0].EndTime, '2024-05-01T12:01:01+00:00');
  assert.equal(detached.Activities[0].StatusMessage, 'drained');
  assert.equal(detached.Activities[0].Progress, 100);
  const standby = await answer(fake, 'EnterStandby', { InstanceIds: [I1], AutoScalingGroupName: 'web', ShouldDecrementDesiredCapacity: true });
  assert.equal(standby.Activities[0].StatusCode, 'WaitingForELBConnectionDraining');
  const back = await answer(fake, 'ExitStandby', { InstanceIds: [I1], AutoScalingGroupName: 'web' });
  assert.equal(back.Activities[0].StatusCode, 'PreInService');
  const listed = await answer(fake, 'DescribeScalingActivities', {});
  // A deleted group's activity has no ARN to show.
  assert.deepEqual(listed.Activities.map((x: any) => [x.ActivityId, x.AutoScalingGroupARN]), [['a-done', GROUP_ARN], [a.activityId, undefined]]);
});

test('load balancing: target groups, Classic load balancers and traffic sources with their states', { skip: skip ?? false }, async () => {
  const fake = new FakeAutoScalingApi()
    .returns('describeLoadBalancerTargetGroups', [{ targetGroupArn: TG_ARN, state: 'InService' }])
    .returns('describeLoadBalancers', [{ loadBalancerName: 'classic-web', state: 'Removing' }]);
  assert.deepEqual((await answer(fake, 'DescribeLoadBalancerTargetGroups', { AutoScalingGroupName: 'web' })).LoadBalancerTargetGroups, [
    { LoadBalancerTargetGroupARN: TG_ARN, State: 'InService' },
  ]);
  assert.deepEqual((await answer(fake, 'DescribeLoadBalancers', { AutoScalingGroupName: 'web' })).LoadBalancers, [{ LoadBalancerName: 'classic-web', State: 'Removing' }]);
  assert.deepEqual((await answer(fake, 'DescribeTrafficSources', { AutoScalingGroupName: 'web' })).TrafficSources, [
    { TrafficSource: TG_ARN, State: 'InService', Identifier: TG_ARN, Type: 'elbv2' },
    { TrafficSource: 'classic-web', State: 'Removing', Identifier: 'classic-web', Type: 'elb' },
  ]);
  for (const [op, params] of [
    ['AttachLoadBalancerTargetGroups', { AutoScalingGroupName: 'web', TargetGroupARNs: [TG_ARN] }],
    ['DetachLoadBalancerTargetGroups', { AutoScalingGroupName: 'web', TargetGroupARNs: [TG_ARN] }],
    ['AttachLoadBalancers', { AutoScalingGroupName: 'web', LoadBalancerNames: ['classic-web'] }],
    ['DetachLoadBalancers', { AutoScalingGroupName: 'web', LoadBalancerNames: ['classic-web'] }],
    ['AttachTrafficSources', { AutoScalingGroupName: 'web', TrafficSources: [{ Identifier: TG_ARN, Type: 'elbv2' }] }],
    ['DetachTrafficSources', { AutoScalingGroupName: 'web', TrafficSources: [{ Identifier: 'classic-web', Type: 'elb' }] }],
  ] as const) {
    assert.deepEqual(await answer(fake, op, params), {}, op);
  }
});

test('lifecycle hooks: GlobalTimeout is the lesser of 48 hours and 100 heartbeats', { skip: skip ?? false }, async () => {
  const fake = new FakeAutoScalingApi().returns('describeLifecycleHooks', [
    sampleHook(),
    sampleHook({ name: 'launch-hook', transition: 'autoscaling:EC2_INSTANCE_LAUNCHING', heartbeatTimeoutSeconds: 3600, defaultResult: 'ABANDON', roleArn: 'arn:aws:iam::123456789012:role/hooks' }),
  ]);
  const out = await answer(fake, 'DescribeLifecycleHooks', { AutoScalingGroupName: 'web' });
  assert.deepEqual(out.LifecycleHooks[0], {
    LifecycleHookName: 'drain-hook',
    AutoScalingGroupName: 'web',
    LifecycleTransition: 'autoscaling:EC2_INSTANCE_TERMINATING',
    NotificationTargetARN: 'http://127.0.0.1:9/hook',
    NotificationMetadata: '{"team":"edge"}',
    HeartbeatTimeout: 120,
    GlobalTimeout: 12_000,
    DefaultResult: 'CONTINUE',
  });
  assert.equal(out.LifecycleHooks[1].GlobalTimeout, 172_800);
  assert.equal(out.LifecycleHooks[1].RoleARN, 'arn:aws:iam::123456789012:role/hooks');
  const hook = { LifecycleHookName: 'drain-hook', AutoScalingGroupName: 'web' };
  assert.deepEqual(await answer(fake, 'PutLifecycleHook', { ...hook, LifecycleTransition: 'autoscaling:EC2_INSTANCE_TERMINATING' }), {});
  assert.deepEqual(await answer(fake, 'DeleteLifecycleHook', hook), {});
  assert.deepEqual(await answer(fake, 'CompleteLifecycleAction', { ...hook, InstanceId: I1, LifecycleActionResult: 'CONTINUE' }), {});
  assert.deepEqual(await answer(fake, 'RecordLifecycleActionHeartbeat', { ...hook, InstanceId: I1 }), {});
});

test('instance refresh: the id, and each refresh with its progress, preferences and desired configuration', { skip: skip ?? false }, async () => {
  const done = sampleRefresh({ id: 'refresh-0', status: 'Successful', endedAt: SAMPLE_TIME + 600_000, replaced: sampleRefresh().toReplace });
  const fake = new FakeAutoScalingApi()
    .returns('describeLaunchTemplates', [sampleTemplate()])
    .returns('startInstanceRefresh', 'refresh-1')
    .returns('cancelInstanceRefresh', 'refresh-1')
    .returns('rollbackInstanceRefresh', 'refresh-1')
    .returns('describeInstanceRefreshes', [
      { ...sampleRefresh(), percentageComplete: 25, instancesToUpdate: 3 },
      { ...done, preferences: { ...done.preferences, checkpointPercentages: [] }, percentageComplete: 100, instancesToUpdate: 0 },
    ]);
  assert.deepEqual(await answer(fake, 'StartInstanceRefresh', { AutoScalingGroupName: 'web' }), { InstanceRefreshId: 'refresh-1' });
  assert.deepEqual(await answer(fake, 'CancelInstanceRefresh', { AutoScalingGroupName: 'web' }), { InstanceRefreshId: 'refresh-1' });
  assert.deepEqual(await answer(fake, 'RollbackInstanceRefresh', { AutoScalingGroupName: 'web' }), { InstanceRefreshId: 'refresh-1' });
  const out = await answer(fake, 'DescribeInstanceRefreshes', { AutoScalingGroupName: 'web' });
  const r = sampleRefresh();
  assert.deepEqual(out.InstanceRefreshes[0], {
    InstanceRefreshId: r.id,
    AutoScalingGroupName: 'web',
    Status: 'InProgress',
    StatusReason: r.statusReason,
    StartTime: CREATED,
    PercentageComplete: 25,
    InstancesToUpdate: 3,
    ProgressDetails: { LivePoolProgress: { PercentageComplete: 25, InstancesToUpdate: 3 } },
    Preferences: {
      MinHealthyPercentage: 90,
      InstanceWarmup: 15,
      CheckpointPercentages: [50, 100],
      CheckpointDelay: 60,
      SkipMatching: true,
      AutoRollback: false,
      MaxHealthyPercentage: 120,
    },
    DesiredConfiguration: { LaunchTemplate: { LaunchTemplateId: TEMPLATE_ID, LaunchTemplateName: 'web-template', Version: '3' } },
    Strategy: 'Rolling',
  });
  const finished = out.InstanceRefreshes[1];
  assert.equal(finished.PercentageComplete, 100);
  assert.equal(finished.InstancesToUpdate, 0);
  assert.equal(finished.EndTime, '2024-05-01T12:10:00+00:00');
  assert.equal(finished.Preferences.CheckpointPercentages, undefined);
});

test('the answers that state what ebb is', { skip: skip ?? false }, async () => {
  const fake = groupsFake();
  assert.deepEqual(await answer(fake, 'DescribeAccountLimits'), {
    MaxNumberOfAutoScalingGroups: 50,
    MaxNumberOfLaunchConfigurations: 0,
    NumberOfAutoScalingGroups: 3,
    NumberOfLaunchConfigurations: 0,
  });
  assert.equal((await answer(undefined, 'DescribeAccountLimits')).NumberOfAutoScalingGroups, 0);
  assert.deepEqual(await answer(undefined, 'DescribeLifecycleHookTypes'), {
    LifecycleHookTypes: ['autoscaling:EC2_INSTANCE_LAUNCHING', 'autoscaling:EC2_INSTANCE_TERMINATING'],
  });
  assert.deepEqual(await answer(undefined, 'DescribeTerminationPolicyTypes'), {
    TerminationPolicyTypes: ['Default', 'OldestInstance', 'NewestInstance', 'OldestLaunchTemplate'],
  });
  const processes = (await answer(undefined, 'DescribeScalingProcessTypes')).Processes.map((p: any) => p.ProcessName);
  assert.ok(processes.includes('Launch') && processes.includes('Terminate') && processes.includes('ReplaceUnhealthy'), processes.join());
  assert.deepEqual(await answer(undefined, 'DescribeAutoScalingNotificationTypes'), { AutoScalingNotificationTypes: [] });
});

test('every other Describe* answers its empty shape, running or not; actions without output have no Result', { skip: skip ?? false }, async () => {
  const fake = new FakeAutoScalingApi();
  let describes = 0;
  const facts = ['DescribeAccountLimits', 'DescribeLifecycleHookTypes', 'DescribeTerminationPolicyTypes', 'DescribeScalingProcessTypes', 'DescribeAutoScalingNotificationTypes'];
  for (const [action, entry] of Object.entries(AUTOSCALING_ACTIONS)) {
    if (entry.empty === undefined || facts.includes(action)) continue;
    describes++;
    // validate: false: the empty answer does not depend on the members the model requires.
    const idle = await answer(undefined, action, {}, false);
    for (const value of Object.values(idle)) if (Array.isArray(value)) assert.deepEqual(value, [], action);
  }
  assert.ok(describes >= 15, `${describes} Describe actions`);
  for (const action of ['DescribeAdjustmentTypes', 'DescribePolicies', 'DescribeWarmPool', 'DescribeLaunchConfigurations']) {
    assert.equal(Object.values(await answer(fake, action, {}, false)).flat().length, 0, action);
  }
  const none = await call(boto, fake, 'SetDesiredCapacity', { AutoScalingGroupName: 'web', DesiredCapacity: 1 });
  assert.doesNotMatch(none, /SetDesiredCapacityResult/);
  assert.match(none, /<ResponseMetadata><RequestId>req-autoscaling-test<\/RequestId><\/ResponseMetadata>/);
});
