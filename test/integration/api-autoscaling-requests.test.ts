import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  FakeAutoScalingApi,
  type RecordedCall,
  sampleActivity,
  sampleTemplate,
  TEMPLATE_ID,
  TG_ARN,
} from '../fakes/fake-autoscaling-api.ts';
import { groupActions } from '../../src/api/autoscaling/groups.ts';
import { hookActions } from '../../src/api/autoscaling/hooks.ts';
import { instanceActions } from '../../src/api/autoscaling/instances.ts';
import { refreshActions } from '../../src/api/autoscaling/refresh.ts';
import { trafficActions } from '../../src/api/autoscaling/traffic.ts';
import { Botocore, call, missingBotocore } from './api-autoscaling-botocore.ts';

/**
 * Auto Scaling requests as botocore serialises them (the `aws` CLI v1 and boto3 send this form body
 * once they have their input dict) reach the facade as the calls written here: each member read,
 * converted and named as the facade takes it. The answers' shapes are api-autoscaling-responses; the
 * refusals are api-autoscaling-validation.
 */

const skip = missingBotocore();
let boto: Botocore;
before(() => {
  if (skip === null) boto = new Botocore();
});
after(() => boto?.close());

const I1 = 'i-0a1b2c3d4e5f60001';
const I2 = 'i-0a1b2c3d4e5f60002';
const TOKEN = 'bcd2ba0f-9d38-4f23-a3b5-8e7c3a0a7b11';
const HOOK_URL = 'http://127.0.0.1:9/hook';

function newFake(): FakeAutoScalingApi {
  return new FakeAutoScalingApi()
    .returns('describeLaunchTemplates', [sampleTemplate()])
    .returns('describeAutoScalingGroups', [])
    .returns('describeAutoScalingInstances', [])
    .returns('terminateInstanceInAutoScalingGroup', sampleActivity())
    .returns('detachInstances', [sampleActivity()])
    .returns('enterStandby', [sampleActivity()])
    .returns('exitStandby', [sampleActivity()])
    .returns('describeScalingActivities', [])
    .returns('describeLoadBalancerTargetGroups', [])
    .returns('describeLoadBalancers', [])
    .returns('describeLifecycleHooks', [])
    .returns('startInstanceRefresh', 'refresh-1')
    .returns('describeInstanceRefreshes', [])
    .returns('cancelInstanceRefresh', 'refresh-1')
    .returns('rollbackInstanceRefresh', 'refresh-1');
}

/** Reads the handlers make only to draw their answer (group ARNs, template names), unless the case expects them. */
const PRESENTATION = new Set(['describeLaunchTemplates', 'describeAutoScalingGroups']);

function commands(calls: readonly RecordedCall[], expected: ReadonlyArray<readonly unknown[]>): Array<unknown[]> {
  const wanted = new Set(expected.map((e) => e[0]));
  return calls.filter((c) => !PRESENTATION.has(c.method) || wanted.has(c.method)).map((c) => [c.method, ...c.args]);
}

type Case = readonly [operation: string, params: object, expected: ReadonlyArray<readonly unknown[]>];

const CASES: readonly Case[] = [
  [
    'CreateAutoScalingGroup',
    {
      AutoScalingGroupName: 'web',
      LaunchTemplate: { LaunchTemplateName: 'web-template', Version: '$Latest' },
      MinSize: 1,
      MaxSize: 4,
      DesiredCapacity: 2,
      TargetGroupARNs: [TG_ARN],
      LoadBalancerNames: ['classic-web'],
      HealthCheckType: 'EC2,ELB',
      HealthCheckGracePeriod: 30,
      DefaultInstanceWarmup: 10,
      TerminationPolicies: ['OldestInstance', 'Default'],
      NewInstancesProtectedFromScaleIn: true,
      LifecycleHookSpecificationList: [
        {
          LifecycleHookName: 'launch-hook',
          LifecycleTransition: 'autoscaling:EC2_INSTANCE_LAUNCHING',
          HeartbeatTimeout: 60,
          DefaultResult: 'CONTINUE',
          NotificationTargetARN: HOOK_URL,
          NotificationMetadata: 'meta',
        },
      ],
      Tags: [{ ResourceId: 'web', ResourceType: 'auto-scaling-group', Key: 'team', Value: 'edge', PropagateAtLaunch: true }],
      AvailabilityZones: ['us-east-1a', 'us-east-1b'],
      VPCZoneIdentifier: 'subnet-1,subnet-2',
      DefaultCooldown: 120,
    },
    [
      [
        'createAutoScalingGroup',
        {
          name: 'web',
          launchTemplate: { name: 'web-template', version: '$Latest' },
          minSize: 1,
          maxSize: 4,
          desiredCapacity: 2,
          targetGroupArns: [TG_ARN],
          loadBalancerNames: ['classic-web'],
          healthCheckType: 'ELB',
          healthCheckGracePeriodSeconds: 30,
          defaultInstanceWarmupSeconds: 10,
          terminationPolicies: ['OldestInstance', 'Default'],
          newInstancesProtectedFromScaleIn: true,
          lifecycleHooks: [
            {
              group: 'web',
              name: 'launch-hook',
              transition: 'autoscaling:EC2_INSTANCE_LAUNCHING',
              heartbeatTimeoutSeconds: 60,
              defaultResult: 'CONTINUE',
              notificationTargetArn: HOOK_URL,
              notificationMetadata: 'meta',
            },
          ],
          tags: [{ key: 'team', value: 'edge' }],
        },
      ],
    ],
  ],
  [
    'CreateAutoScalingGroup',
    {
      AutoScalingGroupName: 'api',
      LaunchTemplate: { LaunchTemplateId: TEMPLATE_ID },
      MinSize: 0,
      MaxSize: 2,
      TrafficSources: [{ Identifier: TG_ARN, Type: 'elbv2' }, { Identifier: 'classic-web', Type: 'elb' }],
    },
    [['createAutoScalingGroup', { name: 'api', launchTemplate: { id: TEMPLATE_ID }, minSize: 0, maxSize: 2, targetGroupArns: [TG_ARN], loadBalancerNames: ['classic-web'] }]],
  ],
  [
    'UpdateAutoScalingGroup',
    { AutoScalingGroupName: 'web', MinSize: 0, DesiredCapacity: 3, HealthCheckType: 'EC2', DefaultInstanceWarmup: -1, LaunchTemplate: { LaunchTemplateId: TEMPLATE_ID, Version: '3' } },
    [['updateAutoScalingGroup', { name: 'web', minSize: 0, desiredCapacity: 3, healthCheckType: 'EC2', defaultInstanceWarmupSeconds: -1, launchTemplate: { id: TEMPLATE_ID, version: '3' } }]],
  ],
  ['UpdateAutoScalingGroup', { AutoScalingGroupName: 'web', MaxSize: 6 }, [['updateAutoScalingGroup', { name: 'web', maxSize: 6 }]]],
  ['DeleteAutoScalingGroup', { AutoScalingGroupName: 'web', ForceDelete: true }, [['deleteAutoScalingGroup', 'web', true]]],
  ['DeleteAutoScalingGroup', { AutoScalingGroupName: 'web' }, [['deleteAutoScalingGroup', 'web', false]]],
  ['DescribeAutoScalingGroups', { AutoScalingGroupNames: ['web', 'api'], MaxRecords: 10 }, [['describeAutoScalingGroups', ['web', 'api']]]],
  ['DescribeAutoScalingGroups', {}, [['describeAutoScalingGroups', undefined]]],
  ['DescribeAutoScalingInstances', { InstanceIds: [I1, I2], MaxRecords: 50 }, [['describeAutoScalingInstances', [I1, I2]]]],
  ['DescribeAutoScalingInstances', {}, [['describeAutoScalingInstances', undefined]]],
  ['SetDesiredCapacity', { AutoScalingGroupName: 'web', DesiredCapacity: 3, HonorCooldown: true }, [['setDesiredCapacity', 'web', 3]]],
  ['TerminateInstanceInAutoScalingGroup', { InstanceId: I1, ShouldDecrementDesiredCapacity: false }, [['terminateInstanceInAutoScalingGroup', I1, false]]],
  ['SetInstanceHealth', { InstanceId: I1, HealthStatus: 'Unhealthy', ShouldRespectGracePeriod: false }, [['setInstanceHealth', I1, 'Unhealthy', false]]],
  ['SetInstanceHealth', { InstanceId: I1, HealthStatus: 'Healthy' }, [['setInstanceHealth', I1, 'Healthy', true]]],
  ['SetInstanceProtection', { InstanceIds: [I1, I2], AutoScalingGroupName: 'web', ProtectedFromScaleIn: true }, [['setInstanceProtection', 'web', [I1, I2], true]]],
  ['AttachInstances', { InstanceIds: [I1], AutoScalingGroupName: 'web' }, [['attachInstances', 'web', [I1]]]],
  ['DetachInstances', { InstanceIds: [I1], AutoScalingGroupName: 'web', ShouldDecrementDesiredCapacity: true }, [['detachInstances', 'web', [I1], true]]],
  ['AttachLoadBalancerTargetGroups', { AutoScalingGroupName: 'web', TargetGroupARNs: [TG_ARN] }, [['attachLoadBalancerTargetGroups', 'web', [TG_ARN]]]],
  ['DetachLoadBalancerTargetGroups', { AutoScalingGroupName: 'web', TargetGroupARNs: [TG_ARN] }, [['detachLoadBalancerTargetGroups', 'web', [TG_ARN]]]],
  ['DescribeLoadBalancerTargetGroups', { AutoScalingGroupName: 'web' }, [['describeLoadBalancerTargetGroups', 'web']]],
  ['AttachLoadBalancers', { AutoScalingGroupName: 'web', LoadBalancerNames: ['classic-web'] }, [['attachLoadBalancers', 'web', ['classic-web']]]],
  ['DetachLoadBalancers', { AutoScalingGroupName: 'web', LoadBalancerNames: ['classic-web'] }, [['detachLoadBalancers', 'web', ['classic-web']]]],
  ['DescribeLoadBalancers', { AutoScalingGroupName: 'web' }, [['describeLoadBalancers', 'web']]],
  [
    'AttachTrafficSources',
    { AutoScalingGroupName: 'web', TrafficSources: [{ Identifier: TG_ARN, Type: 'elbv2' }, { Identifier: 'classic-web', Type: 'elb' }] },
    [
      ['attachLoadBalancerTargetGroups', 'web', [TG_ARN]],
      ['attachLoadBalancers', 'web', ['classic-web']],
    ],
  ],
  // Without a Type, an ARN is a target group's.
  ['DetachTrafficSources', { AutoScalingGroupName: 'web', TrafficSources: [{ Identifier: TG_ARN }] }, [['detachLoadBalancerTargetGroups', 'web', [TG_ARN]]]],
  ['DescribeTrafficSources', { AutoScalingGroupName: 'web', TrafficSourceType: 'elb' }, [['describeLoadBalancers', 'web']]],
  [
    'DescribeTrafficSources',
    { AutoScalingGroupName: 'web' },
    [
      ['describeLoadBalancerTargetGroups', 'web'],
      ['describeLoadBalancers', 'web'],
    ],
  ],
  ['EnterStandby', { InstanceIds: [I1, I2], AutoScalingGroupName: 'web', ShouldDecrementDesiredCapacity: true }, [['enterStandby', 'web', [I1, I2], true]]],
  ['ExitStandby', { InstanceIds: [I1], AutoScalingGroupName: 'web' }, [['exitStandby', 'web', [I1]]]],
  [
    'DescribeScalingActivities',
    { ActivityIds: ['a-1'], AutoScalingGroupName: 'web', MaxRecords: 10, IncludeDeletedGroups: true },
    [['describeScalingActivities', { group: 'web', activityIds: ['a-1'], maxRecords: 11 }]],
  ],
  ['DescribeScalingActivities', {}, [['describeScalingActivities', { maxRecords: 101 }]]],
  // The second page of 10 needs the facade's first 21 (the 21st says whether a third follows).
  ['DescribeScalingActivities', { MaxRecords: 10, NextToken: Buffer.from('ebb-10').toString('base64url') }, [['describeScalingActivities', { maxRecords: 21 }]]],
  [
    'CreateOrUpdateTags',
    {
      Tags: [
        { ResourceId: 'web', ResourceType: 'auto-scaling-group', Key: 'a', Value: '1', PropagateAtLaunch: true },
        { ResourceId: 'api', ResourceType: 'auto-scaling-group', Key: 'b', Value: '2', PropagateAtLaunch: false },
        { ResourceId: 'web', ResourceType: 'auto-scaling-group', Key: 'c' },
      ],
    },
    [
      ['createOrUpdateTags', 'web', [{ key: 'a', value: '1' }, { key: 'c', value: '' }]],
      ['createOrUpdateTags', 'api', [{ key: 'b', value: '2' }]],
    ],
  ],
  ['DeleteTags', { Tags: [{ ResourceId: 'web', ResourceType: 'auto-scaling-group', Key: 'a' }] }, [['deleteTags', 'web', ['a']]]],
  ['DescribeTags', { Filters: [{ Name: 'auto-scaling-group', Values: ['web'] }] }, [['describeAutoScalingGroups']]],
  [
    'PutLifecycleHook',
    {
      LifecycleHookName: 'drain-hook',
      AutoScalingGroupName: 'web',
      LifecycleTransition: 'autoscaling:EC2_INSTANCE_TERMINATING',
      NotificationTargetARN: HOOK_URL,
      RoleARN: 'arn:aws:iam::123456789012:role/hooks',
      NotificationMetadata: '{"team":"edge"}',
      HeartbeatTimeout: 300,
      DefaultResult: 'ABANDON',
    },
    [
      [
        'putLifecycleHook',
        {
          group: 'web',
          name: 'drain-hook',
          transition: 'autoscaling:EC2_INSTANCE_TERMINATING',
          notificationTargetArn: HOOK_URL,
          roleArn: 'arn:aws:iam::123456789012:role/hooks',
          notificationMetadata: '{"team":"edge"}',
          heartbeatTimeoutSeconds: 300,
          defaultResult: 'ABANDON',
        },
      ],
    ],
  ],
  // Changing an existing hook: the transition may be left out.
  ['PutLifecycleHook', { LifecycleHookName: 'drain-hook', AutoScalingGroupName: 'web', HeartbeatTimeout: 30 }, [['putLifecycleHook', { group: 'web', name: 'drain-hook', heartbeatTimeoutSeconds: 30 }]]],
  ['DescribeLifecycleHooks', { AutoScalingGroupName: 'web', LifecycleHookNames: ['drain-hook'] }, [['describeLifecycleHooks', 'web', ['drain-hook']]]],
  ['DescribeLifecycleHooks', { AutoScalingGroupName: 'web' }, [['describeLifecycleHooks', 'web', undefined]]],
  ['DeleteLifecycleHook', { LifecycleHookName: 'drain-hook', AutoScalingGroupName: 'web' }, [['deleteLifecycleHook', 'web', 'drain-hook']]],
  [
    'CompleteLifecycleAction',
    { LifecycleHookName: 'drain-hook', AutoScalingGroupName: 'web', LifecycleActionToken: TOKEN, LifecycleActionResult: 'CONTINUE' },
    [['completeLifecycleAction', { group: 'web', hookName: 'drain-hook', token: TOKEN, result: 'CONTINUE' }]],
  ],
  [
    'CompleteLifecycleAction',
    { LifecycleHookName: 'drain-hook', AutoScalingGroupName: 'web', InstanceId: I1, LifecycleActionResult: 'ABANDON' },
    [['completeLifecycleAction', { group: 'web', hookName: 'drain-hook', instanceId: I1, result: 'ABANDON' }]],
  ],
  [
    'RecordLifecycleActionHeartbeat',
    { LifecycleHookName: 'drain-hook', AutoScalingGroupName: 'web', InstanceId: I1 },
    [['recordLifecycleActionHeartbeat', { group: 'web', hookName: 'drain-hook', instanceId: I1 }]],
  ],
  [
    'StartInstanceRefresh',
    {
      AutoScalingGroupName: 'web',
      Strategy: 'Rolling',
      DesiredConfiguration: { LaunchTemplate: { LaunchTemplateId: TEMPLATE_ID, Version: '$Latest' } },
      Preferences: {
        MinHealthyPercentage: 50,
        MaxHealthyPercentage: 150,
        InstanceWarmup: 5,
        SkipMatching: true,
        CheckpointPercentages: [25, 100],
        CheckpointDelay: 30,
        AutoRollback: false,
        ScaleInProtectedInstances: 'Refresh',
        StandbyInstances: 'Ignore',
      },
    },
    [
      [
        'startInstanceRefresh',
        {
          group: 'web',
          desiredConfiguration: { launchTemplate: { id: TEMPLATE_ID, version: '$Latest' } },
          preferences: {
            minHealthyPercentage: 50,
            maxHealthyPercentage: 150,
            instanceWarmupSeconds: 5,
            skipMatching: true,
            checkpointPercentages: [25, 100],
            checkpointDelaySeconds: 30,
          },
        },
      ],
    ],
  ],
  ['StartInstanceRefresh', { AutoScalingGroupName: 'web' }, [['startInstanceRefresh', { group: 'web' }]]],
  ['DescribeInstanceRefreshes', { AutoScalingGroupName: 'web', InstanceRefreshIds: ['refresh-1'] }, [['describeInstanceRefreshes', 'web', ['refresh-1']]]],
  ['CancelInstanceRefresh', { AutoScalingGroupName: 'web', WaitForTransitioningInstances: true }, [['cancelInstanceRefresh', 'web']]],
  ['RollbackInstanceRefresh', { AutoScalingGroupName: 'web' }, [['rollbackInstanceRefresh', 'web']]],
];

test('each request reaches the facade as the call it means', { skip: skip ?? false }, async () => {
  const fake = newFake();
  for (const [operation, params, expected] of CASES) {
    await call(boto, fake, operation, params);
    assert.deepEqual(commands(fake.take(), expected), expected, `${operation} ${JSON.stringify(params)}`);
  }
});

test('every action ebb runs on the facade has a case above', () => {
  const covered = new Set(CASES.map(([op]) => op));
  const handled = Object.keys({ ...groupActions, ...instanceActions, ...trafficActions, ...hookActions, ...refreshActions });
  assert.ok(handled.length >= 35, `${handled.length} actions`);
  assert.deepEqual(handled.filter((a) => !covered.has(a)), []);
});
