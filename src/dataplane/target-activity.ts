import type { TargetActivity } from '../domain/data-plane-port.ts';
import type { UpstreamConnection } from './upstream-pool.ts';
import type { Tunnel } from './websocket-tunnel.ts';

/**
 * Everything the data plane keeps per target key: what is in flight (the counts `activity()`
 * reports), the pool of idle keep-alive connections, and every open connection and tunnel, so a
 * drain deadline can find and close them.
 *
 * Entries are kept after a key leaves the snapshot so `completed` stays a counter since start.
 */
export class TargetEntry implements TargetActivity {
  requests = 0;
  tunnels = 0;
  completed = 0;
  /** In the current snapshot (may receive new work). A non-routable key's connections are not reused. */
  routable = true;
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

  get busy(): boolean {
    return this.requests + this.tunnels > 0;
  }

  snapshot(): TargetActivity {
    return { requests: this.requests, tunnels: this.tunnels, completed: this.completed };
  }
}
