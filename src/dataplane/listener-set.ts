import http from 'node:http';
import type { Socket } from 'node:net';
import type { ListenerRoute, ListenerSettings } from '../domain/routing-snapshot.ts';
import { clientErrorChannel } from './channels.ts';
import type { ClientErrorMessage } from './channels.ts';
import { closingAnswer } from './errors.ts';
import { EbbResponse, handleRequest, handleUpgrade, refuseConnection } from './http-proxy.ts';
import type { ListenerContext, ProxyHost } from './http-proxy.ts';
import type { Tunnel } from './websocket-tunnel.ts';

/**
 * The listening servers of one data plane, one `http.Server` per HTTP listener of the snapshot.
 * A listener whose address or port changes is closed and opened again; one that disappears stops
 * accepting at once, its idle keep-alive connections are closed, and the connections still busy
 * get `Connection: close` on their response and end after it. A removal has a deadline: what is
 * still open then is closed (tunnels with a 1001 close frame first).
 */
export class Listener implements ListenerContext {
  closing = false;
  localPort: number;
  readonly tunnels = new Set<Tunnel>();
  readonly server: http.Server;
  private closedPromise: Promise<void> | null = null;

  constructor(
    public route: ListenerRoute,
    host: ProxyHost,
  ) {
    this.localPort = route.port;
    const s = route.settings;
    const server = http.createServer({
      ServerResponse: EbbResponse as unknown as typeof http.ServerResponse,
      // No limit on a whole request: the idle timeout (server.timeout, see applySettings) bounds inactivity instead.
      requestTimeout: 0,
      connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(s.clientHeaderTimeoutMs / 4))),
      noDelay: true,
      // Checked by request-guard after the header count, so a truncated list answers 431, not 400.
      requireHostHeader: false,
      joinDuplicateHeaders: false,
      insecureHTTPParser: false,
    });
    this.server = server;
    applySettings(server, s);
    server.on('request', (req: http.IncomingMessage, res: EbbResponse) => handleRequest(host, this, req, res));
    server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => handleUpgrade(host, this, req, socket, head));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => onClientError(host, this, err, socket));
    server.on('timeout', onSocketTimeout);
  }

  /** Binds; resolves with null or the bind error. */
  listen(): Promise<NodeJS.ErrnoException | null> {
    return new Promise((resolve) => {
      const server = this.server;
      const onError = (err: NodeJS.ErrnoException): void => {
        server.off('listening', onListening);
        resolve(err);
      };
      const onListening = (): void => {
        server.off('error', onError);
        server.on('error', () => {}); // errors after bind (EMFILE on accept) are not fatal
        this.localPort = this.port;
        resolve(null);
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen({ host: this.route.address, port: this.route.port, exclusive: true });
    });
  }

  /** The bound port (useful with port 0 in tests). */
  get port(): number {
    const a = this.server.address();
    return a !== null && typeof a === 'object' ? a.port : this.route.port;
  }

  /** New settings for the same address and port. */
  update(route: ListenerRoute): void {
    this.route = route;
    applySettings(this.server, route.settings);
  }

  /**
   * Stops accepting; idle keep-alive connections close now, busy ones after their response. Resolves
   * when every connection of this listener has closed. With a `timeoutMs`, what is still open then
   * is closed: tunnels politely (a 1001 close frame, `graceMs` to answer), then every connection.
   */
  close(timeoutMs = Infinity, graceMs = 500): Promise<void> {
    if (this.closedPromise !== null) return this.closedPromise;
    this.closing = true;
    this.closedPromise = new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      let timer: NodeJS.Timeout | null = null;
      this.server.close(() => {
        if (timer !== null) clearTimeout(timer);
        resolve();
      });
      this.server.closeIdleConnections();
      if (Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => void this.closeRemaining(graceMs), Math.max(0, timeoutMs));
        timer.unref();
      }
    });
    return this.closedPromise;
  }

  /** At the close deadline: tunnels get a close frame and `graceMs`, then every connection is closed. */
  private async closeRemaining(graceMs: number): Promise<void> {
    await Promise.all([...this.tunnels].map((t) => t.terminate(graceMs)));
    this.destroy();
  }

  /** Every connection closed now. */
  destroy(): void {
    this.closing = true;
    if (this.server.listening) this.server.close();
    this.server.closeAllConnections();
    for (const t of [...this.tunnels]) t.close();
  }
}

/** The listener's limits and timeouts; Node reads each of them per connection, so they need not be constructor options. */
function applySettings(server: http.Server, s: ListenerSettings): void {
  // `idle_timeout`: an inactivity timeout on every client connection (Node's socket timeout,
  // refreshed by each read and write), during a request as between requests. New settings apply to
  // connections accepted after the change.
  server.timeout = s.idleTimeoutMs;
  server.keepAliveTimeout = s.idleTimeoutMs;
  server.headersTimeout = s.clientHeaderTimeoutMs;
  // One more than the limit, so that reaching beyond the limit is visible (request-guard answers 431).
  server.maxHeadersCount = s.maxHeadersCount + 1;
  (server as { maxHeaderSize?: number }).maxHeaderSize = s.maxHeaderBytes;
}

/**
 * A client connection was inactive for the idle timeout. Between requests it is closed; during a
 * proxied request its exchange decides (see `Exchange.clientIdle`). Upgraded connections have
 * their own handler (the tunnel's).
 */
function onSocketTimeout(socket: Socket): void {
  const res = (socket as { _httpMessage?: EbbResponse | null })._httpMessage;
  const exchange = res === undefined || res === null ? null : res.exchange;
  if (exchange !== null) exchange.clientIdle();
  else socket.destroy();
}

/** A request line with a well-formed version llhttp does not speak (`HTTP/3.0`), or the HTTP/2 preface. */
const OTHER_VERSION = /^(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+ \S+ HTTP\/[0-9]\.[0-9]\r?\n|PRI \* HTTP\/2\.0\r\n)/;

/**
 * With a 'clientError' listener Node no longer answers malformed requests itself: answer here
 * (431 for an oversized head, 408 for a head that took too long, 505 for an HTTP version other
 * than 1.0 and 1.1, 400 otherwise), then close.
 */
function onClientError(host: ProxyHost, ctx: ListenerContext, err: NodeJS.ErrnoException, socket: Socket): void {
  const code = err.code ?? '';
  const status = clientErrorStatus(code, err);
  if (clientErrorChannel.hasSubscribers) {
    clientErrorChannel.publish({ dataPlaneId: host.id, listenerArn: ctx.route.arn, status, reason: code } satisfies ClientErrorMessage);
  }
  const busy = (socket as { _httpMessage?: http.ServerResponse | null })._httpMessage ?? null;
  if (code === 'ECONNRESET' || !socket.writable || busy?.headersSent === true) {
    socket.destroy();
    return;
  }
  if (busy !== null) {
    // A request on this connection is still being answered: a status written now would be taken as
    // its answer. Let that answer finish, forward nothing more, then close.
    refuseConnection(socket);
    busy.shouldKeepAlive = false;
    busy.once('finish', () => socket.destroy());
    busy.once('close', () => socket.destroy());
    host.log({ level: 'info', msg: 'client error after a request in flight', dataPlane: host.id, listener: ctx.route.arn, reason: code });
    return;
  }
  host.log({ level: 'info', msg: 'client error', dataPlane: host.id, listener: ctx.route.arn, status, reason: code });
  socket.end(closingAnswer(status), () => socket.destroy());
  setTimeout(() => socket.destroy(), 1000).unref();
}

function clientErrorStatus(code: string, err: NodeJS.ErrnoException): number {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return 431;
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return 408;
    case 'HPE_INVALID_VERSION':
    case 'HPE_PAUSED_H2_UPGRADE':
      return isOtherVersion(err) ? 505 : 400;
    default:
      return 400;
  }
}

function isOtherVersion(err: NodeJS.ErrnoException): boolean {
  const raw = (err as { rawPacket?: unknown }).rawPacket;
  return Buffer.isBuffer(raw) && OTHER_VERSION.test(raw.toString('latin1', 0, Math.min(raw.length, 8192)));
}
