import { EbbError } from '../shared/errors.ts';
import { canGroupCommit, type GroupCommitStore, type StateStore, type StoreKind, type StoreOp } from '../domain/store-port.ts';

export function put(kind: StoreKind, key: string, value: unknown): StoreOp {
  return { op: 'put', kind, key, value };
}

export function del(kind: StoreKind, key: string): StoreOp {
  return { op: 'delete', kind, key };
}

/** The records of one kind in what `StateStore.load` returned, in the store's order. */
export function recordsOf<T>(state: ReadonlyMap<StoreKind, ReadonlyMap<string, unknown>>, kind: StoreKind): T[] {
  return [...(state.get(kind)?.values() ?? [])] as T[];
}

export interface TransactOptions {
  /**
   * When a routing snapshot is published after the change. `true` (default): at once. `false`: not
   * at all, for changes nothing routed depends on (tags, which side owns a resource), so the data
   * planes are not handed an unchanged snapshot. `'later'`: with the group the change is committed in
   * (group commit), before its answer, so that the commands of one group share one publication; only
   * for changes that add to what may be routed (a registration), which a data plane may go without for
   * those milliseconds. Without group commit, `'later'` is at once.
   */
  readonly publish?: boolean | 'later';
}

export interface StoreTransactionOptions {
  /** Group commit when the store can (see the class comment); the caller then answers after `settled()`. */
  readonly group?: boolean;
}

interface Group {
  /** Every write made before the group started; the group's flush covers them. */
  readonly upTo: number;
  readonly done: Promise<void>;
}

/**
 * The one way the control plane changes state: commit to the store, then update the in-memory view,
 * then publish. A change may be acknowledged only once it is durable, and a failed commit moves
 * nothing in memory, so the command fails whole and may be retried.
 *
 * Without group commit, `transact` resolves once its commit is durable. With it (a GroupCommitStore
 * and `group: true`), `transact` writes the change (atomic, not yet durable; a write that fails
 * still moves nothing), updates the view and returns, so the serial queue goes on to the next
 * command at once; the command's answer waits for `settled()`. Groups form by themselves: at most one
 * flush runs at a time, and every change made while it runs is flushed by the next one, which starts
 * when it ends, after one publication of every change publishing `'later'`. This is how databases
 * commit with early lock release (and Redis with `appendfsync always`): a command may see changes not
 * yet durable, which is safe because the store is written in order, so the flush that makes a change
 * durable has made every change it could have seen durable too; and no answer, a refusal included,
 * leaves before the flush of everything written before it was decided. A failed flush fails every
 * command of its group and breaks the store (GroupCommitStore): what memory shows may then be ahead
 * of the disk, nothing more is written, and a restart goes on from the disk.
 */
export class StoreTransaction {
  readonly #store: StateStore;
  readonly #publish: () => void;
  readonly #group: GroupCommitStore | null;
  #publishLater = false;
  /** Changes written so far (group commit), and how many of them a finished group made durable. */
  #written = 0;
  #durable = 0;
  #running: Group | null = null;
  #next: { readonly done: Promise<void>; resolve: () => void; reject: (error: unknown) => void } | null = null;

  /** `publish` builds a routing snapshot from the in-memory view and hands it to every data plane. */
  constructor(store: StateStore, publish: () => void, options: StoreTransactionOptions = {}) {
    this.#store = store;
    this.#publish = publish;
    this.#group = options.group === true && canGroupCommit(store) ? store : null;
  }

  /** True with group commit: answers must wait for `settled()`. */
  get grouped(): boolean {
    return this.#group !== null;
  }

  /**
   * Commits `ops` in one atomic commit (none: nothing is written), then runs `apply`, which updates
   * the in-memory view to match and must not throw, then publishes. Resolves with what `apply`
   * returns. A store failure rejects with StoreUnavailable, before `apply` runs. With group commit it
   * resolves before the change is durable: see the class comment.
   */
  async transact<T>(ops: readonly StoreOp[], apply: () => T, options: TransactOptions = {}): Promise<T> {
    const publish = options.publish ?? true;
    if (this.#group === null) {
      await this.#commit(ops);
      const result = apply();
      if (publish !== false) this.#publish();
      return result;
    }
    if (ops.length > 0) {
      try {
        this.#group.write(ops);
      } catch (error) {
        throw storeError(error);
      }
      this.#written += 1;
    }
    const result = apply();
    if (publish === true) {
      this.#publishLater = false;
      this.#publish();
    } else if (publish === 'later') {
      this.#publishLater = true;
    }
    // Nobody may be waiting (a change made outside a command): the group starts anyway.
    if (this.#running === null && (ops.length > 0 || this.#publishLater)) this.#start().catch(() => undefined);
    return result;
  }

  /**
   * Resolves once every change written so far is durable and every publication left for later is
   * made: what a command's answer waits for. Rejects with StoreUnavailable if the flush fails.
   */
  settled(): Promise<void> {
    if (this.#group === null) {
      this.#publishPending();
      return Promise.resolve();
    }
    const upTo = this.#written;
    if (!this.#publishLater) {
      if (upTo <= this.#durable) return Promise.resolve();
      if (this.#running !== null && upTo <= this.#running.upTo) return this.#running.done;
    }
    if (this.#running === null) return this.#start();
    if (this.#next === null) {
      let resolve!: () => void;
      let reject!: (error: unknown) => void;
      const done = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.#next = { done, resolve, reject };
    }
    return this.#next.done;
  }

  /** Starts a group: one publication for what waited for it, then one flush for every change so far. */
  #start(): Promise<void> {
    const store = this.#group;
    if (store === null) return Promise.resolve();
    const upTo = this.#written;
    // A publication that throws fails the group's commands (as it failed its command before group
    // commit), once their changes are durable; it must not stop the flush or the groups after it.
    let publishError: { readonly error: unknown } | null = null;
    try {
      this.#publishPending();
    } catch (error) {
      publishError = { error };
    }
    const done = store.flush().then(
      () => {
        this.#durable = Math.max(this.#durable, upTo);
        if (publishError !== null) throw publishError.error;
      },
      (error: unknown) => {
        throw storeError(error);
      },
    );
    this.#running = { upTo, done };
    const next = (succeeded: boolean) => (): void => {
      this.#running = null;
      const waiting = this.#next;
      this.#next = null;
      if (waiting !== null) this.#start().then(waiting.resolve, waiting.reject);
      // Changes made meanwhile that nobody waits for (outside a command) are flushed all the same.
      else if (succeeded && (this.#written > this.#durable || this.#publishLater)) this.#start().catch(() => undefined);
    };
    done.then(next(true), next(false));
    return done;
  }

  #publishPending(): void {
    if (!this.#publishLater) return;
    this.#publishLater = false;
    this.#publish();
  }

  async #commit(ops: readonly StoreOp[]): Promise<void> {
    if (ops.length === 0) return;
    try {
      await this.#store.commit(ops);
    } catch (error) {
      throw storeError(error);
    }
  }
}

function storeError(error: unknown): EbbError {
  if (EbbError.is(error)) return error;
  return new EbbError('StoreUnavailable', `The change could not be saved: ${(error as Error).message}`, { cause: error });
}
