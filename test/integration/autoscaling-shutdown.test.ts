/**
 * What becomes of Auto Scaling's instances when ebb itself stops (docs/autoscaling.md, "When ebb stops").
 *
 * (a) By default they run on: SIGTERM to `ebb serve`, ebb exits 0, each instance is still the same
 *     process (pid and kernel start time), and the next `ebb serve` on the same state directory adopts
 *     them (same instances, same pids, InService, and routed to).
 * (b) As PID 1 (a container's first process; here the first process of a new PID namespace made with
 *     `unshare --pid --fork --mount-proc`) ebb stops them itself, after its data plane has finished: a
 *     slow request in flight to an instance completes with 200, the instance gets SIGTERM with nothing
 *     in flight, exits on it, nothing is launched while ebb stops, ebb goes through its whole
 *     shutdown before it exits, and nothing is left running in the namespace.
 * (c) With `autoScaling.onShutdown: stop` in the file, the same stop without being PID 1; the group
 *     keeps its desired capacity, so the next `ebb serve` launches fresh instances and adopts nothing.
 *
 * Every instance is a real process started from a launch template's UserData by the running ebb;
 * cleanup kills by pid what a failed run could leave (only a process whose start time still matches).
 */
import { AutoScalingClient, CreateAutoScalingGroupCommand, DeleteAutoScalingGroupCommand, DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { CreateLaunchTemplateCommand, DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { DescribeTargetGroupsCommand } from '@aws-sdk/client-elastic-load-balancing-v2';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { Cleanup, tempDir } from '../support/cleanup.ts';
import { CLI, REPO_ROOT, spawnEbb, waitForStart, type LogLine, type NodeProcess } from '../support/ebb-process.ts';
import { get } from '../support/http-client.ts';
import { freePort } from '../support/ports.ts';
import { after, waitFor, waitUntil } from '../support/timing.ts';
import { ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY } from './api-harness.ts';
import { sdkClient } from './process-harness.ts';

const CREDENTIALS = { EBB_ACCESS_KEY_ID: ACCESS_KEY_ID, EBB_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY };
const GROUP = 'app';

/**
 * The instance: a node server on $PORT that prints JSON lines to its output.log. `/slow?ms=N` answers
 * after N ms; SIGTERM prints how many requests were in flight then, and exits once the server closes.
 */
const APP = `#!${process.execPath}
const http = require('node:http');
let inFlight = 0;
const say = (event) => console.log(JSON.stringify({ event, pid: process.pid, inFlight, at: Date.now() }));
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/slow')) {
    inFlight++;
    say('slow-start');
    setTimeout(() => { inFlight--; say('slow-end'); res.end('slow done'); }, Number(new URL(req.url, 'http://x').searchParams.get('ms')));
    return;
  }
  res.end(process.env.EBB_INSTANCE_ID);
});
server.listen(Number(process.env.PORT), '127.0.0.1', () => say('listening'));
process.on('SIGTERM', () => {
  say('sigterm');
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
`;

function config(listenerPort: number): string {
  return [
    'loadBalancers:',
    '  - name: web',
    '    attributes:',
    '      ebb.shutdown_timeout.seconds: 10',
    '    listeners:',
    '      - protocol: HTTP',
    `        port: ${listenerPort}`,
    '        address: 127.0.0.1',
    '        defaultActions:',
    '          - type: forward',
    '            targetGroup: app',
    'targetGroups:',
    '  - name: app',
    '    protocol: HTTP',
    '    port: 80',
    '    targetType: instance',
    '    healthCheck:',
    '      enabled: false',
    '    attributes:',
    '      deregistration_delay.timeout_seconds: 5',
    '',
  ].join('\n');
}

interface Clients {
  readonly as: AutoScalingClient;
  readonly ec2: EC2Client;
}

function clients(c: Cleanup, endpoint: string): Clients {
  const options = { endpoint, region: REGION, credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY }, maxAttempts: 1 };
  const as = new AutoScalingClient(options);
  const ec2 = new EC2Client(options);
  c.add(() => {
    as.destroy();
    ec2.destroy();
  });
  return { as, ec2 };
}

/** The launch template and the group of `size`, registered in the file's target group. */
async function createGroup(endpoint: string, { as, ec2 }: Clients, size: number): Promise<void> {
  const elb = sdkClient(endpoint);
  const tg = (await elb.send(new DescribeTargetGroupsCommand({ Names: ['app'] }))).TargetGroups?.[0]?.TargetGroupArn;
  elb.destroy();
  assert.ok(tg !== undefined, 'the file declares the target group app');
  await ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: 'app', LaunchTemplateData: { UserData: Buffer.from(APP).toString('base64') } }));
  await as.send(
    new CreateAutoScalingGroupCommand({
      AutoScalingGroupName: GROUP,
      LaunchTemplate: { LaunchTemplateName: 'app', Version: '$Latest' },
      MinSize: 0,
      MaxSize: size,
      DesiredCapacity: size,
      TargetGroupARNs: [tg],
    }),
  );
}

/** The group's instances, by id, with their lifecycle state. */
async function members({ as }: Clients): Promise<Map<string, string>> {
  const out = await as.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [GROUP] }));
  return new Map((out.AutoScalingGroups?.[0]?.Instances ?? []).map((i) => [i.InstanceId ?? '', i.LifecycleState ?? '']));
}

/** Waits until the group has `size` instances, all InService, and each has its pid (DescribeInstances' ebb:pid tag). */
async function inService(c: Clients, size: number, ms = 8000): Promise<Map<string, number>> {
  let pids = new Map<string, number>();
  await waitUntil(
    async () => {
      const now = await members(c);
      if (now.size !== size || [...now.values()].some((s) => s !== 'InService')) return false;
      pids = await instancePids(c, [...now.keys()]);
      return pids.size === size;
    },
    `${size} instances InService`,
    ms,
    100,
  );
  return pids;
}

async function instancePids({ ec2 }: Clients, ids: readonly string[]): Promise<Map<string, number>> {
  const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [...ids] }));
  const pids = new Map<string, number>();
  for (const i of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
    const pid = i.Tags?.find((t) => t.Key === 'ebb:pid')?.Value;
    if (i.InstanceId !== undefined && pid !== undefined) pids.set(i.InstanceId, Number(pid));
  }
  return pids;
}

/** Field 22 of /proc/<pid>/stat (the start time, in clock ticks since boot), or null once the pid is gone. */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the name: field 3 (state) is fields[0], so field 22 is fields[19]. A zombie has exited.
    return fields[0] === 'Z' ? null : (fields[19] ?? null);
  } catch {
    return null;
  }
}

/** At cleanup: SIGKILL to the process group of each pid still running as the process it was. */
function killLeftovers(c: Cleanup, pids: readonly number[]): void {
  const known = pids.map((pid) => ({ pid, start: startTime(pid) }));
  c.add(() => {
    for (const { pid, start } of known) {
      if (start === null || startTime(pid) !== start) continue;
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  });
}

function logsOf(proc: { logs: LogLine[] }, event: string): LogLine[] {
  return proc.logs.filter((l) => l['event'] === event);
}

/** The JSON lines an instance printed to its output.log. */
function instanceLines(stateDir: string, id: string): Array<Record<string, unknown>> {
  let text: string;
  try {
    text = readFileSync(join(stateDir, 'instances', id, 'output.log'), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A state directory and a file with a free listener port; `extra` is appended to the file. */
async function setUp(c: Cleanup, extra = ''): Promise<{ stateDir: string; file: string; listenerPort: number; args: string[] }> {
  const dir = await tempDir(c);
  const stateDir = join(dir, 'state');
  const file = join(dir, 'ebb.yaml');
  const listenerPort = await freePort();
  writeFileSync(file, config(listenerPort) + extra);
  // Before the directory goes: any instance still recorded there and still the same process (one a
  // failed run launched that this test never saw, too) is killed with its process group.
  c.add(() => {
    let ids: string[];
    try {
      ids = readdirSync(join(stateDir, 'instances'));
    } catch {
      return;
    }
    for (const id of ids) {
      try {
        const { pid, startTime: start } = JSON.parse(readFileSync(join(stateDir, 'instances', id, 'instance.json'), 'utf8')) as { pid: number; startTime: string };
        if (startTime(pid) === start) process.kill(-pid, 'SIGKILL');
      } catch {
        // no record, or gone meanwhile
      }
    }
  });
  return { stateDir, file, listenerPort, args: ['--config', file, '--state-dir', stateDir, '--admin', '127.0.0.1:0'] };
}

test('by default instances outlive ebb, and the next ebb serve adopts the same processes', { timeout: 60_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const { listenerPort, args } = await setUp(c);

  const first = spawnEbb(c, args, CREDENTIALS);
  const endpoint1 = `http://${String((await waitForStart(first))['admin'])}`;
  const c1 = clients(c, endpoint1);
  await createGroup(endpoint1, c1, 2);
  const pids = await inService(c1, 2);
  killLeftovers(c, [...pids.values()]);
  const starts = new Map([...pids].map(([id, pid]) => [id, startTime(pid)]));
  t.diagnostic(`instances ${[...pids].map(([id, pid]) => `${id} pid ${pid}`).join(', ')}`);

  first.child.kill('SIGTERM');
  assert.equal(await Promise.race([first.exited, after(12_000, 'still running')]), 0, `ebb should stop gracefully: ${first.stderr()}`);
  assert.equal(logsOf(first, 'ebb:stopped').length, 1, 'ebb went through its whole shutdown');
  assert.deepEqual(logsOf(first, 'autoscaling:instances-stopped'), [], 'by default ebb stops no instance when it stops');
  for (const [id, pid] of pids) {
    assert.ok(starts.get(id) !== null && startTime(pid) === starts.get(id), `instance ${id} (pid ${pid}) should still be running as the same process once ebb has exited`);
  }

  const second = spawnEbb(c, args, CREDENTIALS, { stopGraceMs: 5000 });
  const endpoint2 = `http://${String((await waitForStart(second))['admin'])}`;
  const c2 = clients(c, endpoint2);
  const adopted = await inService(c2, 2, 3000);
  assert.deepEqual([...adopted].sort(), [...pids].sort(), 'the same instances, with the same pids, InService again');
  for (const [id, pid] of pids) assert.equal(startTime(pid), starts.get(id), `instance ${id} was not started again`);
  assert.deepEqual(logsOf(second, 'instance:adopt').map((l) => l['instanceId']).sort(), [...pids.keys()].sort(), 'each instance adopted by the new ebb');
  assert.deepEqual(logsOf(second, 'instance:launch'), [], 'nothing launched twice');
  const answer = await get(listenerPort, '/');
  assert.equal(answer.status, 200);
  assert.ok(pids.has(answer.body), `an adopted instance answers through the listener (got ${JSON.stringify(answer.body)})`);

  // Clean up through the API: the group goes, each instance drains and stops, then ebb stops.
  await c2.as.send(new DeleteAutoScalingGroupCommand({ AutoScalingGroupName: GROUP, ForceDelete: true }));
  assert.ok(await waitFor(() => [...pids.values()].every((pid) => startTime(pid) === null), 10_000, 50), 'ForceDelete stops every instance');
  second.child.kill('SIGTERM');
  assert.equal(await Promise.race([second.exited, after(12_000, 'still running')]), 0, `the second ebb should stop gracefully: ${second.stderr()}`);
});

/** Whether this machine lets us make a PID namespace; the reason when it does not. */
function unshareRefusal(): string | null {
  const probe = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true'], { encoding: 'utf8', timeout: 5000 });
  if (probe.error !== undefined) return `unshare could not be run: ${probe.error.message}`;
  if (probe.status !== 0) return `unshare --pid --fork --mount-proc was refused (exit ${String(probe.status)}): ${probe.stderr.trim()}`;
  return null;
}

/** Host pids of the processes in the PID namespace `ns` (a /proc/<pid>/ns/pid link), by their pid inside it. */
function processesIn(ns: string): Map<number, number> {
  const found = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/pid`) !== ns) continue;
      const nspid = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1]?.trim().split(/\s+/);
      const inner = Number(nspid?.at(-1));
      if (startTime(Number(entry)) !== null) found.set(inner, Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** The host pid of the child of `parent` (unshare's forked child: ebb, PID 1 of the new namespace). */
function childOf(parent: number): number | null {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return null;
}

/** `ebb serve` as PID 1 of a new PID namespace, its JSON log lines parsed; unshare and ebb SIGKILLed at cleanup if still running. */
function spawnAsPid1(c: Cleanup, args: readonly string[]): NodeProcess {
  const child = spawn('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, '--import', 'tsx', CLI, 'serve', '--workers', '1', ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...CREDENTIALS },
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not spawn unshare');
  const logs: LogLine[] = [];
  let out = '';
  let err = '';
  let partial = '';
  let code: number | string | null = null;
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    out += chunk;
    partial += chunk;
    for (let nl = partial.indexOf('\n'); nl >= 0; nl = partial.indexOf('\n')) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ unparsed: line });
      }
    }
  });
  child.stderr.on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<number | string>((resolve) => child.on('close', (c2, signal) => resolve((code = c2 ?? signal ?? 'unknown'))));
  c.add(async () => {
    if (code !== null) return;
    // SIGKILL to PID 1 of the namespace takes every process in it along.
    const ebb = childOf(pid);
    if (ebb !== null) process.kill(ebb, 'SIGKILL');
    process.kill(pid, 'SIGKILL');
    await exited;
  });
  return {
    child,
    pid,
    logs,
    stdout: () => out,
    stderr: () => err,
    exited,
    exitCode: () => code,
    waitForLog: async (pred, ms) => {
      const ok = await waitFor(() => logs.some(pred) || code !== null, ms, 10);
      return ok ? (logs.find(pred) ?? null) : null;
    },
    problems: () => logs.filter((l) => l['level'] === 'error' || 'unparsed' in l),
  };
}

/** An ebb serve with a group of 2 instances registered behind its listener, and how to reach its instances from this side. */
interface Running {
  readonly ebb: NodeProcess;
  readonly stateDir: string;
  readonly listenerPort: number;
  /** The pid that gets ebb's SIGTERM, on this side. */
  readonly ebbPid: number;
  /** Each instance's id and pid on this side. */
  readonly instances: ReadonlyArray<{ id: string; pid: number }>;
}

/**
 * SIGTERM to ebb while a 1 s request to one of its instances is in flight. ebb must answer it (200),
 * exit 0 after its whole shutdown, and stop every instance itself: SIGTERM only once nothing is in
 * flight to it (the busy one after its answer), each exits on SIGTERM (no SIGKILL), none is launched
 * while ebb stops, and every pid is gone.
 */
async function stopsItsInstances(t: TestContext, r: Running): Promise<void> {
  // InService means running (EC2 health, and the target group checks nothing): wait until each app listens.
  const listening = (): boolean => r.instances.every((i) => instanceLines(r.stateDir, i.id).some((l) => l['event'] === 'listening'));
  await waitUntil(listening, 'every instance to listen on its port', 3000, 20);
  const slow = get(r.listenerPort, '/slow?ms=1000').then(
    (reply) => ({ status: reply.status, body: reply.body, doneAt: reply.doneAt }),
    (e: unknown) => ({ status: 0, body: String(e), doneAt: Date.now() }),
  );
  let busy: string | undefined;
  const started = (): boolean => (busy = r.instances.find((i) => instanceLines(r.stateDir, i.id).some((l) => l['event'] === 'slow-start'))?.id) !== undefined;
  if (!(await waitFor(started, 3000))) {
    const outcome = await Promise.race([slow, after(100, 'still waiting')]);
    assert.fail(`the slow request did not reach an instance within 3 s: ${JSON.stringify(outcome)}`);
  }
  const termAt = Date.now();
  process.kill(r.ebbPid, 'SIGTERM');

  const answer = await slow;
  assert.equal(answer.status, 200, `the request in flight completes: ${answer.body}`);
  assert.equal(answer.body, 'slow done');
  const code = await Promise.race([r.ebb.exited, after(15_000, 'still running')]);
  const events = r.ebb.logs.map((l) => String(l['event']));
  const stopping = events.indexOf('ebb:stopping');
  t.diagnostic(`request done ${answer.doneAt - termAt} ms after SIGTERM; ebb exited ${String(code)} after ${Date.now() - termAt} ms`);
  t.diagnostic(`ebb's log from ebb:stopping: ${events.slice(stopping).join(' ')}`);
  assert.equal(code, 0, `ebb exits 0: ${r.ebb.stderr()}`);

  for (const { id } of r.instances) {
    const lines = instanceLines(r.stateDir, id);
    const sigterm = lines.find((l) => l['event'] === 'sigterm');
    assert.ok(sigterm !== undefined, `instance ${id} got SIGTERM (its output: ${JSON.stringify(lines)})`);
    assert.equal(sigterm['inFlight'], 0, `instance ${id} had nothing in flight when it got SIGTERM`);
    if (id === busy) {
      const end = lines.find((l) => l['event'] === 'slow-end');
      assert.ok(end !== undefined && Number(sigterm['at']) >= Number(end['at']), 'the busy instance got SIGTERM only after its request was answered');
    }
  }
  const stopped = logsOf(r.ebb, 'autoscaling:stopped-at-shutdown');
  assert.deepEqual(stopped.map((l) => l['instance']).sort(), r.instances.map((i) => i.id).sort(), 'ebb stopped every instance at its shutdown');
  assert.ok(stopped.every((l) => l['by'] === 'SIGTERM'), `each exited on SIGTERM, none needed SIGKILL: ${JSON.stringify(stopped)}`);
  assert.deepEqual(events.slice(stopping).filter((e) => e === 'instance:launch'), [], 'no instance is launched once ebb is stopping');
  assert.ok(events.indexOf('ebb:stopped') > events.indexOf('autoscaling:instances-stopped'), 'ebb went through its whole shutdown after stopping the instances');
  for (const { id, pid } of r.instances) assert.ok(await waitFor(() => startTime(pid) === null, 1000, 20), `instance ${id} (pid ${pid}) is gone`);
}

test('as PID 1, ebb stops its instances itself once its data plane has finished', { timeout: 60_000 }, async (t) => {
  const refusal = unshareRefusal();
  if (refusal !== null) {
    t.diagnostic(refusal);
    t.skip(refusal);
    return;
  }
  const c = new Cleanup();
  t.after(() => c.run());
  const { stateDir, listenerPort, args } = await setUp(c);

  const ebb = spawnAsPid1(c, args);
  const endpoint = `http://${String((await waitForStart(ebb))['admin'])}`;
  let hostPid: number | null = null;
  await waitUntil(() => (hostPid = childOf(ebb.pid)) !== null, "ebb's pid on the host", 2000);
  const ebbPid = hostPid as unknown as number;
  const ns = readlinkSync(`/proc/${ebbPid}/ns/pid`);
  assert.notEqual(ns, readlinkSync('/proc/self/ns/pid'), 'ebb runs in a PID namespace of its own');
  assert.equal(processesIn(ns).get(1), ebbPid, 'ebb is PID 1 there');

  const cl = clients(c, endpoint);
  await createGroup(endpoint, cl, 2);
  const inner = await inService(cl, 2);
  const inNamespace = processesIn(ns);
  const instances = [...inner].map(([id, pid]) => {
    const host = inNamespace.get(pid);
    assert.ok(host !== undefined, `instance ${id} (pid ${pid} in the namespace) is found on the host`);
    return { id, pid: host };
  });
  killLeftovers(c, instances.map((i) => i.pid));

  await stopsItsInstances(t, { ebb, stateDir, listenerPort, ebbPid, instances });
  assert.deepEqual([...processesIn(ns).keys()], [], 'nothing is left running in the namespace');
});

test('with autoScaling.onShutdown: stop, ebb stops its instances after its data plane, and the next start launches fresh ones', { timeout: 60_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const { stateDir, listenerPort, args } = await setUp(c, 'autoScaling:\n  onShutdown: stop\n');

  const first = spawnEbb(c, args, CREDENTIALS);
  const endpoint1 = `http://${String((await waitForStart(first))['admin'])}`;
  const c1 = clients(c, endpoint1);
  await createGroup(endpoint1, c1, 2);
  const pids = await inService(c1, 2);
  const instances = [...pids].map(([id, pid]) => ({ id, pid }));
  killLeftovers(c, instances.map((i) => i.pid));
  await stopsItsInstances(t, { ebb: first, stateDir, listenerPort, ebbPid: first.pid, instances });

  // The group kept its desired capacity: the next ebb launches two new instances, and adopts nothing.
  const second = spawnEbb(c, args, CREDENTIALS, { stopGraceMs: 5000 });
  const endpoint2 = `http://${String((await waitForStart(second))['admin'])}`;
  const c2 = clients(c, endpoint2);
  const fresh = await inService(c2, 2);
  killLeftovers(c, [...fresh.values()]);
  assert.deepEqual([...fresh.keys()].filter((id) => pids.has(id)), [], 'none of the stopped instances is back');
  assert.deepEqual(logsOf(second, 'instance:adopt'), [], 'nothing was left to adopt');
  await c2.as.send(new DeleteAutoScalingGroupCommand({ AutoScalingGroupName: GROUP, ForceDelete: true }));
  assert.ok(await waitFor(() => [...fresh.values()].every((pid) => startTime(pid) === null), 10_000, 50), 'ForceDelete stops every instance');
  second.child.kill('SIGTERM');
  assert.equal(await Promise.race([second.exited, after(15_000, 'still running')]), 0, `the second ebb stops gracefully: ${second.stderr()}`);
});
