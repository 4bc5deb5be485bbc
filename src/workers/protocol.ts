import type { ApplyResult, TargetActivity, TerminateResult } from '../domain/data-plane-port.ts';
import type { ListenerRoute, RoutingSnapshot, TargetGroupRoute } from '../domain/routing-snapshot.ts';
import type { RequestDigestMessage } from '../dataplane/request-digest.ts';

/**
 * The messages between the control plane's process and a data-plane process (a worker), version 1.
 *
 * The same protocol is meant for a data plane on another node, so nothing in it assumes a shared
 * process or a shared clock: no message carries an instant of one side for the other to compare
 * (a target's slow start travels as `healthyForMs`, a duration, as in the snapshot), and every value
 * is plain JSON (the snapshot's map of groups travels as a list). Each message is one JSON object with
 * a `type`; a side that receives a message it cannot read refuses it (`decodeMessage` says why) and
 * the connection is closed, since the two sides no longer agree on what was said.
 *
 * The conversation:
 * 1. The worker starts and says `ready` with the protocol versions it speaks; the control side picks
 *    one it speaks too (`PROTOCOL_VERSION`), or closes the worker, saying which versions each side has.
 * 2. The control side sends `hello` (the worker's data-plane id and the version), then `apply` with the
 *    current snapshot, and every later snapshot as it is published.
 * 3. The worker answers each `apply` with `applied` (same `seq`): the listeners it could not open, and
 *    the activity of every target key it has work on at that moment. Until then the control side
 *    counts the worker's work on a key as unknown, so no drain ends on a count from before the worker
 *    stopped routing to the target.
 * 4. The worker reports its activity on its own: `idle` at once when a key it no longer routes has no
 *    work left, and `activity` with the keys whose counts changed, at most every `reportIntervalMs`.
 * 5. `terminate` (a drain deadline, an unhealthy target's flows) and `close` (graceful stop) are
 *    answered with `terminated` and `closed` of the same `seq`; `destroy` has no answer.
 * 6. The worker forwards its diagnostics-channel messages in batches (`telemetry`), so metrics and
 *    access logs in the control plane's process cover every worker, and its log lines (`log`). Its
 *    request ends travel one by one until the control side says `telemetry` with `requestEnds:
 *    'digest'` (no access log needs them): then each batch folds them into its `digest`
 *    (src/dataplane/request-digest.ts), until `requestEnds: 'raw'`.
 *
 * Two exchanges carry a listening socket's handle with the message, so they exist only over a
 * process's IPC channel (a data plane on another node has its own sockets): at a hot restart with
 * workers (docs/restart.md), `socket` to a new worker before its `hello` hands it a socket the ebb
 * before listened on, which its listener for that address listens on instead of binding; and
 * `listening` asks a worker for its listening sockets, answered by a `socket` per socket (same `seq`)
 * and then `listening` with their count.
 */
export const PROTOCOL_VERSION = 1;
/** Versions this side speaks. */
export const SUPPORTED_VERSIONS: readonly number[] = [1];

/** One target key's work, as a worker reports it (`TargetActivity` with its key). */
export interface WireActivity {
  readonly key: string;
  readonly requests: number;
  readonly tunnels: number;
  /** Since the worker started: a counter. */
  readonly completed: number;
  readonly connections: number;
}

/** `RoutingSnapshot` as JSON: the map of target groups as a list (in the map's order). */
export interface WireSnapshot {
  readonly version: number;
  readonly listeners: readonly ListenerRoute[];
  readonly targetGroups: readonly TargetGroupRoute[];
}

/** How a worker's request ends travel: each message (`raw`), or folded into each batch's digest (`digest`). */
export type RequestEnds = 'raw' | 'digest';

/** Control side → worker. */
export type ToWorker =
  | { readonly type: 'hello'; readonly protocol: number; readonly dataPlaneId: string; readonly reportIntervalMs: number }
  | { readonly type: 'apply'; readonly seq: number; readonly snapshot: WireSnapshot }
  | { readonly type: 'terminate'; readonly seq: number; readonly key: string }
  | { readonly type: 'close'; readonly seq: number; readonly deadlineMs: number }
  | { readonly type: 'destroy' }
  /** With a listening socket's handle; only before `hello`. */
  | { readonly type: 'socket'; readonly address: string; readonly port: number }
  | { readonly type: 'listening'; readonly seq: number }
  /** How the worker's request ends travel from now on: each message, or folded into each batch's digest. */
  | { readonly type: 'telemetry'; readonly requestEnds: RequestEnds };

/** Worker → control side. */
export type FromWorker =
  | { readonly type: 'ready'; readonly protocols: readonly number[]; readonly pid: number }
  /** `completed` (in `applied` and `activity`): requests and tunnels the worker has completed on every key, since it started (a counter). */
  | { readonly type: 'applied'; readonly seq: number; readonly version: number; readonly listenerErrors: ApplyResult['listenerErrors']; readonly activity: readonly WireActivity[]; readonly completed?: number }
  | { readonly type: 'activity'; readonly activity: readonly WireActivity[]; readonly completed?: number }
  | { readonly type: 'idle'; readonly activity: WireActivity }
  | { readonly type: 'terminated'; readonly seq: number; readonly result: TerminateResult }
  /** `connectionsCut`: client connections still open at the close deadline, and cut (absent from an older worker). */
  | { readonly type: 'closed'; readonly seq: number; readonly connectionsCut?: number }
  /** With the handle of one of its listening sockets, answering `listening`. */
  | { readonly type: 'socket'; readonly seq: number; readonly address: string; readonly port: number }
  /** After the `socket`s answering `listening`: how many were sent. */
  | { readonly type: 'listening'; readonly seq: number; readonly count: number }
  /**
   * Diagnostics-channel messages in the order published: `[channel name, message]`. `dropped`: left out
   * since the last batch (the link was full). `digest`: the batch's request ends, folded (checked where it is read).
   */
  | { readonly type: 'telemetry'; readonly events: ReadonlyArray<readonly [string, unknown]>; readonly dropped: number; readonly digest?: RequestDigestMessage }
  | { readonly type: 'log'; readonly line: Readonly<Record<string, unknown>> };

export function encodeSnapshot(snapshot: RoutingSnapshot): WireSnapshot {
  return { version: snapshot.version, listeners: snapshot.listeners, targetGroups: [...snapshot.targetGroups.values()] };
}

export function decodeSnapshot(wire: WireSnapshot): RoutingSnapshot {
  return { version: wire.version, listeners: wire.listeners, targetGroups: new Map(wire.targetGroups.map((g) => [g.arn, g])) };
}

export function toActivity(a: WireActivity): TargetActivity {
  return { requests: a.requests, tunnels: a.tunnels, completed: a.completed, connections: a.connections };
}

/** A message that could not be read, with why, for the log line and the error that closes the link. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
}

const TO_WORKER_FIELDS: Readonly<Record<ToWorker['type'], Readonly<Record<string, FieldKind>>>> = {
  hello: { protocol: 'int', dataPlaneId: 'string', reportIntervalMs: 'int' },
  apply: { seq: 'int', snapshot: 'snapshot' },
  terminate: { seq: 'int', key: 'string' },
  close: { seq: 'int', deadlineMs: 'int' },
  destroy: {},
  socket: { address: 'string', port: 'int' },
  listening: { seq: 'int' },
  telemetry: { requestEnds: 'requestEnds' },
};

const FROM_WORKER_FIELDS: Readonly<Record<FromWorker['type'], Readonly<Record<string, FieldKind>>>> = {
  ready: { protocols: 'ints', pid: 'int' },
  applied: { seq: 'int', version: 'int', listenerErrors: 'listenerErrors', activity: 'activities' },
  activity: { activity: 'activities' },
  idle: { activity: 'activity' },
  terminated: { seq: 'int', result: 'terminateResult' },
  closed: { seq: 'int' },
  telemetry: { events: 'events', dropped: 'int' },
  log: { line: 'object' },
  socket: { seq: 'int', address: 'string', port: 'int' },
  listening: { seq: 'int', count: 'int' },
};

type FieldKind = 'int' | 'ints' | 'string' | 'requestEnds' | 'listenerErrors' | 'object' | 'snapshot' | 'activity' | 'activities' | 'terminateResult' | 'events';

/** Reads a message the worker received; throws `ProtocolError` naming what is wrong. */
export function decodeToWorker(value: unknown): ToWorker {
  return decodeMessage(value, TO_WORKER_FIELDS) as ToWorker;
}

/** Reads a message the control side received; throws `ProtocolError` naming what is wrong. */
export function decodeFromWorker(value: unknown): FromWorker {
  return decodeMessage(value, FROM_WORKER_FIELDS) as FromWorker;
}

function decodeMessage(value: unknown, table: Readonly<Record<string, Readonly<Record<string, FieldKind>>>>): unknown {
  if (!isObject(value)) throw new ProtocolError(`a message must be a JSON object; got ${describe(value)}`);
  const type = value['type'];
  if (typeof type !== 'string' || !Object.hasOwn(table, type)) {
    throw new ProtocolError(`unknown message type ${JSON.stringify(type)}; expected one of ${Object.keys(table).join(', ')}`);
  }
  const fields = table[type] ?? {};
  for (const [name, kind] of Object.entries(fields)) {
    const problem = checkField(value[name], kind);
    if (problem !== null) throw new ProtocolError(`message '${type}': field '${name}' ${problem}`);
  }
  return value;
}

function checkField(v: unknown, kind: FieldKind): string | null {
  switch (kind) {
    case 'int':
      return Number.isSafeInteger(v) && (v as number) >= 0 ? null : `must be a non-negative integer; got ${describe(v)}`;
    case 'ints':
      return Array.isArray(v) && v.every((x) => Number.isSafeInteger(x)) ? null : `must be a list of integers; got ${describe(v)}`;
    case 'string':
      return typeof v === 'string' ? null : `must be a string; got ${describe(v)}`;
    case 'requestEnds':
      return v === 'raw' || v === 'digest' ? null : `must be 'raw' or 'digest'; got ${describe(v)}`;
    case 'listenerErrors':
      // Each entry is read by the control side's routing publisher; a null there would throw in it.
      if (!Array.isArray(v)) return `must be a list; got ${describe(v)}`;
      for (const e of v) {
        if (!isObject(e) || !['arn', 'code', 'message'].every((k) => typeof e[k] === 'string')) {
          return `has an entry that is not {arn, code, message} strings; got ${describe(e)}`;
        }
      }
      return null;
    case 'object':
      return isObject(v) ? null : `must be an object; got ${describe(v)}`;
    case 'snapshot':
      if (!isObject(v)) return `must be an object; got ${describe(v)}`;
      if (!Number.isSafeInteger(v['version'])) return `has no integer version`;
      if (!Array.isArray(v['listeners']) || !Array.isArray(v['targetGroups'])) return 'must have the lists listeners and targetGroups';
      return v['targetGroups'].every((g) => isObject(g) && typeof g['arn'] === 'string' && Array.isArray(g['targets'])) ? null : 'has a target group without an arn or targets';
    case 'activity':
      return activityProblem(v);
    case 'activities':
      if (!Array.isArray(v)) return `must be a list; got ${describe(v)}`;
      for (const a of v) {
        const p = activityProblem(a);
        if (p !== null) return `has an entry that ${p}`;
      }
      return null;
    case 'terminateResult':
      return isObject(v) && ['requestsCut', 'tunnelsClosed', 'connectionsClosed'].every((k) => Number.isSafeInteger(v[k]))
        ? null
        : 'must have the integer counts requestsCut, tunnelsClosed and connectionsClosed';
    case 'events':
      return Array.isArray(v) && v.every((e) => Array.isArray(e) && e.length === 2 && typeof e[0] === 'string') ? null : 'must be a list of [channel, message] pairs';
  }
}

function activityProblem(v: unknown): string | null {
  if (!isObject(v) || typeof v['key'] !== 'string') return 'must be an object with a string key';
  for (const k of ['requests', 'tunnels', 'completed', 'connections']) {
    const n = v[k];
    if (!Number.isSafeInteger(n) || (n as number) < 0) return `must have a non-negative integer ${k}; got ${describe(n)}`;
  }
  return null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * The snapshot as it is `elapsedMs` after it was built: each healthy target has been healthy that much
 * longer. Both readings are this process's clock; the worker adds its own time from when it receives it.
 */
export function withHealthyAged(snapshot: RoutingSnapshot, elapsedMs: number): RoutingSnapshot {
  if (elapsedMs <= 0) return snapshot;
  const targetGroups = new Map<string, TargetGroupRoute>();
  for (const [arn, group] of snapshot.targetGroups) {
    targetGroups.set(arn, { ...group, targets: group.targets.map((t) => (t.healthyForMs === null ? t : { ...t, healthyForMs: t.healthyForMs + elapsedMs })) });
  }
  return { ...snapshot, targetGroups };
}
