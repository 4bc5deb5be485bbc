/**
 * Hot restart of `ebb serve --workers 2` (SIGUSR2, docs/restart.md): the old ebb asks its workers for
 * their listening sockets and hands them to the new ebb, whose workers listen on them (no new bind,
 * so no connection waiting in a socket is lost, under SO_REUSEPORT on Node 24 as with the one shared
 * socket on Node 20); the old workers serve on as one data plane of the new ebb, then close and exit.
 * From a config file with targets A and B (deregistration delay 30 s):
 *
 * a. Under a bounded load (keep-alive and new-connection clients), three restarts: no request fails,
 *    every answer is a 200, each new worker listens on a socket the old workers listened on (the same
 *    socket inode, read from /proc: no new bind), and the old ebb's workers are gone once it has exited 0.
 * a2. A new worker killed: its replacement listens on its slot's handed-over socket (no EADDRINUSE),
 *    and requests go on being served.
 * b. A drain handed over: A deregistered while a request is held in flight on it in an old worker,
 *    then SIGUSR2. The new ebb reports A draining until the request is answered, then the drain ends
 *    idle (not at its 30 s deadline), its record counting that request.
 * c. After SIGTERM to the last ebb, every ebb process has exited 0 and no worker process is left.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DeregisterTargetsCommand, DescribeTargetGroupsCommand } from '@aws-sdk/client-elastic-load-balancing-v2';
import type { LogLine } from '../support/ebb-process.ts';
import { alive, ebbApi, failures, type Family, healthOf, holdingBackend, restart, skip, spawnFamily, startLoad, stepper } from './hot-restart-harness.ts';
import { Cleanup, configYaml, connectionRefused, freePort, get, settle, type Settled, tempDir, waitFor, writeFileAtomic } from './harness.ts';
import { scrape } from './metrics-scrape.ts';
import { sdkClient } from './process-harness.ts';

/**
 * The inodes of the listening TCP sockets on `port` that process `pid` holds (Linux: its fds in
 * /proc/<pid>/fd against the LISTEN rows of /proc/net/tcp and tcp6). Two processes listening on the same
 * socket show the same inode; a socket bound anew shows a new one.
 */
function listeningInodes(pid: number, port: number): Set<string> {
  const listening = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const row of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = row.trim().split(/\s+/);
      const local = f[1];
      // st 0A is LISTEN; the local address ends with the port in hex.
      if (local !== undefined && f[3] === '0A' && Number.parseInt(local.split(':')[1] ?? '', 16) === port && f[9] !== undefined) listening.add(f[9]);
    }
  }
  const held = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode !== undefined && listening.has(inode)) held.add(inode);
  }
  return held;
}

/** The pids an `ebb:started` line names as its workers. */
function workersOf(started: LogLine): number[] {
  const workers = started['workers'];
  assert.ok(Array.isArray(workers), `ebb:started names its workers: ${JSON.stringify(started)}`);
  return workers.map(Number);
}

/** The `worker:ready` lines logged from `from` up to the successor's `ebb:started`. */
function readyBefore(f: Family, from: number, successor: number): LogLine[] {
  const lines = f.logs.slice(from);
  const started = lines.findIndex((l) => l['event'] === 'ebb:started' && l['pid'] === successor);
  return lines.slice(0, started < 0 ? lines.length : started).filter((l) => l['event'] === 'worker:ready');
}

test('hot restart with --workers 2: sockets handed to the new workers, a drain waits for the old ones, no process left', { skip, timeout: 120_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const { backend: A, release: releaseA } = await holdingBackend('A', c);
  const { backend: B, release: releaseB } = await holdingBackend('B', c);
  const dir = await tempDir(c);
  const listenerPort = await freePort();
  const configPath = join(dir, 'ebb.yaml');
  // /metrics open, to see that the requests old workers finish after a restart are counted by the new ebb.
  await writeFileAtomic(configPath, `${configYaml({ listenerPort, targets: [A.port, B.port], delaySeconds: 30, lbAttributes: { 'ebb.shutdown_timeout.seconds': 10 } })}admin:\n  metrics:\n    public: true\n`);
  const f = spawnFamily(c, ['--config', configPath, '--admin', '127.0.0.1:0', '--state-dir', join(dir, 'state'), '--workers', '2']);
  const first = await f.waitForLog((l) => l['event'] === 'ebb:started', 20_000);
  assert.ok(first !== null, `ebb did not start:\n${f.tail()}`);
  const admin = String(first['admin']);
  let current = Number(first['pid']);
  let workers = workersOf(first);
  assert.equal(workers.length, 2);
  const client = sdkClient(`http://${admin}`);
  c.add(() => client.destroy());
  const groups = await client.send(new DescribeTargetGroupsCommand({ Names: ['web'] }));
  const tgArn = groups.TargetGroups?.[0]?.TargetGroupArn ?? '';
  const step = stepper(t);

  /** SIGUSR2 to the current ebb; checks the new workers took handed-over sockets and the old ones are gone. */
  const restartWorkers = async (): Promise<void> => {
    const from = f.logs.length;
    const oldWorkers = workers;
    const oldSockets = new Set(oldWorkers.flatMap((pid) => [...listeningInodes(pid, listenerPort)]));
    assert.ok(oldSockets.size >= 1, 'the old workers listen on the listener port');
    const done = await restart(f, current, admin, 20_000);
    const started = f.logs.slice(from).find((l) => l['event'] === 'ebb:started' && l['pid'] === done.pid);
    assert.ok(started !== undefined);
    workers = workersOf(started);
    const ready = readyBefore(f, from, done.pid);
    assert.deepEqual(
      ready.map((l) => [Number(l['pid']), l['inheritedSockets']]).sort(),
      workers.map((pid) => [pid, 1]).sort(),
      `each new worker got the listener's handed-over socket before the new ebb started: ${JSON.stringify(ready)}`,
    );
    for (const pid of workers) {
      const held = [...listeningInodes(pid, listenerPort)];
      assert.ok(held.length === 1 && oldSockets.has(held[0] ?? ''), `new worker ${pid} listens on a socket the old workers had (${held.join(', ')} in ${[...oldSockets].join(', ')})`);
    }
    assert.ok(await waitFor(() => oldWorkers.every((pid) => !alive(pid)), 5000), `the old workers ${oldWorkers.join(', ')} are gone`);
    assert.equal(
      f.logs.slice(from).some((l) => l['event'] === 'worker:exit' && oldWorkers.includes(Number(l['pid'])) && l['level'] !== 'info'),
      false,
      'the old workers exited as asked',
    );
    current = done.pid;
  };

  await step('a. three restarts under load: nothing fails, each new ebb listens on the sockets handed over', async () => {
    const load = startLoad(listenerPort, { keepAlive: 2, fresh: 2, maxMs: 75_000, maxPerClient: 50_000 });
    c.add(() => load.stop());
    assert.ok(await waitFor(() => load.samples.length >= 50, 5000), 'the load is running');
    for (let round = 1; round <= 3; round++) {
      await restartWorkers();
      const after = load.samples.length;
      assert.ok(await waitFor(() => load.samples.length >= after + 30, 5000), `requests are served after restart ${round}`);
    }
    const samples = await load.stop();
    t.diagnostic(`${samples.length} requests over 3 restarts; workers now ${workers.join(', ')}`);
    assert.deepEqual(failures(samples), [], 'no request failed and every answer was a 200');
    assert.deepEqual(f.logs.filter((l) => l['level'] === 'error' || 'unparsed' in l), [], 'no error logged');
  });

  await step("a2. a new worker killed: its replacement listens on its slot's handed-over socket", async () => {
    const [victim] = workers;
    assert.ok(victim !== undefined);
    const socket = [...listeningInodes(victim, listenerPort)][0];
    const from = f.logs.length;
    process.kill(victim, 'SIGKILL');
    const ready = await f.waitForLog((l) => l['event'] === 'worker:ready' && l['pid'] !== victim, 10_000, from);
    assert.ok(ready !== null, `a replacement worker got ready:\n${f.tail()}`);
    const replacement = Number(ready['pid']);
    f.workerPids.add(replacement);
    assert.equal(ready['inheritedSockets'], 1, 'the replacement was handed its slot\'s socket');
    assert.ok(await waitFor(() => listeningInodes(replacement, listenerPort).size === 1, 5000), 'the replacement listens');
    assert.deepEqual([...listeningInodes(replacement, listenerPort)], [socket], 'on the same socket as the worker it replaced');
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => settle(get(listenerPort, `/after-replacement-${i}`))));
    assert.deepEqual(replies.map((r) => r.reply?.status ?? r.error?.message), Array.from({ length: 20 }, () => 200));
    assert.deepEqual(f.logs.slice(from).filter((l) => l['event'] === 'worker:listener-errors'), [], 'no listener failed to open');
    workers = workers.map((pid) => (pid === victim ? replacement : pid));
  });

  await step('b. a drain handed over ends idle once an old worker has finished its request on the target', async () => {
    // Each worker has a round robin of its own, and the kernel picks the worker: held requests are sent
    // until one is on A (one held on B is let go). Both must be healthy first: a health check that timed out
    // on a loaded machine during the restarts leaves A out of the rotation for a while (20 requests all
    // went to B once in CI).
    for (const port of [A.port, B.port]) {
      assert.ok(await waitFor(async () => (await healthOf(client, tgArn, port)) === 'healthy', 20_000, 100), `target ${port} is healthy: ${await healthOf(client, tgArn, port)}`);
    }
    let slow: Promise<Settled> | null = null;
    for (let attempt = 0; attempt < 20 && slow === null; attempt++) {
      const sent = settle(get(listenerPort, '/hold'));
      assert.ok(await waitFor(() => A.inFlight() + B.inFlight() === 1, 2000), 'the held request reached a target');
      if (A.inFlight() === 1) slow = sent;
      else {
        releaseB();
        await sent;
      }
    }
    assert.ok(slow !== null, `a held request is in flight on A (A is ${await healthOf(client, tgArn, A.port)})`);
    await client.send(new DeregisterTargetsCommand({ TargetGroupArn: tgArn, Targets: [{ Id: '127.0.0.1', Port: A.port }] }));
    assert.equal(await healthOf(client, tgArn, A.port), 'draining');
    const restarted = restartWorkers();
    restarted.catch(() => undefined); // its failure is reported where it is awaited
    const started = await f.waitForLog((l) => l['event'] === 'ebb:started' && l['predecessor'] === current, 20_000, 0);
    assert.ok(started !== null, `the successor started:\n${f.tail()}`);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await healthOf(client, tgArn, A.port), 'draining', 'A drains on in the new ebb while an old worker has its request');
    const releasedAt = Date.now();
    releaseA();
    assert.ok(await waitFor(async () => (await healthOf(client, tgArn, A.port)) !== 'draining', 10_000, 50), 'the drain ended well before its 30 s deadline');
    const done = await slow;
    await restarted;
    assert.equal(done.error, null, `the slow request on A completes: ${done.error?.message ?? ''}`);
    assert.deepEqual([done.reply?.status, done.reply?.backend], [200, 'A']);
    const records = (await ebbApi(admin, `/ebb/v1/drain-records?targetGroup=web&target=127.0.0.1:${A.port}`))['records'] as Array<Record<string, unknown>>;
    const record = records[0];
    t.diagnostic(`record ${JSON.stringify(record)}`);
    assert.equal(record?.['outcome'], 'idle', JSON.stringify(records));
    assert.ok(Date.parse(String(record?.['endedAt'])) >= releasedAt, 'the drain did not end before the request on A was answered');
    assert.equal(record?.['requestsCompleted'], 1, 'the request the old worker finished is counted, once, in the record');
    // The old workers folded their request ends (no access log); the retiring ebb switched them back and
    // forwarded what they sent, so the new ebb's metrics count that request, once.
    const port = Number(admin.split(':')[1]);
    assert.ok(await waitFor(async () => (await scrape(port)).sum('ebb_request_count') === 1, 3000, 50), `the new ebb counts the request the old worker finished: ${(await scrape(port)).sum('ebb_request_count')}`);
  });

  await step('c. SIGTERM to the last ebb: every ebb exited 0, no worker is left, nothing listens', async () => {
    process.kill(current, 'SIGTERM');
    assert.ok(await waitFor(() => f.exits.has(current), 15_000), `the last ebb ${current} exits:\n${f.tail()}`);
    assert.ok(await waitFor(() => [...f.workerPids].every((pid) => !alive(pid)), 5000), 'no worker process is left');
    assert.equal(f.pids.size, 5, 'the first ebb and four restarts');
    assert.deepEqual(
      [...f.pids].map((pid) => [pid, f.exits.get(pid)]),
      [...f.pids].map((pid) => [pid, 0]),
      'every ebb exited 0',
    );
    assert.equal(f.workerPids.size, 11, 'two workers per ebb, and the one replacement of a2');
    assert.ok(await connectionRefused(listenerPort), 'nothing listens any more');
  });
});
