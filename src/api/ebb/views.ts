import type { ControlApi } from '../../control/control-api.ts';
import type { TargetInput } from '../../control/inputs.ts';
import type { DrainRecord, TargetHealthDescription } from '../../control/outputs.ts';
import type { RoutingWatch } from '../../control/routing-watch.ts';
import { attributeNumber } from '../../domain/attributes.ts';
import { targetKey, type TargetGroupRecord } from '../../domain/resources.ts';
import { EbbError, ebbError } from '../../shared/errors.ts';
import { iso } from './http.ts';

/**
 * The JSON shapes of ebb's own API, built from the control plane's queries and the routing watch.
 * They are documented in docs/api.md and described in the OpenAPI document (openapi.ts); both are
 * kept in step with these builders, and a test checks every answer against the OpenAPI schemas.
 * Instants are RFC 3339 strings in UTC; durations are milliseconds and named so (`timeLeftMs`).
 */

export interface TargetJson {
  readonly targetGroupArn: string;
  readonly targetGroupName: string;
  readonly targetId: string;
  readonly port: number;
  /** `ID:PORT` (an IPv6 address in brackets), as the CLI takes it. */
  readonly target: string;
  readonly state: string;
  readonly reason: string | null;
  readonly description: string | null;
  /** Whether the newest routing snapshot sends new requests to it. */
  readonly routed: boolean;
  readonly requestsInFlight: number;
  readonly tunnelsOpen: number;
  readonly connections: number;
  readonly drain: DrainTimesJson | null;
}

export interface DrainTimesJson {
  readonly startedAt: string;
  readonly deadline: string;
  readonly timeoutSeconds: number;
  readonly elapsedMs: number;
  readonly timeLeftMs: number;
}

export interface DrainJson extends DrainTimesJson {
  readonly targetGroupArn: string;
  readonly targetGroupName: string;
  readonly targetId: string;
  readonly port: number;
  readonly target: string;
  readonly requestsInFlight: number;
  readonly tunnelsOpen: number;
  readonly connections: number;
}

export interface DrainRecordJson {
  readonly id: string;
  readonly targetGroupArn: string;
  readonly targetGroupName: string;
  readonly targetId: string;
  readonly port: number;
  readonly target: string;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly durationMs: number;
  readonly timeoutSeconds: number;
  readonly outcome: DrainRecord['outcome'];
  readonly requestsCompleted: number;
  readonly requestsCut: number;
  readonly tunnelsClosed: number;
  readonly connectionsClosed: number;
  /** A TCP group's flows left open at the deadline (see `DrainRecord.flowsLeftOpen`); 0 otherwise. */
  readonly flowsLeftOpen: number;
}

/** `ID:PORT`, an IPv6 address in brackets. */
export function targetText(id: string, port: number): string {
  return id.includes(':') ? `[${id}]:${port}` : `${id}:${port}`;
}

/**
 * A target as the CLI and the query strings name it: `ID:PORT`, `[IPv6]:PORT`, or an id alone (an IP
 * address, a bare IPv6 address, or an instance id), which takes the group's port.
 */
export function parseTarget(text: string): TargetInput {
  const bracketed = /^\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?$/.exec(text);
  let id: string;
  let port: string | undefined;
  if (bracketed !== null) {
    id = bracketed[1] ?? '';
    port = bracketed[2];
  } else {
    const colons = text.split(':').length - 1;
    const i = text.lastIndexOf(':');
    if (colons === 1) {
      id = text.slice(0, i);
      port = text.slice(i + 1);
    } else {
      id = text;
    }
  }
  if (id === '' || /\s/.test(id) || (port !== undefined && (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535))) {
    throw ebbError('InvalidTarget', `'${text}' is not a target: write ID:PORT (10.0.0.1:80, [2001:db8::1]:80, i-0abc:80), or an ID alone for the group's port`);
  }
  return port === undefined ? { id } : { id, port: Number(port) };
}

/** The group a NAME or ARN names (TargetGroupNotFound, or ValidationError for a malformed ARN). */
export function findTargetGroup(control: ControlApi, nameOrArn: string): TargetGroupRecord {
  const notFound = (): Error => ebbError('TargetGroupNotFound', `Target group '${nameOrArn}' not found; list them with GET /ebb/v1/status`);
  let found: TargetGroupRecord[];
  try {
    found = nameOrArn.startsWith('arn:') ? control.describeTargetGroups({ arns: [nameOrArn] }) : control.describeTargetGroups({ names: [nameOrArn] });
  } catch (error) {
    throw EbbError.is(error) && error.code === 'TargetGroupNotFound' ? notFound() : error;
  }
  const tg = found[0];
  if (tg === undefined) throw notFound();
  return tg;
}

/** The group's deregistration delay as configured (its attribute, or the default). */
export function configuredDelaySeconds(control: ControlApi, tg: TargetGroupRecord): number {
  return attributeNumber(control.describeTargetGroupAttributes(tg.arn), 'deregistration_delay.timeout_seconds', 300);
}

function drainTimes(startedAt: number, deadline: number, now: number): DrainTimesJson {
  return {
    startedAt: iso(startedAt),
    deadline: iso(deadline),
    timeoutSeconds: Math.round((deadline - startedAt) / 1000),
    elapsedMs: Math.max(0, now - startedAt),
    timeLeftMs: Math.max(0, deadline - now),
  };
}

export function targetJson(tg: TargetGroupRecord, d: TargetHealthDescription, watch: RoutingWatch, now: number): TargetJson {
  const key = targetKey(tg.arn, d.id, d.port);
  const work = watch.work(key);
  return {
    targetGroupArn: tg.arn,
    targetGroupName: tg.name,
    targetId: d.id,
    port: d.port,
    target: targetText(d.id, d.port),
    state: d.health.state,
    reason: d.health.reason ?? null,
    description: d.health.description ?? null,
    routed: watch.routed(key),
    requestsInFlight: work.requests,
    tunnelsOpen: work.tunnels,
    connections: work.connections,
    drain: d.drain === undefined ? null : drainTimes(d.drain.startedAt, d.drain.deadline, now),
  };
}

/** Every registration of the group (draining ones too), or the named ones (an unregistered one as unused). */
export function targetsOf(control: ControlApi, watch: RoutingWatch, tg: TargetGroupRecord, now: number, only?: TargetInput): TargetJson[] {
  return control.describeTargetHealth(tg.arn, only === undefined ? undefined : [only]).map((d) => targetJson(tg, d, watch, now));
}

export function drainJson(t: TargetJson): DrainJson | null {
  if (t.drain === null) return null;
  return {
    targetGroupArn: t.targetGroupArn,
    targetGroupName: t.targetGroupName,
    targetId: t.targetId,
    port: t.port,
    target: t.target,
    ...t.drain,
    requestsInFlight: t.requestsInFlight,
    tunnelsOpen: t.tunnelsOpen,
    connections: t.connections,
  };
}

export function drainRecordJson(r: DrainRecord): DrainRecordJson {
  return {
    id: r.id,
    targetGroupArn: r.targetGroupArn,
    targetGroupName: r.targetGroupName,
    targetId: r.targetId,
    port: r.port,
    target: targetText(r.targetId, r.port),
    startedAt: iso(r.startedAt),
    endedAt: iso(r.endedAt),
    durationMs: Math.max(0, r.endedAt - r.startedAt),
    timeoutSeconds: r.timeoutSeconds,
    outcome: r.outcome,
    requestsCompleted: r.requestsCompleted,
    requestsCut: r.requestsCut,
    tunnelsClosed: r.tunnelsClosed,
    connectionsClosed: r.connectionsClosed,
    flowsLeftOpen: r.flowsLeftOpen ?? 0,
  };
}

/** Every group (ELBv2 and those Classic load balancers forward to), in creation order. */
export function allTargetGroups(control: ControlApi): TargetGroupRecord[] {
  return control.describeTargetGroups();
}

/** The drain records kept, oldest first (the control plane keeps a bounded number). */
export function allDrainRecords(control: ControlApi): DrainRecord[] {
  return control.drainRecords(Number.MAX_SAFE_INTEGER);
}
