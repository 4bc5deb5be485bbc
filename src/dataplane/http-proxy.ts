import type { ListenerRoute, RoutingSnapshot } from '../domain/routing-snapshot.ts';
import { requestEndChannel, upstreamErrorChannel } from './channels.ts';
import type { RequestEndMessage, UpstreamErrorMessage } from './channels.ts';
import type { ClientExchange, ClientSide } from './client-side.ts';
import type { DesyncVerdict } from './desync/classify.ts';
import { ProxyError } from './errors.ts';
import type { PickInputs, RotationState } from './pickers/index.ts';
import { pickTarget } from './pickers/index.ts';
import type { BodySink } from './request-body.ts';
import { BodyMode, targetHostHeader } from './request-guard.ts';
import type { BodyKind } from './response-parser.ts';
import type { TargetEntry } from './target-entry.ts';
import type { UpstreamConnection, UpstreamSink } from './upstream-connection.ts';
import type { UpstreamPool } from './upstream-pool.ts';
import { statusAndHeaders } from './response-framing.ts';
import { Tunnel } from './websocket-tunnel.ts';
import type { TunnelHooks } from './websocket-tunnel.ts';

/**
 * The request path: one `Exchange` per proxied request, from the client's request to the end of
 * the response. Phases: plan (request-guard, done by the client connection) → pick (the group's
 * algorithm on the current snapshot) → acquire a pooled connection → write the head and stream the
 * body → relay the response head and stream its body → end (activity counters, events, the client
 * connection goes on). An upgrade request takes a fresh connection; a `101` turns the exchange into
 * a `Tunnel`, any other answer is relayed like any response.
 */

/** What the request path needs from its data plane. */
export interface ProxyHost {
  readonly id: string;
  /** The current snapshot, swapped whole by `apply()`; read synchronously per request. */
  readonly snapshot: RoutingSnapshot;
  readonly entries: ReadonlyMap<string, TargetEntry>;
  readonly pool: UpstreamPool;
  readonly pickInputs: PickInputs;
  rotation(groupArn: string): RotationState;
  log(line: object): void;
  /** An exchange or tunnel of `entry` ended (the data plane checks for idleness). */
  workEnded(entry: TargetEntry): void;
  readonly tunnelHooks: TunnelHooks;
}

/** One listening server and the route it serves; `route` is replaced when settings change. */
export interface ListenerContext {
  readonly route: ListenerRoute;
  /** The port actually bound (differs from `route.port` when that is 0); goes into X-Forwarded-Port. */
  readonly localPort: number;
  /** Stop keeping client connections alive (the listener is closing or ebb is shutting down). */
  readonly closing: boolean;
  /** The tunnels opened through this listener (so its removal can close them at its deadline). */
  readonly tunnels: Set<Tunnel>;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

export class Exchange implements UpstreamSink, BodySink, ClientExchange {
  conn: UpstreamConnection | null = null;
  /** The client is slow: the target's socket is paused until the response drains. */
  #waitingDrain = false;
  /** The target is slow to read: the request body is paused until the target's socket drains. */
  #bodyWaiting = false;
  #ended = false;
  #retried = false;
  /** Request ends had subscribers when the exchange began: its times are taken (and published at its end). */
  #timed = false;
  #sentMs = 0;
  #responseMs = -1;
  #fromTarget = false;

  readonly #host: ProxyHost;
  readonly #ctx: ListenerContext;
  readonly #groupArn: string | null;

  constructor(
    host: ProxyHost,
    ctx: ListenerContext,
    readonly client: ClientSide,
    readonly entry: TargetEntry,
    groupArn: string | null,
  ) {
    this.#host = host;
    this.#ctx = ctx;
    this.#groupArn = groupArn;
    this.#timed = requestEndChannel.hasSubscribers;
  }

  start(): void {
    this.entry.requestStarted();
    this.#connect(false);
  }

  #connect(fresh: boolean): void {
    const s = this.#ctx.route.settings;
    const plan = this.client.plan;
    const upgrade = plan.upgrade !== null;
    // A client connection's first request goes on a connection of its own, as HAProxy's default
    // `http-reuse safe` does: a target that answers twice (a stray response) can then never reach a
    // client that just connected, and a failure on it is the client's to retry. Later requests reuse.
    // An HTTPS group's targets are reached over TLS, with the group's settings in the current snapshot.
    const targetTls = this.#groupArn === null ? null : (this.#host.snapshot.targetGroups.get(this.#groupArn)?.targetTls ?? null);
    const conn = this.#host.pool.acquire(this.entry, s.targetConnectTimeoutMs, s.idleTimeoutMs, fresh || upgrade || this.client.firstRequest, targetTls, upgrade);
    this.conn = conn;
    conn.assign(this, plan.method === 'HEAD', upgrade, plan.closeAfter);
  }

  onConnected(conn: UpstreamConnection): void {
    const plan = this.client.plan;
    const timeout = this.#ctx.route.settings.targetResponseTimeoutMs;
    if (this.#timed) this.#sentMs = performance.now();
    conn.writer.latin1(`${plan.head}\r\n`);
    if (plan.bodyMode === BodyMode.None) {
      conn.armResponse(timeout);
      return;
    }
    this.client.streamBody(this);
  }

  // BodySink: the client's body, to the target (re-chunked when chunked).

  onBodyData(chunk: Buffer): void {
    const conn = this.conn;
    if (conn === null || chunk.length === 0) return;
    const sock = conn.socket;
    conn.lastActive = this.#host.pool.now;
    let ok: boolean;
    if (this.client.plan.bodyMode === BodyMode.Chunked) {
      sock.cork();
      sock.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      sock.write(chunk);
      ok = sock.write('\r\n', 'latin1');
      sock.uncork();
    } else ok = conn.writer.buffer(chunk);
    if (!ok && !this.#bodyWaiting) {
      this.#bodyWaiting = true;
      this.client.pauseBody();
      // Made here rather than per exchange: most exchanges never wait for a drain.
      sock.once('drain', () => this.#targetDrained());
    }
  }

  onBodyEnd(): void {
    const conn = this.conn;
    if (conn === null) return;
    if (this.client.plan.bodyMode === BodyMode.Chunked) conn.writer.latin1('0\r\n\r\n');
    conn.armResponse(this.#ctx.route.settings.targetResponseTimeoutMs);
  }

  // UpstreamSink: the target's answer, to the client.

  onResponseHead(status: number, reason: string, rawHeaders: string[], body: BodyKind): boolean {
    if (this.#timed) this.#responseMs = performance.now() - this.#sentMs;
    this.client.writeHead(status, reason, rawHeaders, body);
    this.#fromTarget = true;
    return true;
  }

  onResponseBody(chunk: Buffer): void {
    if (!this.client.writeBody(chunk) && !this.#waitingDrain) {
      this.#waitingDrain = true;
      this.conn?.socket.pause();
      this.client.socket.once('drain', () => this.#clientDrained());
    }
  }

  holdsRead(): boolean {
    return this.client.holdsBodyBuffer !== false;
  }

  #clientDrained(): void {
    this.#waitingDrain = false;
    if (this.conn !== null) this.conn.socket.resume();
  }

  #targetDrained(): void {
    this.#bodyWaiting = false;
    this.client.resumeBody();
  }

  onResponseReadEnd(): void {
    this.client.flushHead();
  }

  onResponseEnd(last: Buffer | null): void {
    this.conn = null;
    this.client.endResponse(last);
    this.#finish(this.client.statusSent, null);
  }

  onSwitch(reason: string, rawHeaders: string[], upgrade: string, rest: Buffer): void {
    const conn = this.conn;
    if (conn === null) return;
    this.conn = null;
    const head = statusAndHeaders(101, reason, rawHeaders);
    const client = this.client;
    client.socket.write(`${head}Connection: Upgrade\r\nUpgrade: ${upgrade}\r\n\r\n`, 'latin1');
    const upstream = conn.detach();
    const held = client.handOver();
    const s = this.#ctx.route.settings;
    // The tunnel is counted before the request ends, so the target never looks idle in between.
    new Tunnel(this.entry, client.socket, upstream, held, rest.length > 0 ? rest : null, s.idleTimeoutMs, this.#host.tunnelHooks, this.#ctx.tunnels);
    this.#fromTarget = true;
    this.#finish(101, null);
  }

  onUpstreamError(err: ProxyError, retryable: boolean): void {
    this.conn = null;
    if (this.#ended) return;
    const plan = this.client.plan;
    if (retryable && !this.#retried && plan.bodyMode === BodyMode.None && IDEMPOTENT.has(plan.method) && this.entry.routable) {
      // A pooled connection the target had already closed: once more, on a fresh connection.
      this.#retried = true;
      this.#connect(true);
      return;
    }
    this.#failed(err);
  }

  // ClientExchange: what the client does.

  /** The client went away (or the response finished: then this is a no-op). */
  clientClosed(): void {
    if (this.#ended) return;
    this.#dropConnection();
    this.#finish(499, new ProxyError('client-aborted', ''));
  }

  /**
   * Nothing moved on the client's connection for the listener's idle timeout (its socket timeout).
   * A request body that stalls closes both sides (408 if nothing was sent yet; 504 if it is the
   * target that stopped reading); a response that stalls, or that the client stops reading, cuts
   * the client. While the target has the whole request and has not answered yet, the target
   * response timeout decides instead.
   */
  clientIdle(): void {
    if (this.#ended) return;
    let err: ProxyError;
    if (this.client.responseStarted) {
      err = this.#waitingDrain ? new ProxyError('client-timeout', 'response-not-read') : new ProxyError('idle-timeout', 'response');
    } else if (!this.client.requestComplete) {
      err = this.#bodyWaiting ? new ProxyError('idle-timeout', 'request-body-not-read') : new ProxyError('client-timeout', 'request-body');
    } else return;
    this.#dropConnection();
    this.#failed(err);
  }

  badRequestBody(detail: string): void {
    if (this.#ended) return;
    this.#dropConnection();
    this.#failed(new ProxyError('bad-request-body', detail));
  }

  /**
   * Ends the exchange at a deadline (its target's drain, or its listener's close): a 502 with
   * `Connection: close` if the response has not started, otherwise the client connection is cut
   * (and the cut is logged as such). Returns the number of sockets closed.
   */
  terminate(deadline: 'drain' | 'listener' = 'drain'): number {
    if (this.#ended) return 0;
    let closed = this.#dropConnection() ? 1 : 0;
    const cut = this.client.responseStarted;
    if (cut) closed++; // the client connection is cut (else it gets a 502 and closes after it)
    this.#failed(new ProxyError(deadline === 'drain' ? 'terminated' : 'listener-closed', cut ? 'cut' : ''));
    return closed;
  }

  #dropConnection(): boolean {
    const conn = this.conn;
    this.conn = null;
    if (conn === null) return false;
    conn.destroy();
    return true;
  }

  #failed(err: ProxyError): void {
    if (this.#ended) return;
    const client = this.client;
    const plan = client.plan;
    if (err.detail === 'cut') this.#logCut(err);
    else this.#host.log({
      level: 'warn',
      msg: 'proxy error',
      dataPlane: this.#host.id,
      listener: this.#ctx.route.arn,
      targetKey: this.entry.key,
      kind: err.kind,
      source: err.source,
      detail: err.detail,
      status: client.responseStarted ? null : err.status,
      method: plan.method,
      url: plan.url,
    });
    if (upstreamErrorChannel.hasSubscribers && err.source === 'upstream') {
      upstreamErrorChannel.publish({ dataPlaneId: this.#host.id, targetKey: this.entry.key, reason: err.reason } satisfies UpstreamErrorMessage);
    }
    if (!client.responseStarted) {
      // Close after the answer when the request body was not read whole, or at a deadline.
      client.sendError(err.status, err.kind === 'terminated' || err.kind === 'listener-closed' || !client.requestComplete || err.kind === 'bad-request-body');
      this.#finish(err.status, err);
    } else {
      // The response has started: the only honest signal left is to cut the client connection.
      client.cut();
      this.#finish(client.statusSent, err);
    }
  }

  /** A response still streaming at a deadline: what the client got of it before ebb cut it. */
  #logCut(err: ProxyError): void {
    const client = this.client;
    this.#host.log({
      level: 'warn',
      msg: err.kind === 'terminated' ? 'response cut at drain deadline' : 'response cut at listener close deadline',
      dataPlane: this.#host.id,
      listener: this.#ctx.route.arn,
      targetKey: this.entry.key,
      target: targetHostHeader(this.entry.host, this.entry.port),
      status: client.statusSent,
      bytesSent: client.sentBytes,
      method: client.plan.method,
      url: client.plan.url,
    });
  }

  #finish(status: number, err: ProxyError | null): void {
    if (this.#ended) return;
    this.#ended = true;
    const entry = this.entry;
    // `completed` counts exchanges whose response was relayed whole (the drain record's "finished"),
    // not ones ebb answered, cut at a deadline, or the client abandoned.
    entry.requestEnded(err === null);
    if (this.#timed && requestEndChannel.hasSubscribers) {
      const fromTarget = this.#fromTarget && err === null;
      publishRequestEnd(this.#host, this.#ctx, this.client, {
        targetGroupArn: this.#groupArn,
        targetKey: entry.key,
        target: targetHostHeader(entry.host, entry.port),
        status,
        targetStatus: this.#fromTarget ? this.client.statusSent : null,
        fromTarget,
        requestProcessingMs: this.#sentMs === 0 ? -1 : this.#sentMs - this.client.requestStartedAt,
        targetResponseMs: this.#responseMs,
        responseProcessingMs: this.#fromTarget ? 0 : -1,
        errorReason: err === null ? null : err.reason,
      });
    }
    if (!entry.routable && !entry.busy) this.#host.workEnded(entry);
    this.client.exchangeEnded();
  }
}

/** What an exchange knows of a request's end; the client connection knows the rest. */
type EndFacts = Pick<
  RequestEndMessage,
  'targetGroupArn' | 'targetKey' | 'target' | 'status' | 'targetStatus' | 'fromTarget' | 'requestProcessingMs' | 'targetResponseMs' | 'responseProcessingMs' | 'errorReason'
>;

function publishRequestEnd(host: ProxyHost, ctx: ListenerContext, client: ClientSide, f: EndFacts): void {
  const plan = client.plan;
  // Every field named in one literal, in the order the spread of `f` used to give: a spread followed
  // by sixteen more properties left V8 a dictionary-mode object per request, the costliest step of a
  // request once metrics and access logs subscribe.
  requestEndChannel.publish({
    targetGroupArn: f.targetGroupArn,
    targetKey: f.targetKey,
    target: f.target,
    status: f.status,
    targetStatus: f.targetStatus,
    fromTarget: f.fromTarget,
    requestProcessingMs: f.requestProcessingMs,
    targetResponseMs: f.targetResponseMs,
    responseProcessingMs: f.responseProcessingMs,
    errorReason: f.errorReason,
    dataPlaneId: host.id,
    listenerArn: ctx.route.arn,
    listenerPort: ctx.localPort,
    clientAddress: client.clientAddress,
    clientPort: client.clientPort,
    method: plan.method,
    url: plan.url,
    version: plan.version,
    host: plan.host,
    userAgent: plan.userAgent,
    requestTime: client.requestTime,
    durationMs: performance.now() - client.requestStartedAt,
    receivedBytes: client.receivedBytes,
    sentBytes: client.sentBytes,
    classification: plan.verdict.tier,
    classificationReason: plan.verdict.reason,
    tls: client.tls,
  } satisfies RequestEndMessage);
}

/** A request ebb refused while reading it: what its end message says beyond the connection's own facts. */
export interface RefusalFacts {
  readonly method: string;
  readonly url: string;
  readonly version: string;
  readonly status: number;
  readonly reason: string;
  readonly verdict: DesyncVerdict | null;
  readonly requestTime: number;
  readonly durationMs: number;
  readonly receivedBytes: number;
  readonly sentBytes: number;
}

/** Publishes the end of a request refused before any target was picked (no target fields, times -1). */
export function publishRefusal(host: ProxyHost, ctx: ListenerContext, client: Pick<ClientSide, 'clientAddress' | 'clientPort' | 'tls'>, f: RefusalFacts): void {
  requestEndChannel.publish({
    dataPlaneId: host.id,
    listenerArn: ctx.route.arn,
    listenerPort: ctx.localPort,
    targetGroupArn: ctx.route.targetGroupArn,
    targetKey: null,
    target: null,
    clientAddress: client.clientAddress,
    clientPort: client.clientPort,
    method: f.method,
    url: f.url,
    version: f.version,
    host: null,
    userAgent: null,
    status: f.status,
    targetStatus: null,
    fromTarget: false,
    requestTime: f.requestTime,
    durationMs: f.durationMs,
    requestProcessingMs: -1,
    targetResponseMs: -1,
    responseProcessingMs: -1,
    receivedBytes: f.receivedBytes,
    sentBytes: f.sentBytes,
    classification: f.verdict?.tier ?? null,
    classificationReason: f.verdict?.reason ?? null,
    errorReason: f.reason,
    tls: client.tls,
  } satisfies RequestEndMessage);
}

/** Answers a request ebb cannot forward (no target), and publishes the request end. */
function answer(host: ProxyHost, ctx: ListenerContext, client: ClientSide, status: number, reason: string, groupArn: string | null): void {
  host.log({ level: 'warn', msg: 'request refused', dataPlane: host.id, listener: ctx.route.arn, status, reason, method: client.plan.method, url: client.plan.url });
  client.sendError(status, false);
  if (requestEndChannel.hasSubscribers) {
    publishRequestEnd(host, ctx, client, {
      targetGroupArn: groupArn,
      targetKey: null,
      target: null,
      status,
      targetStatus: null,
      fromTarget: false,
      requestProcessingMs: -1,
      targetResponseMs: -1,
      responseProcessingMs: -1,
      errorReason: reason,
    });
  }
  client.exchangeEnded();
}

/** Serves the request a client connection has just read and planned. */
export function handleRequest(host: ProxyHost, ctx: ListenerContext, client: ClientSide & { exchange: ClientExchange | null }): void {
  const groupArn = ctx.route.targetGroupArn;
  const entry = pickEntry(host, groupArn);
  if (typeof entry === 'string') return answer(host, ctx, client, new ProxyError(entry, '').status, entry, groupArn);
  const plan = client.plan;
  if (plan.addHost) plan.head += `Host: ${targetHostHeader(entry.host, entry.port)}\r\n`;
  const ex = new Exchange(host, ctx, client, entry, groupArn);
  client.exchange = ex;
  ex.start();
}

/** The entry of the target the group's algorithm picks on the current snapshot, or why there is none. */
function pickEntry(host: ProxyHost, groupArn: string | null): TargetEntry | 'no-target-group' | 'no-target' {
  const group = groupArn === null ? undefined : host.snapshot.targetGroups.get(groupArn);
  if (group === undefined) return 'no-target-group';
  const target = pickTarget(group, host.rotation(group.arn), host.pickInputs);
  const entry = target === null ? undefined : host.entries.get(target.key);
  return entry ?? 'no-target';
}
