import type { GroupCommitStore, StateStore, StoreKind, StoreOp } from '../domain/store-port.ts';
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
    try {
      this.applyOps(ops);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return Promise.resolve();
  }

  /** Applies `ops` at once, all or none (a value JSON cannot hold throws, having changed nothing), and counts the commit. */
  protected applyOps(ops: readonly StoreOp[]): void {
    const encoded = ops.map(encodeOp);
    ops.forEach((op, i) => {
      const id = `${op.kind}\u0000${op.key}`;
      const json = encoded[i];
      if (json == null) this.#records.delete(id);
      else this.#records.set(id, { kind: op.kind, key: op.key, json });
    });
    this.commits++;
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}

/**
 * The in-memory store with group commit (GroupCommitStore), for tests of the control plane's group
 * commit: `write` applies at once (so `load` sees it, as SQLite's reads do), `flush` resolves at once
 * unless flushes are held, when each waits for `releaseFlush()`. A failed flush breaks the store, as
 * the SQLite store's does.
 */
export class InMemoryGroupCommitStore extends InMemoryStateStore implements GroupCommitStore {
  /** Flushes started (one per group). */
  flushes = 0;
  #hold = false;
  readonly #held: Array<(error: Error | null) => void> = [];
  #failNextWrite: Error | null = null;
  #broken: Error | null = null;

  /** Makes the next write throw `error`, changing nothing. */
  failNextWrite(error: Error = new EbbError('StoreUnavailable', 'The state store could not write (simulated).')): void {
    this.#failNextWrite = error;
  }

  /** From now on each flush waits for `releaseFlush`. */
  holdFlushes(): void {
    this.#hold = true;
  }

  /** Ends the oldest held flush: durable, or failed with `error` (which breaks the store). */
  releaseFlush(error: Error | null = null): void {
    this.#held.shift()?.(error);
  }

  get heldFlushes(): number {
    return this.#held.length;
  }

  write(ops: readonly StoreOp[]): void {
    if (this.closed) throw closedError();
    if (this.#broken !== null) throw this.#broken;
    if (this.#failNextWrite !== null) {
      const error = this.#failNextWrite;
      this.#failNextWrite = null;
      throw error;
    }
    this.applyOps(ops);
  }

  flush(): Promise<void> {
    if (this.#broken !== null) return Promise.reject(this.#broken);
    this.flushes += 1;
    if (!this.#hold) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#held.push((error) => {
        if (error === null) return resolve();
        this.#broken = error;
        reject(error);
      });
    });
  }
}

