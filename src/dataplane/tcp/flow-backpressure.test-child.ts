/**
 * Test only (flow-backpressure.test.ts): flows that ebb closes while its write to a peer that reads
 * nothing is held, run in a process of their own. A socket whose reset fails keeps its handle
 * half-closed for good, and Node, leaving an environment, waits for every handle to close: a test
 * process that met one would never end on its own. This one prints what it saw, one JSON line, and
 * leaves with process.exit. It imports only from src/ (the layer rules of test/architecture.test.ts).
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import net from 'node:net';
import type { RoutingSnapshot } from '../../domain/routing-snapshot.ts';
import { CHANNEL_NAMES } from '../channels.ts';
import type { FlowEndMessage } from '../channels.ts';
import { HttpDataPlane } from '../http-data-plane.ts';

/** What became of one flow ebb closed: whether the call that closes it resolved, and the flow's end message. */
export interface ClosedFlow {
  readonly resolved: boolean;
  readonly end: Pick<FlowEndMessage, 'reason' | 'resetByEbb'> | null;
}

export type Scenario = 'terminate-slow-client' | 'terminate-slow-target' | 'close-slow-client';

const LISTENER = 'arn:test:listener/held-fin';
const GROUP = 'arn:test:targetgroup/held-fin';
const SIZE = 32 * 1024 * 1024;
const DATA = Buffer.alloc(SIZE, 7);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Whether `p` settles within `ms`. */
function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  return Promise.race([p.then(() => true), sleep(ms).then(() => false)]);
}

/** One TCP listener on 127.0.0.1 to one target on `targetPort`. */
function snapshot(targetPort: number): RoutingSnapshot {
  const settings = {
    idleTimeoutMs: 5_000,
    clientHeaderTimeoutMs: 2_000,
    targetConnectTimeoutMs: 1_000,
    targetResponseTimeoutMs: 2_000,
    maxHeaderBytes: 16_384,
    maxHeadersCount: 50,
    xffMode: 'append',
    desyncMode: 'defensive',
    http2: true,
    tcpIdleTimeoutMs: 350_000,
  } as const;
  const target = { key: `${GROUP}|127.0.0.1|${targetPort}`, host: '127.0.0.1', port: targetPort, healthyForMs: 0 };
  return {
    version: 1,
    listeners: [{ arn: LISTENER, protocol: 'TCP', address: '127.0.0.1', port: 0, targetGroupArn: GROUP, settings, tls: null }],
    targetGroups: new Map([
      [
        GROUP,
        {
          arn: GROUP,
          name: 'held-fin',
          protocol: 'TCP',
          targetTls: null,
          proxyProtocolV2: false,
          connectionTermination: false,
          algorithm: 'round_robin',
          targets: [target],
          failOpen: false,
          slowStartMs: 0,
        },
      ],
    ]),
  };
}

/** Writes `data` to `s` as fast as it takes it; resolves once nothing more has been taken for 100 ms. */
async function fill(s: net.Socket, data: Buffer): Promise<void> {
  let written = 0;
  const go = (): void => {
    while (written < data.length) {
      const piece = data.subarray(written, written + 64 * 1024);
      written += piece.length;
      if (!s.write(piece)) {
        s.once('drain', go);
        return;
      }
    }
  };
  go();
  for (let last = -1; last !== written; ) {
    last = written;
    await sleep(100);
  }
}

async function run(scenario: Scenario, index: number): Promise<ClosedFlow> {
  const slowClient = scenario !== 'terminate-slow-target';
  // A target that never reads; it fills the flow when the client is the slow side.
  const targetFilled: Promise<void>[] = [];
  const target = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => {
    s.on('error', () => {});
    if (slowClient) targetFilled.push(fill(s, DATA));
  });
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  const targetPort = (target.address() as net.AddressInfo).port;

  const dp = new HttpDataPlane({ id: `held-fin-${index}`, log: () => {}, tunnelCloseGraceMs: 200 });
  const result = await dp.apply(snapshot(targetPort));
  if (result.listenerErrors.length > 0) throw new Error(JSON.stringify(result.listenerErrors));
  const ended: FlowEndMessage[] = [];
  diagnosticsChannel.subscribe(CHANNEL_NAMES.flowEnd, (m) => {
    if ((m as FlowEndMessage).dataPlaneId === dp.id) ended.push(m as FlowEndMessage);
  });

  const client = net.connect({ port: dp.boundPort(LISTENER) ?? 0, host: '127.0.0.1', allowHalfOpen: true });
  client.on('error', () => {});
  if (slowClient) {
    client.pause();
    while (targetFilled.length === 0) await sleep(5);
    await targetFilled[0];
  } else {
    await new Promise((r) => client.once('connect', r));
    await fill(client, DATA);
  }
  const closing = scenario === 'close-slow-client' ? dp.close(0) : dp.terminate(`${GROUP}|127.0.0.1|${targetPort}`);
  const resolved = await settlesWithin(closing, 1000);
  const end = ended[0];
  return { resolved, end: end === undefined ? null : { reason: end.reason, resetByEbb: end.resetByEbb } };
}

const scenarios: readonly Scenario[] = ['terminate-slow-client', 'terminate-slow-target', 'close-slow-client'];
const outcomes = await Promise.all(scenarios.map((scenario, i) => run(scenario, i)));
const results: Partial<Record<Scenario, ClosedFlow>> = {};
scenarios.forEach((scenario, i) => {
  const outcome = outcomes[i];
  if (outcome !== undefined) results[scenario] = outcome;
});
process.stdout.write(`${JSON.stringify(results)}\n`);
// Everything it opened goes with the process: a socket whose reset failed cannot be closed otherwise.
process.exit(0);
