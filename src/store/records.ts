import type { StoreKind, StoreOp } from '../domain/store-port.ts';
import { EbbError } from '../shared/errors.ts';
import { currentVersion, isStoredRecord, versionOf } from './migrations.ts';

/**
 * What every StateStore implementation shares: the kinds it accepts and how a value becomes the
 * JSON text it keeps and back. Values go through JSON on the way in, so a store hands back plain data
 * (no class instances, no `undefined` properties) whichever implementation is behind it. Every record
 * is a JSON object stored with its format version `v`, which the store sets and reads (migrations.ts).
 */
export const STORE_KINDS: readonly StoreKind[] = [
  'loadBalancer',
  'listener',
  'targetGroup',
  'target',
  'instance',
  'drainRecord',
  'meta',
  'launchTemplate',
  'autoScalingGroup',
  'autoScalingInstance',
  'lifecycleHook',
  'instanceRefresh',
  'scalingActivity',
  'certificate',
];

const kinds = new Set<string>(STORE_KINDS);

export function isStoreKind(value: string): value is StoreKind {
  return kinds.has(value);
}

/**
 * Checks one operation and returns the JSON text to store (`null` for a delete). Throws on a bad op.
 * A record is a JSON object, stored with `v`, its kind's current format version (migrations.ts); a
 * value that names another version itself is refused, as the writer and the store disagree on its format.
 */
export function encodeOp(op: StoreOp): string | null {
  if (!isStoreKind(op.kind)) {
    throw new EbbError('InternalFailure', `The store has no kind "${String(op.kind)}"; known kinds: ${STORE_KINDS.join(', ')}.`);
  }
  if (typeof op.key !== 'string' || op.key.length === 0) {
    throw new EbbError('InternalFailure', `A ${op.kind} record needs a non-empty string key.`);
  }
  if (op.op === 'delete') return null;
  if (op.op !== 'put') {
    throw new EbbError('InternalFailure', `Unknown store operation "${String((op as { op: unknown }).op)}".`);
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(op.value) as string | undefined;
  } catch (error) {
    throw new EbbError('InternalFailure', `The ${op.kind} record "${op.key}" cannot be stored as JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (text === undefined) {
    throw new EbbError('InternalFailure', `The ${op.kind} record "${op.key}" has no JSON value (got ${typeof op.value}).`);
  }
  // Parsed back so the version is checked and set on exactly what JSON keeps (toJSON, dropped undefined).
  const record: unknown = JSON.parse(text);
  if (!isStoredRecord(record)) {
    throw new EbbError('InternalFailure', `The ${op.kind} record "${op.key}" must be a JSON object, to carry its format version; got ${text.slice(0, 40)}.`);
  }
  const v = currentVersion(op.kind);
  if (record['v'] !== undefined && record['v'] !== v) {
    throw new EbbError(
      'InternalFailure',
      `The ${op.kind} record "${op.key}" names format version ${JSON.stringify(record['v'])}, but this ebb stores ${op.kind} records in format ${v}.`,
    );
  }
  return JSON.stringify({ ...record, v });
}

/**
 * A stored record as the layers above the store see it: parsed, checked to be of the current format
 * (the store upgraded it when it opened), without `v`. Throws StoreUnavailable otherwise.
 */
export function decodeRecord(kind: StoreKind, key: string, json: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    throw new EbbError('StoreUnavailable', `The ${kind} record "${key}" is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  const v = versionOf(kind, key, value);
  if (v !== currentVersion(kind)) {
    throw new EbbError('StoreUnavailable', `The ${kind} record "${key}" is in format ${v}, not ${currentVersion(kind)}, though the store upgraded its records when it opened.`);
  }
  const { v: _v, ...record } = value as Record<string, unknown>;
  return record;
}

/** An empty map for every kind, so callers can rely on `get(kind)` for any known kind. */
export function emptyState(): Map<StoreKind, Map<string, unknown>> {
  return new Map(STORE_KINDS.map((kind) => [kind, new Map<string, unknown>()]));
}

/** What a closed store answers every call with. */
export function closedError(): EbbError {
  return new EbbError('StoreUnavailable', 'The state store is closed.');
}
