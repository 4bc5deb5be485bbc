import type { ApplyResult, DataPlane, TargetActivity, TerminateResult } from '../domain/data-plane-port.ts';
import type { RoutingSnapshot } from '../domain/routing-snapshot.ts';
import type { Clock, TimerHandle } from '../shared/clock.ts';
import { ebbError } from '../shared/errors.ts';

/** What a data plane is doing for one target, summed over every data plane. */
export interface TargetWork {
  readonly requests: number;
  readonly tunnels: number;
  /** Connections open to the target, busy or idle (0 from a data plane that does not report them). */
  readonly connections: number;
}

/** How a wait for a target to be routed no more ended. */
export type NotRoutedResult =
  | {
      readonly outcome: 'not-routed';
      /** The newest snapshot every data plane has applied (it does not route the target). */
      readonly appliedVersion: number;
    }
  | {
      readonly outcome: 'timeout';
      /** Whether the newest snapshot published still routes the target. */
      readonly routedInLatest: boolean;
      readonly latestVersion: number;
      /** The oldest of the versions the data planes last applied. */
      readonly appliedVersion: number;
    };

export interface NotRoutedWaitOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/** How many waits may be pending at once; more are refused (ServiceUnavailable) so a caller cannot pile them up. */
export const MAX_PENDING_WAITS = 1024;

interface Waiter {
  readonly key: string;
  /** The first published version seen without the key since the wait began (or since it was last routed); null while routed. */
  required: number | null;
  readonly resolve: (r: NotRoutedResult) => void;
  readonly timer: TimerHandle;
  readonly unlisten: () => void;
}

/**
 * Watches routing at the data-plane port: the control plane is given `dataPlanes` (each wraps one real
 * data plane and passes every call through), so the watch sees every snapshot as it is published and
 * each data plane's `apply` as it resolves, and knows which version each data plane has applied.
 *
 * `untilNotRouted` is the barrier a deploy script or a preStop hook waits on: it resolves once the
 * snapshot that stopped routing the target has been applied by every data plane, so a request sent
 * after it cannot be routed to the target by any of them. A target routed again before that (registered
 * again, healthy again) starts the wait over. Snapshots are published in version order and a data
 * plane applies them in order, so "applied version ≥ v" means every later snapshot it routes from is
 * at least v.
 */
export class RoutingWatch {
  readonly dataPlanes: readonly DataPlane[];
  readonly #clock: Clock;
  readonly #inner: readonly DataPlane[];
  /** Highest version whose `apply` resolved, by data plane id. */
  readonly #applied = new Map<string, number>();
  #latestVersion = 0;
  #routed: ReadonlySet<string> = new Set();
  readonly #waiters = new Set<Waiter>();

  constructor(dataPlanes: readonly DataPlane[], clock: Clock) {
    this.#clock = clock;
    this.#inner = dataPlanes;
    for (const dp of dataPlanes) this.#applied.set(dp.id, 0);
    this.dataPlanes = dataPlanes.map((dp) => this.#watched(dp));
  }

  /** The newest snapshot version published (0 before the first). */
  get latestVersion(): number {
    return this.#latestVersion;
  }

  /** The oldest of the versions the data planes have applied: every data plane routes from this one or a newer one. */
  get appliedVersion(): number {
    let min = this.#latestVersion;
    for (const v of this.#applied.values()) min = Math.min(min, v);
    return min;
  }

  /** Whether the newest snapshot published routes new work to the target (by `RoutableTarget.key`). */
  routed(key: string): boolean {
    return this.#routed.has(key);
  }

  /** What every data plane is doing for the target now. */
  work(key: string): TargetWork {
    let requests = 0;
    let tunnels = 0;
    let connections = 0;
    for (const dp of this.#inner) {
      const a: TargetActivity = dp.activity(key);
      requests += a.requests;
      tunnels += a.tunnels;
      connections += a.connections ?? 0;
    }
    return { requests, tunnels, connections };
  }

  /**
   * Resolves when no data plane will route a new request to the target: the newest snapshot does not
   * route it and every data plane has applied a snapshot from the one that stopped routing it onwards.
   * Resolves with `timeout` after `timeoutMs`; rejects (ServiceUnavailable) when `signal` aborts or too
   * many waits are pending.
   */
  untilNotRouted(key: string, options: NotRoutedWaitOptions): Promise<NotRoutedResult> {
    const ready = this.#reached(key, this.#routed.has(key) ? null : this.#latestVersion);
    if (ready !== null) return Promise.resolve(ready);
    if (this.#waiters.size >= MAX_PENDING_WAITS) {
      return Promise.reject(ebbError('ServiceUnavailable', `ebb already has ${MAX_PENDING_WAITS} waits pending; retry in a second`));
    }
    return new Promise((resolve, reject) => {
      const signal = options.signal;
      const onAbort = (): void => {
        this.#drop(waiter);
        reject(ebbError('ServiceUnavailable', 'The wait was abandoned: the caller went away or ebb is stopping'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const waiter: Waiter = {
        key,
        required: this.#routed.has(key) ? null : this.#latestVersion,
        resolve,
        timer: this.#clock.setTimer(options.timeoutMs, () => {
          this.#drop(waiter);
          resolve({ outcome: 'timeout', routedInLatest: this.#routed.has(key), latestVersion: this.#latestVersion, appliedVersion: this.appliedVersion });
        }),
        unlisten: () => signal?.removeEventListener('abort', onAbort),
      };
      if (signal?.aborted === true) {
        onAbort();
        return;
      }
      this.#waiters.add(waiter);
    });
  }

  /** Pending waits (for tests and bounds). */
  get pendingWaits(): number {
    return this.#waiters.size;
  }

  #drop(waiter: Waiter): void {
    waiter.timer.cancel();
    waiter.unlisten();
    this.#waiters.delete(waiter);
  }

  #reached(key: string, required: number | null): NotRoutedResult | null {
    if (required === null || this.#routed.has(key)) return null;
    const applied = this.appliedVersion;
    return applied >= required ? { outcome: 'not-routed', appliedVersion: applied } : null;
  }

  #published(snapshot: RoutingSnapshot): void {
    // One snapshot reaches every wrapped data plane; note it once.
    if (snapshot.version <= this.#latestVersion) return;
    this.#latestVersion = snapshot.version;
    const routed = new Set<string>();
    for (const group of snapshot.targetGroups.values()) for (const t of group.targets) routed.add(t.key);
    this.#routed = routed;
    for (const w of this.#waiters) {
      if (routed.has(w.key)) w.required = null;
      else w.required ??= snapshot.version;
    }
  }

  #appliedBy(dataPlaneId: string, version: number): void {
    if (version <= (this.#applied.get(dataPlaneId) ?? 0)) return;
    this.#applied.set(dataPlaneId, version);
    for (const w of [...this.#waiters]) {
      const done = this.#reached(w.key, w.required);
      if (done === null) continue;
      this.#drop(w);
      w.resolve(done);
    }
  }

  /** `dp`, with each snapshot it is given noted as published and, once its `apply` resolves, as applied by it. */
  #watched(dp: DataPlane): DataPlane {
    const completedWhenApplied = dp.completedWhenApplied?.bind(dp);
    return {
      id: dp.id,
      ...(completedWhenApplied !== undefined && { completedWhenApplied }),
      apply: (snapshot: RoutingSnapshot): Promise<ApplyResult> => {
        this.#published(snapshot);
        const applying = dp.apply(snapshot);
        // A rejected apply counts as not applied; a later snapshot's will.
        applying.then(() => this.#appliedBy(dp.id, snapshot.version), () => undefined);
        return applying;
      },
      activity: (key: string): TargetActivity => dp.activity(key),
      terminate: (key: string): Promise<TerminateResult> => dp.terminate(key),
      onIdle: (listener: (key: string) => void): void => dp.onIdle(listener),
      close: (deadlineMs: number): Promise<void> => dp.close(deadlineMs),
      destroy: (): void => dp.destroy(),
    };
  }
}
