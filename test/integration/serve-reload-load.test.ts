/**
 * Draining under load through SIGHUP reloads of a spawned `ebb serve` (issue 2 §7, test 8; the
 * variant through the control plane's interface is drain-load.test.ts). 50 keep-alive clients send
 * requests for as long as the reloads take; 18 times, 500 ms apart, the config file is rewritten
 * (atomically) with one of the three targets left out, in turn, and ebb is sent SIGHUP: the left-out
 * target is deregistered and drains, the one left out before comes back. Two targets are always
 * registered. Zero failed, zero non-2xx, and every SIGHUP sent is applied.
 *
 * The test counts what ebb applied against what was sent, never how much got done in a given time:
 * on a busy machine the reloads and the load take longer, and the assertions stay the same. Each
 * SIGHUP waits until the one before it was applied, because the kernel merges a signal sent while
 * another of its kind is still pending (signal(7)), and the test could not tell a merged SIGHUP
 * from a lost one.
 *
 * Health: a target comes back 500 ms after it left, so most are re-registered fresh (`initial`)
 * and the group mostly fails open; routing follows registration, which is what is tested here.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Cleanup, configYaml, describeLoad, runLoad, serveConfig, sleep, startBackend, writeFileAtomic } from './harness.ts';

const RELOADS = 18;
const GAP_MS = 500;
/** How long one reload may take to be applied before the test gives up on it (a bound, not a pace). */
const APPLY_TIMEOUT_MS = 20_000;

test('18 SIGHUP reloads 500 ms apart under load, each dropping one target and restoring another: each applied, no failed request', { timeout: 150_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const backends = [await startBackend('A', c), await startBackend('B', c), await startBackend('C', c)];
  const ports = backends.map((b) => b.port);
  const s = await serveConfig(c, { targets: ports, delaySeconds: 3 });
  const logged = (event: string): Array<Record<string, unknown>> => s.ebb.logs.filter((l) => l['event'] === event);
  const settled = (): number => logged('config:reloaded').length + logged('config:reload-refused').length;

  let issued = 0;
  const issuedAtReload: number[] = [];
  let reloading = true;
  let sent = 0;
  let unanswered: number | null = null;
  const reloader = (async () => {
    try {
      for (let k = 0; k < RELOADS; k++) {
        await sleep(GAP_MS);
        const without = k % 3;
        await writeFileAtomic(s.configPath, configYaml({ listenerPort: s.listenerPort, targets: ports.filter((_, i) => i !== without), delaySeconds: 3 }));
        issuedAtReload.push(issued);
        s.ebb.child.kill('SIGHUP');
        sent++;
        if ((await s.ebb.waitForLog(() => settled() >= sent, APPLY_TIMEOUT_MS)) === null) {
          unanswered = sent;
          break;
        }
      }
    } finally {
      reloading = false;
    }
  })();
  const load = await runLoad(
    s.listenerPort,
    50,
    () => reloading,
    (i) => {
      issued++;
      return i % 20 === 7 ? '/slow?ms=600' : `/slow?ms=${i % 5}`;
    },
  );
  await reloader;

  const reloaded = logged('config:reloaded');
  const ends = logged('drain:end');
  const outcomes = ends.reduce<Record<string, number>>((m, l) => ({ ...m, [String(l['outcome'])]: (m[String(l['outcome'])] ?? 0) + 1 }), {});
  t.diagnostic(describeLoad(load));
  t.diagnostic(
    `${sent} SIGHUPs, ${reloaded.length} reloads applied, ${logged('config:reload-refused').length} refused; ${logged('drain:start').length} drains started; ended: ${JSON.stringify(outcomes)}`,
  );
  assert.equal(unanswered, null, `SIGHUP ${String(unanswered)} was neither applied nor refused within ${APPLY_TIMEOUT_MS} ms: ${s.ebb.stderr()}`);
  assert.equal(sent, RELOADS);
  assert.equal(logged('config:reload-refused').length, 0, 'every rewritten file is valid');
  assert.equal(reloaded.length, sent, 'every SIGHUP is applied');
  // The first file leaves one of the three targets out; each later one also brings back the one left out before.
  assert.deepEqual(
    reloaded.map((l) => [l['deregistered'], l['registered']]),
    Array.from({ length: sent }, (_, k) => [1, k === 0 ? 0 : 1]),
    'each reload deregisters the target it leaves out and registers the one it restores',
  );
  assert.equal(logged('drain:start').length, sent, 'each reload starts a drain');
  assert.ok((issuedAtReload.at(-1) ?? 0) > (issuedAtReload[0] ?? 0), 'requests were sent while the reloads ran');
  assert.equal(load.failed, 0, `no request may fail: ${load.errors.join('; ')}`);
  assert.deepEqual([...load.non2xx], [], 'no answer may be non-2xx');
  assert.equal(ends.reduce((n, l) => n + Number(l['requestsCut'] ?? 0), 0), 0, 'no request may be cut');
  for (const b of backends) assert.ok((load.byBackend.get(b.name) ?? 0) > 0, `${b.name} should have served some of the load`);

  s.ebb.child.kill('SIGTERM');
  assert.equal(await s.ebb.exited, 0, `ebb should exit 0 after SIGTERM: ${s.ebb.stderr()}`);
});
