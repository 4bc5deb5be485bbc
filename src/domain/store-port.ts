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
