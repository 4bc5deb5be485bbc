/**
 * Instance refresh under load (issue 8): `ebb serve` with a group of 3 instances of the test app at
 * version 1 behind a listener, driven by the AWS SDK. A version 2 of the launch template, then
 * StartInstanceRefresh (launch before terminate: MinHealthyPercentage 100, MaxHealthyPercentage 200,
 * InstanceWarmup 1 s) while 8 keep-alive clients load the listener.
 *
 * - no request through the listener fails;
 * - the refresh ends Successful with PercentageComplete 100;
 * - every instance was replaced: new ids, launched from version 2, and every answer through the
 *   listener afterwards comes from one of them saying version 2;
 * - each old instance was drained (outcome idle, nothing cut) and received SIGTERM only after its
 *   drain ended; its process is gone.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { Cleanup, tempDir } from '../support/cleanup.ts';
import {
  alive,
  appEvents,
  createGroup,
  createTemplate,
  createTemplateVersion,
  drainRecords,
  ec2Instances,
  fetchApp,
  freePort,
  groupInstances,
  startLoad,
  startRefresh,
  startServe,
  teardown,
  waitRefreshEnd,
  waitServing,
} from './autoscaling-harness.ts';

test('instance refresh of 3 instances to a new template version under load: no failed request, every instance replaced, Successful at 100 %', { timeout: 90_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const stateDir = join(await tempDir(c), 'state');
  const s = await startServe(c, { stateDir, listenerPort: await freePort(), deregistrationDelaySeconds: 10 });
  await createTemplate(s, 'app', 1);
  await createGroup(s, { name: 'web', template: 'app', size: 3 });
  const before = await waitServing(s, 'web', 3);
  const oldPids = (await ec2Instances(s)).map((i) => i.pid);
  assert.equal(await createTemplateVersion(s, 'app', 2), 2);

  const load = startLoad(s.listenerPort, { clients: 8, requestMs: 20, maxMs: 25_000 });
  t.after(() => load.stop());
  const startedAt = Date.now();
  const id = await startRefresh(s, 'web', 1);
  const refresh = await waitRefreshEnd(s, 'web', id, 25_000);
  const endedAt = Date.now();
  await load.stop();

  const after = await groupInstances(s, 'web');
  const afterIds = after.map((i) => i.InstanceId ?? '');
  const ec2 = await ec2Instances(s);
  const probes = await Promise.all(Array.from({ length: 6 }, (_, k) => fetchApp(s.listenerPort, `/after-refresh-${k}`)));
  const records = await drainRecords(s);
  const versionsSeen = new Map<string, number>();
  for (const r of load.replies) versionsSeen.set(r.version, (versionsSeen.get(r.version) ?? 0) + 1);
  t.diagnostic(
    `refresh ${refresh?.Status} in ${endedAt - startedAt} ms; load ${load.replies.length} answered (${[...versionsSeen].map(([v, n]) => `v${v}: ${n}`).join(', ')}), ${load.failures.length} failed; ` +
      before.map((old) => `${old}: drain ${records.find((r) => r.targetId === old)?.outcome} ${records.find((r) => r.targetId === old)?.durationMs} ms`).join('; '),
  );

  assert.deepEqual(load.failures, [], 'every request through the listener is answered');
  assert.equal(refresh?.Status, 'Successful', `the refresh succeeded: ${refresh?.StatusReason ?? ''}`);
  assert.equal(refresh?.PercentageComplete, 100);
  assert.equal(refresh?.InstancesToUpdate, 0);
  assert.equal(after.length, 3);
  assert.ok(after.every((i) => i.LifecycleState === 'InService' && i.LaunchTemplate?.Version === '2'), `three new instances of version 2: ${JSON.stringify(after.map((i) => [i.InstanceId, i.LifecycleState, i.LaunchTemplate?.Version]))}`);
  assert.deepEqual(afterIds.filter((x) => before.includes(x)), [], 'no old instance is left');
  assert.deepEqual(ec2.map((i) => i.id).sort(), [...afterIds].sort(), 'DescribeInstances shows only the new instances');
  assert.ok(ec2.every((i) => i.version === '2'));
  for (const p of probes) {
    assert.equal(p.status, 200);
    assert.equal(p.version, '2');
    assert.ok(afterIds.includes(p.instance), `${p.instance} is one of the new instances`);
    assert.match(p.body, /"version":"2"/);
  }
  assert.ok((versionsSeen.get('1') ?? 0) > 0 && (versionsSeen.get('2') ?? 0) > 0, 'the load saw both versions');

  for (const old of before) {
    const record = records.find((r) => r.targetId === old);
    const sigterm = appEvents(stateDir, old).find((e) => e.event === 'sigterm')?.at;
    assert.ok(record !== undefined, `${old} was drained`);
    assert.equal(record.outcome, 'idle');
    assert.equal(record.requestsCut, 0);
    assert.ok(sigterm !== undefined && sigterm >= Date.parse(record.endedAt), `${old} got SIGTERM after its drain ended (${(sigterm ?? NaN) - Date.parse(record.endedAt)} ms)`);
  }
  assert.deepEqual(oldPids.filter(alive), [], 'the old processes are gone');
  assert.deepEqual(await teardown(s), [], 'no instance process is left');
  assert.deepEqual(s.proc.problems(), [], 'ebb logged no error');
});
