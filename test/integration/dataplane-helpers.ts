/**
 * Helpers for the data plane tests: an HttpDataPlane applied with a one-listener snapshot, backends
 * behind it, raw and HTTP clients. Timing, ports, the HTTP client and backends come from test/support
 * and are re-exported here for the tests that import them from this module.
 */
import http from 'node:http';
import net from 'node:net';
import { WebSocket } from 'ws';
import type { ListenerSettings, RoutingSnapshot, TargetGroupRoute } from '../../src/domain/routing-snapshot.ts';
import { HttpDataPlane } from '../../src/dataplane/http-data-plane.ts';
import type { HttpDataPlaneOptions } from '../../src/dataplane/http-data-plane.ts';
import { startBackend as startSupportBackend, type Backend } from '../support/backends.ts';

export type { Backend } from '../support/backends.ts';
export { request, type Reply } from '../support/http-client.ts';
export { connectOutcome } from '../support/ports.ts';
export { sleep, waitFor, within } from '../support/timing.ts';

export const SETTINGS: ListenerSettings = {
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
};

export const GROUP = 'arn:test:targetgroup/web';
export const LISTENER = 'arn:test:listener/web';

export const keyOf = (port: number): string => `${GROUP}|127.0.0.1|${port}`;

/** A snapshot with one listener (port 0 unless given) forwarding to one group of backend ports. */
export function snapshot(
  backends: readonly number[],
  opts: { port?: number; algorithm?: TargetGroupRoute['algorithm']; settings?: Partial<ListenerSettings>; version?: number; noGroup?: boolean } = {},
): RoutingSnapshot {
  return {
    version: opts.version ?? 1,
    listeners: [
      {
        arn: LISTENER,
        protocol: 'HTTP',
        address: '127.0.0.1',
        port: opts.port ?? 0,
        targetGroupArn: opts.noGroup === true ? null : GROUP,
        settings: { ...SETTINGS, ...opts.settings },
        tls: null,
      },
    ],
    targetGroups: new Map([
      [
        GROUP,
        {
          arn: GROUP,
          name: 'web',
          protocol: 'HTTP',
          targetTls: null,
          proxyProtocolV2: false,
          connectionTermination: false,
          algorithm: opts.algorithm ?? 'round_robin',
          targets: backends.map((p) => ({ key: keyOf(p), host: '127.0.0.1', port: p, healthyForMs: 0 })),
          failOpen: false,
          slowStartMs: 0,
        },
      ],
    ]),
  };
}

/**
 * A backend on port 0 that records every request but health checks; `handler` answers them, else the
 * backend answers with its name. Idle keep-alive connections stay open 10 s rather than Node's 5, so a
 * target does not close a pooled connection while a test pauses.
 */
export function startBackend(name: string, handler?: http.RequestListener): Promise<Backend> {
  return startSupportBackend(name, { keepAliveTimeoutMs: 10_000, ...(handler === undefined ? {} : { handler }) });
}

/** A data plane applied with `snap`, and the port its listener got. `options` override the test defaults. */
export async function startPlane(
  snap: RoutingSnapshot,
  logs: object[] = [],
  options: HttpDataPlaneOptions = {},
): Promise<{ dp: HttpDataPlane; port: number }> {
  const dp = new HttpDataPlane({ id: 'test', log: (l) => logs.push(l), tunnelCloseGraceMs: 200, ...options });
  const r = await dp.apply(snap);
  if (r.listenerErrors.length > 0) throw new Error(JSON.stringify(r.listenerErrors));
  const port = dp.boundPort(LISTENER);
  if (port === null) throw new Error('listener not open');
  return { dp, port };
}

/** The same snapshot with the listener pinned to the port it was bound on (so `apply` keeps it). */
export function pinned(snap: RoutingSnapshot, port: number): RoutingSnapshot {
  return { ...snap, listeners: snap.listeners.map((l) => ({ ...l, port })) };
}

/** Sends raw bytes and collects everything until the server closes (or `ms` passes). */
export function rawRequest(port: number, bytes: string, ms = 2000): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve(`${out}<timeout>`);
    }, ms);
    s.setEncoding('latin1');
    s.on('data', (d: string) => (out += d));
    s.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    s.on('error', () => {});
    s.write(bytes, 'latin1');
  });
}

/** A backend on port 0 that answers each WebSocket text message with `echo:<message>`; `onRequest` serves plain HTTP. */
export async function startWsBackend(onRequest?: http.RequestListener): Promise<{ port: number; close: () => Promise<void> }> {
  const backend = await startSupportBackend('echo', onRequest === undefined ? {} : { handler: onRequest });
  return { port: backend.port, close: () => backend.close() };
}

export interface WsClient {
  readonly client: WebSocket;
  /** Messages received, as text. */
  readonly messages: string[];
  /** Resolves when the connection closes, with the close code and reason and when (Date.now()). */
  readonly closed: Promise<{ code: number; reason: string; at: number }>;
}

/** A WebSocket client connected through `port`; rejects if the handshake fails. */
export async function openWs(port: number, path = '/'): Promise<WsClient> {
  const client = new WebSocket(`ws://127.0.0.1:${port}${path}`);
  const messages: string[] = [];
  client.on('message', (m) => messages.push(m.toString()));
  const closed = new Promise<{ code: number; reason: string; at: number }>((resolve) =>
    client.on('close', (code, reason) => resolve({ code, reason: reason.toString(), at: Date.now() })),
  );
  await new Promise<void>((resolve, reject) => {
    client.once('open', () => resolve());
    client.once('error', reject);
  });
  return { client, messages, closed };
}
