/**
 * TCP listeners end to end (issue 10, tests 1 and 2): `ebb serve` as a process on a YAML file that
 * declares a network load balancer with TCP listeners and TCP target groups with their attributes;
 * deregistrations through the ELBv2 API with the JS SDK; real TCP backends, real client sockets. Each
 * test has its own group and listener.
 *
 * 1. A flow to A stays up after A is deregistered and keeps exchanging bytes; new flows go to B; the
 *    drain ends when the flow closes (A `unused`, its drain record `idle`). With
 *    `deregistration_delay.connection_termination.enabled` and a 2 s delay, the flow is closed at about
 *    2 s (FIN first) and counted in the drain record; without it, the flow is left open past the
 *    deadline, as NLB does, and logged as left open.
 * 2. PROXY protocol v2: the backend reads the client's address and port from the header.
 *
 * Health checks are TCP every 30 s (the TCP default): until they pass, every target is `initial` and
 * the group fails open, which routes to every target not draining — all this test needs.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  DeregisterTargetsCommand,
  DescribeTargetGroupsCommand,
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { Cleanup, tempDir } from '../support/cleanup.ts';
import { spawnEbb, waitForStart, type NodeProcess } from '../support/ebb-process.ts';
import { freePort } from '../support/ports.ts';
import { sleep, waitFor, within } from '../support/timing.ts';
import { startTcpBackend, tcpConnect, type TcpBackend, type TcpClient } from './tcp-helpers.ts';

const c = new Cleanup();
let ebb: NodeProcess;
let endpoint = '';
let client: ElasticLoadBalancingV2Client;

/** One TCP listener and its group, as the file declares them. */
interface Declared {
  readonly name: string;
  readonly targets: readonly TcpBackend[];
  readonly attributes: Readonly<Record<string, string | number | boolean>>;
  port: number;
  tgArn: string;
}

const backends = new Map<string, TcpBackend>();
const declared = new Map<string, Declared>();
/** What the PROXY v2 backend read: the client its header named, and the first bytes behind it. */
const proxySeen: Array<{ address: string; port: number; first: string }> = [];

/** The configuration file: one network load balancer with a TCP listener per group. */
function configYaml(groups: readonly Declared[]): string {
  const lines = ['loadBalancers:', '  - name: flows', '    type: network', '    listeners:'];
  for (const g of groups) {
    lines.push(
      '      - protocol: TCP',
      `        port: ${g.port}`,
      '        address: 127.0.0.1',
      `        defaultActions: [{ type: forward, targetGroup: ${g.name} }]`,
      '        attributes:',
      '          tcp.idle_timeout.seconds: 60',
    );
  }
  lines.push('targetGroups:');
  for (const g of groups) {
    lines.push(`  - name: ${g.name}`, '    protocol: TCP', '    port: 80', '    attributes:');
    for (const [k, v] of Object.entries(g.attributes)) lines.push(`      ${k}: ${String(v)}`);
    lines.push('    targets:', ...g.targets.map((t) => `      - { id: 127.0.0.1, port: ${t.port} }`));
  }
  return `${lines.join('\n')}\n`;
}

before(async () => {
  for (const name of ['A1', 'B1', 'A2', 'B2', 'A3', 'B3']) backends.set(name, await namedEcho(name.slice(0, 1)));
  const pair = (n: number): TcpBackend[] => [backend(`A${n}`), backend(`B${n}`)];
  const groups: Declared[] = [
    { name: 'idle', targets: pair(1), attributes: { 'deregistration_delay.timeout_seconds': 60 }, port: 0, tgArn: '' },
    {
      name: 'cut',
      targets: pair(2),
      attributes: { 'deregistration_delay.timeout_seconds': 2, 'deregistration_delay.connection_termination.enabled': true },
      port: 0,
      tgArn: '',
    },
    { name: 'left', targets: pair(3), attributes: { 'deregistration_delay.timeout_seconds': 2 }, port: 0, tgArn: '' },
    { name: 'proxied', targets: [await proxyReader()], attributes: { 'proxy_protocol_v2.enabled': true }, port: 0, tgArn: '' },
  ];
  for (const g of groups) {
    g.port = await freePort();
    declared.set(g.name, g);
  }
  const dir = await tempDir(c);
  const configPath = join(dir, 'ebb.yaml');
  await writeFile(configPath, configYaml(groups));
  ebb = spawnEbb(c, ['--config', configPath, '--admin', '127.0.0.1:0', '--state-dir', join(dir, 'state'), '--no-auth']);
  const started = await waitForStart(ebb);
  endpoint = `http://${String(started['admin'])}`;
  client = new ElasticLoadBalancingV2Client({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AKIDTCPTEST', secretAccessKey: 'unused' }, maxAttempts: 1 });
  c.add(() => client.destroy());
  const described = await client.send(new DescribeTargetGroupsCommand({ Names: groups.map((g) => g.name) }));
  for (const tg of described.TargetGroups ?? []) {
    const g = declared.get(tg.TargetGroupName ?? '');
    if (g !== undefined) g.tgArn = tg.TargetGroupArn ?? '';
  }
});

after(async () => {
  await c.run();
});

function group(name: string): Declared {
  const g = declared.get(name);
  if (g === undefined || g.tgArn === '') throw new Error(`group ${name} was not declared`);
  return g;
}

function backend(name: string): TcpBackend {
  const b = backends.get(name);
  if (b === undefined) throw new Error(`no backend ${name}`);
  return b;
}

/** A TCP backend that answers every read with `<name>:<what it read>` and ends its side when the client ends its own. */
function namedEcho(name: string): Promise<TcpBackend> {
  return startTcpBackend(c, name, (s) => {
    s.on('data', (b: Buffer) => s.write(`${name}:${b.toString('latin1')}`));
    s.on('end', () => s.end());
  });
}

/** A backend that expects a PROXY v2 header (TCP over IPv4) and answers with the client it names. */
function proxyReader(): Promise<TcpBackend> {
  return startTcpBackend(c, 'P', (s) => {
    let buf = Buffer.alloc(0);
    s.on('data', (b: Buffer) => {
      buf = Buffer.concat([buf, b]);
      // proxy-protocol.txt §2.2: 16 bytes (signature, version and command, family, length), then 12 of addresses.
      if (buf.length < 28 + 5) return;
      if (buf.subarray(0, 12).toString('hex') !== '0d0a0d0a000d0a515549540a' || buf[12] !== 0x21 || buf[13] !== 0x11) {
        s.end('no PROXY v2 header');
        return;
      }
      const address = [...buf.subarray(16, 20)].join('.');
      const port = buf.readUInt16BE(24);
      proxySeen.push({ address, port, first: buf.subarray(28).toString('latin1') });
      s.end(`you are ${address}:${port}`);
    });
  });
}

/** Sends `text` on the flow and returns the name of the backend that answered (`<name>:<text>`), or null. */
async function ask(flow: TcpClient, text: string): Promise<string | null> {
  const before = flow.text().length;
  flow.socket.write(text);
  const answered = await waitFor(() => flow.text().length >= before + text.length + 2, 2000);
  if (!answered) return null;
  const reply = flow.text().slice(before);
  const name = reply.slice(0, reply.indexOf(':'));
  return reply === `${name}:${text}` ? name : null;
}

/** A flow through `port` that landed on `name` (round robin: a few tries at most). */
async function flowTo(port: number, name: string): Promise<TcpClient> {
  for (let i = 0; i < 6; i++) {
    const flow = await tcpConnect(c, port);
    if ((await ask(flow, 'hello')) === name) return flow;
    flow.socket.destroy();
  }
  throw new Error(`no flow reached ${name}`);
}

async function stateOf(tgArn: string, port: number): Promise<string | undefined> {
  const r = await client.send(new DescribeTargetHealthCommand({ TargetGroupArn: tgArn, Targets: [{ Id: '127.0.0.1', Port: port }] }));
  return r.TargetHealthDescriptions?.[0]?.TargetHealth?.State;
}

async function deregister(tgArn: string, port: number): Promise<number> {
  await client.send(new DeregisterTargetsCommand({ TargetGroupArn: tgArn, Targets: [{ Id: '127.0.0.1', Port: port }] }));
  return Date.now();
}

interface DrainRecord {
  readonly outcome: string;
  readonly durationMs: number;
  readonly tunnelsClosed: number;
  readonly connectionsClosed: number;
  readonly flowsLeftOpen: number;
}

/** ebb's records of finished drains of `tgArn`'s target on `port`, newest first (GET /ebb/v1/drain-records). */
function drainRecords(tgArn: string, port: number): Promise<DrainRecord[]> {
  const url = new URL(`/ebb/v1/drain-records?targetGroup=${encodeURIComponent(tgArn)}&target=127.0.0.1:${port}`, endpoint);
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (ch: string) => (text += ch));
      res.on('end', () => (res.statusCode === 200 ? resolve((JSON.parse(text) as { records: DrainRecord[] }).records) : reject(new Error(`${res.statusCode}: ${text}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

test('a flow to a deregistered target keeps exchanging bytes, new flows go to B, and the drain ends idle when it closes', { timeout: 30_000 }, async () => {
  const { tgArn, port } = group('idle');
  const A = backend('A1');
  const toA = await flowTo(port, 'A');

  const deregisteredAt = await deregister(tgArn, A.port);
  assert.equal(await stateOf(tgArn, A.port), 'draining');
  for (let i = 0; i < 5; i++) {
    assert.equal(await ask(toA, `still there ${i}`), 'A', 'the flow to A still carries bytes both ways');
    const fresh = await tcpConnect(c, port);
    assert.equal(await ask(fresh, `new ${i}`), 'B', 'a new flow goes to B');
    fresh.socket.end();
  }
  assert.equal(await stateOf(tgArn, A.port), 'draining', 'the open flow holds the drain');

  toA.socket.end();
  assert.notEqual(await within(toA.closed, 2000), 'timeout');
  assert.ok(await waitFor(async () => (await stateOf(tgArn, A.port)) === 'unused', 5000), 'A is unused once its flow closed');
  const [record] = await drainRecords(tgArn, A.port);
  assert.equal(record?.outcome, 'idle');
  assert.ok((record?.durationMs ?? Infinity) < Date.now() - deregisteredAt + 100 && (record?.durationMs ?? 0) < 10_000, 'the drain ended early, long before its 60 s');
  assert.deepEqual(ebb.problems(), []);
});

test('with connection termination and a 2 s delay, the flow is closed at about 2 s, FIN first, and counted', { timeout: 30_000 }, async () => {
  const { tgArn, port } = group('cut');
  const A = backend('A2');
  const toA = await flowTo(port, 'A');
  const deregisteredAt = await deregister(tgArn, A.port);
  await sleep(1000);
  assert.equal(await ask(toA, 'at 1 s'), 'A', 'the flow works until the deadline');
  assert.ok(await waitFor(() => toA.saw('end'), 4000), 'the client got a FIN at the deadline');
  const finAfter = (toA.events.find((e) => e.what === 'end')?.at ?? 0) - deregisteredAt;
  assert.ok(finAfter >= 1900 && finAfter < 3500, `closed at about 2 s (${finAfter} ms)`);
  assert.ok(await waitFor(async () => (await stateOf(tgArn, A.port)) === 'unused', 5000));
  const [record] = await drainRecords(tgArn, A.port);
  assert.equal(record?.outcome, 'deadline');
  assert.equal(record?.tunnelsClosed, 1, 'the flow is counted as closed');
});

test('without connection termination (NLB default), the flow outlives the deadline and is counted as left open', { timeout: 30_000 }, async () => {
  const { tgArn, port } = group('left');
  const A = backend('A3');
  const toA = await flowTo(port, 'A');
  await deregister(tgArn, A.port);
  assert.ok(await waitFor(async () => (await stateOf(tgArn, A.port)) === 'unused', 5000), 'A is unused at the deadline');
  const [record] = await drainRecords(tgArn, A.port);
  assert.equal(record?.outcome, 'deadline');
  assert.equal(record?.tunnelsClosed, 0, 'nothing was closed');
  assert.equal(record?.flowsLeftOpen, 1, 'the record counts the flow left open');
  const left = await ebb.waitForLog((l) => l['event'] === 'drain:flows-left-open' && l['target'] === `127.0.0.1:${A.port}`, 2000);
  assert.equal(left?.['flows'], 1, 'the flow left open is counted');
  assert.equal(await ask(toA, 'after the deadline'), 'A', 'the flow is still open and still reaches A');
  assert.ok(!toA.saw('end'));
  toA.socket.end();
  assert.notEqual(await within(toA.closed, 2000), 'timeout');
});

test('PROXY protocol v2: the backend reads the client address and port from the header', { timeout: 30_000 }, async () => {
  const { port } = group('proxied');
  const flow = await tcpConnect(c, port);
  flow.socket.write('hello');
  assert.ok(await waitFor(() => flow.saw('end'), 3000), flow.text());
  assert.equal(flow.text(), `you are 127.0.0.1:${flow.localPort}`);
  assert.deepEqual(proxySeen, [{ address: '127.0.0.1', port: flow.localPort, first: 'hello' }]);
});
