import type { ApplyResult, DataPlane, TargetActivity, TerminateResult } from '../../src/domain/data-plane-port.ts';
import type { RoutingSnapshot } from '../../src/domain/routing-snapshot.ts';

/** A data plane whose in-flight work is set by the test; it records every snapshot it is given. */
export class FakeDataPlane implements DataPlane {
  readonly snapshots: RoutingSnapshot[] = [];
  readonly terminated: string[] = [];
  readonly #activity = new Map<string, { requests: number; tunnels: number; completed: number }>();
  readonly #idleListeners: Array<(key: string) => void> = [];
  /** A listener port this data plane reports as unable to open. */
  failListener: number | null = null;
  /** While true, `apply` answers only at `releaseApplies()` (a busy worker). */
  holdApplies = false;
  readonly #heldApplies: Array<() => void> = [];

  constructor(readonly id = 'fake-dp') {}

  apply(snapshot: RoutingSnapshot): Promise<ApplyResult> {
    this.snapshots.push(snapshot);
    const failing = snapshot.listeners.find((l) => l.port === this.failListener);
    const result: ApplyResult = {
      listenerErrors: failing === undefined ? [] : [{ arn: failing.arn, code: 'EADDRINUSE', message: 'address already in use' }],
    };
    if (!this.holdApplies) return Promise.resolve(result);
    return new Promise((resolve) => this.#heldApplies.push(() => resolve(result)));
  }

  /** Answers the applies held so far, and holds no more. */
  releaseApplies(): void {
    this.holdApplies = false;
    for (const answer of this.#heldApplies.splice(0)) answer();
  }

  get latest(): RoutingSnapshot {
    const s = this.snapshots.at(-1);
    if (s === undefined) throw new Error('no snapshot applied yet');
    return s;
  }

  /** Keys of the targets a group would route new work to in the latest snapshot. */
  routable(targetGroupArn: string): string[] {
    return this.latest.targetGroups.get(targetGroupArn)?.targets.map((t) => `${t.host}:${t.port}`) ?? [];
  }

  activity(key: string): TargetActivity {
    return this.#activity.get(key) ?? { requests: 0, tunnels: 0, completed: 0 };
  }

  /** Starts (+1) or ends (-1) a request to `key`; ending the last one tells the idle listeners. */
  request(key: string, delta: 1 | -1): void {
    const a = this.#activity.get(key) ?? { requests: 0, tunnels: 0, completed: 0 };
    a.requests += delta;
    if (delta === -1) a.completed += 1;
    this.#activity.set(key, a);
    if (a.requests === 0 && a.tunnels === 0) for (const l of this.#idleListeners) l(key);
  }

  /** Opens (+1) or closes (-1) a tunnel or flow to `key`; closing the last work tells the idle listeners. */
  tunnel(key: string, delta: 1 | -1): void {
    const a = this.#activity.get(key) ?? { requests: 0, tunnels: 0, completed: 0 };
    a.tunnels += delta;
    this.#activity.set(key, a);
    if (a.requests === 0 && a.tunnels === 0) for (const l of this.#idleListeners) l(key);
  }

  terminate(key: string): Promise<TerminateResult> {
    this.terminated.push(key);
    const a = this.#activity.get(key) ?? { requests: 0, tunnels: 0, completed: 0 };
    const result = { requestsCut: a.requests, tunnelsClosed: a.tunnels, connectionsClosed: a.requests + a.tunnels };
    a.requests = 0;
    a.tunnels = 0;
    this.#activity.set(key, a);
    return Promise.resolve(result);
  }

  onIdle(listener: (key: string) => void): void {
    this.#idleListeners.push(listener);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  destroy(): void {}
}
