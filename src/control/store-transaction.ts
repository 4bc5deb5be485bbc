import { EbbError } from '../shared/errors.ts';
import type { StateStore, StoreKind, StoreOp } from '../domain/store-port.ts';

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
   * Publish a routing snapshot after the change (default true). False only for changes nothing routed
   * depends on (tags, which side owns a resource), so the data planes are not handed an unchanged snapshot.
   */
  readonly publish?: boolean;
}

/**
 * The one way the control plane changes state: commit to the store, then update the in-memory view,
 * then publish. The store goes first because a change may be acknowledged only once it is durable;
 * if the commit fails nothing in memory has moved, so the command fails whole and may be retried.
 */
export class StoreTransaction {
  readonly #store: StateStore;
  readonly #publish: () => void;

  /** `publish` builds a routing snapshot from the in-memory view and hands it to every data plane. */
  constructor(store: StateStore, publish: () => void) {
    this.#store = store;
    this.#publish = publish;
  }

  /**
   * Commits `ops` in one atomic commit (none: nothing is written), then runs `apply`, which updates
   * the in-memory view to match and must not throw, then publishes. Resolves with what `apply`
   * returns. A store failure rejects with StoreUnavailable, before `apply` runs.
   */
  async transact<T>(ops: readonly StoreOp[], apply: () => T, options: TransactOptions = {}): Promise<T> {
    await this.#commit(ops);
    const result = apply();
    if (options.publish ?? true) this.#publish();
    return result;
  }

  async #commit(ops: readonly StoreOp[]): Promise<void> {
    if (ops.length === 0) return;
    try {
      await this.#store.commit(ops);
    } catch (error) {
      if (EbbError.is(error)) throw error;
      throw new EbbError('StoreUnavailable', `The change could not be saved: ${(error as Error).message}`, { cause: error });
    }
  }
}
