import { STATUS_CODES } from 'node:http';
import http2 from 'node:http2';
import type { OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { clientErrorChannel, requestEndChannel } from '../channels.ts';
import type { ClientErrorMessage, TlsFacts } from '../channels.ts';
import type { ClientExchange, ClientSide } from '../client-side.ts';
import { publishRefusal } from '../http-proxy.ts';
import type { ListenerContext, ProxyHost } from '../http-proxy.ts';
import type { BodySink } from '../request-body.ts';
import { BodyMode } from '../request-guard.ts';
import type { RequestPlan, RequestRejection } from '../request-guard.ts';
import { BodyKind } from '../response-parser.ts';

/**
 * One HTTP/2 stream as the request path sees a client: a `ClientSide` over a `ServerHttp2Stream`.
 * Each stream is one request and one `Exchange`, picked and counted on its target exactly as an
 * HTTP/1.1 request is, so a drain waits for it and `terminate` finds it through its target
 * connection. The streams of one connection are independent: they may go to different targets.
 *
 * What an exchange asks of an HTTP/1.1 connection maps to the stream: a response head becomes
 * `respond()` (HTTP/2 has no reason phrase, and the fields RFC 9113 §8.2.2 forbids are dropped), a
 * body goes out as DATA with the stream's flow control as back-pressure (`write()` false, then
 * 'drain'), ebb's own answers (502, 503, …) are responses on the stream, and a cut is RST_STREAM
 * INTERNAL_ERROR. The connection is never closed for one stream: where an HTTP/1.1 connection would
 * close after an answer because the request body was not read whole, the stream gets RST_STREAM
 * NO_ERROR after its response (RFC 9113 §8.1), which tells the client to stop sending it.
 */

const { NGHTTP2_NO_ERROR } = http2.constants;

/** Fields a response must not carry over HTTP/2 (RFC 9113 §8.2.2); Node refuses to send them. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'te']);
/** Fields Node's HTTP/2 sends once only (node:http2's single-value headers): a target's first is kept. */
const SINGLE_VALUE = new Set([
  'access-control-allow-credentials', 'access-control-max-age', 'access-control-request-method', 'age', 'authorization',
  'content-encoding', 'content-language', 'content-length', 'content-location', 'content-md5', 'content-range', 'content-type',
  'date', 'dnt', 'etag', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range',
  'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'range', 'referer', 'retry-after',
  'tk', 'upgrade-insecure-requests', 'user-agent', 'x-content-type-options',
]);

/** What a stream needs of its connection (`ClientSession`). */
export interface StreamConnection {
  readonly clientAddress: string;
  readonly clientPort: number;
  readonly tls: TlsFacts;
  /** The stream closed; `resetByClient`: the client reset it before ebb was done with it. */
  streamClosed(side: Http2StreamSide, resetByClient: boolean): void;
}

export class Http2StreamSide implements ClientSide {
  plan: RequestPlan = null as unknown as RequestPlan;
  exchange: ClientExchange | null = null;
  responseStarted = false;
  statusSent = 0;
  receivedBytes: number;
  sentBytes = 0;
  readonly requestStartedAt = performance.now();
  readonly requestTime = Date.now();
  readonly clientAddress: string;
  readonly clientPort: number;
  readonly tls: TlsFacts;
  /** The request body has been read whole (or there is none). */
  #requestComplete: boolean;
  #bodyStreaming = false;
  /** ebb closed the stream itself (a cut, or NO_ERROR after an answer): not the client's reset. */
  #resetByEbb = false;
  /** The head went out with END_STREAM (no body follows). */
  #endedWithHead = false;
  /** ebb ended its response (END_STREAM went out with the head or the last data). */
  #responseEnded = false;
  readonly #method: string;
  readonly #connection: StreamConnection;

  constructor(
    readonly stream: ServerHttp2Stream,
    connection: StreamConnection,
    readonly firstRequest: boolean,
    /** `:method`, for ebb's own answers (none has a body for HEAD) before a plan exists. */
    method: string,
    headerBytes: number,
    idleTimeoutMs: number,
  ) {
    this.#method = method;
    this.#connection = connection;
    this.clientAddress = connection.clientAddress;
    this.clientPort = connection.clientPort;
    this.tls = connection.tls;
    this.receivedBytes = headerBytes;
    this.#requestComplete = stream.endAfterHeaders;
    stream.on('error', () => {}); // a reset with an error code; 'close' follows and tells the exchange
    stream.on('close', () => this.#closed());
    stream.setTimeout(idleTimeoutMs, () => this.#idle());
  }

  /**
   * The stream itself, as the socket the exchange waits on for 'drain' (the one thing it does with a
   * client socket on a request that is not an upgrade, and an HTTP/2 request never is one).
   */
  get socket(): Socket {
    return this.stream as unknown as Socket;
  }

  get requestComplete(): boolean {
    return this.#requestComplete;
  }

  /** The request can still be served (the client has not reset the stream meanwhile). */
  get open(): boolean {
    return !this.stream.closed && !this.stream.destroyed;
  }

  /** Takes the plan the stream is served by (its connection starts it on the request path on the next turn). */
  planned(plan: RequestPlan): void {
    this.plan = plan;
    if (plan.bodyMode === BodyMode.None && !this.#requestComplete) {
      // `content-length: 0` without END_STREAM: the empty DATA frame that ends the stream is read and dropped.
      this.#requestComplete = true;
      this.stream.resume();
    }
  }

  /** ebb refuses the request (`planHttp2Request` said why): an answer on the stream, logged and published. */
  refuse(host: ProxyHost, ctx: ListenerContext, rejection: RequestRejection, method: string, url: string): void {
    host.log({ level: 'info', msg: 'request refused', dataPlane: host.id, listener: ctx.route.arn, status: rejection.status, reason: rejection.reason, method, url, version: 'HTTP/2.0' });
    if (clientErrorChannel.hasSubscribers) {
      clientErrorChannel.publish({ dataPlaneId: host.id, listenerArn: ctx.route.arn, status: rejection.status, reason: rejection.reason } satisfies ClientErrorMessage);
    }
    this.sendError(rejection.status, true);
    if (requestEndChannel.hasSubscribers) {
      publishRefusal(host, ctx, this, {
        method,
        url,
        version: 'HTTP/2.0',
        status: rejection.status,
        reason: rejection.reason,
        verdict: rejection.verdict ?? null,
        requestTime: this.requestTime,
        durationMs: performance.now() - this.requestStartedAt,
        receivedBytes: this.receivedBytes,
        sentBytes: this.sentBytes,
      });
    }
    this.exchangeEnded();
  }

  // --- the request body

  streamBody(sink: BodySink): void {
    if (this.#bodyStreaming || this.plan.bodyMode === BodyMode.None) return;
    this.#bodyStreaming = true;
    const stream = this.stream;
    if (this.plan.expectContinue && !stream.headersSent && this.open) stream.additionalHeaders({ ':status': 100 });
    stream.on('data', (chunk: Buffer) => {
      this.receivedBytes += chunk.length;
      sink.onBodyData(chunk);
    });
    stream.on('end', () => {
      this.#requestComplete = true;
      sink.onBodyEnd();
    });
  }

  pauseBody(): void {
    this.stream.pause();
  }

  resumeBody(): void {
    this.stream.resume();
  }

  // --- the response

  writeHead(status: number, _reason: string, rawHeaders: readonly string[], body: BodyKind): void {
    this.responseStarted = true;
    this.statusSent = status;
    // Not `#writable()`: Node ends the writable side of a HEAD request's stream at once; its head still goes out.
    if (!this.open) return;
    const headers: OutgoingHttpHeaders = { ':status': status };
    let bytes = 0;
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
      const name = (rawHeaders[i] as string).toLowerCase();
      const value = rawHeaders[i + 1] as string;
      if (CONNECTION_SPECIFIC.has(name)) continue;
      const prev = headers[name];
      if (prev === undefined) headers[name] = value;
      else if (SINGLE_VALUE.has(name)) continue;
      else if (Array.isArray(prev)) prev.push(value);
      else headers[name] = [String(prev), value];
      bytes += name.length + value.length;
    }
    this.sentBytes += bytes;
    this.#endedWithHead = body === BodyKind.None;
    try {
      this.stream.respond(headers, { endStream: this.#endedWithHead });
      if (this.#endedWithHead) this.#responseEnded = true;
    } catch {
      // A field Node will not send (its own checks are stricter than the target parser's): nothing
      // honest can follow a head that did not go out.
      this.#endedWithHead = false;
      this.cut();
    }
  }

  flushHead(): void {
    // HEADERS and the first DATA leave in one write anyway: nghttp2 sends what is queued together.
  }

  writeBody(chunk: Buffer): boolean {
    if (!this.#writable()) return true;
    this.sentBytes += chunk.length;
    return this.stream.write(chunk);
  }

  endResponse(last: Buffer | null): void {
    if (this.#endedWithHead || !this.#writable()) return;
    this.#responseEnded = true;
    if (last !== null && last.length > 0) {
      this.sentBytes += last.length;
      this.stream.end(last);
    } else this.stream.end();
  }

  /** An answer of ebb's own; `close` has no meaning for one stream (see the file comment). */
  sendError(status: number, _close: boolean): void {
    this.responseStarted = true;
    this.statusSent = status;
    if (!this.open) return;
    if (this.stream.headersSent) return this.cut();
    const text = `${status} ${STATUS_CODES[status] ?? ''}\n`;
    const head = this.#method === 'HEAD';
    const headers = { ':status': status, 'content-type': 'text/plain', 'content-length': text.length, server: 'ebb' };
    for (const [name, value] of Object.entries(headers)) this.sentBytes += name.length + String(value).length;
    if (!head) this.sentBytes += text.length;
    this.stream.respond(headers, { endStream: head });
    this.#endedWithHead = head;
    this.#responseEnded = true;
    if (!head) this.stream.end(text, 'latin1');
  }

  exchangeEnded(): void {
    this.exchange = null;
    if (!this.#requestComplete && this.open) {
      // Answered before the request body was read whole: RST_STREAM NO_ERROR once the response has
      // gone out (Node waits for it), so the client stops sending.
      this.#resetByEbb = true;
      this.stream.close(NGHTTP2_NO_ERROR);
    }
  }

  cut(): void {
    this.#resetByEbb = true;
    // destroy(error), not close(code): close() ends the writable side first, so the client would get
    // END_STREAM (a response that looks whole) before the RST_STREAM. destroy(error) resets at once,
    // with INTERNAL_ERROR (or the code of a GOAWAY ebb sent with an error).
    if (this.open) this.stream.destroy(new Error('response cut by ebb'));
  }

  handOver(): Buffer | null {
    // Never called: an HTTP/2 request is never an upgrade (its plan has none), so no 101 is relayed.
    this.cut();
    return null;
  }

  /** A request is being served on the stream (or the stream is still open for one). */
  get inFlight(): boolean {
    return this.exchange !== null || this.open;
  }

  /**
   * At its listener's close deadline (the listener's removal, ebb's shutdown): the exchange ends as
   * an HTTP/1.1 one does there (a 502 if nothing was answered, else a cut, logged and published as
   * `listener-closed`); a stream without one is reset.
   */
  terminate(): void {
    const ex = this.exchange;
    if (ex !== null) ex.terminate('listener');
    else this.cut();
  }

  #writable(): boolean {
    const s = this.stream;
    return !s.destroyed && !s.closed && !s.writableEnded;
  }

  /** Nothing moved on the stream for the idle timeout: the exchange decides (as on an HTTP/1.1 connection). */
  #idle(): void {
    const ex = this.exchange;
    if (ex !== null) ex.clientIdle();
    else if (this.open) this.cut();
  }

  #closed(): void {
    const code = this.stream.rstCode;
    // A client reset is any RST_STREAM before ebb ended its response, NO_ERROR included: a client that
    // lets each stream reach a target and then resets it with NO_ERROR would otherwise never count
    // toward the rapid-reset bound. After the response ended, NO_ERROR is a normal close.
    const resetByClient = !this.#resetByEbb && code !== undefined && (code !== NGHTTP2_NO_ERROR || !this.#responseEnded);
    if (this.exchange !== null) this.exchange.clientClosed();
    this.#connection.streamClosed(this, resetByClient);
  }
}
