import { randomUUID } from 'node:crypto';
import type { Clock, TimerHandle } from '../shared/clock.ts';
import { describeError, EbbError, ebbError } from '../shared/errors.ts';
import { TypedEmitter } from '../shared/typed-emitter.ts';
import {
  attributeNumber,
  listenerSettings,
  loadBalancerAttributesWithDefaults,
  targetGroupAttributesWithDefaults,
  validateLoadBalancerAttributes,
  validateTargetGroupAttributes,
} from '../domain/attributes.ts';
import type { ApplyResult, DataPlane, TerminateResult } from '../domain/data-plane-port.ts';
import { defaultHealthCheck, validateHealthCheck, type HealthCheckConfig } from '../domain/health-check.ts';
import type { HealthChecker, HealthCheckTarget, HealthObservation } from '../domain/health-port.ts';
import {
  targetKey,
  type InstanceRecord,
  type ListenerRecord,
  type LoadBalancerRecord,
  type Tag,
  type TargetGroupRecord,
  type TargetRegistration,
} from '../domain/resources.ts';
import type { ListenerRoute, RoutableTarget, RoutingSnapshot, TargetGroupRoute } from '../domain/routing-snapshot.ts';
import type { StateStore, StoreKind, StoreOp } from '../domain/store-port.ts';
import { sameView, TargetLifecycle } from '../domain/target-lifecycle.ts';
import type { TargetHealthView } from '../domain/target-health.ts';
import { ArnFactory, isWellFormedArn } from './arn.ts';
import type { ControlApi } from './control-api.ts';
import type { ControlEvents } from './events.ts';
import type {
  CreateListenerInput,
  CreateLoadBalancerInput,
  CreateLoadBalancerStackInput,
  CreateTargetGroupInput,
  LoadBalancerStack,
  DeregisterOptions,
  DrainRecord,
  ModifyListenerInput,
  TargetHealthDescription,
  TargetInput,
} from './inputs.ts';
import { isHostName, isInstanceId, isIpAddress, validateName, validatePort } from './names.ts';
import { SerialQueue } from './serial-queue.ts';

export interface ControlPlaneOptions {
  readonly clock: Clock;
  readonly store: StateStore;
  readonly dataPlanes: readonly DataPlane[];
  readonly healthChecker?: HealthChecker;
  readonly region?: string;
  readonly accountId?: string;
  readonly log?: (entry: Record<string, unknown>) => void;
  /** Finished drain records kept (memory and store). */
  readonly drainRecordLimit?: number;
}

/** A listener a data plane could not open. */
export interface ListenerOpenError {
  readonly listenerArn: string;
  readonly address: string;
  readonly port: number;
  readonly code: string;
  readonly message: string;
}

interface DrainState {
  readonly startedAt: number;
  readonly deadline: number;
  readonly timeoutSeconds: number;
  /** Per data plane, its completed-request counter when the drain began. */
  readonly completedAtStart: ReadonlyMap<string, number>;
  /**
   * Restored after a restart: the process that sent this target its in-flight work is gone, so
   * nobody can tell when that work ends; such a drain runs to its deadline.
   */
  readonly restored: boolean;
  timer: TimerHandle | null;
}

interface TargetEntry {
  readonly reg: TargetRegistration;
  readonly key: string;
  readonly life: TargetLifecycle;
  drain: DrainState | null;
  lastView: TargetHealthView;
}

interface StoredTarget {
  readonly reg: TargetRegistration;
  readonly drain?: { startedAt: number; deadline: number; timeoutSeconds: number };
}

const STORED_TARGET_VERSION = 1;

/**
 * The control plane: owns the resources and the target lifecycles, persists every change before it
 * is acknowledged, runs drains against every data plane, and publishes routing snapshots.
 */
export class ControlPlane implements ControlApi {
  readonly events = new TypedEmitter<ControlEvents>();
  readonly region: string;
  readonly accountId: string;

  readonly #clock: Clock;
  readonly #store: StateStore;
  readonly #dataPlanes: readonly DataPlane[];
  readonly #health: HealthChecker | undefined;
  readonly #arns: ArnFactory;
  readonly #log: (entry: Record<string, unknown>) => void;
  readonly #queue = new SerialQueue();
  readonly #drainRecordLimit: number;

  readonly #loadBalancers = new Map<string, LoadBalancerRecord>();
  readonly #listeners = new Map<string, ListenerRecord>();
  readonly #targetGroups = new Map<string, TargetGroupRecord>();
  readonly #targets = new Map<string, TargetEntry>();
  readonly #instances = new Map<string, InstanceRecord>();
  #drainRecords: DrainRecord[] = [];
  #snapshotVersion = 0;
  #lastApply: Promise<ApplyResult[]> = Promise.resolve([]);
  #started = false;
  #closed = false;

  constructor(options: ControlPlaneOptions) {
    this.#clock = options.clock;
    this.#store = options.store;
    this.#dataPlanes = options.dataPlanes;
    this.#health = options.healthChecker;
    this.region = options.region ?? 'us-east-1';
    this.accountId = options.accountId ?? '123456789012';
    this.#arns = new ArnFactory(this.region, this.accountId);
    this.#log = options.log ?? (() => undefined);
    this.#drainRecordLimit = options.drainRecordLimit ?? 1000;
    this.#health?.onObservation((o) => this.#onObservation(o));
    for (const dp of this.#dataPlanes) dp.onIdle((key) => this.#onIdle(key));
  }

  /** Loads the persisted state, resumes drains with the time they had left, and publishes. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const state = await this.#store.load();
    const each = <T>(kind: StoreKind, fn: (value: T) => void): void => {
      for (const value of state.get(kind)?.values() ?? []) fn(value as T);
    };
    each<LoadBalancerRecord>('loadBalancer', (r) => this.#loadBalancers.set(r.arn, r));
    each<ListenerRecord>('listener', (r) => this.#listeners.set(r.arn, r));
    each<TargetGroupRecord>('targetGroup', (r) => this.#targetGroups.set(r.arn, r));
    each<InstanceRecord>('instance', (r) => this.#instances.set(r.id, r));
    each<DrainRecord>('drainRecord', (r) => this.#drainRecords.push(r));
    this.#drainRecords.sort((a, b) => a.endedAt - b.endedAt);
    const expired: TargetEntry[] = [];
    each<StoredTarget>('target', (stored) => {
      const tg = this.#targetGroups.get(stored.reg.targetGroupArn);
      if (tg === undefined) return;
      const entry = this.#newEntry(stored.reg, tg);
      this.#targets.set(entry.key, entry);
      if (stored.drain !== undefined) {
        entry.life.deregister();
        const remaining = stored.drain.deadline - this.#clock.wallTime();
        entry.drain = {
          startedAt: stored.drain.startedAt,
          deadline: stored.drain.deadline,
          timeoutSeconds: stored.drain.timeoutSeconds,
          completedAtStart: new Map(),
          restored: true,
          timer: null,
        };
        if (remaining <= 0) expired.push(entry);
        else entry.drain.timer = this.#clock.setTimer(remaining, () => this.#onDeadline(entry.key));
      }
      entry.lastView = entry.life.view();
    });
    this.#sync();
    for (const entry of expired) this.#inBackground(`end the expired drain of ${entry.key}`, () => this.#finishDrain(entry, 'deadline', null));
  }

  /** Listeners the data planes could not open at the last publication (address in use, permission). */
  async openErrors(): Promise<ListenerOpenError[]> {
    const out: ListenerOpenError[] = [];
    for (const r of await this.#lastApply) {
      for (const e of r.listenerErrors) {
        const l = this.#listeners.get(e.arn);
        if (l !== undefined) out.push({ listenerArn: e.arn, address: l.address, port: l.port, code: e.code, message: e.message });
      }
    }
    return out;
  }

  /** Stops timers and health checks. Data planes are closed by their owner. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const entry of this.#targets.values()) entry.drain?.timer?.cancel();
    await this.#queue.run(() => undefined);
    await this.#health?.close();
  }

  // ---------------------------------------------------------------- load balancers

  createLoadBalancer(input: CreateLoadBalancerInput): Promise<LoadBalancerRecord> {
    return this.#queue.run(async () => {
      const record = this.#buildLoadBalancer(input);
      await this.#commit([put('loadBalancer', record.arn, record)]);
      this.#loadBalancers.set(record.arn, record);
      this.#sync();
      return record;
    });
  }

  /**
   * Creates a load balancer with its target groups and listeners as one change: one commit, and
   * if a listener cannot open, one commit undoing all of it. Nothing half-made survives a crash or a
   * failure, so a client may simply retry. (Classic CreateLoadBalancer is such a bundle.)
   */
  createLoadBalancerStack(input: CreateLoadBalancerStackInput): Promise<LoadBalancerStack> {
    return this.#queue.run(async () => {
      const lb = this.#buildLoadBalancer(input.loadBalancer);
      const groups: TargetGroupRecord[] = [];
      for (const g of input.targetGroups) {
        if (groups.some((x) => x.name === g.name)) {
          throw ebbError('DuplicateTargetGroupName', `The target group name '${g.name}' is given twice`);
        }
        groups.push(this.#buildTargetGroup(g));
      }
      const listeners: ListenerRecord[] = [];
      for (const l of input.listeners) {
        const tg = groups.find((g) => g.name === l.targetGroupName);
        if (tg === undefined) throw ebbError('TargetGroupNotFound', `Target group '${l.targetGroupName}' is not part of this load balancer`);
        const address = l.address ?? '0.0.0.0';
        this.#validateListenerPort(l.protocol, l.port, address, null, listeners);
        if (tg.protocol === 'TCP') {
          throw ebbError('IncompatibleProtocols', `Target group '${tg.name}' uses TCP and cannot serve an ${l.protocol} listener`);
        }
        listeners.push({
          arn: this.#arns.listener(lb.arn),
          loadBalancerArn: lb.arn,
          protocol: l.protocol,
          port: l.port,
          address,
          defaultActions: [{ type: 'forward', targetGroupArn: tg.arn }],
          tags: [],
          source: 'api',
        });
      }
      await this.#commit([
        put('loadBalancer', lb.arn, lb),
        ...groups.map((g) => put('targetGroup', g.arn, g)),
        ...listeners.map((l) => put('listener', l.arn, l)),
      ]);
      this.#loadBalancers.set(lb.arn, lb);
      for (const g of groups) this.#targetGroups.set(g.arn, g);
      for (const l of listeners) this.#listeners.set(l.arn, l);
      this.#sync();
      const failure = (await this.openErrors()).find((e) => listeners.some((l) => l.arn === e.listenerArn));
      if (failure !== undefined) {
        await this.#commit([
          ...listeners.map((l) => del('listener', l.arn)),
          ...groups.map((g) => del('targetGroup', g.arn)),
          del('loadBalancer', lb.arn),
        ]);
        for (const l of listeners) this.#listeners.delete(l.arn);
        for (const g of groups) this.#targetGroups.delete(g.arn);
        this.#loadBalancers.delete(lb.arn);
        this.#sync();
        throw ebbError(
          'InvalidConfigurationRequest',
          `Port ${failure.port} on ${failure.address} could not be opened (${failure.code}); choose another port or stop what holds it. Nothing was created`,
        );
      }
      return { loadBalancer: lb, targetGroups: groups, listeners };
    });
  }

  #buildLoadBalancer(input: CreateLoadBalancerInput): LoadBalancerRecord {
    validateName('load balancer', input.name);
    const type = input.type ?? 'application';
    for (const lb of this.#loadBalancers.values()) {
      if (lb.name === input.name && (lb.type === 'classic') === (type === 'classic')) {
        throw ebbError('DuplicateLoadBalancerName', `A load balancer named '${input.name}' already exists`);
      }
    }
    const attributes = input.attributes ?? {};
    validateLoadBalancerAttributes(attributes);
    return {
      arn: this.#arns.loadBalancer(input.name, type),
      name: input.name,
      type,
      scheme: input.scheme ?? 'internet-facing',
      createdAt: this.#clock.wallTime(),
      attributes: { ...attributes },
      tags: validateTags(input.tags ?? []),
      source: input.source ?? 'api',
    };
  }

  describeLoadBalancers(filter?: {
    arns?: readonly string[];
    names?: readonly string[];
    type?: 'elbv2' | 'classic';
  }): LoadBalancerRecord[] {
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

  deleteLoadBalancer(arn: string): Promise<void> {
    return this.#queue.run(async () => {
      const lb = this.#loadBalancers.get(arn);
      if (lb === undefined) return; // AWS: deleting a missing load balancer succeeds
      if (lb.attributes['deletion_protection.enabled'] === 'true') {
        throw ebbError('OperationNotPermitted', `Load balancer '${arn}' has deletion protection enabled; turn it off first`);
      }
      const listeners = [...this.#listeners.values()].filter((l) => l.loadBalancerArn === arn);
      await this.#commit([...listeners.map((l) => del('listener', l.arn)), del('loadBalancer', arn)]);
      for (const l of listeners) this.#listeners.delete(l.arn);
      this.#loadBalancers.delete(arn);
      this.#sync();
    });
  }

  describeLoadBalancerAttributes(arn: string): Record<string, string> {
    return loadBalancerAttributesWithDefaults(this.#requireLoadBalancer(arn).attributes);
  }

  modifyLoadBalancerAttributes(arn: string, attributes: Readonly<Record<string, string>>): Promise<Record<string, string>> {
    return this.#queue.run(async () => {
      const lb = this.#requireLoadBalancer(arn);
      validateLoadBalancerAttributes(attributes);
      const record: LoadBalancerRecord = { ...lb, attributes: { ...lb.attributes, ...attributes } };
      await this.#commit([put('loadBalancer', arn, record)]);
      this.#loadBalancers.set(arn, record);
      this.#sync();
      return loadBalancerAttributesWithDefaults(record.attributes);
    });
  }

  // ---------------------------------------------------------------- listeners

  createListener(input: CreateListenerInput): Promise<ListenerRecord> {
    return this.#queue.run(async () => {
      const lb = this.#requireLoadBalancer(input.loadBalancerArn);
      const address = input.address ?? '0.0.0.0';
      this.#validateListener(input.protocol, input.port, address, input.defaultActions, null);
      const record: ListenerRecord = {
        arn: this.#arns.listener(lb.arn),
        loadBalancerArn: lb.arn,
        protocol: input.protocol,
        port: input.port,
        address,
        defaultActions: input.defaultActions.map((a) => ({ type: 'forward', targetGroupArn: a.targetGroupArn })),
        tags: validateTags(input.tags ?? []),
        source: input.source ?? 'api',
      };
      await this.#commit([put('listener', record.arn, record)]);
      this.#listeners.set(record.arn, record);
      await this.#openOrRollBack(record, null);
      return record;
    });
  }

  describeListeners(filter: { loadBalancerArn?: string; listenerArns?: readonly string[] }): ListenerRecord[] {
    if (filter.listenerArns !== undefined && filter.listenerArns.length > 0) {
      return filter.listenerArns.map((arn) => this.#requireListener(arn));
    }
    if (filter.loadBalancerArn !== undefined) {
      this.#requireLoadBalancer(filter.loadBalancerArn);
      return [...this.#listeners.values()].filter((l) => l.loadBalancerArn === filter.loadBalancerArn);
    }
    throw ebbError('ValidationError', 'Specify either a load balancer ARN or listener ARNs');
  }

  modifyListener(arn: string, input: ModifyListenerInput): Promise<ListenerRecord> {
    return this.#queue.run(async () => {
      const before = this.#requireListener(arn);
      const record: ListenerRecord = {
        ...before,
        port: input.port ?? before.port,
        protocol: input.protocol ?? before.protocol,
        defaultActions:
          input.defaultActions?.map((a) => ({ type: 'forward' as const, targetGroupArn: a.targetGroupArn })) ?? before.defaultActions,
      };
      this.#validateListener(record.protocol, record.port, record.address, record.defaultActions, arn);
      await this.#commit([put('listener', arn, record)]);
      this.#listeners.set(arn, record);
      await this.#openOrRollBack(record, before);
      return record;
    });
  }

  deleteListener(arn: string): Promise<void> {
    return this.#queue.run(async () => {
      this.#requireListener(arn);
      await this.#commit([del('listener', arn)]);
      this.#listeners.delete(arn);
      this.#sync();
    });
  }

  // ---------------------------------------------------------------- target groups

  createTargetGroup(input: CreateTargetGroupInput): Promise<TargetGroupRecord> {
    return this.#queue.run(async () => {
      const record = this.#buildTargetGroup(input);
      await this.#commit([put('targetGroup', record.arn, record)]);
      this.#targetGroups.set(record.arn, record);
      this.#sync();
      return record;
    });
  }

  #buildTargetGroup(input: CreateTargetGroupInput): TargetGroupRecord {
    validateName('target group', input.name);
    validatePort(input.port, 'Port');
    if (![...this.#targetGroups.values()].every((tg) => tg.name !== input.name)) {
      throw ebbError('DuplicateTargetGroupName', `A target group named '${input.name}' already exists`);
    }
    const healthCheck = mergeHealthCheck(defaultHealthCheck(input.protocol), input.healthCheck ?? {});
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

  describeTargetGroups(filter?: {
    arns?: readonly string[];
    names?: readonly string[];
    loadBalancerArn?: string;
  }): TargetGroupRecord[] {
    const all = [...this.#targetGroups.values()];
    if (filter?.arns !== undefined && filter.arns.length > 0) return filter.arns.map((arn) => this.#requireTargetGroup(arn));
    if (filter?.names !== undefined && filter.names.length > 0) {
      return filter.names.map((name) => {
        const tg = all.find((t) => t.name === name);
        if (tg === undefined) throw ebbError('TargetGroupNotFound', `Target group '${name}' not found`);
        return tg;
      });
    }
    if (filter?.loadBalancerArn !== undefined) {
      this.#requireLoadBalancer(filter.loadBalancerArn);
      return all.filter((tg) => this.loadBalancersOfTargetGroup(tg.arn).includes(filter.loadBalancerArn ?? ''));
    }
    return all;
  }

  loadBalancersOfTargetGroup(arn: string): string[] {
    const out = new Set<string>();
    for (const l of this.#listeners.values()) {
      if (l.defaultActions.some((a) => a.targetGroupArn === arn)) out.add(l.loadBalancerArn);
    }
    return [...out];
  }

  modifyTargetGroup(arn: string, healthCheck: Partial<HealthCheckConfig>): Promise<TargetGroupRecord> {
    return this.#queue.run(async () => {
      const tg = this.#requireTargetGroup(arn);
      const record: TargetGroupRecord = { ...tg, healthCheck: mergeHealthCheck(tg.healthCheck, healthCheck) };
      await this.#commit([put('targetGroup', arn, record)]);
      this.#targetGroups.set(arn, record);
      for (const entry of this.#entriesOf(arn)) entry.life.setChecksEnabled(record.healthCheck.enabled);
      this.#sync();
      return record;
    });
  }

  deleteTargetGroup(arn: string): Promise<void> {
    return this.#queue.run(async () => {
      const tg = this.#targetGroups.get(arn);
      if (tg === undefined) return; // AWS: deleting a missing target group succeeds
      const users = [...this.#listeners.values()].filter((l) => l.defaultActions.some((a) => a.targetGroupArn === arn));
      if (users.length > 0) {
        throw ebbError(
          'ResourceInUse',
          `Target group '${arn}' is currently in use by a listener or a rule (${users.map((l) => l.arn).join(', ')}); delete or change those first`,
        );
      }
      const entries = this.#entriesOf(arn);
      const records = entries.filter((e) => e.drain !== null).map((e) => this.#drainRecord(e, 'cancelled', null));
      await this.#commit([
        ...entries.map((e) => del('target', e.key)),
        del('targetGroup', arn),
        ...this.#drainRecordOps(records),
      ]);
      for (const e of entries) {
        e.drain?.timer?.cancel();
        e.life.remove();
        this.#targets.delete(e.key);
      }
      this.#targetGroups.delete(arn);
      this.#sync();
      this.#drainsEnded(records);
    });
  }

  describeTargetGroupAttributes(arn: string): Record<string, string> {
    const tg = this.#requireTargetGroup(arn);
    return targetGroupAttributesWithDefaults(tg.attributes, tg.protocol);
  }

  modifyTargetGroupAttributes(arn: string, attributes: Readonly<Record<string, string>>): Promise<Record<string, string>> {
    return this.#queue.run(async () => {
      const tg = this.#requireTargetGroup(arn);
      validateTargetGroupAttributes(attributes, tg.protocol);
      const record: TargetGroupRecord = { ...tg, attributes: { ...tg.attributes, ...attributes } };
      await this.#commit([put('targetGroup', arn, record)]);
      this.#targetGroups.set(arn, record);
      this.#sync();
      return targetGroupAttributesWithDefaults(record.attributes, record.protocol);
    });
  }

  // ---------------------------------------------------------------- targets

  registerTargets(targetGroupArn: string, targets: readonly TargetInput[], source: 'api' | 'config' = 'api'): Promise<void> {
    return this.#queue.run(async () => {
      const tg = this.#requireTargetGroup(targetGroupArn);
      const regs = targets.map((t) => this.#validateTarget(tg, t));
      const ops: StoreOp[] = [];
      const cancelled: Array<{ entry: TargetEntry; record: DrainRecord }> = [];
      const fresh: TargetRegistration[] = [];
      for (const reg of regs) {
        const key = targetKey(reg.targetGroupArn, reg.id, reg.port);
        const existing = this.#targets.get(key);
        if (existing === undefined) {
          if (!fresh.some((f) => f.id === reg.id && f.port === reg.port)) fresh.push({ ...reg, source });
        } else if (existing.drain !== null) {
          const record = this.#drainRecord(existing, 'cancelled', null);
          cancelled.push({ entry: existing, record });
          ops.push(put('target', key, storedTarget(existing.reg, null)));
        }
      }
      for (const reg of fresh) ops.push(put('target', targetKey(reg.targetGroupArn, reg.id, reg.port), storedTarget(reg, null)));
      if (ops.length === 0) return;
      ops.push(...this.#drainRecordOps(cancelled.map((c) => c.record)));
      await this.#commit(ops);
      for (const reg of fresh) {
        const entry = this.#newEntry(reg, tg);
        this.#targets.set(entry.key, entry);
        this.events.emit('target:state', this.#stateEvent(entry, { state: 'unused', reason: 'Target.NotRegistered' }, entry.lastView));
      }
      for (const { entry } of cancelled) {
        entry.drain?.timer?.cancel();
        entry.drain = null;
        entry.life.reregister();
      }
      this.#sync();
      this.#drainsEnded(cancelled.map((c) => c.record));
    });
  }

  deregisterTargets(targetGroupArn: string, targets: readonly TargetInput[], options?: DeregisterOptions): Promise<void> {
    return this.#queue.run(async () => {
      const tg = this.#requireTargetGroup(targetGroupArn);
      const timeoutSeconds =
        options?.timeoutSeconds ?? attributeNumber(targetGroupAttributesWithDefaults(tg.attributes, tg.protocol), 'deregistration_delay.timeout_seconds', 300);
      if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 0 || timeoutSeconds > 3600) {
        throw ebbError('ValidationError', `The deregistration delay must be an integer from 0 to 3600 seconds; got ${String(timeoutSeconds)}`);
      }
      const entries: TargetEntry[] = [];
      for (const t of targets) {
        if (t.id.length === 0) throw ebbError('ValidationError', 'A target needs an Id');
        if (t.port !== undefined) validatePort(t.port, 'Target port');
        const entry = this.#targets.get(targetKey(tg.arn, t.id, t.port ?? tg.port));
        // AWS: deregistering a target that is not registered succeeds.
        if (entry !== undefined && entry.drain === null && !entries.includes(entry)) entries.push(entry);
      }
      if (entries.length === 0) return;
      const startedAt = this.#clock.wallTime();
      const deadline = startedAt + timeoutSeconds * 1000;
      await this.#commit(
        entries.map((e) => put('target', e.key, storedTarget(e.reg, { startedAt, deadline, timeoutSeconds }))),
      );
      for (const entry of entries) {
        entry.life.deregister();
        const completedAtStart = new Map(this.#dataPlanes.map((dp) => [dp.id, dp.activity(entry.key).completed]));
        entry.drain = { startedAt, deadline, timeoutSeconds, completedAtStart, restored: false, timer: null };
      }
      // From here no data plane routes a new request to these targets.
      this.#sync();
      for (const entry of entries) {
        this.events.emit('drain:start', {
          targetGroupArn: tg.arn,
          targetId: entry.reg.id,
          port: entry.reg.port,
          startedAt,
          deadline,
          timeoutSeconds,
        });
        this.#log({ event: 'drain:start', targetGroup: tg.name, target: `${entry.reg.id}:${entry.reg.port}`, timeoutSeconds });
      }
      for (const entry of entries) {
        if (timeoutSeconds === 0) {
          await this.#finishDrain(entry, 'deadline', await this.#terminateEverywhere(entry.key));
        } else if (this.#idleEverywhere(entry.key)) {
          await this.#finishDrain(entry, 'idle', null);
        } else if (entry.drain !== null) {
          entry.drain.timer = this.#clock.setTimer(timeoutSeconds * 1000, () => this.#onDeadline(entry.key));
        }
      }
    });
  }

  describeTargetHealth(targetGroupArn: string, targets?: readonly TargetInput[]): TargetHealthDescription[] {
    const tg = this.#requireTargetGroup(targetGroupArn);
    const describe = (entry: TargetEntry): TargetHealthDescription => {
      const base = {
        id: entry.reg.id,
        port: entry.reg.port,
        healthCheckPort: healthCheckPortOf(tg, entry.reg.port),
        health: entry.life.view(),
      };
      if (entry.drain === null) return base;
      const activity = this.#activity(entry.key);
      return {
        ...base,
        drain: {
          startedAt: entry.drain.startedAt,
          deadline: entry.drain.deadline,
          requestsInFlight: activity.requests,
          tunnelsOpen: activity.tunnels,
        },
      };
    };
    if (targets === undefined || targets.length === 0) return this.#entriesOf(tg.arn).map(describe);
    return targets.map((t) => {
      if (t.id.length === 0) throw ebbError('InvalidTarget', 'A target needs an Id');
      const port = t.port ?? tg.port;
      const entry = this.#targets.get(targetKey(tg.arn, t.id, port));
      if (entry !== undefined) return describe(entry);
      return {
        id: t.id,
        port,
        healthCheckPort: healthCheckPortOf(tg, port),
        health: { state: 'unused', reason: 'Target.NotRegistered', description: 'Target is not registered to the target group' },
      };
    });
  }

  drainRecords(limit = 100): DrainRecord[] {
    return this.#drainRecords.slice(-limit);
  }

  // ---------------------------------------------------------------- tags and instances

  addTags(arns: readonly string[], tags: readonly Tag[]): Promise<void> {
    return this.#queue.run(async () => {
      validateTags(tags);
      const ops = arns.map((arn) => this.#withTags(arn, (current) => mergeTags(current, tags)));
      await this.#commit(ops.map((o) => o.op));
      for (const o of ops) o.apply();
    });
  }

  removeTags(arns: readonly string[], keys: readonly string[]): Promise<void> {
    return this.#queue.run(async () => {
      const ops = arns.map((arn) => this.#withTags(arn, (current) => current.filter((t) => !keys.includes(t.key))));
      await this.#commit(ops.map((o) => o.op));
      for (const o of ops) o.apply();
    });
  }

  describeTags(arns: readonly string[]): Array<{ arn: string; tags: readonly Tag[] }> {
    return arns.map((arn) => {
      checkAnyArn(arn);
      const found = this.#loadBalancers.get(arn) ?? this.#targetGroups.get(arn) ?? this.#listeners.get(arn);
      if (found === undefined) throw notFoundFor(arn);
      return { arn, tags: found.tags };
    });
  }

  putInstance(instance: InstanceRecord): Promise<void> {
    return this.#queue.run(async () => {
      if (!isInstanceId(instance.id)) {
        throw ebbError('ValidationError', `Instance id '${instance.id}' is not valid: use i- followed by 1-32 letters and digits, such as i-0abc`);
      }
      if (!isIpAddress(instance.address) && !isHostName(instance.address)) {
        throw ebbError('ValidationError', `Instance '${instance.id}' needs an IP address or a host name; got '${instance.address}'`);
      }
      await this.#commit([put('instance', instance.id, instance)]);
      this.#instances.set(instance.id, { id: instance.id, address: instance.address });
      this.#sync();
    });
  }

  describeInstances(): InstanceRecord[] {
    return [...this.#instances.values()];
  }

  // ---------------------------------------------------------------- declared state (config file)

  /** Marks a resource as owned by the configuration file (see apply-declared.ts). */
  setSource(arn: string, source: 'api' | 'config'): Promise<void> {
    return this.#queue.run(async () => {
      const lb = this.#loadBalancers.get(arn);
      const tg = this.#targetGroups.get(arn);
      const l = this.#listeners.get(arn);
      if (lb !== undefined && lb.source !== source) {
        const r = { ...lb, source };
        await this.#commit([put('loadBalancer', arn, r)]);
        this.#loadBalancers.set(arn, r);
      } else if (tg !== undefined && tg.source !== source) {
        const r = { ...tg, source };
        await this.#commit([put('targetGroup', arn, r)]);
        this.#targetGroups.set(arn, r);
      } else if (l !== undefined && l.source !== source) {
        const r = { ...l, source };
        await this.#commit([put('listener', arn, r)]);
        this.#listeners.set(arn, r);
      }
    });
  }

  /**
   * Replaces a group's set attributes and health check wholesale (the file wins for what it
   * declares). Resolves with whether anything changed.
   */
  replaceTargetGroupSettings(arn: string, healthCheck: Partial<HealthCheckConfig>, attributes: Readonly<Record<string, string>>): Promise<boolean> {
    return this.#queue.run(async () => {
      const tg = this.#requireTargetGroup(arn);
      validateTargetGroupAttributes(attributes, tg.protocol);
      const record: TargetGroupRecord = {
        ...tg,
        healthCheck: mergeHealthCheck(defaultHealthCheck(tg.protocol), healthCheck),
        attributes: { ...attributes },
      };
      if (JSON.stringify(record) === JSON.stringify(tg)) return false;
      await this.#commit([put('targetGroup', arn, record)]);
      this.#targetGroups.set(arn, record);
      for (const entry of this.#entriesOf(arn)) entry.life.setChecksEnabled(record.healthCheck.enabled);
      this.#sync();
      return true;
    });
  }

  /** Replaces a load balancer's set attributes wholesale; resolves with whether anything changed. */
  replaceLoadBalancerAttributes(arn: string, attributes: Readonly<Record<string, string>>): Promise<boolean> {
    return this.#queue.run(async () => {
      const lb = this.#requireLoadBalancer(arn);
      validateLoadBalancerAttributes(attributes);
      if (JSON.stringify(lb.attributes) === JSON.stringify(attributes)) return false;
      const record: LoadBalancerRecord = { ...lb, attributes: { ...attributes } };
      await this.#commit([put('loadBalancer', arn, record)]);
      this.#loadBalancers.set(arn, record);
      this.#sync();
      return true;
    });
  }

  /** Registrations of a group with where they came from. */
  registrationsOf(targetGroupArn: string): Array<TargetRegistration & { draining: boolean }> {
    return this.#entriesOf(targetGroupArn).map((e) => ({ ...e.reg, draining: e.drain !== null }));
  }

  // ---------------------------------------------------------------- internals: drains

  #onIdle(key: string): void {
    const entry = this.#targets.get(key);
    if (entry?.drain == null || entry.drain.restored) return;
    this.#inBackground(`end the drain of ${key}`, async () => {
      const current = this.#targets.get(key);
      if (current !== entry || entry.drain === null || !this.#idleEverywhere(key)) return;
      await this.#finishDrain(entry, 'idle', null);
    });
  }

  #onDeadline(key: string): void {
    let cut: TerminateResult | null = null;
    this.#inBackground(`end the drain of ${key} at its deadline`, async () => {
      const entry = this.#targets.get(key);
      if (entry === undefined || entry.drain === null) return;
      cut ??= await this.#terminateEverywhere(key);
      await this.#finishDrain(entry, 'deadline', cut);
    });
  }

  /**
   * Runs work nobody awaits (timers, data-plane callbacks) in the command queue. A failure (the store
   * is full or gone) is logged and the work retried with backoff (1 s doubling to 30 s), so a drain
   * still ends once the store is back, and ebb itself keeps serving meanwhile.
   */
  #inBackground(what: string, task: () => Promise<void>, attempt = 0): void {
    this.#queue.run(task).catch((error: unknown) => {
      if (this.#closed) return;
      const delayMs = Math.min(30_000, 1000 * 2 ** attempt);
      this.#log({ event: 'control:retry', level: 'error', what, attempt: attempt + 1, retryInMs: delayMs, error: describeError(error) });
      this.#clock.setTimer(delayMs, () => this.#inBackground(what, task, attempt + 1));
    });
  }

  async #terminateEverywhere(key: string): Promise<TerminateResult> {
    const results = await Promise.all(this.#dataPlanes.map((dp) => dp.terminate(key)));
    return results.reduce(
      (sum, r) => ({
        requestsCut: sum.requestsCut + r.requestsCut,
        tunnelsClosed: sum.tunnelsClosed + r.tunnelsClosed,
        connectionsClosed: sum.connectionsClosed + r.connectionsClosed,
      }),
      { requestsCut: 0, tunnelsClosed: 0, connectionsClosed: 0 },
    );
  }

  #idleEverywhere(key: string): boolean {
    const a = this.#activity(key);
    return a.requests === 0 && a.tunnels === 0;
  }

  #activity(key: string): { requests: number; tunnels: number } {
    let requests = 0;
    let tunnels = 0;
    for (const dp of this.#dataPlanes) {
      const a = dp.activity(key);
      requests += a.requests;
      tunnels += a.tunnels;
    }
    return { requests, tunnels };
  }

  /** Ends a drain: the registration is gone, the record kept. Runs inside the queue. */
  async #finishDrain(entry: TargetEntry, outcome: 'idle' | 'deadline', cut: TerminateResult | null): Promise<void> {
    if (entry.drain === null || this.#targets.get(entry.key) !== entry) return;
    const record = this.#drainRecord(entry, outcome, cut);
    await this.#commit([del('target', entry.key), ...this.#drainRecordOps([record])]);
    entry.drain.timer?.cancel();
    entry.life.remove();
    this.#targets.delete(entry.key);
    this.events.emit('target:state', this.#stateEvent(entry, entry.lastView, entry.life.view()));
    entry.lastView = entry.life.view();
    this.#sync();
    this.#drainsEnded([record]);
  }

  #drainRecord(entry: TargetEntry, outcome: DrainRecord['outcome'], cut: TerminateResult | null): DrainRecord {
    const drain = entry.drain;
    const tg = this.#targetGroups.get(entry.reg.targetGroupArn);
    let completed = 0;
    if (drain !== null) {
      for (const dp of this.#dataPlanes) {
        const start = drain.completedAtStart.get(dp.id);
        if (start !== undefined) completed += dp.activity(entry.key).completed - start;
      }
    }
    return {
      id: randomUUID(),
      targetGroupArn: entry.reg.targetGroupArn,
      targetGroupName: tg?.name ?? '',
      targetId: entry.reg.id,
      port: entry.reg.port,
      startedAt: drain?.startedAt ?? this.#clock.wallTime(),
      endedAt: this.#clock.wallTime(),
      timeoutSeconds: drain?.timeoutSeconds ?? 0,
      outcome,
      requestsCompleted: Math.max(0, completed),
      requestsCut: cut?.requestsCut ?? 0,
      tunnelsClosed: cut?.tunnelsClosed ?? 0,
      connectionsClosed: cut?.connectionsClosed ?? 0,
    };
  }

  /** Store operations that add `records` and drop the oldest beyond the limit, so the store stays bounded. */
  #drainRecordOps(records: readonly DrainRecord[]): StoreOp[] {
    const ops = records.map((r) => put('drainRecord', r.id, r));
    const excess = this.#drainRecords.length + records.length - this.#drainRecordLimit;
    if (excess > 0) ops.push(...this.#drainRecords.slice(0, excess).map((r) => del('drainRecord', r.id)));
    return ops;
  }

  /** After the commit of `#drainRecordOps`: keeps the records and tells subscribers and the log. */
  #drainsEnded(records: readonly DrainRecord[]): void {
    this.#drainRecords.push(...records);
    if (this.#drainRecords.length > this.#drainRecordLimit) this.#drainRecords = this.#drainRecords.slice(-this.#drainRecordLimit);
    for (const r of records) {
      this.events.emit('drain:end', r);
      this.#log({
        event: 'drain:end',
        targetGroup: r.targetGroupName,
        target: `${r.targetId}:${r.port}`,
        outcome: r.outcome,
        durationMs: r.endedAt - r.startedAt,
        requestsCompleted: r.requestsCompleted,
        requestsCut: r.requestsCut,
        tunnelsClosed: r.tunnelsClosed,
      });
    }
  }

  // ---------------------------------------------------------------- internals: health

  #onObservation(observation: HealthObservation): void {
    if (this.#closed) return;
    const entry = this.#targets.get(observation.key);
    if (entry === undefined) return;
    const tg = this.#targetGroups.get(entry.reg.targetGroupArn);
    if (tg === undefined) return;
    const transition = entry.life.observe(
      observation,
      { healthy: tg.healthCheck.healthyThresholdCount, unhealthy: tg.healthCheck.unhealthyThresholdCount },
      this.#clock.now(),
    );
    if (transition === 'Changed' || !sameView(entry.lastView, entry.life.view())) this.#sync();
  }

  // ---------------------------------------------------------------- internals: publishing

  /** Recomputes derived state, emits state changes, publishes a snapshot and the health-check set. */
  #sync(): void {
    const inUse = new Set<string>();
    for (const l of this.#listeners.values()) for (const a of l.defaultActions) inUse.add(a.targetGroupArn);
    const checks: HealthCheckTarget[] = [];
    for (const entry of this.#targets.values()) {
      const tg = this.#targetGroups.get(entry.reg.targetGroupArn);
      if (tg === undefined) continue;
      entry.life.setInUse(inUse.has(tg.arn));
      const host = this.#hostOf(tg, entry.reg.id);
      if (inUse.has(tg.arn) && tg.healthCheck.enabled && host !== null) {
        entry.life.markChecking();
        checks.push({
          key: entry.key,
          host,
          port: tg.healthCheck.port === 'traffic-port' ? entry.reg.port : tg.healthCheck.port,
          config: tg.healthCheck,
        });
      }
      const view = entry.life.view();
      if (!sameView(view, entry.lastView)) {
        this.events.emit('target:state', this.#stateEvent(entry, entry.lastView, view));
        entry.lastView = view;
      }
    }
    const snapshot = this.#buildSnapshot();
    const applies = this.#dataPlanes.map((dp) => dp.apply(snapshot));
    this.#lastApply = Promise.all(applies);
    this.#health?.setTargets(checks);
  }

  #buildSnapshot(): RoutingSnapshot {
    const targetGroups = new Map<string, TargetGroupRoute>();
    for (const tg of this.#targetGroups.values()) {
      const attrs = targetGroupAttributesWithDefaults(tg.attributes, tg.protocol);
      const entries = this.#entriesOf(tg.arn);
      const routable = entries.filter((e) => e.life.isRoutable());
      const failOpen = routable.length === 0 && entries.some((e) => e.life.isFailOpenCandidate());
      const chosen = failOpen ? entries.filter((e) => e.life.isFailOpenCandidate()) : routable;
      const targets: RoutableTarget[] = [];
      for (const e of chosen) {
        const host = this.#hostOf(tg, e.reg.id);
        if (host !== null) targets.push({ key: e.key, host, port: e.reg.port, healthySince: e.life.healthySince });
      }
      targetGroups.set(tg.arn, {
        arn: tg.arn,
        name: tg.name,
        algorithm: (attrs['load_balancing.algorithm.type'] ?? 'round_robin') as TargetGroupRoute['algorithm'],
        targets,
        failOpen,
        slowStartMs: Number(attrs['slow_start.duration_seconds'] ?? '0') * 1000,
      });
    }
    const listeners: ListenerRoute[] = [];
    for (const l of this.#listeners.values()) {
      const lb = this.#loadBalancers.get(l.loadBalancerArn);
      if (lb === undefined) continue;
      listeners.push({
        arn: l.arn,
        protocol: l.protocol,
        address: l.address,
        port: l.port,
        targetGroupArn: l.defaultActions[0]?.targetGroupArn ?? null,
        settings: listenerSettings(lb.attributes),
      });
    }
    this.#snapshotVersion += 1;
    return { version: this.#snapshotVersion, listeners, targetGroups };
  }

  /** Publishes the listener and waits for it to bind; a listener that cannot bind is rolled back. */
  async #openOrRollBack(record: ListenerRecord, before: ListenerRecord | null): Promise<void> {
    this.#sync();
    const failure = (await this.openErrors()).find((e) => e.listenerArn === record.arn);
    if (failure === undefined) return;
    if (before === null) {
      await this.#commit([del('listener', record.arn)]);
      this.#listeners.delete(record.arn);
    } else {
      await this.#commit([put('listener', before.arn, before)]);
      this.#listeners.set(before.arn, before);
    }
    this.#sync();
    throw ebbError(
      'InvalidConfigurationRequest',
      `Port ${record.port} on ${record.address} could not be opened (${failure.code}: ${failure.message}); choose another port or stop what holds it`,
    );
  }

  // ---------------------------------------------------------------- internals: helpers

  async #commit(ops: readonly StoreOp[]): Promise<void> {
    if (ops.length === 0) return;
    try {
      await this.#store.commit(ops);
    } catch (error) {
      if (EbbError.is(error)) throw error;
      throw new EbbError('StoreUnavailable', `The change could not be saved: ${(error as Error).message}`, { cause: error });
    }
  }

  #newEntry(reg: TargetRegistration, tg: TargetGroupRecord): TargetEntry {
    const life = new TargetLifecycle(tg.healthCheck.enabled);
    return { reg, key: targetKey(reg.targetGroupArn, reg.id, reg.port), life, drain: null, lastView: life.view() };
  }

  #entriesOf(targetGroupArn: string): TargetEntry[] {
    const out: TargetEntry[] = [];
    for (const e of this.#targets.values()) if (e.reg.targetGroupArn === targetGroupArn) out.push(e);
    return out;
  }

  #hostOf(tg: TargetGroupRecord, id: string): string | null {
    if (isIpAddress(id)) return id;
    return this.#instances.get(id)?.address ?? null;
  }

  #validateTarget(tg: TargetGroupRecord, t: TargetInput): TargetRegistration {
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

  #validateListener(
    protocol: string,
    port: number,
    address: string,
    actions: readonly { targetGroupArn: string }[],
    self: string | null,
  ): void {
    this.#validateListenerPort(protocol, port, address, self, []);
    if (actions.length !== 1) {
      throw ebbError('ValidationError', 'A listener needs exactly one default action, of type forward');
    }
    for (const a of actions) {
      const tg = this.#requireTargetGroup(a.targetGroupArn);
      if (tg.protocol === 'TCP') {
        throw ebbError('IncompatibleProtocols', `Target group '${tg.name}' uses TCP and cannot serve an ${protocol} listener`);
      }
    }
  }

  /** Protocol, port and address of a listener, against every listener there is and those about to be. */
  #validateListenerPort(protocol: string, port: number, address: string, self: string | null, pending: readonly ListenerRecord[]): void {
    validatePort(port, 'Port');
    if (protocol !== 'HTTP') {
      throw ebbError('UnsupportedProtocol', `Listener protocol '${protocol}' is not supported yet; ebb serves HTTP listeners`);
    }
    if (!isIpAddress(address)) throw ebbError('ValidationError', `Listener address '${address}' is not an IP address`);
    for (const other of [...this.#listeners.values(), ...pending]) {
      if (other.arn !== self && other.port === port && (other.address === address || other.address === '0.0.0.0' || address === '0.0.0.0')) {
        throw ebbError('DuplicateListener', `A listener already uses port ${port} (${other.arn})`);
      }
    }
  }

  #withTags(arn: string, change: (current: readonly Tag[]) => readonly Tag[]): { op: StoreOp; apply: () => void } {
    checkAnyArn(arn);
    const lb = this.#loadBalancers.get(arn);
    if (lb !== undefined) {
      const r = { ...lb, tags: change(lb.tags) };
      return { op: put('loadBalancer', arn, r), apply: () => this.#loadBalancers.set(arn, r) };
    }
    const tg = this.#targetGroups.get(arn);
    if (tg !== undefined) {
      const r = { ...tg, tags: change(tg.tags) };
      return { op: put('targetGroup', arn, r), apply: () => this.#targetGroups.set(arn, r) };
    }
    const l = this.#listeners.get(arn);
    if (l !== undefined) {
      const r = { ...l, tags: change(l.tags) };
      return { op: put('listener', arn, r), apply: () => this.#listeners.set(arn, r) };
    }
    throw notFoundFor(arn);
  }

  #requireLoadBalancer(arn: string): LoadBalancerRecord {
    checkArn(arn, 'loadbalancer', 'load balancer');
    const lb = this.#loadBalancers.get(arn);
    if (lb === undefined) throw ebbError('LoadBalancerNotFound', `Load balancer '${arn}' not found`);
    return lb;
  }

  #requireListener(arn: string): ListenerRecord {
    checkArn(arn, 'listener', 'listener');
    const l = this.#listeners.get(arn);
    if (l === undefined) throw ebbError('ListenerNotFound', `Listener '${arn}' not found`);
    return l;
  }

  #requireTargetGroup(arn: string): TargetGroupRecord {
    checkArn(arn, 'targetgroup', 'target group');
    const tg = this.#targetGroups.get(arn);
    if (tg === undefined) throw ebbError('TargetGroupNotFound', `Target group '${arn}' not found`);
    return tg;
  }

  #stateEvent(entry: TargetEntry, from: TargetHealthView, to: TargetHealthView): ControlEvents['target:state'] {
    return { targetGroupArn: entry.reg.targetGroupArn, targetId: entry.reg.id, port: entry.reg.port, from, to, at: this.#clock.wallTime() };
  }
}

function put(kind: StoreKind, key: string, value: unknown): StoreOp {
  return { op: 'put', kind, key, value };
}

function del(kind: StoreKind, key: string): StoreOp {
  return { op: 'delete', kind, key };
}

function storedTarget(
  reg: TargetRegistration,
  drain: { startedAt: number; deadline: number; timeoutSeconds: number } | null,
): StoredTarget & { v: number } {
  return drain === null ? { v: STORED_TARGET_VERSION, reg } : { v: STORED_TARGET_VERSION, reg, drain };
}

function healthCheckPortOf(tg: TargetGroupRecord, trafficPort: number): string {
  return String(tg.healthCheck.port === 'traffic-port' ? trafficPort : tg.healthCheck.port);
}

function mergeHealthCheck(base: HealthCheckConfig, change: Partial<HealthCheckConfig>): HealthCheckConfig {
  // ELBv2 refuses TCP checks on HTTP(S) groups (the API layer and the config enforce that); Classic
  // load balancers use them by default, so the facade allows them.
  const merged: HealthCheckConfig = { ...base, ...stripUndefined(change) };
  validateHealthCheck(merged);
  return merged;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}


const TAG_PATTERN = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

function validateTags(tags: readonly Tag[]): Tag[] {
  const seen = new Set<string>();
  for (const t of tags) {
    if (t.key.length < 1 || t.key.length > 128 || !TAG_PATTERN.test(t.key)) {
      throw ebbError('ValidationError', `Tag key '${t.key}' is not valid: 1-128 letters, digits, spaces and _.:/=+-@`);
    }
    if (t.value.length > 256 || !TAG_PATTERN.test(t.value)) {
      throw ebbError('ValidationError', `Tag value for '${t.key}' is not valid: up to 256 letters, digits, spaces and _.:/=+-@`);
    }
    if (seen.has(t.key)) throw ebbError('DuplicateTagKeys', `Tag key '${t.key}' is given twice`);
    seen.add(t.key);
  }
  if (tags.length > 50) throw ebbError('TooManyTags', 'A resource can have at most 50 tags');
  return tags.map((t) => ({ key: t.key, value: t.value }));
}

function mergeTags(current: readonly Tag[], added: readonly Tag[]): Tag[] {
  const byKey = new Map(current.map((t) => [t.key, t.value]));
  for (const t of added) byKey.set(t.key, t.value);
  if (byKey.size > 50) throw ebbError('TooManyTags', 'A resource can have at most 50 tags');
  return [...byKey].map(([key, value]) => ({ key, value }));
}

/** A malformed ARN is a ValidationError (as in AWS); a well-formed unknown one is the resource's NotFound. */
function checkArn(arn: string, resource: 'loadbalancer' | 'listener' | 'targetgroup', label: string): void {
  if (!isWellFormedArn(arn) || !arn.includes(`:${resource}/`)) {
    throw ebbError('ValidationError', `'${arn}' is not a valid ${label} ARN`);
  }
}

/** An ARN of a load balancer, listener or target group, whichever. */
function checkAnyArn(arn: string): void {
  if (!isWellFormedArn(arn)) throw ebbError('ValidationError', `'${arn}' is not a valid load balancer, listener or target group ARN`);
}

function notFoundFor(arn: string): EbbError {
  if (arn.includes(':targetgroup/')) return ebbError('TargetGroupNotFound', `Target group '${arn}' not found`);
  if (arn.includes(':listener/')) return ebbError('ListenerNotFound', `Listener '${arn}' not found`);
  return ebbError('LoadBalancerNotFound', `Load balancer '${arn}' not found`);
}
