/**
 * Auto Scaling driven by boto3 as a user's script drives it (issue 8): `ebb serve` with a listener
 * and an instance target group from its configuration file (test/integration/autoscaling-harness.ts),
 * and one Python process (test/clients/boto3_autoscaling_flow.py) that, with boto3's ec2 and
 * autoscaling clients, makes a launch template and a group of real processes
 * (test/fixtures/autoscaling/app.mjs), scales it out to 4, puts a terminating hook whose notifications
 * come to this test's http:// server, scales in to 2 (both held in Terminating:Wait; a heartbeat by
 * token; one completed by the token this test received, one by instance id), puts one in standby
 * without decrementing (a replacement launches) and takes it out again, deletes the hook, refreshes
 * every instance to a version 2 of the template (100/200, no warm-up), reads the scaling activities
 * and the instances by group tag, and force-deletes the group.
 *
 * Meanwhile this test loads the listener with keep-alive clients, from the moment the group serves
 * until the refresh has ended; it asserts that no request failed, that the hook's notifications
 * arrived, that the app says version 2 after the refresh, and that no instance process is left.
 *
 * The group scales in to 2, not 1, before the standby: EnterStandby of a group's only instance leaves
 * nothing to route to until its replacement listens (on AWS as in ebb; tried here: about 90 requests
 * answered 502 in the half second it takes). The scale-out to 4 goes while the first two are still
 * in their initial health checks, so the whole flow waits for health twice (about 10 s each: a new
 * instance is checked as it starts, fails that check, and is healthy two intervals later).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { Cleanup, tempDir } from '../support/cleanup.ts';
import { REPO_ROOT } from '../support/ebb-process.ts';
import { waitFor } from '../support/timing.ts';
import { missingClient } from './api-harness.ts';
import { alive, APP, appEvents, type AppReply, drainRecords, fetchApp, freePort, type Load, sigtermAt, startLoad, startServe, teardown } from './autoscaling-harness.ts';

const skip = missingClient('boto3');
const SCRIPT = join(REPO_ROOT, 'test/clients/boto3_autoscaling_flow.py');
const GROUP = 'boto-web';
const HOOK = 'drain-done';

type Message = Record<string, string>;

/** What the Python flow printed (see the script for each field). */
interface FlowOutput {
  readonly steps: Array<[number, string]>;
  readonly states: Record<string, string[]>;
  readonly pids: Record<string, number>;
  readonly errors: unknown[];
  readonly failure: string | null;
  readonly seconds: number;
  readonly deleted?: boolean;
  readonly [k: string]: any;
}

/** The test's server: the hook's notification target, the notifications read back, and the flow's phases. */
async function testServer(c: Cleanup, phases: Record<string, () => Promise<void>>): Promise<{ url: string; messages: Message[] }> {
  const messages: Message[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (ch: string) => (body += ch));
    req.on('end', () => {
      const reply = (status: number, value: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      if (req.method === 'POST' && req.url === '/hook') {
        messages.push(JSON.parse(body) as Message);
        reply(200, null);
      } else if (req.method === 'GET' && req.url === '/notifications') {
        reply(200, messages);
      } else if (req.method === 'POST' && req.url?.startsWith('/phase/') === true && phases[req.url.slice(7)] !== undefined) {
        phases[req.url.slice(7)]!().then(
          () => reply(200, null),
          (e: Error) => reply(500, e.message),
        );
      } else {
        reply(404, `no ${req.method} ${req.url}`);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  c.add(() => {
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, messages };
}

/** `seen` (an instance's states as the flow's polls saw them) holds `states` in this order, maybe with others between. */
function assertWent(seen: readonly string[] | undefined, states: readonly string[], instance: string): void {
  let k = 0;
  for (const st of seen ?? []) if (st === states[k]) k++;
  assert.equal(k, states.length, `${instance} went ${states.join(' → ')}; seen: ${(seen ?? []).join(' → ')}`);
}

/** Runs the flow and resolves with what it printed; killed (and the test failed) after `ms`. */
function runFlow(c: Cleanup, args: readonly string[], env: NodeJS.ProcessEnv, ms: number): Promise<{ code: number | null; out: FlowOutput | undefined; stdout: string; stderr: string }> {
  const child = spawn('python3', [SCRIPT, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (ch: string) => (stdout += ch));
  child.stderr.setEncoding('utf8').on('data', (ch: string) => (stderr += ch));
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  c.add(() => {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      let out: FlowOutput | undefined;
      try {
        out = JSON.parse(stdout) as FlowOutput;
      } catch {
        out = undefined;
      }
      resolve({ code, out, stdout, stderr });
    });
  });
}

test('boto3 drives a group of real processes: scale out and in through a hook, standby, refresh to version 2, force delete; no failed request under load', { skip: skip ?? false, timeout: 60_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const stateDir = join(await tempDir(c), 'state');
  const s = await startServe(c, { stateDir, listenerPort: await freePort(), deregistrationDelaySeconds: 3 });
  // Force-deleted at cleanup if the flow did not get that far.
  s.groups.add(GROUP);
  const credentials = await s.as.config.credentials();

  let load: Load | undefined;
  let probes: AppReply[] = [];
  const server = await testServer(c, {
    serving: async () => {
      load = startLoad(s.listenerPort, { clients: 4, requestMs: 20, maxMs: 45_000 });
      c.add(() => load?.stop());
    },
    refreshed: async () => {
      await load?.stop();
      probes = await Promise.all(Array.from({ length: 6 }, (_, k) => fetchApp(s.listenerPort, `/after-refresh-${k}`)));
    },
  });

  const startedAt = Date.now();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'] ?? '',
    HOME: process.env['HOME'] ?? '/tmp',
    EBB_ENDPOINT: s.endpoint,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  for (const k of ['PYENV_ROOT', 'PYENV_VERSION']) if (process.env[k] !== undefined) env[k] = process.env[k];
  const run = await runFlow(c, [s.tgArn, process.execPath, APP, server.url], env, 50_000);
  for (const pid of Object.values(run.out?.pids ?? {})) s.pids.add(pid);
  assert.equal(run.code, 0, `the flow exited ${run.code}: ${run.stderr}`);
  const out = run.out;
  assert.ok(out !== undefined, `the flow printed JSON: ${run.stdout.slice(0, 2000)}`);
  const ids = Object.keys(out.states);
  const pids = Object.values(out.pids);
  t.diagnostic(`flow ${out.seconds} s (test ${((Date.now() - startedAt) / 1000).toFixed(1)} s): ${out.steps.map(([at, what]) => `${at} ${what}`).join('; ')}`);
  t.diagnostic(`load ${load?.replies.length ?? 0} answered, ${load?.failures.length ?? 0} failed; ${ids.length} instances, ${pids.length} pids`);
  assert.equal(out.failure, null, `the flow went to its end: ${out.failure}`);
  assert.deepEqual(out.errors, [], 'every call the flow made succeeded');
  assert.equal(out.deleted, true, 'the group is gone after the force delete');

  // The load ran from the group serving until the refresh ended, and nothing failed.
  assert.ok(load !== undefined, 'the flow said when the group served');
  assert.deepEqual(load.failures, [], 'every request through the listener was answered');
  assert.ok(load.replies.length >= 100, `the load ran throughout (${load.replies.length} answers)`);
  const versions = new Set(load.replies.map((r) => r.version));
  assert.deepEqual([...versions].sort(), ['1', '2'], 'the load saw version 1, then version 2');
  const late = load.replies.filter((r) => r.at > out['refresh_ended_at_ms']);
  assert.ok(late.every((r) => r.version === '2'), `after the refresh every answer is version 2: ${JSON.stringify(late.filter((r) => r.version !== '2'))}`);
  assert.equal(probes.length, 6);
  for (const p of probes) assert.deepEqual([p.status, p.version], [200, '2'], `a probe after the refresh: ${p.body}`);

  // Scale-in through the terminating hook: the two oldest held, then let go.
  const { first, held, remaining } = out['scale_in'] as { first: string[]; held: string[]; remaining: string[] };
  assert.deepEqual([...held].sort(), [...first].sort(), 'the default termination policy took the two oldest');
  assert.equal(remaining.filter((i) => first.includes(i)).length, 0);
  for (const i of held) assertWent(out.states[i], ['InService', 'Terminating:Wait'], i);
  assert.deepEqual(
    (out['terminating_wait'] as Array<Record<string, string>>).map((i) => [i['AutoScalingGroupName'], i['LifecycleState']]),
    [[GROUP, 'Terminating:Wait'], [GROUP, 'Terminating:Wait']],
  );
  assert.deepEqual(out['still_waiting_after_heartbeat'], held, 'a heartbeat does not let the instance go');
  for (const i of held) {
    const sigterm = sigtermAt(stateDir, i);
    assert.ok(sigterm !== undefined && sigterm >= out['completed_at_ms'], `${i} got SIGTERM (at ${sigterm}) only after its action was completed (${out['completed_at_ms']})`);
  }
  assert.deepEqual(
    (out['hooks'] as Array<Record<string, unknown>>).map((h) => [h['LifecycleHookName'], h['LifecycleTransition'], h['HeartbeatTimeout'], h['GlobalTimeout'], h['DefaultResult'], h['NotificationTargetARN']]),
    [[HOOK, 'autoscaling:EC2_INSTANCE_TERMINATING', 30, 3000, 'ABANDON', `${server.url}/hook`]],
  );

  // The hook's notifications: the test message, then one action for each held instance.
  const [testMessage, ...actions] = server.messages;
  assert.equal(testMessage?.['Event'], 'autoscaling:TEST_NOTIFICATION');
  assert.equal(testMessage?.['AutoScalingGroupName'], GROUP);
  assert.deepEqual(actions.map((m) => m['EC2InstanceId']).sort(), [...held].sort());
  for (const m of actions) {
    assert.equal(m['LifecycleTransition'], 'autoscaling:EC2_INSTANCE_TERMINATING');
    assert.equal(m['LifecycleHookName'], HOOK);
    assert.equal(m['NotificationMetadata'], 'boto3 flow');
    assert.match(m['LifecycleActionToken'] ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  }

  // Standby without decrement: a replacement, then back, the group one larger.
  const standby = out['standby'] as { instance: string; replacement: string[]; desired: number };
  assert.equal(standby.desired, 2);
  assert.equal(standby.replacement.length, 1);
  assertWent(out.states[standby.instance], ['InService', 'Standby', 'InService'], standby.instance);
  const [entering, exiting] = [(out['enter_standby'] as any)[0], (out['exit_standby'] as any)[0]];
  assert.deepEqual([entering.Description, entering.StatusCode], [`Moving EC2 instance to Standby: ${standby.instance}`, 'InProgress']);
  assert.match(entering.Cause, new RegExp(`instance ${standby.instance} was moved to standby in response to a user request\\.$`));
  assert.deepEqual([exiting.Description, exiting.StatusCode], [`Moving EC2 instance out of Standby: ${standby.instance}`, 'PreInService']);
  assert.match(exiting.Cause, new RegExp(`instance ${standby.instance} was moved out of standby in response to a user request, increasing the capacity from 2 to 3\\.$`));
  assert.equal(out['desired_after_exit_standby'], 3);

  // The refresh replaced every instance with one of version 2.
  assert.equal(out['template_version'], 2);
  const refresh = out['refresh'] as Record<string, any>;
  assert.equal(refresh['Status'], 'Successful', `the refresh: ${refresh['StatusReason'] ?? ''}`);
  assert.equal(refresh['PercentageComplete'], 100);
  const r = out['refresh_instances'] as { before: string[]; after: string[]; versions: string[] };
  assert.equal(r.after.length, 3);
  assert.deepEqual(r.after.filter((i) => r.before.includes(i)), [], 'no instance from before the refresh is left');
  assert.deepEqual(r.versions, ['2']);

  // DescribeInstances by the group's tag, just before the delete: the three of version 2, with ebb's tags.
  const ec2 = out['ec2_instances'] as Array<{ InstanceId: string; State: string; Tags: Record<string, string> }>;
  const running = ec2.filter((i) => i.State === 'running');
  assert.deepEqual(running.map((i) => i.InstanceId).sort(), [...r.after].sort());
  for (const i of running) {
    assert.equal(i.Tags['aws:autoscaling:groupName'], GROUP);
    assert.equal(i.Tags['aws:ec2launchtemplate:version'], '2');
    assert.match(i.Tags['ebb:pid'] ?? '', /^\d+$/);
  }

  // The activities, newest first, in AWS's words, every one ended Successful.
  const activities = out['activities'] as Array<Record<string, any>>;
  const kinds = new Map<string, number>();
  for (const a of activities) {
    const kind = /^(Launching a new EC2 instance|Terminating EC2 instance|Moving EC2 instance to Standby|Moving EC2 instance out of Standby): i-[0-9a-f]{17}$/.exec(a['Description'])?.[1] ?? a['Description'];
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    assert.equal(a['StatusCode'], 'Successful', `${a['Description']}: ${a['StatusCode']}`);
    assert.equal(a['Progress'], 100);
    assert.match(a['Cause'], /^At \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ /);
  }
  // 2 at creation, 2 scaling out, 1 replacing the standby, 3 by the refresh; 2 scaled in and 3 refreshed away.
  assert.deepEqual(Object.fromEntries(kinds), {
    'Launching a new EC2 instance': 8,
    'Terminating EC2 instance': 5,
    'Moving EC2 instance to Standby': 1,
    'Moving EC2 instance out of Standby': 1,
  });
  const saying = (description: RegExp, cause: RegExp): number => activities.filter((a) => description.test(a['Description']) && cause.test(a['Cause'])).length;
  assert.equal(saying(/^Launching/, /a user request created an AutoScalingGroup changing the desired capacity from 0 to 2\./), 2);
  assert.equal(saying(/^Launching/, /a user request explicitly set group desired capacity changing the desired capacity from 2 to 4\./), 2);
  assert.equal(saying(/^Terminating/, /changing the desired capacity from 4 to 2\..*was selected for termination\.$/), 2);
  assert.equal(saying(/^Launching/, /an instance was started in response to an instance refresh \([0-9a-f-]{36}\)\.$/), 3);
  assert.equal(saying(/^Terminating/, /taken out of service in response to an instance refresh \([0-9a-f-]{36}\)\./), 3);
  const starts = activities.map((a) => Date.parse(a['StartTime']));
  assert.deepEqual(starts, [...starts].sort((a, b) => b - a), 'newest first');

  // Every instance the flow saw: 8 in all, each drained before its SIGTERM, and no process left once the group is gone.
  assert.equal(ids.length, 8, `instances seen: ${ids.join(' ')}`);
  assert.equal(pids.length, 8, `one pid each: ${JSON.stringify(out.pids)}`);
  const records = await drainRecords(s);
  for (const i of ids) {
    const drainEnd = Math.max(...records.filter((d) => d.targetId === i).map((d) => Date.parse(d.endedAt)));
    const events = appEvents(stateDir, i).map((e) => e.event);
    assert.ok(Number.isFinite(drainEnd), `${i} was drained`);
    assert.ok((sigtermAt(stateDir, i) ?? 0) >= drainEnd, `${i} got SIGTERM after its drain ended`);
    assert.deepEqual(events.filter((e) => e === 'sigterm' || e === 'exit'), ['sigterm', 'exit'], `${i} stopped on SIGTERM`);
  }
  await waitFor(() => !pids.some(alive), 5000, 50);
  assert.deepEqual(pids.filter(alive), [], 'no instance process is left');
  assert.deepEqual(await teardown(s), []);
  assert.deepEqual(s.proc.problems(), [], 'ebb logged no error');
});
