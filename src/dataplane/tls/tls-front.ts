import { randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import type { ListenerCertificate, ListenerRoute, ListenerSettings, ListenerTls } from '../../domain/routing-snapshot.ts';
import { ebbError } from '../../shared/errors.ts';
import type { EbbError } from '../../shared/errors.ts';
import { tlsErrorChannel } from '../channels.ts';
import type { TlsErrorMessage, TlsFacts } from '../channels.ts';
import { CertificateIndex } from './certificate-selection.ts';
import { classifyHandshakeError } from './handshake-errors.ts';
import { SecureContextCache, contextOptions, policyKey } from './secure-contexts.ts';

/**
 * The TLS front of an HTTPS or TLS listener: the listener keeps its own `net.Server` (one accept path
 * for every protocol: the connection limit, the same bind), and hands each accepted socket to
 * `accept`. The front runs the handshake and calls `hooks.onSecure(socket, facts, alpn)` with the
 * decrypted `tls.TLSSocket`, what the handshake settled (`TlsFacts`: cipher, protocol, SNI, the ARN of
 * the certificate presented) and the ALPN protocol agreed (or null). Failed handshakes are closed and
 * published on `tlsErrorChannel`; nothing a client sends can throw out of here.
 *
 * Use (a TLS listener of the TCP data plane does the same with its flows):
 *
 *     const front = new TlsFront(route, { dataPlaneId, log, alpn: () => [], onSecure: (s, facts) => startFlow(s, facts) });
 *     if (front.problem !== null) → refuse to listen, with front.problem (a coded EbbError)
 *     server = net.createServer({ allowHalfOpen: true }, (raw) => front.accept(raw));
 *     on a new snapshot: front.update(route)       at close: front.close()       at once: front.destroy()
 *
 * The secure socket allows half-open (a client's end is an 'end' event; writing goes on), as the
 * listeners' raw sockets do. During the handshake it does not: a client that ends then is closed at once
 * instead of waiting out the handshake timeout.
 *
 * Generations. The settings one handshake uses (certificates, policy, ALPN list, handshake timeout) are
 * an immutable generation: a `tls.Server` that never listens, to which `accept` emits each socket (its
 * documented 'connection' event), with the SNI callback and the certificate index of that generation.
 * `update` builds a new generation only when those settings changed: new handshakes use it, a handshake
 * under way finishes under the one it began with, and established connections are never touched, so a
 * certificate replaced or a policy changed drops no connection. The facts' certificate ARN is chosen
 * again from the generation's own index after the handshake, so it is the one the handshake presented.
 * `SecureContext`s are built once per certificate content and policy and shared between generations
 * (secure-contexts.ts); the default certificate's context is the generation server's own. The session
 * ticket keys belong to the front, so a ticket from before an update still resumes after it.
 *
 * The policy (versions, ciphers) of a handshake is the default context's: OpenSSL keeps the versions and
 * cipher list of the context a connection started with when the SNI callback switches certificates,
 * which is why every context of a generation is built under the same policy.
 */

/** A handshake gets this long at most; less when the listener's client header timeout is shorter. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

export interface TlsFrontHooks {
  readonly dataPlaneId: string;
  /** ALPN protocols to offer for `route`, the server's preference first; empty offers none. Read at each update. */
  readonly alpn: (route: ListenerRoute) => readonly string[];
  /** A handshake completed; the socket is the caller's from here. `alpn` is the protocol agreed, or null. */
  readonly onSecure: (socket: tls.TLSSocket, facts: TlsFacts, alpn: string | null) => void;
  readonly log: (line: object) => void;
}

/** One set of handshake settings; see "Generations" above. */
interface Generation {
  readonly tls: ListenerTls;
  readonly alpn: readonly string[];
  readonly handshakeTimeoutMs: number;
  readonly index: CertificateIndex;
  readonly server: tls.Server;
}

/** How long handshakes under way may take to finish once their listener closes. */
const CLOSE_HANDSHAKE_GRACE_MS = 1000;

/** A socket between its accept and the end of its handshake. */
interface Handshake {
  readonly raw: net.Socket;
  readonly key: string;
}

export class TlsFront {
  /** Why the route's TLS cannot be served (no certificate, one OpenSSL refuses); null when it can. */
  readonly problem: EbbError | null;
  #route: ListenerRoute;
  #generation: Generation | null = null;
  #closing = false;
  readonly #hooks: TlsFrontHooks;
  readonly #contexts = new SecureContextCache();
  readonly #ticketKeys = randomBytes(48);
  /** By the client's address and port: unique among a listener's open connections. */
  readonly #handshakes = new Map<string, Handshake>();

  constructor(route: ListenerRoute, hooks: TlsFrontHooks) {
    this.#route = route;
    this.#hooks = hooks;
    let problem: EbbError | null = null;
    try {
      this.#generation = this.#build(route);
    } catch (err) {
      problem = err as EbbError;
    }
    this.problem = problem;
  }

  get route(): ListenerRoute {
    return this.#route;
  }

  /** Sockets whose handshake is under way. */
  get handshakes(): number {
    return this.#handshakes.size;
  }

  /** Cached secure contexts (for tests: stale ones are dropped on update). */
  get contextCount(): number {
    return this.#contexts.size;
  }

  /** Starts the handshake on a socket the listener accepted. */
  accept(raw: net.Socket): void {
    const gen = this.#generation;
    const key = remoteKey(raw.remoteAddress, raw.remotePort);
    if (gen === null || this.#closing || key === null) {
      raw.destroy();
      return;
    }
    raw.on('error', ignore);
    raw.allowHalfOpen = false;
    const hs: Handshake = { raw, key };
    this.#handshakes.set(key, hs);
    raw.once('close', () => {
      if (this.#handshakes.get(key) === hs) this.#handshakes.delete(key);
    });
    gen.server.emit('connection', raw);
  }

  /**
   * New settings for the same listener. A new generation is built only when the certificates, the
   * policy, the ALPN list or the handshake timeout changed; if it cannot be built (a certificate
   * OpenSSL refuses), the current one stays and the failure is logged.
   */
  update(route: ListenerRoute): void {
    this.#route = route;
    const gen = this.#generation;
    if (gen !== null && route.tls !== null && sameGeneration(gen, route.tls, this.#hooks.alpn(route), handshakeTimeoutMs(route.settings))) return;
    try {
      this.#generation = this.#build(route);
    } catch (err) {
      this.#hooks.log({
        level: 'error',
        msg: 'listener TLS not updated: new handshakes keep the certificates they had',
        dataPlane: this.#hooks.dataPlaneId,
        listener: route.arn,
        error: (err as Error).message,
      });
    }
  }

  /**
   * The listener is closing: no new handshake starts. Those under way get a moment to finish (their client
   * is sending its request, expecting it answered) and are then served as on a closing listener (closed
   * after their first answer); what has not finished by then (a client that sends nothing) is closed.
   */
  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    if (this.#handshakes.size > 0) setTimeout(() => this.destroy(), CLOSE_HANDSHAKE_GRACE_MS).unref();
  }

  /** Every handshake under way closed now. */
  destroy(): void {
    this.#closing = true;
    for (const hs of [...this.#handshakes.values()]) hs.raw.destroy();
  }

  #build(route: ListenerRoute): Generation {
    const settings = route.tls;
    if (settings === null || settings.certificates.length === 0) {
      throw ebbError('CertificateNotFound', `listener ${route.arn} has no certificate: give the ${route.protocol} listener a default certificate`);
    }
    const [first, ...others] = settings.certificates as [ListenerCertificate, ...ListenerCertificate[]];
    const policy = settings.policy;
    const sni = new Map<ListenerCertificate, tls.SecureContext>();
    for (const c of others) {
      try {
        sni.set(c, this.#contexts.get(c, policy));
      } catch (err) {
        this.#hooks.log({
          level: 'error',
          msg: 'listener certificate not served: it cannot be loaded',
          dataPlane: this.#hooks.dataPlaneId,
          listener: route.arn,
          certificate: c.arn,
          error: (err as Error).message,
        });
      }
    }
    const index = new CertificateIndex([first, ...sni.keys()]);
    const alpn = [...this.#hooks.alpn(route)];
    const timeoutMs = handshakeTimeoutMs(route.settings);
    const options: tls.TlsOptions = {
      ...contextOptions(first, policy),
      handshakeTimeout: timeoutMs,
      ticketKeys: this.#ticketKeys,
      // The default certificate is the server's own context: no switch for it.
      SNICallback: (name, cb) => {
        const c = index.select(name);
        cb(null, c === first ? undefined : sni.get(c));
      },
    };
    if (alpn.length > 0) options.ALPNProtocols = alpn;
    let server: tls.Server;
    try {
      server = tls.createServer(options);
    } catch (err) {
      throw ebbError(
        'InvalidConfigurationRequest',
        `the default certificate ${first.arn} of listener ${route.arn} cannot be served under ${policy.name}: ${(err as Error).message}; import the certificate again with its matching key`,
      );
    }
    const gen: Generation = { tls: settings, alpn, handshakeTimeoutMs: timeoutMs, index, server };
    server.on('secureConnection', (socket: tls.TLSSocket) => this.#secure(gen, socket));
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => this.#failed(err, socket));
    this.#contexts.retain(others, policy);
    return gen;
  }

  #secure(gen: Generation, socket: tls.TLSSocket): void {
    // Its connection is alive here, so it still knows the client's address.
    this.#handshakes.delete(remoteKey(socket.remoteAddress, socket.remotePort) ?? '');
    socket.allowHalfOpen = true;
    // No client-initiated renegotiation, as on AWS's load balancers: each one costs a handshake's CPU,
    // and the connection is refused at the first attempt (its socket gets an 'error' and is closed).
    socket.disableRenegotiation();
    const serverName = typeof socket.servername === 'string' && socket.servername !== '' ? socket.servername : null;
    const facts: TlsFacts = {
      cipher: socket.getCipher().name,
      protocol: socket.getProtocol() ?? 'unknown',
      serverName,
      certificateArn: gen.index.select(serverName).arn,
    };
    try {
      this.#hooks.onSecure(socket, facts, typeof socket.alpnProtocol === 'string' ? socket.alpnProtocol : null);
    } catch (err) {
      socket.on('error', ignore);
      socket.destroy();
      this.#hooks.log({ level: 'error', msg: 'TLS connection not served', dataPlane: this.#hooks.dataPlaneId, listener: this.#route.arn, error: String(err) });
    }
  }

  /**
   * Node reports every failed handshake once (`tlsClientError`, a client that leaves included, since
   * the raw socket does not allow half-open meanwhile). The TCP socket under it tells how many bytes the
   * client sent: none means no handshake at all (see `classifyHandshakeError`).
   */
  #failed(err: NodeJS.ErrnoException, socket: tls.TLSSocket): void {
    const raw = this.#rawOf(socket);
    // Node leaves the socket open after a handshake timeout; every failure closes it here.
    socket.destroy();
    if (raw !== undefined) {
      const key = remoteKey(raw.remoteAddress, raw.remotePort) ?? '';
      if (this.#handshakes.get(key)?.raw === raw) this.#handshakes.delete(key);
    }
    // Handshakes the closing listener cut are its own doing, not the client's.
    const reason = this.#closing ? null : classifyHandshakeError(err.code, raw === undefined ? -1 : raw.bytesRead);
    if (reason === null || !tlsErrorChannel.hasSubscribers) return;
    tlsErrorChannel.publish({ dataPlaneId: this.#hooks.dataPlaneId, listenerArn: this.#route.arn, reason, message: err.message } satisfies TlsErrorMessage);
  }

  /**
   * The TCP socket under a TLS socket. Node keeps it as `_parent` (every version since TLSSocket
   * exists, 0.11 to 24; not documented), which stays set when the TLS socket is already destroyed and
   * has forgotten the client's address, as it may be when Node reports a failure. Else it is looked up
   * by that address.
   */
  #rawOf(socket: tls.TLSSocket): net.Socket | undefined {
    const parent = (socket as unknown as { _parent?: unknown })._parent;
    if (parent instanceof net.Socket) return parent;
    return this.#handshakes.get(remoteKey(socket.remoteAddress, socket.remotePort) ?? '')?.raw;
  }
}

export function handshakeTimeoutMs(settings: ListenerSettings): number {
  return Math.max(1, Math.min(HANDSHAKE_TIMEOUT_MS, settings.clientHeaderTimeoutMs));
}

function sameGeneration(gen: Generation, next: ListenerTls, alpn: readonly string[], timeoutMs: number): boolean {
  if (gen.tls === next) return gen.alpn.join(',') === alpn.join(',') && gen.handshakeTimeoutMs === timeoutMs;
  if (gen.handshakeTimeoutMs !== timeoutMs || gen.alpn.join(',') !== alpn.join(',')) return false;
  if (policyKey(gen.tls.policy) !== policyKey(next.policy)) return false;
  const a = gen.tls.certificates;
  const b = next.certificates;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as ListenerCertificate;
    const y = b[i] as ListenerCertificate;
    if (x.arn !== y.arn || x.certificatePem !== y.certificatePem || x.privateKeyPem !== y.privateKeyPem || x.names.join(',') !== y.names.join(',')) return false;
  }
  return true;
}

function remoteKey(address: string | undefined, port: number | undefined): string | null {
  return address === undefined || port === undefined ? null : `${address}|${port}`;
}

function ignore(): void {}
