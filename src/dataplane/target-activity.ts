import type { TargetActivity } from '../domain/data-plane-port.ts';
import type { UpstreamConnection } from './upstream-connection.ts';
import type { Tunnel } from './websocket-tunnel.ts';

/**
 * Everything the data plane keeps per target key: what is in flight (the counts `activity()`
 * reports), the pool of idle keep-alive connections, and every open connection and tunnel, so a
 * drain deadline can find and close them. The entry owns these counters and sets: exchanges,
 * connections and tunnels tell it what started and ended, and nothing else writes them.
 *
 * An entry is kept after its key leaves the snapshot, so the control plane can still read `completed`
 * when the drain ends (at `onIdle`, or right after `terminate()`). It is freed by a later `apply()`
 * once it has been idle (no request, no tunnel, no open connection) and out of the snapshot for the
 * data plane's `idleEntryRetainMs` (default 10 s); a key that comes back later starts from 0.
 */
export class TargetEntry implements TargetActivity {
  /** In the current snapshot (may receive new work). A non-routable key's connections are not reused. */
  routable = true;
  /** When (performance.now() ms) the entry was first seen non-routable with nothing open; 0 otherwise. */
  idleSince = 0;
  #requests = 0;
  #completed = 0;
  /** Idle keep-alive connections, most recently used last (LIFO keeps the warm ones busy). */
  readonly #idle: UpstreamConnection[] = [];
  /** Every upstream connection of this key: connecting, busy or idle. */
  readonly #open = new Set<UpstreamConnection>();
  readonly #tunnels = new Set<Tunnel>();

  constructor(
    readonly key: string,
    public host: string,
    public port: number,
  ) {}

  get requests(): number {
    return this.#requests;
  }

  get completed(): number {
    return this.#completed;
  }

  get tunnels(): number {
    return this.#tunnels.size;
  }

  /** A request in flight or a tunnel open. */
  get busy(): boolean {
    return this.#requests > 0 || this.#tunnels.size > 0;
  }

  /** Out of the snapshot with nothing in flight and no connection or tunnel open: may be freed. */
  get disposable(): boolean {
    return !this.routable && !this.busy && this.#open.size === 0;
  }

  snapshot(): TargetActivity {
    return { requests: this.#requests, tunnels: this.#tunnels.size, completed: this.#completed };
  }

  requestStarted(): void {
    this.#requests++;
  }

  /** `completed`: the response was relayed whole (the drain record's "finished"). */
  requestEnded(completed: boolean): void {
    this.#requests--;
    if (completed) this.#completed++;
  }

  tunnelOpened(t: Tunnel): void {
    this.#tunnels.add(t);
  }

  tunnelClosed(t: Tunnel): void {
    this.#tunnels.delete(t);
  }

  /** The open tunnels, copied (closing one changes the set). */
  openTunnels(): Tunnel[] {
    return [...this.#tunnels];
  }

  connectionOpened(c: UpstreamConnection): void {
    this.#open.add(c);
  }

  connectionClosed(c: UpstreamConnection): void {
    this.#open.delete(c);
  }

  get openCount(): number {
    return this.#open.size;
  }

  forEachOpen(fn: (c: UpstreamConnection) => void): void {
    for (const c of this.#open) fn(c);
  }

  /** The open connections, copied (closing one changes the set). */
  openConnections(): UpstreamConnection[] {
    return [...this.#open];
  }

  get idleCount(): number {
    return this.#idle.length;
  }

  takeIdle(): UpstreamConnection | undefined {
    return this.#idle.pop();
  }

  keepIdle(c: UpstreamConnection): void {
    this.#idle.push(c);
  }

  dropIdle(c: UpstreamConnection): void {
    const i = this.#idle.lastIndexOf(c);
    if (i >= 0) this.#idle.splice(i, 1);
  }

  takeAllIdle(): UpstreamConnection[] {
    return this.#idle.splice(0);
  }
}
