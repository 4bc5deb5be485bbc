/**
 * Durable state, behind an interface so the embedded store can be swapped for a distributed one.
 * A commit is atomic (all operations or none) and durable once its promise resolves: only then may a
 * change be acknowledged to a client.
 */
export type StoreKind =
  | 'loadBalancer'
  | 'listener'
  | 'targetGroup'
  | 'target'
  | 'instance'
  | 'drainRecord'
  | 'meta'
  // Auto Scaling's own (src/autoscaling/)
  | 'launchTemplate'
  | 'autoScalingGroup'
  | 'autoScalingInstance'
  | 'lifecycleHook'
  | 'instanceRefresh'
  | 'scalingActivity'
  // Server certificates (ACM's ImportCertificate, and the file's), src/control/certificates.ts
  | 'certificate';

export type StoreOp =
  | { readonly op: 'put'; readonly kind: StoreKind; readonly key: string; readonly value: unknown }
  | { readonly op: 'delete'; readonly kind: StoreKind; readonly key: string };

export interface StateStore {
  /** Every record, by kind, then key. */
  load(): Promise<Map<StoreKind, Map<string, unknown>>>;
  commit(ops: readonly StoreOp[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * A store that takes a change now and makes it durable later, so that one flush to disk covers every
 * change written while the previous flush ran (group commit). `write` is as atomic as `commit` (all
 * operations or none; it throws when it cannot write, having written nothing) but not yet durable;
 * `flush` resolves once every write made before it was called is durable. A change written this way
 * may be acknowledged only after a flush that covers it. Once a flush fails, the store is broken: what
 * was written since the last good flush may or may not be on disk, so every later write and flush fails.
 */
export interface GroupCommitStore extends StateStore {
  write(ops: readonly StoreOp[]): void;
  flush(): Promise<void>;
}

export function canGroupCommit(store: StateStore): store is GroupCommitStore {
  const s = store as Partial<GroupCommitStore>;
  return typeof s.write === 'function' && typeof s.flush === 'function';
}
