import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startEbbApiHarness } from './ebb-api-harness.ts';

const USER_DATA = Buffer.from('#!/bin/sh\nexec sleep 60\n').toString('base64');

test('the event stream carries Auto Scaling activities and lifecycle transitions, with the lifecycle action token on Terminating:Wait', async (t) => {
  const h = await startEbbApiHarness({ autoScaling: true });
  t.after(() => h.close());
  const as = h.autoscaling;
  assert.ok(as !== null);
  const stream = await h.events();
  await stream.next((e) => e.event === 'stream:ready');
  const lt = await as.createLaunchTemplate({ name: 'app', data: { userData: USER_DATA } });
  await as.createAutoScalingGroup({ name: 'g', launchTemplate: { id: lt.id }, minSize: 0, maxSize: 2, desiredCapacity: 1 });
  const inService = await stream.next((e) => e.event === 'autoscaling:lifecycle' && e.data.to === 'InService', 5000);
  const instanceId: string = inService.data.instanceId;
  assert.match(instanceId, /^i-[0-9a-f]{17}$/);
  assert.equal(inService.data.autoScalingGroupName, 'g');
  assert.deepEqual(inService.data.lifecycleActions, []);
  const launched = await stream.next((e) => e.event === 'autoscaling:activity' && e.data.statusCode === 'Successful', 5000);
  assert.equal(launched.data.description, `Launching a new EC2 instance: ${instanceId}`);
  assert.match(launched.data.cause, /changing the desired capacity from 0 to 1/);

  await as.putLifecycleHook({ group: 'g', name: 'hold', transition: 'autoscaling:EC2_INSTANCE_TERMINATING', heartbeatTimeoutSeconds: 60 });
  await as.setDesiredCapacity('g', 0);
  const waiting = await stream.next((e) => e.event === 'autoscaling:lifecycle' && e.data.to === 'Terminating:Wait', 5000);
  assert.equal(waiting.data.instanceId, instanceId);
  const [action] = waiting.data.lifecycleActions;
  assert.equal(action.lifecycleHookName, 'hold');
  assert.equal(action.lifecycleTransition, 'autoscaling:EC2_INSTANCE_TERMINATING');
  assert.match(action.lifecycleActionToken, /^[0-9a-f-]{36}$/);
  // The token from the stream completes the action, as the hook's notification would.
  await as.completeLifecycleAction({ group: 'g', hookName: 'hold', token: action.lifecycleActionToken, result: 'CONTINUE' });
  const terminated = await stream.next((e) => e.event === 'autoscaling:lifecycle' && e.data.to === 'Terminated', 5000);
  assert.equal(terminated.data.instanceId, instanceId);
  const ended = await stream.next((e) => e.event === 'autoscaling:activity' && e.data.description === `Terminating EC2 instance: ${instanceId}` && e.data.statusCode === 'Successful', 5000);
  assert.ok(ended.data.endTime !== null);
});
