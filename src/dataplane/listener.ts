import net from 'node:net';
import type tls from 'node:tls';
import type { ListenerRoute } from '../domain/routing-snapshot.ts';
import type { TlsFacts } from './channels.ts';
import { SlotSet, slotField } from '../shared/slot-set.ts';
import { ClientConnection } from './client-connection.ts';
import { attachConnectionLimit } from './connection-limit.ts';
import type { ConnectionLimit } from './connection-limit.ts';
import type { ListenerContext, ProxyHost } from './http-proxy.ts';
import { Http2Sessions } from './http2/http2-sessions.ts';
import { EXCLUSIVE_BINDING, listenOn, type ListenBinding } from './listen-mode.ts';
import { TlsFront } from './tls/tls-front.ts';
import type { Tunnel } from './websocket-tunnel.ts';

/**
 * One HTTP or HTTPS listener of a data plane: a TCP server whose connections ebb serves itself
 * (`ClientConnection`). An HTTPS listener hands each accepted socket to its TLS front (tls/tls-front.ts)
 * first; after the handshake an `http/1.1` connection (or one without ALPN) is served exactly as a plain
 * one, with the handshake's facts, and an `h2` one (offered while `routing.http2.enabled`) by its HTTP/2
 * sessions (http2/http2-sessions.ts), which get GOAWAY when the listener closes. A listener whose address or port changes is closed and opened again; one
 * that disappears stops accepting at once, its idle keep-alive connections are closed, and the
 * connections still busy get `Connection: close` on their response and end after it. A removal has
 * a deadline: what is still open then is closed (tunnels with a 1001 close frame first).
 */
export class Listener implements ListenerContext {
  closing = false;
  localPort: number;
  readonly tunnels = new Set<Tunnel>();
  /** Every client connection open (a SlotSet: thousands come and go each second). */
  readonly connections = new SlotSet<ClientConnection>(slotField('registrySlot'));
  readonly server: net.Server;
  #closedPromise: Promise<void> | null = null;
  #ticker: NodeJS.Timeout | null = null;
  /** The ticker's period (0: not running). */
  #tickMs = 0;
  /** HTTPS: the handshakes, and the `h2` connections; null for HTTP. */
  readonly #front: TlsFront | null;
  readonly #http2: Http2Sessions | null;

  constructor(
    public route: ListenerRoute,
    host: ProxyHost,
    connectionLimit: ConnectionLimit,
    private readonly binding: ListenBinding = EXCLUSIVE_BINDING,
  ) {
    this.localPort = route.port;
    const https = route.protocol === 'HTTPS';
    this.#http2 = https ? new Http2Sessions(host, this) : null;
    const front = https ? this.#tlsFront(route, host) : null;
    this.#front = front;
    // allowHalfOpen: ebb decides itself what a client's end means (see ClientConnection).
    this.server = net.createServer(
      { allowHalfOpen: true, noDelay: true },
      front === null ? (socket) => new ClientConnection(socket, host, this, this.connections) : (socket) => front.accept(socket),
    );
    // Client connections stay below what the descriptor limit allows, and each one refused is counted and logged.
    attachConnectionLimit(this.server, connectionLimit, route.arn, (line) => host.log({ dataPlane: host.id, ...line }));
  }

  #tlsFront(route: ListenerRoute, host: ProxyHost): TlsFront {
    return new TlsFront(route, {
      dataPlaneId: host.id,
      log: (line) => host.log(line),
      alpn: offeredProtocols,
      onSecure: (socket, facts, alpn) => this.#secure(socket, facts, alpn, host),
    });
  }

  /** A completed handshake: HTTP/1.1 (the default without ALPN) is served here; `h2` goes to the HTTP/2 sessions. */
  #secure(socket: tls.TLSSocket, facts: TlsFacts, alpn: string | null, host: ProxyHost): void {
    if (alpn === 'h2' && this.#http2 !== null) {
      // An HTTP/2 connection has no half-close: the client's end ends it, as on Node's own http2 servers.
      socket.allowHalfOpen = false;
      this.#http2.accept(socket, facts);
    } else new ClientConnection(socket, host, this, this.connections, facts);
  }

  /** Binds; resolves with null or the bind error (or, for HTTPS, why its certificates cannot be served). */
  listen(): Promise<NodeJS.ErrnoException | null> {
    if (this.#front?.problem != null) return Promise.resolve(this.#front.problem);
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
        this.#startTicker();
        resolve(null);
      };
      server.once('error', onError);
      server.once('listening', onListening);
      listenOn(server, this.binding, this.route.address, this.route.port);
    });
  }

  /** HTTP/1.1 connections and HTTP/2 sessions open now. */
  get openConnections(): number {
    return this.connections.size + (this.#http2?.size ?? 0);
  }

  /** The bound port (useful with port 0 in tests). */
  get port(): number {
    const a = this.server.address();
    return a !== null && typeof a === 'object' ? a.port : this.route.port;
  }

  /** New settings for the same address and port (connections read them per request). */
  update(route: ListenerRoute): void {
    this.route = route;
    this.#front?.update(route);
    // Snapshots are applied many times a second at times (every health change, every API change):
    // restarting the ticker on each would keep it from ever ticking.
    if (this.server.listening && this.#tickMs !== tickMsOf(route)) this.#startTicker();
  }

  /**
   * Stops accepting; idle keep-alive connections close now, busy ones after their response. Resolves
   * when every connection of this listener has closed. With a `timeoutMs`, what is still open then
   * is closed: tunnels politely (a 1001 close frame, `graceMs` to answer), then every connection.
   */
  close(timeoutMs = Infinity, graceMs = 500): Promise<void> {
    if (this.#closedPromise !== null) return this.#closedPromise;
    this.closing = true;
    this.#closedPromise = new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      let timer: NodeJS.Timeout | null = null;
      this.server.close(() => {
        if (timer !== null) clearTimeout(timer);
        this.#stopTicker();
        resolve();
      });
      for (const c of [...this.connections]) c.closeIfIdle();
      this.#front?.close();
      this.#http2?.goAway();
      if (Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => void this.#closeRemaining(graceMs), Math.max(0, timeoutMs));
        timer.unref();
      }
    });
    return this.#closedPromise;
  }

  /** At the close deadline: tunnels get a close frame and `graceMs`, then every connection is closed. */
  async #closeRemaining(graceMs: number): Promise<void> {
    await Promise.all([...this.tunnels].map((t) => t.terminate(graceMs)));
    this.destroy();
  }

  /** Every connection closed now. */
  destroy(): void {
    this.closing = true;
    if (this.server.listening) this.server.close();
    this.#stopTicker();
    this.#front?.destroy();
    this.#http2?.cut();
    for (const c of [...this.connections]) c.destroy();
    for (const t of [...this.tunnels]) t.close();
  }

  /**
   * The client header and idle timeouts of every connection, checked on one ticker rather than on a timer
   * per connection (client-connection.ts), with the timeouts of the current settings: a timeout is acted
   * on at most two ticks late.
   */
  #startTicker(): void {
    this.#stopTicker(); // never two: an update between listen() and 'listening' would start one early
    this.#tickMs = tickMsOf(this.route);
    this.#ticker = setInterval(() => {
      const now = performance.now();
      const { clientHeaderTimeoutMs, idleTimeoutMs } = this.route.settings;
      for (const c of this.connections) c.checkTimeouts(now, clientHeaderTimeoutMs, idleTimeoutMs);
    }, this.#tickMs);
    this.#ticker.unref();
  }

  #stopTicker(): void {
    if (this.#ticker !== null) clearInterval(this.#ticker);
    this.#ticker = null;
    this.#tickMs = 0;
  }
}

/** A quarter of the header timeout or an eighth of the idle timeout, whichever is shorter (20 ms to 1 s). */
function tickMsOf(route: ListenerRoute): number {
  const { clientHeaderTimeoutMs, idleTimeoutMs } = route.settings;
  return Math.min(1000, Math.max(20, Math.floor(Math.min(clientHeaderTimeoutMs / 4, idleTimeoutMs / 8))));
}

const H2_FIRST: readonly string[] = ['h2', 'http/1.1'];
const HTTP1_ONLY: readonly string[] = ['http/1.1'];

/** ALPN on an HTTPS listener: `h2` first while the load balancer's `routing.http2.enabled`, and `http/1.1`. */
function offeredProtocols(route: ListenerRoute): readonly string[] {
  return route.settings.http2 ? H2_FIRST : HTTP1_ONLY;
}
