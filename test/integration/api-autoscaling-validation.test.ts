import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { EbbError, ebbError } from '../../src/shared/errors.ts';
import { FakeAutoScalingApi, TEMPLATE_ID, TG_ARN } from '../fakes/fake-autoscaling-api.ts';
import { Botocore, call, missingBotocore } from './api-autoscaling-botocore.ts';

/**
 * What ebb refuses before the facade hears of it: members missing, out of range, outside their enum,
 * with AWS Auto Scaling's wording (the member's path in lower camel case); what ebb does not do, said
 * plainly; and an ebb that runs without Auto Scaling. Each refusal leaves the facade uncalled.
 */

const skip = missingBotocore();
let boto: Botocore;
before(() => {
  if (skip === null) boto = new Botocore();
});
after(() => boto?.close());

const I1 = 'i-0a1b2c3d4e5f60001';
const GROUP = { LaunchTemplate: { LaunchTemplateId: TEMPLATE_ID }, MinSize: 0, MaxSize: 2 };
const HOOK = { LifecycleHookName: 'h', AutoScalingGroupName: 'web' };
const ids = (n: number) => Array.from({ length: n }, (_, i) => `i-${String(i).padStart(17, '0')}`);

/** Each: operation, parameters (sent without botocore's own checks, as a script or another SDK may), code, message. */
type Refusal = readonly [operation: string, params: object, code: string, message: RegExp];

const REFUSALS: readonly Refusal[] = [
  // Required members, in AWS's words.
  ['CreateAutoScalingGroup', { AutoScalingGroupName: 'web', LaunchTemplate: GROUP.LaunchTemplate, MaxSize: 2 }, 'ValidationError', /^1 validation error detected: Value null at 'minSize' failed to satisfy constraint: Member must not be null$/],
  ['CreateAutoScalingGroup', { ...GROUP }, 'ValidationError', /Value null at 'autoScalingGroupName'/],
  ['CreateAutoScalingGroup', { AutoScalingGroupName: '', ...GROUP }, 'ValidationError', /Value '' at 'autoScalingGroupName' failed to satisfy constraint: Member must have length greater than or equal to 1/],
  ['CreateAutoScalingGroup', { AutoScalingGroupName: 'x'.repeat(256), ...GROUP }, 'ValidationError', /at 'autoScalingGroupName' .*less than or equal to 255/],
  ['CreateAutoScalingGroup', { AutoScalingGroupName: 'web', ...GROUP, MinSize: -1 }, 'ValidationError', /Value '-1' at 'minSize' .*greater than or equal to 0/],
  ['SetDesiredCapacity', { AutoScalingGroupName: 'web' }, 'ValidationError', /Value null at 'desiredCapacity'/],
  ['SetDesiredCapacity', { AutoScalingGroupName: 'web', DesiredCapacity: 'two' }, 'ValidationError', /Value 'two' at 'desiredCapacity' .*integer/],
  ['DetachInstances', { AutoScalingGroupName: 'web', InstanceIds: [I1] }, 'ValidationError', /Value null at 'shouldDecrementDesiredCapacity'/],
  ['EnterStandby', { AutoScalingGroupName: 'web', InstanceIds: [I1] }, 'ValidationError', /Value null at 'shouldDecrementDesiredCapacity'/],
  ['TerminateInstanceInAutoScalingGroup', { ShouldDecrementDesiredCapacity: true }, 'ValidationError', /Value null at 'instanceId'/],
  ['TerminateInstanceInAutoScalingGroup', { InstanceId: 'i-0123456789abcdef01234', ShouldDecrementDesiredCapacity: true }, 'ValidationError', /at 'instanceId' .*less than or equal to 19/],
  ['AttachLoadBalancerTargetGroups', { AutoScalingGroupName: 'web' }, 'ValidationError', /Value null at 'targetGroupARNs'/],
  ['CreateOrUpdateTags', { Tags: [{ ResourceType: 'auto-scaling-group', Key: 'a' }] }, 'ValidationError', /Value null at 'tags\.1\.member\.resourceId'/],
  ['CreateOrUpdateTags', { Tags: [{ ResourceId: 'web', ResourceType: 'auto-scaling-group' }] }, 'ValidationError', /Value null at 'tags\.1\.member\.key'/],
  ['StartInstanceRefresh', {}, 'ValidationError', /Value null at 'autoScalingGroupName'/],
  // Ranges.
  ['PutLifecycleHook', { ...HOOK, HeartbeatTimeout: 29 }, 'ValidationError', /Value '29' at 'heartbeatTimeout' .*greater than or equal to 30/],
  ['PutLifecycleHook', { ...HOOK, HeartbeatTimeout: 7201 }, 'ValidationError', /Value '7201' at 'heartbeatTimeout' .*less than or equal to 7200/],
  [
    'CreateAutoScalingGroup',
    { AutoScalingGroupName: 'web', ...GROUP, LifecycleHookSpecificationList: [{ LifecycleHookName: 'h', LifecycleTransition: 'autoscaling:EC2_INSTANCE_LAUNCHING', HeartbeatTimeout: 10 }] },
    'ValidationError',
    /at 'lifecycleHookSpecificationList\.1\.member\.heartbeatTimeout' .*greater than or equal to 30/,
  ],
  ['StartInstanceRefresh', { AutoScalingGroupName: 'web', Preferences: { MinHealthyPercentage: 101 } }, 'ValidationError', /at 'preferences\.minHealthyPercentage' .*less than or equal to 100/],
  ['StartInstanceRefresh', { AutoScalingGroupName: 'web', Preferences: { MaxHealthyPercentage: 99 } }, 'ValidationError', /at 'preferences\.maxHealthyPercentage' .*greater than or equal to 100/],
  ['StartInstanceRefresh', { AutoScalingGroupName: 'web', Preferences: { MaxHealthyPercentage: 201 } }, 'ValidationError', /at 'preferences\.maxHealthyPercentage' .*less than or equal to 200/],
  ['StartInstanceRefresh', { AutoScalingGroupName: 'web', Preferences: { CheckpointPercentages: [50, 0] } }, 'ValidationError', /at 'preferences\.checkpointPercentages\.2\.member' .*greater than or equal to 1/],
  ['StartInstanceRefresh', { AutoScalingGroupName: 'web', Preferences: { CheckpointDelay: 172_801 } }, 'ValidationError', /at 'preferences\.checkpointDelay'/],
  ['EnterStandby', { AutoScalingGroupName: 'web', InstanceIds: ids(21), ShouldDecrementDesiredCapacity: true }, 'ValidationError', /at 'instanceIds' .*less than or equal to 20/],
  ['DetachInstances', { AutoScalingGroupName: 'web', InstanceIds: ids(21), ShouldDecrementDesiredCapacity: true }, 'ValidationError', /at 'instanceIds' .*less than or equal to 20/],
  ['AttachInstances', { AutoScalingGroupName: 'web', InstanceIds: ids(21) }, 'ValidationError', /at 'instanceIds' .*less than or equal to 20/],
  ['ExitStandby', { AutoScalingGroupName: 'web', InstanceIds: ids(21) }, 'ValidationError', /at 'instanceIds' .*less than or equal to 20/],
  ['SetInstanceProtection', { AutoScalingGroupName: 'web', InstanceIds: ids(51), ProtectedFromScaleIn: true }, 'ValidationError', /at 'instanceIds' .*less than or equal to 50/],
  ['DescribeAutoScalingGroups', { MaxRecords: 101 }, 'ValidationError', /at 'maxRecords' .*less than or equal to 100/],
  ['DescribeAutoScalingGroups', { NextToken: 'not-from-ebb' }, 'ValidationError', /NextToken 'not-from-ebb' is not one ebb gave out/],
  // Enums (case-sensitive, as on AWS).
  ['SetInstanceHealth', { InstanceId: I1, HealthStatus: 'healthy' }, 'ValidationError', /Value 'healthy' at 'healthStatus' .*enum value set: \[Healthy, Unhealthy\]/],
  ['CompleteLifecycleAction', { ...HOOK, InstanceId: I1, LifecycleActionResult: 'MAYBE' }, 'ValidationError', /at 'lifecycleActionResult' .*\[CONTINUE, ABANDON\]/],
  ['PutLifecycleHook', { ...HOOK, DefaultResult: 'continue' }, 'ValidationError', /at 'defaultResult' .*\[CONTINUE, ABANDON\]/],
  ['PutLifecycleHook', { ...HOOK, LifecycleTransition: 'autoscaling:EC2_INSTANCE_LAUNCH' }, 'ValidationError', /at 'lifecycleTransition' .*EC2_INSTANCE_LAUNCHING/],
  ['CompleteLifecycleAction', { ...HOOK, LifecycleActionResult: 'CONTINUE' }, 'ValidationError', /LifecycleActionToken .* or by InstanceId/],
  ['CompleteLifecycleAction', { ...HOOK, LifecycleActionToken: 'short', LifecycleActionResult: 'CONTINUE' }, 'ValidationError', /at 'lifecycleActionToken' .*greater than or equal to 36/],
  ['StartInstanceRefresh', { AutoScalingGroupName: 'web', Strategy: 'Sideways' }, 'ValidationError', /at 'strategy' .*\[Rolling, ReplaceRootVolume\]/],
  // What ebb does not do.
  ['CreateAutoScalingGroup', { AutoScalingGroupName: 'web', LaunchConfigurationName: 'lc', MinSize: 0, MaxSize: 1 }, 'ValidationError', /LaunchConfigurationName is not supported by ebb: ebb launches instances from launch templates/],
  ['CreateAutoScalingGroup', { AutoScalingGroupName: 'web', MinSize: 0, MaxSize: 1, MixedInstancesPolicy: { LaunchTemplate: { LaunchTemplateSpecification: { LaunchTemplateId: TEMPLATE_ID } } } }, 'ValidationError', /MixedInstancesPolicy is not supported by ebb/],
  ['CreateAutoScalingGroup', { AutoScalingGroupName: 'web', MinSize: 0, MaxSize: 1 }, 'ValidationError', /needs a LaunchTemplate/],
  ['CreateAutoScalingGroup', { AutoScalingGroupName: 'web', ...GROUP, LaunchTemplate: { LaunchTemplateId: TEMPLATE_ID, LaunchTemplateName: 'web-template' } }, 'ValidationError', /exactly one of LaunchTemplateId and LaunchTemplateName/],
  ['CreateAutoScalingGroup', { AutoScalingGroupName: 'web', ...GROUP, HealthCheckType: 'EC2,EBS' }, 'ValidationError', /HealthCheckType EBS is not supported by ebb/],
  ['CreateAutoScalingGroup', { AutoScalingGroupName: 'web', ...GROUP, HealthCheckType: 'PING' }, 'ValidationError', /at 'healthCheckType'/],
  ['CreateAutoScalingGroup', { AutoScalingGroupName: 'web', ...GROUP, TerminationPolicies: ['ClosestToNextInstanceHour'] }, 'ValidationError', /'ClosestToNextInstanceHour' is not supported by ebb; use Default, OldestInstance/],
  ['CreateAutoScalingGroup', { AutoScalingGroupName: 'web', ...GROUP, Tags: [{ ResourceId: 'other', Key: 'a' }] }, 'ValidationError', /names the group 'other'/],
  ['CreateAutoScalingGroup', { AutoScalingGroupName: 'web', ...GROUP, MaxInstanceLifetime: 86_400 }, 'ValidationError', /MaxInstanceLifetime is not supported by ebb/],
  ['CreateAutoScalingGroup', { AutoScalingGroupName: 'web', ...GROUP, TrafficSources: [{ Identifier: 'arn:aws:vpc-lattice:us-east-1:123456789012:targetgroup/tg-1', Type: 'vpc-lattice' }] }, 'ValidationError', /type 'vpc-lattice' is not supported by ebb/],
  ['AttachTrafficSources', { AutoScalingGroupName: 'web', TrafficSources: [{ Identifier: 'classic-web' }] }, 'ValidationError', /needs a Type: elbv2 .* elb/],
  ['UpdateAutoScalingGroup', { AutoScalingGroupName: 'web', LaunchConfigurationName: 'lc' }, 'ValidationError', /launch templates/],
  ['StartInstanceRefresh', { AutoScalingGroupName: 'web', Strategy: 'ReplaceRootVolume' }, 'ValidationError', /ReplaceRootVolume' is not supported by ebb/],
  ['StartInstanceRefresh', { AutoScalingGroupName: 'web', Preferences: { AutoRollback: true } }, 'ValidationError', /AutoRollback is not supported by ebb: .*RollbackInstanceRefresh/],
  ['StartInstanceRefresh', { AutoScalingGroupName: 'web', Preferences: { ScaleInProtectedInstances: 'Ignore' } }, 'ValidationError', /ScaleInProtectedInstances 'Ignore' is not supported by ebb: a refresh replaces protected instances too; leave it unset or set Refresh/],
  ['StartInstanceRefresh', { AutoScalingGroupName: 'web', Preferences: { StandbyInstances: 'Wait' } }, 'ValidationError', /StandbyInstances 'Wait' is not supported by ebb: .*set Ignore/],
  ['StartInstanceRefresh', { AutoScalingGroupName: 'web', DesiredConfiguration: { MixedInstancesPolicy: { LaunchTemplate: { LaunchTemplateSpecification: { LaunchTemplateId: TEMPLATE_ID } } } } }, 'ValidationError', /MixedInstancesPolicy is not supported by ebb/],
  ['DescribeScalingActivities', { Filters: [{ Name: 'StatusCode', Values: ['Failed'] }] }, 'ValidationError', /Filters is not supported by ebb for DescribeScalingActivities/],
  ['DescribeAutoScalingGroups', { Filters: [{ Name: 'instance-state', Values: ['x'] }] }, 'ValidationError', /Filter 'instance-state' is not supported by ebb here; use tag:<key>, tag-key, tag-value/],
  // Actions of the model ebb does not serve say what to use instead.
  ['PutScalingPolicy', { AutoScalingGroupName: 'web', PolicyName: 'p' }, 'InvalidAction', /PutScalingPolicy is not available in ebb: .*SetDesiredCapacity/],
  ['CreateLaunchConfiguration', { LaunchConfigurationName: 'lc' }, 'InvalidAction', /not available in ebb: .*create-launch-template/],
  ['SuspendProcesses', { AutoScalingGroupName: 'web' }, 'InvalidAction', /not available in ebb: .*EnterStandby/],
];

async function refusal(fake: FakeAutoScalingApi | undefined, operation: string, params: object): Promise<EbbError> {
  try {
    await call(boto, fake, operation, params, false);
  } catch (e) {
    assert.ok(e instanceof EbbError, `${operation}: ${String(e)}`);
    return e;
  }
  assert.fail(`${operation} ${JSON.stringify(params)} was accepted`);
}

test('malformed and unsupported requests are refused before the facade is called', { skip: skip ?? false }, async () => {
  const fake = new FakeAutoScalingApi();
  for (const [operation, params, code, message] of REFUSALS) {
    const e = await refusal(fake, operation, params);
    assert.equal(e.code, code, `${operation}: ${e.message}`);
    assert.match(e.message, message, operation);
    assert.deepEqual(fake.take(), [], `${operation} reached the facade`);
  }
});

test('the limits are inclusive: 20 instances to standby, 50 to protect, heartbeats of 30 and 7200 seconds', { skip: skip ?? false }, async () => {
  const fake = new FakeAutoScalingApi().returns('enterStandby', []).returns('describeAutoScalingGroups', []);
  await call(boto, fake, 'EnterStandby', { AutoScalingGroupName: 'web', InstanceIds: ids(20), ShouldDecrementDesiredCapacity: true });
  await call(boto, fake, 'SetInstanceProtection', { AutoScalingGroupName: 'web', InstanceIds: ids(50), ProtectedFromScaleIn: true });
  await call(boto, fake, 'PutLifecycleHook', { ...HOOK, HeartbeatTimeout: 30 });
  await call(boto, fake, 'PutLifecycleHook', { ...HOOK, HeartbeatTimeout: 7200 });
  await call(boto, fake, 'StartInstanceRefresh', { AutoScalingGroupName: 'web', Preferences: { MinHealthyPercentage: 0, MaxHealthyPercentage: 200 } });
  assert.deepEqual(
    fake.take().map((c) => c.method).filter((m) => m !== 'describeAutoScalingGroups'),
    ['enterStandby', 'setInstanceProtection', 'putLifecycleHook', 'putLifecycleHook', 'startInstanceRefresh'],
  );
});

test("the facade's own refusals reach the client unchanged", { skip: skip ?? false }, async () => {
  const fake = new FakeAutoScalingApi()
    .fails('createAutoScalingGroup', ebbError('AlreadyExists', 'AutoScalingGroup by this name already exists - A group with the name web already exists'))
    .fails('setDesiredCapacity', ebbError('ValidationError', 'New SetDesiredCapacity value 9 is above max value 4 for the AutoScalingGroup.'))
    .fails('cancelInstanceRefresh', ebbError('ActiveInstanceRefreshNotFound', 'No in progress or pending Instance Refresh found for Auto Scaling group web'));
  const exists = await refusal(fake, 'CreateAutoScalingGroup', { AutoScalingGroupName: 'web', ...GROUP, TargetGroupARNs: [TG_ARN] });
  assert.equal(exists.code, 'AlreadyExists');
  const above = await refusal(fake, 'SetDesiredCapacity', { AutoScalingGroupName: 'web', DesiredCapacity: 9 });
  assert.match(above.message, /above max value 4/);
  assert.equal((await refusal(fake, 'CancelInstanceRefresh', { AutoScalingGroupName: 'web' })).code, 'ActiveInstanceRefreshNotFound');
});

test('an ebb without Auto Scaling finds no groups and refuses to act, saying why', { skip: skip ?? false }, async () => {
  for (const [operation, params] of [
    ['CreateAutoScalingGroup', { AutoScalingGroupName: 'web', ...GROUP }],
    ['SetDesiredCapacity', { AutoScalingGroupName: 'web', DesiredCapacity: 1 }],
    ['PutLifecycleHook', HOOK],
    ['StartInstanceRefresh', { AutoScalingGroupName: 'web' }],
  ] as const) {
    const e = await refusal(undefined, operation, params);
    assert.equal(e.code, 'InvalidAction');
    assert.match(e.message, new RegExp(`^Auto Scaling is not running in this ebb, so ${operation} has no group to act on`));
  }
  assert.match(await call(boto, undefined, 'DescribeAutoScalingGroups', {}), /<DescribeAutoScalingGroupsResult><AutoScalingGroups\/><\/DescribeAutoScalingGroupsResult>/);
  assert.match(await call(boto, undefined, 'DescribeLifecycleHooks', { AutoScalingGroupName: 'web' }), /<LifecycleHooks\/>/);
});
