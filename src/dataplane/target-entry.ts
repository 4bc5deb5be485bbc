import type { TargetActivity } from '../domain/data-plane-port.ts';
import { SlotSet, slotField } from '../shared/slot-set.ts';

/** What a target's entry needs of an open tunnel: to close it at a deadline, politely or at once. */
export interface OpenTunnel {
  terminate(graceMs: number): Promise<void>;
  close(): void;
  /** Its index in its entry's open tunnels (shared/slot-set.ts); -1 before it opens. */
  tunnelSlot: number;
}

/**
 * What the data plane keeps per target key: what is in flight (the counts `activity()` reports)
 * and every open tunnel, so a drain deadline can find and close them. The entry owns these counters
 * and its set: exchanges and tunnels tell it what started and ended, and nothing else writes them.
 * Its connections are the pool's (`UpstreamPool`), kept per entry.
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
  /** A SlotSet: a TCP listener's flows come and go by the thousand. */
  readonly #tunnels = new SlotSet<OpenTunnel>(slotField('tunnelSlot'));

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

  tunnelOpened(t: OpenTunnel): void {
    this.#tunnels.add(t);
  }

  tunnelClosed(t: OpenTunnel): void {
    this.#tunnels.delete(t);
  }

  /** The open tunnels, copied (closing one changes the set). */
  openTunnels(): OpenTunnel[] {
    return this.#tunnels.snapshot();
  }
}
