import net from 'node:net';
import tls from 'node:tls';
import type { TargetTls } from '../domain/routing-snapshot.ts';
import { classifySocketError, ProxyError } from './errors.ts';
import { SocketWriter } from './socket-writer.ts';
import { DirectReader } from './tcp/direct-reads.ts';
import type { DirectReadSink, ReadOutcome } from './tcp/direct-reads.ts';
import { resetSocket } from './tcp/reset-socket.ts';
import { BodyKind, ResponseParser } from './response-parser.ts';
import type { ResponseEvents } from './response-parser.ts';
import type { TargetEntry } from './target-entry.ts';

/**
 * One connection to a target: connect, carry one exchange at a time, parse its response
 * (`ResponseParser`), report to the exchange it serves (its `UpstreamSink`), and go back to the pool.
 * The socket's listeners are set once for the connection's whole life and point at the exchange it
 * currently serves, so a request adds no listener to a pooled socket.
 *
 * To an HTTPS group's target the connection speaks TLS (`targetTls`), and it is connected once the
 * handshake is done: the connect timeout covers both. As ALB, the target's certificate is not
 * verified unless the group names a CA (`ebb.target_tls.ca_file`); then its chain must lead to that
 * CA, and its names are not checked (targets are mostly IP addresses, as HAProxy's `verify required`
 * without `verifyhost` and Envoy's `trusted_ca` alone). SNI carries the target's host when it is a
 * name; an IP target gets none, as ALB sends none to its targets (which are always addresses).
 */

/** What a connection reports to the exchange it serves. */
export interface UpstreamSink {
  /** The request may now be written (the connection is open). */
  onConnected(conn: UpstreamConnection): void;
  /** A response head, hop-by-hop headers already dropped. Returns false to refuse it (the exchange failed). */
  onResponseHead(status: number, reason: string, rawHeaders: string[], body: BodyKind): boolean;
  onResponseBody(chunk: Buffer): void;
  /** A body chunk passed on may still be read by a write in progress (its memory may not be read into again). */
  holdsRead(): boolean;
  /** A read from the target has been parsed and the response goes on: what was held goes out now. */
  onResponseReadEnd(): void;
  /** The response ended; `last` is the final body chunk, if any, to send with the end. */
  onResponseEnd(last: Buffer | null): void;
  /** `101` to an upgrade request: the exchange takes the socket over (see `detach`). */
  onSwitch(reason: string, rawHeaders: string[], upgrade: string, rest: Buffer): void;
  /** The exchange failed. `retryable`: nothing was received and the connection had been reused. */
  onUpstreamError(err: ProxyError, retryable: boolean): void;
  /** Cut at a drain deadline; returns the number of sockets closed. */
  terminate(): number;
}

/** What a connection needs from its pool. */
export interface ConnectionHome {
  /** Coarse monotonic ms: behind the true time by at most `resolutionMs`. */
  readonly now: number;
  readonly resolutionMs: number;
  /** A connection was opened (it is counted as its entry's until `forget`). */
  opened(conn: UpstreamConnection): void;
  /** The TLS session to resume with `entry` under `targetTls`, if one was kept. */
  tlsSession(entry: TargetEntry, targetTls: TargetTls): Buffer | undefined;
  /** A TLS session (or a newer ticket) the target gave. */
  keepTlsSession(entry: TargetEntry, targetTls: TargetTls, session: Buffer): void;
  /** The exchange ended and the connection may be kept for another. */
  release(conn: UpstreamConnection): void;
  /** The connection closed. */
  forget(conn: UpstreamConnection): void;
}

const enum Deadline {
  None,
  Connect,
  Response,
}

export class UpstreamConnection implements ResponseEvents, DirectReadSink {
  readonly socket: net.Socket;
  /** What the exchange writes to the target goes through this (socket-writer.ts). */
  readonly writer: SocketWriter;
  connected = false;
  /** Has served at least one exchange (a failure before any byte may then be retried). */
  reused = false;
  /** Its index in its pool key's open set (upstream-pool.ts). */
  openSlot = -1;
  sink: UpstreamSink | null = null;
  idleSince = 0;
  idleTimeoutMs = 60_000;
  /** Coarse ms of the last byte from the target (or of request body to it) once it is answering. */
  lastActive = 0;
  /** The current request has been written whole (else the connection cannot be reused). */
  requestComplete = true;
  /** Nothing but this exchange may use the connection (an upgrade attempt, a request that closes). */
  #single = false;
  /** Coarse monotonic ms at which the armed deadline expires; 0 when none. */
  #deadline = 0;
  #deadlineKind = Deadline.None;
  readonly #parser = new ResponseParser(this);
  #closed = false;
  /** TLS: the TCP connection is open and the handshake under way. */
  #handshaking = false;

  readonly #home: ConnectionHome;

  constructor(
    readonly entry: TargetEntry,
    home: ConnectionHome,
    connectTimeoutMs: number,
    /** HTTPS groups: TLS to the target, checked as this says; null: plain TCP. */
    readonly targetTls: TargetTls | null = null,
    /** Read as a stream ('data' events) rather than into a buffer the connection reuses: for an upgrade, whose socket may go to a tunnel. */
    streamReads = false,
  ) {
    this.#home = home;
    this.#deadline = home.now + connectTimeoutMs;
    this.#deadlineKind = Deadline.Connect;
    let socket: net.Socket;
    const direct = targetTls === null && !streamReads;
    if (targetTls === null) {
      // A plain connection reads into a buffer of its own, read into again once what was passed on
      // from it has been written or copied (tcp/direct-reads.ts): no new buffer and no trip through
      // a Readable per response; each read goes from the socket's handle straight to the parser
      // (DirectReader.takeOver).
      if (direct) {
        const reader = new DirectReader(this);
        socket = net.connect({ host: entry.host, port: entry.port, noDelay: true, onread: reader.option });
        reader.takeOver(socket);
      } else {
        socket = net.connect({ host: entry.host, port: entry.port, noDelay: true });
      }
      socket.on('connect', () => this.#onConnected());
    } else {
      socket = tls.connect({
        host: entry.host,
        port: entry.port,
        ...(net.isIP(entry.host) === 0 ? { servername: entry.host } : {}),
        secureContext: secureContextFor(targetTls),
        rejectUnauthorized: targetTls.caPem !== null,
        checkServerIdentity: () => undefined,
        ALPNProtocols: ['http/1.1'],
        session: home.tlsSession(entry, targetTls),
      });
      socket.setNoDelay(true);
      socket.on('connect', () => void (this.#handshaking = true));
      socket.on('secureConnect', () => {
        this.#handshaking = false;
        this.#onConnected();
      });
      // Only a session whose certificate passed is kept for resumption (a resumed one shows none).
      const tlsSocket = socket as tls.TLSSocket;
      socket.on('session', (session: Buffer) => {
        if (!this.#handshaking && (targetTls.caPem === null || tlsSocket.authorized)) home.keepTlsSession(entry, targetTls, session);
      });
    }
    this.socket = socket;
    this.writer = new SocketWriter(socket);
    home.opened(this);
    if (!direct) socket.on('data', (b: Buffer) => this.#onData(b));
    socket.on('end', () => this.#onSocketEnd());
    socket.on('error', (err: NodeJS.ErrnoException) => this.#fail(classifySocketError(err, this.connected, this.#handshaking)));
    socket.on('close', () => this.#onSocketEnd());
  }

  #onConnected(): void {
    this.connected = true;
    this.#deadline = 0;
    this.#deadlineKind = Deadline.None;
    const sink = this.sink;
    if (sink !== null) sink.onConnected(this);
  }

  /** May serve another exchange after the current one. */
  get reusable(): boolean {
    return !this.#closed && !this.#single && this.#parser.keepAlive;
  }

  /**
   * Starts an exchange on this connection. Call `armResponse` once the request is fully written.
   * `single`: the connection serves this exchange only (an upgrade, or a request ebb closes after).
   */
  assign(sink: UpstreamSink, headRequest: boolean, upgrade: boolean, single: boolean): void {
    this.sink = sink;
    this.requestComplete = false;
    this.#single = single || upgrade;
    this.#parser.begin(headRequest, upgrade);
    if (this.connected) sink.onConnected(this);
  }

  armResponse(timeoutMs: number): void {
    this.requestComplete = true;
    if (this.#parser.started || this.sink === null) return;
    this.#deadline = this.#home.now + timeoutMs;
    this.#deadlineKind = Deadline.Response;
  }

  /**
   * Called by the pool's ticker with the coarse clock. Connect and time-to-first-byte deadlines
   * first; once the target is answering, the exchange fails when nothing has moved either way for
   * the idle timeout (a target that stalls mid-response). While the request body is still being
   * sent and nothing has come back, the client's side enforces the idle timeout. While ebb holds the
   * target's reads (its socket paused) because the client has not read what was sent to it, the
   * target is quiet because of the client: the same timeout, named for the client (`client-timeout`),
   * whichever side sees it first. It holds for a client that keeps its own side busy without reading
   * (bytes sent behind the request, HTTP/2 pings), which the client's side alone would not cut.
   */
  checkDeadline(now: number): void {
    if (this.sink === null) {
      if (now - this.idleSince > this.idleTimeoutMs) this.destroy();
      return;
    }
    if (this.#deadline !== 0) {
      if (now < this.#deadline) return;
      const kind = this.#deadlineKind;
      this.#deadline = 0;
      this.#fail(new ProxyError(kind === Deadline.Connect ? 'connect-timeout' : 'response-timeout', this.#handshaking ? 'tls-handshake' : ''));
      return;
    }
    // `lastActive` may lag the last read by a tick of the coarse clock: waiting one more keeps the timeout from being early.
    if (!this.#parser.started || now - this.lastActive <= this.idleTimeoutMs + this.#home.resolutionMs) return;
    this.#fail(this.socket.isPaused() ? new ProxyError('client-timeout', 'response-not-read') : new ProxyError('idle-timeout', 'target'));
  }

  /**
   * Closes a connection that is idle and whole but not kept (the pool is full): on plain TCP with a
   * reset, as HAProxy closes the server connections it does not keep, since closing first leaves a
   * TIME-WAIT socket on ebb's host for 60 s, and one per new client connection (each first request
   * gets a connection of its own) would run a busy target's ephemeral ports out at some 470 a second.
   * Nothing is lost: the request went whole and its response came whole. Over TLS, a polite close.
   */
  discard(): void {
    if (this.targetTls !== null || !this.connected) return this.destroy();
    this.sink = null;
    this.#markClosed();
    resetSocket(this.socket);
  }

  /** Closes the connection, without telling the exchange it serves (if any). */
  destroy(): void {
    this.sink = null;
    this.#markClosed();
    this.socket.destroy();
  }

  /**
   * Hands the socket over (after a `101`): the connection forgets it, and the caller owns its
   * listeners from now on.
   */
  detach(): net.Socket {
    this.sink = null;
    this.#markClosed();
    const s = this.socket;
    s.removeAllListeners('data');
    s.removeAllListeners('end');
    s.removeAllListeners('error');
    s.removeAllListeners('close');
    s.removeAllListeners('connect');
    s.removeAllListeners('secureConnect');
    s.removeAllListeners('session');
    return s;
  }

  // ResponseEvents: the parser reports, the connection passes on to its exchange.

  onHead(status: number, reason: string, rawHeaders: string[], body: BodyKind): boolean {
    const sink = this.sink;
    return sink !== null && sink.onResponseHead(status, reason, rawHeaders, body);
  }

  onBody(chunk: Buffer): void {
    this.sink?.onResponseBody(chunk);
  }

  onEnd(last: Buffer | null): void {
    const sink = this.sink;
    this.sink = null;
    this.#deadline = 0;
    if (sink === null) return;
    // Release first, so the exchange's end sees the connection back in the pool (or closed).
    this.#home.release(this);
    sink.onResponseEnd(last);
  }

  onGarbage(detail: string): void {
    this.#fail(new ProxyError('upstream-garbage', detail));
  }

  onSwitch(reason: string, rawHeaders: string[], upgrade: string, rest: Buffer): void {
    const sink = this.sink;
    this.#deadline = 0;
    // A copy: the tunnel keeps these bytes, and a direct read's buffer is read into again.
    if (sink !== null) sink.onSwitch(reason, rawHeaders, upgrade, rest.length > 0 ? Buffer.from(rest) : rest);
  }

  #markClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#home.forget(this);
  }

  #fail(err: ProxyError): void {
    const sink = this.sink;
    this.sink = null;
    this.#deadline = 0;
    this.#markClosed();
    this.socket.destroy();
    if (sink !== null) {
      const retryable = this.reused && !this.#parser.started && err.kind === 'upstream-reset';
      sink.onUpstreamError(err, retryable);
    }
  }

  /** The target closed its side (or the socket closed). */
  #onSocketEnd(): void {
    if (this.#handshaking && !this.#closed) {
      // Closed by a TLS target in the middle of the handshake (it refused ebb's hello).
      this.#fail(new ProxyError('target-tls', 'closed'));
      return;
    }
    if (this.sink !== null) {
      if (this.#parser.eof()) return;
      this.#fail(new ProxyError('upstream-reset', this.#parser.started ? 'eof-mid-response' : 'eof'));
      return;
    }
    this.destroy();
  }

  /** A read into the connection's own buffer (DirectReader): free again unless a write still holds part of it. */
  directRead(buf: Buffer): ReadOutcome {
    const sink = this.sink;
    this.#onData(buf);
    return sink !== null && sink.holdsRead() ? 'held' : 'free';
  }

  #onData(buf: Buffer): void {
    if (this.sink === null) {
      // Bytes nobody asked for: the connection's framing can no longer be trusted.
      this.destroy();
      return;
    }
    this.lastActive = this.#home.now;
    if (!this.#parser.started) this.#deadline = 0;
    const sink = this.sink;
    this.#parser.execute(buf);
    if (sink !== null && this.sink === sink) sink.onResponseReadEnd();
  }
}

/**
 * Secure contexts by CA (null: the one that verifies nothing), made once: a context parses its CA, and
 * every connection to every HTTPS target would otherwise pay for it. Few distinct CAs exist at once;
 * a context for a CA no snapshot names any more is dropped when the set would grow past a bound.
 */
const contexts = new Map<string | null, tls.SecureContext>();
const MAX_CONTEXTS = 64;

function secureContextFor(targetTls: TargetTls): tls.SecureContext {
  let ctx = contexts.get(targetTls.caPem);
  if (ctx === undefined) {
    if (contexts.size >= MAX_CONTEXTS) contexts.clear();
    // An empty CA (a file that could not be read) trusts nothing: every handshake fails, as it should.
    ctx = tls.createSecureContext(targetTls.caPem === null ? {} : { ca: targetTls.caPem === '' ? [] : targetTls.caPem });
    contexts.set(targetTls.caPem, ctx);
  }
  return ctx;
}

/** Whether a connection made under `a` may carry an exchange that asks for `b`. */
export function sameTargetTls(a: TargetTls | null, b: TargetTls | null): boolean {
  return a === b || (a !== null && b !== null && a.caPem === b.caPem);
}
