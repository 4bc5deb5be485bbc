/**
 * The messages of a hot restart (docs/restart.md) between the running ebb (the predecessor) and the one
 * it started to take its place (the successor), over the IPC channel between them, before that channel
 * carries the data-plane protocol (src/workers/protocol.ts) for the predecessor's last work.
 *
 * predecessor → successor: `sockets` (the addresses it listens on, so the successor's checks pass them,
 * and its data plane's id); once asked for the state, `socket` with the admin API's handle (before its
 * server closes), then, once the state is closed and its listeners can no longer change, a `socket` per
 * listener with its handle and `state` (the drains it tracked, its targets' health); `abort` (the
 * restart is called off).
 * successor → predecessor: `want-state` (its file and ports are checked), `serving` (it has restored the
 * state: the next messages are the data-plane protocol's, and its `close` is the signal to retire),
 * `failed` (it cannot start, and says why).
 */
import type { HandedOverHealth, HandOver } from '../control/hand-over.ts';
import type { HandedOverDrain } from '../control/registered-targets.ts';
import type { HealthFailureReason } from '../domain/target-health.ts';

export const HANDOVER_VERSION = 1;

/** Set in the successor's environment to the predecessor's pid: `ebb serve` then takes over. */
export const TAKEOVER_ENV = 'EBB_TAKEOVER';

export type SocketRole = 'listener' | 'admin';

export type ToSuccessor =
  | { readonly type: 'handover:socket'; readonly v: number; readonly role: SocketRole; readonly address: string; readonly port: number }
  /** `socketsPerAddress`: the most listening sockets one address will have (one per worker under SO_REUSEPORT; 1 if absent). */
  | { readonly type: 'handover:sockets'; readonly v: number; readonly addresses: ReadonlyArray<{ readonly address: string; readonly port: number }>; readonly dataPlaneId: string; readonly socketsPerAddress?: number }
  | { readonly type: 'handover:state'; readonly v: number; readonly handOver: HandOver }
  | { readonly type: 'handover:abort'; readonly v: number; readonly reason: string };

export type ToPredecessor =
  | { readonly type: 'handover:want-state'; readonly v: number }
  | { readonly type: 'handover:serving'; readonly v: number }
  | { readonly type: 'handover:failed'; readonly v: number; readonly error: string };

export class HandoverProtocolError extends Error {}

function record(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HandoverProtocolError('a handover message is not an object');
  const m = value as Record<string, unknown>;
  if (m['v'] !== HANDOVER_VERSION) throw new HandoverProtocolError(`handover protocol version ${String(m['v'])}; this ebb speaks ${HANDOVER_VERSION}`);
  return m;
}

function text(m: Record<string, unknown>, field: string): string {
  const v = m[field];
  if (typeof v !== 'string') throw new HandoverProtocolError(`${String(m['type'])}: ${field} is not a string`);
  return v;
}

function count(m: Record<string, unknown>, field: string): number {
  const v = m[field];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new HandoverProtocolError(`${String(m['type'])}: ${field} is not a count`);
  return v;
}

function drains(value: unknown): HandedOverDrain[] {
  if (!Array.isArray(value)) throw new HandoverProtocolError('handover:state: drains is not a list');
  return value.map((d: unknown) => {
    if (typeof d !== 'object' || d === null) throw new HandoverProtocolError('handover:state: a drain is not an object');
    const m = d as Record<string, unknown>;
    const starts = m['completedAtStart'];
    if (typeof m['key'] !== 'string' || !Array.isArray(starts)) throw new HandoverProtocolError('handover:state: a drain without key and completedAtStart');
    for (const pair of starts as unknown[]) {
      if (!Array.isArray(pair) || typeof pair[0] !== 'string' || typeof pair[1] !== 'number') throw new HandoverProtocolError('handover:state: completedAtStart is not [id, count] pairs');
    }
    return { key: m['key'], completedAtStart: starts as Array<[string, number]> };
  });
}

const FAILURE_REASONS: ReadonlySet<unknown> = new Set(['Target.ResponseCodeMismatch', 'Target.Timeout', 'Target.FailedHealthChecks']);

function health(value: unknown): HandedOverHealth[] {
  if (!Array.isArray(value)) throw new HandoverProtocolError('handover:state: health is not a list');
  return value.map((v: unknown) => {
    if (typeof v !== 'object' || v === null) throw new HandoverProtocolError('handover:state: a health entry is not an object');
    const m = v as Record<string, unknown>;
    const failure = m['failure'] as Record<string, unknown> | null;
    const healthyForMs = m['healthyForMs'];
    if (typeof m['key'] !== 'string' || (m['health'] !== 'healthy' && m['health'] !== 'unhealthy')) throw new HandoverProtocolError('handover:state: a health entry without key and health');
    if (healthyForMs !== null && (typeof healthyForMs !== 'number' || !(healthyForMs >= 0))) throw new HandoverProtocolError('handover:state: healthyForMs is not a duration');
    if (failure !== null && (typeof failure !== 'object' || !FAILURE_REASONS.has(failure['reason']))) throw new HandoverProtocolError('handover:state: an unknown failure reason');
    // Healthy has an age and no failure; unhealthy a failure and no age: anything else is not a state the checks settle.
    if (m['health'] === 'healthy' ? healthyForMs === null || failure !== null : healthyForMs !== null || failure === null) {
      throw new HandoverProtocolError(`handover:state: ${m['key']} is ${m['health']} with ${healthyForMs === null ? 'no' : 'a'} healthyForMs and ${failure === null ? 'no' : 'a'} failure`);
    }
    const statusCode = failure?.['statusCode'];
    return {
      key: m['key'],
      health: m['health'],
      healthyForMs,
      failure: failure === null ? null : { reason: failure['reason'] as HealthFailureReason, ...(typeof statusCode === 'number' && { statusCode }) },
    };
  });
}

/** A message to the successor, checked; throws HandoverProtocolError. */
export function decodeToSuccessor(value: unknown): ToSuccessor {
  const m = record(value);
  const v = HANDOVER_VERSION;
  switch (m['type']) {
    case 'handover:socket': {
      const role = m['role'];
      if (role !== 'listener' && role !== 'admin') throw new HandoverProtocolError(`handover:socket: unknown role ${String(role)}`);
      return { type: 'handover:socket', v, role, address: text(m, 'address'), port: count(m, 'port') };
    }
    case 'handover:sockets': {
      const list = m['addresses'];
      if (!Array.isArray(list)) throw new HandoverProtocolError('handover:sockets: addresses is not a list');
      const addresses = list.map((a: unknown) => {
        if (typeof a !== 'object' || a === null) throw new HandoverProtocolError('handover:sockets: an address is not an object');
        const r = a as Record<string, unknown>;
        return { address: text({ ...r, type: 'handover:sockets' }, 'address'), port: count({ ...r, type: 'handover:sockets' }, 'port') };
      });
      const perAddress = m['socketsPerAddress'] === undefined ? null : count(m, 'socketsPerAddress');
      return { type: 'handover:sockets', v, addresses, dataPlaneId: text(m, 'dataPlaneId'), ...(perAddress !== null && { socketsPerAddress: Math.max(1, perAddress) }) };
    }
    case 'handover:state': {
      const h = m['handOver'] as Record<string, unknown> | null | undefined;
      if (typeof h !== 'object' || h === null) throw new HandoverProtocolError('handover:state: no handOver');
      return { type: 'handover:state', v, handOver: { drains: drains(h['drains']), health: health(h['health']) } };
    }
    case 'handover:abort':
      return { type: 'handover:abort', v, reason: text(m, 'reason') };
    default:
      throw new HandoverProtocolError(`unknown handover message ${String(m['type'])}`);
  }
}

/** A message to the predecessor, checked; throws HandoverProtocolError. */
export function decodeToPredecessor(value: unknown): ToPredecessor {
  const m = record(value);
  const v = HANDOVER_VERSION;
  switch (m['type']) {
    case 'handover:want-state':
      return { type: 'handover:want-state', v };
    case 'handover:serving':
      return { type: 'handover:serving', v };
    case 'handover:failed':
      return { type: 'handover:failed', v, error: text(m, 'error') };
    default:
      throw new HandoverProtocolError(`unknown handover message ${String(m['type'])}`);
  }
}
