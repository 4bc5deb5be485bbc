/**
 * Re-registering a draining target (issue 2 §7, test 7) cancels its drain and puts it back in
 * service. Fail-open stands in for health (the test ends inside the first 5 s).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Cleanup, get, sleep, slowOn, startBackend, startInProcess } from './harness.ts';

test('re-registering a draining target puts it back in service', { timeout: 30_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startBackend('A', c);
  const B = await startBackend('B', c);
  const e = await startInProcess(c, { backends: [A, B], delaySeconds: 10 });
  const target = { id: '127.0.0.1', port: A.port };

  // A request in flight keeps A draining (an idle target would be gone at once).
  const slow = await slowOn(e.listenerPort, A, B, 1500);
  await e.ebb.control.deregisterTargets(e.tgArn, [target]);
  assert.equal(e.health(A.port).health.state, 'draining');
  for (let i = 0; i < 6; i++) assert.equal((await get(e.listenerPort, '/')).backend, 'B');

  await e.ebb.control.registerTargets(e.tgArn, [target]);
  const back = e.health(A.port);
  assert.notEqual(back.health.state, 'draining', 'a re-registered target is no longer draining');
  assert.notEqual(back.health.state, 'unused');
  assert.equal(back.drain, undefined);
  const record = e.ebb.control.drainRecords().find((r) => r.port === A.port);
  assert.equal(record?.outcome, 'cancelled', 'the cancelled drain should leave a record');

  const aBefore = A.seen.length;
  const replies = await Promise.all(Array.from({ length: 20 }, () => get(e.listenerPort, '/')));
  assert.ok(replies.every((r) => r.status === 200));
  const toA = replies.filter((r) => r.backend === 'A').length;
  t.diagnostic(`${toA} of 20 requests reached A after its re-registration`);
  assert.ok(toA >= 5 && A.seen.length > aBefore, `A should get requests again; got ${toA} of 20`);

  const done = await slow.done;
  assert.equal(done.reply?.status, 200);
  // The in-flight request ending must not end a drain that was cancelled.
  await sleep(200);
  assert.notEqual(e.health(A.port).health.state, 'unused');
  assert.deepEqual(e.listed().sort(), [A.port, B.port].sort());
  assert.equal((await get(e.listenerPort, '/')).status, 200);
});
