/**
 * Helpers for the TCP data-plane tests: a snapshot with one TCP listener and one TCP group, TCP
 * backends that record their connections, a raw client that records what it sees in order, and a
 * subscriber to the flow channels.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import net from 'node:net';
import { CHANNEL_NAMES, type FlowEndMessage, type FlowOpenMessage } from '../../src/dataplane/channels.ts';
import { HttpDataPlane, type HttpDataPlaneOptions } from '../../src/dataplane/http-data-plane.ts';
import type { ListenerSettings, RoutingSnapshot } from '../../src/domain/routing-snapshot.ts';
import type { Cleanup } from '../support/cleanup.ts';
import { SETTINGS } from './dataplane-helpers.ts';

export const TCP_GROUP = 'arn:test:targetgroup/tcp';
export const TCP_LISTENER = 'arn:test:listener/tcp';
export const tcpKey = (port: number): string => `${TCP_GROUP}|127.0.0.1|${port}`;

export interface TcpSnapshotOptions {
  readonly port?: number;
  readonly settings?: Partial<ListenerSettings>;
  readonly proxyProtocolV2?: boolean;
  readonly connectionTermination?: boolean;
  readonly version?: number;
  /** No listener at all (it was removed). */
  readonly noListener?: boolean;
}

/** A snapshot with one TCP listener on 127.0.0.1 (port 0 unless given) forwarding to a TCP group of `backends`. */
export function tcpSnapshot(backends: readonly number[], opts: TcpSnapshotOptions = {}): RoutingSnapshot {
  return {
    version: opts.version ?? 1,
    listeners:
      opts.noListener === true
        ? []
        : [
            {
              arn: TCP_LISTENER,
              protocol: 'TCP',
              address: '127.0.0.1',
              port: opts.port ?? 0,
              targetGroupArn: TCP_GROUP,
              settings: { ...SETTINGS, tcpIdleTimeoutMs: 350_000, ...opts.settings },
              tls: null,
            },
          ],
    targetGroups: new Map([
      [
        TCP_GROUP,
        {
          arn: TCP_GROUP,
          name: 'tcp',
          protocol: 'TCP',
          targetTls: null,
          proxyProtocolV2: opts.proxyProtocolV2 ?? false,
          connectionTermination: opts.connectionTermination ?? false,
          algorithm: 'round_robin',
          targets: backends.map((p) => ({ key: tcpKey(p), host: '127.0.0.1', port: p, healthyForMs: 0 })),
          failOpen: false,
          slowStartMs: 0,
        },
      ],
    ]),
  };
}

let planes = 0;

/**
 * A data plane with `snap` applied and the TCP listener's port. Each has an id of its own, so a test
 * counts only its own flows' messages (a flow of an earlier test may still be closing).
 */
export async function startTcpPlane(c: Cleanup, snap: RoutingSnapshot, options: HttpDataPlaneOptions = {}, logs: object[] = []): Promise<{ dp: HttpDataPlane; port: number }> {
  const dp = new HttpDataPlane({ id: `tcp-test-${++planes}`, log: (l) => logs.push(l), tunnelCloseGraceMs: 200, ...options });
  c.add(() => dp.destroy());
  const r = await dp.apply(snap);
  if (r.listenerErrors.length > 0) throw new Error(JSON.stringify(r.listenerErrors));
  const port = dp.boundPort(TCP_LISTENER);
  if (port === null) throw new Error('TCP listener not open');
  return { dp, port };
}

/** The snapshot with its listener pinned to the port it was bound on (so `apply` keeps it). */
export function pinnedTcp(snap: RoutingSnapshot, port: number): RoutingSnapshot {
  return { ...snap, listeners: snap.listeners.map((l) => ({ ...l, port })) };
}

export interface TcpBackend {
  readonly name: string;
  readonly port: number;
  /** Every connection accepted, in order. */
  readonly sockets: net.Socket[];
  /** What each connection received, by index in `sockets`. */
  readonly received: Buffer[][];
  close(): Promise<void>;
}

/**
 * A TCP backend on 127.0.0.1:0 with half-open connections. By default it echoes every byte and ends
 * its side when the client ends its own; `onConnection` replaces that.
 */
export async function startTcpBackend(c: Cleanup, name: string, onConnection?: (s: net.Socket, index: number) => void): Promise<TcpBackend> {
  const sockets: net.Socket[] = [];
  const received: Buffer[][] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    const i = sockets.length;
    sockets.push(s);
    received.push([]);
    s.on('error', () => {});
    s.on('data', (b: Buffer) => received[i]?.push(b));
    if (onConnection !== undefined) onConnection(s, i);
    else {
      s.on('data', (b: Buffer) => s.write(b));
      s.on('end', () => s.end());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const close = async (): Promise<void> => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  c.add(close);
  return { name, port, sockets, received, close };
}

/** A client socket through ebb and what it saw, in order: data, 'end', an error code, 'close'. */
export interface TcpClient {
  readonly socket: net.Socket;
  /** The client's own port (what ebb sees as the client port). */
  readonly localPort: number;
  /** Everything received, as latin1 text. */
  text(): string;
  /** Bytes received. */
  readonly bytes: () => number;
  /** Events in order with their time (Date.now()): `end`, `error:<code>`, `close`. */
  readonly events: Array<{ readonly what: string; readonly at: number }>;
  readonly closed: Promise<void>;
  /** Whether an event of that name was seen. */
  saw(what: string): boolean;
}

/** Connects to `port` (half-open: the client's side stays writable after the server's FIN); resolves once connected or failed. */
export async function tcpConnect(c: Cleanup, port: number): Promise<TcpClient> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  c.add(() => socket.destroy());
  const chunks: Buffer[] = [];
  let bytes = 0;
  const events: Array<{ what: string; at: number }> = [];
  socket.on('data', (b: Buffer) => {
    chunks.push(b);
    bytes += b.length;
  });
  socket.on('end', () => events.push({ what: 'end', at: Date.now() }));
  socket.on('error', (e: NodeJS.ErrnoException) => events.push({ what: `error:${e.code ?? e.message}`, at: Date.now() }));
  const closed = new Promise<void>((resolve) =>
    socket.on('close', () => {
      events.push({ what: 'close', at: Date.now() });
      resolve();
    }),
  );
  // A flow ebb resets at once may fail before 'connect' is seen: the events say so.
  await new Promise<void>((resolve) => {
    socket.once('connect', resolve);
    socket.once('error', () => resolve());
  });
  return {
    socket,
    localPort: socket.localPort ?? 0,
    text: () => Buffer.concat(chunks).toString('latin1'),
    bytes: () => bytes,
    events,
    closed,
    saw: (what) => events.some((e) => e.what === what),
  };
}

/** Records the flow channels' messages of the data plane `dataPlaneId` while the test runs. */
export function recordFlows(c: Cleanup, dataPlaneId: string): { opened: FlowOpenMessage[]; ended: FlowEndMessage[] } {
  const opened: FlowOpenMessage[] = [];
  const ended: FlowEndMessage[] = [];
  const onOpen = (m: unknown): void => {
    if ((m as FlowOpenMessage).dataPlaneId === dataPlaneId) opened.push(m as FlowOpenMessage);
  };
  const onEnd = (m: unknown): void => {
    if ((m as FlowEndMessage).dataPlaneId === dataPlaneId) ended.push(m as FlowEndMessage);
  };
  diagnosticsChannel.subscribe(CHANNEL_NAMES.flowOpen, onOpen);
  diagnosticsChannel.subscribe(CHANNEL_NAMES.flowEnd, onEnd);
  c.add(() => {
    diagnosticsChannel.unsubscribe(CHANNEL_NAMES.flowOpen, onOpen);
    diagnosticsChannel.unsubscribe(CHANNEL_NAMES.flowEnd, onEnd);
  });
  return { opened, ended };
}
