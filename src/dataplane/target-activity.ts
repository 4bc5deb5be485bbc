import type { TargetActivity } from '../domain/data-plane-port.ts';
import type { UpstreamConnection } from './upstream-pool.ts';
import type { Tunnel } from './websocket-tunnel.ts';

/**
 * Everything the data plane keeps per target key: what is in flight (the counts `activity()`
 * reports), the pool of idle keep-alive connections, and every open connection and tunnel, so a
 * drain deadline can find and close them.
 *
 * An entry is kept after its key leaves the snapshot, so the control plane can still read `completed`
 * when the drain ends (at `onIdle`, or right after `terminate()`). It is freed by a later `apply()`
 * once it has been idle (no request, no tunnel, no open connection) and out of the snapshot for the
 * data plane's `idleEntryRetainMs` (default 10 s); a key that comes back later starts from 0.
 */
export class TargetEntry implements TargetActivity {
  requests = 0;
  completed = 0;
  /** In the current snapshot (may receive new work). A non-routable key's connections are not reused. */
  routable = true;
  /** When (performance.now() ms) the entry was first seen non-routable with nothing open; 0 otherwise. */
  idleSince = 0;
  /** Idle keep-alive connections, most recently used last (LIFO keeps the warm ones busy). */
  readonly idle: UpstreamConnection[] = [];
  /** Every upstream connection of this key: connecting, busy or idle. */
  readonly open = new Set<UpstreamConnection>();
  readonly openTunnels = new Set<Tunnel>();

  constructor(
    readonly key: string,
    public host: string,
    public port: number,
  ) {}

  get tunnels(): number {
    return this.openTunnels.size;
  }

  /** A request in flight or a tunnel open. */
  get busy(): boolean {
    return this.requests > 0 || this.openTunnels.size > 0;
  }

  /** Out of the snapshot with nothing in flight and no connection or tunnel open: may be freed. */
  get disposable(): boolean {
    return !this.routable && !this.busy && this.open.size === 0;
  }

  snapshot(): TargetActivity {
    return { requests: this.requests, tunnels: this.tunnels, completed: this.completed };
  }
}
