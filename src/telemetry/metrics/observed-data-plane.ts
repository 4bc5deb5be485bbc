import type { TargetActivity } from '../../domain/data-plane-port.ts';

/**
 * What metrics read of a data plane when Prometheus scrapes: the in-process `HttpDataPlane`, or a
 * data-plane worker as ebb's own process sees it (`ebb serve --workers N`, docs/workers.md), which
 * `main` wraps to this shape. Counts of requests, flows and client connections are not read here: they
 * come from the diagnostics channels, which a worker's messages reach in ebb's own process too.
 */
export interface ObservedDataPlane {
  /** Work in flight to a target (requests, tunnels, connections). */
  activity(key: string): TargetActivity;
  /** Client connections the data plane allows at once. */
  readonly connectionLimit: { readonly maxConnections: number };
}
