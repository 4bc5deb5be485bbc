/**
 * Hot restart of `ebb serve` (SIGUSR2): the old process hands its sockets, its state and its drains
 * to a new one and exits 0, and no client notices. One ebb, from a config file with targets A and B
 * (deregistration delay 30 s), restarted again and again:
 *
 * a. Under a bounded load (keep-alive clients and clients with a new connection per request), five
 *    restarts one after another: no request fails, every one is a 200, each new process serves, a
 *    request sent just before a restart completes and answered 1.5 s after it completes is a 200,
 *    and the admin API (one SDK client all along) answers on the same port.
 * b. A drain handed over: A deregistered while a request is held in flight on it, then SIGUSR2. The
 *    new ebb reports A draining; the request is answered, and the drain ends idle right after (not at
 *    the 30 s deadline), with that request in its record; new requests go to B meanwhile.
 * c. A restart into a broken config file fails (`restart:failed`): the successor is gone, the old
 *    process serves on as before, and once the file is repaired SIGUSR2 restarts it.
 * d. After SIGTERM to the last process, every ebb process of the run is gone, each having exited 0.
 *
 * The backends hold `/hold` requests until the test releases them, so a request is in flight across
 * a restart however long the new process takes to start (2-5 s from sources on two busy cores).
 *
 * The successors are not children of the test: each old process spawns its own. To see their exit
 * codes, ebb runs under a small Python subreaper (prctl PR_SET_CHILD_SUBREAPER), to which a successor
 * is reparented once its parent has exited; it reaps each and prints `{"event":"reaper:exit","pid","code"}`
 * into the same pipe as ebb's log lines (a negative code is the signal that killed it). A successor
 * that fails to start is reaped by its still running parent instead, and is only seen to be gone.
 * Cleanup kills every pid seen (from `ebb:started` and `restart:starting` lines), then the subreaper.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { DeregisterTargetsCommand, DescribeTargetGroupsCommand, DescribeTargetHealthCommand } from '@aws-sdk/client-elastic-load-balancing-v2';
import { alive, ebbApi, failures, healthOf, holdingBackend, restart, type Restarted, skip, spawnFamily, startLoad, stepper } from './hot-restart-harness.ts';
import { Cleanup, configYaml, connectionRefused, freePort, get, getUntil, settle, type Settled, tempDir, waitFor, writeFileAtomic } from './harness.ts';
import { sdkClient } from './process-harness.ts';

test('hot restart (SIGUSR2): under load, with a drain handed over, into a broken config, and no process left', { skip, timeout: 120_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const { backend: A, release: releaseA } = await holdingBackend('A', c);
  const { backend: B, release: releaseB } = await holdingBackend('B', c);
  const dir = await tempDir(c);
  const listenerPort = await freePort();
  const configPath = join(dir, 'ebb.yaml');
  const config = configYaml({ listenerPort, targets: [A.port, B.port], delaySeconds: 30, lbAttributes: { 'ebb.shutdown_timeout.seconds': 10 } });
  await writeFileAtomic(configPath, config);
  const f = spawnFamily(c, ['--config', configPath, '--admin', '127.0.0.1:0', '--state-dir', join(dir, 'state')]);
  const first = await f.waitForLog((l) => l['event'] === 'ebb:started', 15_000);
  assert.ok(first !== null, `ebb did not start:\n${f.tail()}`);
  const admin = String(first['admin']);
  const spawned = f.logs.find((l) => l['event'] === 'reaper:spawned')?.['pid'];
  assert.equal(first['pid'], spawned, 'ebb:started names the pid of the process that started');
  let current = Number(first['pid']);
  const client = sdkClient(`http://${admin}`);
  c.add(() => client.destroy());
  const groups = await client.send(new DescribeTargetGroupsCommand({ Names: ['web'] }));
  const tgArn = groups.TargetGroups?.[0]?.TargetGroupArn ?? '';
  const step = stepper(t);

  await step('a. five restarts under load: nothing fails, each new process serves, a slow request completes', async () => {
    // Bounded well past five restarts on a slow machine (each can take 6 s): a load that ran out before the
    // last restart would read as a restart that served nothing.
    const load = startLoad(listenerPort, { keepAlive: 3, fresh: 3, maxMs: 75_000, maxPerClient: 50_000 });
    c.add(() => load.stop());
    assert.ok(await waitFor(() => load.samples.length >= 50, 3000), 'the load is running');
    const steps: Array<Restarted & { servedAfter: number }> = [];
    const slow: { done: Promise<Settled> | null; sentAt: number; releasedAt: number } = { done: null, sentAt: 0, releasedAt: 0 };
    for (let round = 1; round <= 5; round++) {
      if (round === 3) {
        // Sent just before the restart completes (the old process has released the state, the new one is about
        // to serve), and answered 1.5 s after the new one said it serves.
        const from = f.logs.length;
        void f.waitForLog((l) => l['event'] === 'restart:state-released', 12_000, from).then(async (released) => {
          if (released === null) return;
          slow.sentAt = Date.now();
          slow.done = settle(get(listenerPort, '/hold'));
          await f.waitForLog((l) => l['event'] === 'ebb:started', 12_000, from);
          await new Promise((r) => setTimeout(r, 1500));
          slow.releasedAt = Date.now();
          releaseA();
          releaseB();
        });
      }
      const step = await restart(f, current, admin);
      current = step.pid;
      const servedAfter = (): number => load.samples.filter((s) => s.sentAt > step.oldExitedAt && s.status === 200).length;
      await waitFor(() => servedAfter() >= 30, 10_000);
      steps.push({ ...step, servedAfter: servedAfter() });
    }
    const samples = await load.stop();
    const slowDone = slow.done === null ? null : await slow.done;
    const health = await client.send(new DescribeTargetHealthCommand({ TargetGroupArn: tgArn }));
    t.diagnostic(
      `${samples.length} requests (${samples.filter((s) => s.backend === 'A').length} A, ${samples.filter((s) => s.backend === 'B').length} B); restarts: ` +
        steps.map((s) => `SIGUSR2 at ${s.signalledAt}, +${s.startedAt - s.signalledAt} ms started, +${s.oldExitedAt - s.signalledAt} ms old gone, ${s.servedAfter} served after`).join('; ') +
        `; slow request ${slowDone?.reply?.status ?? slowDone?.error?.message} after ${slowDone === null ? '?' : slowDone.at - slow.sentAt} ms`,
    );
    assert.deepEqual(failures(samples), [], 'no request failed and every answer was a 200');
    assert.ok(samples.length > 500, `the load ran through the restarts (${samples.length} requests)`);
    for (const [i, s] of steps.entries()) assert.ok(s.servedAfter >= 30, `requests were served after restart ${i + 1} (${s.servedAfter}; the load ran until ${load.endsAt}, the old process was gone at ${s.oldExitedAt})`);
    assert.ok(slowDone !== null, 'restart 3 logged restart:state-released, and the slow request was sent');
    assert.equal(slowDone.error, null, `the slow request across restart 3 completes: ${slowDone.error?.message ?? ''}`);
    assert.equal(slowDone.reply?.status, 200);
    const third = steps[2];
    assert.ok(third !== undefined && slow.sentAt < third.startedAt && slowDone.at >= slow.releasedAt, 'the slow request was in flight while the processes changed places');
    assert.deepEqual(new Set(health.TargetHealthDescriptions?.map((d) => d.Target?.Port)), new Set([A.port, B.port]), 'the admin API answers on the same port after the restarts');
    assert.deepEqual(f.logs.filter((l) => l['level'] === 'error' || 'unparsed' in l), [], 'no error logged');
  });

  await step('b. a drain handed over ends idle once the old process has finished its request on the target', async () => {
    // Held on A until the new ebb is up and has reported A draining, however long its start takes.
    await getUntil(listenerPort, 'B');
    const slow = settle(get(listenerPort, '/hold'));
    assert.ok(await waitFor(() => A.seen.at(-1)?.url === '/hold' && A.inFlight() === 1, 1000), 'the held request is in flight on A');
    const sentAt = Date.now();
    await client.send(new DeregisterTargetsCommand({ TargetGroupArn: tgArn, Targets: [{ Id: '127.0.0.1', Port: A.port }] }));
    const ackedAt = Date.now();
    assert.equal(await healthOf(client, tgArn, A.port), 'draining', 'A drains: its slow request is in flight');
    const load = startLoad(listenerPort, { keepAlive: 1, fresh: 1, maxMs: 15_000, maxPerClient: 5000 });
    c.add(() => load.stop());
    const step = restart(f, current, admin);
    step.catch(() => undefined); // its failure is reported where it is awaited
    const started = await f.waitForLog((l) => l['event'] === 'ebb:started' && l['predecessor'] === current, 12_000, 0);
    assert.ok(started !== null, `the successor started:\n${f.tail()}`);
    const stateAfter = await healthOf(client, tgArn, A.port);
    await new Promise((r) => setTimeout(r, 300));
    const stillDraining = await healthOf(client, tgArn, A.port);
    const releasedAt = Date.now();
    releaseA();
    let goneAt = 0;
    await waitFor(async () => (await healthOf(client, tgArn, A.port)) !== 'draining' && (goneAt = Date.now()) > 0, 10_000, 50);
    const done = await slow;
    current = (await step).pid;
    const samples = await load.stop();
    const records = (await ebbApi(admin, `/ebb/v1/drain-records?targetGroup=web&target=127.0.0.1:${A.port}`))['records'] as Array<Record<string, unknown>>;
    const record = records[0];
    t.diagnostic(`A ${stateAfter} after the restart; gone ${goneAt - ackedAt} ms after deregistration, ${goneAt - releasedAt} ms after its request was released; record ${JSON.stringify(record)}`);
    assert.equal(stateAfter, 'draining', 'the new ebb reports A draining');
    assert.equal(stillDraining, 'draining', 'A drains on while the old process has its request in flight');
    assert.equal(done.error, null, `the slow request on A completes: ${done.error?.message ?? ''}`);
    assert.deepEqual([done.reply?.status, done.reply?.backend], [200, 'A']);
    assert.notEqual(goneAt, 0, 'the drain ended well before its 30 s deadline');
    const endedAt = Date.parse(String(record?.['endedAt']));
    assert.ok(endedAt >= releasedAt, `the drain did not end before the request on A was answered (${endedAt - releasedAt} ms)`);
    assert.ok(endedAt - releasedAt < 2000, `the drain ended shortly after the request on A (${endedAt - releasedAt} ms)`);
    assert.equal(record?.['outcome'], 'idle', JSON.stringify(records));
    assert.equal(record?.['requestsCompleted'], 1, 'the request the old process finished is counted in the record');
    assert.equal(record?.['requestsCut'], 0);
    const startedRecord = Date.parse(String(record?.['startedAt']));
    assert.ok(startedRecord >= sentAt - 5 && startedRecord <= ackedAt + 5, 'the record starts at the deregistration, not at the restart');
    assert.ok(samples.length > 5, `requests went on meanwhile (${samples.length})`);
    assert.deepEqual(failures(samples), [], 'every request meanwhile answered 200');
    assert.deepEqual([...new Set(samples.filter((s) => s.status === 200).map((s) => s.backend))], ['B'], 'every new request went to B');
  });

  await step('c. a restart into a broken config fails; the old process serves on, and restarts once the file is repaired', async () => {
    await writeFileAtomic(configPath, 'loadBalancers: [\n  - name: web\n    listeners: {{\n');
    const from = f.logs.length;
    process.kill(current, 'SIGUSR2');
    const failed = await f.waitForLog((l) => l['event'] === 'restart:failed', 12_000, from);
    assert.ok(failed !== null, `restart:failed is logged:\n${f.tail()}`);
    const successor = Number(failed['successor']);
    t.diagnostic(`restart:failed ${JSON.stringify(failed)}`);
    // Its parent, the old process, reaps it: the subreaper does not see it.
    assert.ok(await waitFor(() => !alive(successor), 5000), `the failed successor ${successor} is gone`);
    assert.equal(f.exits.has(current), false, 'the old process runs on');
    const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => settle(get(listenerPort, `/after-failed-${i}`))));
    assert.deepEqual(replies.map((r) => r.reply?.status ?? r.error?.message), Array.from({ length: 10 }, () => 200), 'the old process serves');
    const listed = await client.send(new DescribeTargetHealthCommand({ TargetGroupArn: tgArn }));
    assert.deepEqual(listed.TargetHealthDescriptions?.map((d) => d.Target?.Port), [B.port], 'the admin API answers (A left in b, B stays)');
    assert.equal(f.logs.slice(from).some((l) => l['event'] === 'ebb:started'), false, 'no new ebb started');

    await writeFileAtomic(configPath, config);
    current = (await restart(f, current, admin)).pid;
    assert.equal((await get(listenerPort, '/after-repair')).status, 200);
  });

  await step('d. SIGTERM to the last process: every ebb process of the run is gone, each having exited 0', async () => {
    process.kill(current, 'SIGTERM');
    assert.ok(await waitFor(() => f.exits.has(current), 12_000), `the last process ${current} exits:\n${f.tail()}`);
    const closed = await Promise.race([f.closed.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 5000).unref())]);
    const codes = [...f.pids].map((pid) => [pid, f.exits.get(pid) ?? (alive(pid) ? 'running' : 'reaped by its parent')] as const);
    t.diagnostic(`processes: ${codes.map(([pid, code]) => `${pid} ${code}`).join(', ')}`);
    assert.equal(f.pids.size, 9, 'the first process, five restarts, the failed successor, and two more restarts');
    assert.ok(closed, 'nothing holds the pipe any more');
    const failedSuccessor = Number(f.logs.find((l) => l['event'] === 'restart:failed')?.['successor']);
    assert.deepEqual(
      codes.filter(([pid]) => pid !== failedSuccessor),
      [...f.pids].filter((pid) => pid !== failedSuccessor).map((pid) => [pid, 0]),
      'every process that served exited 0',
    );
    assert.ok(!alive(failedSuccessor), 'the failed successor is gone too');
    assert.deepEqual([...f.pids].filter(alive), [], 'no process of the run is left');
    assert.ok(await connectionRefused(listenerPort), 'nothing listens any more');
    const lastStart = f.logs.findLastIndex((l) => l['event'] === 'ebb:started');
    assert.ok(f.logs.slice(lastStart).some((l) => l['event'] === 'ebb:stopped'), 'the last process stopped gracefully');
  });
});
