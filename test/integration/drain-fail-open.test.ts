/**
 * Fail-open and a zero delay (issue 2 §7, test 6). Both targets answer /health with 503; with
 * intervalSeconds 5 (the AWS minimum) and unhealthyThresholdCount 2 they are unhealthy after their
 * second check, about 5 s in, so this test waits for that (events on the control plane) rather
 * than relying on the initial fail-open.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Cleanup, get, slowOn, startBackend, startInProcess, waitFor } from './harness.ts';

test('every target unhealthy: requests still flow; a delay of 0 ends the drain at once', { timeout: 30_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startBackend('A', c);
  const B = await startBackend('B', c);
  A.healthy = false;
  B.healthy = false;
  const e = await startInProcess(c, { backends: [A, B], delaySeconds: 0 });

  const both = (): boolean => e.health(A.port).health.state === 'unhealthy' && e.health(B.port).health.state === 'unhealthy';
  assert.ok(await waitFor(both, 8000), 'both targets should become unhealthy');

  const replies = await Promise.all(Array.from({ length: 20 }, () => get(e.listenerPort, '/')));
  const by = (name: string): number => replies.filter((r) => r.backend === name).length;
  t.diagnostic(`fail-open: A ${by('A')}, B ${by('B')} of 20`);
  assert.ok(replies.every((r) => r.status === 200), `every request should be answered 200: ${replies.map((r) => r.status).join(',')}`);
  assert.ok(by('A') >= 5 && by('B') >= 5, 'the group should fail open to both unhealthy targets');

  // Delay 0: the drain ends at once, cutting what was in flight.
  const slow = await slowOn(e.listenerPort, A, B, 3000);
  const deregisteredAt = Date.now();
  await e.ebb.control.deregisterTargets(e.tgArn, [{ id: '127.0.0.1', port: A.port }]);
  const h = e.health(A.port).health;
  assert.equal(h.state, 'unused', 'with a delay of 0 the target is gone when the call returns');
  assert.equal(h.reason, 'Target.NotRegistered');
  assert.deepEqual(e.listed(), [B.port]);
  const cut = await slow.done;
  t.diagnostic(`the in-flight request ended ${cut.at - deregisteredAt} ms after the deregistration (${cut.reply?.status ?? cut.error?.message})`);
  assert.ok(cut.at - deregisteredAt < 500, 'the in-flight request is cut at once');
  assert.notEqual(cut.reply?.status, 200);
  const record = e.ebb.control.drainRecords().find((r) => r.port === A.port);
  assert.equal(record?.timeoutSeconds, 0);
  assert.equal(record?.requestsCut, 1);
  assert.ok((record?.endedAt ?? Infinity) - (record?.startedAt ?? 0) < 200, 'the recorded drain should last no time');

  // B alone, unhealthy, still serves (fail-open to the only candidate); a draining or removed target never does.
  const after = await Promise.all(Array.from({ length: 10 }, () => get(e.listenerPort, '/')));
  assert.deepEqual(after.map((r) => `${r.status} ${r.backend}`), Array.from({ length: 10 }, () => '200 B'));
});
