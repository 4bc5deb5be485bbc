import type { Socket } from 'node:net';
import type { TlsFacts } from './channels.ts';
import { publishClientError, tellRefusal } from './client-refusal.ts';
import type { DesyncVerdict } from './desync/classify.ts';
import { errorAnswer } from './errors.ts';
import { handleRequest, type ListenerContext, type ProxyHost } from './http-proxy.ts';
import { RequestBodyReader, type BodySink } from './request-body.ts';
import { BodyMode, clientAddressOf, isRejection, planRequest, type RequestPlan } from './request-guard.ts';
import { HeadScanner, leadingEmptyLines, parseRequestHead } from './request-head.ts';
import { ResponseFraming } from './response-framing.ts';
import type { SlotSet } from '../shared/slot-set.ts';
import type { BodyKind } from './response-parser.ts';
import type { ClientExchange, ClientSide } from './client-side.ts';
import { ownedChunk, readSharedInPlace, type DirectReadSink, type ReadOutcome } from './tcp/direct-reads.ts';
import { refreshIdleTimer } from './tcp/native-streams.ts';
import { QuietWatch } from './quiet-watch.ts';

/**
 * One client connection of an HTTP listener: ebb's own HTTP/1.1 server side. It reads request heads
 * leniently (request-head) so every request can be classified as ALB classifies it (request-guard),
 * reads request bodies strictly (request-body), serves one request at a time, and writes responses
 * with its own framing.
 *
 * One request at a time means: bytes a client sends behind a request (pipelining) are held, unread
 * by anyone, until that request's response has ended; then they are parsed as the next request. So
 * nothing that follows an upgrade request reaches the target before it has switched protocols, and
 * nothing that follows a refused request is ever parsed. At most `HOLD_LIMIT` bytes are held: beyond
 * that the socket stops being read.
 *
 * Timeouts (the listener's ticker checks them): the client header timeout runs from the first byte of
 * a head (from the accept, for the first request) to its end: 408, then close. The idle timeout closes a
 * connection quiet between requests, and during a request lets the exchange decide (`Exchange.clientIdle`);
 * once ebb closes the connection, a grace on the socket's own timer (`setTimeout`) replaces it.
 */

const enum Reading {
  /** Waiting for, or reading, a request head. */
  Head,
  /** A request's body is being read. */
  Body,
  /** The request has been read whole; its response is on its way (bytes after it are held). */
  Waiting,
  /** Nothing more is read: the connection closes after what it is writing. */
  Closed,
  /** Handed to a tunnel. */
  Tunnel,
}

/** Bytes held behind a request in flight before the socket stops being read. */
const HOLD_LIMIT = 64 * 1024;
/** How long a connection that ebb is closing may take to read its last answer. */
const CLOSE_GRACE_MS = 1000;
/** How long an idle connection of a closing listener is kept for a request already on its way (a hot restart's handover, a shutdown). */
const IDLE_CLOSE_GRACE_MS = 1000;

const DISCARD: BodySink = { onBodyData: () => {}, onBodyEnd: () => {} };

export class ClientConnection implements ClientSide, DirectReadSink {
  /** The response under way: its head, framing and byte count (response-framing.ts). */
  readonly #out: ResponseFraming;
  plan: RequestPlan = null as unknown as RequestPlan;
  /** The exchange serving the current request (null while ebb answers it itself, or between requests). */
  exchange: ClientExchange | null = null;
  responseStarted = false;
  readonly clientAddress: string;
  readonly clientPort: number;
  /** Its index in its listener's registry (a SlotSet). */
  registrySlot = -1;
  requestStartedAt = 0;
  requestTime = 0;
  receivedBytes = 0;
  /** Requests read on this connection so far. */
  #requests = 0;
  statusSent = 0;
  #reading = Reading.Head;
  #buf: Buffer | null = null;
  /** Finds the end of the head being read, each byte once. */
  readonly #scanner = new HeadScanner();
  /** The scanner has begun on the head in `buf`. */
  #inHead = false;
  /** performance.now() when the current head began (0: none is being read). */
  #headStart: number;
  #body: RequestBodyReader | null = null;
  #bodySink: BodySink | null = null;
  #busy = false;
  #keepAlive = true;
  #clientEnded = false;
  #paused = false;
  #pumping = false;
  /** Idle while its listener closes: ended after IDLE_CLOSE_GRACE_MS unless a request comes (answered with `Connection: close`). */
  #idleClosing = false;
  readonly #quiet: QuietWatch;
  readonly #onData = (b: Buffer): void => this.#received(b);
  readonly #onEnd = (): void => this.#ended();
  readonly #onClose = (): void => this.#closed();
  readonly #onTimeout = (): void => this.#idle();
  /** A socket error already closes the socket; a TLS one (a renegotiation refused) leaves that to ebb. */
  readonly #onError = (): void => void this.socket.destroy();

  readonly #host: ProxyHost;
  readonly #ctx: ListenerContext;
  readonly #registry: SlotSet<ClientConnection>;

  constructor(
    readonly socket: Socket,
    host: ProxyHost,
    ctx: ListenerContext,
    registry: SlotSet<ClientConnection>,
    /** What the TLS handshake settled (HTTPS listeners, see `tls/`); null on a plain connection. */
    readonly tls: TlsFacts | null = null,
  ) {
    this.#host = host;
    this.#ctx = ctx;
    this.#registry = registry;
    // A plain connection is read into the buffer all of them share (`directRead`), a TLS one as a stream.
    const direct = tls === null && readSharedInPlace(socket, this);
    this.#out = new ResponseFraming(socket);
    registry.add(this);
    this.clientAddress = clientAddressOf(socket.remoteAddress);
    this.clientPort = socket.remotePort ?? 0;
    this.#headStart = performance.now();
    this.#quiet = new QuietWatch(this.#headStart);
    socket.setNoDelay(true);
    if (!direct) socket.on('data', this.#onData);
    socket.on('end', this.#onEnd).on('close', this.#onClose).on('timeout', this.#onTimeout).on('error', this.#onError);
    // Accepted (or its handshake finished) as its listener closes: it gets the grace an idle one gets.
    if (ctx.closing) this.closeIfIdle();
  }

  get firstRequest(): boolean {
    return this.#requests === 1;
  }

  get requestComplete(): boolean {
    return this.#reading !== Reading.Body;
  }

  /** Called by the listener's ticker: a head that takes longer than the client header timeout gets 408; a connection quiet for the idle timeout, `#idle`. */
  checkTimeouts(now: number, headerTimeoutMs: number, idleTimeoutMs: number): void {
    if (this.#reading === Reading.Head && !this.#busy && this.#headStart !== 0 && now - this.#headStart > headerTimeoutMs) {
      this.#refuse(408, 'header-timeout');
    } else if (this.#quiet.expired(this.socket, now, idleTimeoutMs)) this.#idle();
  }

  /** The listener is closing: a busy connection closes after its response; an idle one (new, or kept alive) is
   * not closed at once, which would reset a request on its way: one that comes gets `Connection: close`, else it ends (FIN). */
  closeIfIdle(): void {
    if (this.#reading !== Reading.Head || this.#busy || this.#buf !== null) return;
    this.#idleClosing = true;
    this.socket.setTimeout(IDLE_CLOSE_GRACE_MS);
  }

  /** Closed at its listener's close deadline: a request in flight is ended first (a 502, or its response cut). */
  destroy(): void {
    this.exchange?.terminate('listener');
    // A 502 just written is left for the client to read (`#closeSoon` destroys the socket after a grace).
    if (this.#reading !== Reading.Closed || !this.socket.writableEnded) this.socket.destroy();
  }

  // --- reading

  /** A read of a plain connection: `chunk` lies in the shared read buffer, so what is kept past the call is copied. */
  directRead(chunk: Buffer): ReadOutcome {
    // A tunnel reads the socket's 'data' events (websocket-tunnel.ts) and times out on the socket's own
    // timer, neither of which Node does for a direct read.
    if (this.#reading === Reading.Tunnel) {
      refreshIdleTimer(this.socket);
      this.socket.emit('data', Buffer.from(chunk));
    } else {
      this.#received(chunk);
      if (this.#buf !== null) this.#buf = ownedChunk(this.#buf);
    }
    return 'free';
  }

  #received(chunk: Buffer): void {
    if (this.#reading === Reading.Closed || this.#reading === Reading.Tunnel) return;
    if (this.#idleClosing) {
      this.#idleClosing = false;
      this.socket.setTimeout(0);
    }
    if (this.#reading === Reading.Body && this.#bodySink !== null && this.#buf === null) {
      // The common case of a streaming body: straight from the read to the target.
      this.#feedBody(chunk);
      return;
    }
    this.#buf = this.#buf === null ? chunk : Buffer.concat([this.#buf, chunk]);
    this.#pump();
  }

  /**
   * Consumes held bytes as far as the current state allows. Not re-entered: a request answered at once
   * (a 503) ends inside the loop, and the loop itself goes on to the next one, so thousands of
   * pipelined requests never deepen the stack.
   */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      this.#pumpHeld();
    } finally {
      this.#pumping = false;
    }
  }

  #pumpHeld(): void {
    while (this.#buf !== null) {
      switch (this.#reading) {
        case Reading.Head:
          if (this.#busy || !this.#readHead()) return this.#holdCheck();
          continue;
        case Reading.Body: {
          if (this.#bodySink === null) return this.#holdCheck();
          const b = this.#buf;
          this.#buf = null;
          this.#feedBody(b);
          continue;
        }
        case Reading.Waiting:
          return this.#holdCheck();
        default:
          this.#buf = null;
          return;
      }
    }
  }

  #holdCheck(): void {
    if (this.#buf !== null && this.#buf.length > HOLD_LIMIT && !this.#paused && this.#reading !== Reading.Head) {
      this.#paused = true;
      this.socket.pause();
    }
  }

  #feedBody(read: Buffer): void {
    const chunk = this.#bodySink === DISCARD ? read : ownedChunk(read); // a body's bytes go on to the target's socket, which may keep them
    const reader = this.#body as RequestBodyReader;
    const end = reader.feed(chunk, 0, this.#bodySink as BodySink);
    if (end < 0) return this.#badBody(reader.error ?? 'bad-body');
    this.receivedBytes += reader.done ? end : chunk.length;
    if (!reader.done) return;
    if (end < chunk.length) this.#buf = this.#buf === null ? chunk.subarray(end) : Buffer.concat([chunk.subarray(end), this.#buf]);
    this.#body = null;
    this.#bodySink = null;
    this.#reading = Reading.Waiting;
    if (!this.#busy) this.#next();
  }

  /** Reads one head from `buf` if it is whole; returns false when more bytes are needed (or it was refused). */
  #readHead(): boolean {
    let buf = this.#buf as Buffer;
    if (!this.#inHead) {
      // A new head: empty lines before it are skipped (RFC 9112 §2.2).
      const skip = leadingEmptyLines(buf, 0);
      if (skip > 0) {
        if (skip === buf.length) {
          this.#buf = null;
          // They start the clock of the head they precede: only empty lines get the header timeout too.
          if (this.#headStart === 0) this.#headStart = performance.now();
          return false;
        }
        buf = this.#buf = buf.subarray(skip);
      }
      if (this.#headStart === 0) this.#headStart = performance.now();
      this.#inHead = true;
      this.#scanner.reset();
    }
    const settings = this.#ctx.route.settings;
    const end = this.#scanner.scan(buf);
    if (end < 0 || end > settings.maxHeaderBytes) {
      if (buf.length > settings.maxHeaderBytes) {
        const lineEnd = buf.indexOf(10);
        this.#refuse(lineEnd < 0 || lineEnd > settings.maxHeaderBytes ? 414 : 431, 'head-too-large');
      }
      return false;
    }
    this.#headStart = 0;
    this.#inHead = false;
    const crlf = this.#scanner.crlf;
    // Without the blank line (for an HTTP/0.9 request, the head is its one line, kept whole).
    const textEnd = this.#scanner.single ? end : crlf ? end - 2 : buf[end - 2] === 13 ? end - 2 : end - 1;
    const text = buf.toString('latin1', 0, textEnd);
    this.#buf = end < buf.length ? buf.subarray(end) : null;
    this.requestStartedAt = performance.now();
    this.requestTime = Date.now();
    this.receivedBytes = end;
    this.#out.reset();
    this.#startRequest(text, crlf);
    return this.#reading !== Reading.Closed;
  }

  #startRequest(text: string, crlf: boolean): void {
    const head = parseRequestHead(text, crlf);
    const plan = planRequest(head, this.#ctx.route.settings, this.clientAddress, this.#ctx.localPort, this.tls === null ? 'http' : 'https');
    if (isRejection(plan)) {
      this.#refuse(plan.status, plan.reason, head.method, head.uri, head.noVersion ? '-' : head.version, plan.verdict ?? null);
      return;
    }
    this.plan = plan;
    this.#requests++;
    this.#busy = true;
    this.responseStarted = false;
    this.statusSent = 0;
    this.#keepAlive = plan.keepAlive && !plan.closeAfter;
    if (plan.bodyMode !== BodyMode.None) {
      this.#reading = Reading.Body;
      this.#body = new RequestBodyReader(plan.bodyMode === BodyMode.Chunked, plan.contentLength);
      this.#bodySink = null;
    } else this.#reading = Reading.Waiting;
    handleRequest(this.#host, this.#ctx, this);
  }

  streamBody(sink: BodySink): void {
    if (this.#reading !== Reading.Body) return;
    if (this.plan.expectContinue) this.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
    this.#bodySink = sink;
    this.resumeBody();
    this.#pump();
  }

  pauseBody(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.socket.pause();
  }

  resumeBody(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.socket.resume();
  }

  #badBody(detail: string): void {
    this.#reading = Reading.Closed;
    this.#buf = null;
    this.#body = null;
    this.#bodySink = null;
    this.#host.log({ level: 'info', msg: 'bad request body', dataPlane: this.#host.id, listener: this.#ctx.route.arn, reason: detail });
    publishClientError(this.#host, this.#ctx, 400, `bad-body:${detail}`);
    this.#keepAlive = false;
    if (this.exchange !== null) this.exchange.badRequestBody(detail);
    if (!this.#busy) this.#closeSoon();
  }

  // --- writing

  writeHead(status: number, reason: string, rawHeaders: readonly string[], body: BodyKind): void {
    const open = this.#keepAlive && !this.#ctx.closing && !this.#clientEnded;
    this.responseStarted = true;
    this.statusSent = status;
    this.#keepAlive = this.#out.head(status, reason, rawHeaders, body, this.plan.http10, open);
  }

  /** Writes a held response head (the target's read ended before any body byte). */
  flushHead(): void {
    this.#out.flushHead();
  }

  writeBody(chunk: Buffer): boolean {
    return this.#out.body(chunk);
  }

  endResponse(last: Buffer | null): void {
    this.#out.end(last);
  }

  get holdsBodyBuffer(): boolean {
    return this.#out.holdsBuffer;
  }

  /** Bytes of the current response sent to the client (framing included). */
  get sentBytes(): number {
    return this.#out.sent;
  }

  sendError(status: number, close: boolean): void {
    if (close || this.#ctx.closing || this.#clientEnded || this.#reading === Reading.Body) this.#keepAlive = false;
    this.responseStarted = true;
    this.statusSent = status;
    const answer = errorAnswer(status, !this.#keepAlive, this.plan.method === 'HEAD');
    this.#out.answer(answer);
  }

  cut(): void {
    this.#out.drop();
    this.#keepAlive = false;
    this.#reading = Reading.Closed;
    this.socket.destroy();
  }

  exchangeEnded(): void {
    this.#busy = false;
    this.exchange = null;
    if (this.#reading === Reading.Closed || this.#reading === Reading.Tunnel) {
      if (this.#reading === Reading.Closed) this.#closeSoon();
      return;
    }
    if (!this.#keepAlive || this.#ctx.closing || this.#clientEnded) {
      this.#reading = Reading.Closed;
      this.#closeSoon();
      return;
    }
    if (this.#reading === Reading.Body) {
      // The target answered before the whole body came: read and discard the rest, so the next
      // request on this connection is found where the body ends.
      this.#bodySink = DISCARD;
      this.resumeBody();
      this.#pump();
      return;
    }
    this.#next();
  }

  /** The request and its response are both done: on to the next request. */
  #next(): void {
    this.#reading = Reading.Head;
    this.#headStart = this.#buf === null ? 0 : performance.now();
    this.resumeBody();
    if (this.#buf !== null) this.#pump();
  }

  handOver(): Buffer | null {
    this.#reading = Reading.Tunnel;
    this.#busy = false;
    const s = this.socket;
    s.off('data', this.#onData).off('end', this.#onEnd).off('close', this.#onClose).off('timeout', this.#onTimeout).off('error', this.#onError);
    this.#registry.delete(this);
    const held = this.#buf;
    this.#buf = null;
    this.resumeBody();
    return held;
  }

  // --- ending

  /** ebb refuses the request it is reading: an answer, then the connection closes. */
  #refuse(status: number, reason: string, method?: string, uri?: string, version?: string, verdict?: DesyncVerdict | null): void {
    this.#reading = Reading.Closed;
    const heldBytes = this.#buf === null ? 0 : this.#buf.length;
    this.#buf = null;
    const answer = errorAnswer(status, true, method === 'HEAD');
    if (this.socket.writable) this.socket.write(answer, 'latin1');
    tellRefusal(this.#host, this.#ctx, this, { status, reason, method, uri, version, verdict: verdict ?? null, heldBytes, sentBytes: answer.length });
    this.#closeSoon();
  }

  /** Ends ebb's side after what is written; the client gets a moment to read it, then the socket is destroyed. */
  #closeSoon(): void {
    this.#reading = Reading.Closed;
    const s = this.socket;
    if (s.destroyed) return;
    // Once ebb's side has ended (a `Connection: close` answer), ending it again would only make
    // Node build an error nobody reads, with its stack, on every such connection.
    if (!s.writableEnded) s.end();
    s.setTimeout(CLOSE_GRACE_MS);
    if (this.#paused) s.resume();
  }

  /**
   * The client ended its side. As Node's HTTP server does by default (`httpAllowHalfOpen` false), that
   * is the client going away: the exchange in flight is abandoned and the connection closes.
   */
  #ended(): void {
    this.#clientEnded = true;
    if (this.#reading === Reading.Tunnel) return;
    const ex = this.exchange;
    this.#reading = Reading.Closed;
    if (ex !== null) ex.clientClosed();
    else this.#closeSoon();
  }

  #closed(): void {
    this.#registry.delete(this);
    this.#reading = Reading.Closed;
    if (this.exchange !== null) this.exchange.clientClosed();
  }

  #idle(): void {
    if (this.#reading === Reading.Closed) {
      this.socket.destroy();
      return;
    }
    if (this.#busy) {
      if (this.exchange !== null) this.exchange.clientIdle();
      return;
    }
    if (this.#buf !== null) this.#refuse(408, 'idle-timeout');
    else if (this.#idleClosing) this.#closeSoon();
    else this.socket.destroy();
  }
}
