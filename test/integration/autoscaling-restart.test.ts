/**
 * ebb killed with SIGKILL in the middle of an instance refresh (issue 8): `ebb serve` with a group of
 * 2 instances of the test app at version 1 behind a listener, driven by the AWS SDK; a version 2 of
 * the template and StartInstanceRefresh (MinHealthyPercentage 100, MaxHealthyPercentage 200,
 * InstanceWarmup 2 s). Once the refresh has launched its 2 new instances, and before they are ready
 * (so no old one has left yet), ebb is killed and started again on the same state directory.
 *
 * - every instance runs through the kill: the same 4 ids with the same pids (DescribeInstances's
 *   ebb:pid tag) before and after, each pid alive (`process.kill(pid, 0)`), adopted at the start;
 * - the refresh goes on and ends Successful at 100 %, the old instances stopped with SIGTERM after
 *   their drains, the new ones serving version 2 through the listener;
 * - nothing is orphaned: after the group is force-deleted and ebb stopped, none of the pids is alive.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { Cleanup, tempDir } from '../support/cleanup.ts';
import { waitUntil } from '../support/timing.ts';
import {
  alive,
  appEvents,
  createGroup,
  createTemplate,
  createTemplateVersion,
  describeRefresh,
  drainRecords,
  ec2Instances,
  fetchApp,
  freePort,
  groupInstances,
  startRefresh,
  startServe,
  teardown,
  waitRefreshEnd,
} from './autoscaling-harness.ts';

test('SIGKILL of ebb during an instance refresh: the instances are adopted after the restart, the refresh ends Successful, nothing is orphaned', { timeout: 45_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const stateDir = join(await tempDir(c), 'state');
  const listenerPort = await freePort();
  const first = await startServe(c, { stateDir, listenerPort, deregistrationDelaySeconds: 5 });
  await createTemplate(first, 'app', 1);
  await createGroup(first, { name: 'web', template: 'app', size: 2 });
  await waitUntil(async () => (await groupInstances(first, 'web')).filter((i) => i.LifecycleState === 'InService').length === 2, 'two instances in service', 10_000, 100);
  const old = (await groupInstances(first, 'web')).map((i) => i.InstanceId ?? '');
  await createTemplateVersion(first, 'app', 2);
  const id = await startRefresh(first, 'web', 2);

  // Mid-way: the 2 new instances launched (their processes recorded), none of the old ones gone.
  await waitUntil(async () => (await ec2Instances(first)).filter((i) => i.pid > 0).length === 4, 'the refresh launching 2 new instances', 10_000, 50);
  const beforeKill = (await ec2Instances(first)).map((i) => `${i.id} ${i.pid}`).sort();
  const refreshBefore = await describeRefresh(first, 'web', id);
  process.kill(first.proc.pid, 'SIGKILL');
  await first.proc.exited;
  const pids = beforeKill.map((x) => Number(x.split(' ')[1]));
  assert.deepEqual(pids.filter((p) => !alive(p)), [], 'every instance process runs on while ebb is down');

  const second = await startServe(c, { stateDir, listenerPort, deregistrationDelaySeconds: 5, restartOf: first });
  const afterRestart = (await ec2Instances(second)).map((i) => `${i.id} ${i.pid}`).sort();
  const deadAfterRestart = pids.filter((p) => !alive(p));
  const restored = second.proc.logs.find((l) => l['event'] === 'autoscaling:restored');
  const adopted = second.proc.logs.filter((l) => l['event'] === 'instance:adopt').map((l) => `${String(l['instanceId'])} ${String(l['pid'])}`).sort();
  const refreshAfterRestart = await describeRefresh(second, 'web', id);
  const refresh = await waitRefreshEnd(second, 'web', id, 25_000);
  const members = await groupInstances(second, 'web');
  const probes = await Promise.all([0, 1, 2, 3].map((k) => fetchApp(listenerPort, `/after-${k}`)));
  const records = await drainRecords(second);

  t.diagnostic(
    `killed with refresh ${refreshBefore?.Status} ${refreshBefore?.PercentageComplete} %; after the restart ${refreshAfterRestart?.Status}; ended ${refresh?.Status}; ` +
      `restored ${JSON.stringify(restored)}`,
  );
  assert.equal(refreshBefore?.Status, 'InProgress');
  assert.equal(refreshBefore?.PercentageComplete, 0, 'ebb was killed before any old instance was replaced');
  assert.deepEqual(afterRestart, beforeKill, 'the same instances with the same pids after the restart');
  assert.deepEqual(deadAfterRestart, [], 'every pid still alive after the restart');
  assert.equal(restored?.['adopted'], 4, 'all 4 instances adopted at the start');
  assert.deepEqual(adopted, beforeKill, "ebb's instance:adopt lines name the same instances and pids");
  assert.equal(refreshAfterRestart?.Status, 'InProgress', 'the refresh goes on after the restart');

  assert.equal(refresh?.Status, 'Successful', `the refresh ended: ${refresh?.StatusReason ?? ''}`);
  assert.equal(refresh?.PercentageComplete, 100);
  assert.equal(members.length, 2);
  assert.ok(members.every((i) => !old.includes(i.InstanceId ?? '') && i.LaunchTemplate?.Version === '2' && i.LifecycleState === 'InService'));
  const newIds = members.map((i) => i.InstanceId ?? '');
  assert.ok(beforeKill.some((x) => x.startsWith(newIds[0]!)) && beforeKill.some((x) => x.startsWith(newIds[1]!)), 'the instances in service are the two the first ebb launched');
  for (const p of probes) {
    assert.equal(p.status, 200);
    assert.equal(p.version, '2');
  }
  for (const o of old) {
    const record = records.find((r) => r.targetId === o);
    const sigterm = appEvents(stateDir, o).find((e) => e.event === 'sigterm')?.at;
    assert.ok(record !== undefined && sigterm !== undefined && sigterm >= Date.parse(record.endedAt), `${o} drained, then got SIGTERM`);
  }

  const leftAlive = await teardown(second);
  assert.deepEqual(leftAlive, [], 'after the group is force-deleted and ebb stopped, no instance process is alive');
  assert.deepEqual(pids.filter(alive), []);
  assert.deepEqual(second.proc.problems(), [], 'the restarted ebb logged no error');
});
