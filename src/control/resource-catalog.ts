import type { Clock } from '../shared/clock.ts';
import { ebbError } from '../shared/errors.ts';
import { validateLoadBalancerAttributeChange, validateTargetGroupAttributes } from '../domain/attributes.ts';
import { healthCheckWithDefaults, type HealthCheckConfig } from '../domain/health-check.ts';
import {
  DEFAULT_CLASSIC_SETTINGS,
  type InstanceRecord,
  type ListenerProtocol,
  type ListenerRecord,
  type LoadBalancerRecord,
  type Tag,
  type TargetGroupRecord,
  type TargetRegistration,
} from '../domain/resources.ts';
import type { StoreKind, StoreOp } from '../domain/store-port.ts';
import { validateTags } from '../domain/tag-rules.ts';
import { checkAnyArn, checkArn, notFoundFor, type ArnFactory } from './arn.ts';
import { groupHealthCheck } from './health-check-changes.ts';
import { tagChanges } from './tag-changes.ts';
import type {
  CreateListenerInput,
  CreateLoadBalancerInput,
  CreateLoadBalancerStackInput,
  CreateTargetGroupInput,
  ModifyListenerInput,
  TargetInput,
} from './inputs.ts';
import {
  attributesForProtocol,
  checkListenerPort,
  checkListenerProtocol,
  checkPairing,
  listenerTls,
  newListenerAttributes,
  type CertificateLookup,
} from './listener-rules.ts';
import { isInstanceId, isHostName, isIpAddress, validateName, validatePort } from './names.ts';
import { DEFAULT_LISTEN_ADDRESSES, type ListenAddresses } from './listen-addresses.ts';
import type { LoadBalancerStack } from './outputs.ts';
import { del, put, recordsOf } from './store-transaction.ts';

/**
 * The resources by ARN (instances by id): load balancers, listeners, target groups and instances, in
 * creation order. It answers the Describe queries, builds and checks the records a command would
 * write (throwing the AWS error before anything is committed), and holds the records once committed.
 * It never writes to the store itself: commands commit what it builds, then `set` or `delete` here.
 */
export class ResourceCatalog {
  readonly #arns: ArnFactory;
  readonly #clock: Clock;
  readonly #loadBalancers = new Map<string, LoadBalancerRecord>();
  readonly #listeners = new Map<string, ListenerRecord>();
  readonly #targetGroups = new Map<string, TargetGroupRecord>();
  readonly #instances = new Map<string, InstanceRecord>();
  readonly #listenAddresses: ListenAddresses;
  /** Certificates ebb knows, for HTTPS and TLS listeners; none until the control plane wires its catalog in. */
  #certificates: CertificateLookup = () => undefined;

  /** `listenAddresses`: where a listener created without an address listens, by its load balancer's scheme. */
  constructor(arns: ArnFactory, clock: Clock, listenAddresses: Partial<ListenAddresses> = {}) {
    this.#arns = arns;
    this.#clock = clock;
    this.#listenAddresses = { ...DEFAULT_LISTEN_ADDRESSES, ...listenAddresses };
    for (const [scheme, address] of Object.entries(this.#listenAddresses)) {
      if (!isIpAddress(address)) throw ebbError('ValidationError', `The listen address for ${scheme} load balancers, '${address}', is not an IP address`);
    }
  }

  /** Where HTTPS and TLS listeners' certificates are looked up (the control plane's certificate catalog). */
  useCertificates(lookup: CertificateLookup): void {
    this.#certificates = lookup;
  }

  get certificateLookup(): CertificateLookup {
    return this.#certificates;
  }

  /** The stored records, at start. */
  load(state: ReadonlyMap<StoreKind, ReadonlyMap<string, unknown>>): void {
    for (const r of recordsOf<LoadBalancerRecord>(state, 'loadBalancer')) this.#loadBalancers.set(r.arn, r);
    for (const r of recordsOf<ListenerRecord>(state, 'listener')) this.#listeners.set(r.arn, r);
    for (const r of recordsOf<TargetGroupRecord>(state, 'targetGroup')) this.#targetGroups.set(r.arn, r);
    for (const r of recordsOf<InstanceRecord>(state, 'instance')) this.#instances.set(r.id, r);
  }

  // ---------------------------------------------------------------- reading

  get loadBalancers(): ReadonlyMap<string, LoadBalancerRecord> {
    return this.#loadBalancers;
  }

  get listeners(): ReadonlyMap<string, ListenerRecord> {
    return this.#listeners;
  }

  get targetGroups(): ReadonlyMap<string, TargetGroupRecord> {
    return this.#targetGroups;
  }

  get instances(): ReadonlyMap<string, InstanceRecord> {
    return this.#instances;
  }

  requireLoadBalancer(arn: string): LoadBalancerRecord {
    checkArn(arn, 'loadbalancer', 'load balancer');
    const lb = this.#loadBalancers.get(arn);
    if (lb === undefined) throw ebbError('LoadBalancerNotFound', `Load balancer '${arn}' not found`);
    return lb;
  }

  requireListener(arn: string): ListenerRecord {
    checkArn(arn, 'listener', 'listener');
    const l = this.#listeners.get(arn);
    if (l === undefined) throw ebbError('ListenerNotFound', `Listener '${arn}' not found`);
    return l;
  }

  requireTargetGroup(arn: string): TargetGroupRecord {
    checkArn(arn, 'targetgroup', 'target group');
    const tg = this.#targetGroups.get(arn);
    if (tg === undefined) throw ebbError('TargetGroupNotFound', `Target group '${arn}' not found`);
    return tg;
  }

  describeLoadBalancers(filter?: { arns?: readonly string[]; names?: readonly string[]; type?: 'elbv2' | 'classic' }): LoadBalancerRecord[] {
    const wantClassic = filter?.type === 'classic';
    const all = [...this.#loadBalancers.values()].filter((lb) => (lb.type === 'classic') === wantClassic);
    if (filter?.arns !== undefined && filter.arns.length > 0) {
      return filter.arns.map((arn) => {
        checkArn(arn, 'loadbalancer', 'load balancer');
        const lb = all.find((l) => l.arn === arn);
        if (lb === undefined) throw ebbError('LoadBalancerNotFound', `Load balancer '${arn}' not found`);
        return lb;
      });
    }
    if (filter?.names !== undefined && filter.names.length > 0) {
      return filter.names.map((name) => {
        const lb = all.find((l) => l.name === name);
        if (lb === undefined) throw ebbError('LoadBalancerNotFound', `Load balancer '${name}' not found`);
        return lb;
      });
    }
    return all;
  }

  describeListeners(filter: { loadBalancerArn?: string; listenerArns?: readonly string[] }): ListenerRecord[] {
    if (filter.listenerArns !== undefined && filter.listenerArns.length > 0) {
      return filter.listenerArns.map((arn) => this.requireListener(arn));
    }
    if (filter.loadBalancerArn !== undefined) {
      this.requireLoadBalancer(filter.loadBalancerArn);
      return this.listenersOf(filter.loadBalancerArn);
    }
    throw ebbError('ValidationError', 'Specify either a load balancer ARN or listener ARNs');
  }

  listenersOf(loadBalancerArn: string): ListenerRecord[] {
    return [...this.#listeners.values()].filter((l) => l.loadBalancerArn === loadBalancerArn);
  }

  /** The group's health check with `change` laid over it, checked against the group. Throws ValidationError. */
  changeHealthCheck(tg: TargetGroupRecord, change: Partial<HealthCheckConfig>): HealthCheckConfig {
    const classic = this.loadBalancersOfTargetGroup(tg.arn).some((arn) => this.#loadBalancers.get(arn)?.type === 'classic');
    return groupHealthCheck(tg.protocol, classic, tg.healthCheck, change);
  }

  /** A group a listener forwards to cannot be deleted: ResourceInUse, as AWS answers. */
  checkUnused(tg: TargetGroupRecord): void {
    const users = this.listenersForwardingTo(tg.arn);
    if (users.length > 0) {
      throw ebbError(
        'ResourceInUse',
        `Target group '${tg.arn}' is currently in use by a listener or a rule (${users.map((l) => l.arn).join(', ')}); delete or change those first`,
      );
    }
  }

  /** Listeners whose default action forwards to the group. */
  listenersForwardingTo(targetGroupArn: string): ListenerRecord[] {
    return [...this.#listeners.values()].filter((l) => l.defaultActions.some((a) => a.targetGroupArn === targetGroupArn));
  }

  describeTargetGroups(filter?: { arns?: readonly string[]; names?: readonly string[]; loadBalancerArn?: string }): TargetGroupRecord[] {
    const all = [...this.#targetGroups.values()];
    if (filter?.arns !== undefined && filter.arns.length > 0) return filter.arns.map((arn) => this.requireTargetGroup(arn));
    if (filter?.names !== undefined && filter.names.length > 0) {
      return filter.names.map((name) => {
        const tg = all.find((t) => t.name === name);
        if (tg === undefined) throw ebbError('TargetGroupNotFound', `Target group '${name}' not found`);
        return tg;
      });
    }
    if (filter?.loadBalancerArn !== undefined) {
      this.requireLoadBalancer(filter.loadBalancerArn);
      return all.filter((tg) => this.loadBalancersOfTargetGroup(tg.arn).includes(filter.loadBalancerArn ?? ''));
    }
    return all;
  }

  /** The groups the load balancer's listeners forward to, by port (a Classic load balancer's groups). */
  targetGroupsOf(loadBalancerArn: string): TargetGroupRecord[] {
    const arns = new Set(this.listenersOf(loadBalancerArn).flatMap((l) => l.defaultActions.map((a) => a.targetGroupArn)));
    return [...this.#targetGroups.values()].filter((tg) => arns.has(tg.arn)).sort((a, b) => a.port - b.port);
  }

  loadBalancersOfTargetGroup(arn: string): string[] {
    const out = new Set<string>();
    for (const l of this.#listeners.values()) {
      if (l.defaultActions.some((a) => a.targetGroupArn === arn)) out.add(l.loadBalancerArn);
    }
    return [...out];
  }

  describeTags(arns: readonly string[]): Array<{ arn: string; tags: readonly Tag[] }> {
    return arns.map((arn) => {
      checkAnyArn(arn);
      const found = this.#loadBalancers.get(arn) ?? this.#targetGroups.get(arn) ?? this.#listeners.get(arn);
      if (found === undefined) throw notFoundFor(arn);
      return { arn, tags: found.tags };
    });
  }

  // ---------------------------------------------------------------- building and checking records

  buildLoadBalancer(input: CreateLoadBalancerInput): LoadBalancerRecord {
    validateName('load balancer', input.name);
    const type = input.type ?? 'application';
    for (const lb of this.#loadBalancers.values()) {
      if (lb.name === input.name && (lb.type === 'classic') === (type === 'classic')) {
        throw ebbError('DuplicateLoadBalancerName', `A load balancer named '${input.name}' already exists`);
      }
    }
    const attributes = validateLoadBalancerAttributeChange({}, input.attributes ?? {}, type);
    return {
      arn: this.#arns.loadBalancer(input.name, type),
      name: input.name,
      type,
      scheme: input.scheme ?? 'internet-facing',
      createdAt: this.#clock.wallTime(),
      attributes: { ...attributes },
      tags: validateTags(input.tags ?? []),
      source: input.source ?? 'api',
      ...(type === 'classic' ? { classic: DEFAULT_CLASSIC_SETTINGS } : {}),
    };
  }

  /** A new group; `classic`: it is made for a Classic load balancer (whose groups may be checked over TCP). */
  buildTargetGroup(input: CreateTargetGroupInput, classic = false): TargetGroupRecord {
    validateName('target group', input.name);
    validatePort(input.port, 'Port');
    if (![...this.#targetGroups.values()].every((tg) => tg.name !== input.name)) {
      throw ebbError('DuplicateTargetGroupName', `A target group named '${input.name}' already exists`);
    }
    const healthCheck = groupHealthCheck(input.protocol, classic, healthCheckWithDefaults(input.protocol, input.healthCheck ?? {}), {});
    const attributes = { ...(input.attributes ?? {}) };
    validateTargetGroupAttributes(attributes, input.protocol);
    return {
      arn: this.#arns.targetGroup(input.name),
      name: input.name,
      protocol: input.protocol,
      port: input.port,
      targetType: input.targetType ?? 'instance',
      healthCheck,
      attributes,
      tags: validateTags(input.tags ?? []),
      createdAt: this.#clock.wallTime(),
      source: input.source ?? 'api',
    };
  }

  /** A new listener of an existing load balancer, checked against every listener there is. */
  buildListener(input: CreateListenerInput): ListenerRecord {
    const lb = this.requireLoadBalancer(input.loadBalancerArn);
    const address = input.address ?? this.#listenAddresses[lb.scheme];
    this.#checkListener(lb, input.protocol, input.port, address, input.defaultActions, null);
    const tls = listenerTls(input.protocol, input, null, this.#certificates);
    const attributes = newListenerAttributes(input.attributes, input.protocol);
    return {
      arn: this.#arns.listener(lb.arn),
      loadBalancerArn: lb.arn,
      protocol: input.protocol,
      port: input.port,
      address,
      defaultActions: input.defaultActions.map((a) => ({ type: 'forward', targetGroupArn: a.targetGroupArn })),
      tags: validateTags(input.tags ?? []),
      source: input.source ?? 'api',
      ...tls,
      ...(attributes !== undefined && { attributes }),
    };
  }

  /**
   * `before` changed as ModifyListener asks: port, protocol, default action, and for HTTPS and TLS the
   * default certificate and the policies, each kept when not given; checked as a new listener is.
   */
  changeListener(before: ListenerRecord, input: ModifyListenerInput): ListenerRecord {
    const lb = this.requireLoadBalancer(before.loadBalancerArn);
    const protocol = input.protocol ?? before.protocol;
    const defaultActions = input.defaultActions?.map((a) => ({ type: 'forward' as const, targetGroupArn: a.targetGroupArn })) ?? before.defaultActions;
    const port = input.port ?? before.port;
    this.#checkListener(lb, protocol, port, before.address, defaultActions, before.arn);
    const { certificateArns: _c, sslPolicy: _s, attributes: _a, ...rest } = before;
    // The file gives the whole set (listener-rules.ts); the API changes attributes with ModifyListenerAttributes.
    const attributes = input.attributes !== undefined ? newListenerAttributes(input.attributes, protocol) : attributesForProtocol(before.attributes, protocol);
    return {
      ...rest,
      port,
      protocol,
      defaultActions,
      ...listenerTls(protocol, input, before, this.#certificates),
      ...(attributes !== undefined && { attributes }),
    };
  }

  /** A load balancer with its target groups and listeners, checked against what exists and against each other. */
  buildStack(input: CreateLoadBalancerStackInput): LoadBalancerStack {
    const lb = this.buildLoadBalancer(input.loadBalancer);
    const groups: TargetGroupRecord[] = [];
    for (const g of input.targetGroups) {
      if (groups.some((x) => x.name === g.name)) {
        throw ebbError('DuplicateTargetGroupName', `The target group name '${g.name}' is given twice`);
      }
      groups.push(this.buildTargetGroup(g, lb.type === 'classic'));
    }
    const listeners: ListenerRecord[] = [];
    for (const l of input.listeners) {
      const tg = groups.find((g) => g.name === l.targetGroupName);
      if (tg === undefined) throw ebbError('TargetGroupNotFound', `Target group '${l.targetGroupName}' is not part of this load balancer`);
      const address = l.address ?? this.#listenAddresses[lb.scheme];
      checkListenerProtocol(lb, l.protocol);
      checkListenerPort(l.port, address, null, [...this.#listeners.values(), ...listeners]);
      checkPairing(l.protocol, tg);
      listeners.push({
        arn: this.#arns.listener(lb.arn),
        loadBalancerArn: lb.arn,
        protocol: l.protocol,
        port: l.port,
        address,
        defaultActions: [{ type: 'forward', targetGroupArn: tg.arn }],
        tags: [],
        source: 'api',
        ...listenerTls(l.protocol, l, null, this.#certificates),
      });
    }
    return { loadBalancer: lb, targetGroups: groups, listeners };
  }

  /** Protocol, port, address and default action of a listener of `lb`; `self` is the listener being changed, if any. */
  #checkListener(lb: LoadBalancerRecord, protocol: ListenerProtocol, port: number, address: string, actions: readonly { targetGroupArn: string }[], self: string | null): void {
    checkListenerProtocol(lb, protocol);
    checkListenerPort(port, address, self, this.#listeners.values());
    if (actions.length !== 1) {
      throw ebbError('ValidationError', 'A listener needs exactly one default action, of type forward');
    }
    for (const a of actions) checkPairing(protocol, this.requireTargetGroup(a.targetGroupArn));
  }

  /** A target to register in `tg`: its port defaults to the group's; an instance id must be declared. */
  checkTarget(tg: TargetGroupRecord, t: TargetInput): TargetRegistration {
    const port = t.port ?? tg.port;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw ebbError('InvalidTarget', `Target '${t.id}' has port ${String(port)}; a port is an integer from 1 to 65535`);
    }
    if (tg.targetType === 'ip' && !isIpAddress(t.id)) {
      throw ebbError('InvalidTarget', `The target '${t.id}' is not a valid IP address, and target group '${tg.name}' has target type ip`);
    }
    if (tg.targetType === 'instance' && !this.#instances.has(t.id) && !isIpAddress(t.id)) {
      throw ebbError(
        'InvalidTarget',
        `The following targets are not valid instances: '${t.id}'. Declare the instance (id and address) in the configuration first`,
      );
    }
    return { targetGroupArn: tg.arn, id: t.id, port, source: 'api' };
  }

  checkInstance(instance: InstanceRecord): void {
    if (!isInstanceId(instance.id)) {
      throw ebbError('ValidationError', `Instance id '${instance.id}' is not valid: use i- followed by 1-32 letters and digits, such as i-0abc`);
    }
    if (!isIpAddress(instance.address) && !isHostName(instance.address)) {
      throw ebbError('ValidationError', `Instance '${instance.id}' needs an IP address or a host name; got '${instance.address}'`);
    }
  }

  /**
   * The change of each named resource's tags: the store operations and the in-memory update to run
   * once they are committed (tag-changes.ts). Throws ValidationError for a malformed ARN, NotFound for an unknown one.
   */
  changeTags(arns: readonly string[], change: (current: readonly Tag[]) => readonly Tag[]): { ops: StoreOp[]; apply: () => void } {
    return tagChanges(this, arns, change);
  }

  /**
   * A load balancer with its listeners and, with `withTargetGroups`, the groups they forward to. A
   * group another load balancer's listener also forwards to cannot go with it: ResourceInUse.
   */
  stackOf(lb: LoadBalancerRecord, withTargetGroups: boolean): LoadBalancerStack {
    const targetGroups = withTargetGroups ? this.targetGroupsOf(lb.arn) : [];
    for (const tg of targetGroups) {
      const other = this.listenersForwardingTo(tg.arn).find((l) => l.loadBalancerArn !== lb.arn);
      if (other !== undefined) {
        throw ebbError('ResourceInUse', `Target group '${tg.arn}' is also used by listener '${other.arn}'; delete or change that listener first`);
      }
    }
    return { loadBalancer: lb, listeners: this.listenersOf(lb.arn), targetGroups };
  }

  /**
   * Adding a whole stack (a load balancer with its groups and listeners) or removing it: the store
   * operations for one commit, and the in-memory update to run once they are committed.
   */
  stackChange(stack: LoadBalancerStack, how: 'add' | 'remove'): { ops: StoreOp[]; apply: () => void } {
    const { loadBalancer: lb, targetGroups: groups, listeners } = stack;
    if (how === 'add') {
      return {
        ops: [put('loadBalancer', lb.arn, lb), ...groups.map((g) => put('targetGroup', g.arn, g)), ...listeners.map((l) => put('listener', l.arn, l))],
        apply: () => {
          this.setLoadBalancer(lb);
          for (const g of groups) this.setTargetGroup(g);
          for (const l of listeners) this.setListener(l);
        },
      };
    }
    return {
      ops: [...listeners.map((l) => del('listener', l.arn)), ...groups.map((g) => del('targetGroup', g.arn)), del('loadBalancer', lb.arn)],
      apply: () => {
        for (const l of listeners) this.deleteListener(l.arn);
        for (const g of groups) this.deleteTargetGroup(g.arn);
        this.deleteLoadBalancer(lb.arn);
      },
    };
  }

  // ---------------------------------------------------------------- holding committed records

  setLoadBalancer(r: LoadBalancerRecord): void {
    this.#loadBalancers.set(r.arn, r);
  }

  deleteLoadBalancer(arn: string): void {
    this.#loadBalancers.delete(arn);
  }

  setListener(r: ListenerRecord): void {
    this.#listeners.set(r.arn, r);
  }

  deleteListener(arn: string): void {
    this.#listeners.delete(arn);
  }

  setTargetGroup(r: TargetGroupRecord): void {
    this.#targetGroups.set(r.arn, r);
  }

  deleteTargetGroup(arn: string): void {
    this.#targetGroups.delete(arn);
  }

  setInstance(r: InstanceRecord): void {
    this.#instances.set(r.id, r);
  }

  deleteInstance(id: string): void {
    this.#instances.delete(id);
  }
}

export { DEFAULT_LISTEN_ADDRESSES, type ListenAddresses } from './listen-addresses.ts';
export { mergeHealthCheck } from './health-check-changes.ts';
