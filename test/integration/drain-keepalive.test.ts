/**
 * Keep-alive while draining (issue 2 §7, test 3): a client connection kept alive across a
 * deregistration sends its next request to another target, and the draining target's idle pooled
 * connections are closed. Health checks are left to fail-open: the test ends well inside the 5 s
 * before any target can become healthy, so both targets are candidates until A is deregistered.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { Cleanup, get, getUntil, startBackend, startInProcess, waitFor } from './harness.ts';

test('a kept-alive client connection whose last request went to A sends its next request to B', { timeout: 30_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startBackend('A', c);
  const B = await startBackend('B', c);
  const e = await startInProcess(c, { backends: [A, B], delaySeconds: 10 });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  c.add(() => agent.destroy());

  const first = await get(e.listenerPort, '/', agent);
  const onA = await getUntil(e.listenerPort, 'A', '/', agent);
  assert.equal(onA.localPort, first.localPort, 'the client should keep one connection to ebb');
  // ebb keeps an idle pooled connection to A (health checks come on their own connections and close).
  assert.ok(A.openConnections() >= 1);

  await e.ebb.control.deregisterTargets(e.tgArn, [{ id: '127.0.0.1', port: A.port }]);
  const aSeen = A.seen.length;

  const next = await get(e.listenerPort, '/', agent);
  assert.equal(next.status, 200);
  assert.equal(next.backend, 'B', 'the next request on the kept-alive connection should go to B');
  assert.equal(next.localPort, onA.localPort, 'the request should travel on the same client connection');
  for (let i = 0; i < 10; i++) {
    const r = await get(e.listenerPort, '/', agent);
    assert.equal(r.backend, 'B');
  }
  assert.equal(A.seen.length, aSeen, 'A should get nothing after its deregistration');

  // Nothing was in flight: the drain ends at once, and the idle pooled connection to A is closed.
  assert.ok(await waitFor(() => e.health(A.port).health.state === 'unused', 500), 'an idle target should finish draining at once');
  assert.ok(await waitFor(() => A.openConnections() === 0, 1000), `ebb's pooled connections to A should be closed; ${A.openConnections()} open`);
  const record = e.ebb.control.drainRecords().find((r) => r.port === A.port);
  assert.equal(record?.outcome, 'idle');
});
