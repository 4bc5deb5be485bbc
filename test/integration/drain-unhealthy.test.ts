/**
 * Unhealthy targets (issue 2 §7, test 5): a target that fails its health checks gets no new
 * requests, and its in-flight requests complete with no deadline (ALB's rule), even with a
 * deregistration delay of 1 s configured.
 *
 * Health timing: intervalSeconds 5 is the AWS minimum and both thresholds are 2, so A (answering
 * /health with 503 from the start) becomes unhealthy at its second check, 5 s after the first,
 * and B becomes healthy at the same moment. Until then no target is healthy and the group fails
 * open, which is how the slow request reaches A. The slow request is started 3.5 s after A's first
 * check so that it is in flight when A turns unhealthy and outlives that moment by more than 1 s.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Cleanup, get, sleep, slowOn, startBackend, startInProcess, waitFor } from './harness.ts';

test('a target failing its health checks gets no new requests; its in-flight request completes', { timeout: 30_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startBackend('A', c);
  const B = await startBackend('B', c);
  A.healthy = false;
  const e = await startInProcess(c, { backends: [A, B], delaySeconds: 1 });

  assert.ok(await waitFor(() => A.healthChecks >= 1, 2000), 'A should be checked at once on registration');
  const firstCheck = A.healthCheckTimes[0] ?? Date.now();
  await sleep(Math.max(0, firstCheck + 3500 - Date.now()));
  assert.equal(e.health(A.port).health.state, 'initial', 'A is still in its initial checks (one failure of two)');
  const slow = await slowOn(e.listenerPort, A, B, 3000);

  assert.ok(await waitFor(() => e.health(A.port).health.state === 'unhealthy', 4000), 'A should become unhealthy at its second check');
  const unhealthyAt = e.states.find((s) => s.port === A.port && s.to.state === 'unhealthy')?.seenAt ?? Date.now();
  assert.equal(A.inFlight(), 1, 'the slow request is still in flight when A turns unhealthy');
  assert.equal(e.health(A.port).health.reason, 'Target.ResponseCodeMismatch');
  assert.ok(await waitFor(() => e.health(B.port).health.state === 'healthy', 1000), 'B should be healthy by now');

  // Until the slow request ends, everything goes to B.
  const aSeen = A.seen.length;
  let sent = 0;
  let settled = false;
  const done = slow.done.then((r) => {
    settled = true;
    return r;
  });
  while (!settled) {
    const batch = await Promise.all(Array.from({ length: 5 }, () => get(e.listenerPort, '/')));
    sent += batch.length;
    assert.deepEqual(batch.filter((r) => r.status !== 200 || r.backend !== 'B').map((r) => `${r.status} ${r.backend}`), []);
    await sleep(20);
  }
  assert.equal(A.seen.length, aSeen, 'no new request should reach an unhealthy target');

  const result = await done;
  const outlived = result.at - unhealthyAt;
  t.diagnostic(`${sent} requests went to B while A was unhealthy; A's request ended ${outlived} ms after A turned unhealthy`);
  assert.equal(result.error, null, `the in-flight request should not be cut: ${result.error?.message ?? ''}`);
  assert.equal(result.reply?.status, 200);
  assert.equal(result.reply?.body, 'A');
  assert.ok(outlived >= 1100, `the request should outlive the 1 s delay after A turned unhealthy (it ran ${outlived} ms past it)`);
  assert.equal(e.health(A.port).health.state, 'unhealthy', 'an unhealthy target stays registered');
  assert.equal(e.ebb.control.drainRecords().length, 0, 'failing health checks is not a deregistration');
});
