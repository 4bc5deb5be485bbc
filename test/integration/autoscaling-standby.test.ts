/**
 * Standby (issue 8): `ebb serve` with a group of 2 instances of the test app behind a listener,
 * driven by the AWS SDK, under a bounded keep-alive load.
 *
 * - EnterStandby (ShouldDecrementDesiredCapacity true) while a slow request runs on the instance:
 *   the request completes (200, whole body), the instance drains and reaches Standby without
 *   SIGTERM, its process runs on, no new request reaches it, the desired capacity drops by one and
 *   nothing is launched in its place;
 * - ExitStandby puts it back: InService, healthy, answering requests through the listener again,
 *   the desired capacity back up;
 * - EnterStandby with ShouldDecrementDesiredCapacity false keeps the desired capacity, and a
 *   replacement is launched.
 * No request through the listener fails throughout.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { EnterStandbyCommand, ExitStandbyCommand } from '@aws-sdk/client-auto-scaling';
import { Cleanup, tempDir } from '../support/cleanup.ts';
import { waitUntil } from '../support/timing.ts';
import {
  alive,
  appEvents,
  createGroup,
  createTemplate,
  desiredCapacity,
  drainRecords,
  ec2Instances,
  fetchApp,
  freePort,
  groupInstances,
  startLoad,
  startServe,
  targetHealth,
  teardown,
  waitServing,
} from './autoscaling-harness.ts';

const SLOW_MS = 1500;
const SLOW_BYTES = 128 * 1024;

test('EnterStandby during a slow request: it completes, nothing new reaches the instance, ExitStandby brings it back; desired capacity follows ShouldDecrementDesiredCapacity', { timeout: 90_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const stateDir = join(await tempDir(c), 'state');
  const s = await startServe(c, { stateDir, listenerPort: await freePort(), deregistrationDelaySeconds: 10 });
  await createTemplate(s, 'app');
  await createGroup(s, { name: 'web', template: 'app', size: 2 });
  const [a, b] = await waitServing(s, 'web', 2);
  assert.ok(a !== undefined && b !== undefined);
  const pidA = (await ec2Instances(s, [a]))[0]?.pid ?? 0;

  // One slow request each (round robin, nothing else in flight), then the load.
  const slow = [0, 1].map((k) => fetchApp(s.listenerPort, `/slow?ms=${SLOW_MS}&bytes=${SLOW_BYTES}&slow=${k}`));
  await waitUntil(() => appEvents(stateDir, a).some((e) => e.event === 'request-start' && e.path?.includes('slow=') === true), 'a slow request on the instance', 3000, 20);
  const load = startLoad(s.listenerPort, { clients: 4, requestMs: 20, maxMs: 20_000 });
  t.after(() => load.stop());

  const standbyAt = Date.now();
  const entered = await s.as.send(new EnterStandbyCommand({ AutoScalingGroupName: 'web', InstanceIds: [a], ShouldDecrementDesiredCapacity: true }));
  assert.equal(entered.Activities?.[0]?.Description, `Moving EC2 instance to Standby: ${a}`);
  const stateOf = async (id: string): Promise<string | undefined> => (await groupInstances(s, 'web')).find((i) => i.InstanceId === id)?.LifecycleState;
  assert.equal(await stateOf(a), 'EnteringStandby', 'the instance drains before Standby while its slow request runs');
  assert.equal(await desiredCapacity(s, 'web'), 1, 'ShouldDecrementDesiredCapacity true: the desired capacity drops to 1');
  await waitUntil(async () => (await stateOf(a)) === 'Standby', 'the instance in Standby', 8000, 50);
  const inStandbyAt = Date.now();
  const slowReplies = await Promise.all(slow);
  const slowA = slowReplies.find((r) => r.instance === a);
  assert.ok(slowA !== undefined, `the slow request on ${a} was answered by it (answers from ${slowReplies.map((r) => r.instance).join(', ')})`);
  assert.equal(slowA.status, 200);
  assert.equal(slowA.body.length, SLOW_BYTES, 'the slow request got its whole body');
  const record = (await drainRecords(s)).find((r) => r.targetId === a);
  assert.equal(record?.outcome, 'idle');
  assert.equal(record?.requestsCut, 0);
  // The app answers the slow request SLOW_MS after it began (its own record): neither the drain nor
  // Standby can come sooner. (The client's receipt is no bound: a busy test process reads it late.)
  const slowStart = appEvents(stateDir, a).find((e) => e.event === 'request-start' && e.path?.includes('slow=') === true)?.at ?? NaN;
  assert.ok(Date.parse(record.endedAt) >= slowStart + SLOW_MS, `the drain waited for the slow request (ended ${Date.parse(record.endedAt) - slowStart - SLOW_MS} ms after its answer was due)`);
  assert.ok(inStandbyAt >= Date.parse(record.endedAt), 'Standby came once the drain had ended');

  // In Standby: running, never signalled, not routed; nothing launched in its place.
  const members = await groupInstances(s, 'web');
  assert.deepEqual(members.map((i) => [i.InstanceId, i.LifecycleState]).sort(), [[a, 'Standby'], [b, 'InService']].sort());
  assert.deepEqual((await targetHealth(s)).map((h) => h.Target?.Id), [b], 'only the other instance is registered');
  const quietFrom = load.replies.length;
  await waitUntil(() => load.replies.length >= quietFrom + 100, 'more load while the instance is in Standby', 5000, 20);
  assert.equal(alive(pidA), true, 'the process runs in Standby');
  assert.equal(appEvents(stateDir, a).some((e) => e.event === 'sigterm'), false, 'no SIGTERM for Standby');

  const exitAt = Date.now();
  const exited = await s.as.send(new ExitStandbyCommand({ AutoScalingGroupName: 'web', InstanceIds: [a] }));
  assert.equal(exited.Activities?.[0]?.Description, `Moving EC2 instance out of Standby: ${a}`);
  assert.equal(await desiredCapacity(s, 'web'), 2, 'ExitStandby takes the desired capacity back to 2');
  await waitServing(s, 'web', 2);
  await waitUntil(() => load.replies.some((r) => r.instance === a && r.at > exitAt), 'the instance answering through the listener again', 8000, 20);
  const backAt = Date.now();
  assert.equal((await ec2Instances(s, [a]))[0]?.pid, pidA, 'the same process is back in service');

  const started = Date.parse(record?.startedAt ?? '');
  // A request picked before the new routing reached the data plane may still arrive a moment after.
  const reached = appEvents(stateDir, a).filter((e) => e.event === 'request-start' && e.at > started + 200 && e.at < exitAt);
  assert.deepEqual(reached, [], 'no request reached the instance between its drain and ExitStandby');

  // ShouldDecrementDesiredCapacity false: the capacity stays, and a replacement launches.
  await s.as.send(new EnterStandbyCommand({ AutoScalingGroupName: 'web', InstanceIds: [b], ShouldDecrementDesiredCapacity: false }));
  assert.equal(await desiredCapacity(s, 'web'), 2, 'ShouldDecrementDesiredCapacity false keeps the desired capacity');
  await waitUntil(async () => (await groupInstances(s, 'web')).length === 3, 'a replacement launched', 5000, 50);
  const third = (await groupInstances(s, 'web')).find((i) => i.InstanceId !== a && i.InstanceId !== b);
  assert.ok(third !== undefined && /^(Pending|InService)/.test(third.LifecycleState ?? ''), `a new instance (${third?.LifecycleState})`);
  await load.stop();

  t.diagnostic(
    `EnterStandby at +0; Standby +${inStandbyAt - standbyAt} ms (slow request done +${slowA.at - standbyAt} ms); ExitStandby +${exitAt - standbyAt} ms; ` +
      `answering again +${backAt - standbyAt} ms; load ${load.replies.length} answered (${load.replies.filter((r) => r.instance === a).length} by ${a}), ${load.failures.length} failed`,
  );
  assert.deepEqual(load.failures, [], 'every request through the listener is answered');
  assert.deepEqual(await teardown(s), [], 'no instance process is left');
  assert.deepEqual(s.proc.problems(), [], 'ebb logged no error');
});
