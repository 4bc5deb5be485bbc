import type { TargetActivity } from '../domain/data-plane-port.ts';
import type { WireActivity } from './protocol.ts';

/** Target keys kept; past this, keys with no work are forgotten, oldest first. */
export const MAX_KEYS = 65_536;

/** One key's counts: the current worker's last report, and what workers before it completed. */
interface KeyCounts {
  requests: number;
  tunnels: number;
  connections: number;
  /** The current worker's counter, as last reported. */
  completed: number;
  /** Completed by earlier workers (or before the current worker's counter restarted). */
  completedBefore: number;
}

/**
 * What the workers behind one `RemoteDataPlane` slot have reported: each target key's counts, and the
 * workers' own completed counters. `completed` never goes down, across workers too: a key keeps what
 * earlier workers completed. Bounded by MAX_KEYS (quiet keys are forgotten, quiet longest first).
 */
export class WorkerCounts {
  readonly #keys = new Map<string, KeyCounts>();
  /** The current worker's completed counter as last reported, and the last of every worker before it. */
  #workerCompleted = 0;
  #completedBefore = 0;

  activity(key: string): TargetActivity {
    const counts = this.#keys.get(key);
    if (counts === undefined) return { requests: 0, tunnels: 0, completed: 0, connections: 0 };
    return { requests: counts.requests, tunnels: counts.tunnels, completed: counts.completedBefore + counts.completed, connections: counts.connections };
  }

  keys(): IterableIterator<string> {
    return this.#keys.keys();
  }

  /** Connections to targets the worker last reported open. */
  connections(): number {
    let sum = 0;
    for (const counts of this.#keys.values()) sum += counts.connections;
    return sum;
  }

  /** Requests and tunnels completed, over every key, as each worker reported its own total: exact however many keys either side keeps. */
  get completedTotal(): number {
    return this.#completedBefore + this.#workerCompleted;
  }

  /** The worker's completed counter, when its message carries one (it only goes up). */
  recordCompleted(completed: unknown): void {
    if (Number.isSafeInteger(completed) && (completed as number) > this.#workerCompleted) this.#workerCompleted = completed as number;
  }

  /** A key's report; returns whether the key went from busy (requests or tunnels) to none. */
  record(a: WireActivity): boolean {
    let counts = this.#keys.get(a.key);
    if (counts === undefined) {
      counts = { requests: 0, tunnels: 0, connections: 0, completed: 0, completedBefore: 0 };
    } else {
      // Kept in order of the last report, so the keys forgotten first are the ones quiet longest.
      this.#keys.delete(a.key);
    }
    // A counter that went back means the worker forgot the key and began again; what it had counted stays.
    if (a.completed < counts.completed) counts.completedBefore += counts.completed;
    const wentIdle = counts.requests + counts.tunnels > 0 && a.requests + a.tunnels === 0;
    counts.completed = a.completed;
    counts.requests = a.requests;
    counts.tunnels = a.tunnels;
    counts.connections = a.connections;
    this.#keys.set(a.key, counts);
    if (this.#keys.size > MAX_KEYS) this.#forgetQuietKeys();
    return wentIdle;
  }

  /** Every key not in `reported` has no work now (an `applied` lists every key with work). */
  noWorkBut(reported: ReadonlySet<string>): void {
    for (const [key, counts] of this.#keys) {
      if (!reported.has(key)) counts.requests = counts.tunnels = counts.connections = 0;
    }
  }

  /** The worker is gone, and its work with it: the keys it had work on, and the target connections it held. */
  release(): { released: string[]; targetConnectionsLost: number } {
    let targetConnectionsLost = 0;
    const released: string[] = [];
    for (const [key, counts] of this.#keys) {
      targetConnectionsLost += counts.connections;
      if (counts.requests + counts.tunnels + counts.connections > 0) released.push(key);
      counts.completedBefore += counts.completed;
      counts.completed = counts.requests = counts.tunnels = counts.connections = 0;
    }
    this.#completedBefore += this.#workerCompleted;
    this.#workerCompleted = 0;
    return { released, targetConnectionsLost };
  }

  #forgetQuietKeys(): void {
    for (const [key, counts] of this.#keys) {
      if (this.#keys.size <= MAX_KEYS) return;
      if (counts.requests + counts.tunnels + counts.connections === 0) this.#keys.delete(key);
    }
  }
}
