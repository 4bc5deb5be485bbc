/**
 * Draining with requests in flight (issue 2 §7, tests 1 and 2), against a real ebb on real sockets.
 *
 * Health checks: both targets stay `initial` for the first 5 s (the second check of healthy
 * threshold 2 comes after one 5 s interval), so no target is healthy and the group fails open to
 * every registered, non-draining target. These tests finish well inside those 5 s, so they rely on
 * fail-open rather than waiting 5 s for `healthy`; after the deregistration B is the only candidate.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Cleanup, get, slowOn, startBackend, startInProcess, waitFor } from './harness.ts';

const T = '127.0.0.1';

test('a request in flight on a draining target completes; new requests go elsewhere; the drain ends early', { timeout: 30_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startBackend('A', c);
  const B = await startBackend('B', c);
  const e = await startInProcess(c, { backends: [A, B], delaySeconds: 10 });

  const slow = await slowOn(e.listenerPort, A, B, 2000);
  const aSeenBefore = A.seen.length;
  const deregisteredAt = Date.now();
  await e.ebb.control.deregisterTargets(e.tgArn, [{ id: T, port: A.port }]);

  const during = e.health(A.port);
  assert.equal(during.health.state, 'draining');
  assert.equal(during.health.reason, 'Target.DeregistrationInProgress');
  assert.equal(during.drain?.requestsInFlight, 1, 'the drain progress should count the request in flight');

  // 100 requests after the deregistration, 10 at a time: every one reaches B.
  const replies = [];
  for (let i = 0; i < 10; i++) {
    replies.push(...(await Promise.all(Array.from({ length: 10 }, () => get(e.listenerPort, '/')))));
  }
  assert.equal(replies.length, 100);
  assert.deepEqual(
    replies.filter((r) => r.status !== 200 || r.backend !== 'B').map((r) => `${r.status} ${r.backend}`),
    [],
    'every request sent after the deregistration should be answered 200 by B',
  );
  assert.equal(A.seen.length, aSeenBefore, 'A should receive no request after its deregistration');
  assert.ok(Date.now() - deregisteredAt < 1900, 'the 100 requests should be done while the slow one is still in flight');
  assert.equal(e.health(A.port).health.state, 'draining', 'A is still draining while its request runs');

  const done = await slow.done;
  assert.equal(done.error, null);
  assert.equal(done.reply?.status, 200);
  assert.equal(done.reply?.body, 'A');
  assert.ok(
    await waitFor(() => A.openConnections() === 0, 1000),
    `the pooled connection that carried A's last request should be closed, not kept; ${A.openConnections()} open`,
  );

  // Gone at once, not at the 10 s deadline.
  assert.ok(await waitFor(() => e.health(A.port).health.state === 'unused', 2000), 'A should be unused soon after its last request');
  const finishedAt = A.lastFinishedAt();
  const goneEvent = e.states.find((s) => s.port === A.port && s.to.state === 'unused');
  assert.ok(goneEvent !== undefined, 'a target:state event to unused should be published');
  const lag = goneEvent.seenAt - finishedAt;
  t.diagnostic(`A's last response finished ${finishedAt - deregisteredAt} ms after the deregistration; A unused ${lag} ms later`);
  assert.ok(lag <= 200, `A should be gone within 200 ms of its last request finishing; took ${lag} ms`);
  assert.equal(e.health(A.port).health.reason, 'Target.NotRegistered');
  assert.deepEqual(e.listed(), [B.port], 'the group should list only B');

  const record = e.ebb.control.drainRecords().find((r) => r.port === A.port);
  assert.ok(record !== undefined, 'the drain should leave a record');
  assert.equal(record.outcome, 'idle');
  assert.equal(record.requestsCut, 0);
  assert.ok(record.requestsCompleted >= 1, `the record should count the completed request; got ${record.requestsCompleted}`);
  assert.ok(record.endedAt - record.startedAt < 3000, 'the recorded drain should end early');
});

test('a request that outlives the deregistration delay is cut at the deadline and counted', { timeout: 30_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startBackend('A', c);
  const B = await startBackend('B', c);
  const e = await startInProcess(c, { backends: [A, B], delaySeconds: 1 });

  const slow = await slowOn(e.listenerPort, A, B, 5000);
  const deregisteredAt = Date.now();
  await e.ebb.control.deregisterTargets(e.tgArn, [{ id: T, port: A.port }]);
  assert.equal(e.health(A.port).health.state, 'draining');

  const cut = await slow.done;
  const after = cut.at - deregisteredAt;
  t.diagnostic(`cut after ${after} ms: ${cut.reply === null ? `client error ${cut.error?.message}` : `status ${cut.reply.status}`}`);
  assert.ok(after >= 900 && after <= 1600, `the request should be cut at about 1 s; it ended after ${after} ms`);
  assert.notEqual(cut.reply?.status, 200, 'a cut request must not look like a success');
  assert.ok(await waitFor(() => A.seen.at(-1)?.aborted === true, 1000), 'A should see its connection closed');

  assert.ok(await waitFor(() => e.health(A.port).health.state === 'unused', 1000), 'A should be unused after the deadline');
  assert.deepEqual(e.listed(), [B.port]);
  const record = e.ebb.control.drainRecords().find((r) => r.port === A.port);
  assert.ok(record !== undefined, 'the drain should leave a record');
  assert.equal(record.outcome, 'deadline');
  assert.equal(record.requestsCut, 1);
  assert.equal(record.timeoutSeconds, 1);
  const recorded = record.endedAt - record.startedAt;
  assert.ok(recorded >= 950 && recorded <= 1500, `the recorded drain should last about 1 s; got ${recorded} ms`);

  const next = await get(e.listenerPort, '/');
  assert.equal(next.status, 200);
  assert.equal(next.backend, 'B');
});
