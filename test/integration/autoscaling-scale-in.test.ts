/**
 * Scale-in drains before it stops (issue 8): `ebb serve` with a group of 3 instances of the test app
 * behind a listener, driven by the AWS SDK. A slow request goes to each instance, then 8 keep-alive
 * clients load the listener while SetDesiredCapacity takes the group to 1.
 *
 * - no request through the listener fails;
 * - each instance that goes received SIGTERM (the time its app wrote) only after its target's drain
 *   ended (the drain record's endedAt), and the drain ended because its work was done (idle, no
 *   sooner than the slow request's answer was due, nothing cut), not at the 10 s deregistration delay;
 * - no request reached a leaving instance after its drain began;
 * - the slow request on a leaving instance completed: 200 and the whole body;
 * - one instance is left, in service and healthy; the others' processes are gone.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { SetDesiredCapacityCommand } from '@aws-sdk/client-auto-scaling';
import { Cleanup, tempDir } from '../support/cleanup.ts';
import { sleep, waitUntil } from '../support/timing.ts';
import {
  alive,
  appEvents,
  createGroup,
  createTemplate,
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

const SLOW_MS = 2000;
const SLOW_BYTES = 256 * 1024;

test('scale-in 3 → 1 under load: no failed request; SIGTERM only after each drain ended; the slow request on a leaving instance completes', { timeout: 40_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const stateDir = join(await tempDir(c), 'state');
  const s = await startServe(c, { stateDir, listenerPort: await freePort(), deregistrationDelaySeconds: 10 });
  await createTemplate(s, 'app');
  await createGroup(s, { name: 'web', template: 'app', size: 3 });
  const before = await waitServing(s, 'web', 3);
  const pids = new Map((await ec2Instances(s)).map((i) => [i.id, i.pid]));

  // One slow request each: with nothing else in flight, round robin gives one to every instance.
  const slow = [0, 1, 2].map((k) => fetchApp(s.listenerPort, `/slow?ms=${SLOW_MS}&bytes=${SLOW_BYTES}&slow=${k}`));
  await waitUntil(() => before.every((id) => appEvents(stateDir, id).some((e) => e.event === 'request-start' && e.path?.includes('slow=') === true)), 'a slow request on each instance', 3000, 20);
  const load = startLoad(s.listenerPort, { clients: 8, requestMs: 20, maxMs: 8000 });
  await sleep(300);
  const scaledAt = Date.now();
  await s.as.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: 'web', DesiredCapacity: 1 }));

  await waitUntil(async () => (await groupInstances(s, 'web')).length === 1, 'the group down to one instance', 12_000, 100);
  const left = (await groupInstances(s, 'web')).map((i) => i.InstanceId ?? '');
  const gone = before.filter((id) => !left.includes(id));
  await waitUntil(async () => (await ec2Instances(s)).every((i) => !gone.includes(i.id)), 'the leaving instances terminated', 12_000, 100);
  await sleep(500);
  await load.stop();
  const slowReplies = await Promise.all(slow);
  const records = await drainRecords(s);
  const health = await targetHealth(s);

  t.diagnostic(
    `scale-in at +0; load: ${load.replies.length} answered, ${load.failures.length} failed; ` +
      gone
        .map((id) => {
          const r = records.find((x) => x.targetId === id);
          const term = appEvents(stateDir, id).find((e) => e.event === 'sigterm')?.at ?? NaN;
          return `${id}: drain ${r?.outcome} ${Date.parse(r?.startedAt ?? '') - scaledAt}..${Date.parse(r?.endedAt ?? '') - scaledAt} ms, SIGTERM +${term - scaledAt} ms`;
        })
        .join('; '),
  );

  assert.deepEqual(load.failures, [], 'every request through the listener is answered');
  assert.ok(load.replies.length > 100, `the load ran (${load.replies.length} answers)`);
  assert.equal(left.length, 1);
  assert.equal(gone.length, 2);
  assert.deepEqual(
    health.map((h) => [h.Target?.Id, h.TargetHealth?.State]),
    [[left[0], 'healthy']],
    'only the instance left is registered, healthy',
  );

  const slowOnGone = slowReplies.filter((r) => gone.includes(r.instance));
  assert.ok(slowOnGone.length >= 1, `a slow request was in flight on a leaving instance (answered by ${slowReplies.map((r) => r.instance).join(', ')})`);
  for (const r of slowReplies) {
    assert.equal(r.status, 200);
    assert.equal(r.body.length, SLOW_BYTES, `the slow request on ${r.instance} got its whole body`);
    assert.ok(r.body.startsWith(`{"instance":"${r.instance}"`), 'the body is the answering instance\'s');
  }

  for (const id of gone) {
    const record = records.find((x) => x.targetId === id);
    assert.ok(record !== undefined, `a drain record for ${id}`);
    const events = appEvents(stateDir, id);
    const sigterm = events.find((e) => e.event === 'sigterm')?.at;
    assert.ok(sigterm !== undefined, `${id}'s app received SIGTERM`);
    const ended = Date.parse(record.endedAt);
    const started = Date.parse(record.startedAt);
    assert.ok(sigterm >= ended, `${id} got SIGTERM ${sigterm - ended} ms after its drain ended (must not be before)`);
    assert.equal(record.outcome, 'idle', `${id}'s drain ended when its work was done`);
    assert.equal(record.requestsCut, 0);
    assert.ok(started >= scaledAt - 50 && record.durationMs < 10_000, `${id}'s drain began at the scale-in and ended before the deadline`);
    if (slowOnGone.some((r) => r.instance === id)) {
      // The app answers the slow request SLOW_MS after it began (its own record), so a drain that waited
      // for it cannot end sooner. The client's receipt is not the bound: ebb has relayed the last byte when
      // the drain ends, but a busy test process may read it a while later.
      const slowStart = events.find((e) => e.event === 'request-start' && e.path?.includes('slow=') === true)?.at;
      assert.ok(slowStart !== undefined, `${id} recorded its slow request`);
      assert.ok(ended >= slowStart + SLOW_MS, `${id}'s drain waited for its slow request (ended ${ended - slowStart - SLOW_MS} ms after the answer was due)`);
    }
    // A request picked before the new routing reached the data plane may still arrive a moment after.
    const late = events.filter((e) => e.event === 'request-start' && e.at > started + 200);
    assert.deepEqual(late, [], `no request reached ${id} after its drain began`);
    assert.ok(events.some((e) => e.event === 'exit'), `${id}'s app exited on its own`);
    assert.equal(alive(pids.get(id) ?? 0), false, `${id}'s process is gone`);
  }
  assert.deepEqual(await teardown(s), [], 'no instance process is left');
  assert.deepEqual(s.proc.problems(), [], 'ebb logged no error');
});
