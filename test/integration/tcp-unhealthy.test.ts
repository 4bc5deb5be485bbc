/**
 * A TCP group's target that fails its health checks, end to end (NLB's `target_health_state.unhealthy.*`
 * target-group attributes; lifecycle.md "A TCP group's target that fails its health checks"): `ebb
 * serve` as a process on a YAML file with a network load balancer, two TCP listeners and two TCP
 * groups checked over TCP; real TCP targets in this process; real client sockets; the target's state
 * read with DescribeTargetHealth through the JS SDK.
 *
 * Each group has targets A and B. Once both are healthy, a client opens a flow to A and A stops
 * listening, so its TCP health checks are refused while the flow stays open. A turns unhealthy at its
 * second failed check (Target.FailedHealthChecks), with B healthy (the group does not fail open).
 *
 * 1. `cut`, the default (`connection_termination.enabled` true): A's flow is closed as A turns
 *    unhealthy (FIN to the client, then a reset after the data plane's grace); new flows go to B.
 * 2. `kept`, termination false and `draining_interval_seconds` 4: A reads `unhealthy.draining`, its
 *    flow keeps exchanging bytes and new flows go to B; when the interval is over A reads `unhealthy` and
 *    the flow is closed.
 *
 * Health timing: 5 s interval (the AWS minimum), both thresholds 2 (the minimum). The targets are
 * checked at ebb's start and 5 s later (healthy); A's checks 10 s and 15 s after the start fail, so A
 * is unhealthy about 15 s in. A healthy target cannot turn unhealthy sooner, so both groups run side
 * by side in one ebb (the two tests run concurrently).
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  DescribeTargetGroupAttributesCommand,
  DescribeTargetGroupsCommand,
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
  type TargetHealth,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { Cleanup, tempDir } from '../support/cleanup.ts';
import { spawnEbb, waitForStart, type LogLine, type NodeProcess } from '../support/ebb-process.ts';
import { freePort } from '../support/ports.ts';
import { sleep, waitFor, within } from '../support/timing.ts';
import { tcpConnect, type TcpClient } from './tcp-helpers.ts';

const TERMINATION = 'target_health_state.unhealthy.connection_termination.enabled';
const DRAINING_INTERVAL = 'target_health_state.unhealthy.draining_interval_seconds';
/**
 * The draining interval of group `kept`, in seconds. The attribute takes 0 to 360000 (0: no draining),
 * so 1 is the shortest; 4 leaves room to see bytes and new flows go within it on a loaded machine.
 */
const INTERVAL_S = 4;
/** ebb serve's grace between the FIN and the reset when it closes a flow (tcp.md, "Polite closing"). */
const GRACE_MS = 500;

const c = new Cleanup();
let ebb: NodeProcess;
let elbv2: ElasticLoadBalancingV2Client;

/** A TCP target that answers every read with `<name>:<what it read>` and ends its side when the client ends its own. */
interface Target {
  readonly name: string;
  readonly port: number;
  /** Connections that carried bytes: flows (ebb's TCP health checks send nothing). */
  flows(): number;
  /** Stops accepting connections, so that ebb's TCP health checks are refused; open connections stay up. */
  stopListening(): void;
}

interface Group {
  readonly name: string;
  readonly attributes: Readonly<Record<string, string | number | boolean>>;
  readonly A: Target;
  readonly B: Target;
  readonly port: number;
  arn: string;
}

const groups = new Map<string, Group>();

async function startTarget(name: string): Promise<Target> {
  const sockets = new Set<net.Socket>();
  let flows = 0;
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let counted = false;
    s.on('data', (b: Buffer) => {
      if (!counted) flows++;
      counted = true;
      s.write(`${name}:${b.toString('latin1')}`);
    });
    s.on('end', () => s.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  let listening = true;
  c.add(() => {
    for (const s of sockets) s.destroy();
    if (listening) server.close();
  });
  return {
    name,
    port,
    flows: () => flows,
    stopListening: () => {
      listening = false;
      server.close();
    },
  };
}

function configYaml(all: readonly Group[]): string {
  const lines = ['loadBalancers:', '  - name: unhealthy', '    type: network', '    listeners:'];
  for (const g of all) {
    lines.push('      - protocol: TCP', `        port: ${g.port}`, '        address: 127.0.0.1', `        defaultActions: [{ type: forward, targetGroup: ${g.name} }]`);
  }
  lines.push('targetGroups:');
  for (const g of all) {
    lines.push(
      `  - name: ${g.name}`,
      '    protocol: TCP',
      '    port: 80',
      '    healthCheck: { protocol: TCP, intervalSeconds: 5, timeoutSeconds: 2, healthyThresholdCount: 2, unhealthyThresholdCount: 2 }',
    );
    const attributes = Object.entries(g.attributes);
    if (attributes.length > 0) lines.push('    attributes:', ...attributes.map(([k, v]) => `      ${k}: ${String(v)}`));
    lines.push('    targets:', `      - { id: 127.0.0.1, port: ${g.A.port} }`, `      - { id: 127.0.0.1, port: ${g.B.port} }`);
  }
  return `${lines.join('\n')}\n`;
}

before(async () => {
  const declare = async (name: string, attributes: Group['attributes']): Promise<Group> => ({
    name,
    attributes,
    A: await startTarget('A'),
    B: await startTarget('B'),
    port: await freePort(),
    arn: '',
  });
  const all = [await declare('cut', {}), await declare('kept', { [TERMINATION]: false, [DRAINING_INTERVAL]: INTERVAL_S })];
  for (const g of all) groups.set(g.name, g);
  const dir = await tempDir(c);
  const configPath = join(dir, 'ebb.yaml');
  await writeFile(configPath, configYaml(all));
  ebb = spawnEbb(c, ['--config', configPath, '--admin', '127.0.0.1:0', '--state-dir', join(dir, 'state'), '--no-auth']);
  const started = await waitForStart(ebb);
  elbv2 = new ElasticLoadBalancingV2Client({
    endpoint: `http://${String(started['admin'])}`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDTCPUNHEALTHY', secretAccessKey: 'unused' },
    maxAttempts: 1,
  });
  c.add(() => elbv2.destroy());
  const described = await elbv2.send(new DescribeTargetGroupsCommand({ Names: all.map((g) => g.name) }));
  for (const tg of described.TargetGroups ?? []) {
    const g = groups.get(tg.TargetGroupName ?? '');
    if (g !== undefined) g.arn = tg.TargetGroupArn ?? '';
  }
});

after(async () => {
  await c.run();
});

function group(name: string): Group {
  const g = groups.get(name);
  if (g === undefined || g.arn === '') throw new Error(`group ${name} was not declared`);
  return g;
}

async function healthOf(g: Group, t: Target): Promise<TargetHealth> {
  const r = await elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: g.arn, Targets: [{ Id: '127.0.0.1', Port: t.port }] }));
  const d = r.TargetHealthDescriptions?.[0];
  assert.equal(d?.Target?.Port, t.port);
  return d?.TargetHealth ?? {};
}

async function attributesOf(g: Group): Promise<Record<string, string | undefined>> {
  const r = await elbv2.send(new DescribeTargetGroupAttributesCommand({ TargetGroupArn: g.arn }));
  return Object.fromEntries((r.Attributes ?? []).map((a) => [a.Key ?? '', a.Value]));
}

/** Sends `text` on the flow and returns the name of the target that answered (`<name>:<text>`), or null if no answer came. */
async function ask(flow: TcpClient, text: string, ms = 1000): Promise<string | null> {
  const before = flow.text().length;
  flow.socket.write(text);
  if (!(await waitFor(() => flow.text().length >= before + text.length + 2, ms))) return null;
  const reply = flow.text().slice(before);
  const name = reply.slice(0, reply.indexOf(':'));
  return reply === `${name}:${text}` ? name : null;
}

/** A flow through the group's listener that landed on A (round robin between A and B: a few tries at most). */
async function flowToA(g: Group): Promise<TcpClient> {
  for (let i = 0; i < 4; i++) {
    const flow = await tcpConnect(c, g.port);
    if ((await ask(flow, 'hello')) === 'A') return flow;
    flow.socket.destroy();
  }
  throw new Error(`no flow of ${g.name} reached A`);
}

/** The time (ms) of ebb's `target:state` log line that moved A from `from` to `to`. */
async function stateLoggedAt(g: Group, from: string, to: string): Promise<number> {
  const line = await ebb.waitForLog(
    (l) => l['event'] === 'target:state' && l['targetGroup'] === g.arn && l['target'] === `127.0.0.1:${g.A.port}` && l['from'] === from && l['to'] === to,
    2000,
  );
  assert.ok(line !== null, `ebb logged A's move from ${from} to ${to}`);
  assert.equal(line['reason'], 'Target.FailedHealthChecks');
  return Date.parse(String(line['time']));
}

function flowsClosedLog(g: Group): Promise<LogLine | null> {
  return ebb.waitForLog((l) => l['event'] === 'unhealthy:flows-closed' && l['target'] === `127.0.0.1:${g.A.port}`, 3000);
}

/**
 * Both targets healthy, a flow open to A, then A stops listening: the flow is used every 200 ms while
 * A still reads healthy (its first failed check is below the threshold, and closing A's listener must
 * not touch it). Returns the flow and A's health once it no longer reads healthy.
 */
async function flowToFailingA(g: Group): Promise<{ flow: TcpClient; health: TargetHealth; exchanges: number }> {
  assert.ok(await waitFor(async () => (await healthOf(g, g.A)).State === 'healthy' && (await healthOf(g, g.B)).State === 'healthy', 9000, 100), 'A and B are healthy');
  const flow = await flowToA(g);
  g.A.stopListening();
  let exchanges = 0;
  const deadline = Date.now() + 14_000;
  while (Date.now() < deadline) {
    const health = await healthOf(g, g.A);
    if (health.State !== 'healthy') return { flow, health, exchanges };
    const answer = await ask(flow, `ping ${exchanges}`);
    if (answer !== 'A') {
      // The flow may have been closed between the two calls, as A turned unhealthy: not while A reads healthy.
      const now = await healthOf(g, g.A);
      assert.notEqual(now.State, 'healthy', `the flow to A stopped carrying bytes while A was healthy (answer ${String(answer)}): ${JSON.stringify(flow.events)}`);
      return { flow, health: now, exchanges };
    }
    exchanges++;
    await sleep(200);
  }
  throw new Error(`A never turned unhealthy (${JSON.stringify(await healthOf(g, g.A))})`);
}

/** After ebb's FIN and its grace, the connection is gone: a write is refused (EPIPE) or answered with a reset. */
async function assertResetAfterFin(flow: TcpClient): Promise<void> {
  const finAt = flow.events.find((e) => e.what === 'end')?.at ?? Date.now();
  await sleep(Math.max(0, finAt + GRACE_MS + 300 - Date.now()));
  flow.socket.write('anyone there?');
  assert.notEqual(await within(flow.closed, 2000), 'timeout', `the client's connection closed: ${JSON.stringify(flow.events)}`);
  const seen = flow.events.map((e) => e.what);
  assert.equal(seen[0], 'end', `FIN first: ${JSON.stringify(seen)}`);
  assert.ok(seen.includes('error:EPIPE') || seen.includes('error:ECONNRESET'), `then the reset: ${JSON.stringify(seen)}`);
}

async function newFlowsGoToB(g: Group, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const fresh = await tcpConnect(c, g.port);
    assert.equal(await ask(fresh, `new ${i}`), 'B', 'a new flow goes to B');
    fresh.socket.end();
  }
}

describe('a TCP group target that fails its health checks, with real flows', { concurrency: true }, () => {
  test('connection termination on (the default): the flow is closed as A turns unhealthy; new flows go to B', { timeout: 30_000 }, async () => {
    const g = group('cut');
    const attrs = await attributesOf(g);
    assert.equal(attrs[TERMINATION], 'true', 'termination is on by default');
    assert.equal(attrs[DRAINING_INTERVAL], '0');

    const { flow, health, exchanges } = await flowToFailingA(g);
    assert.ok(exchanges > 0, 'the flow carried bytes after A stopped listening, while A was still healthy');
    assert.deepEqual(health, { State: 'unhealthy', Reason: 'Target.FailedHealthChecks', Description: 'Health checks failed' });
    const unhealthyAt = await stateLoggedAt(g, 'healthy', 'unhealthy');

    assert.ok(await waitFor(() => flow.saw('end'), 2000), `the client got a FIN: ${JSON.stringify(flow.events)}`);
    const finAfter = (flow.events.find((e) => e.what === 'end')?.at ?? 0) - unhealthyAt;
    assert.ok(finAfter >= -5 && finAfter < 1000, `the flow was closed as A turned unhealthy (${finAfter} ms after)`);
    const closed = await flowsClosedLog(g);
    assert.equal(closed?.['flows'], 1, `one flow closed: ${JSON.stringify(closed)}`);
    assert.equal(closed['why'], 'unhealthy');
    await assertResetAfterFin(flow);

    await newFlowsGoToB(g, 4);
    assert.equal(g.A.flows(), 1, 'no new flow reached A');
    assert.deepEqual(await healthOf(g, g.A), { State: 'unhealthy', Reason: 'Target.FailedHealthChecks', Description: 'Health checks failed' });
    assert.deepEqual(await healthOf(g, g.B), { State: 'healthy' });
  });

  test(`connection termination off, draining interval ${INTERVAL_S} s: A reads unhealthy.draining, its flow goes on, and is closed when the interval ends`, { timeout: 30_000 }, async () => {
    const g = group('kept');
    const attrs = await attributesOf(g);
    assert.equal(attrs[TERMINATION], 'false');
    assert.equal(attrs[DRAINING_INTERVAL], String(INTERVAL_S));

    const { flow, health, exchanges } = await flowToFailingA(g);
    assert.ok(exchanges > 0, 'the flow carried bytes after A stopped listening, while A was still healthy');
    assert.deepEqual(health, { State: 'unhealthy.draining', Reason: 'Target.FailedHealthChecks', Description: 'Health checks failed' });
    const drainingAt = await stateLoggedAt(g, 'healthy', 'unhealthy.draining');
    const stepsOfA = ebb.logs.filter((l) => l['event'] === 'target:state' && l['targetGroup'] === g.arn && l['target'] === `127.0.0.1:${g.A.port}`);
    assert.ok(!stepsOfA.some((l) => l['to'] === 'unhealthy' && l['from'] === 'healthy'), `A went to unhealthy.draining in one step, as AWS reports it: ${JSON.stringify(stepsOfA)}`);

    // Within the interval: the flow to A still carries bytes both ways, and new flows go to B.
    for (let i = 0; i < 2; i++) {
      assert.equal(await ask(flow, `draining ${i}`), 'A', `the flow to A still carries bytes while A is unhealthy.draining: ${JSON.stringify(flow.events)}`);
      await newFlowsGoToB(g, 1);
    }
    const exchangedUntil = Date.now() - drainingAt;
    assert.ok(exchangedUntil < INTERVAL_S * 1000, `the bytes above went within the interval (${exchangedUntil} ms after A turned unhealthy)`);
    assert.deepEqual(await healthOf(g, g.A), { State: 'unhealthy.draining', Reason: 'Target.FailedHealthChecks', Description: 'Health checks failed' });
    assert.ok(!flow.saw('end') && !flow.saw('close'), 'the flow is still open');

    assert.ok(await waitFor(() => flow.saw('end'), INTERVAL_S * 1000 + 2000), `the client got a FIN when the interval ended: ${JSON.stringify(flow.events)}`);
    const finAfter = (flow.events.find((e) => e.what === 'end')?.at ?? 0) - drainingAt;
    assert.ok(finAfter >= INTERVAL_S * 1000 - 100 && finAfter < INTERVAL_S * 1000 + 1500, `the flow was closed at the end of the ${INTERVAL_S} s interval (${finAfter} ms after A turned unhealthy)`);
    const undrainedAt = await stateLoggedAt(g, 'unhealthy.draining', 'unhealthy');
    assert.ok(undrainedAt - drainingAt >= INTERVAL_S * 1000 - 100, `A read unhealthy.draining for the interval (${undrainedAt - drainingAt} ms)`);
    assert.deepEqual(await healthOf(g, g.A), { State: 'unhealthy', Reason: 'Target.FailedHealthChecks', Description: 'Health checks failed' });
    const closed = await flowsClosedLog(g);
    assert.equal(closed?.['flows'], 1, `one flow closed: ${JSON.stringify(closed)}`);
    assert.equal(closed['why'], 'unhealthy-draining-interval');
    await assertResetAfterFin(flow);

    assert.equal(g.A.flows(), 1, 'no new flow reached A');
    assert.deepEqual(await healthOf(g, g.B), { State: 'healthy' });
  });
});

test('ebb logged no error', () => {
  assert.deepEqual(ebb.problems(), []);
});
