import type { RoutingSnapshot } from './routing-snapshot.ts';

/**
 * What the control plane asks of a data plane. There may be several (one per core, one per node):
 * a drain ends only when every data plane reports the target idle, or at its deadline.
 */
export interface DataPlane {
  readonly id: string;
  /**
   * Swaps in a new snapshot. Opens and closes listeners to match; resolves when every listener is
   * bound or closed. Any target key that is no longer routable has its idle pooled connections closed,
   * and its busy ones are closed, not reused, when their request ends.
   */
  apply(snapshot: RoutingSnapshot): Promise<ApplyResult>;
  /** Work in flight to one target registration (by `RoutableTarget.key`). */
  activity(key: string): TargetActivity;
  /**
   * Ends what remains at a drain deadline: `Connection: close` / WebSocket close 1001 first where the
   * protocol allows, then a hard close. Resolves with what was cut.
   */
  terminate(key: string): Promise<TerminateResult>;
  /** Registers a listener told each time a key that is not routable becomes idle (no requests, no tunnels). */
  onIdle(listener: (key: string) => void): void;
  /**
   * For a data plane whose counts reach the control plane late (one in another process, reporting
   * every so often): resolves with the key's `completed` as it stood when that data plane applied the
   * first snapshot handed to it after this call, which is when a drain begun now begins there. A drain
   * counts the requests it completed from that count on, not from one that may miss the last
   * report's worth of requests finished before the drain. Left out where `activity` is exact.
   */
  completedWhenApplied?(key: string): Promise<number>;
  /** Graceful: stop accepting, tell keep-alive clients to close, let in-flight work end, up to `deadlineMs`. */
  close(deadlineMs: number): Promise<void>;
  /** Forced: every socket closed now. */
  destroy(): void;
}

export interface ApplyResult {
  /** Listeners that could not be opened, with the reason (address in use, permission). */
  readonly listenerErrors: ReadonlyArray<{ readonly arn: string; readonly code: string; readonly message: string }>;
}

export interface TargetActivity {
  /** HTTP requests sent to the target and not yet finished. */
  readonly requests: number;
  /** Upgraded (WebSocket) tunnels and TCP flows open to the target. */
  readonly tunnels: number;
  /** Requests to the target that have finished, since the data plane started (a counter). */
  readonly completed: number;
  /** Connections open to the target, busy or idle; left out by a data plane that does not count them. */
  readonly connections?: number;
  /**
   * True while these counts may be behind: a data plane in another process has been sent a snapshot it
   * has not yet confirmed, so work it started before it stopped routing the target may be missing here.
   * Not idle, whatever the counts say; such a data plane calls the `onIdle` listeners for the keys
   * asked about meanwhile once it has confirmed, so a drain that found it unsettled looks again.
   */
  readonly unsettled?: boolean;
}

export interface TerminateResult {
  readonly requestsCut: number;
  readonly tunnelsClosed: number;
  readonly connectionsClosed: number;
}

export const IDLE_ACTIVITY: TargetActivity = { requests: 0, tunnels: 0, completed: 0 };
