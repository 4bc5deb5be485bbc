/**
 * `ebb serve --workers 2` with no access log: the workers fold their request ends into digests
 * (src/dataplane/request-digest.ts), and ebb's process still counts every request in its metrics and
 * its recommended-delay window. When a load balancer's S3-layout access log is turned on (a reload),
 * request ends travel one by one again and every request gets its line; turned off, digests again.
 * No request is counted twice or lost across either switch.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { waitForStart, type LogLine, type NodeProcess } from '../support/ebb-process.ts';
import { request } from '../support/http-client.ts';
import { alive } from '../support/processes.ts';
import { scrape } from './metrics-scrape.ts';
import { Cleanup, configYaml, freePort, spawnEbb, startBackend, tempDir, waitFor, writeFileAtomic } from './harness.ts';

/** Every line of every file under `dir` (a `.gz` unzipped), none if it does not exist. */
function linesUnder(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir, { recursive: true }) as string[];
  } catch {
    return [];
  }
  const lines: string[] = [];
  for (const name of names) {
    const path = join(dir, name);
    if (!statSync(path).isFile()) continue;
    const raw = readFileSync(path);
    const text = path.endsWith('.gz') ? gunzipSync(raw).toString('utf8') : raw.toString('utf8');
    lines.push(...text.split('\n').filter((l) => l.length > 0));
  }
  return lines;
}

async function requests(port: number, n: number): Promise<number[]> {
  const statuses: number[] = [];
  // Each on a connection of its own, so the kernel spreads them over both workers.
  for (let i = 0; i < n; i += 10) {
    const batch = Array.from({ length: Math.min(10, n - i) }, () => request(port, { path: '/', headers: { connection: 'close' }, timeoutMs: 10_000 }).then((r) => r.status));
    statuses.push(...(await Promise.all(batch)));
  }
  return statuses;
}

/** Waits for the next `workers:request-ends` line after the `seen` first ones, and says its way. */
async function nextWay(ebb: NodeProcess, seen: number): Promise<string | null> {
  const lines = (): LogLine[] => ebb.logs.filter((l) => l['event'] === 'workers:request-ends');
  await waitFor(() => lines().length > seen, 10_000, 50);
  return (lines()[seen]?.['way'] as string | undefined) ?? null;
}

test('ebb serve --workers 2: digests count every request without an access log; a line per request while one is on; none twice across a switch', { skip: process.platform !== 'linux' && 'workers share ports with SO_REUSEPORT or the cluster module', timeout: 90_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startBackend('A', c);
  const dir = await tempDir(c);
  const listenerPort = await freePort();
  const stateDir = join(dir, 'state');
  const bucket = join(dir, 'bucket');
  const configPath = join(dir, 'ebb.yaml');
  const plain = configYaml({ listenerPort, targets: [A.port], healthCheck: false });
  const logged = configYaml({ listenerPort, targets: [A.port], healthCheck: false, lbAttributes: { 'access_logs.s3.enabled': 'true', 'access_logs.s3.bucket': bucket } });
  await writeFileAtomic(configPath, plain);
  const ebb = spawnEbb(c, ['--config', configPath, '--admin', '127.0.0.1:0', '--state-dir', stateDir, '--no-auth', '--workers', '2']);
  const started = await waitForStart(ebb, 30_000);
  const adminPort = Number(String(started['admin']).split(':')[1]);
  for (const pid of started['workers'] as number[]) c.add(() => void (alive(pid) && process.kill(pid, 'SIGKILL')));
  const counted = async (): Promise<{ requests: number; timed: number; ok: number }> => {
    const m = await scrape(adminPort);
    // Observations: the +Inf bucket of each series (the parser keeps a histogram's buckets).
    const histogram = (m.families.get('ebb_target_response_time_seconds')?.metrics ?? []) as Array<{ buckets?: Record<string, string> }>;
    const timed = histogram.reduce((n, series) => n + Number(series.buckets?.['+Inf'] ?? 0), 0);
    return { requests: m.sum('ebb_request_count'), timed, ok: m.sum('ebb_httpcode_target_2xx_count') };
  };
  const countedAre = (n: number): Promise<boolean> => waitFor(async () => JSON.stringify(await counted()) === JSON.stringify({ requests: n, timed: n, ok: n }), 5000, 50);

  // 1. No access log: digests. Metrics and the response-time window count every request of both workers.
  assert.equal(await nextWay(ebb, 0), 'digest', 'with no access log the workers are told to fold their request ends');
  const taken = (way: string): Set<unknown> => new Set(ebb.logs.filter((l) => l['event'] === 'worker:request-ends' && l['way'] === way).map((l) => l['worker']));
  assert.ok(await waitFor(() => taken('digest').size === 2, 5000, 50), `each worker says it folds: ${JSON.stringify([...taken('digest')])}`);
  assert.deepEqual(new Set(await requests(listenerPort, 40)), new Set([200]));
  assert.ok(await countedAre(40), `40 requests counted: ${JSON.stringify(await counted())}`);
  const window = await fetch(`http://127.0.0.1:${adminPort}/ebb/v1/recommended-delay`).then((r) => r.json() as Promise<{ targetGroups: Array<{ sampleSize: number }> }>);
  assert.equal(window.targetGroups[0]?.sampleSize, 40, `the recommended-delay window has every request: ${JSON.stringify(window)}`);

  // 2. The S3-layout log turned on by a reload: each request end travels, and each request has its line.
  // Slow requests begun before the switch end after it: each is counted once, in a digest or as itself.
  const across = Array.from({ length: 4 }, () => request(listenerPort, { path: '/slow?ms=1500', headers: { connection: 'close' }, timeoutMs: 10_000 }));
  await writeFileAtomic(configPath, logged);
  ebb.child.kill('SIGHUP');
  assert.equal(await nextWay(ebb, 1), 'raw', 'with an access log on, request ends travel one by one');
  assert.ok(await waitFor(() => taken('raw').size === 2, 5000, 50), `each worker says it sends each: ${JSON.stringify([...taken('raw')])}`);
  assert.deepEqual((await Promise.all(across)).map((r) => r.status), [200, 200, 200, 200]);
  assert.deepEqual(new Set(await requests(listenerPort, 20)), new Set([200]));
  assert.ok(await countedAre(64), `64 requests counted: ${JSON.stringify(await counted())}`);
  assert.ok(await waitFor(() => linesUnder(bucket).length === 24, 5000, 50), `24 lines in the load balancer's files: ${linesUnder(bucket).length}`);

  // 3. Off again: digests, nothing logged, nothing counted twice.
  await writeFileAtomic(configPath, plain);
  ebb.child.kill('SIGHUP');
  assert.equal(await nextWay(ebb, 2), 'digest');
  assert.deepEqual(new Set(await requests(listenerPort, 10)), new Set([200]));
  assert.ok(await countedAre(74), `74 requests counted: ${JSON.stringify(await counted())}`);
  assert.equal(linesUnder(bucket).length, 24, 'no line for a request served after logging was turned off');
  assert.deepEqual(ebb.problems(), [], 'no error logged');
});
