/**
 * HTTP backends (targets) for ebb to send requests to: node:http on 127.0.0.1:0, recording what
 * reaches them.
 *
 * Built in, each backend answers `/health` 200 (503 while `healthy` is false) without recording it,
 * `/slow?ms=N` after N ms, anything else at once once the request body has arrived (body: its name,
 * header X-Backend: its name), and echoes WebSocket messages (text as `<name>:<message>`, binary as
 * sent). A `handler` replaces the built-in answers for everything but health checks and WebSockets.
 */
import http from 'node:http';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import type { Cleanup } from './cleanup.ts';

export interface SeenRequest {
  readonly url: string;
  /** The HTTP version the request arrived with ('1.1', '1.0'). */
  readonly version: string;
  readonly headers: http.IncomingHttpHeaders;
  /** The header lines as they arrived: name, value, name, value, … */
  readonly raw: string[];
  readonly at: number;
  /** When the response was fully written (0 while running). */
  finishedAt: number;
  /** The connection closed before the response was written. */
  aborted: boolean;
}

export interface Backend {
  readonly name: string;
  readonly port: number;
  readonly server: http.Server;
  /** Requests other than health checks, in arrival order. */
  readonly seen: SeenRequest[];
  /** Health checks answered, and when each arrived. */
  healthChecks: number;
  readonly healthCheckTimes: number[];
  /** Answer health checks with 200 (true) or 503 (false). */
  healthy: boolean;
  /** WebSocket connections accepted, and how many are open. */
  wsAccepted: number;
  wsOpen: number;
  /** Requests currently being answered. */
  inFlight(): number;
  /** TCP connections open to it now (ebb's pooled connections, health checks, tunnels). */
  openConnections(): number;
  /** When the last non-health response was finished or aborted (0 if none). */
  lastFinishedAt(): number;
  close(): Promise<void>;
}

export interface BackendOptions {
  /** Closes the backend at cleanup. */
  readonly cleanup?: Cleanup;
  /** Answers each request other than a health check, once it is recorded, instead of the built-in answers. */
  readonly handler?: http.RequestListener;
  /** How long an idle keep-alive connection stays open; Node's default (5 s) unless given. */
  readonly keepAliveTimeoutMs?: number;
}

/** The longest a `/slow` request may ask to wait, so a typo cannot hold a test for minutes. */
const MAX_SLOW_MS = 30_000;

/** A backend on 127.0.0.1:0 (see the file comment for what it answers). */
export async function startBackend(name: string, options: BackendOptions = {}): Promise<Backend> {
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer();
  if (options.keepAliveTimeoutMs !== undefined) server.keepAliveTimeout = options.keepAliveTimeoutMs;
  let open = 0;
  const backend: Backend = {
    name,
    port: 0,
    server,
    seen: [],
    healthChecks: 0,
    healthCheckTimes: [],
    healthy: true,
    wsAccepted: 0,
    wsOpen: 0,
    inFlight: () => backend.seen.filter((r) => r.finishedAt === 0 && !r.aborted).length,
    lastFinishedAt: () => Math.max(0, ...backend.seen.map((r) => r.finishedAt)),
    openConnections: () => open,
    close: async () => undefined,
  };
  server.on('connection', (socket: net.Socket) => {
    open++;
    socket.on('close', () => open--);
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    // A request target that URL cannot parse (a hostile test's `//`) is answered like any other.
    const target = req.url ?? '/';
    const url = new URL(URL.canParse(target, 'http://backend') ? target : '/', 'http://backend');
    if (url.pathname === '/health') {
      backend.healthChecks++;
      backend.healthCheckTimes.push(Date.now());
      res.statusCode = backend.healthy ? 200 : 503;
      res.end(backend.healthy ? 'ok' : 'failing');
      return;
    }
    const seen: SeenRequest = { url: req.url ?? '', version: req.httpVersion, headers: req.headers, raw: req.rawHeaders, at: Date.now(), finishedAt: 0, aborted: false };
    backend.seen.push(seen);
    res.on('finish', () => (seen.finishedAt = Date.now()));
    res.on('close', () => {
      if (seen.finishedAt === 0) {
        seen.aborted = true;
        seen.finishedAt = Date.now();
      }
    });
    if (options.handler !== undefined) {
      options.handler(req, res);
      return;
    }
    const answer = (): void => {
      res.setHeader('X-Backend', name);
      res.setHeader('Content-Type', 'text/plain');
      res.end(name);
    };
    req.resume();
    req.on('end', () => {
      if (url.pathname !== '/slow') return answer();
      const ms = Math.min(Number(url.searchParams.get('ms') ?? '1000'), MAX_SLOW_MS);
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (!res.destroyed) answer();
      }, ms);
      timers.add(timer);
      res.on('close', () => {
        clearTimeout(timer);
        timers.delete(timer);
      });
    });
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => {
    backend.wsAccepted++;
    backend.wsOpen++;
    ws.on('close', () => backend.wsOpen--);
    ws.on('error', () => undefined);
    ws.on('message', (data, isBinary) => ws.send(isBinary ? data : `${name}:${String(data)}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  (backend as { port: number }).port = (server.address() as AddressInfo).port;
  backend.close = () =>
    new Promise<void>((resolve) => {
      for (const t of timers) clearTimeout(t);
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      server.close(() => resolve());
    });
  options.cleanup?.add(() => backend.close());
  return backend;
}
