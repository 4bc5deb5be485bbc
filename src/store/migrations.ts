import type { StoreKind } from '../domain/store-port.ts';
import { EbbError } from '../shared/errors.ts';

/**
 * Record formats and how a stored record is brought up to the current one.
 *
 * Every stored record is a JSON object whose `v` field is the format version of its kind. The store
 * writes `v` itself (records.ts, encodeRecord) and reads it: when a state directory is opened, every
 * record below its kind's current version is upgraded in the same transaction that opens it
 * (sqlite-state-store.ts), so everything above the store only ever sees records of the current format.
 * A record above the current version was written by a newer ebb, and the state is refused.
 *
 * Version 0 is a record without `v`: what the releases before record versions wrote (only `target`
 * records carried `v: 1` then). The previous release's state is therefore records without `v`, or
 * with `v` one below the current version, and this list upgrades either.
 */

/** A stored record: a JSON object. */
export type StoredRecord = Readonly<Record<string, unknown>>;

/** Takes a record of one version to the next. Pure: no I/O, no clock; `v` is set by the caller. */
export type Migration = (record: StoredRecord) => StoredRecord;

/** Before records were versioned the fields were the same as in version 1: only `v` is new. */
const sameFields: Migration = (record) => record;

/**
 * For each kind, its migrations in order: `MIGRATIONS[kind][n]` takes a record at version n to
 * n + 1, so a kind's current version is the length of its list. A new format adds one function at
 * the end of its kind's list; the existing ones are never changed, so a state of any earlier
 * version still upgrades.
 */
export const MIGRATIONS: Readonly<Record<StoreKind, readonly Migration[]>> = {
  loadBalancer: [sameFields],
  listener: [sameFields],
  targetGroup: [sameFields],
  target: [sameFields],
  instance: [sameFields],
  drainRecord: [sameFields],
  meta: [sameFields],
  launchTemplate: [sameFields],
  autoScalingGroup: [sameFields],
  autoScalingInstance: [sameFields],
  lifecycleHook: [sameFields],
  instanceRefresh: [sameFields],
  scalingActivity: [sameFields],
  // New in the release that added TLS listeners: no earlier state has any, so version 1 is its first format.
  certificate: [sameFields],
};

/** The format version this ebb writes for `kind`. */
export function currentVersion(kind: StoreKind, migrations: readonly Migration[] = MIGRATIONS[kind]): number {
  return migrations.length;
}

export function isStoredRecord(value: unknown): value is StoredRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The format version a stored record carries: its `v`, or 0 when it has none. Throws
 * StoreUnavailable for a value that is not a record or a `v` that is not a version.
 */
export function versionOf(kind: StoreKind, key: string, value: unknown): number {
  if (!isStoredRecord(value)) {
    throw new EbbError('StoreUnavailable', `The ${kind} record "${key}" is not a JSON object, so it has no format version; the state directory is damaged.`);
  }
  const v = value['v'];
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new EbbError('StoreUnavailable', `The ${kind} record "${key}" has format version ${JSON.stringify(v)}, which is not a version number; the state directory is damaged.`);
  }
  return v;
}

/**
 * The record brought to the current version of its kind, with `v` set; null when it is current
 * already. Throws StoreUnavailable for a record of a newer ebb, or one that is not a record.
 */
export function upgradeRecord(kind: StoreKind, key: string, value: unknown, migrations: readonly Migration[] = MIGRATIONS[kind]): StoredRecord | null {
  const from = versionOf(kind, key, value);
  const to = currentVersion(kind, migrations);
  if (from === to) return null;
  if (from > to) {
    throw new EbbError(
      'StoreUnavailable',
      `The ${kind} record "${key}" was written by a newer ebb (format ${from}; this ebb reads up to ${to}). Run the newer ebb, or start with another --state-dir.`,
    );
  }
  let record = value as StoredRecord;
  for (let n = from; n < to; n++) {
    const step = migrations[n];
    if (step === undefined) throw new EbbError('InternalFailure', `No migration of ${kind} records from format ${n}.`);
    record = { ...step(record), v: n + 1 };
  }
  return record;
}
