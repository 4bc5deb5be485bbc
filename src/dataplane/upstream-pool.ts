import type { TargetTls } from '../domain/routing-snapshot.ts';
import { SlotSet, slotField } from '../shared/slot-set.ts';
import type { TargetEntry } from './target-entry.ts';
import { sameTargetTls, UpstreamConnection } from './upstream-connection.ts';
import type { ConnectionHome } from './upstream-connection.ts';

/** Tunables shared by the pools of one data plane. */
export interface PoolOptions {
  /** Idle connections kept per target key; more are closed when released. */
  readonly maxIdlePerKey: number;
}

/** The connections of one target key. */
interface KeyConnections {
  /** Idle keep-alive connections, most recently used last (LIFO keeps the warm ones busy). */
  readonly idle: UpstreamConnection[];
  /** Every connection of the key: connecting, busy or idle (a SlotSet: one may come and go per request). */
  readonly open: SlotSet<UpstreamConnection>;
}

/** The TLS session last given by a target, and the settings it was made under. */
interface KeptSession {
  readonly caPem: string | null;
  readonly session: Buffer;
}

/**
 * All upstream connections of one data plane, per target key: an idle stack and the set of open
 * ones (so a drain deadline can find them), a coarse clock, and one ticker that enforces connect,
 * response, mid-response inactivity and idle timeouts by scanning open connections (no timer per
 * request). TLS connections to HTTPS targets are pooled the same way; each target's last TLS session
 * is kept so a new connection resumes it (an abbreviated handshake), only under the CA it was
 * verified with.
 */
export class UpstreamPool implements ConnectionHome {
  /** Coarse monotonic ms, refreshed by the ticker. */
  now = performance.now();
  readonly resolutionMs = TICK_MS;
  readonly #keys = new Map<TargetEntry, KeyConnections>();
  readonly #maxIdlePerKey: number;
  /** Weak: an entry the data plane frees takes its session with it. */
  readonly #sessions = new WeakMap<TargetEntry, KeptSession>();
  #ticker: NodeJS.Timeout | null = null;

  constructor(options: PoolOptions) {
    this.#maxIdlePerKey = options.maxIdlePerKey;
  }

  /**
   * An idle connection of `entry`, or a new one. `fresh`: always a new connection (an upgrade
   * attempt, or a retry after a pooled connection turned out closed). `targetTls`: the group's TLS
   * to its targets (null: plain); an idle connection made under other settings is closed, not reused.
   * `upgrade`: a new connection read as a stream, as its socket may go to a tunnel.
   */
  acquire(entry: TargetEntry, connectTimeoutMs: number, idleTimeoutMs: number, fresh = false, targetTls: TargetTls | null = null, upgrade = false): UpstreamConnection {
    this.#ensureTicker();
    const idle = this.#keys.get(entry)?.idle;
    let conn = fresh || upgrade || idle === undefined ? undefined : idle.pop();
    // Reused only if quiet: bytes buffered on an idle connection are a response nobody asked for.
    while (conn !== undefined && (!conn.reusable || conn.socket.destroyed || conn.socket.readableLength > 0 || !sameTargetTls(conn.targetTls, targetTls))) {
      conn.destroy();
      conn = idle?.pop();
    }
    if (conn === undefined) {
      this.now = performance.now();
      conn = new UpstreamConnection(entry, this, connectTimeoutMs, targetTls, upgrade);
    }
    conn.idleTimeoutMs = idleTimeoutMs;
    return conn;
  }

  opened(conn: UpstreamConnection): void {
    let k = this.#keys.get(conn.entry);
    if (k === undefined) {
      k = { idle: [], open: new SlotSet<UpstreamConnection>(slotField('openSlot')) };
      this.#keys.set(conn.entry, k);
    }
    k.open.add(conn);
  }

  tlsSession(entry: TargetEntry, targetTls: TargetTls): Buffer | undefined {
    const kept = this.#sessions.get(entry);
    return kept !== undefined && kept.caPem === targetTls.caPem ? kept.session : undefined;
  }

  keepTlsSession(entry: TargetEntry, targetTls: TargetTls, session: Buffer): void {
    this.#sessions.set(entry, { caPem: targetTls.caPem, session });
  }

  /** Returns a connection whose exchange ended: kept idle if reusable and its key is routable. */
  release(conn: UpstreamConnection): void {
    const entry = conn.entry;
    const k = this.#keys.get(entry);
    if (k === undefined || !conn.reusable || !conn.requestComplete || !entry.routable) {
      // Not reusable, the target answered before the request body was sent whole, or the key is draining.
      conn.destroy();
      return;
    }
    if (k.idle.length >= this.#maxIdlePerKey) {
      conn.discard();
      return;
    }
    if (conn.socket.isPaused()) conn.socket.resume();
    conn.reused = true;
    conn.idleSince = this.now;
    k.idle.push(conn);
  }

  /** A connection closed: it leaves its key's sets. */
  forget(conn: UpstreamConnection): void {
    const k = this.#keys.get(conn.entry);
    if (k === undefined) return;
    k.open.delete(conn);
    const i = k.idle.lastIndexOf(conn);
    if (i >= 0) k.idle.splice(i, 1);
    if (k.open.size === 0) this.#keys.delete(conn.entry);
  }

  /** Closes the idle connections of `entry`; returns how many. */
  closeIdle(entry: TargetEntry): number {
    const k = this.#keys.get(entry);
    if (k === undefined) return 0;
    const idle = k.idle.splice(0);
    for (const c of idle) c.destroy();
    return idle.length;
  }

  /** The open connections of `entry` (copied: closing one changes the set). */
  connectionsOf(entry: TargetEntry): UpstreamConnection[] {
    const k = this.#keys.get(entry);
    return k === undefined ? [] : [...k.open];
  }

  openCount(entry: TargetEntry): number {
    return this.#keys.get(entry)?.open.size ?? 0;
  }

  /** Closes every connection and stops the ticker. */
  destroyAll(): void {
    for (const k of [...this.#keys.values()]) for (const c of [...k.open]) c.destroy();
    this.stop();
  }

  /** Stops the ticker (after every connection is closed). */
  stop(): void {
    if (this.#ticker !== null) clearInterval(this.#ticker);
    this.#ticker = null;
  }

  #ensureTicker(): void {
    if (this.#ticker !== null) return;
    this.#ticker = setInterval(() => this.#tick(), TICK_MS);
    this.#ticker.unref();
  }

  #tick(): void {
    const now = (this.now = performance.now());
    for (const k of this.#keys.values()) for (const conn of k.open) conn.checkDeadline(now);
  }
}

/** Resolution of connect, response, inactivity and idle timeouts. */
const TICK_MS = 50;
