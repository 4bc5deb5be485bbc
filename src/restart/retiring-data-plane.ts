/**
 * The data plane a running ebb retires at a hot restart (docs/restart.md), as the restart sees it:
 * the one `HttpDataPlane` in its own process, or its data-plane workers as one. Either way it hands
 * over its listening sockets, serves on beside the successor with the successor's routes, reports its
 * work per target as one data plane of the successor's, and closes, counted.
 */
import type { HandOver } from '../control/hand-over.ts';
import type { HttpDataPlane } from '../dataplane/http-data-plane.ts';
import { workerListenMode, type ListenMode, type SocketHandle } from '../dataplane/listen-mode.ts';
import type { ApplyResult, TargetActivity, TerminateResult } from '../domain/data-plane-port.ts';
import type { ListenerRoute, RoutingSnapshot } from '../domain/routing-snapshot.ts';
import type { RemoteDataPlane } from '../workers/remote-data-plane.ts';
import type { WorkerPool } from '../workers/worker-pool.ts';
import type { AgentDataPlane } from '../workers/worker-agent.ts';
import { realClock, type Clock } from '../shared/clock.ts';

/** A listening socket to hand over; `release`: the handle is this process's own copy, closed once sent. */
export interface RetiringSocket {
  readonly address: string;
  readonly port: number;
  readonly handle: SocketHandle;
  readonly release: boolean;
}

/** Its `apply` swaps in the routes of a snapshot only: the listeners stay as they are until it closes. */
export interface RetiringDataPlane extends AgentDataPlane {
  /** The most sockets it hands over for one address: 1, or one per worker when each has its own (SO_REUSEPORT). */
  readonly socketsPerAddress: number;
  /** The addresses it listens on, said at once, before the sockets: the successor's port checks pass them. */
  listenAddresses(): Array<{ address: string; port: number }>;
  /** Its listening sockets with their handles, as they go to the successor, once its listeners can no longer change. */
  socketsToHandOver(): Promise<RetiringSocket[]>;
  /** Client connections (and TCP flows) open now. */
  clientConnections(): number;
  /** Requests and tunnels completed so far (a counter). */
  completedWork(): number;
  /** Client connections cut at the close deadline, once closed. */
  connectionsCut(): number;
  /** The drains handed over, with their starting counts under this data plane's one id. */
  handOver(handOver: HandOver): HandOver;
}

/** The data plane in ebb's own process (`--workers 1`). */
export function retiringLocal(dataPlane: HttpDataPlane): RetiringDataPlane {
  return {
    id: dataPlane.id,
    socketsPerAddress: 1,
    get entries() {
      return dataPlane.entries;
    },
    apply: (snapshot) => dataPlane.applyRoutes(snapshot),
    activity: (key) => dataPlane.activity(key),
    terminate: (key) => dataPlane.terminate(key),
    onIdle: (listener) => dataPlane.onIdle(listener),
    close: (deadlineMs) => dataPlane.close(deadlineMs),
    destroy: () => dataPlane.destroy(),
    listenAddresses: () => dataPlane.listeningSockets().map((s) => ({ address: s.address, port: s.port })),
    socketsToHandOver: () =>
      Promise.resolve(
        dataPlane.listeningSockets().flatMap((s) => {
          const handle = (s.server as unknown as { _handle: SocketHandle | null })._handle;
          // The live server's own handle: it serves on from it until it closes, so it is not released.
          return handle === null ? [] : [{ address: s.address, port: s.port, handle, release: false }];
        }),
      ),
    clientConnections: () => dataPlane.clientConnections(),
    completedWork: () => dataPlane.completedWork(),
    connectionsCut: () => dataPlane.closeOutcome?.connectionsCut ?? 0,
    handOver: (h) => h,
  };
}

/**
 * The data-plane workers (`--workers N`) as one data plane of the successor's: counts summed over the
 * workers, a key idle when it is idle in every one, a drain's starting counts summed under one id
 * (`ebb-<pid>`: the workers' own ids, `worker-1`…, are the successor's workers' too). Its listeners
 * are frozen at the handover: each snapshot from the successor is sent to the workers with the
 * listeners they have, so only the routes change.
 */
export function retiringPool(pool: WorkerPool, pid: number = process.pid, mode: ListenMode = workerListenMode(), clock: Clock = realClock): RetiringDataPlane {
  // One per pool: a restart that failed leaves it as it was, and the next one finds it again (its idle listeners are on the workers' planes).
  const made = retiring.get(pool);
  if (made !== undefined) return made;
  const plane = makeRetiringPool(pool, pid, mode, clock);
  retiring.set(pool, plane);
  return plane;
}

const retiring = new WeakMap<WorkerPool, RetiringDataPlane>();

/**
 * How long the successor's snapshot may wait for one old worker's answer. A worker that does not answer
 * is given up (the pool ends it, and its work is counted lost) well before the successor would give up
 * all the old workers at once (its own answer timeout, 30 s) and end their drains as if they were idle.
 */
export const RETIRING_APPLY_TIMEOUT_MS = 10_000;

function makeRetiringPool(pool: WorkerPool, pid: number, mode: ListenMode, clock: Clock): RetiringDataPlane {
  const planes: readonly RemoteDataPlane[] = pool.dataPlanes;
  // Shared: every worker accepts on a copy of one socket per address, so one copy is handed over.
  const ownSockets = mode === 'reuseport';
  const id = `ebb-${pid}`;
  const workerIds = new Set(planes.map((p) => p.id));
  const listeners = (): readonly ListenerRoute[] => planes.find((p) => p.latestSnapshot !== null)?.latestSnapshot?.listeners ?? [];
  let frozen: readonly ListenerRoute[] | null = null;
  const idleListeners: Array<(key: string) => void> = [];
  const activity = (key: string): TargetActivity => {
    let requests = 0;
    let tunnels = 0;
    let completed = 0;
    let connections = 0;
    let unsettled = false;
    for (const p of planes) {
      const a = p.activity(key);
      requests += a.requests;
      tunnels += a.tunnels;
      completed += a.completed;
      connections += a.connections ?? 0;
      unsettled ||= a.unsettled === true;
    }
    return { requests, tunnels, completed, connections, ...(unsettled && { unsettled: true }) };
  };
  for (const p of planes) {
    p.onIdle((key) => {
      const a = activity(key);
      if (a.unsettled === true || a.requests + a.tunnels > 0) return;
      for (const listener of idleListeners) listener(key);
    });
  }
  const applyWithin = (p: RemoteDataPlane, routes: RoutingSnapshot): Promise<unknown> =>
    new Promise((resolve) => {
      const timer = clock.setTimer(RETIRING_APPLY_TIMEOUT_MS, () => {
        p.detach(`it did not answer a snapshot within ${RETIRING_APPLY_TIMEOUT_MS} ms while retiring`);
        resolve(undefined);
      });
      void p.apply(routes).then(() => {
        timer.cancel();
        resolve(undefined);
      });
    });
  const applyRoutes = async (snapshot: RoutingSnapshot): Promise<ApplyResult> => {
    frozen ??= listeners();
    const routes = { ...snapshot, listeners: frozen };
    await Promise.all(planes.map((p) => applyWithin(p, routes)));
    return { listenerErrors: [] };
  };
  return {
    id,
    socketsPerAddress: ownSockets ? planes.length : 1,
    get entries() {
      const keys = new Map<string, true>();
      for (const p of planes) for (const key of p.keys()) keys.set(key, true);
      return keys;
    },
    apply: applyRoutes,
    activity,
    terminate: async (key) => {
      const results = await Promise.all(planes.map((p) => p.terminate(key)));
      return results.reduce<TerminateResult>(
        (sum, r) => ({ requestsCut: sum.requestsCut + r.requestsCut, tunnelsClosed: sum.tunnelsClosed + r.tunnelsClosed, connectionsClosed: sum.connectionsClosed + r.connectionsClosed }),
        { requestsCut: 0, tunnelsClosed: 0, connectionsClosed: 0 },
      );
    },
    onIdle: (listener) => void idleListeners.push(listener),
    close: (deadlineMs) => pool.close(deadlineMs),
    destroy: () => pool.destroy(),
    listenAddresses: () => uniqueAddresses(listeners()),
    socketsToHandOver: async () => {
      // From here a worker that dies is not replaced: its replacement would bind a socket nobody hands over.
      pool.retire();
      // Each worker's socket (SO_REUSEPORT: one of its own; shared: a copy of the one socket): a copy of each, here, to send on.
      const each = (await Promise.all(planes.map((p) => p.listeningSockets()))).flat();
      const out: RetiringSocket[] = [];
      const seen = new Set<string>();
      for (const s of each) {
        const key = `${s.address}:${s.port}`;
        // Under SO_REUSEPORT a port-0 listener is shared too (listen-mode.ts): one socket, bound by this process for all.
        if (!(ownSockets && s.port !== 0) && seen.has(key)) {
          s.handle.close();
          continue;
        }
        seen.add(key);
        out.push({ ...s, release: true });
      }
      return out;
    },
    clientConnections: () => planes.reduce((n, p) => n + p.clientConnections(), 0),
    completedWork: () => planes.reduce((n, p) => n + p.completedTotal, 0),
    connectionsCut: () => planes.reduce((n, p) => n + p.connectionsCut, 0),
    handOver: (h) => ({
      ...h,
      drains: h.drains.map((d) => {
        let sum = 0;
        const others = d.completedAtStart.filter(([dp, n]) => {
          if (!workerIds.has(dp)) return true;
          sum += n;
          return false;
        });
        return { ...d, completedAtStart: [...others, [id, sum] as [string, number]] };
      }),
    }),
  };
}

function uniqueAddresses(routes: readonly ListenerRoute[]): Array<{ address: string; port: number }> {
  const seen = new Map<string, { address: string; port: number }>();
  for (const r of routes) seen.set(`${r.address}:${r.port}`, { address: r.address, port: r.port });
  return [...seen.values()];
}
