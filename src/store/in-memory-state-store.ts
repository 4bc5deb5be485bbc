import type { StateStore, StoreKind, StoreOp } from '../domain/store-port.ts';
import { EbbError } from '../shared/errors.ts';
import { closedError, decodeRecord, emptyState, encodeOp } from './records.ts';

/**
 * A StateStore in memory, for tests of the modules above the store. It behaves as the SQLite store
 * does where a caller can tell: values round-trip through JSON, a commit with one bad operation
 * changes nothing, and a closed store refuses work. Nothing survives the process.
 */
export class InMemoryStateStore implements StateStore {
  readonly #records = new Map<string, { kind: StoreKind; key: string; json: string }>();
  #closed = false;
  #failNext: Error | null = null;
  /** How many commits succeeded; lets a test check that a change was (or was not) persisted. */
  commits = 0;

  /** Makes the next commit fail with `error` (as a full disk would), changing nothing. */
  failNextCommit(error: Error = new EbbError('StoreUnavailable', 'The state store could not write (simulated).')): void {
    this.#failNext = error;
  }

  load(): Promise<Map<StoreKind, Map<string, unknown>>> {
    if (this.#closed) return Promise.reject(closedError());
    const state = emptyState();
    try {
      for (const { kind, key, json } of this.#records.values()) state.get(kind)?.set(key, decodeRecord(kind, key, json));
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return Promise.resolve(state);
  }

  commit(ops: readonly StoreOp[]): Promise<void> {
    if (this.#closed) return Promise.reject(closedError());
    if (this.#failNext !== null) {
      const error = this.#failNext;
      this.#failNext = null;
      return Promise.reject(error);
    }
    let encoded: (string | null)[];
    try {
      encoded = ops.map(encodeOp);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    ops.forEach((op, i) => {
      const id = `${op.kind}\u0000${op.key}`;
      const json = encoded[i];
      if (json == null) this.#records.delete(id);
      else this.#records.set(id, { kind: op.kind, key: op.key, json });
    });
    this.commits++;
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}
