import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createAdminHandler } from '../../src/api/admin-server.ts';
import { AutoScaling } from '../../src/autoscaling/auto-scaling.ts';
import type { LifecycleState } from '../../src/autoscaling/records.ts';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { HttpDataPlane } from '../../src/dataplane/http-data-plane.ts';
import { ActiveHealthChecker } from '../../src/health/active-health-checker.ts';
import { ProcessInstanceRunner } from '../../src/instances/process-runner.ts';
import { realClock } from '../../src/shared/clock.ts';
import { InMemoryStateStore } from '../../src/store/in-memory-state-store.ts';
import { Cleanup, tempDir } from '../support/cleanup.ts';
import { waitUntil } from '../support/timing.ts';
import { ACCESS_KEY_ID, aws, cliEnv, failsWith, missingClient, ok, REGION, SECRET_ACCESS_KEY, type ApiHarness } from './api-harness.ts';
import { alive } from '../support/processes.ts';

/**
 * Auto Scaling driven by the real `aws autoscaling` CLI (v1) against an in-process ebb: the control
 * plane, the Auto Scaling facade and real instances (each a `sleep` process ebb starts and stops).
 * Two groups: `web`, behind a target group, and `hooked`, whose launches wait on a lifecycle hook
 * that notifies an http:// URL. The calls that do not depend on each other run at once, since each
 * costs a Python start.
 */

const skip = missingClient('aws');
const cleanup = new Cleanup();
let h: ApiHarness;
let autoscaling: AutoScaling;
let tgArn: string;
let hookUrl: string;
const notifications: Array<Record<string, string>> = [];
/** Every pid an instance had: stopped (their process groups) at cleanup if anything is left. */
const pids = new Set<number>();
/** What the admin API logged as internal errors (a handler that threw something other than an EbbError). */
const internalErrors: unknown[] = [];

before(async () => {
  if (skip !== null) return;
  const dir = await tempDir(cleanup);
  const store = new InMemoryStateStore();
  const dataPlane = new HttpDataPlane({ id: 'api-autoscaling-cli' });
  const control = new ControlPlane({ clock: realClock, store, dataPlanes: [dataPlane], healthChecker: new ActiveHealthChecker({ clock: realClock }), region: REGION, accountId: '123456789012' });
  await control.start();
  cleanup.add(() => dataPlane.close(200));
  cleanup.add(() => control.close());
  const runner = new ProcessInstanceRunner({ dir: join(dir, 'instances'), clock: realClock });
  autoscaling = new AutoScaling({ clock: realClock, store, control, runner, engine: { tickMs: 100 } });
  await autoscaling.start();
  cleanup.add(() => autoscaling.close());
  // Last first: the instances ebb still runs are stopped as at a shutdown, then any process group left is killed.
  cleanup.add(() => {
    for (const pid of pids) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
  cleanup.add(() => autoscaling.stopInstances());

  const server = createServer(
    createAdminHandler({
      control,
      autoscaling,
      auth: { credentials: [{ accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY }] },
      log: (entry) => {
        if (entry['level'] === 'error') internalErrors.push(entry);
      },
    }),
  );
  await listen(server);
  cleanup.add(() => close(server));
  const receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      notifications.push(JSON.parse(body));
      res.end();
    });
  });
  await listen(receiver);
  cleanup.add(() => close(receiver));
  hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;

  const env = cliEnv(ACCESS_KEY_ID, SECRET_ACCESS_KEY, REGION);
  h = {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    control,
    accessKeyId: ACCESS_KEY_ID,
    secretAccessKey: SECRET_ACCESS_KEY,
    region: REGION,
    env,
    close: () => cleanup.run(),
  };

  // What the groups launch from and register in, made directly: the EC2 and ELBv2 CLIs have their own tests.
  await autoscaling.createLaunchTemplate({ name: 'web-lt', data: { userData: Buffer.from('#!/bin/sh\nexec sleep 120\n').toString('base64') } });
  const tg = await control.createTargetGroup({ name: 'asg-web', protocol: 'HTTP', port: 80, targetType: 'instance', attributes: { 'deregistration_delay.timeout_seconds': '0' } });
  tgArn = tg.arn;
});

after(() => cleanup.run());

function listen(server: Server): Promise<void> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** The group's instances in these states, by id (read from the facade, which is cheaper than a CLI call). */
function instancesOf(group: string, ...states: LifecycleState[]): string[] {
  for (const i of autoscaling.describeInstances()) if (i.pid !== undefined) pids.add(i.pid);
  const found = autoscaling.describeAutoScalingGroups([group])[0];
  return (found?.instances ?? []).filter((i) => states.length === 0 || states.includes(i.lifecycleState)).map((i) => i.instanceId);
}

test('groups, instances, hooks and heartbeats, standby and back, desired capacity, refresh and deletion through aws autoscaling', { skip: skip ?? false, timeout: 60_000 }, async () => {
  // aws CLI v1 fetches any parameter value that starts with http:// (cli_follow_urlparam): a
  // notification URL goes in --cli-input-json, whose values are taken as they are.
  const hooked = {
    AutoScalingGroupName: 'hooked',
    LaunchTemplate: { LaunchTemplateName: 'web-lt' },
    MinSize: 0,
    MaxSize: 2,
    DesiredCapacity: 1,
    LifecycleHookSpecificationList: [
      { LifecycleHookName: 'hold', LifecycleTransition: 'autoscaling:EC2_INSTANCE_LAUNCHING', NotificationTargetARN: hookUrl, HeartbeatTimeout: 300, DefaultResult: 'ABANDON' },
    ],
  };
  const [web, hook] = await Promise.all([
    aws(h, [
      'autoscaling', 'create-auto-scaling-group', '--auto-scaling-group-name', 'web',
      '--launch-template', 'LaunchTemplateName=web-lt,Version=$Latest', '--min-size', '1', '--max-size', '3', '--desired-capacity', '2',
      '--target-group-arns', tgArn, '--health-check-type', 'EC2', '--health-check-grace-period', '0',
      '--termination-policies', 'OldestInstance', 'Default', '--tags', 'Key=team,Value=edge,PropagateAtLaunch=true', '--availability-zones', 'us-east-1a',
    ]),
    aws(h, ['autoscaling', 'create-auto-scaling-group', '--cli-input-json', JSON.stringify(hooked)]),
  ]);
  assert.equal(ok(web), undefined);
  assert.equal(ok(hook), undefined);

  await waitUntil(() => instancesOf('web', 'InService').length === 2 && instancesOf('hooked', 'Pending:Wait').length === 1, 'two InService in web, one held in hooked', 10_000, 50);
  await waitUntil(() => notifications.some((n) => n['LifecycleActionToken'] !== undefined), 'the launching notification', 10_000, 50);
  const [i1, i2] = instancesOf('web', 'InService') as [string, string];
  const held = instancesOf('hooked')[0] ?? '';
  const token = notifications.find((n) => n['EC2InstanceId'] === held)?.['LifecycleActionToken'] ?? '';
  assert.equal(control().describeTargetHealth(tgArn).length, 2);

  const [groups, instances, hooks, heartbeat] = await Promise.all([
    aws(h, ['autoscaling', 'describe-auto-scaling-groups', '--auto-scaling-group-names', 'web', 'hooked']),
    aws(h, ['autoscaling', 'describe-auto-scaling-instances', '--instance-ids', i1, held]),
    aws(h, ['autoscaling', 'describe-lifecycle-hooks', '--auto-scaling-group-name', 'hooked']),
    aws(h, ['autoscaling', 'record-lifecycle-action-heartbeat', '--lifecycle-hook-name', 'hold', '--auto-scaling-group-name', 'hooked', '--lifecycle-action-token', token]),
  ]);
  assert.equal(ok(heartbeat), undefined);
  const g = ok(groups).AutoScalingGroups.find((x: any) => x.AutoScalingGroupName === 'web');
  assert.deepEqual(
    { ...g, Instances: undefined, CreatedTime: undefined, AutoScalingGroupARN: undefined, LaunchTemplate: { ...g.LaunchTemplate, LaunchTemplateId: undefined } },
    {
      AutoScalingGroupName: 'web',
      AutoScalingGroupARN: undefined,
      LaunchTemplate: { LaunchTemplateId: undefined, LaunchTemplateName: 'web-lt', Version: '$Latest' },
      MinSize: 1,
      MaxSize: 3,
      DesiredCapacity: 2,
      DefaultCooldown: 300,
      AvailabilityZones: ['us-east-1a'],
      LoadBalancerNames: [],
      TargetGroupARNs: [tgArn],
      HealthCheckType: 'EC2',
      HealthCheckGracePeriod: 0,
      Instances: undefined,
      CreatedTime: undefined,
      SuspendedProcesses: [],
      EnabledMetrics: [],
      Tags: [{ ResourceId: 'web', ResourceType: 'auto-scaling-group', Key: 'team', Value: 'edge', PropagateAtLaunch: true }],
      TerminationPolicies: ['OldestInstance', 'Default'],
      NewInstancesProtectedFromScaleIn: false,
      TrafficSources: [{ Identifier: tgArn, Type: 'elbv2' }],
    },
  );
  assert.match(g.AutoScalingGroupARN, /^arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:[0-9a-f-]{36}:autoScalingGroupName\/web$/);
  assert.match(g.LaunchTemplate.LaunchTemplateId, /^lt-[0-9a-f]{17}$/);
  assert.deepEqual(g.Instances.map((i: any) => [i.InstanceType, i.LifecycleState, i.HealthStatus, i.AvailabilityZone, i.LaunchTemplate.Version]), [
    ['ebb.process', 'InService', 'Healthy', 'us-east-1a', '1'],
    ['ebb.process', 'InService', 'Healthy', 'us-east-1a', '1'],
  ]);
  assert.deepEqual(
    ok(instances).AutoScalingInstances.map((i: any) => [i.InstanceId, i.AutoScalingGroupName, i.LifecycleState, i.HealthStatus]).sort(),
    [[i1, 'web', 'InService', 'HEALTHY'], [held, 'hooked', 'Pending:Wait', 'HEALTHY']].sort(),
  );
  assert.deepEqual(ok(hooks).LifecycleHooks, [
    {
      LifecycleHookName: 'hold',
      AutoScalingGroupName: 'hooked',
      LifecycleTransition: 'autoscaling:EC2_INSTANCE_LAUNCHING',
      NotificationTargetARN: hookUrl,
      HeartbeatTimeout: 300,
      GlobalTimeout: 30_000,
      DefaultResult: 'ABANDON',
    },
  ]);

  // The held launch goes on by its token; web puts one instance in standby.
  const [completed, standby, badHook] = await Promise.all([
    aws(h, ['autoscaling', 'complete-lifecycle-action', '--lifecycle-hook-name', 'hold', '--auto-scaling-group-name', 'hooked', '--lifecycle-action-token', token, '--lifecycle-action-result', 'CONTINUE']),
    aws(h, ['autoscaling', 'enter-standby', '--auto-scaling-group-name', 'web', '--instance-ids', i1, '--should-decrement-desired-capacity']),
    aws(h, ['autoscaling', 'put-lifecycle-hook', '--lifecycle-hook-name', 'h2', '--auto-scaling-group-name', 'web', '--lifecycle-transition', 'autoscaling:EC2_INSTANCE_TERMINATING', '--heartbeat-timeout', '10']),
  ]);
  ok(completed);
  assert.match(ok(standby).Activities[0].Cause, new RegExp(`instance ${i1} was moved to standby in response to a user request, shrinking the capacity from 2 to 1`));
  failsWith(badHook, 'ValidationError', /heartbeatTimeout.*greater than or equal to 30/);

  await waitUntil(() => instancesOf('hooked', 'InService').length === 1 && instancesOf('web', 'Standby').length === 1, 'hooked in service, web in standby', 10_000, 50);
  assert.deepEqual(control().describeTargetHealth(tgArn).map((t) => t.id), [i2]);

  // A refresh of hooked waits on the hook for its new instance, so it is still going when it is cancelled.
  const started = await aws(h, ['autoscaling', 'start-instance-refresh', '--auto-scaling-group-name', 'hooked', '--preferences', '{"MinHealthyPercentage":100,"MaxHealthyPercentage":200,"InstanceWarmup":0}']);
  const refreshId = ok(started).InstanceRefreshId;
  const [refreshes, terminated, unstandby] = await Promise.all([
    aws(h, ['autoscaling', 'describe-instance-refreshes', '--auto-scaling-group-name', 'hooked']),
    aws(h, ['autoscaling', 'terminate-instance-in-auto-scaling-group', '--instance-id', i2, '--no-should-decrement-desired-capacity']),
    aws(h, ['autoscaling', 'exit-standby', '--auto-scaling-group-name', 'web', '--instance-ids', i1]),
  ]);
  assert.deepEqual(
    ok(unstandby).Activities.map((a: any) => [a.Description, a.StatusCode]),
    [[`Moving EC2 instance out of Standby: ${i1}`, 'PreInService']],
  );
  assert.match(ok(unstandby).Activities[0].Cause, new RegExp(`instance ${i1} was moved out of standby in response to a user request, increasing the capacity from 1 to 2`));
  const r = ok(refreshes).InstanceRefreshes[0];
  assert.equal(r.InstanceRefreshId, refreshId);
  assert.ok(['Pending', 'InProgress'].includes(r.Status), r.Status);
  assert.deepEqual([r.Preferences.MinHealthyPercentage, r.Preferences.MaxHealthyPercentage, r.Preferences.InstanceWarmup], [100, 200, 0]);
  assert.equal(ok(terminated).Activity.AutoScalingGroupName, 'web');
  const [cancelled, scaled] = await Promise.all([
    aws(h, ['autoscaling', 'cancel-instance-refresh', '--auto-scaling-group-name', 'hooked']),
    aws(h, ['autoscaling', 'set-desired-capacity', '--auto-scaling-group-name', 'web', '--desired-capacity', '3', '--honor-cooldown']),
  ]);
  assert.equal(ok(cancelled).InstanceRefreshId, refreshId);
  assert.equal(ok(scaled), undefined);
  assert.equal(autoscaling.describeAutoScalingGroups(['web'])[0]?.group.desiredCapacity, 3, 'exit-standby raised web to 2, set-desired-capacity to 3');
  await waitUntil(() => instancesOf('web', 'InService').includes(i1) && instancesOf('web', 'InService').length === 3, 'i1 back in service and web at 3', 10_000, 50);

  instancesOf('hooked');
  const launched = [...pids];
  assert.ok(launched.length >= 3 && launched.some(alive), `pids ${launched.join(',')}`);
  const [deleteWeb, deleteHooked] = await Promise.all([
    aws(h, ['autoscaling', 'delete-auto-scaling-group', '--auto-scaling-group-name', 'web', '--force-delete']),
    aws(h, ['autoscaling', 'delete-auto-scaling-group', '--auto-scaling-group-name', 'hooked', '--force-delete']),
  ]);
  ok(deleteWeb);
  ok(deleteHooked);
  await waitUntil(() => autoscaling.describeAutoScalingGroups().length === 0, 'both groups deleted', 15_000, 50);
  await waitUntil(() => !launched.some(alive), 'every instance process stopped', 5_000, 50);
  assert.deepEqual(internalErrors, []);
});

function control(): ControlPlane {
  return h.control;
}
