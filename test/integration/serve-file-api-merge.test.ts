/**
 * The file and the API, with `ebb serve` as a process (README "The file and the API: who wins"): the
 * file is applied as a three-way merge of the file as last applied, the file now, and what the API
 * changed since, so a reload or a restart with an unchanged file undoes no operator's work.
 *
 * 1. A target the file lists is deregistered with `aws elbv2 deregister-targets`; SIGHUP with the file
 *    unchanged, then a restart: it stays deregistered and gets no request.
 * 2. An attribute the file sets is changed through the API; SIGHUP with the file unchanged keeps it;
 *    the file then changes it and SIGHUP sets the file's new value (another attribute the API changed stays).
 * 3. ebb is killed (SIGKILL) while a file-listed target drains with a request in flight, and started
 *    again with the same file: the drain goes on to its deadline (not cancelled), and the target gets nothing.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  DeregisterTargetsCommand,
  DescribeTargetGroupAttributesCommand,
  DescribeTargetGroupsCommand,
  DescribeTargetHealthCommand,
  type ElasticLoadBalancingV2Client,
  ModifyTargetGroupAttributesCommand,
  type TargetHealth,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { ACCESS_KEY_ID, cliEnv, REGION, SECRET_ACCESS_KEY } from './api-harness.ts';
import { type Backend, Cleanup, configYaml, freePort, get, settle, sleep, slowOn, startBackend, tempDir, writeFileAtomic } from './harness.ts';
import { kill, serve, type Served, type ServeProcess } from './process-harness.ts';

interface FileSetup {
  readonly A: Backend;
  readonly B: Backend;
  readonly configPath: string;
  readonly stateDir: string;
  readonly listenerPort: number;
}

/** Backends A and B, and a file listing both in group `web` behind a listener (health checks on /health every 5 s). */
async function fileWithTwoTargets(c: Cleanup, delaySeconds: number): Promise<FileSetup> {
  const A = await startBackend('A', c);
  const B = await startBackend('B', c);
  const dir = await tempDir(c);
  const listenerPort = await freePort();
  const configPath = join(dir, 'ebb.yaml');
  await writeFileAtomic(configPath, configYaml({ listenerPort, targets: [A.port, B.port], delaySeconds }));
  return { A, B, configPath, stateDir: join(dir, 'state'), listenerPort };
}

async function groupArn(client: ElasticLoadBalancingV2Client): Promise<string> {
  const r = await client.send(new DescribeTargetGroupsCommand({ Names: ['web'] }));
  const arn = r.TargetGroups?.[0]?.TargetGroupArn;
  assert.ok(arn !== undefined, 'the file made group web');
  return arn;
}

async function healthOf(client: ElasticLoadBalancingV2Client, tgArn: string, port: number): Promise<TargetHealth | undefined> {
  const r = await client.send(new DescribeTargetHealthCommand({ TargetGroupArn: tgArn, Targets: [{ Id: '127.0.0.1', Port: port }] }));
  return r.TargetHealthDescriptions?.[0]?.TargetHealth;
}

async function attributes(client: ElasticLoadBalancingV2Client, tgArn: string): Promise<Record<string, string>> {
  const r = await client.send(new DescribeTargetGroupAttributesCommand({ TargetGroupArn: tgArn }));
  return Object.fromEntries((r.Attributes ?? []).map((a) => [a.Key ?? '', a.Value ?? '']));
}

/** Sends SIGHUP and resolves with the reload's log line (config:reloaded, or fails the test). */
async function reload(proc: ServeProcess): Promise<Record<string, unknown>> {
  const before = proc.logs.length;
  proc.child.kill('SIGHUP');
  const line = await proc.waitForLog((l) => proc.logs.indexOf(l) >= before && String(l['event']).startsWith('config:re'), 10_000);
  assert.equal(line?.['event'], 'config:reloaded', `the reload should be applied: ${JSON.stringify(line)} ${proc.stderr()}`);
  return line;
}

/** `aws elbv2 …` against ebb with the credentials `serve` gives it; null when the aws CLI is not installed. */
function awsCli(endpoint: string, args: readonly string[]): Promise<{ code: number; stderr: string }> | null {
  if (spawnSync('aws', ['--version'], { encoding: 'utf8', timeout: 15_000 }).status !== 0) return null;
  const env = cliEnv(ACCESS_KEY_ID, SECRET_ACCESS_KEY, REGION);
  return new Promise((resolve) => {
    execFile('aws', [...args, '--endpoint-url', endpoint, '--output', 'json'], { env, timeout: 20_000 }, (err, _stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stderr });
    });
  });
}

/** `count` requests through the listener; which backend answered each. */
async function traffic(listenerPort: number, count: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push((await get(listenerPort, `/merge-${i}`)).backend);
  return out;
}

test('a file-listed target deregistered through the API stays deregistered across SIGHUP and a restart with the file unchanged', { timeout: 60_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const { A, configPath, stateDir, listenerPort } = await fileWithTwoTargets(c, 2);
  const first = await serve(c, stateDir, ['--config', configPath]);
  const tgArn = await groupArn(first.client);

  const cli = awsCli(first.endpoint, ['elbv2', 'deregister-targets', '--target-group-arn', tgArn, '--targets', `Id=127.0.0.1,Port=${A.port}`]);
  if (cli === null) {
    t.diagnostic('the aws CLI is not installed: deregistering with the JS SDK');
    await first.client.send(new DeregisterTargetsCommand({ TargetGroupArn: tgArn, Targets: [{ Id: '127.0.0.1', Port: A.port }] }));
  } else {
    const r = await cli;
    assert.equal(r.code, 0, `aws elbv2 deregister-targets: ${r.stderr}`);
  }
  // Nothing is in flight on A, so its drain ends at once.
  let state = '';
  for (let i = 0; i < 100 && state !== 'unused'; i++) {
    state = (await healthOf(first.client, tgArn, A.port))?.State ?? '';
    if (state !== 'unused') await sleep(50);
  }
  assert.equal(state, 'unused', 'A is deregistered');

  const reloaded = await reload(first.proc);
  t.diagnostic(JSON.stringify(reloaded));
  assert.equal(reloaded['registered'], 0, 'the reload registers nothing');
  assert.deepEqual(reloaded['kept'], [`target 127.0.0.1:${A.port} in target group web deregistered through the API`]);
  assert.equal(reloaded['mergedWith'], 'the file as last applied');
  assert.deepEqual(
    { State: (await healthOf(first.client, tgArn, A.port))?.State, Reason: (await healthOf(first.client, tgArn, A.port))?.Reason },
    { State: 'unused', Reason: 'Target.NotRegistered' },
  );
  const seenByA = A.seen.length;
  const replies = await traffic(listenerPort, 20);
  assert.deepEqual([...new Set(replies)], ['B'], 'every request goes to B');
  assert.equal(A.seen.length, seenByA, 'A gets no request after the reload');

  // A restart with the same file keeps it so.
  assert.equal(await kill(first.proc, 'SIGTERM'), 0);
  const second = await serve(c, stateDir, ['--config', configPath]);
  const applied = second.proc.logs.find((l) => l['event'] === 'config:applied');
  t.diagnostic(JSON.stringify(applied));
  assert.deepEqual(applied?.['kept'], [`target 127.0.0.1:${A.port} in target group web deregistered through the API`]);
  assert.equal((await healthOf(second.client, tgArn, A.port))?.State, 'unused');
  assert.deepEqual([...new Set(await traffic(listenerPort, 20))], ['B']);
  assert.equal(A.seen.length, seenByA, 'A gets no request after the restart');
  assert.deepEqual(second.proc.problems(), []);
});

test('an attribute changed through the API survives SIGHUP with the file unchanged; the file changing it sets the file\'s value', { timeout: 60_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const { A, B, configPath, stateDir, listenerPort } = await fileWithTwoTargets(c, 10);
  const s = await serve(c, stateDir, ['--config', configPath]);
  const tgArn = await groupArn(s.client);
  await s.client.send(
    new ModifyTargetGroupAttributesCommand({
      TargetGroupArn: tgArn,
      Attributes: [
        { Key: 'deregistration_delay.timeout_seconds', Value: '20' },
        { Key: 'load_balancing.algorithm.type', Value: 'least_outstanding_requests' },
      ],
    }),
  );

  const unchanged = await reload(s.proc);
  t.diagnostic(JSON.stringify(unchanged));
  assert.deepEqual(unchanged['applied'], []);
  assert.deepEqual(unchanged['kept'], [
    'target group web attribute deregistration_delay.timeout_seconds 20, set through the API (the file says 10)',
    'target group web attribute load_balancing.algorithm.type least_outstanding_requests, set through the API (the file says round_robin)',
  ]);
  const kept = await attributes(s.client, tgArn);
  assert.equal(kept['deregistration_delay.timeout_seconds'], '20');
  assert.equal(kept['load_balancing.algorithm.type'], 'least_outstanding_requests');

  await writeFileAtomic(configPath, configYaml({ listenerPort, targets: [A.port, B.port], delaySeconds: 15 }));
  const changed = await reload(s.proc);
  t.diagnostic(JSON.stringify(changed));
  assert.deepEqual(changed['applied'], ['target group web: set deregistration_delay.timeout_seconds to 15']);
  assert.deepEqual(changed['kept'], [
    'target group web attribute load_balancing.algorithm.type least_outstanding_requests, set through the API (the file says round_robin)',
  ]);
  const after = await attributes(s.client, tgArn);
  assert.equal(after['deregistration_delay.timeout_seconds'], '15', 'the file changed the delay: its new value is set');
  assert.equal(after['load_balancing.algorithm.type'], 'least_outstanding_requests', 'the file did not change the algorithm: the API\'s stays');
  assert.deepEqual(s.proc.problems(), []);
});

test('SIGKILL while a file-listed target drains, restart with the same file: the drain goes on to its deadline', { timeout: 60_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  // Long enough that a restart on a busy machine (several seconds) still finds the drain going on.
  const DELAY_S = 10;
  const { A, B, configPath, stateDir, listenerPort } = await fileWithTwoTargets(c, DELAY_S);
  const first: Served = await serve(c, stateDir, ['--config', configPath]);
  const tgArn = await groupArn(first.client);
  const slow = await slowOn(listenerPort, A, B, 20_000);
  const sentAt = Date.now();
  await first.client.send(new DeregisterTargetsCommand({ TargetGroupArn: tgArn, Targets: [{ Id: '127.0.0.1', Port: A.port }] }));
  const ackedAt = Date.now();
  assert.equal((await healthOf(first.client, tgArn, A.port))?.State, 'draining', 'A drains: its slow request is in flight');
  await sleep(Math.max(0, ackedAt + 1000 - Date.now()));
  assert.equal(await kill(first.proc, 'SIGKILL'), 'SIGKILL');
  await slow.done;

  const second = await serve(c, stateDir, ['--config', configPath]);
  const restored = await healthOf(second.client, tgArn, A.port);
  assert.deepEqual({ State: restored?.State, Reason: restored?.Reason }, { State: 'draining', Reason: 'Target.DeregistrationInProgress' }, 'A still drains after the restart');
  const applied = second.proc.logs.find((l) => l['event'] === 'config:applied');
  t.diagnostic(JSON.stringify(applied));
  assert.equal(applied?.['registered'], 0, 'the restart registers nothing');
  assert.deepEqual(applied?.['kept'], [`target 127.0.0.1:${A.port} in target group web draining, deregistered through the API`]);

  // Traffic while the drain goes on: none reaches A; A is gone at the original deadline.
  const seenByA = A.seen.length;
  const replies: string[] = [];
  let goneAt = 0;
  const end = Date.now() + (DELAY_S + 4) * 1000;
  while (goneAt === 0 && Date.now() < end) {
    const r = await settle(get(listenerPort, `/during-${replies.length}`));
    replies.push(r.reply === null ? `error ${r.error?.message ?? ''}` : `${r.reply.status} ${r.reply.backend}`);
    if ((await healthOf(second.client, tgArn, A.port))?.State !== 'draining') goneAt = Date.now();
    else await sleep(25);
  }
  const drainEnd = await second.proc.waitForLog((l) => l['event'] === 'drain:end', 1000);
  const states = second.proc.logs.filter((l) => l['event'] === 'target:state' && l['target'] === `127.0.0.1:${A.port}`);
  t.diagnostic(`A gone ${goneAt - ackedAt} ms after its deregistration (deadline ${DELAY_S * 1000} ms); drain:end ${JSON.stringify(drainEnd)}; A's states ${JSON.stringify(states)}`);
  assert.notEqual(goneAt, 0, 'A leaves draining');
  assert.ok(goneAt >= sentAt + DELAY_S * 1000 - 1000, `the drain runs to its deadline (gone ${goneAt - ackedAt} ms after deregistration)`);
  assert.ok(goneAt <= ackedAt + DELAY_S * 1000 + 1500, `the drain ends at its deadline (gone ${goneAt - ackedAt} ms after deregistration)`);
  assert.equal(drainEnd?.['outcome'], 'deadline');
  assert.equal(second.proc.logs.some((l) => l['event'] === 'drain:end' && l['outcome'] === 'cancelled'), false, 'no drain is cancelled');
  assert.deepEqual(states.map((l) => [l['from'], l['to']]), [['draining', 'unused']], 'A goes from draining to unused, never back to initial');
  assert.ok(replies.length > 10, `requests flowed during the drain (${replies.length})`);
  assert.deepEqual([...new Set(replies)], ['200 B'], 'every request during the drain goes to B');
  assert.equal(A.seen.length, seenByA, 'no request reached A after the restart');
  assert.deepEqual(second.proc.problems(), []);
});
