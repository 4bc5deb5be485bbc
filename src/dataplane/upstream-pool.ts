import type { TargetEntry } from './target-activity.ts';
import { UpstreamConnection } from './upstream-connection.ts';
import type { ConnectionHome } from './upstream-connection.ts';

/** Tunables shared by the pools of one data plane. */
export interface PoolOptions {
  /** Idle connections kept per target key; more are closed when released. */
  readonly maxIdlePerKey: number;
}

/**
 * All upstream connections of one data plane: per-key idle stacks (in `TargetEntry.idle`), a
 * coarse clock, and one ticker that enforces connect, response, mid-response inactivity and idle
 * timeouts by scanning open connections (no timer per request).
 */
export class UpstreamPool implements ConnectionHome {
  /** Coarse monotonic ms, refreshed by the ticker. */
  now = performance.now();
  private readonly entries = new Set<TargetEntry>();
  private ticker: NodeJS.Timeout | null = null;

  constructor(private readonly options: PoolOptions) {}

  /**
   * An idle connection of `entry`, or a new one. `fresh`: always a new connection (an upgrade
   * attempt, or a retry after a pooled connection turned out closed).
   */
  acquire(entry: TargetEntry, connectTimeoutMs: number, idleTimeoutMs: number, fresh = false): UpstreamConnection {
    this.ensureTicker();
    let conn = fresh ? undefined : entry.takeIdle();
    // Reused only if quiet: bytes buffered on an idle connection are a response nobody asked for.
    while (conn !== undefined && (!conn.reusable || conn.socket.destroyed || conn.socket.readableLength > 0)) {
      conn.destroy();
      conn = entry.takeIdle();
    }
    if (conn === undefined) {
      this.now = performance.now();
      conn = new UpstreamConnection(entry, this, connectTimeoutMs);
      this.entries.add(entry);
    }
    conn.idleTimeoutMs = idleTimeoutMs;
    return conn;
  }

  /** Returns a connection whose exchange ended: kept idle if reusable and its key is routable. */
  release(conn: UpstreamConnection): void {
    const entry = conn.entry;
    if (!conn.reusable || !conn.requestComplete || !entry.routable || entry.idleCount >= this.options.maxIdlePerKey) {
      // Not reusable, the target answered before the request body was sent whole, the key is
      // draining, or the pool is full.
      conn.destroy();
      return;
    }
    if (conn.socket.isPaused()) conn.socket.resume();
    conn.reused = true;
    conn.idleSince = this.now;
    entry.keepIdle(conn);
  }

  forget(conn: UpstreamConnection): void {
    conn.entry.dropIdle(conn);
  }

  /** Closes the idle connections of `entry`; returns how many. */
  closeIdle(entry: TargetEntry): number {
    const idle = entry.takeAllIdle();
    for (const c of idle) c.destroy();
    return idle.length;
  }

  /** Stops the ticker (after every connection is closed). */
  stop(): void {
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
  }

  private ensureTicker(): void {
    if (this.ticker !== null) return;
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    this.ticker.unref();
  }

  private tick(): void {
    const now = (this.now = performance.now());
    for (const entry of this.entries) {
      if (entry.openCount === 0) {
        this.entries.delete(entry);
        continue;
      }
      entry.forEachOpen((conn) => conn.checkDeadline(now));
    }
  }
}

/** Resolution of connect, response, inactivity and idle timeouts. */
const TICK_MS = 50;
