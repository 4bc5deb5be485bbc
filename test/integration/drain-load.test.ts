/**
 * Draining under load through the control plane's own interface (issue 2 §7, test 8; the variant
 * through SIGHUP reloads is serve-reload-load.test.ts). 50 keep-alive clients for about 6 s while,
 * every 500 ms, one target is registered (a fresh registration, or a drain cancelled) and another
 * deregistered; two of the three targets are always registered. Zero failed requests, zero non-2xx.
 *
 * Health: a target deregistered in one step is registered again in the next, so targets rarely
 * stay registered the 5 s it takes to become healthy; the group mostly fails open, which is the
 * point (routing follows registration). A few requests are slow (600 ms) so that some drains are
 * still running when their target comes back (cancelled) and others end early (idle).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Cleanup, describeLoad, runLoad, sleep, startBackend, startInProcess } from './harness.ts';

const SECONDS = 6;

test('targets deregistered and re-registered every 500 ms under load: no failed request', { timeout: 60_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const backends = [await startBackend('A', c), await startBackend('B', c), await startBackend('C', c)];
  const e = await startInProcess(c, { backends, delaySeconds: 3 });
  const target = (i: number): { id: string; port: number } => ({ id: '127.0.0.1', port: backends[i % 3]?.port ?? 0 });

  // A fixed number of register/deregister steps, 500 ms apart; the load runs until they are done, however
  // long a busy machine makes that. What is asserted is what ebb did, never how fast the machine is.
  const STEPS = SECONDS * 2;
  let running = true;
  const steps: string[] = [];
  const cycler = (async () => {
    for (let k = 0; k < STEPS; k++) {
      await sleep(500);
      await e.ebb.control.registerTargets(e.tgArn, [target(k)]);
      await e.ebb.control.deregisterTargets(e.tgArn, [target(k + 1)]);
      const registered = e.ebb.control.describeTargetHealth(e.tgArn).filter((d) => d.health.state !== 'draining');
      steps.push(registered.map((d) => backends.find((b) => b.port === d.port)?.name ?? '?').join(''));
      assert.ok(registered.length >= 1, 'at least one target is always registered');
    }
  })();
  const load = runLoad(e.listenerPort, 50, () => running, (i) => (i % 20 === 7 ? '/slow?ms=600' : `/slow?ms=${i % 5}`));
  try {
    await cycler;
  } finally {
    running = false;
  }
  const done = await load;

  const records = e.ebb.control.drainRecords();
  const outcomes = records.reduce<Record<string, number>>((m, r) => ({ ...m, [r.outcome]: (m[r.outcome] ?? 0) + 1 }), {});
  t.diagnostic(describeLoad(done));
  t.diagnostic(`${steps.length} register/deregister steps (registered after each: ${steps.join(' ')}); drains: ${JSON.stringify(outcomes)}`);
  assert.equal(steps.length, STEPS, 'every step ran');
  assert.ok(done.total >= STEPS, `requests flowed throughout; sent ${done.total}`);
  assert.equal(done.failed, 0, `no request may fail: ${done.errors.join('; ')}`);
  assert.deepEqual([...done.non2xx], [], 'no answer may be non-2xx');
  assert.equal(records.reduce((n, r) => n + r.requestsCut, 0), 0, 'no request may be cut');
  for (const b of backends) assert.ok((done.byBackend.get(b.name) ?? 0) > 0, `${b.name} should have served some of the load`);
});
