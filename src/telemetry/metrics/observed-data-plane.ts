import type { TargetActivity } from '../../domain/data-plane-port.ts';

/**
 * What metrics read of a data plane when Prometheus scrapes: the in-process `HttpDataPlane`, or a
 * data-plane worker as ebb's own process sees it (`ebb serve --workers N`, docs/workers.md), which
 * `main` wraps to this shape. Counts of requests and flows are not read here: they come from the
 * diagnostics channels, which a worker's messages reach in ebb's own process too.
 */
export interface ObservedDataPlane {
  /** Work in flight to a target (requests, tunnels, connections). */
  activity(key: string): TargetActivity;
  /** The port a listener declared with port 0 was bound on; null when not known. */
  boundPort(listenerArn: string): number | null;
  /** Client connections the data plane allows at once, and those refused at its limit by listener (a counter). */
  readonly connectionLimit: {
    readonly maxConnections: number;
    readonly counters: { readonly dropped: ReadonlyMap<string, number> };
  };
}
