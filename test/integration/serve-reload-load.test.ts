/**
 * Draining under load through SIGHUP reloads of a spawned `ebb serve` (issue 2 §7, test 8; the
 * variant through the control plane's interface is drain-load.test.ts). 50 keep-alive clients for
 * about 10 s; every 500 ms the config file is rewritten (atomically) with one of the three targets
 * left out, in turn, and ebb is sent SIGHUP: the left-out target is deregistered and drains, the
 * one left out before comes back. Two targets are always registered. Zero failed, zero non-2xx.
 *
 * Health: a target comes back 500 ms after it left, so most are re-registered fresh (`initial`)
 * and the group mostly fails open; routing follows registration, which is what is tested here.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Cleanup, configYaml, describeLoad, runLoad, serveConfig, sleep, startBackend, writeFileAtomic } from './harness.ts';

const SECONDS = 10;

test('SIGHUP reloads every 500 ms under load, each dropping one target and restoring another: no failed request', { timeout: 60_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const backends = [await startBackend('A', c), await startBackend('B', c), await startBackend('C', c)];
  const ports = backends.map((b) => b.port);
  const s = await serveConfig(c, { targets: ports, delaySeconds: 3 });

  let running = true;
  let reloadsSent = 0;
  const reloader = (async () => {
    for (let k = 0; running && k < 100; k++) {
      await sleep(500);
      if (!running) break;
      const without = k % 3;
      await writeFileAtomic(s.configPath, configYaml({ listenerPort: s.listenerPort, targets: ports.filter((_, i) => i !== without), delaySeconds: 3 }));
      s.ebb.child.kill('SIGHUP');
      reloadsSent++;
    }
  })();
  const load = await runLoad(s.listenerPort, 50, SECONDS * 1000, (i) => (i % 20 === 7 ? '/slow?ms=600' : `/slow?ms=${i % 5}`));
  running = false;
  await reloader;
  await s.ebb.waitForLog((l) => l['event'] === 'config:reloaded' && s.ebb.logs.filter((x) => x['event'] === 'config:reloaded').length >= reloadsSent, 3000);

  const count = (event: string): number => s.ebb.logs.filter((l) => l['event'] === event).length;
  const ends = s.ebb.logs.filter((l) => l['event'] === 'drain:end');
  const outcomes = ends.reduce<Record<string, number>>((m, l) => ({ ...m, [String(l['outcome'])]: (m[String(l['outcome'])] ?? 0) + 1 }), {});
  t.diagnostic(describeLoad(load));
  t.diagnostic(
    `${reloadsSent} SIGHUPs, ${count('config:reloaded')} reloads applied, ${count('config:reload-refused')} refused; ${count('drain:start')} drains started; ended: ${JSON.stringify(outcomes)}`,
  );
  assert.ok(reloadsSent >= SECONDS * 2 - 2, `a reload every 500 ms; sent ${reloadsSent}`);
  assert.equal(count('config:reload-refused'), 0, 'every rewritten file is valid');
  assert.ok(count('config:reloaded') >= reloadsSent - 1, `the reloads should be applied (${count('config:reloaded')} of ${reloadsSent})`);
  assert.ok(count('drain:start') >= reloadsSent - 2, 'each reload should start a drain');
  assert.ok(load.total > 1000, `the load should be real; sent ${load.total}`);
  assert.equal(load.failed, 0, `no request may fail: ${load.errors.join('; ')}`);
  assert.deepEqual([...load.non2xx], [], 'no answer may be non-2xx');
  assert.equal(ends.reduce((n, l) => n + Number(l['requestsCut'] ?? 0), 0), 0, 'no request may be cut');
  for (const b of backends) assert.ok((load.byBackend.get(b.name) ?? 0) > 0, `${b.name} should have served some of the load`);

  s.ebb.child.kill('SIGTERM');
  assert.equal(await s.ebb.exited, 0, `ebb should exit 0 after SIGTERM: ${s.ebb.stderr()}`);
});
