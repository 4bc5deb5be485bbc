/**
 * NLB's three reset counters, end to end: `ebb serve` as a process on a file that declares a network
 * load balancer with three TCP listeners, each to a group of its own, and real TCP clients. `GET
 * /metrics` (open: the admin API runs with --no-auth) is read after each kind of reset, and each
 * counter moves by exactly one for its own kind and not at all for the others:
 *
 * - the client resets its flow (`resetAndDestroy`): `ebb_tcp_client_reset_count` (TCP_Client_Reset_Count)
 *   goes to 1 and the target is reset in turn;
 * - ebb resets a flow itself: its target is deregistered by a SIGHUP reload of the file, from a group
 *   with `deregistration_delay.timeout_seconds: 0` and connection termination on, so the drain's deadline
 *   comes at once; ebb sends FIN both ways, the target answers with its own, the client does not, and
 *   after the grace ebb resets it: `ebb_tcp_elb_reset_count` (TCP_ELB_Reset_Count) goes to 1 (docs/tcp.md,
 *   "When ebb closes a flow": `terminated`, `resetByEbb` once the RST was needed). The listener's idle
 *   timeout would do too, but its smallest value is 60 s;
 * - the target resets its flow: `ebb_tcp_target_reset_count` (TCP_Target_Reset_Count) goes to 1, which
 *   shows the counter that stayed at 0 until then can move.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import type net from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Cleanup, tempDir } from '../support/cleanup.ts';
import { spawnEbb, waitForStart, type NodeProcess } from '../support/ebb-process.ts';
import { freePort } from '../support/ports.ts';
import { waitFor, waitUntil } from '../support/timing.ts';
import { scrape, type Scrape } from './metrics-scrape.ts';
import { startTcpBackend, tcpConnect, type TcpBackend, type TcpClient } from './tcp-helpers.ts';

const CLIENT_RESETS = 'ebb_tcp_client_reset_count';
const TARGET_RESETS = 'ebb_tcp_target_reset_count';
const ELB_RESETS = 'ebb_tcp_elb_reset_count';

const c = new Cleanup();
let dir = '';
let ebb: NodeProcess;
let adminPort = 0;
const ports = { keep: 0, cut: 0, reset: 0 };
let keep: TcpBackend;
let cut: TcpBackend;
let resetter: TcpBackend;
/** What each connection to the `keep` target (flows and health checks) saw end it: `error:<code>`, `end`, `close`, in order. */
const keepSaw: string[][] = [];

function configText(withCutTarget: boolean): string {
  const listener = (port: number, group: string): string[] => [
    '      - protocol: TCP',
    `        port: ${port}`,
    '        address: 127.0.0.1',
    `        defaultActions: [{ type: forward, targetGroup: ${group} }]`,
  ];
  const group = (name: string, port: number | null, attributes: string[] = []): string[] => [
    `  - name: ${name}`,
    '    protocol: TCP',
    '    port: 80',
    ...(attributes.length === 0 ? [] : ['    attributes:', ...attributes.map((a) => `      ${a}`)]),
    ...(port === null ? ['    targets: []'] : ['    targets:', `      - { id: 127.0.0.1, port: ${port} }`]),
  ];
  return `${[
    'loadBalancers:',
    '  - name: resets',
    '    type: network',
    '    listeners:',
    ...listener(ports.keep, 'keep'),
    ...listener(ports.cut, 'cut'),
    ...listener(ports.reset, 'resetter'),
    'targetGroups:',
    ...group('keep', keep.port),
    ...group('cut', withCutTarget ? cut.port : null, ['deregistration_delay.timeout_seconds: 0', 'deregistration_delay.connection_termination.enabled: true']),
    ...group('resetter', resetter.port),
  ].join('\n')}\n`;
}

before(async () => {
  // An echo target that records how each of its connections ended.
  keep = await startTcpBackend(c, 'keep', (s: net.Socket, i: number) => {
    const saw: string[] = [];
    keepSaw[i] = saw;
    s.on('data', (b: Buffer) => s.write(b));
    s.on('end', () => {
      saw.push('end');
      s.end();
    });
    s.on('error', (e: NodeJS.ErrnoException) => saw.push(`error:${e.code ?? e.message}`));
    s.on('close', () => saw.push('close'));
  });
  // An echo target that answers a FIN with its own (the default).
  cut = await startTcpBackend(c, 'cut');
  // Resets each connection as soon as it reads a byte.
  resetter = await startTcpBackend(c, 'resetter', (s) => s.once('data', () => s.resetAndDestroy()));
  [ports.keep, ports.cut, ports.reset] = [await freePort(), await freePort(), await freePort()];
  dir = await tempDir(c);
  await writeFile(join(dir, 'ebb.yaml'), configText(true));
  ebb = spawnEbb(c, ['--config', join(dir, 'ebb.yaml'), '--admin', '127.0.0.1:0', '--state-dir', join(dir, 'state'), '--no-auth']);
  const started = await waitForStart(ebb);
  adminPort = Number(String(started['admin']).split(':').at(-1));
});

after(async () => {
  await c.run();
});

/** Sends `text` and waits for its echo through ebb. */
async function echoed(client: TcpClient, text: string): Promise<void> {
  const before = client.text();
  client.socket.write(text);
  await waitUntil(() => client.text() === before + text, `the echo of '${text}'`, 5000);
}

/**
 * A counter of the load balancer that has counted nothing: the family is exported as a counter (so a
 * misspelt name fails here) and no series of the load balancer holds anything but 0.
 */
function assertZero(s: Scrape, name: string, lb: Record<string, string>): void {
  assert.equal(s.type(name), 'COUNTER', `${name} is not exported as a counter`);
  assert.deepEqual(
    s.samples(name, lb).filter((x) => x.value !== 0),
    [],
    `${name} counted something`,
  );
}

test('a client reset, a flow ebb resets at a drain deadline and a target reset each move their own counter by exactly one', { timeout: 30_000 }, async () => {
  // 1. The client resets its flow.
  const resetting = await tcpConnect(c, ports.keep);
  await echoed(resetting, 'hello before the reset');
  // The flow's connection to the target (others are TCP health checks, which send nothing).
  const flowAt = keep.received.findIndex((r) => Buffer.concat(r).toString('latin1') === 'hello before the reset');
  assert.ok(flowAt >= 0, 'the flow reached its target');

  // The load balancer's dimension, once the flow is counted.
  let lbDim: string | undefined;
  await waitUntil(async () => (lbDim = (await scrape(adminPort)).samples('ebb_new_flow_count')[0]?.labels['load_balancer']) !== undefined, 'a flow counted', 5000, 50);
  const lb = { load_balancer: lbDim ?? '' };
  assert.match(lb.load_balancer, /^net\/resets\/[0-9a-f]{16}$/);

  resetting.socket.resetAndDestroy();
  let s = await scrape(adminPort);
  await waitUntil(async () => (s = await scrape(adminPort)).samples(CLIENT_RESETS, lb).length > 0, 'the client reset counted', 5000, 50);
  assert.equal(s.value(CLIENT_RESETS, lb), 1, 'one client reset');
  assertZero(s, TARGET_RESETS, lb);
  assertZero(s, ELB_RESETS, lb);
  assert.equal(s.value('ebb_new_flow_count', lb), 1);
  assert.equal(s.value('ebb_active_flow_count', lb), 0, 'the reset flow is no longer active');
  // ebb passed the reset on: the target's connection ended in an error, not a FIN.
  assert.ok(await waitFor(() => keepSaw[flowAt]?.includes('close') === true, 2000), `the target's connection closed: ${JSON.stringify(keepSaw[flowAt])}`);
  assert.equal(keepSaw[flowAt]?.[0], 'error:ECONNRESET', `the target was reset: ${JSON.stringify(keepSaw[flowAt])}`);
  assert.ok(!keepSaw[flowAt]?.includes('end'), `the target got no FIN: ${JSON.stringify(keepSaw[flowAt])}`);

  // 2. ebb resets a flow itself: its target leaves the file (a drain with no delay, connection termination on).
  const cutFlow = await tcpConnect(c, ports.cut);
  await echoed(cutFlow, 'hello before the drain');
  assert.ok(cut.received.some((r) => Buffer.concat(r).toString('latin1') === 'hello before the drain'), 'the flow reached its target');
  await writeFile(join(dir, 'ebb.yaml'), configText(false));
  const reloadsBefore = ebb.logs.filter((l) => l['event'] === 'config:reloaded').length;
  ebb.child.kill('SIGHUP');
  await waitUntil(() => ebb.logs.filter((l) => l['event'] === 'config:reloaded').length > reloadsBefore, 'config:reloaded', 10_000, 20);
  // FIN first: the client's side is still open (it does not answer), so ebb resets the flow after the grace.
  await waitUntil(() => cutFlow.saw('end'), 'the FIN of the drain deadline', 5000);
  await waitUntil(async () => (s = await scrape(adminPort)).samples(ELB_RESETS, lb).length > 0, 'the reset by ebb counted', 5000, 50);
  assert.equal(s.value(ELB_RESETS, lb), 1, 'one flow reset by ebb');
  assert.equal(s.value(CLIENT_RESETS, lb), 1, 'the client reset count did not move');
  assertZero(s, TARGET_RESETS, lb);
  assert.equal(s.value('ebb_new_flow_count', lb), 2);
  assert.equal(s.value('ebb_active_flow_count', lb), 0);
  // The reset reached the client: its next write fails (its read side had already seen the FIN).
  cutFlow.socket.write('anyone there?');
  await waitUntil(() => cutFlow.saw('close'), 'the client\'s socket to close after the reset', 5000);
  assert.ok(
    cutFlow.events.some((e) => e.what === 'error:ECONNRESET' || e.what === 'error:EPIPE'),
    `the client learned of the reset: ${JSON.stringify(cutFlow.events)}`,
  );

  // 3. The target resets its flow: the counter that stayed at 0 moves, and only it.
  const targetReset = await tcpConnect(c, ports.reset);
  targetReset.socket.write('reset me');
  await targetReset.closed;
  assert.ok(targetReset.saw('error:ECONNRESET'), `the client was reset: ${JSON.stringify(targetReset.events)}`);
  await waitUntil(async () => (s = await scrape(adminPort)).samples(TARGET_RESETS, lb).length > 0, 'the target reset counted', 5000, 50);
  assert.equal(s.value(TARGET_RESETS, lb), 1, 'one target reset');
  assert.equal(s.value(CLIENT_RESETS, lb), 1, 'the client reset count did not move');
  assert.equal(s.value(ELB_RESETS, lb), 1, 'the ELB reset count did not move');
  assert.equal(s.value('ebb_new_flow_count', lb), 3);

  assert.deepEqual(ebb.problems(), [], 'ebb logged no error');
});
