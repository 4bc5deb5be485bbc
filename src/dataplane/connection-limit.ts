import { readFileSync } from 'node:fs';
import type net from 'node:net';
import { realClock, type Clock, type TimerHandle } from '../shared/clock.ts';
import {
  connectionCloseChannel,
  connectionCountChannel,
  connectionOpenChannel,
  connectionRefusedChannel,
  type ConnectionMessage,
  type ConnectionRefusedMessage,
} from './channels.ts';

/**
 * A limit on client connections, derived from the process's open-file limit, as HAProxy derives
 * `maxconn` from `ulimit -n` when none is configured (HAProxy configuration.txt, "maxconn" in the
 * global section; `compute_ideal_maxconn()` in its src/limits.c counts two descriptors per proxied
 * connection after subtracting listeners and checks).
 *
 * Why: at the descriptor limit accept() fails with EMFILE, and libuv then accepts and closes the
 * waiting connections itself (`uv__emfile_trick` in src/unix/stream.c), so Node never sees an
 * error and ebb refuses clients without a word. Below the limit Node can refuse them itself: a
 * `net.Server` (and so an `http.Server`) with `maxConnections` closes each connection beyond it at
 * accept and emits `'drop'` (Node docs, net: `server.maxConnections` and Event `'drop'`, added in
 * v18.6.0), which ebb counts and logs. Keeping clients below the descriptor limit also leaves descriptors for what each client
 * connection needs next: its target connection.
 *
 * The limit is one budget for the whole process, shared by every server attached to it, since the
 * descriptors are the process's: each server's `maxConnections` is kept at its own open connections
 * plus what is left of the budget, so no server can take more than the remainder, and with a
 * single server it is simply the limit.
 */

/** Descriptors for the Node runtime and ebb's own files: measured 28 open for an idle `ebb serve`
 *  on Node 20 (stdio, epoll and eventfds, libuv's signal and thread-pool pipes, the SQLite file and
 *  its WAL, the listening sockets), rounded up. */
export const RUNTIME_FDS = 32;
/** Admin API clients at once (the CLI, the dashboard, an SDK). */
export const ADMIN_FDS = 16;
/** Health checks: each check opens its own connection to a target and closes it (no keep-alive),
 *  so this covers 64 targets being checked at the same moment. */
export const HEALTH_CHECK_FDS = 64;
/** Descriptors kept back from client and target connections: 32 + 16 + 64 = 112. */
export const FD_RESERVE = RUNTIME_FDS + ADMIN_FDS + HEALTH_CHECK_FDS;
/**
 * Assumed when the limit cannot be read (not Linux, or no /proc): 1024 is the usual Linux soft
 * limit, and below what Node ends up with on macOS (it raises the default soft limit of 256 at
 * startup). Pass `maxConnections` to do better where /proc is missing.
 */
export const DEFAULT_NOFILE = 1024;
/** Shortest time between two log lines about refused connections on one listener. */
export const DROP_LOG_INTERVAL_MS = 10_000;
/** The `msg` of the log line about refused connections. */
export const DROP_MESSAGE = 'connections refused at the connection limit';

/** The caller's say over the limit (the configuration file will set it). */
export interface ConnectionLimitOptions {
  /**
   * Client connections allowed at once, across every listener of the process; replaces the limit
   * derived from the open-file limit. A positive integer, or `Infinity` for no limit. Default: derived.
   */
  readonly maxConnections?: number;
}

export interface ConnectionLimitInit extends ConnectionLimitOptions {
  /** The open-file limit to derive from; default: read from /proc/self/limits (see `readNofileLimit`). */
  readonly nofile?: NofileLimit;
  /** Time for the rate limit on log lines; default the real clock. */
  readonly clock?: Clock;
  /** Shortest time between two log lines per listener, in ms; default `DROP_LOG_INTERVAL_MS`. */
  readonly logIntervalMs?: number;
}

/** The soft open-file limit (`Infinity` when unlimited) and where it came from. */
export interface NofileLimit {
  readonly soft: number;
  readonly source: 'proc' | 'default';
}

/** How a limit was arrived at, for the log and a future metrics endpoint. */
export interface DerivedLimit {
  /** Client connections allowed at once; `Infinity` when there is none. */
  readonly maxConnections: number;
  /** The open-file limit it was derived from (`Infinity`: unlimited). */
  readonly nofile: number;
  /** Descriptors kept back for everything but client and target connections (0 when not derived). */
  readonly reserve: number;
  /** One line saying how, e.g. `floor((1024 open files - 112 reserved) / 2) = 456`. */
  readonly derivation: string;
  /** What an operator can do about connections refused at this limit. */
  readonly action: string;
}

/**
 * The soft "Max open files" of a /proc/<pid>/limits text (columns: name, soft, hard, units):
 * `Infinity` for "unlimited", null when the line is missing or unreadable.
 */
export function parseNofileLimit(limitsText: string): number | null {
  const m = /^Max open files[ \t]+(\S+)[ \t]+\S+/m.exec(limitsText);
  if (m === null) return null;
  const soft = m[1] ?? '';
  if (soft === 'unlimited') return Infinity;
  if (!/^[0-9]{1,15}$/.test(soft)) return null;
  return Number(soft);
}

/**
 * This process's soft open-file limit. Node has no getrlimit, so it is read from /proc/self/limits;
 * elsewhere (or if that fails) `DEFAULT_NOFILE` is assumed. Node raises its soft limit to the hard
 * limit at startup, so this is in effect the hard limit the process was started with.
 */
export function readNofileLimit(read: () => string = () => readFileSync('/proc/self/limits', 'utf8')): NofileLimit {
  let text: string;
  try {
    text = read();
  } catch {
    return { soft: DEFAULT_NOFILE, source: 'default' };
  }
  const soft = parseNofileLimit(text);
  return soft === null ? { soft: DEFAULT_NOFILE, source: 'default' } : { soft, source: 'proc' };
}

/**
 * The client-connection limit for an open-file limit:
 *
 *     reserve        = min(FD_RESERVE, floor(nofile / 2))
 *     maxConnections = max(1, floor((nofile - reserve) / 2))
 *
 * Halved because each client connection may hold one target connection: HTTP/1.1 serves one
 * exchange at a time per connection, a WebSocket tunnel holds one target socket, and the pool only
 * opens a target connection when no idle one is free, so target connections (busy and idle) stay at
 * or below the most client exchanges ever in flight. HAProxy counts the same two descriptors per
 * connection, and Envoy's FAQ ("How does Envoy prevent file descriptor exhaustion?") advises
 * keeping the sum of connection limits below half the descriptor limit. The reserve is capped at half the descriptors so that a small limit still gives
 * clients a quarter of them (64 → 16) instead of nothing. Examples: 1024 → 456, 65536 → 32712.
 */
export function deriveConnectionLimit(nofile: NofileLimit, options: ConnectionLimitOptions = {}): DerivedLimit {
  const soft = nofile.soft;
  const assumed = nofile.source === 'default' ? ' (assumed: /proc/self/limits could not be read)' : '';
  const override = options.maxConnections;
  if (override !== undefined) {
    if (!(override === Infinity || (Number.isSafeInteger(override) && override > 0))) {
      throw new RangeError(`maxConnections must be a positive integer or Infinity; got ${override}`);
    }
    return {
      maxConnections: override,
      nofile: soft,
      reserve: 0,
      derivation: `set by configuration to ${override}; the open-file limit is ${soft}${assumed}`,
      action: `raise the configured connection limit, and the open-file limit (ulimit -n) with it: about 2 descriptors per connection plus ${FD_RESERVE}`,
    };
  }
  if (soft === Infinity) {
    return { maxConnections: Infinity, nofile: soft, reserve: 0, derivation: 'the open-file limit is unlimited', action: 'none needed' };
  }
  const reserve = Math.min(FD_RESERVE, Math.floor(soft / 2));
  const maxConnections = Math.max(1, Math.floor((soft - reserve) / 2));
  return {
    maxConnections,
    nofile: soft,
    reserve,
    derivation: `floor((${soft} open files${assumed} - ${reserve} reserved) / 2) = ${maxConnections}, one descriptor for each client and one for its target`,
    action:
      'raise the open-file limit (ulimit -n; LimitNOFILE= for a systemd service, --ulimit nofile= for Docker) and restart ebb: ' +
      'Node raises its soft limit to the hard one at startup, so the hard limit is the one that counts',
  };
}

/**
 * The process's counts of its client connections, updated as they open, close and are refused: what the
 * drop log lines say. Metrics count from the `ebb:connection:*` channels instead (`attachConnectionLimit`),
 * which reach ebb's own process from data-plane workers too.
 */
export interface ConnectionCounters {
  /** Client connections open now, across every attached server. */
  readonly open: number;
  /** Connections refused at the limit since startup, all listeners together. */
  readonly droppedTotal: number;
  /** Connections refused at the limit since startup, by listener (never reset: a Prometheus counter). */
  readonly dropped: ReadonlyMap<string, number>;
}

/** One rate-limited log line about connections refused on one listener. */
export interface DropReport {
  readonly level: 'warn';
  readonly msg: typeof DROP_MESSAGE;
  readonly listener: string;
  /** Refused since the previous line for this listener. */
  readonly dropped: number;
  /** Refused on this listener since startup. */
  readonly droppedTotal: number;
  /** Client connections open on all listeners when the line was written. */
  readonly open: number;
  readonly maxConnections: number;
  readonly derivation: string;
  readonly action: string;
}

/** One server under a `ConnectionLimit`. */
export interface Attachment {
  readonly server: net.Server;
  readonly listener: string;
  open: number;
  /** Drops not yet reported. */
  pending: number;
  /** Set while a log line was written less than the interval ago. */
  timer: TimerHandle | null;
}

class Counters implements ConnectionCounters {
  open = 0;
  droppedTotal = 0;
  readonly dropped = new Map<string, number>();
}

/**
 * The connection budget of one process (hold one per data plane): the limit, how it was derived,
 * the counters, and the servers sharing the budget. See `attachConnectionLimit`.
 */
export class ConnectionLimit {
  readonly limit: DerivedLimit;
  readonly clock: Clock;
  readonly logIntervalMs: number;
  readonly #counters = new Counters();
  /** Servers listening now: the ones whose `maxConnections` follows the budget. */
  readonly #listening = new Set<Attachment>();
  /** Descriptors held beyond the reserve (see `holdDescriptors`). */
  #held = 0;

  constructor(init: ConnectionLimitInit = {}) {
    this.limit = deriveConnectionLimit(init.nofile ?? readNofileLimit(), init);
    this.clock = init.clock ?? realClock;
    this.logIntervalMs = init.logIntervalMs ?? DROP_LOG_INTERVAL_MS;
  }

  /**
   * Client connections allowed at once across every attached server, less what held descriptors take
   * (see `holdDescriptors`); `Infinity` when none.
   */
  get maxConnections(): number {
    const max = this.limit.maxConnections;
    return max === Infinity ? max : Math.max(1, max - this.#heldConnections);
  }

  /** How the limit was derived, with what held descriptors took from it. */
  get derivation(): string {
    const held = this.#heldConnections;
    return held === 0 ? this.limit.derivation : `${this.limit.derivation}, less ${held} for the ${this.#held} descriptors of listening-socket copies`;
  }

  /** Open and refused connections, read-only. */
  get counters(): ConnectionCounters {
    return this.#counters;
  }

  /** For `attachConnectionLimit`: a connection was accepted on `a`. */
  opened(a: Attachment): void {
    a.open++;
    this.#counters.open++;
    this.#rebalance();
  }

  /** For `attachConnectionLimit`: a connection of `a` closed. */
  closed(a: Attachment): void {
    a.open--;
    this.#counters.open--;
    this.#rebalance();
  }

  /** For `attachConnectionLimit`: Node refused a connection for `listener`. */
  dropped(listener: string): void {
    this.#counters.droppedTotal++;
    this.#counters.dropped.set(listener, (this.#counters.dropped.get(listener) ?? 0) + 1);
  }

  /**
   * Descriptors the data plane holds beyond the reserve (`delta` > 0) or gives back (< 0): the copies
   * of its listening sockets (accept-copies.ts). A derived limit leaves them room, one connection for
   * every two (a connection is two descriptors); a configured one is the operator's and stays.
   */
  holdDescriptors(delta: number): void {
    this.#held = Math.max(0, this.#held + delta);
    this.#rebalance();
  }

  /** Client connections the held descriptors take from a derived budget. */
  get #heldConnections(): number {
    return this.limit.reserve > 0 ? Math.ceil(this.#held / 2) : 0;
  }

  /** For `attachConnectionLimit`: `a` started (true) or stopped (false) listening. */
  listening(a: Attachment, on: boolean): void {
    if (on) this.#listening.add(a);
    else this.#listening.delete(a);
    this.#rebalance();
  }

  /**
   * Each listening server may accept what it holds plus what is left of the budget. Node compares
   * its own count with `maxConnections` at each accept, before the 'connection' event, and the
   * value set here after every change is current for the next one. A socket Node has already let
   * go but whose 'close' event is still to come is counted here a moment longer: that errs on the
   * side of refusing.
   */
  #rebalance(): void {
    const max = this.maxConnections;
    if (max === Infinity) return;
    const left = Math.max(0, max - this.#counters.open);
    for (const a of this.#listening) a.server.maxConnections = a.open + left;
  }
}

/**
 * Puts `server` under `limit`: its `maxConnections` follows the shared budget, its connections are
 * counted, and every connection Node refuses at the limit (`'drop'`) is counted for `listener` and
 * reported through `report` — at once for the first, then at most one line per `logIntervalMs`
 * carrying how many were refused meanwhile, so a flood of refusals costs one line per interval and
 * none goes uncounted. Call before the server listens. Returns a function that detaches (also done
 * when the server emits 'close'); connections still open stay counted until they close.
 *
 * Each connection accepted, closed and refused is also published on `ebb:connection:open`, `:close`
 * and `:refused` (channels.ts) while they have a subscriber: ebb's metrics in this process, or a
 * worker's telemetry forwarder, which carries them to ebb's process.
 */
export function attachConnectionLimit(
  server: net.Server,
  limit: ConnectionLimit,
  listener: string,
  report: (line: DropReport) => void,
): () => void {
  const a: Attachment = { server, listener, open: 0, pending: 0, timer: null };
  let detached = false;
  // Every connection a server accepts has the server's own port as its local port: read once (a system
  // call each time it is read), not per connection.
  let listeningPort: number | null = null;
  if (limit.maxConnections !== Infinity) server.maxConnections = limit.maxConnections;

  const emit = (dropped: number): void => {
    const line: DropReport = {
      level: 'warn',
      msg: DROP_MESSAGE,
      listener,
      dropped,
      droppedTotal: limit.counters.dropped.get(listener) ?? 0,
      open: limit.counters.open,
      maxConnections: limit.maxConnections,
      derivation: limit.derivation,
      action: limit.limit.action,
    };
    try {
      report(line);
    } catch {
      // a failing logger must not break accepting
    }
  };
  const windowEnds = (): void => {
    a.timer = null;
    if (a.pending === 0) return;
    const n = a.pending;
    a.pending = 0;
    emit(n);
    a.timer = limit.clock.setTimer(limit.logIntervalMs, windowEnds);
  };

  const onDrop = (data?: { localPort?: number }): void => {
    limit.dropped(listener);
    if (connectionRefusedChannel.hasSubscribers) {
      connectionRefusedChannel.publish({ pid: PID, listenerArn: listener, listenerPort: data?.localPort ?? 0 } satisfies ConnectionRefusedMessage);
    }
    if (a.timer !== null) {
      a.pending++;
      return;
    }
    emit(1);
    a.timer = limit.clock.setTimer(limit.logIntervalMs, windowEnds);
  };
  const onConnection = (socket: net.Socket): void => {
    limit.opened(a);
    // Nothing is built while nobody listens; a connection whose open was published has its close published too.
    const port = connectionOpenChannel.hasSubscribers ? publishOpened(listener, (listeningPort ??= portOf(server, socket))) : null;
    socket.once('close', () => {
      limit.closed(a);
      if (port !== null) publishClosed(listener, port);
    });
  };
  const onListening = (): void => {
    listeningPort = null;
    limit.listening(a, true);
  };
  const detach = (): void => {
    if (detached) return;
    detached = true;
    server.off('drop', onDrop);
    server.off('connection', onConnection);
    server.off('listening', onListening);
    server.off('close', detach);
    limit.listening(a, false);
    a.timer?.cancel();
    a.timer = null;
    if (a.pending > 0) {
      const n = a.pending;
      a.pending = 0;
      emit(n);
    }
  };

  server.on('drop', onDrop);
  server.on('connection', onConnection);
  server.on('listening', onListening);
  server.on('close', detach);
  if (server.listening) limit.listening(a, true);
  return detach;
}

const PID = process.pid;

/** A listener's client connections open in this process whose open was published, and the port of the last one. */
interface PublishedOpen {
  open: number;
  listenerPort: number;
}

/**
 * By listener ARN: the `open` of the connection messages. Counted for the process, not per server, so a
 * listener opened again on a new address (the old server still finishing its connections) or served by
 * two data planes in one process is one count.
 */
const publishedOpen = new Map<string, PublishedOpen>();

/** The port `server` listens on, or failing that the one `socket` was accepted on. */
function portOf(server: net.Server, socket: net.Socket): number {
  const address = server.address();
  return typeof address === 'object' && address !== null ? address.port : (socket.localPort ?? 0);
}

/** Publishes a connection accepted on `listener` at `listenerPort`; returns the port, for its close. */
function publishOpened(listener: string, listenerPort: number): number {
  let count = publishedOpen.get(listener);
  if (count === undefined) publishedOpen.set(listener, (count = { open: 0, listenerPort }));
  count.open++;
  count.listenerPort = listenerPort;
  connectionOpenChannel.publish({ pid: PID, listenerArn: listener, listenerPort, open: count.open } satisfies ConnectionMessage);
  return listenerPort;
}

function publishClosed(listener: string, listenerPort: number): void {
  const count = publishedOpen.get(listener);
  const open = count === undefined ? 0 : --count.open;
  if (open <= 0) publishedOpen.delete(listener);
  if (connectionCloseChannel.hasSubscribers) connectionCloseChannel.publish({ pid: PID, listenerArn: listener, listenerPort, open } satisfies ConnectionMessage);
}

/**
 * Publishes on `ebb:connection:count` the open count of each listener with connections open in this
 * process (of those whose open was published): called when this process begins to report its
 * connections to another, which has seen none of them (a worker's telemetry forwarder at its start; at
 * a hot restart the retiring ebb's, whose connections were counted by its own metrics until then).
 */
export function publishConnectionCounts(): void {
  if (!connectionCountChannel.hasSubscribers) return;
  for (const [listenerArn, { open, listenerPort }] of publishedOpen) {
    connectionCountChannel.publish({ pid: PID, listenerArn, listenerPort, open } satisfies ConnectionMessage);
  }
}
