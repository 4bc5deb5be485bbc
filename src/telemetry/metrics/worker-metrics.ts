import { Counter, type Registry } from 'prom-client';

/**
 * What the data-plane workers of `ebb serve --workers N` (docs/workers.md) cost when they fail, as
 * ebb's own process counts it: totals since ebb started, read when Prometheus scrapes. `main` reads
 * them from the worker pool and its `RemoteDataPlane`s (summed over the workers).
 */
export interface WorkerCounters {
  /** Workers forked again after one exited unexpectedly. */
  readonly restarts: number;
  /** Client connections that were open in a worker when it died (as its last connection message said: relayed-connections.ts). */
  readonly connectionsLost: number;
  /** Diagnostics-channel events a worker left out because its link to ebb was full. */
  readonly telemetryDropped: number;
  /** Events ebb's process refused: an unknown channel (a worker of another version) or not a plain object; digests not shaped as one. */
  readonly telemetryRefused: number;
}

const WORKER_METRICS: ReadonlyArray<readonly [keyof WorkerCounters, string, string]> = [
  ['restarts', 'ebb_worker_restarts_total', 'Data-plane workers started again after one exited unexpectedly (--workers N)'],
  ['connectionsLost', 'ebb_worker_connections_lost_total', 'Client connections that were open in a data-plane worker when it died, as its last report said'],
  [
    'telemetryDropped',
    'ebb_worker_telemetry_dropped_total',
    "Data-plane workers' diagnostics events, and request ends folded into their digests, left out because the link to ebb's process was full: the metrics and access log miss them",
  ],
  [
    'telemetryRefused',
    'ebb_worker_telemetry_refused_total',
    "Data-plane workers' diagnostics events ebb's process refused: an unknown channel (a worker of another ebb version) or not a plain object; and digests of request ends not shaped as one",
  ],
];

/** Registers the counters; each scrape adds what the totals grew by since the last. */
export function registerWorkerMetrics(registry: Registry, read: () => WorkerCounters): void {
  for (const [field, name, help] of WORKER_METRICS) {
    let seen = 0;
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const total = read()[field];
        this.inc(Math.max(0, total - seen));
        seen = Math.max(seen, total);
      },
    });
  }
}
