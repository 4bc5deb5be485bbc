import http from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ListenerRoute, RoutingSnapshot } from '../domain/routing-snapshot.ts';
import { requestEndChannel, upstreamErrorChannel } from './channels.ts';
import type { RequestEndMessage, UpstreamErrorMessage } from './channels.ts';
import { closingAnswer, ProxyError } from './errors.ts';
import type { PickInputs, RotationState } from './pickers/index.ts';
import { pickTarget } from './pickers/index.ts';
import { BodyMode, clientAddressOf, inspectRequest, targetHostHeader } from './request-guard.ts';
import type { RequestPlan, RequestRejection } from './request-guard.ts';
import type { TargetEntry } from './target-activity.ts';
import type { UpstreamConnection, UpstreamPool, UpstreamSink } from './upstream-pool.ts';
import { Tunnel } from './websocket-tunnel.ts';
import type { TunnelHooks } from './websocket-tunnel.ts';

/**
 * The request path: one `Exchange` per proxied request, from the client's request to the end of
 * the response. Phases: inspect (request-guard) → pick (the group's algorithm on the current
 * snapshot) → acquire a pooled connection → write the head and stream the body → relay the
 * response head and stream its body → end (activity counters, events, onIdle).
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
  route: ListenerRoute;
  /** The port actually bound (differs from `route.port` when that is 0); goes into X-Forwarded-Port. */
  localPort: number;
  /** Stop keeping client connections alive (the listener is closing or ebb is shutting down). */
  closing: boolean;
  /** The tunnels opened through this listener (so its removal can close them at its deadline). */
  readonly tunnels: Set<Tunnel>;
}

/** ServerResponse that carries its exchange, so shared listeners need no per-request closures. */
export class EbbResponse extends http.ServerResponse<IncomingMessage> {
  exchange: Exchange | null = null;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

function onResponseClose(this: EbbResponse): void {
  const ex = this.exchange;
  if (ex !== null) ex.clientClosed();
}

function onResponseDrain(this: EbbResponse): void {
  const ex = this.exchange;
  if (ex === null) return;
  ex.waitingDrain = false;
  if (ex.conn !== null) ex.conn.socket.resume();
}

export class Exchange implements UpstreamSink {
  conn: UpstreamConnection | null = null;
  /** The client is slow: the target's socket is paused until the response drains. */
  waitingDrain = false;
  /** The target is slow to read: the request body is paused until the target's socket drains. */
  private bodyWaiting = false;
  private ended = false;
  private retried = false;
  private startMs = 0;
  private sentMs = 0;
  private responseMs = -1;
  private fromTarget = false;

  constructor(
    private readonly host: ProxyHost,
    private readonly ctx: ListenerContext,
    readonly req: IncomingMessage,
    readonly res: EbbResponse,
    readonly entry: TargetEntry,
    private readonly plan: RequestPlan,
    private readonly groupArn: string | null,
  ) {
    if (requestEndChannel.hasSubscribers) this.startMs = performance.now();
  }

  start(): void {
    const s = this.ctx.route.settings;
    this.entry.requests++;
    this.res.exchange = this;
    this.res.on('close', onResponseClose);
    const conn = this.host.pool.acquire(this.entry, s.targetConnectTimeoutMs, s.idleTimeoutMs);
    this.conn = conn;
    conn.assign(this, this.req.method === 'HEAD');
  }

  onConnected(conn: UpstreamConnection): void {
    const plan = this.plan;
    const sock = conn.socket;
    const timeout = this.ctx.route.settings.targetResponseTimeoutMs;
    if (this.startMs !== 0) this.sentMs = performance.now();
    sock.write(`${plan.head}\r\n`, 'latin1');
    if (plan.bodyMode === BodyMode.None) {
      conn.armResponse(timeout);
      return;
    }
    const chunked = plan.bodyMode === BodyMode.Chunked;
    const req = this.req;
    const pool = this.host.pool;
    req.on('data', (chunk: Buffer) => {
      if (this.conn !== conn) return;
      conn.lastActive = pool.now;
      let ok: boolean;
      if (chunked) {
        sock.cork();
        sock.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
        sock.write(chunk);
        ok = sock.write('\r\n', 'latin1');
        sock.uncork();
      } else ok = sock.write(chunk);
      if (!ok) {
        req.pause();
        this.bodyWaiting = true;
        sock.once('drain', () => {
          this.bodyWaiting = false;
          req.resume();
        });
      }
    });
    req.on('end', () => {
      if (this.conn !== conn) return;
      if (chunked) sock.write('0\r\n\r\n', 'latin1');
      conn.armResponse(timeout);
    });
  }

  onResponseHead(status: number, reason: string, rawHeaders: string[]): boolean {
    const res = this.res;
    if (this.startMs !== 0) this.responseMs = performance.now() - this.sentMs;
    if (this.ctx.closing) res.shouldKeepAlive = false;
    try {
      if (reason === '') res.writeHead(status, rawHeaders);
      else res.writeHead(status, reason, rawHeaders);
    } catch {
      // Node refused a header name or value: the target's answer is not valid HTTP.
      this.conn?.destroy();
      this.failed(new ProxyError('upstream-garbage', 'invalid-header'));
      return false;
    }
    this.fromTarget = true;
    return true;
  }

  onResponseBody(chunk: Buffer): void {
    const res = this.res;
    if (!res.write(chunk) && !this.waitingDrain) {
      this.waitingDrain = true;
      this.conn?.socket.pause();
      res.once('drain', onResponseDrain);
    }
  }

  onResponseEnd(last: Buffer | null): void {
    this.conn = null;
    if (last === null) this.res.end();
    else this.res.end(last);
    this.finish(this.fromTarget ? this.res.statusCode : 502, null);
  }

  onUpstreamError(err: ProxyError, retryable: boolean): void {
    this.conn = null;
    if (this.ended) return;
    if (
      retryable &&
      !this.retried &&
      this.plan.bodyMode === BodyMode.None &&
      IDEMPOTENT.has(this.req.method as string) &&
      this.entry.routable
    ) {
      // A pooled connection the target had already closed: once more, on a fresh connection.
      this.retried = true;
      const s = this.ctx.route.settings;
      let conn = this.host.pool.acquire(this.entry, s.targetConnectTimeoutMs, s.idleTimeoutMs);
      while (conn.reused) {
        conn.destroy();
        conn = this.host.pool.acquire(this.entry, s.targetConnectTimeoutMs, s.idleTimeoutMs);
      }
      this.conn = conn;
      conn.assign(this, this.req.method === 'HEAD');
      return;
    }
    this.failed(err);
  }

  /** The client went away (or the response finished: then this is a no-op). */
  clientClosed(): void {
    if (this.ended) return;
    const conn = this.conn;
    this.conn = null;
    if (conn !== null) conn.destroy();
    this.finish(499, new ProxyError('client-aborted', ''));
  }

  /**
   * Nothing moved on the client's connection for the listener's idle timeout (its socket timeout).
   * A request body that stalls closes both sides (408 if nothing was sent yet; 504 if it is the
   * target that stopped reading); a response that stalls, or that the client stops reading, cuts
   * the client. While the target has the whole request and has not answered yet, the target
   * response timeout decides instead.
   */
  clientIdle(): void {
    if (this.ended) return;
    let err: ProxyError;
    if (this.res.headersSent) {
      err = this.waitingDrain ? new ProxyError('client-timeout', 'response-not-read') : new ProxyError('idle-timeout', 'response');
    } else if (this.plan.bodyMode !== BodyMode.None && !this.req.complete) {
      err = this.bodyWaiting ? new ProxyError('idle-timeout', 'request-body-not-read') : new ProxyError('client-timeout', 'request-body');
    } else return;
    const conn = this.conn;
    this.conn = null;
    if (conn !== null) conn.destroy();
    this.failed(err);
  }

  /**
   * Ends the exchange at a drain deadline: a 502 with `Connection: close` if the response has not
   * started, otherwise the client connection is cut. Returns the number of sockets closed.
   */
  terminate(): number {
    if (this.ended) return 0;
    let closed = 0;
    const conn = this.conn;
    this.conn = null;
    if (conn !== null) {
      conn.destroy();
      closed++;
    }
    if (this.res.headersSent) closed++; // the client connection is cut (else it gets a 502 and closes after it)
    this.failed(new ProxyError('terminated', ''));
    return closed;
  }

  private failed(err: ProxyError): void {
    if (this.ended) return;
    const res = this.res;
    this.host.log({
      level: 'warn',
      msg: 'proxy error',
      dataPlane: this.host.id,
      listener: this.ctx.route.arn,
      targetKey: this.entry.key,
      kind: err.kind,
      source: err.source,
      detail: err.detail,
      status: res.headersSent ? null : err.status,
      method: this.req.method,
      url: this.req.url,
    });
    if (upstreamErrorChannel.hasSubscribers && err.source === 'upstream') {
      upstreamErrorChannel.publish({ dataPlaneId: this.host.id, targetKey: this.entry.key, reason: err.reason } satisfies UpstreamErrorMessage);
    }
    if (!res.headersSent) {
      // Close after the answer when the request body was not read whole (its framing is lost).
      sendError(res, err.status, err.kind === 'terminated' || !this.req.complete || this.ctx.closing);
      this.finish(err.status, err);
    } else {
      // The response has started: the only honest signal left is to cut the client connection.
      res.destroy();
      this.finish(res.statusCode, err);
    }
  }

  private finish(status: number, err: ProxyError | null): void {
    if (this.ended) return;
    this.ended = true;
    this.res.exchange = null;
    // A request body not read to its end (the target answered early, or the exchange failed): read
    // and discard the rest, so a request paused for back-pressure does not hold the client's
    // keep-alive connection (Node parses its next request only after this one's end).
    if (this.plan.bodyMode !== BodyMode.None && !this.req.readableEnded) this.req.resume();
    const entry = this.entry;
    entry.requests--;
    // `completed` counts exchanges whose response was relayed whole (the drain record's "finished"),
    // not ones ebb answered, cut at a deadline, or the client abandoned.
    if (err === null) entry.completed++;
    if (this.startMs !== 0 && requestEndChannel.hasSubscribers) {
      const msg: RequestEndMessage = {
        dataPlaneId: this.host.id,
        listenerArn: this.ctx.route.arn,
        targetGroupArn: this.groupArn,
        targetKey: entry.key,
        method: this.req.method as string,
        status,
        fromTarget: this.fromTarget && err === null,
        durationMs: performance.now() - this.startMs,
        targetResponseMs: this.responseMs,
        errorReason: err === null ? null : err.reason,
      };
      requestEndChannel.publish(msg);
    }
    if (!entry.routable && !entry.busy) this.host.workEnded(entry);
  }
}

function sendError(res: http.ServerResponse, status: number, close: boolean): void {
  if (close) res.shouldKeepAlive = false;
  res.writeHead(status, ERROR_HEADERS[status] ?? ERROR_HEADERS[502]);
  res.end(ERROR_BODIES[status] ?? ERROR_BODIES[502]);
}

const ERROR_BODIES: Record<number, string> = {};
const ERROR_HEADERS: Record<number, string[]> = {};
for (const status of [400, 408, 431, 502, 503, 504, 505]) {
  const body = `${status} ${http.STATUS_CODES[status]}\n`;
  ERROR_BODIES[status] = body;
  ERROR_HEADERS[status] = ['Content-Type', 'text/plain', 'Content-Length', String(body.length), 'Server', 'ebb'];
}

/** Answers an error ebb found itself (no target involved), and publishes the request end. */
function answer(host: ProxyHost, ctx: ListenerContext, req: IncomingMessage, res: http.ServerResponse, status: number, reason: string, close: boolean, groupArn: string | null): void {
  host.log({ level: 'warn', msg: 'request refused', dataPlane: host.id, listener: ctx.route.arn, status, reason, method: req.method, url: req.url });
  sendError(res, status, close || ctx.closing);
  if (requestEndChannel.hasSubscribers) {
    requestEndChannel.publish({
      dataPlaneId: host.id,
      listenerArn: ctx.route.arn,
      targetGroupArn: groupArn,
      targetKey: null,
      method: req.method as string,
      status,
      fromTarget: false,
      durationMs: 0,
      targetResponseMs: -1,
      errorReason: reason,
    } satisfies RequestEndMessage);
  }
}

/**
 * Client connections on which ebb refused a request (answered, then closing). Requests the client
 * pipelined behind the refused one were parsed by Node from the same bytes, but their framing can no
 * longer be trusted: none of them is forwarded.
 */
const refusedConnections = new WeakSet<object>();

/** Marks a client connection refused: no further request on it reaches a target. */
export function refuseConnection(socket: object): void {
  refusedConnections.add(socket);
}

/** The 'request' handler of a listener's server. */
export function handleRequest(host: ProxyHost, ctx: ListenerContext, req: IncomingMessage, res: EbbResponse): void {
  if (refusedConnections.has(req.socket)) {
    // Never answered: the connection closes after the refusal's own answer.
    res.shouldKeepAlive = false;
    req.resume();
    return;
  }
  const route = ctx.route;
  if (ctx.closing) res.shouldKeepAlive = false;
  const plan: RequestPlan = { head: '', bodyMode: BodyMode.None, contentLength: 0, addHost: false };
  const rejection = inspectRequest(req, route.settings, clientAddressOf(req.socket.remoteAddress), ctx.localPort, plan);
  if (rejection !== null) return reject(host, ctx, req, res, rejection);
  const groupArn = route.targetGroupArn;
  const entry = pickEntry(host, groupArn);
  if (typeof entry === 'string') return answer(host, ctx, req, res, 503, entry, false, groupArn);
  if (plan.addHost) plan.head += `Host: ${targetHostHeader(entry.host, entry.port)}\r\n`;
  new Exchange(host, ctx, req, res, entry, plan, groupArn).start();
}

/** The entry of the target the group's algorithm picks on the current snapshot, or why there is none. */
function pickEntry(host: ProxyHost, groupArn: string | null): TargetEntry | 'no-target-group' | 'no-target' {
  const group = groupArn === null ? undefined : host.snapshot.targetGroups.get(groupArn);
  if (group === undefined) return 'no-target-group';
  const target = pickTarget(group, host.rotation(group.arn), host.pickInputs);
  const entry = target === null ? undefined : host.entries.get(target.key);
  return entry ?? 'no-target';
}

function reject(host: ProxyHost, ctx: ListenerContext, req: IncomingMessage, res: http.ServerResponse, r: RequestRejection): void {
  refusedConnections.add(req.socket);
  answer(host, ctx, req, res, r.status, r.reason, true, ctx.route.targetGroupArn);
}

/** The 'upgrade' handler: a tunnel to a picked target, or an error answer on the raw socket. */
export function handleUpgrade(host: ProxyHost, ctx: ListenerContext, req: IncomingMessage, socket: Duplex, first: Buffer): void {
  if (refusedConnections.has(req.socket)) {
    socket.destroy();
    return;
  }
  const route = ctx.route;
  const plan: RequestPlan = { head: '', bodyMode: BodyMode.None, contentLength: 0, addHost: false };
  const rejection = inspectRequest(req, route.settings, clientAddressOf(req.socket.remoteAddress), ctx.localPort, plan);
  if (rejection !== null) return refuseUpgrade(host, route.arn, socket, rejection.status, rejection.reason);
  if (plan.bodyMode !== BodyMode.None) return refuseUpgrade(host, route.arn, socket, 400, 'upgrade-with-body');
  const entry = pickEntry(host, route.targetGroupArn);
  if (typeof entry === 'string') return refuseUpgrade(host, route.arn, socket, 503, entry);
  const upgrade = headerValue(req, 'upgrade');
  if (plan.addHost) plan.head += `Host: ${targetHostHeader(entry.host, entry.port)}\r\n`;
  const head = `${plan.head}Connection: Upgrade\r\nUpgrade: ${upgrade}\r\n\r\n`;
  new Tunnel(entry, socket, head, first, route.settings.targetConnectTimeoutMs, route.settings.idleTimeoutMs, host.tunnelHooks, ctx.tunnels);
}

function refuseUpgrade(host: ProxyHost, listenerArn: string, socket: Duplex, status: number, reason: string): void {
  host.log({ level: 'warn', msg: 'upgrade refused', dataPlane: host.id, listener: listenerArn, status, reason });
  socket.end(closingAnswer(status));
  socket.on('error', () => socket.destroy());
}

function headerValue(req: IncomingMessage, lower: string): string {
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).toLowerCase() === lower) return raw[i + 1] as string;
  return '';
}
