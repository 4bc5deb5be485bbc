import { healthCheckWithDefaults, type HealthCheckConfig } from '../domain/health-check.ts';
import { isTlsListener } from '../domain/listener-protocols.ts';
import { DEFAULT_SSL_POLICY } from '../domain/tls-policies.ts';
import type { ListenerProtocol, LoadBalancerType, TargetGroupProtocol } from '../domain/resources.ts';
import type { DeclaredListener, DeclaredLoadBalancer, DeclaredState, DeclaredTargetGroup } from './declared-state.ts';
import { samePlainData } from '../shared/plain-data.ts';

/**
 * The configuration file applied as a three-way merge: the file as last applied, the file now, and
 * what exists now (which the API may have changed since). Only what the file changed is applied; what
 * the file did not change stays as the API left it, and is reported as kept. This is what HAProxy does
 * with runtime state across reloads (`server-state-file`,
 * https://docs.haproxy.org/2.8/configuration.html#3.1-server-state-file) and what `kubectl apply` does
 * with its last-applied configuration
 * (https://kubernetes.io/docs/tasks/manage-kubernetes-objects/declarative-config/#merge-patch-calculation).
 *
 * Pure: `planDeclared` computes the operations; apply-declared.ts runs them against the control plane.
 */

/** What exists now, by name (the file never sees ARNs). */
export interface CurrentState {
  readonly instances: ReadonlyArray<{ readonly id: string; readonly address: string }>;
  readonly targetGroups: readonly CurrentTargetGroup[];
  readonly loadBalancers: readonly CurrentLoadBalancer[];
}

export interface CurrentTargetGroup {
  readonly name: string;
  readonly protocol: TargetGroupProtocol;
  readonly port: number;
  readonly healthCheck: HealthCheckConfig;
  /** Only the attributes that are set; the others read as their defaults. */
  readonly attributes: Readonly<Record<string, string>>;
  readonly source: 'api' | 'config';
  readonly targets: readonly CurrentTarget[];
}

export interface CurrentTarget {
  readonly id: string;
  readonly port: number;
  readonly source: 'api' | 'config';
  readonly draining: boolean;
}

export interface CurrentLoadBalancer {
  readonly name: string;
  readonly type: LoadBalancerType;
  readonly attributes: Readonly<Record<string, string>>;
  readonly source: 'api' | 'config';
  readonly listeners: readonly CurrentListener[];
}

export interface CurrentListener {
  readonly port: number;
  readonly protocol: ListenerProtocol;
  readonly address: string;
  /** Name of the target group it forwards to (null: none ebb knows). */
  readonly targetGroup: string | null;
  readonly source: 'api' | 'config';
  /** HTTPS and TLS listeners: the default certificate first; empty otherwise. */
  readonly certificateArns: readonly string[];
  /** HTTPS and TLS listeners' policy; undefined otherwise. */
  readonly sslPolicy: string | undefined;
  /** The attributes that are set. */
  readonly attributes: Readonly<Record<string, string>>;
}

export interface TargetRef {
  readonly id: string;
  readonly port: number;
}

/** A listener as it is to be opened or changed: every field known (a policy only for HTTPS and TLS). */
export interface ListenerSpec {
  readonly port: number;
  readonly protocol: ListenerProtocol;
  readonly address: string;
  readonly targetGroup: string;
  readonly certificateArns: readonly string[];
  readonly sslPolicy: string | undefined;
  readonly attributes: Readonly<Record<string, string>>;
}

/** The fields of a listener the file and the API may each change (the address only the file). */
const LISTENER_FIELDS = ['protocol', 'targetGroup', 'certificateArns', 'sslPolicy', 'attributes'] as const;
type ListenerField = (typeof LISTENER_FIELDS)[number];

/** One change to make, naming resources as the file does. Run in the order given. */
export type DeclaredOp =
  | { readonly op: 'putInstance'; readonly id: string; readonly address: string }
  | { readonly op: 'createTargetGroup'; readonly group: DeclaredTargetGroup }
  | { readonly op: 'adoptTargetGroup'; readonly name: string }
  | {
      readonly op: 'setTargetGroup';
      readonly name: string;
      readonly healthCheck: Partial<HealthCheckConfig>;
      /** null: unset, so the attribute reads as its default again. */
      readonly attributes: Readonly<Record<string, string | null>>;
    }
  | { readonly op: 'createLoadBalancer'; readonly name: string; readonly type: LoadBalancerType; readonly attributes: Readonly<Record<string, string>> }
  | { readonly op: 'adoptLoadBalancer'; readonly name: string }
  | { readonly op: 'setLoadBalancer'; readonly name: string; readonly attributes: Readonly<Record<string, string | null>> }
  | { readonly op: 'createListener'; readonly lb: string; readonly listener: ListenerSpec }
  /** The bind address cannot change in place: closed, then opened at the new address. */
  | { readonly op: 'reopenListener'; readonly lb: string; readonly listener: ListenerSpec }
  /** Protocol, group, certificates, policy and attributes set as `listener` has them (same port and address). */
  | { readonly op: 'modifyListener'; readonly lb: string; readonly listener: ListenerSpec }
  | { readonly op: 'adoptListener'; readonly lb: string; readonly port: number }
  | { readonly op: 'deleteListener'; readonly lb: string; readonly port: number }
  | { readonly op: 'deleteLoadBalancer'; readonly name: string }
  | { readonly op: 'registerTargets'; readonly group: string; readonly targets: readonly TargetRef[] }
  | { readonly op: 'deregisterTargets'; readonly group: string; readonly targets: readonly TargetRef[] }
  /** Its targets are deregistered (they drain); the group goes once none is left and no listener forwards to it. */
  | { readonly op: 'removeTargetGroup'; readonly name: string }
  /** Only to undo an adoption: the resource is the API's again. */
  | { readonly op: 'release'; readonly what: 'targetGroup' | 'loadBalancer'; readonly name: string }
  | { readonly op: 'releaseListener'; readonly lb: string; readonly port: number };

export interface DeclaredPlan {
  readonly ops: readonly DeclaredOp[];
  /** What the file declares, unchanged since it was last applied, that the API changed since: kept, and why. */
  readonly kept: readonly string[];
}

const HEALTH_CHECK_FIELDS: ReadonlyArray<keyof HealthCheckConfig> = [
  'enabled',
  'protocol',
  'port',
  'path',
  'intervalSeconds',
  'timeoutSeconds',
  'healthyThresholdCount',
  'unhealthyThresholdCount',
  'matcher',
];

/**
 * The operations that take what exists now (`current`) to what the file says now (`next`), given
 * what it said when it was last applied (`last`):
 * - a resource the file newly declares is created, or, if it exists (made through the API), adopted and
 *   made to match the file in full; with no `last` (a state from before ebb kept it) everything the
 *   file declares is new in this sense, so the file wins for what it declares;
 * - a field, attribute or target the file changed is set, unset, registered or deregistered;
 * - what the file did not change is left as it is, and where it differs from the file it is kept;
 * - a resource the file declared and the API deleted stays deleted until the file changes it;
 * - what the file no longer declares is removed, as is anything the file owns that it does not declare.
 */
export function planDeclared(last: DeclaredState | null, next: DeclaredState, current: CurrentState): DeclaredPlan {
  const p = new Planner(last, next, current);
  return p.plan();
}

class Planner {
  readonly #last: DeclaredState | null;
  readonly #next: DeclaredState;
  readonly #current: CurrentState;
  readonly #kept: string[] = [];
  // Sections, concatenated in this order: a listener needs its group and load balancer to exist,
  // listeners close after the new ones opened (so a failure leaves what served still serving), and
  // a group is removed last, once no listener forwards to it.
  readonly #instances: DeclaredOp[] = [];
  readonly #groups: DeclaredOp[] = [];
  readonly #lbs: DeclaredOp[] = [];
  readonly #listeners: DeclaredOp[] = [];
  readonly #closing: DeclaredOp[] = [];
  readonly #targets: DeclaredOp[] = [];
  readonly #removals: DeclaredOp[] = [];
  /** Groups that exist or that this plan creates. */
  readonly #groupWillExist = new Set<string>();

  constructor(last: DeclaredState | null, next: DeclaredState, current: CurrentState) {
    this.#last = last;
    this.#next = next;
    this.#current = current;
    for (const g of current.targetGroups) this.#groupWillExist.add(g.name);
  }

  plan(): DeclaredPlan {
    this.#planInstances();
    for (const d of this.#next.targetGroups) this.#planGroup(d);
    for (const d of this.#next.loadBalancers) this.#planLoadBalancer(d);
    const declaredLbs = new Set(this.#next.loadBalancers.map((lb) => lb.name));
    for (const lb of this.#current.loadBalancers) {
      if (lb.source === 'config' && !declaredLbs.has(lb.name)) this.#closing.push({ op: 'deleteLoadBalancer', name: lb.name });
    }
    const declaredGroups = new Set(this.#next.targetGroups.map((g) => g.name));
    for (const g of this.#current.targetGroups) {
      if (g.source === 'config' && !declaredGroups.has(g.name)) this.#removals.push({ op: 'removeTargetGroup', name: g.name });
    }
    return {
      ops: [...this.#instances, ...this.#groups, ...this.#lbs, ...this.#listeners, ...this.#closing, ...this.#targets, ...this.#removals],
      kept: this.#kept,
    };
  }

  #planInstances(): void {
    for (const d of this.#next.instances) {
      const before = this.#last?.instances.find((i) => i.id === d.id);
      const now = this.#current.instances.find((i) => i.id === d.id);
      if (now?.address === d.address) continue;
      if (this.#last === null || before?.address !== d.address || now === undefined) {
        this.#instances.push({ op: 'putInstance', id: d.id, address: d.address });
      } else {
        this.#kept.push(`instance ${d.id} at ${now.address}, set through the API (the file says ${d.address})`);
      }
    }
  }

  // ------------------------------------------------------------ target groups

  #planGroup(d: DeclaredTargetGroup): void {
    const before = this.#last?.targetGroups.find((g) => g.name === d.name);
    const now = this.#current.targetGroups.find((g) => g.name === d.name);
    if (now === undefined) {
      if (before !== undefined && same(normalGroup(before), normalGroup(d))) {
        this.#kept.push(`target group ${d.name} deleted through the API`);
      } else {
        this.#createGroup(d);
      }
      return;
    }
    if (now.source !== 'config') this.#groups.push({ op: 'adoptTargetGroup', name: d.name });
    const wanted = targetsOf(d);
    if (before === undefined) {
      // Newly declared (or no last-applied file): the file wins for the whole group.
      this.#setGroup(d, now, null);
      this.#registerMissing(d.name, wanted, now);
      const stale = now.targets.filter((t) => t.source === 'config' && !t.draining && !has(wanted, t));
      this.#deregister(d.name, stale);
      return;
    }
    this.#setGroup(d, now, before);
    const listed = targetsOf(before);
    this.#registerMissing(d.name, wanted.filter((t) => !has(listed, t)), now);
    this.#deregister(d.name, listed.filter((t) => !has(wanted, t) && now.targets.some((n) => sameTarget(n, t) && !n.draining)));
    for (const t of wanted.filter((w) => has(listed, w))) {
      const reg = now.targets.find((n) => sameTarget(n, t));
      if (reg === undefined) this.#kept.push(`target ${t.id}:${t.port} in target group ${d.name} deregistered through the API`);
      else if (reg.draining) this.#kept.push(`target ${t.id}:${t.port} in target group ${d.name} draining, deregistered through the API`);
    }
  }

  #createGroup(d: DeclaredTargetGroup): void {
    this.#groups.push({ op: 'createTargetGroup', group: d });
    this.#groupWillExist.add(d.name);
    const targets = targetsOf(d);
    if (targets.length > 0) this.#targets.push({ op: 'registerTargets', group: d.name, targets });
  }

  /** The health check and attributes: each field the file changed since `before` (all of them when null). */
  #setGroup(d: DeclaredTargetGroup, now: CurrentTargetGroup, before: DeclaredTargetGroup | null): void {
    const wantedCheck: HealthCheckConfig = healthCheckWithDefaults(d.protocol, d.healthCheck);
    const beforeCheck: HealthCheckConfig | null = before === null ? null : healthCheckWithDefaults(before.protocol, before.healthCheck);
    const healthCheck: Record<string, unknown> = {};
    for (const field of HEALTH_CHECK_FIELDS) {
      const wanted = wantedCheck[field];
      if (now.healthCheck[field] === wanted) continue;
      if (beforeCheck === null || beforeCheck[field] !== wanted) healthCheck[field] = wanted;
      else this.#kept.push(`target group ${d.name} health check ${field} ${String(now.healthCheck[field])}, set through the API (the file says ${String(wanted)})`);
    }
    const attributes = this.#attributes(`target group ${d.name}`, now.attributes, d.attributes, before?.attributes ?? null);
    if (Object.keys(healthCheck).length > 0 || Object.keys(attributes).length > 0) {
      this.#groups.push({ op: 'setTargetGroup', name: d.name, healthCheck: healthCheck as Partial<HealthCheckConfig>, attributes });
    }
  }

  #registerMissing(group: string, targets: readonly TargetRef[], now: CurrentTargetGroup): void {
    // A draining target is registered again, which ends its drain (cancelled): the file newly lists it.
    const missing = targets.filter((t) => !now.targets.some((n) => sameTarget(n, t) && !n.draining));
    if (missing.length > 0) this.#targets.push({ op: 'registerTargets', group, targets: missing });
  }

  #deregister(group: string, targets: readonly TargetRef[]): void {
    if (targets.length > 0) this.#targets.push({ op: 'deregisterTargets', group, targets: targets.map((t) => ({ id: t.id, port: t.port })) });
  }

  // ------------------------------------------------------------ load balancers and listeners

  #planLoadBalancer(d: DeclaredLoadBalancer): void {
    const before = this.#last?.loadBalancers.find((lb) => lb.name === d.name);
    const now = this.#current.loadBalancers.find((lb) => lb.name === d.name && (lb.type === 'classic') === (d.type === 'classic'));
    if (now === undefined) {
      if (before !== undefined && same(normalLb(before), normalLb(d))) {
        this.#kept.push(`load balancer ${d.name} deleted through the API`);
        return;
      }
      this.#lbs.push({ op: 'createLoadBalancer', name: d.name, type: d.type, attributes: d.attributes });
      for (const l of d.listeners) this.#openListener(d.name, listenerSpec(l), null);
      return;
    }
    if (now.source !== 'config') this.#lbs.push({ op: 'adoptLoadBalancer', name: d.name });
    const attributes = this.#attributes(`load balancer ${d.name}`, now.attributes, d.attributes, before?.attributes ?? null);
    if (Object.keys(attributes).length > 0) this.#lbs.push({ op: 'setLoadBalancer', name: d.name, attributes });
    for (const l of d.listeners) {
      const spec = listenerSpec(l);
      const was = before?.listeners.find((b) => b.port === l.port);
      const open = now.listeners.find((c) => c.port === l.port);
      const name = `listener ${d.name}:${l.port}`;
      if (was === undefined || open === undefined) {
        if (was !== undefined && same(listenerSpec(was), spec)) this.#kept.push(`${name} deleted through the API`);
        else this.#openListener(d.name, spec, open ?? null);
        continue;
      }
      // Declared before and now, and open: each field the file changed is set; the others are kept.
      const wasSpec = listenerSpec(was);
      const pick = <K extends ListenerField>(field: K): ListenerSpec[K] => {
        if (!same(wasSpec[field], spec[field]) || open[field] === null) return spec[field];
        const kept = open[field] as ListenerSpec[K];
        if (!same(kept, spec[field])) this.#kept.push(`${name} ${FIELD_WORDS[field]} ${show(kept)}, set through the API (the file says ${show(spec[field])})`);
        return kept;
      };
      const picked = Object.fromEntries(LISTENER_FIELDS.map((f) => [f, pick(f)])) as Pick<ListenerSpec, ListenerField>;
      const merged: ListenerSpec = { ...spec, ...picked };
      // The address cannot be changed through the API, so the file's changed or not, it is the file's.
      this.#openListener(d.name, merged, open);
    }
    const declaredPorts = new Set(d.listeners.map((l) => l.port));
    for (const l of now.listeners) {
      if (l.source === 'config' && !declaredPorts.has(l.port)) this.#closing.push({ op: 'deleteListener', lb: d.name, port: l.port });
    }
  }

  /** Makes `spec` open: created, reopened at a new address, changed in place, or adopted. */
  #openListener(lb: string, spec: ListenerSpec, open: CurrentListener | null): void {
    if (open === null) {
      this.#needGroup(spec.targetGroup);
      this.#listeners.push({ op: 'createListener', lb, listener: spec });
    } else if (open.address !== spec.address) {
      this.#needGroup(spec.targetGroup);
      this.#listeners.push({ op: 'reopenListener', lb, listener: spec });
    } else {
      if (LISTENER_FIELDS.some((f) => !same(open[f], spec[f]))) {
        this.#needGroup(spec.targetGroup);
        this.#listeners.push({ op: 'modifyListener', lb, listener: spec });
      }
      if (open.source !== 'config') this.#listeners.push({ op: 'adoptListener', lb, port: spec.port });
    }
  }

  /** A listener the plan opens or changes forwards to `name`: a declared group the API deleted is created again. */
  #needGroup(name: string): void {
    if (this.#groupWillExist.has(name)) return;
    const d = this.#next.targetGroups.find((g) => g.name === name);
    if (d === undefined) return; // the file's checks name it; the control plane refuses the listener
    const kept = this.#kept.indexOf(`target group ${name} deleted through the API`);
    if (kept >= 0) this.#kept.splice(kept, 1);
    this.#createGroup(d);
  }

  // ------------------------------------------------------------ attributes

  /**
   * The attributes to set (a value) or unset (null): each key the file changed since `before` (every
   * key when null, and then a key set now that the file does not name is unset), where it differs from now.
   */
  #attributes(
    what: string,
    now: Readonly<Record<string, string>>,
    wanted: Readonly<Record<string, string>>,
    before: Readonly<Record<string, string>> | null,
  ): Record<string, string | null> {
    const out: Record<string, string | null> = {};
    const keys = new Set([...Object.keys(wanted), ...Object.keys(before ?? now)]);
    for (const key of keys) {
      const want = wanted[key] ?? null;
      const is = now[key] ?? null;
      if (is === want) continue;
      if (before === null || (before[key] ?? null) !== want) out[key] = want;
      else this.#kept.push(`${what} attribute ${key} ${is ?? '(default)'}, set through the API (the file says ${want ?? '(default)'})`);
    }
    return out;
  }
}

// ------------------------------------------------------------ helpers

function targetsOf(d: DeclaredTargetGroup): TargetRef[] {
  return d.targets.map((t) => ({ id: t.id, port: t.port ?? d.port }));
}

function sameTarget(a: TargetRef, b: TargetRef): boolean {
  return a.id === b.id && a.port === b.port;
}

function has(list: readonly TargetRef[], t: TargetRef): boolean {
  return list.some((x) => sameTarget(x, t));
}

/** A declared listener with what it leaves out filled in as the control plane would (the policy's default, no attributes). */
function listenerSpec(l: DeclaredListener): ListenerSpec {
  const tls = isTlsListener(l.protocol);
  return {
    port: l.port,
    protocol: l.protocol,
    address: l.address ?? '0.0.0.0',
    targetGroup: l.targetGroup,
    certificateArns: tls ? [...(l.certificateArns ?? [])] : [],
    sslPolicy: tls ? (l.sslPolicy ?? DEFAULT_SSL_POLICY) : undefined,
    attributes: { ...(l.attributes ?? {}) },
  };
}

const FIELD_WORDS: Readonly<Record<ListenerField, string>> = {
  protocol: 'protocol',
  targetGroup: 'forwards to target group',
  certificateArns: 'certificates',
  sslPolicy: 'SSL policy',
  attributes: 'attributes',
};

function show(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined) return '(none)';
  return JSON.stringify(value);
}

function defined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function normalGroup(d: DeclaredTargetGroup): unknown {
  return { ...d, healthCheck: defined(d.healthCheck), targets: targetsOf(d) };
}

function normalLb(d: DeclaredLoadBalancer): unknown {
  return { ...d, listeners: d.listeners.map(listenerSpec) };
}

const same = samePlainData;

/** A listener's certificates (the default first), policy and attributes, for a log line; empty for a plain listener without attributes. */
function listenerExtras(l: ListenerSpec): string {
  const parts: string[] = [];
  if (l.certificateArns.length > 0) parts.push(`certificates ${l.certificateArns.join(', ')} (the first is the default)`);
  if (l.sslPolicy !== undefined) parts.push(`policy ${l.sslPolicy}`);
  const attributes = Object.entries(l.attributes).map(([k, v]) => `${k} ${v}`);
  if (attributes.length > 0) parts.push(`attributes ${attributes.join(', ')}`);
  return parts.length === 0 ? '' : `; ${parts.join('; ')}`;
}

/** One line per operation, for the log: what was applied. */
export function describeOp(op: DeclaredOp): string {
  const changes = (values: Readonly<Record<string, string | number | boolean | null | undefined>>): string =>
    Object.entries(values)
      .map(([k, v]) => (v === null ? `${k} back to its default` : `${k} to ${String(v)}`))
      .join(', ');
  switch (op.op) {
    case 'putInstance':
      return `instance ${op.id} at ${op.address}`;
    case 'createTargetGroup':
      return `created target group ${op.group.name}`;
    case 'adoptTargetGroup':
      return `target group ${op.name}, made through the API, now declared by the file`;
    case 'setTargetGroup':
      return `target group ${op.name}: set ${changes({ ...Object.fromEntries(Object.entries(op.healthCheck).map(([k, v]) => [`health check ${k}`, v as string | number | boolean])), ...op.attributes })}`;
    case 'createLoadBalancer':
      return `created load balancer ${op.name}`;
    case 'adoptLoadBalancer':
      return `load balancer ${op.name}, made through the API, now declared by the file`;
    case 'setLoadBalancer':
      return `load balancer ${op.name}: set ${changes(op.attributes)}`;
    case 'createListener':
      return `opened listener ${op.lb}:${op.listener.port} on ${op.listener.address}, forwarding to target group ${op.listener.targetGroup}${listenerExtras(op.listener)}`;
    case 'reopenListener':
      return `reopened listener ${op.lb}:${op.listener.port} on ${op.listener.address}`;
    case 'modifyListener':
      return `listener ${op.lb}:${op.listener.port}: ${op.listener.protocol}, forwarding to target group ${op.listener.targetGroup}${listenerExtras(op.listener)}`;
    case 'adoptListener':
      return `listener ${op.lb}:${op.port}, made through the API, now declared by the file`;
    case 'deleteListener':
      return `closed listener ${op.lb}:${op.port}`;
    case 'deleteLoadBalancer':
      return `deleted load balancer ${op.name}`;
    case 'registerTargets':
      return `registered ${op.targets.map((t) => `${t.id}:${t.port}`).join(', ')} in target group ${op.group}`;
    case 'deregisterTargets':
      return `deregistered ${op.targets.map((t) => `${t.id}:${t.port}`).join(', ')} from target group ${op.group}`;
    case 'removeTargetGroup':
      return `target group ${op.name} no longer declared: its targets drain, then it is deleted`;
    case 'release':
      return `${op.what === 'targetGroup' ? 'target group' : 'load balancer'} ${op.name} is the API's again`;
    case 'releaseListener':
      return `listener ${op.lb}:${op.port} is the API's again`;
  }
}
