import net from 'node:net';
import type { ListenerRoute } from '../../domain/routing-snapshot.ts';
import { realClock } from '../../shared/clock.ts';
import { SlotSet, slotField } from '../../shared/slot-set.ts';
import type { TlsFacts } from '../channels.ts';
import { attachConnectionLimit } from '../connection-limit.ts';
import type { ConnectionLimit } from '../connection-limit.ts';
import type { ProxyHost } from '../http-proxy.ts';
import { EXCLUSIVE_BINDING, listenOn, type ListenBinding } from '../listen-mode.ts';
import { TlsFront } from '../tls/tls-front.ts';
import { IdleSweep } from './idle-sweep.ts';
import { readInboundProxyHeader } from './inbound-proxy.ts';
import type { ProxiedClient } from './inbound-proxy.ts';
import { TcpFlow } from './tcp-flow.ts';
import type { FlowListener } from './tcp-flow.ts';

/**
 * One TCP or TLS listener of a data plane (NLB's `TCP` and `TLS` protocols): each accepted connection
 * is a `TcpFlow` to one target of the listener's group. A TLS listener hands each accepted socket to
 * its TLS front first (tls/tls-front.ts: certificates by SNI, the security policy, the handshake
 * timeout); the flow starts once the handshake is done and carries the decrypted bytes, in plain TCP,
 * to the target (NLB's TLS listener to a TCP group). A listener that leaves the snapshot stops accepting at once;
 * its flows go on until the close deadline, then are closed politely (FIN both ways, RST after the
 * grace) and counted as 'shutdown'. A flow's idle timeout is the listener's `tcp.idle_timeout.seconds`,
 * on one sweep for all its flows. It is a `ServedListener` (listener-kinds.ts; not imported here, which would
 * be an import cycle).
 */
export class TcpListener implements FlowListener {
  closing = false;
  localPort: number;
  readonly protocol: 'tcp' | 'tls';
  /** A SlotSet: flows come and go by the thousand (shared/slot-set.ts). */
  readonly flows = new SlotSet<TcpFlow>(slotField('listenerSlot'));
  readonly server: net.Server;
  readonly #sweep: IdleSweep<TcpFlow>;
  /** TLS: the handshakes; null for TCP. */
  readonly #front: TlsFront | null;
  /** TLS with a PROXY header in front: the client each header named, by the connection's remote address, until its handshake ends. */
  readonly #proxiedClients = new Map<string, ProxiedClient>();
  /** Connections refused for a missing or bad PROXY header, and when that was last logged. */
  #headersRefused = 0;
  #refusalLoggedAt = -Infinity;
  #closedPromise: Promise<void> | null = null;
  #serverClosed = false;
  #resolveClosed: (() => void) | null = null;
  #closeTimer: NodeJS.Timeout | null = null;

  constructor(
    public route: ListenerRoute,
    host: ProxyHost,
    connectionLimit: ConnectionLimit,
    private readonly binding: ListenBinding = EXCLUSIVE_BINDING,
  ) {
    this.localPort = route.port;
    this.protocol = route.protocol === 'TLS' ? 'tls' : 'tcp';
    this.#sweep = new IdleSweep(realClock, route.settings.tcpIdleTimeoutMs);
    const front =
      route.protocol === 'TLS'
        ? new TlsFront(route, {
            dataPlaneId: host.id,
            log: (line) => host.log(line),
            // NLB's TLS listeners take an ALPN policy; ebb's is None (the control plane refuses others).
            alpn: () => [],
            onSecure: (socket, facts) => this.#startFlow(socket, host, facts, this.#takeProxiedClient(socket)),
          })
        : null;
    this.#front = front;
    // allowHalfOpen: a client's FIN is passed to the target while the target's answer still comes back.
    this.server = net.createServer(
      { allowHalfOpen: true, noDelay: true },
      (socket) => this.#accepted(socket, host),
    );
    attachConnectionLimit(this.server, connectionLimit, route.arn, (line) => host.log({ dataPlane: host.id, ...line }));
  }

  /** A connection: its PROXY header first when the listener expects one, then its TLS handshake on a TLS listener, then its flow. */
  #accepted(socket: net.Socket, host: ProxyHost): void {
    const settings = this.route.settings;
    if (settings.acceptProxyProtocol !== true) {
      this.#headerRead(socket, host, null);
      return;
    }
    readInboundProxyHeader(socket, settings.clientHeaderTimeoutMs, (r) => {
      if (!r.ok) this.#headerRefused(host, r.reason);
      else if (this.closing) socket.destroy();
      else this.#headerRead(socket, host, r.client);
    });
  }

  #headerRead(socket: net.Socket, host: ProxyHost, client: ProxiedClient | null): void {
    const front = this.#front;
    if (front === null) {
      this.#startFlow(socket, host, null, client);
      return;
    }
    if (client !== null) {
      const key = `${socket.remoteAddress}|${socket.remotePort}`;
      this.#proxiedClients.set(key, client);
      socket.once('close', () => {
        if (this.#proxiedClients.get(key) === client) this.#proxiedClients.delete(key);
      });
    }
    front.accept(socket);
  }

  #takeProxiedClient(socket: net.Socket): ProxiedClient | null {
    if (this.#proxiedClients.size === 0) return null;
    const key = `${socket.remoteAddress}|${socket.remotePort}`;
    const client = this.#proxiedClients.get(key) ?? null;
    this.#proxiedClients.delete(key);
    return client;
  }

  /** At most one log line per 10 s per listener, with the count so far: a client sending junk cannot flood the log. */
  #headerRefused(host: ProxyHost, reason: string): void {
    this.#headersRefused++;
    const now = performance.now();
    if (now - this.#refusalLoggedAt < 10_000) return;
    this.#refusalLoggedAt = now;
    host.log({
      level: 'warn',
      msg: 'connection refused: no valid PROXY protocol header',
      dataPlane: host.id,
      listener: this.route.arn,
      reason,
      refusedSoFar: this.#headersRefused,
      action: 'the listener expects every connection to start with a PROXY protocol header from the load balancer in front of ebb',
    });
  }

  #startFlow(socket: net.Socket, host: ProxyHost, tls: TlsFacts | null, client: ProxiedClient | null): void {
    const flow = new TcpFlow(socket, host, this, tls, client);
    this.flows.add(flow);
    this.#sweep.add(flow);
    flow.start();
  }

  /** Binds; resolves with null or the bind error (or, for TLS, why its certificates cannot be served). */
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
        resolve(null);
      };
      server.once('error', onError);
      server.once('listening', onListening);
      listenOn(server, this.binding, this.route.address, this.route.port);
    });
  }

  /** Flows open now. */
  get openConnections(): number {
    return this.flows.size;
  }

  get port(): number {
    const a = this.server.address();
    return a !== null && typeof a === 'object' ? a.port : this.route.port;
  }

  /** New settings for the same address and port: new flows read them, and the idle timeout applies to every flow. */
  update(route: ListenerRoute): void {
    this.route = route;
    this.#front?.update(route);
    this.#sweep.setTimeoutMs(route.settings.tcpIdleTimeoutMs);
  }

  flowClosed(flow: TcpFlow): void {
    this.flows.delete(flow);
    this.#sweep.delete(flow);
    this.#checkClosed();
  }

  /**
   * Stops accepting; open flows go on. Resolves when every flow has ended. With a `timeoutMs`, the
   * flows still open then are closed politely (FIN, `graceMs` to close, then RST).
   */
  close(timeoutMs = Infinity, graceMs = 500): Promise<void> {
    if (this.#closedPromise !== null) return this.#closedPromise;
    this.closing = true;
    // Handshakes under way are closed: no byte has gone to a target on them yet.
    this.#front?.close();
    this.#closedPromise = new Promise((resolve) => {
      this.#resolveClosed = resolve;
      if (this.server.listening) this.server.close(() => this.#serverDone());
      else this.#serverDone();
      if (Number.isFinite(timeoutMs)) {
        this.#closeTimer = setTimeout(() => {
          for (const f of [...this.flows]) void f.terminate(graceMs);
        }, Math.max(0, timeoutMs));
        this.#closeTimer.unref();
      }
    });
    return this.#closedPromise;
  }

  #serverDone(): void {
    this.#serverClosed = true;
    this.#checkClosed();
  }

  #checkClosed(): void {
    if (!this.#serverClosed || this.flows.size > 0 || this.#resolveClosed === null) return;
    if (this.#closeTimer !== null) clearTimeout(this.#closeTimer);
    this.#sweep.stop();
    const resolve = this.#resolveClosed;
    this.#resolveClosed = null;
    resolve();
  }

  /** Every flow reset now. */
  destroy(): void {
    this.closing = true;
    if (this.server.listening) this.server.close();
    this.#front?.destroy();
    for (const f of [...this.flows]) f.close();
    this.#sweep.stop();
  }
}
