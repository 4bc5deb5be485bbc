/**
 * A drain in progress survives a restart of ebb and ends at the right time (issue 3 §4, §5; README
 * "Draining"). ebb runs as a process, built up through the API with the JS SDK: a load balancer, an
 * HTTP listener, a target group with a 10 s deregistration delay and two backends A and B.
 *
 * 1. SIGKILL: A is deregistered while a slow request runs on it; ebb is killed 1 s later and
 *    restarted. Right after the restart A is `draining` (Target.DeregistrationInProgress); no request
 *    through the listener reaches A any more; A is gone at its original deadline (deregistration + 10 s),
 *    not 10 s after the restart and not at once although nothing is in flight on it any more.
 * 2. SIGTERM during the drain: the slow request on A completes (ebb's shutdown waits for in-flight
 *    work), which ends the drain (idle), and ebb exits 0; a restart serves A as no longer registered.
 *
 * Health checks run on /health every 5 s; until they pass, fail-open routes to every target that is
 * not draining, which is all this test needs.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  CreateListenerCommand,
  CreateLoadBalancerCommand,
  CreateTargetGroupCommand,
  DeregisterTargetsCommand,
  DescribeTargetHealthCommand,
  type ElasticLoadBalancingV2Client,
  ModifyTargetGroupAttributesCommand,
  RegisterTargetsCommand,
  type TargetHealth,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { type Backend, Cleanup, freePort, get, settle, sleep, slowOn, startBackend, tempDir } from './harness.ts';
import { kill, serve } from './process-harness.ts';

// Long enough that the restored drain still has seconds to run after a restart that took 4-5 s on a
// busy machine: with 6 s, a slow restart left it under a second, too short for the traffic it is checked with.
const DELAY_S = 10;

interface Setup {
  readonly tgArn: string;
  readonly listenerPort: number;
}

/** Load balancer, listener, target group (delay DELAY_S, /health checks), A and B registered; waits until the listener answers. */
async function buildThroughApi(client: ElasticLoadBalancingV2Client, a: Backend, b: Backend): Promise<Setup> {
  const lb = await client.send(new CreateLoadBalancerCommand({ Name: 'restart-lb', Scheme: 'internal' }));
  const lbArn = lb.LoadBalancers?.[0]?.LoadBalancerArn ?? '';
  const tg = await client.send(
    new CreateTargetGroupCommand({
      Name: 'restart-tg',
      Protocol: 'HTTP',
      Port: 80,
      TargetType: 'ip',
      HealthCheckPath: '/health',
      HealthCheckIntervalSeconds: 5,
      HealthCheckTimeoutSeconds: 2,
      HealthyThresholdCount: 2,
    }),
  );
  const tgArn = tg.TargetGroups?.[0]?.TargetGroupArn ?? '';
  await client.send(new ModifyTargetGroupAttributesCommand({ TargetGroupArn: tgArn, Attributes: [{ Key: 'deregistration_delay.timeout_seconds', Value: String(DELAY_S) }] }));
  await client.send(new RegisterTargetsCommand({ TargetGroupArn: tgArn, Targets: [{ Id: '127.0.0.1', Port: a.port }, { Id: '127.0.0.1', Port: b.port }] }));
  const listenerPort = await freePort();
  await client.send(new CreateListenerCommand({ LoadBalancerArn: lbArn, Protocol: 'HTTP', Port: listenerPort, DefaultActions: [{ Type: 'forward', TargetGroupArn: tgArn }] }));
  const first = await get(listenerPort, '/');
  assert.equal(first.status, 200, 'the listener created through the API should answer');
  return { tgArn, listenerPort };
}

async function healthOf(client: ElasticLoadBalancingV2Client, tgArn: string, port: number): Promise<TargetHealth | undefined> {
  const r = await client.send(new DescribeTargetHealthCommand({ TargetGroupArn: tgArn, Targets: [{ Id: '127.0.0.1', Port: port }] }));
  return r.TargetHealthDescriptions?.[0]?.TargetHealth;
}

/** Deregisters `port`; returns when the request was sent and when its answer came (the drain starts in between). */
async function deregister(client: ElasticLoadBalancingV2Client, tgArn: string, port: number): Promise<{ sentAt: number; ackedAt: number }> {
  const sentAt = Date.now();
  await client.send(new DeregisterTargetsCommand({ TargetGroupArn: tgArn, Targets: [{ Id: '127.0.0.1', Port: port }] }));
  return { sentAt, ackedAt: Date.now() };
}

/** ebb built through the API with targets A and B, a `slowMs` request in flight on A, and A deregistered (draining). */
async function drainingWithSlowRequest(c: Cleanup, slowMs: number) {
  const A = await startBackend('A', c);
  const B = await startBackend('B', c);
  const stateDir = join(await tempDir(c), 'state');
  const first = await serve(c, stateDir);
  const { tgArn, listenerPort } = await buildThroughApi(first.client, A, B);
  const slow = await slowOn(listenerPort, A, B, slowMs);
  const d = await deregister(first.client, tgArn, A.port);
  assert.equal((await healthOf(first.client, tgArn, A.port))?.State, 'draining', 'A drains: its slow request is still in flight');
  return { A, B, stateDir, first, tgArn, listenerPort, slow, d };
}

test('SIGKILL during a drain: after the restart the target is still draining, gets nothing, and is gone at the original deadline', { timeout: 40_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const { A, stateDir, first, tgArn, listenerPort, slow, d } = await drainingWithSlowRequest(c, 10_000);

  await sleep(Math.max(0, d.ackedAt + 1000 - Date.now()));
  const killedAt = Date.now();
  assert.equal(await kill(first.proc, 'SIGKILL'), 'SIGKILL');
  const cut = await slow.done;
  assert.ok(cut.error !== null || (cut.reply?.status ?? 0) >= 500, 'the slow request dies with the process');

  const second = await serve(c, stateDir);
  const startedAt = second.spawnedAt + second.startupMs;
  const restored = await healthOf(second.client, tgArn, A.port);
  const restoredAt = Date.now();
  assert.deepEqual(
    { State: restored?.State, Reason: restored?.Reason },
    { State: 'draining', Reason: 'Target.DeregistrationInProgress' },
    `A should still be draining right after the restart (${restoredAt - d.ackedAt} ms after deregistration)`,
  );
  assert.ok(second.proc.problems().length === 0 && second.proc.stderr() === '', `ebb restarted cleanly: ${second.proc.stderr()}`);

  // Traffic through the listener while the restored drain runs: every request answered, none by A.
  const seenByABefore = A.seen.length;
  const replies: string[] = [];
  const failures: string[] = [];
  let goneAt = 0;
  let lastState = restored?.State ?? '';
  const end = Date.now() + 12_000;
  for (let i = 0; i < 1000 && goneAt === 0 && Date.now() < end; i++) {
    const r = await settle(get(listenerPort, `/after-restart-${i}`));
    if (r.reply === null) failures.push(r.error?.message ?? 'no reply');
    else replies.push(`${r.reply.status} ${r.reply.backend}`);
    const h = await healthOf(second.client, tgArn, A.port);
    lastState = h?.State ?? '(none)';
    if (lastState !== 'draining') goneAt = Date.now();
    else await sleep(25);
  }
  const afterGone = await healthOf(second.client, tgArn, A.port);
  const drainEnd = await second.proc.waitForLog((l) => l['event'] === 'drain:end', 1000);

  const offset = goneAt - d.ackedAt;
  t.diagnostic(
    `deregistration answered in ${d.ackedAt - d.sentAt} ms; SIGKILL at +${killedAt - d.ackedAt} ms; restarted (ebb:started) at +${startedAt - d.ackedAt} ms ` +
      `(startup ${second.startupMs} ms); draining confirmed at +${restoredAt - d.ackedAt} ms; A gone at +${offset} ms ` +
      `(deadline +${DELAY_S * 1000} ms; ${DELAY_S} s after the restart would be +${startedAt + DELAY_S * 1000 - d.ackedAt} ms); ` +
      `drain:end ${JSON.stringify(drainEnd)}; ${replies.length} requests during the drain, ${failures.length} failed`,
  );
  assert.notEqual(goneAt, 0, `A should leave draining within 12 s (last state ${lastState})`);
  assert.deepEqual({ State: afterGone?.State, Reason: afterGone?.Reason }, { State: 'unused', Reason: 'Target.NotRegistered' });
  assert.ok(goneAt >= d.sentAt + DELAY_S * 1000 - 1000, `A should drain to its deadline, not end at once (gone ${offset} ms after deregistration)`);
  assert.ok(goneAt <= d.ackedAt + DELAY_S * 1000 + 1000, `A should be gone at the original deadline, not ${DELAY_S} s after the restart (gone ${offset} ms after deregistration)`);
  assert.equal(drainEnd?.['outcome'], 'deadline', 'a restored drain ends at its deadline');
  const duration = Number(drainEnd?.['durationMs']);
  assert.ok(Math.abs(duration - DELAY_S * 1000) < 500, `the drain record spans the original deregistration to the deadline (${duration} ms)`);
  assert.deepEqual(failures, [], 'every request through the listener during the restored drain is answered');
  assert.ok(replies.length > 10, `requests kept flowing during the drain (${replies.length})`);
  assert.ok(replies.every((r) => r === '200 B'), `every request went to B: ${[...new Set(replies)].join(', ')}`);
  assert.equal(A.seen.length, seenByABefore, `no request reached A after the restart: ${A.seen.slice(seenByABefore).map((s) => s.url).join(', ')}`);
  assert.equal(A.seen.filter((s) => s.at >= killedAt).length, 0, 'nothing reached A after the kill');
});

test('SIGTERM during a drain: the slow request on the draining target completes, ebb exits 0, and a restart serves what the drain left', { timeout: 40_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const { A, stateDir, first, tgArn, listenerPort, slow, d } = await drainingWithSlowRequest(c, 2500);
  await sleep(500);
  const termAt = Date.now();
  const exited = kill(first.proc, 'SIGTERM', 10_000);
  const done = await slow.done;
  const code = await exited;
  const exitedAt = Date.now();
  const drainEnd = first.proc.logs.find((l) => l['event'] === 'drain:end');
  assert.equal(done.error, null, `the in-flight request on the draining target completes: ${done.error?.message ?? ''}`);
  assert.equal(done.reply?.status, 200);
  assert.equal(done.reply?.backend, 'A');
  assert.equal(code, 0, `ebb exits 0 after a graceful stop: ${first.proc.stderr()}`);
  assert.ok(done.at - termAt > 1000, 'the request was still running when SIGTERM came');
  assert.ok(exitedAt - done.at < 2000, `ebb exits once the work is done (${exitedAt - done.at} ms after the request), not at the shutdown timeout`);
  assert.equal(A.seen.at(-1)?.aborted, false, 'A finished its response');

  // The drain ended (idle) with its last request, before ebb stopped: a restart serves it as over.
  const second = await serve(c, stateDir);
  const startedAt = second.spawnedAt + second.startupMs;
  const restored = await healthOf(second.client, tgArn, A.port);
  const reply = await get(listenerPort, '/');
  t.diagnostic(
    `SIGTERM at +${termAt - d.ackedAt} ms after deregistration; slow request done at +${done.at - d.ackedAt} ms; ebb exited ${String(code)} at +${exitedAt - d.ackedAt} ms; ` +
      `drain:end before the stop ${JSON.stringify(drainEnd ?? null)}; restarted at +${startedAt - d.ackedAt} ms, A then ${restored?.State ?? '?'} (${restored?.Reason ?? ''})`,
  );
  assert.equal(drainEnd?.['outcome'], 'idle', 'the drain ended when its last request did, before ebb stopped');
  assert.equal(drainEnd?.['requestsCompleted'], 1);
  assert.ok(second.proc.problems().length === 0 && second.proc.stderr() === '', `ebb restarted cleanly: ${second.proc.stderr()}`);
  assert.deepEqual({ State: restored?.State, Reason: restored?.Reason }, { State: 'unused', Reason: 'Target.NotRegistered' }, 'a drain that ended before the stop stays ended');
  assert.equal(reply.status, 200);
  assert.equal(reply.backend, 'B', 'the restarted listener serves the remaining target');
});
