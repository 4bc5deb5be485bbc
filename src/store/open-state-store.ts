import type { StateStore } from '../domain/store-port.ts';
import { SqliteStateStore, type SqliteStateStoreOptions } from './sqlite-state-store.ts';

/**
 * Opens the state store for a `--state-dir`. Today that is always the embedded SQLite store; a
 * distributed store (etcd) will be chosen here by a later option, behind the same interface.
 * Rejects with EbbError('StoreUnavailable') when the dir cannot be used or another ebb holds it.
 */
export function openStateStore(dir: string, options: SqliteStateStoreOptions = {}): Promise<StateStore> {
  return SqliteStateStore.open(dir, options);
}
