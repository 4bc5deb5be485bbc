/**
 * A terminating lifecycle hook holds an instance (issue 8): `ebb serve` with a group of one instance
 * of the test app, driven by the AWS SDK; the hook notifies an http:// server of the test.
 *
 * - PutLifecycleHook sends the TEST_NOTIFICATION there; DescribeLifecycleHooks shows the hook with
 *   its HeartbeatTimeout, GlobalTimeout (100 × the heartbeat timeout) and DefaultResult;
 * - TerminateInstanceInAutoScalingGroup puts the instance in Terminating:Wait and the lifecycle
 *   action's message arrives with AWS's fields and the hook's metadata;
 * - while it waits the process runs and has not received SIGTERM; a heartbeat with the token is
 *   taken, one with another token refused;
 * - CompleteLifecycleAction by token (CONTINUE) lets it go: SIGTERM only then, the process exits,
 *   the group is empty and its desired capacity was decremented.
 *
 * The heartbeat's extension and the DefaultResult at the timeout (30 s at the least) are tested on
 * the fake clock in src/autoscaling/auto-scaling.test.ts.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  CompleteLifecycleActionCommand,
  DescribeAutoScalingInstancesCommand,
  DescribeLifecycleHooksCommand,
  PutLifecycleHookCommand,
  RecordLifecycleActionHeartbeatCommand,
  TerminateInstanceInAutoScalingGroupCommand,
} from '@aws-sdk/client-auto-scaling';
import { Cleanup, tempDir } from '../support/cleanup.ts';
import { sleep, waitUntil } from '../support/timing.ts';
import { alive, appEvents, createGroup, createTemplate, desiredCapacity, ec2Instances, freePort, groupInstances, sigtermAt, startServe, teardown } from './autoscaling-harness.ts';

const GROUP = 'hooked';
const HOOK = 'drain-hook';

/** An http:// notification target: each POSTed JSON body, in order of arrival. */
async function notificationServer(c: Cleanup): Promise<{ url: string; messages: Array<Record<string, string>> }> {
  const messages: Array<Record<string, string>> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (ch: string) => (body += ch));
    req.on('end', () => {
      messages.push(JSON.parse(body) as Record<string, string>);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  c.add(() => new Promise((r) => server.close(r)));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, messages };
}

test('a terminating hook holds the instance until CompleteLifecycleAction: no SIGTERM before; the notifications arrive with AWS\'s fields', { timeout: 30_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const notifications = await notificationServer(c);
  const stateDir = join(await tempDir(c), 'state');
  const s = await startServe(c, { stateDir, listenerPort: await freePort(), deregistrationDelaySeconds: 5 });
  await createTemplate(s, 'app');
  await createGroup(s, { name: GROUP, template: 'app', size: 1, targetGroup: false });
  await waitUntil(async () => (await groupInstances(s, GROUP)).some((i) => i.LifecycleState === 'InService'), 'the instance in service', 10_000, 100);
  const [instance] = await ec2Instances(s);
  assert.ok(instance !== undefined && instance.pid > 0);
  await waitUntil(() => appEvents(stateDir, instance.id).some((e) => e.event === 'listening'), 'the app listening', 5000, 20);

  await s.as.send(
    new PutLifecycleHookCommand({
      AutoScalingGroupName: GROUP,
      LifecycleHookName: HOOK,
      LifecycleTransition: 'autoscaling:EC2_INSTANCE_TERMINATING',
      NotificationTargetARN: notifications.url,
      NotificationMetadata: 'deploy 42',
      HeartbeatTimeout: 30,
      DefaultResult: 'CONTINUE',
    }),
  );
  await waitUntil(() => notifications.messages.length >= 1, 'the test notification', 5000, 20);
  const testMessage = notifications.messages[0]!;
  assert.equal(testMessage['Event'], 'autoscaling:TEST_NOTIFICATION');
  assert.equal(testMessage['AutoScalingGroupName'], GROUP);
  assert.equal(testMessage['Service'], 'AWS Auto Scaling');
  assert.match(testMessage['AutoScalingGroupARN'] ?? '', /^arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:[0-9a-f-]+:autoScalingGroupName\/hooked$/);

  const hooks = await s.as.send(new DescribeLifecycleHooksCommand({ AutoScalingGroupName: GROUP }));
  assert.deepEqual(
    hooks.LifecycleHooks?.map((h) => [h.LifecycleHookName, h.LifecycleTransition, h.HeartbeatTimeout, h.GlobalTimeout, h.DefaultResult, h.NotificationTargetARN]),
    [[HOOK, 'autoscaling:EC2_INSTANCE_TERMINATING', 30, 3000, 'CONTINUE', notifications.url]],
  );

  const terminateAt = Date.now();
  await s.as.send(new TerminateInstanceInAutoScalingGroupCommand({ InstanceId: instance.id, ShouldDecrementDesiredCapacity: true }));
  await waitUntil(() => notifications.messages.length >= 2, 'the lifecycle action notification', 5000, 20);
  const m = notifications.messages[1]!;
  assert.deepEqual(
    Object.keys(m).sort(),
    ['AccountId', 'AutoScalingGroupName', 'Destination', 'EC2InstanceId', 'LifecycleActionToken', 'LifecycleHookName', 'LifecycleTransition', 'NotificationMetadata', 'Origin', 'RequestId', 'Service', 'Time'],
  );
  assert.equal(m['AutoScalingGroupName'], GROUP);
  assert.equal(m['LifecycleHookName'], HOOK);
  assert.equal(m['EC2InstanceId'], instance.id);
  assert.equal(m['LifecycleTransition'], 'autoscaling:EC2_INSTANCE_TERMINATING');
  assert.equal(m['Service'], 'AWS Auto Scaling');
  assert.equal(m['AccountId'], '123456789012');
  assert.equal(m['NotificationMetadata'], 'deploy 42');
  assert.match(m['LifecycleActionToken'] ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.match(m['RequestId'] ?? '', /^[0-9a-f-]{36}$/);
  assert.notEqual(m['RequestId'], testMessage['RequestId']);
  const time = Date.parse(m['Time'] ?? '');
  assert.ok(time >= terminateAt - 1000 && time <= Date.now(), `Time is when the action began (${m['Time']})`);
  const token = m['LifecycleActionToken']!;

  // Held: Terminating:Wait, the process running, no SIGTERM; still so a while later.
  const stateOf = async (): Promise<string | undefined> =>
    (await s.as.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: [instance.id] }))).AutoScalingInstances?.[0]?.LifecycleState;
  assert.equal(await stateOf(), 'Terminating:Wait');
  await sleep(1000);
  assert.equal(await stateOf(), 'Terminating:Wait', 'the hook still holds the instance a second later');
  assert.equal(alive(instance.pid), true, 'the process runs while the hook holds it');
  assert.equal(sigtermAt(stateDir, instance.id), undefined, 'no SIGTERM while the hook holds it');

  await s.as.send(new RecordLifecycleActionHeartbeatCommand({ AutoScalingGroupName: GROUP, LifecycleHookName: HOOK, LifecycleActionToken: token }));
  await assert.rejects(
    s.as.send(new RecordLifecycleActionHeartbeatCommand({ AutoScalingGroupName: GROUP, LifecycleHookName: HOOK, LifecycleActionToken: '00000000-0000-4000-8000-000000000000' })),
    (e: Error) => e.name === 'ValidationError',
    'a heartbeat with a token no action has is refused',
  );
  assert.equal(await stateOf(), 'Terminating:Wait', 'a heartbeat does not let the instance go');
  assert.equal(sigtermAt(stateDir, instance.id), undefined);

  const completeAt = Date.now();
  await s.as.send(new CompleteLifecycleActionCommand({ AutoScalingGroupName: GROUP, LifecycleHookName: HOOK, LifecycleActionToken: token, LifecycleActionResult: 'CONTINUE' }));
  await waitUntil(() => sigtermAt(stateDir, instance.id) !== undefined, 'SIGTERM after the action completed', 5000, 20);
  const sigterm = sigtermAt(stateDir, instance.id)!;
  await waitUntil(() => !alive(instance.pid), 'the process gone', 5000, 20);
  await waitUntil(async () => (await groupInstances(s, GROUP)).length === 0, 'the group empty', 5000, 50);
  t.diagnostic(`terminate at +0; action began +${time - terminateAt} ms; completed +${completeAt - terminateAt} ms; SIGTERM +${sigterm - terminateAt} ms`);
  assert.ok(sigterm >= completeAt, `SIGTERM came ${sigterm - completeAt} ms after CompleteLifecycleAction, not before`);
  assert.equal(await desiredCapacity(s, GROUP), 0, 'ShouldDecrementDesiredCapacity took the desired capacity to 0');
  assert.equal(notifications.messages.length, 2, 'one lifecycle notification for the one action');
  assert.deepEqual(await teardown(s), []);
  assert.deepEqual(s.proc.problems(), [], 'ebb logged no error');
});
