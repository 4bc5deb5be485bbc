import type { StoreKind, StoreOp } from '../domain/store-port.ts';
import { EbbError } from '../shared/errors.ts';

/**
 * What every StateStore implementation shares: the kinds it accepts and how a value becomes the
 * JSON text it keeps. Values go through JSON on the way in, so a store hands back plain data
 * (no class instances, no `undefined` properties) whichever implementation is behind it.
 */
export const STORE_KINDS: readonly StoreKind[] = [
  'loadBalancer',
  'listener',
  'targetGroup',
  'target',
  'instance',
  'drainRecord',
  'meta',
];

const kinds = new Set<string>(STORE_KINDS);

export function isStoreKind(value: string): value is StoreKind {
  return kinds.has(value);
}

/** Checks one operation and returns the JSON text to store (`null` for a delete). Throws on a bad op. */
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
  return text;
}

/** An empty map for every kind, so callers can rely on `get(kind)` for any known kind. */
export function emptyState(): Map<StoreKind, Map<string, unknown>> {
  return new Map(STORE_KINDS.map((kind) => [kind, new Map<string, unknown>()]));
}

/** What a closed store answers every call with. */
export function closedError(): EbbError {
  return new EbbError('StoreUnavailable', 'The state store is closed.');
}
