import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import type { ListenerSettings, RoutingSnapshot, TargetGroupRoute } from '../../src/domain/routing-snapshot.ts';
import { HttpDataPlane } from '../../src/dataplane/http-data-plane.ts';
import type { HttpDataPlaneOptions } from '../../src/dataplane/http-data-plane.ts';

export const SETTINGS: ListenerSettings = {
  idleTimeoutMs: 5_000,
  clientHeaderTimeoutMs: 2_000,
  targetConnectTimeoutMs: 1_000,
  targetResponseTimeoutMs: 2_000,
  maxHeaderBytes: 16_384,
  maxHeadersCount: 50,
  xffMode: 'append',
  desyncMode: 'defensive',
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
      },
    ],
    targetGroups: new Map([
      [
        GROUP,
        {
          arn: GROUP,
          name: 'web',
          algorithm: opts.algorithm ?? 'round_robin',
          targets: backends.map((p) => ({ key: keyOf(p), host: '127.0.0.1', port: p, healthyForMs: 0 })),
          failOpen: false,
          slowStartMs: 0,
        },
      ],
    ]),
  };
}

export interface Backend {
  readonly port: number;
  readonly server: http.Server;
  /** Requests seen, with their headers. */
  readonly seen: Array<{ url: string; version: string; headers: http.IncomingHttpHeaders; raw: string[] }>;
  /** Number of TCP connections currently open to it. */
  openConnections(): number;
  close(): Promise<void>;
}

/** A node:http backend on port 0; `handler` defaults to answering its own port. */
export async function startBackend(name: string, handler?: http.RequestListener): Promise<Backend> {
  const seen: Backend['seen'] = [];
  let open = 0;
  const server = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', version: req.httpVersion, headers: req.headers, raw: req.rawHeaders });
    if (handler !== undefined) return handler(req, res);
    res.setHeader('X-Backend', name);
    res.end(name);
  });
  server.keepAliveTimeout = 10_000;
  server.on('connection', (s: net.Socket) => {
    open++;
    s.on('close', () => open--);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    server,
    seen,
    openConnections: () => open,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
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

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request, on a new connection unless `agent` (a keep-alive agent keeps the client connection) is given. */
export function request(port: number, opts: http.RequestOptions & { body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/', agent: false, ...opts }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
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

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until `cond()` holds, checking every 10 ms, up to `ms`. */
export async function waitFor(cond: () => boolean, ms = 2000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(10);
  }
  return cond();
}

/** Resolves with the value, or 'timeout' after `ms`. */
export function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  return Promise.race([p, sleep(ms).then(() => 'timeout' as const)]);
}

/** Opens a TCP connection to `port`: 'connected', or the error code (ECONNREFUSED once nothing listens). */
export function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
}

/** A WebSocket backend on port 0 that answers each message with `echo:<message>`; `onRequest` serves plain HTTP. */
export async function startWsBackend(onRequest?: http.RequestListener): Promise<{ port: number; close: () => Promise<void> }> {
  const server = http.createServer(onRequest);
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`echo:${m.toString()}`)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
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
