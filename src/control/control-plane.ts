import type { Clock, TimerHandle } from '../shared/clock.ts';
import { describeError, ebbError } from '../shared/errors.ts';
import { TypedEmitter } from '../shared/typed-emitter.ts';
import {
  loadBalancerAttributesWithDefaults,
  targetGroupAttributesWithDefaults,
  validateLoadBalancerAttributeChange,
  validateTargetGroupAttributes,
} from '../domain/attributes.ts';
import type { DataPlane } from '../domain/data-plane-port.ts';
import type { HealthCheckConfig } from '../domain/health-check.ts';
import type { HealthChecker } from '../domain/health-port.ts';
import type { InstanceRecord, ListenerRecord, LoadBalancerRecord, Tag, TargetGroupRecord, TargetRegistration } from '../domain/resources.ts';
import type { StateStore, StoreOp } from '../domain/store-port.ts';
import { mergeTags, removeTagKeys, validateTags } from '../domain/tag-rules.ts';
import { ArnFactory, checkArn } from './arn.ts';
import { CertificateCatalog } from './certificates.ts';
import { classicAttributesChange, classicSettingsFromTags } from './classic-load-balancers.ts';
import type { ControlApi } from './control-api.ts';
import { LAST_APPLIED_KEY, restoreDeclaration, storedDeclaration, withChanges, type DeclaredState } from './declared-state.ts';
import { DrainRecordLog } from './drain-records.ts';
import { Drains } from './drains.ts';
import type { ControlEvents } from './events.ts';
import { HealthObservations } from './health-observations.ts';
import type { ClassicAttributesChange, CreateListenerInput, CreateLoadBalancerInput, CreateLoadBalancerStackInput, CreateTargetGroupInput, DeregisterOptions, ModifyListenerInput, TargetInput } from './inputs.ts';
import { ListenerCommands } from './listener-commands.ts';
import type { DrainRecord, ListenerCertificateView, LoadBalancerStack, TargetHealthDescription } from './outputs.ts';
import { TargetRegistry, type StoredTarget } from './registered-targets.ts';
import { healthToHandOver, NOTHING_HANDED_OVER, resumeHealth, type HandOver } from './hand-over.ts';
import { ResourceCatalog, type ListenAddresses } from './resource-catalog.ts';
import { RoutingPublisher, type ListenerOpenError } from './routing-publisher.ts';
import { SerialQueue } from './serial-queue.ts';
import { del, put, recordsOf, StoreTransaction } from './store-transaction.ts';

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
  /** Where a listener created without an address listens, by scheme (default 0.0.0.0 and 127.0.0.1). */
  readonly listenAddresses?: Partial<ListenAddresses>;
}

export type { ListenerOpenError } from './routing-publisher.ts';
export { DEFAULT_LISTEN_ADDRESSES, type ListenAddresses } from './listen-addresses.ts';

/**
 * The control plane: owns the resources and the target lifecycles, persists every change before it
 * is acknowledged, runs drains against every data plane, and publishes routing snapshots.
 *
 * This class is the facade: it owns the serial queue every command runs in (so one command's
 * check → commit → apply never interleaves with another's) and hands the work to its rooms: the
 * resource catalog (records and their checks), the target registry (registrations, lifecycles,
 * state events), drains (register, deregister, idle, deadline, restore), the drain record log, and
 * the routing publisher around the pure `buildPublication`. Every change goes through one
 * StoreTransaction: commit, update the in-memory view, publish.
 */
export class ControlPlane implements ControlApi {
  readonly events = new TypedEmitter<ControlEvents>();
  readonly region: string;
  readonly accountId: string;
  readonly certificates: CertificateCatalog;

  readonly #clock: Clock;
  readonly #store: StateStore;
  readonly #health: HealthChecker | undefined;
  readonly #log: (entry: Record<string, unknown>) => void;
  readonly #queue: SerialQueue;
  readonly #catalog: ResourceCatalog;
  readonly #targets: TargetRegistry;
  readonly #records: DrainRecordLog;
  readonly #drains: Drains;
  readonly #transaction: StoreTransaction;
  readonly #publisher: RoutingPublisher;
  readonly #listenerCommands: ListenerCommands;
  readonly #observations: HealthObservations;
  /** Retries of background work waiting for their time; close cancels them. */
  readonly #retryTimers = new Set<TimerHandle>();
  #lastApplied: DeclaredState | null = null;
  #started = false;
  #closed = false;

  constructor(options: ControlPlaneOptions) {
    this.#clock = options.clock;
    this.#store = options.store;
    const dataPlanes = options.dataPlanes;
    this.#health = options.healthChecker;
    this.region = options.region ?? 'us-east-1';
    this.accountId = options.accountId ?? '123456789012';
    this.#log = options.log ?? (() => undefined);
    this.#catalog = new ResourceCatalog(new ArnFactory(this.region, this.accountId), this.#clock, options.listenAddresses);
    this.#targets = new TargetRegistry(this.events, this.#clock);
    this.#records = new DrainRecordLog(options.drainRecordLimit ?? 1000, this.events, this.#log);
    this.#publisher = new RoutingPublisher(this.#catalog, this.#targets, dataPlanes, this.#health, this.#clock, () => this.certificates.records, this.#log);
    this.#transaction = new StoreTransaction(this.#store, () => this.#publisher.publish(), { group: true });
    this.#queue = new SerialQueue(this.#transaction.grouped ? () => this.#transaction.settled() : undefined);
    this.#listenerCommands = new ListenerCommands({ catalog: this.#catalog, transaction: this.#transaction, openErrors: () => this.openErrors() });
    this.certificates = new CertificateCatalog({ region: this.region, accountId: this.accountId, clock: this.#clock, queue: this.#queue, transaction: this.#transaction, listeners: () => this.#catalog.listeners.values(), log: this.#log });
    this.#catalog.useCertificates((arn) => this.certificates.get(arn));
    this.#drains = new Drains({
      clock: this.#clock,
      dataPlanes: dataPlanes,
      targets: this.#targets,
      records: this.#records,
      transaction: this.#transaction,
      events: this.events,
      log: this.#log,
      inBackground: (what, task) => this.#inBackground(what, task),
      targetGroup: (arn) => this.#catalog.targetGroups.get(arn),
      publish: () => this.#publisher.publish(),
      routed: () => this.#observations.published().then(() => this.#publisher.applied()),
    });
    this.#observations = new HealthObservations({ clock: this.#clock, targets: this.#targets, targetGroup: (arn) => this.#catalog.targetGroups.get(arn), publish: () => this.#publisher.publish(), observed: (t, before) => this.#drains.unhealthyFlows.healthObserved(t, before) });
    this.#health?.onObservation((o) => this.#observations.observe(o));
    for (const dp of dataPlanes) dp.onIdle((key) => this.#drains.onIdle(key));
  }

  /** Loads the state, resumes drains with the time they had left (`handedOver`: tracked by the ebb before a hot restart), publishes. */
  async start(handOver: HandOver = NOTHING_HANDED_OVER): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const state = await this.#store.load();
    this.#catalog.load(state);
    this.certificates.load(state);
    // Records an earlier release wrote in another shape are rewritten once, before anything is served.
    const moved = classicSettingsFromTags(this.#catalog);
    await this.#queue.run(() => this.#transaction.transact(moved.ops, moved.apply, { publish: false }));
    this.#records.load(recordsOf<DrainRecord>(state, 'drainRecord'));
    this.#lastApplied = restoreDeclaration(state.get('meta')?.get(LAST_APPLIED_KEY));
    const expired = this.#drains.restore(recordsOf<StoredTarget>(state, 'target'), (arn) => this.#catalog.targetGroups.get(arn), handOver.drains);
    resumeHealth(this.#targets, handOver.health, this.#clock.now());
    this.#publisher.publish();
    for (const target of expired) {
      this.#inBackground(`end the expired drain of ${target.key}`, () => this.#drains.finish(target, 'deadline', null));
    }
  }

  /** Listeners the data planes could not open at the last publication (address in use, permission). */
  openErrors(): Promise<ListenerOpenError[]> {
    return this.#publisher.openErrors();
  }

  /** The drains this process tracks and the health its checks settled, for the ebb that takes over at a hot restart. */
  handOver(): HandOver {
    return { drains: this.#drains.handOver(), health: healthToHandOver(this.#targets, this.#clock.now()) };
  }

  /** Stops timers and health checks. Data planes are closed by their owner. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#observations.close();
    this.#drains.stopTimers();
    for (const timer of this.#retryTimers) timer.cancel();
    this.#retryTimers.clear();
    await this.#queue.run(() => undefined);
    await this.#health?.close();
  }

  // ---------------------------------------------------------------- load balancers

  createLoadBalancer(input: CreateLoadBalancerInput): Promise<LoadBalancerRecord> {
    return this.#queue.run(async () => {
      const record = this.#catalog.buildLoadBalancer(input);
      await this.#transaction.transact([put('loadBalancer', record.arn, record)], () => this.#catalog.setLoadBalancer(record));
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
      const stack = this.#catalog.buildStack(input);
      const made = this.#catalog.stackChange(stack, 'add');
      await this.#transaction.transact(made.ops, made.apply);
      const failure = (await this.openErrors()).find((e) => stack.listeners.some((l) => l.arn === e.listenerArn));
      if (failure === undefined) return stack;
      const undo = this.#catalog.stackChange(stack, 'remove');
      await this.#transaction.transact(undo.ops, undo.apply);
      throw ebbError(
        'InvalidConfigurationRequest',
        `Port ${failure.port} on ${failure.address} could not be opened (${failure.code}); choose another port or stop what holds it. Nothing was created`,
      );
    });
  }

  describeLoadBalancers(filter?: { arns?: readonly string[]; names?: readonly string[]; type?: 'elbv2' | 'classic' }): LoadBalancerRecord[] {
    return this.#catalog.describeLoadBalancers(filter);
  }

  deleteLoadBalancer(arn: string, options: { readonly withTargetGroups?: boolean } = {}): Promise<void> {
    return this.#queue.run(async () => {
      checkArn(arn, 'loadbalancer', 'load balancer');
      const lb = this.#catalog.loadBalancers.get(arn);
      if (lb === undefined) return; // AWS: deleting a missing load balancer succeeds
      if (lb.attributes['deletion_protection.enabled'] === 'true') {
        throw ebbError('OperationNotPermitted', `Load balancer '${arn}' has deletion protection enabled; turn it off first`);
      }
      const stack = this.#catalog.stackOf(lb, options.withTargetGroups === true);
      await this.#deleteWithRegistrations(this.#catalog.stackChange(stack, 'remove'), stack.targetGroups.map((g) => g.arn));
    });
  }

  describeLoadBalancerAttributes(arn: string): Record<string, string> {
    const lb = this.#catalog.requireLoadBalancer(arn);
    return loadBalancerAttributesWithDefaults(lb.attributes, lb.type);
  }

  modifyLoadBalancerAttributes(arn: string, attributes: Readonly<Record<string, string>>): Promise<Record<string, string>> {
    return this.#queue.run(async () => {
      const lb = this.#catalog.requireLoadBalancer(arn);
      const record: LoadBalancerRecord = { ...lb, attributes: validateLoadBalancerAttributeChange(lb.attributes, attributes, lb.type) };
      await this.#transaction.transact([put('loadBalancer', arn, record)], () => this.#catalog.setLoadBalancer(record));
      return loadBalancerAttributesWithDefaults(record.attributes, record.type);
    });
  }

  /** Classic ModifyLoadBalancerAttributes as one change (see classic-load-balancers.ts). */
  modifyClassicAttributes(arn: string, change: ClassicAttributesChange): Promise<LoadBalancerRecord> {
    return this.#queue.run(async () => {
      const c = classicAttributesChange(this.#catalog, arn, change);
      await this.#transaction.transact(c.ops, c.apply);
      return c.loadBalancer;
    });
  }

  // ---------------------------------------------------------------- listeners

  createListener(input: CreateListenerInput): Promise<ListenerRecord> {
    return this.#queue.run(() => this.#listenerCommands.create(input));
  }

  describeListeners(filter: { loadBalancerArn?: string; listenerArns?: readonly string[] }): ListenerRecord[] {
    return this.#catalog.describeListeners(filter);
  }

  modifyListener(arn: string, input: ModifyListenerInput): Promise<ListenerRecord> {
    return this.#queue.run(() => this.#listenerCommands.modify(arn, input));
  }

  deleteListener(arn: string): Promise<void> {
    return this.#queue.run(() => this.#listenerCommands.delete(arn));
  }

  describeListenerCertificates(arn: string): ListenerCertificateView[] {
    return this.#listenerCommands.describeCertificates(arn);
  }

  addListenerCertificates(arn: string, certificateArns: readonly string[]): Promise<ListenerCertificateView[]> {
    return this.#queue.run(() => this.#listenerCommands.addCertificates(arn, certificateArns));
  }

  removeListenerCertificates(arn: string, certificateArns: readonly string[]): Promise<void> {
    return this.#queue.run(() => this.#listenerCommands.removeCertificates(arn, certificateArns));
  }

  describeListenerAttributes(arn: string): Record<string, string> {
    return this.#listenerCommands.describeAttributes(arn);
  }

  modifyListenerAttributes(arn: string, attributes: Readonly<Record<string, string>>): Promise<Record<string, string>> {
    return this.#queue.run(() => this.#listenerCommands.modifyAttributes(arn, attributes));
  }

  // ---------------------------------------------------------------- target groups

  createTargetGroup(input: CreateTargetGroupInput): Promise<TargetGroupRecord> {
    return this.#queue.run(async () => {
      const record = this.#catalog.buildTargetGroup(input);
      this.#publisher.caFiles.check(record.attributes);
      await this.#transaction.transact([put('targetGroup', record.arn, record)], () => this.#catalog.setTargetGroup(record));
      return record;
    });
  }

  describeTargetGroups(filter?: { arns?: readonly string[]; names?: readonly string[]; loadBalancerArn?: string }): TargetGroupRecord[] {
    return this.#catalog.describeTargetGroups(filter);
  }

  loadBalancersOfTargetGroup(arn: string): string[] {
    return this.#catalog.loadBalancersOfTargetGroup(arn);
  }

  modifyTargetGroup(arn: string, healthCheck: Partial<HealthCheckConfig>): Promise<TargetGroupRecord> {
    return this.#queue.run(async () => {
      const tg = this.#catalog.requireTargetGroup(arn);
      const record: TargetGroupRecord = { ...tg, healthCheck: this.#catalog.changeHealthCheck(tg, healthCheck) };
      await this.#transaction.transact([put('targetGroup', arn, record)], () => this.#setTargetGroupAndChecks(record));
      return record;
    });
  }

  deleteTargetGroup(arn: string): Promise<void> {
    return this.#queue.run(async () => {
      checkArn(arn, 'targetgroup', 'target group');
      const tg = this.#catalog.targetGroups.get(arn);
      if (tg === undefined) return; // AWS: deleting a missing target group succeeds
      this.#catalog.checkUnused(tg);
      await this.#deleteWithRegistrations({ ops: [del('targetGroup', arn)], apply: () => this.#catalog.deleteTargetGroup(arn) }, [arn]);
    });
  }

  /** Commits a deletion together with what it does to the registrations of the groups it deletes (drains end cancelled). */
  async #deleteWithRegistrations(deletion: { ops: StoreOp[]; apply: () => void }, targetGroupArns: readonly string[]): Promise<void> {
    const registrations = this.#drains.groupDeletion(targetGroupArns);
    await this.#transaction.transact([...registrations.targetOps, ...deletion.ops, ...registrations.recordOps], () => {
      registrations.apply();
      deletion.apply();
    });
    registrations.ended();
  }

  describeTargetGroupAttributes(arn: string): Record<string, string> {
    const tg = this.#catalog.requireTargetGroup(arn);
    return targetGroupAttributesWithDefaults(tg.attributes, tg.protocol);
  }

  modifyTargetGroupAttributes(arn: string, attributes: Readonly<Record<string, string>>): Promise<Record<string, string>> {
    return this.#queue.run(async () => {
      const tg = this.#catalog.requireTargetGroup(arn);
      validateTargetGroupAttributes(attributes, tg.protocol, tg.attributes);
      this.#publisher.caFiles.check(attributes);
      const record: TargetGroupRecord = { ...tg, attributes: { ...tg.attributes, ...attributes } };
      await this.#transaction.transact([put('targetGroup', arn, record)], () => this.#catalog.setTargetGroup(record));
      return targetGroupAttributesWithDefaults(record.attributes, record.protocol);
    });
  }

  /** Holds a committed group whose health check may have been switched on or off. */
  #setTargetGroupAndChecks(record: TargetGroupRecord): void {
    this.#catalog.setTargetGroup(record);
    this.#targets.setChecksEnabled(record.arn, record.healthCheck.enabled);
  }

  // ---------------------------------------------------------------- targets

  registerTargets(targetGroupArn: string, targets: readonly TargetInput[], source: 'api' | 'config' = 'api'): Promise<void> {
    return this.#queue.run(async () => {
      const tg = this.#catalog.requireTargetGroup(targetGroupArn);
      const regs = targets.map((t) => this.#catalog.checkTarget(tg, t));
      await this.#drains.register(tg, regs, source);
    });
  }

  deregisterTargets(targetGroupArn: string, targets: readonly TargetInput[], options?: DeregisterOptions): Promise<void> {
    return this.#queue.run(async () => {
      const tg = this.#catalog.requireTargetGroup(targetGroupArn);
      await this.#drains.deregister(tg, targets, options);
    });
  }

  describeTargetHealth(targetGroupArn: string, targets?: readonly TargetInput[]): TargetHealthDescription[] {
    const tg = this.#catalog.requireTargetGroup(targetGroupArn);
    return this.#targets.describe(tg, targets, (target) => this.#drains.progress(target));
  }

  drainRecords(limit = 100): DrainRecord[] {
    return this.#records.recent(limit);
  }

  // ---------------------------------------------------------------- tags and instances

  addTags(arns: readonly string[], tags: readonly Tag[]): Promise<void> {
    return this.#queue.run(async () => {
      validateTags(tags);
      const change = this.#catalog.changeTags(arns, (current) => mergeTags(current, tags));
      await this.#transaction.transact(change.ops, change.apply, { publish: false });
    });
  }

  removeTags(arns: readonly string[], keys: readonly string[]): Promise<void> {
    return this.#queue.run(async () => {
      const change = this.#catalog.changeTags(arns, (current) => removeTagKeys(current, keys));
      await this.#transaction.transact(change.ops, change.apply, { publish: false });
    });
  }

  describeTags(arns: readonly string[]): Array<{ arn: string; tags: readonly Tag[] }> {
    return this.#catalog.describeTags(arns);
  }

  putInstance(instance: InstanceRecord): Promise<void> {
    return this.#queue.run(async () => {
      this.#catalog.checkInstance(instance);
      await this.#transaction.transact([put('instance', instance.id, instance)], () => this.#catalog.setInstance({ id: instance.id, address: instance.address }));
    });
  }

  deleteInstance(id: string): Promise<void> {
    return this.#queue.run(async () => {
      if (!this.#catalog.instances.has(id) || [...this.#targets.all()].some((t) => t.reg.id === id)) return;
      await this.#transaction.transact([del('instance', id)], () => this.#catalog.deleteInstance(id), { publish: false });
    });
  }

  describeInstances(): InstanceRecord[] {
    return [...this.#catalog.instances.values()];
  }

  // ---------------------------------------------------------------- declared state (config file)

  /** Marks a resource as owned by the configuration file (see apply-declared.ts). */
  setSource(arn: string, source: 'api' | 'config'): Promise<void> {
    return this.#queue.run(async () => {
      const lb = this.#catalog.loadBalancers.get(arn);
      const tg = this.#catalog.targetGroups.get(arn);
      const l = this.#catalog.listeners.get(arn);
      const quiet = { publish: false };
      if (lb !== undefined && lb.source !== source) {
        const r = { ...lb, source };
        await this.#transaction.transact([put('loadBalancer', arn, r)], () => this.#catalog.setLoadBalancer(r), quiet);
      } else if (tg !== undefined && tg.source !== source) {
        const r = { ...tg, source };
        await this.#transaction.transact([put('targetGroup', arn, r)], () => this.#catalog.setTargetGroup(r), quiet);
      } else if (l !== undefined && l.source !== source) {
        const r = { ...l, source };
        await this.#transaction.transact([put('listener', arn, r)], () => this.#catalog.setListener(r), quiet);
      }
    });
  }

  /**
   * Sets the given attributes (null unsets one) of a load balancer or target group, and a group's given
   * health-check fields, keeping the rest; resolves with whether anything changed.
   */
  changeSettings(arn: string, attributes: Readonly<Record<string, string | null>>, healthCheck: Partial<HealthCheckConfig> = {}): Promise<boolean> {
    return this.#queue.run(async () => {
      const lb = this.#catalog.loadBalancers.get(arn);
      if (lb !== undefined) {
        const record: LoadBalancerRecord = { ...lb, attributes: withChanges(lb.attributes, attributes) };
        validateLoadBalancerAttributeChange({}, record.attributes, lb.type);
        if (JSON.stringify(record) === JSON.stringify(lb)) return false;
        await this.#transaction.transact([put('loadBalancer', arn, record)], () => this.#catalog.setLoadBalancer(record));
        return true;
      }
      const tg = this.#catalog.requireTargetGroup(arn);
      const record: TargetGroupRecord = { ...tg, healthCheck: this.#catalog.changeHealthCheck(tg, healthCheck), attributes: withChanges(tg.attributes, attributes) };
      validateTargetGroupAttributes(record.attributes, tg.protocol);
      if (JSON.stringify(record) === JSON.stringify(tg)) return false;
      this.#publisher.caFiles.check(record.attributes);
      await this.#transaction.transact([put('targetGroup', arn, record)], () => this.#setTargetGroupAndChecks(record));
      return true;
    });
  }

  reloadTargetCaFiles(): string[] {
    return this.#publisher.reloadCaFiles();
  }

  /** The configuration file as it was last applied (null: never, or in a state from before ebb kept it). */
  lastAppliedDeclaration(): DeclaredState | null {
    return this.#lastApplied;
  }

  /** Keeps `declared` as the file last applied, the base the next application is merged against. */
  recordAppliedDeclaration(declared: DeclaredState): Promise<void> {
    return this.#queue.run(() => this.#transaction.transact([put('meta', LAST_APPLIED_KEY, storedDeclaration(declared))], () => void (this.#lastApplied = declared), { publish: false }));
  }

  /** Registrations of a group with where they came from. */
  registrationsOf(targetGroupArn: string): Array<TargetRegistration & { draining: boolean }> {
    return this.#targets.of(targetGroupArn).map((t) => ({ ...t.reg, draining: t.drain !== null }));
  }

  // ---------------------------------------------------------------- internals

  /**
   * Runs work nobody awaits (timers, data-plane callbacks) in the command queue. A failure (the store
   * is full or gone) is logged and the work retried with backoff (1 s doubling to 30 s), so a drain
   * still ends once the store is back, and ebb itself keeps serving meanwhile. After close nothing
   * new is queued (a data plane may still report idle keys while it closes) and no retry is set.
   */
  #inBackground(what: string, task: () => Promise<void>, attempt = 0): void {
    if (this.#closed) return;
    this.#queue.run(task).catch((error: unknown) => {
      if (this.#closed) return;
      const delayMs = Math.min(30_000, 1000 * 2 ** attempt);
      this.#log({ event: 'control:retry', level: 'error', what, attempt: attempt + 1, retryInMs: delayMs, error: describeError(error) });
      const timer = this.#clock.setTimer(delayMs, () => {
        this.#retryTimers.delete(timer);
        this.#inBackground(what, task, attempt + 1);
      });
      this.#retryTimers.add(timer);
    });
  }
}
