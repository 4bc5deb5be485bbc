import type { TLSSocket } from 'node:tls';
import { realClock } from '../../shared/clock.ts';
import type { Clock } from '../../shared/clock.ts';
import type { TlsFacts } from '../channels.ts';
import type { ListenerContext, ProxyHost } from '../http-proxy.ts';
import { ClientSession } from './client-session.ts';
import type { SessionHome } from './client-session.ts';

/**
 * The HTTP/2 client connections of one HTTPS listener: where its TLS front hands an `h2` socket, and
 * what the listener closes when it goes away or ebb shuts down.
 *
 * The listener's side, in full:
 *
 *     readonly http2 = new Http2Sessions(host, this);        // `this`: the listener's ListenerContext
 *     onSecure(socket, facts, alpn):  alpn === 'h2' ? this.http2.accept(socket, facts) : <HTTP/1.1 ClientConnection>
 *     close():   set `closing`, stop accepting, then this.http2.goAway()   // GOAWAY; each session closes when its streams end
 *     at the close deadline, or destroy():   this.http2.cut()          // what is left is cut, counted, and logged
 *
 * The listener's `net.Server` close callback then fires once the last session's socket has closed, as
 * it does for HTTP/1.1 connections. A listener whose `routing.http2.enabled` is false never offers
 * `h2` by ALPN, so it never calls `accept`.
 */
export class Http2Sessions implements SessionHome {
  readonly #sessions = new Set<ClientSession>();
  readonly #host: ProxyHost;
  readonly #ctx: ListenerContext;
  readonly #clock: Clock;

  constructor(host: ProxyHost, ctx: ListenerContext, clock: Clock = realClock) {
    this.#host = host;
    this.#ctx = ctx;
    this.#clock = clock;
  }

  /** Sessions open now. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Streams open now, across the sessions. */
  get streams(): number {
    let n = 0;
    for (const s of this.#sessions) n += s.streams;
    return n;
  }

  /**
   * Serves HTTP/2 on a TLS socket whose handshake agreed `h2`, not yet read from (no 'data' listener;
   * the client's connection preface must still be in it). While the listener is closing, the session
   * gets GOAWAY at once.
   */
  accept(socket: TLSSocket, facts: TlsFacts): void {
    const session = new ClientSession(socket, facts, this.#host, this.#ctx, this, this.#clock);
    this.#sessions.add(session);
  }

  /** GOAWAY to every session: the streams in flight finish, then each session closes. */
  goAway(): void {
    for (const s of this.#sessions) s.goAway('shutdown');
  }

  /** Ends every session now: the streams still open are cut (counted, and logged when any). Returns how many. */
  cut(): number {
    let streams = 0;
    const sessions = [...this.#sessions];
    for (const s of sessions) streams += s.cut('shutdown');
    if (streams > 0) {
      this.#host.log({ level: 'warn', msg: 'http2 streams cut', dataPlane: this.#host.id, listener: this.#ctx.route.arn, sessions: sessions.length, streams });
    }
    return streams;
  }

  sessionClosed(session: ClientSession): void {
    this.#sessions.delete(session);
  }
}
