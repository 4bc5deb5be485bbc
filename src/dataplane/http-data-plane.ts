import type net from 'node:net';
import type { ApplyResult, DataPlane, TargetActivity, TerminateResult } from '../domain/data-plane-port.ts';
import { IDLE_ACTIVITY } from '../domain/data-plane-port.ts';
import type { ListenerRoute, RoutingSnapshot } from '../domain/routing-snapshot.ts';
import type { ProxyHost } from './http-proxy.ts';
import { ConnectionLimit } from './connection-limit.ts';
import type { ConnectionLimitOptions } from './connection-limit.ts';
import type { InheritedSockets, ListenBinding, ListenMode } from './listen-mode.ts';
import { openListener } from './listener-kinds.ts';
import type { ServedListener } from './listener-kinds.ts';
import type { PickInputs, RotationState } from './pickers/index.ts';
import { TargetEntry } from './target-entry.ts';
import { UpstreamPool } from './upstream-pool.ts';
import type { Tunnel, TunnelHooks } from './websocket-tunnel.ts';

export interface HttpDataPlaneOptions {
  /** Identifies this data plane in logs and events; default `dp-<pid>`. */
  readonly id?: string;
  /** Structured log lines (proxy errors, refused requests, listener changes). Default: none. */
  readonly log?: (line: object) => void;
  /** Idle keep-alive connections kept per target; default 256. */
  readonly maxIdlePerTarget?: number;
  /** Time between a WebSocket close frame at a deadline and the hard close; default 500 ms. */
  readonly tunnelCloseGraceMs?: number;
  /**
   * How long a listener that left the snapshot lets its connections finish (busy requests, open
   * tunnels) before closing them: tunnels with a 1001 close frame, then every socket. Default 30 s.
   */
  readonly listenerCloseTimeoutMs?: number;
  /**
   * How long the counters of a target that left the snapshot and went idle are kept (so the control
   * plane can read `completed` when its drain ends); it is freed by the first `apply()` after that.
   * Default 10 s.
   */
  readonly idleEntryRetainMs?: number;
  /** The client connection limit across this data plane's listeners; default derived from the open-file limit. */
  readonly connectionLimit?: ConnectionLimitOptions;
  /**
   * How listeners bind (listen-mode.ts): `exclusive` (the default) in ebb's own process; `shared` or
   * `reuseport` in a data-plane worker of `ebb serve --workers N` (docs/workers.md).
   */
  readonly listenMode?: ListenMode;
  /** Sockets an earlier ebb handed over (hot restart): a listener on one of their addresses listens on it. */
  readonly inheritedSockets?: InheritedSockets;
  /**
   * `exclusive` only: descriptors per listening socket, so a turn of the event loop accepts up to that
   * many connections (accept-copies.ts; `ebb serve` gives ACCEPT_COPIES). Default 1.
   */
  readonly acceptCopies?: number;
}

const EMPTY_SNAPSHOT: RoutingSnapshot = { version: 0, listeners: [], targetGroups: new Map() };

/**
 * ebb's HTTP/1.1 data plane: one server per HTTP listener of the current `RoutingSnapshot`, a pool of
 * keep-alive connections per target, and the activity per target key that drains wait on.
 *
 * `apply()` swaps the snapshot reference at once (the next request picks from it), then opens and
 * closes listeners to match. A key that leaves the snapshot gets no new work; its idle pooled
 * connections are closed, busy ones close after their response, and `onIdle` listeners are told
 * when its last request or tunnel ends (and at `apply()` if it is idle already).
 */
export class HttpDataPlane implements DataPlane {
  readonly id: string;
  /** What the request path may use of this data plane: reads of the routes, and the calls it makes back. */
  readonly #host: ProxyHost;
  #snapshot: RoutingSnapshot = EMPTY_SNAPSHOT;
  /** performance.now() when the current snapshot was swapped in (its durations are measured from then). */
  #appliedAt = performance.now();
  readonly #targets = new Map<string, TargetEntry>();
  readonly #pool: UpstreamPool;
  /** Client connections allowed at once across the listeners, and those refused at the limit. */
  readonly connectionLimit: ConnectionLimit;
  readonly #listeners = new Map<string, ServedListener>();
  /** Listeners removed from the snapshot whose connections are still finishing. */
  readonly #closingListeners = new Set<ServedListener>();
  readonly #listenerCloseTimeoutMs: number;
  readonly #entryRetainMs: number;
  readonly #rotations = new Map<string, RotationState>();
  readonly #idleListeners: Array<(key: string) => void> = [];
  readonly #logFn: (line: object) => void;
  readonly #graceMs: number;
  readonly #binding: ListenBinding;
  #applying: Promise<unknown> = Promise.resolve();
  /** How the graceful close went, once it has: whether it reached its deadline and the client connections it then cut. */
  #closeOutcome: { readonly atDeadline: boolean; readonly connectionsCut: number } | null = null;
  #closed = false;
  #closing: Promise<void> | null = null;

  constructor(options: HttpDataPlaneOptions = {}) {
    this.id = options.id ?? `dp-${process.pid}`;
    this.#logFn = options.log ?? (() => {});
    this.#graceMs = options.tunnelCloseGraceMs ?? 500;
    this.#listenerCloseTimeoutMs = options.listenerCloseTimeoutMs ?? 30_000;
    this.#entryRetainMs = options.idleEntryRetainMs ?? 10_000;
    this.connectionLimit = new ConnectionLimit(options.connectionLimit);
    const copies = options.acceptCopies ?? 1;
    this.#binding = {
      mode: options.listenMode ?? 'exclusive',
      inherited: options.inheritedSockets ?? null,
      ...(copies > 1 && {
        acceptCopies: {
          count: copies,
          log: (line: Record<string, unknown>) => this.log({ dataPlane: this.id, ...line }),
          holdDescriptors: (delta: number) => this.connectionLimit.holdDescriptors(delta),
        },
      }),
    };
    this.#pool = new UpstreamPool({ maxIdlePerKey: options.maxIdlePerTarget ?? 256 });
    const entries = this.#targets;
    const pickInputs: PickInputs = {
      outstanding: (key) => entries.get(key)?.requests ?? 0,
      random: Math.random,
      now: () => performance.now() - this.#appliedAt,
    };
    const tunnelHooks: TunnelHooks = {
      dataPlaneId: this.id,
      onClosed: (t: Tunnel) => this.#workEnded(t.entry),
      closeGraceMs: this.#graceMs,
    };
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the host's snapshot getter reads the field apply() swaps
    const plane = this;
    this.#host = {
      id: this.id,
      get snapshot() {
        return plane.#snapshot;
      },
      entries,
      pool: this.#pool,
      pickInputs,
      tunnelHooks,
      rotation: (arn) => this.#rotation(arn),
      log: (line) => this.log(line),
      workEnded: (e) => this.#workEnded(e),
    };
  }

  /** The per-target entries, by key (read-only; for inspection). */
  get entries(): ReadonlyMap<string, TargetEntry> {
    return this.#targets;
  }

  log(line: object): void {
    try {
      this.#logFn(line);
    } catch {
      // a failing logger must not break the request path
    }
  }

  #rotation(groupArn: string): RotationState {
    let r = this.#rotations.get(groupArn);
    if (r === undefined) {
      r = { next: 0 };
      this.#rotations.set(groupArn, r);
    }
    return r;
  }

  #workEnded(entry: TargetEntry): void {
    if (entry.routable || entry.busy) return;
    entry.idleSince = performance.now();
    for (const fn of this.#idleListeners) {
      try {
        fn(entry.key);
      } catch (err) {
        this.log({ level: 'error', msg: 'onIdle listener threw', error: String(err) });
      }
    }
  }

  /**
   * The routes are swapped synchronously, before `apply` returns: from that instant no request picks a
   * target the snapshot no longer routes to. Listener changes (binding takes I/O) are then made in
   * order, each time to match the newest snapshot.
   */
  apply(snapshot: RoutingSnapshot): Promise<ApplyResult> {
    if (this.#closed) return Promise.resolve({ listenerErrors: [] });
    this.#swapAndTellIdle(snapshot);
    const run = this.#applying.then(() => this.#applyListeners());
    this.#applying = run.catch(() => {});
    return run;
  }

  /**
   * Each open listener's listening socket with the address and port its route declares: what a hot
   * restart hands to the ebb that takes over (docs/restart.md).
   */
  listeningSockets(): Array<{ address: string; port: number; server: net.Server }> {
    return [...this.#listeners.values()].filter((l) => l.server.listening).map((l) => ({ address: l.route.address, port: l.route.port, server: l.server }));
  }

  /**
   * Swaps the routes of `snapshot` in and leaves the listeners as they are: a data plane being retired
   * at a hot restart serves with its successor's routes on the sockets it already has, until it closes.
   */
  applyRoutes(snapshot: RoutingSnapshot): Promise<ApplyResult> {
    if (!this.#closed) this.#swapAndTellIdle({ ...snapshot, listeners: this.#snapshot.listeners });
    return Promise.resolve({ listenerErrors: [] });
  }

  /** Swaps the routes in; the keys that just stopped being routable while idle are told idle once the caller has returned. */
  #swapAndTellIdle(snapshot: RoutingSnapshot): void {
    const becameIdle = this.#swapRoutes(snapshot);
    if (becameIdle.length > 0) queueMicrotask(() => {
      for (const e of becameIdle) this.#workEnded(e);
    });
  }

  /** The bound port of a listener (by ARN), for listeners declared with port 0; null if not open. */
  boundPort(listenerArn: string): number | null {
    const l = this.#listeners.get(listenerArn);
    return l === undefined ? null : l.port;
  }

  /** Swaps the snapshot and each key's routability; returns the keys that just stopped being routable while idle. */
  #swapRoutes(snapshot: RoutingSnapshot): TargetEntry[] {
    this.#snapshot = snapshot;
    this.#appliedAt = performance.now();
    // Routability per key.
    const seen = new Set<string>();
    for (const group of snapshot.targetGroups.values()) {
      for (const t of group.targets) {
        seen.add(t.key);
        let e = this.#targets.get(t.key);
        if (e === undefined) {
          e = new TargetEntry(t.key, t.host, t.port);
          this.#targets.set(t.key, e);
        } else if (e.host !== t.host || e.port !== t.port) {
          this.#pool.closeIdle(e);
          e.host = t.host;
          e.port = t.port;
        }
        e.routable = true;
        e.idleSince = 0;
      }
    }
    const becameIdle: TargetEntry[] = [];
    const now = performance.now();
    for (const e of this.#targets.values()) {
      if (seen.has(e.key)) continue;
      if (!e.routable) {
        // Left an earlier snapshot: free it once idle for the retention time (see TargetEntry).
        // Out of the snapshot with nothing in flight and no connection open: may be freed.
        if (e.busy || this.#pool.openCount(e) > 0) continue;
        if (e.idleSince === 0) e.idleSince = now;
        else if (now - e.idleSince >= this.#entryRetainMs) this.#targets.delete(e.key);
        continue;
      }
      e.routable = false;
      this.#pool.closeIdle(e);
      if (!e.busy) {
        e.idleSince = now;
        becameIdle.push(e);
      }
    }
    for (const arn of this.#rotations.keys()) if (!snapshot.targetGroups.has(arn)) this.#rotations.delete(arn);
    return becameIdle;
  }

  async #applyListeners(): Promise<ApplyResult> {
    if (this.#closed) return { listenerErrors: [] };
    const snapshot = this.#snapshot;
    const wanted = new Map<string, ListenerRoute>();
    for (const l of snapshot.listeners) wanted.set(l.arn, l);
    const closing: Promise<void>[] = [];
    /** `address:port` of the sockets closed here: a listener opening on one may find it not yet free. */
    const freed = new Set<string>();
    for (const [arn, l] of this.#listeners) {
      const w = wanted.get(arn);
      // Same address and port (a listener declared with port 0 keeps the port it was given) and the
      // same protocol: updated in place. A new protocol is a new kind of listener (a TLS front, flows
      // instead of requests): the old one closes as a removed one does and a new one opens.
      const samePort = w !== undefined && w.address === l.route.address && (w.port === l.route.port || w.port === l.localPort);
      if (samePort && w.protocol === l.route.protocol) continue;
      if (samePort) freed.add(`${w.address}:${l.localPort}`);
      this.#listeners.delete(arn);
      this.#closingListeners.add(l);
      closing.push(l.close(this.#listenerCloseTimeoutMs, this.#graceMs).then(() => void this.#closingListeners.delete(l)));
      this.log({ level: 'info', msg: 'listener closed', dataPlane: this.id, listener: arn });
    }
    const errors: Array<{ arn: string; code: string; message: string }> = [];
    const opening: Promise<void>[] = [];
    for (const [arn, route] of wanted) {
      const existing = this.#listeners.get(arn);
      if (existing !== undefined) {
        existing.update(route);
        continue;
      }
      const first = openListener(route, this.#host, this.connectionLimit, this.#binding);
      if (first === null) {
        errors.push({ arn, code: 'UnsupportedProtocol', message: `this data plane does not serve ${route.protocol} listeners` });
        continue;
      }
      // A socket closed above is released when the event loop has closed its handle: a bind to it
      // is retried briefly rather than refused.
      const retries = freed.has(`${route.address}:${route.port}`) ? 25 : 0;
      opening.push(
        this.#listen(arn, route, first, retries).then((err) => {
          if (err === null) return;
          const code = err.code ?? 'EUNKNOWN';
          errors.push({ arn, code, message: `cannot listen on ${route.address}:${route.port}: ${listenError(code, err.message)}` });
        }),
      );
    }
    await Promise.all(opening);
    // Closing listeners finish their in-flight requests in the background.
    void Promise.all(closing);
    return { listenerErrors: errors };
  }

  /** Binds `l` as the listener of `arn`; on EADDRINUSE tries a new one up to `retries` times, 20 ms apart. */
  async #listen(arn: string, route: ListenerRoute, l: ServedListener, retries: number): Promise<NodeJS.ErrnoException | null> {
    let listener = l;
    for (let attempt = 0; ; attempt++) {
      this.#listeners.set(arn, listener);
      const err = await listener.listen();
      if (err === null) {
        this.log({ level: 'info', msg: 'listening', dataPlane: this.id, listener: arn, address: route.address, port: listener.port });
        return null;
      }
      if (this.#listeners.get(arn) === listener) this.#listeners.delete(arn);
      if (err.code !== 'EADDRINUSE' || attempt >= retries || this.#closed || this.#snapshot.listeners.every((r) => r.arn !== arn)) return err;
      await new Promise((resolve) => setTimeout(resolve, 20));
      const next = openListener(route, this.#host, this.connectionLimit, this.#binding);
      if (next === null) return err;
      listener = next;
    }
  }

  activity(key: string): TargetActivity {
    const e = this.#targets.get(key);
    return e === undefined ? IDLE_ACTIVITY : { ...e.snapshot(), connections: this.#pool.openCount(e) };
  }

  async terminate(key: string): Promise<TerminateResult> {
    const e = this.#targets.get(key);
    if (e === undefined) return { requestsCut: 0, tunnelsClosed: 0, connectionsClosed: 0 };
    let requestsCut = 0;
    let connectionsClosed = this.#pool.closeIdle(e);
    for (const conn of this.#pool.connectionsOf(e)) {
      const sink = conn.sink;
      if (sink !== null) {
        connectionsClosed += sink.terminate();
        requestsCut++;
      } else {
        conn.destroy();
        connectionsClosed++;
      }
    }
    const tunnels = e.openTunnels();
    await Promise.all(tunnels.map((t) => t.terminate(this.#graceMs)));
    return { requestsCut, tunnelsClosed: tunnels.length, connectionsClosed: connectionsClosed + tunnels.length * 2 };
  }

  onIdle(listener: (key: string) => void): void {
    this.#idleListeners.push(listener);
  }

  /**
   * Graceful close: listeners stop accepting, busy connections finish, up to `deadlineMs`; then
   * what is left is closed. A second call returns the first call's promise (it resolves when the
   * close is done), whatever its deadline.
   */
  close(deadlineMs: number): Promise<void> {
    this.#closing ??= this.#closeNow(deadlineMs);
    return this.#closing;
  }

  /** Client connections (and TCP flows) open on its listeners, closing ones included. */
  clientConnections(): number {
    let n = 0;
    for (const l of this.#listeners.values()) n += l.openConnections;
    for (const l of this.#closingListeners) n += l.openConnections;
    return n;
  }

  /** The sum over target keys of their completed requests and tunnels. */
  completedWork(): number {
    let n = 0;
    for (const e of this.#targets.values()) n += e.snapshot().completed;
    return n;
  }

  /** How the graceful close went (null until it has ended): whether its deadline came, and the client connections cut then. */
  get closeOutcome(): { readonly atDeadline: boolean; readonly connectionsCut: number } | null {
    return this.#closeOutcome;
  }

  async #closeNow(deadlineMs: number): Promise<void> {
    this.#closed = true;
    const all = [...this.#listeners.values(), ...this.#closingListeners];
    this.#listeners.clear();
    this.#closingListeners.clear();
    let timer: NodeJS.Timeout | null = null;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), Math.max(0, deadlineMs));
    });
    const done = Promise.all(all.map((l) => l.close()));
    const r = await Promise.race([done.then(() => 'done' as const), deadline]);
    if (timer !== null) clearTimeout(timer);
    if (r === 'deadline') {
      this.log({ level: 'warn', msg: 'shutdown deadline reached', dataPlane: this.id, deadlineMs });
      // What is left is closed: tunnels politely first, then every socket (a request in flight gets a
      // 502 with Connection: close, or its response is cut: each logged and published as it ends).
      const tunnels = [...this.#targets.values()].flatMap((e) => e.openTunnels());
      await Promise.all(tunnels.map((t) => t.terminate(Math.min(this.#graceMs, 200))));
      const connectionsCut = all.reduce((n, l) => n + l.openConnections, 0);
      for (const l of all) l.destroy();
      this.#closeOutcome = { atDeadline: true, connectionsCut };
    } else this.#closeOutcome = { atDeadline: false, connectionsCut: 0 };
    this.#destroyUpstreams();
  }

  destroy(): void {
    this.#closed = true;
    for (const l of this.#listeners.values()) l.destroy();
    for (const l of this.#closingListeners) l.destroy();
    this.#listeners.clear();
    this.#closingListeners.clear();
    for (const e of this.#targets.values()) for (const t of e.openTunnels()) t.close();
    this.#destroyUpstreams();
  }

  #destroyUpstreams(): void {
    this.#pool.destroyAll();
  }
}

function listenError(code: string, message: string): string {
  switch (code) {
    case 'EADDRINUSE':
      return 'the address is already in use; stop the other process or choose another port';
    case 'EACCES':
      return 'permission denied; ports below 1024 need privileges (or use a higher port)';
    case 'EADDRNOTAVAIL':
      return 'the address is not available on this machine; check the listener address';
    default:
      return message;
  }
}
