import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ACCEPT_COPIES } from '../dataplane/accept-copies.ts';
import { ConnectionLimit } from '../dataplane/connection-limit.ts';
import { HttpDataPlane } from '../dataplane/http-data-plane.ts';
import type { DataPlane } from '../domain/data-plane-port.ts';
import type { Clock } from '../shared/clock.ts';
import { servingExecArgv } from '../shared/young-generation.ts';
import type { ObservedDataPlane } from '../telemetry/metrics/observed-data-plane.ts';
import type { WorkerCounters } from '../telemetry/metrics/worker-metrics.ts';
import { WorkerPool } from '../workers/worker-pool.ts';
import type { InheritedSockets } from '../dataplane/listen-mode.ts';
import type { RemoteDataPlane } from '../workers/remote-data-plane.ts';
import type { Log } from './logger.ts';

/**
 * The data planes `ebb serve` drives: one `HttpDataPlane` in its own process (`--workers 1`, the
 * default), or N worker processes sharing the listeners (`--workers N`, docs/workers.md), each behind
 * a `RemoteDataPlane`. The control plane, metrics and shutdown see the same shape either way.
 */
export interface ServedDataPlanes {
  /** What the control plane drives (wrapped by its routing watch). */
  readonly dataPlanes: readonly DataPlane[];
  /** What metrics read. */
  readonly observed: readonly ObservedDataPlane[];
  /** The worker processes, or null when traffic is served in this process. */
  readonly pool: WorkerPool | null;
  /** The data plane in this process, or null with workers (a hot restart hands over the one or the other). */
  readonly local: HttpDataPlane | null;
  /** The data plane of the ebb this one took over from at a hot restart, while it is attached. */
  readonly predecessor: RemoteDataPlane | null;
  /** The workers' counters for metrics, read at scrape time; null when traffic is served in this process. */
  readonly workerCounters: (() => WorkerCounters) | null;
  /** Starts the workers (every one ready, or a refusal saying why); nothing to do in-process. */
  start(): Promise<void>;
  /** Graceful: listeners stop accepting, what is in flight finishes up to `deadlineMs`. */
  close(deadlineMs: number): Promise<void>;
  /** Every socket closed now; every worker killed. */
  destroy(): void;
}

export interface DataPlanesOptions {
  /** `--workers`; 1 or less: in this process. */
  readonly workers: number;
  readonly clock: Clock;
  readonly log: Log;
  /** Sockets the ebb before this one handed over at a hot restart (docs/restart.md). */
  readonly inherited?: InheritedSockets;
  /** That ebb's data plane while it finishes its work: driven with the others, so drains wait for it. */
  readonly predecessor?: RemoteDataPlane | null;
}

export function createDataPlanes(options: DataPlanesOptions): ServedDataPlanes {
  const log = (line: object): void => options.log(line as Record<string, unknown>);
  const predecessor = options.predecessor ?? null;
  if (options.workers <= 1) {
    // Several descriptors per listening socket: a burst of connections is accepted several per turn.
    const dataPlane = new HttpDataPlane({ log, acceptCopies: ACCEPT_COPIES, ...(options.inherited !== undefined && { inheritedSockets: options.inherited }) });
    return {
      dataPlanes: predecessor === null ? [dataPlane] : [dataPlane, predecessor],
      observed: [dataPlane],
      pool: null,
      local: dataPlane,
      predecessor,
      workerCounters: null,
      start: () => Promise.resolve(),
      close: (deadlineMs) => Promise.all([dataPlane.close(deadlineMs), predecessor?.close(deadlineMs)]).then(() => undefined),
      destroy: () => {
        dataPlane.destroy();
        predecessor?.destroy();
      },
    };
  }
  const pool = new WorkerPool({
    count: options.workers,
    entry: workerEntry(),
    // At a hot restart the first workers listen on the sockets handed over (docs/restart.md).
    ...(options.inherited !== undefined && { inherited: options.inherited.takeAll() }),
    // Node's options as this process got them (`--import tsx` when ebb runs from its sources), with
    // the young generation's cap (young-generation.ts).
    execArgv: servingExecArgv(),
    clock: options.clock,
    log,
  });
  // Each worker derives its connection limit from the open-file limit it inherits from this process.
  const perWorker = new ConnectionLimit().maxConnections;
  const observed = pool.dataPlanes.map(
    (plane): ObservedDataPlane => ({
      activity: (key) => plane.activity(key),
      connectionLimit: { maxConnections: perWorker },
    }),
  );
  return {
    dataPlanes: predecessor === null ? pool.dataPlanes : [...pool.dataPlanes, predecessor],
    observed,
    pool,
    local: null,
    predecessor,
    workerCounters: () => ({
      restarts: pool.restarts,
      connectionsLost: pool.connectionsLost,
      telemetryDropped: pool.dataPlanes.reduce((n, plane) => n + plane.telemetryDropped, 0),
      telemetryRefused: pool.dataPlanes.reduce((n, plane) => n + plane.telemetryRefused, 0),
    }),
    start: () => pool.start(),
    close: (deadlineMs) => Promise.all([pool.close(deadlineMs), predecessor?.close(deadlineMs)]).then(() => undefined),
    destroy: () => {
      pool.destroy();
      predecessor?.destroy();
    },
  };
}

/** worker-main next to this module's room: `.ts` when ebb runs from its sources, `.js` from its build. */
function workerEntry(): string {
  const here = fileURLToPath(import.meta.url);
  return fileURLToPath(new URL(`../workers/worker-main${extname(here)}`, import.meta.url));
}
