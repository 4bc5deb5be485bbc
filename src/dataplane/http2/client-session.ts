import http2 from 'node:http2';
import type { ServerHttp2Session, ServerHttp2Stream } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { Clock, TimerHandle } from '../../shared/clock.ts';
import { http2SessionEndChannel } from '../channels.ts';
import type { Http2SessionEndMessage, Http2SessionEndReason, TlsFacts } from '../channels.ts';
import { handleRequest } from '../http-proxy.ts';
import type { ListenerContext, ProxyHost } from '../http-proxy.ts';
import { clientAddressOf, isRejection } from '../request-guard.ts';
import { planHttp2Request } from './request-plan.ts';
import { ResetGuard } from './reset-guard.ts';
import { RESET_LIMIT, RESET_WINDOW_MS, CONNECTION_WINDOW_BYTES, sessionOptions } from './session-limits.ts';
import { Http2StreamSide } from './stream-side.ts';
import type { StreamConnection } from './stream-side.ts';

/**
 * One HTTP/2 client connection (an `h2` TLS socket the HTTPS listener handed over): Node's nghttp2
 * server session on it (`http2.performServerHandshake`), and one `Http2StreamSide` per stream.
 *
 * The connection is never bound to a target: each stream is planned and picked on its own, on the
 * snapshot of the moment. A stream is started on the turn of the event loop after its HEADERS were
 * read (`setImmediate`), so a stream the client reset in the same read — the rapid-reset pattern —
 * never reaches a target at all.
 *
 * Closing politely (docs/http2.md): `goAway()` sends GOAWAY(NO_ERROR) twice, first naming no limit,
 * then, a round trip later, the last stream ebb took; the streams up to it finish, streams the client opens after it are refused by nghttp2 (the
 * client may retry them elsewhere: they were never processed), and the session closes when the last
 * one ends. `cut()` ends what is left at a deadline. Idle: with no stream open for the listener's
 * idle timeout, ebb sends GOAWAY the same way. Rapid reset: more than `RESET_LIMIT` streams reset by
 * the client within `RESET_WINDOW_MS` ends the session with GOAWAY(ENHANCE_YOUR_CALM), logged and
 * published.
 */

const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_NO_ERROR } = http2.constants;

/** The largest stream id: a GOAWAY naming it refuses no stream (the first of the two). */
const MAX_STREAM_ID = 2 ** 31 - 1;
/** How long the final GOAWAY waits for the PING sent with the first one to be answered. */
const FINAL_GOAWAY_MS = 1000;

/** How long a connection ebb has ended (GOAWAY sent, no stream left, FIN) is given to close its side before it is destroyed. */
const END_GRACE_MS = 1000;

/**
 * How often a connection is sent a PING: a quarter of the idle timeout, 250 ms to 15 s, one
 * outstanding at a time. A connection is ended (`no_ping_answer`) only when its PING has gone
 * unanswered and nothing at all has been read from it for the whole idle timeout since the PING was
 * sent: a slow client, or one whose PING waits behind the data it is still reading, keeps sending
 * WINDOW_UPDATEs, and any client that sends nothing for that long is idle by the listener's own
 * measure. What it ends is a connection Node 20 has silently given up: for a protocol error nghttp2
 * sends its GOAWAY and Node stops reading the socket without a word, so the client's FIN is never
 * seen, and a connection with a stream open stayed up for three idle timeouts (RFC 9113 §5.4.1: after
 * a GOAWAY for an error the connection MUST be closed). Node 24 closes those itself. A PING is 17
 * bytes each way.
 */
function probeMsOf(idleTimeoutMs: number): number {
  return Math.min(15_000, Math.max(250, Math.floor(idleTimeoutMs / 4)));
}

/** What a session tells the registry that holds it. */
export interface SessionHome {
  sessionClosed(session: ClientSession): void;
}

export class ClientSession implements StreamConnection {
  readonly clientAddress: string;
  readonly clientPort: number;
  readonly #session: ServerHttp2Session;
  readonly #socket: TLSSocket;
  readonly #streams = new Set<Http2StreamSide>();
  /** Streams planned but not yet started (see the file comment). */
  #starting: Http2StreamSide[] = [];
  readonly #guard = new ResetGuard(RESET_LIMIT, RESET_WINDOW_MS);
  readonly #startedAt = performance.now();
  #streamsSeen = 0;
  #streamsCut = 0;
  #idleTimer: TimerHandle | null = null;
  #probeTimer: TimerHandle | null = null;
  /** A probe's PING is on its way and unanswered. */
  #pingOut = false;
  /** The TCP socket's bytes read when the PING went, or when the probe last saw them move since. */
  #readAtPing = 0;
  #quietSince = 0;
  #graceTimer: TimerHandle | null = null;
  #goingAway = false;
  #reason: Http2SessionEndReason = 'closed';
  #closed = false;
  readonly #host: ProxyHost;
  readonly #ctx: ListenerContext;
  readonly #home: SessionHome;
  readonly #clock: Clock;

  constructor(socket: TLSSocket, readonly tls: TlsFacts, host: ProxyHost, ctx: ListenerContext, home: SessionHome, clock: Clock) {
    this.#host = host;
    this.#ctx = ctx;
    this.#home = home;
    this.#clock = clock;
    this.clientAddress = clientAddressOf(socket.remoteAddress);
    this.clientPort = socket.remotePort ?? 0;
    // The listener's socket timeouts (the handshake's) are not the session's: it keeps its own idle timer.
    socket.setTimeout(0);
    socket.on('error', () => {});
    this.#socket = socket;
    const session = http2.performServerHandshake(socket, sessionOptions(ctx.route.settings));
    this.#session = session;
    session.on('stream', (stream: ServerHttp2Stream, _headers: unknown, _flags: number, raw: string[]) => this.#onStream(stream, raw));
    session.on('error', (err: NodeJS.ErrnoException) => {
      if (this.#reason === 'closed') this.#reason = 'error';
      host.log({ level: 'info', msg: 'http2 session error', dataPlane: host.id, listener: ctx.route.arn, client: this.clientAddress, code: err.code, error: err.message });
    });
    session.on('close', () => this.#onClose());
    // The connection's receive window; each stream's is the SETTINGS value (session-limits.ts).
    session.on('connect', () => {
      if (!session.destroyed) session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
    });
    if (ctx.closing) this.goAway('shutdown');
    else this.#armIdle();
    this.#armProbe();
  }

  /** Streams open now. */
  get streams(): number {
    return this.#streams.size;
  }

  /**
   * GOAWAY (NO_ERROR, the last stream ebb took): the streams in flight finish, then the session
   * closes. A no-op once the session is going away.
   */
  goAway(reason: Http2SessionEndReason): void {
    if (this.#goingAway || this.#closed) return;
    this.#goingAway = true;
    this.#reason = reason;
    this.#cancelIdle();
    // Two steps (RFC 9113 §6.8): a first GOAWAY that refuses no stream, so the streams the client opened
    // while it was on its way are still served; a round trip later (a PING's answer, FINAL_GOAWAY_MS at
    // most) the final one names the last stream taken.
    this.#session.goaway(NGHTTP2_NO_ERROR, MAX_STREAM_ID);
    let sent = false;
    const final = (): void => {
      if (sent) return;
      sent = true;
      timer.cancel();
      this.#finalGoAway();
    };
    const timer = this.#clock.setTimer(FINAL_GOAWAY_MS, final);
    if (!this.#session.ping(() => final())) final();
  }

  /**
   * Node's close(): GOAWAY with the last stream id processed; once no stream is left it ends the
   * socket and waits for the client to close its side.
   */
  #finalGoAway(): void {
    if (this.#closed || this.#session.destroyed) return;
    this.#session.close();
    if (this.#streams.size === 0) this.#destroyAfterGrace();
  }

  /**
   * Ends the session now (a deadline): every stream still open is cut — a 502 if nothing was
   * answered yet, else RST_STREAM — and counted. Returns the streams cut.
   */
  cut(reason: Http2SessionEndReason): number {
    if (this.#closed) return 0;
    if (!this.#goingAway) this.#reason = reason;
    this.#goingAway = true;
    this.#cancelIdle();
    let cut = 0;
    for (const side of [...this.#streams]) {
      if (!side.inFlight) continue;
      // Counted before it is ended: ending the last stream may close the session, which publishes the count.
      cut++;
      this.#streamsCut++;
      side.terminate();
    }
    if (this.#session.destroyed) {
      // Node's graceful close has ended the session and waits for the client to close the socket.
      this.#socket.destroy();
      return cut;
    }
    this.#session.goaway(NGHTTP2_NO_ERROR);
    this.#endSoon();
    return cut;
  }

  /**
   * Ends the connection after this turn of the event loop: nghttp2 sends the frames just queued
   * (GOAWAY, RST_STREAM, a 502) on it, then FIN; `session.destroy()` at once would reset the TCP
   * connection with them unsent. A client that does not close its side within `END_GRACE_MS` is
   * destroyed.
   */
  #endSoon(): void {
    setImmediate(() => {
      if (!this.#closed) this.#socket.end();
    });
    this.#destroyAfterGrace();
  }

  /**
   * A connection ebb has ended (its GOAWAY sent, no stream left) is destroyed if the client has not
   * closed it within `END_GRACE_MS`: a client that ignores GOAWAY and FIN does not keep the socket, or
   * a closing listener, open.
   */
  #destroyAfterGrace(): void {
    if (this.#graceTimer !== null) return;
    this.#graceTimer = this.#clock.setTimer(END_GRACE_MS, () => {
      if (this.#closed) return;
      this.#session.destroy();
      // Node's destroy() does nothing once its graceful close has begun: the socket is ended here.
      this.#socket.destroy();
    });
  }

  // --- streams

  #onStream(stream: ServerHttp2Stream, raw: string[]): void {
    this.#cancelIdle();
    const settings = this.#ctx.route.settings;
    let headerBytes = 0;
    let method = '';
    let url = '';
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i] as string;
      const value = raw[i + 1] as string;
      headerBytes += name.length + value.length;
      if (name === ':method') method = value;
      else if (name === ':path') url = value;
    }
    const side = new Http2StreamSide(stream, this, ++this.#streamsSeen === 1, method, headerBytes, settings.idleTimeoutMs);
    this.#streams.add(side);
    const plan = planHttp2Request(raw, stream.endAfterHeaders, settings, this.clientAddress, this.#ctx.localPort);
    if (isRejection(plan)) {
      side.refuse(this.#host, this.#ctx, plan, method || '-', url || '-');
      return;
    }
    side.planned(plan);
    if (this.#starting.length === 0) setImmediate(() => this.#startPlanned());
    this.#starting.push(side);
  }

  /** Starts the streams planned since the last turn, skipping those the client has reset meanwhile. */
  #startPlanned(): void {
    const sides = this.#starting;
    this.#starting = [];
    for (const side of sides) if (side.open) handleRequest(this.#host, this.#ctx, side);
  }

  streamClosed(side: Http2StreamSide, resetByClient: boolean): void {
    this.#streams.delete(side);
    // Counted until the guard trips (the resets that come after it are the same client's, already cut off).
    // A stream closed because Node destroyed its session (a protocol error) was not reset by the client.
    if (resetByClient && !this.#session.destroyed && this.#reason !== 'rapid_reset' && !this.#closed && this.#guard.record(this.#clock.now())) {
      this.#calm();
      return;
    }
    if (this.#streams.size > 0) return;
    if (this.#goingAway) this.#destroyAfterGrace();
    else this.#armIdle();
  }

  /** Too many resets: GOAWAY(ENHANCE_YOUR_CALM) and the session closes with what it has open. */
  #calm(): void {
    this.#reason = 'rapid_reset';
    this.#goingAway = true;
    this.#cancelIdle();
    this.#host.log({
      level: 'warn',
      msg: 'http2 rapid reset: connection closed',
      dataPlane: this.#host.id,
      listener: this.#ctx.route.arn,
      client: this.clientAddress,
      resets: this.#guard.total,
      streams: this.#streamsSeen,
      limit: `${RESET_LIMIT} in ${RESET_WINDOW_MS} ms`,
    });
    if (this.#session.destroyed) {
      this.#socket.destroy();
      return;
    }
    this.#session.goaway(NGHTTP2_ENHANCE_YOUR_CALM);
    // Its streams still open are reset; their exchanges end as the client's (499).
    for (const side of [...this.#streams]) side.cut();
    this.#endSoon();
  }

  // --- idle

  #armIdle(): void {
    if (this.#goingAway || this.#closed) return;
    this.#cancelIdle();
    this.#idleTimer = this.#clock.setTimer(this.#ctx.route.settings.idleTimeoutMs, () => {
      this.#idleTimer = null;
      if (this.#streams.size === 0) this.goAway('idle_timeout');
    });
  }

  // --- life

  #armProbe(): void {
    this.#probeTimer = this.#clock.setTimer(probeMsOf(this.#ctx.route.settings.idleTimeoutMs), () => this.#probe());
  }

  #probe(): void {
    this.#probeTimer = null;
    // A graceful close under way has its own grace (`#destroyAfterGrace`); Node sends no PING then.
    if (this.#closed || this.#session.destroyed || this.#session.closed) return;
    const read = tcpBytesRead(this.#socket);
    const now = this.#clock.now();
    if (this.#pingOut) {
      if (read !== this.#readAtPing) {
        this.#readAtPing = read;
        this.#quietSince = now;
      } else if (now - this.#quietSince >= this.#ctx.route.settings.idleTimeoutMs) {
        this.cut('no_ping_answer');
        return;
      }
    } else {
      this.#pingOut = this.#session.ping((err) => {
        if (err === null) this.#pingOut = false;
      });
      this.#readAtPing = read;
      this.#quietSince = now;
    }
    this.#armProbe();
  }

  #cancelIdle(): void {
    if (this.#idleTimer !== null) this.#idleTimer.cancel();
    this.#idleTimer = null;
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#cancelIdle();
    this.#probeTimer?.cancel();
    this.#graceTimer?.cancel();
    // Streams Node closed with the session (the client went away) have told their exchanges by now.
    this.#home.sessionClosed(this);
    if (http2SessionEndChannel.hasSubscribers) {
      http2SessionEndChannel.publish({
        dataPlaneId: this.#host.id,
        listenerArn: this.#ctx.route.arn,
        clientAddress: this.clientAddress,
        clientPort: this.clientPort,
        streams: this.#streamsSeen,
        clientResets: this.#guard.total,
        streamsCut: this.#streamsCut,
        reason: this.#reason,
        durationMs: performance.now() - this.#startedAt,
      } satisfies Http2SessionEndMessage);
    }
  }
}

/** Bytes read from the TCP socket beneath `socket`: the TLS socket's own count stops once Node's HTTP/2 reads its handle. */
function tcpBytesRead(socket: TLSSocket): number {
  const raw = (socket as { _parent?: { bytesRead?: number } | null })._parent;
  return raw?.bytesRead ?? socket.bytesRead;
}
