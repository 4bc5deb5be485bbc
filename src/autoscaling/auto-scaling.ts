/**
 * Auto Scaling: launch templates, groups of local processes, lifecycle hooks, standby and instance
 * refresh, with AWS's semantics and the control plane's drains. This class is the facade: it owns
 * the serial queue every command and every engine pass runs in, restores the state at start (and
 * adopts the instances still running), and hands the work to its rooms: the launch template catalog,
 * the group commands, the engine (the reconciler) and the refresh planner.
 */
import type { ControlApi } from '../control/control-api.ts';
import { SerialQueue } from '../control/serial-queue.ts';
import type { InstanceRunner } from '../domain/instance-runner.ts';
import type { Tag } from '../domain/resources.ts';
import type { StateStore, StoreKind } from '../domain/store-port.ts';
import type { Clock, TimerHandle } from '../shared/clock.ts';
import { describeError, ebbError } from '../shared/errors.ts';
import { TypedEmitter } from '../shared/typed-emitter.ts';
import type {
  AutoScalingApi,
  CreateGroupInput,
  CreateLaunchTemplateInput,
  CreateLaunchTemplateVersionInput,
  Ec2InstanceView,
  InstanceRefreshView,
  LifecycleActionInput,
  PutLifecycleHookInput,
  StartInstanceRefreshInput,
  UpdateGroupInput,
} from './autoscaling-api.ts';
import { DEFAULT_ENGINE_OPTIONS, Engine, type EngineOptions } from './engine.ts';
import type { AutoScalingEvents } from './events.ts';
import { GroupCommands } from './group-commands.ts';
import { HookCommands } from './hook-commands.ts';
import { AUTOSCALING_LAST_APPLIED_KEY } from './declared-plan.ts';
import { LaunchTemplateCatalog, type DeclaredChange, type DeclaredLaunchTemplate } from './launch-templates.ts';
import { LoadBalancing } from './load-balancing.ts';
import { Notifier } from './notifications.ts';
import type {
  AutoScalingGroupRecord,
  AutoScalingInstanceRecord,
  InstanceRefreshRecord,
  LaunchTemplateRecord,
  LifecycleHookRecord,
  ScalingActivityRecord,
} from './records.ts';
import { AutoScalingState, del, hookKey, put } from './state.ts';

export interface AutoScalingOptions {
  readonly clock: Clock;
  readonly store: StateStore;
  readonly control: ControlApi;
  readonly runner: InstanceRunner;
  readonly log?: (entry: Record<string, unknown>) => void;
  readonly region?: string;
  readonly accountId?: string;
  readonly engine?: Partial<EngineOptions>;
}

export class AutoScaling implements AutoScalingApi {
  readonly events = new TypedEmitter<AutoScalingEvents>();
  readonly region: string;
  readonly accountId: string;
  readonly #clock: Clock;
  readonly #store: StateStore;
  readonly #control: ControlApi;
  readonly #runner: InstanceRunner;
  readonly #log: (entry: Record<string, unknown>) => void;
  readonly #queue = new SerialQueue();
  readonly #state: AutoScalingState;
  readonly #templates: LaunchTemplateCatalog;
  readonly #lb: LoadBalancing;
  readonly #notifier: Notifier;
  readonly #engine: Engine;
  readonly #commands: GroupCommands;
  readonly #hooks: HookCommands;
  #timer: TimerHandle | null = null;
  #passQueued = false;
  #closed = false;
  /** Started held: no pass runs until `release` (the file's changes land first). */
  #held = false;
  readonly #unsubscribe: Array<() => void> = [];
  /** The Auto Scaling part of the configuration file as last applied (its stored form), or null. */
  #lastApplied: unknown = null;

  constructor(options: AutoScalingOptions) {
    this.#clock = options.clock;
    this.#store = options.store;
    this.#control = options.control;
    this.#runner = options.runner;
    this.#log = options.log ?? (() => undefined);
    this.region = options.region ?? options.control.region;
    this.accountId = options.accountId ?? options.control.accountId;
    this.#state = new AutoScalingState(options.store);
    this.#lb = new LoadBalancing(options.control);
    this.#notifier = new Notifier(this.#log);
    this.#templates = new LaunchTemplateCatalog({
      commit: (ops) => this.#state.commit(ops, () => undefined),
      clock: options.clock,
      usedBy: (id) =>
        [...this.#state.groups.values()]
          .filter((g) => g.launchTemplate.id === id || (g.launchTemplate.name !== undefined && this.#templates.find({ name: g.launchTemplate.name })?.id === id))
          .map((g) => g.name),
    });
    this.#engine = new Engine({
      state: this.#state,
      lb: this.#lb,
      runner: options.runner,
      templates: this.#templates,
      clock: options.clock,
      events: this.events,
      notifier: this.#notifier,
      accountId: this.accountId,
      log: this.#log,
      options: { ...DEFAULT_ENGINE_OPTIONS, ...options.engine },
      kick: () => this.#kick(),
      inQueue: (task) => {
        this.#queue.run(task).then(
          () => this.#kick(),
          (error: unknown) => this.#log({ event: 'autoscaling:step-failed', level: 'warn', error: describeError(error) }),
        );
      },
    });
    this.#commands = new GroupCommands({
      state: this.#state,
      engine: this.#engine,
      refresh: this.#engine.refreshPlanner,
      lb: this.#lb,
      templates: this.#templates,
      clock: options.clock,
      events: this.events,
      region: this.region,
      accountId: this.accountId,
    });
    this.#hooks = new HookCommands({ state: this.#state, clock: options.clock, notifier: this.#notifier, accountId: this.accountId, groups: this.#commands });
  }

  /** Loads the stored state, adopts the instances still running, stops strays, and starts the engine. */
  async start(options: { readonly held?: boolean } = {}): Promise<void> {
    this.#held = options.held === true;
    const loaded = await this.#store.load();
    const records = <T>(kind: StoreKind): T[] => [...(loaded.get(kind)?.values() ?? [])] as T[];
    this.#templates.restore(records<LaunchTemplateRecord>('launchTemplate'));
    for (const g of records<AutoScalingGroupRecord>('autoScalingGroup')) this.#state.groups.set(g.name, g);
    for (const h of records<LifecycleHookRecord>('lifecycleHook')) this.#state.hooks.set(hookKey(h.group, h.name), h);
    for (const r of records<InstanceRefreshRecord>('instanceRefresh')) this.#state.refreshes.set(r.id, r);
    for (const a of records<ScalingActivityRecord>('scalingActivity')) this.#state.activities.set(a.activityId, a);
    this.#lastApplied = loaded.get('meta')?.get(AUTOSCALING_LAST_APPLIED_KEY) ?? null;
    for (const i of records<AutoScalingInstanceRecord>('autoScalingInstance')) {
      this.#state.instances.set(i.instanceId, { ...i, entry: i.entry ?? 'launch' });
    }
    this.#runner.onExit((exit) => {
      void this.#queue.run(async () => this.#engine.onExit(exit.instanceId, exit.code, exit.signal)).then(() => this.#kick());
    });
    let adopted = 0;
    for (const i of this.#state.instances.values()) {
      if (i.origin !== 'launched' || i.process === undefined) continue;
      const found = this.#runner.adopt(i.instanceId);
      if (found !== null) adopted++;
      else this.#log({ event: 'autoscaling:instance-gone', level: 'warn', instance: i.instanceId, group: i.group, pid: i.process.pid, state: i.lifecycleState });
    }
    // A process recorded by the runner but by no instance record (a stop that ended with ebb): it is nobody's; stop it.
    for (const id of this.#runner.recorded()) {
      if (this.#state.instances.has(id)) continue;
      const stray = this.#runner.adopt(id);
      this.#log({ event: 'autoscaling:stray-instance', level: 'warn', instance: id, pid: stray?.pid ?? null, action: stray === null ? 'forgotten' : 'stopped' });
      if (stray === null) this.#runner.release(id);
      else void this.#runner.stop(id, 30_000);
    }
    const renotified = this.#engine.renotify();
    if (this.#state.instances.size > 0) this.#log({ event: 'autoscaling:restored', instances: this.#state.instances.size, adopted, groups: this.#state.groups.size, renotified });
    const onDrain = (): void => this.#kick();
    this.#unsubscribe.push(this.#control.events.on('drain:end', onDrain), this.#control.events.on('target:state', onDrain));
    this.#kick();
  }

  /** Stops the engine; instances run on and are adopted at the next start. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = null;
    for (const u of this.#unsubscribe.splice(0)) u();
    await this.#queue.run(async () => undefined);
    this.#notifier.close();
    this.#runner.close();
  }

  /**
   * Stops every instance ebb launched (SIGTERM, then SIGKILL after its stop timeout) and forgets them,
   * for a shutdown that takes the instances with it. The caller drains the data plane first, so no
   * instance is signalled while a request to it is in flight.
   */
  async stopInstances(): Promise<number> {
    // No more passes: a stopped process must not look like a crash to replace.
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = null;
    // The processes and the runner's timers hold nothing open; at shutdown nothing else does either,
    // and Node would exit before the instances had stopped.
    const keepAlive = setInterval(() => undefined, 1000);
    return this.#queue.run(async () => {
      const launched = [...this.#state.instances.values()].filter((i) => i.origin === 'launched' && this.#runner.isRunning(i.instanceId));
      await Promise.all(
        launched.map(async (i) => {
          const template = i.launchTemplate === undefined ? undefined : this.#templates.find({ id: i.launchTemplate.id });
          const timeout = (template?.versions.find((v) => v.versionNumber === i.launchTemplate?.version)?.data.stopTimeoutSeconds ?? 30) * 1000;
          const group = i.group === null ? undefined : this.#state.groups.get(i.group);
          // The data plane has finished its work by now: nothing is in flight to drain.
          if (group !== undefined) await this.#lb.deregister(i, this.#lb.targetGroupsOf(group), { timeoutSeconds: 0 });
          const result = await this.#runner.stop(i.instanceId, timeout);
          this.#log({ event: 'autoscaling:stopped-at-shutdown', instance: i.instanceId, by: result.by });
          await this.#state.commit([del('autoScalingInstance', i.instanceId)], () => this.#state.instances.delete(i.instanceId));
          await this.#lb.forget(i);
        }),
      );
      return launched.length;
    }).finally(() => clearInterval(keepAlive));
  }

  // ---------------------------------------------------------------- the engine's passes

  /** Lets the engine's passes run after a start with `held`: the configuration file has been applied. */
  release(): void {
    this.#held = false;
    this.#kick();
  }

  #kick(): void {
    if (this.#closed || this.#held || this.#passQueued) return;
    this.#passQueued = true;
    this.#queue
      .run(async () => {
        this.#passQueued = false;
        if (this.#closed) return;
        const wake = await this.#engine.pass();
        this.#schedule(wake);
      })
      .catch((error: unknown) => this.#log({ event: 'autoscaling:pass-failed', level: 'error', error: describeError(error) }));
  }

  #schedule(wake: number | undefined): void {
    this.#timer?.cancel();
    this.#timer = null;
    if (wake === undefined || this.#closed) return;
    this.#timer = this.#clock.setTimer(Math.max(0, wake - this.#clock.wallTime()), () => {
      this.#timer = null;
      this.#kick();
    });
  }

  /** Runs a command in the queue, then a pass to act on it. */
  #command<T>(task: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(ebbError('ServiceUnavailable', 'Auto Scaling is stopping; retry once ebb is back.'));
    const result = this.#queue.run(task);
    result.then(
      () => this.#kick(),
      () => undefined,
    );
    return result;
  }

  // ---------------------------------------------------------------- launch templates

  createLaunchTemplate(input: CreateLaunchTemplateInput): Promise<LaunchTemplateRecord> {
    return this.#command(() => this.#templates.create(input));
  }
  createLaunchTemplateVersion(input: CreateLaunchTemplateVersionInput): Promise<{ template: LaunchTemplateRecord; versionNumber: number }> {
    return this.#command(() => this.#templates.createVersion(input));
  }
  describeLaunchTemplates(filter?: { ids?: readonly string[]; names?: readonly string[] }): LaunchTemplateRecord[] {
    return this.#templates.describe(filter);
  }
  describeLaunchTemplateVersions(template: { id?: string; name?: string }, versions?: readonly string[]): Array<{ template: LaunchTemplateRecord; versionNumber: number }> {
    return this.#templates.describeVersions(template, versions);
  }
  modifyLaunchTemplate(template: { id?: string; name?: string }, defaultVersion: string): Promise<LaunchTemplateRecord> {
    return this.#command(() => this.#templates.modify(template, defaultVersion));
  }
  deleteLaunchTemplate(template: { id?: string; name?: string }): Promise<LaunchTemplateRecord> {
    return this.#command(() => this.#templates.delete(template));
  }
  deleteLaunchTemplateVersions(template: { id?: string; name?: string }, versions: readonly string[]) {
    return this.#command(() => this.#templates.deleteVersions(template, versions));
  }

  describeInstances(ids?: readonly string[]): Ec2InstanceView[] {
    const all = [...this.#state.instances.values()];
    if (ids !== undefined && ids.length > 0) {
      for (const id of ids) {
        if (!/^i-[0-9a-f]{8,17}$/.test(id)) throw ebbError('InvalidInstanceID.Malformed', `Invalid id: "${id}" (expecting "i-..." with 17 hexadecimal digits)`);
        if (!this.#state.instances.has(id)) throw ebbError('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
      }
    }
    return all.filter((i) => ids === undefined || ids.length === 0 || ids.includes(i.instanceId)).map((i) => this.#ec2View(i));
  }

  #ec2View(i: AutoScalingInstanceRecord): Ec2InstanceView {
    const state: Ec2InstanceView['state'] =
      i.lifecycleState === 'Terminated'
        ? 'terminated'
        : i.lifecycleState === 'Terminating:Proceed'
          ? 'shutting-down'
          : i.origin === 'launched' && i.process === undefined
            ? 'pending'
            : i.origin === 'launched' && !this.#runner.isRunning(i.instanceId)
              ? 'stopped'
              : 'running';
    return {
      instanceId: i.instanceId,
      state,
      privateIpAddress: i.address,
      port: i.port,
      launchTime: i.launchedAt,
      ...(i.launchTemplate === undefined ? {} : { launchTemplate: i.launchTemplate }),
      group: i.group,
      tags: i.tags,
      ...(i.process === undefined ? {} : { pid: i.process.pid, logFile: i.process.logFile }),
    };
  }

  // ---------------------------------------------------------------- groups

  createAutoScalingGroup(input: CreateGroupInput): Promise<AutoScalingGroupRecord> {
    return this.#command(() => this.#commands.create(input, 'api'));
  }
  /** The configuration file's side door: the same command, the group marked as the file's. */
  createDeclaredGroup(input: CreateGroupInput): Promise<AutoScalingGroupRecord> {
    return this.#command(() => this.#commands.create(input, 'config'));
  }
  updateAutoScalingGroup(input: UpdateGroupInput): Promise<AutoScalingGroupRecord> {
    return this.#command(() => this.#commands.update(input));
  }
  updateDeclaredGroup(input: UpdateGroupInput): Promise<AutoScalingGroupRecord> {
    return this.#command(() => this.#commands.update(input, 'config'));
  }
  deleteAutoScalingGroup(name: string, forceDelete: boolean): Promise<void> {
    return this.#command(() => this.#commands.delete(name, forceDelete));
  }
  describeAutoScalingGroups(names?: readonly string[]): Array<{ group: AutoScalingGroupRecord; instances: AutoScalingInstanceRecord[] }> {
    return [...this.#state.groups.values()]
      .filter((g) => names === undefined || names.length === 0 || names.includes(g.name))
      .map((group) => ({ group, instances: this.#state.instancesOf(group.name).filter((i) => i.lifecycleState !== 'Terminated') }));
  }
  describeAutoScalingInstances(instanceIds?: readonly string[]): AutoScalingInstanceRecord[] {
    return [...this.#state.instances.values()].filter(
      (i) => i.group !== null && i.lifecycleState !== 'Detached' && (instanceIds === undefined || instanceIds.length === 0 || instanceIds.includes(i.instanceId)),
    );
  }
  setDesiredCapacity(name: string, desiredCapacity: number): Promise<void> {
    return this.#command(() => this.#commands.setDesiredCapacity(name, desiredCapacity));
  }
  terminateInstanceInAutoScalingGroup(instanceId: string, shouldDecrementDesiredCapacity: boolean): Promise<ScalingActivityRecord> {
    return this.#command(() => this.#commands.terminate(instanceId, shouldDecrementDesiredCapacity));
  }
  setInstanceHealth(instanceId: string, healthStatus: 'Healthy' | 'Unhealthy', shouldRespectGracePeriod: boolean): Promise<void> {
    return this.#command(() => this.#commands.setInstanceHealth(instanceId, healthStatus, shouldRespectGracePeriod));
  }
  setInstanceProtection(group: string, instanceIds: readonly string[], protectedFromScaleIn: boolean): Promise<void> {
    return this.#command(() => this.#commands.setInstanceProtection(group, instanceIds, protectedFromScaleIn));
  }
  attachInstances(group: string, instanceIds: readonly string[]): Promise<void> {
    return this.#command(() => this.#commands.attachInstances(group, instanceIds));
  }
  detachInstances(group: string, instanceIds: readonly string[], shouldDecrementDesiredCapacity: boolean): Promise<ScalingActivityRecord[]> {
    return this.#command(() => this.#commands.detachInstances(group, instanceIds, shouldDecrementDesiredCapacity));
  }
  attachLoadBalancerTargetGroups(group: string, targetGroupArns: readonly string[]): Promise<void> {
    return this.#command(() => this.#commands.attachTargetGroups(group, targetGroupArns, []));
  }
  detachLoadBalancerTargetGroups(group: string, targetGroupArns: readonly string[]): Promise<void> {
    return this.#command(() => this.#commands.detachTargetGroups(group, targetGroupArns, []));
  }
  describeLoadBalancerTargetGroups(group: string): Array<{ targetGroupArn: string; state: 'Adding' | 'Added' | 'InService' | 'Removing' | 'Removed' }> {
    const g = this.#commands.group(group);
    return g.targetGroupArns.map((arn) => ({ targetGroupArn: arn, state: this.#attachmentState(g, [arn]) }));
  }
  attachLoadBalancers(group: string, names: readonly string[]): Promise<void> {
    return this.#command(() => this.#commands.attachTargetGroups(group, [], names));
  }
  detachLoadBalancers(group: string, names: readonly string[]): Promise<void> {
    return this.#command(() => this.#commands.detachTargetGroups(group, [], names));
  }
  describeLoadBalancers(group: string): Array<{ loadBalancerName: string; state: 'Adding' | 'Added' | 'InService' | 'Removing' | 'Removed' }> {
    const g = this.#commands.group(group);
    return g.loadBalancerNames.map((name) => ({ loadBalancerName: name, state: this.#attachmentState(g, this.#lb.classicTargetGroups(name)) }));
  }

  /** InService once an instance of the group passed a health check there (AWS's rule), else Added. */
  #attachmentState(g: AutoScalingGroupRecord, arns: readonly string[]): 'Added' | 'InService' {
    const members = this.#state.instancesOf(g.name).filter((i) => i.lifecycleState === 'InService');
    return members.some((i) => arns.length > 0 && this.#lb.healthy(i, arns)) ? 'InService' : 'Added';
  }

  enterStandby(group: string, instanceIds: readonly string[], shouldDecrementDesiredCapacity: boolean): Promise<ScalingActivityRecord[]> {
    return this.#command(() => this.#commands.enterStandby(group, instanceIds, shouldDecrementDesiredCapacity));
  }
  exitStandby(group: string, instanceIds: readonly string[]): Promise<ScalingActivityRecord[]> {
    return this.#command(() => this.#commands.exitStandby(group, instanceIds));
  }
  describeScalingActivities(filter: { group?: string; activityIds?: readonly string[]; maxRecords?: number }): ScalingActivityRecord[] {
    if (filter.group !== undefined) this.#commands.group(filter.group);
    const all = filter.group === undefined ? [...this.#state.activities.values()].sort((a, b) => b.startTime - a.startTime) : this.#state.activitiesOf(filter.group);
    const ids = filter.activityIds;
    return all.filter((a) => ids === undefined || ids.length === 0 || ids.includes(a.activityId)).slice(0, filter.maxRecords ?? 100);
  }
  createOrUpdateTags(group: string, tags: readonly Tag[]): Promise<void> {
    return this.#command(() => this.#commands.tags(group, tags, []));
  }
  deleteTags(group: string, keys: readonly string[]): Promise<void> {
    return this.#command(() => this.#commands.tags(group, [], keys));
  }

  // ---------------------------------------------------------------- the configuration file's side doors (src/autoscaling/declared.ts)

  /** The Auto Scaling part of the file as last applied, as it was stored (null: none kept). */
  lastAppliedDeclaration(): unknown {
    return this.#lastApplied;
  }
  recordAppliedDeclaration(stored: unknown): Promise<void> {
    return this.#queue.run(() => this.#state.commit([put('meta', AUTOSCALING_LAST_APPLIED_KEY, stored)], () => void (this.#lastApplied = stored)));
  }
  putDeclaredLaunchTemplate(template: DeclaredLaunchTemplate): Promise<DeclaredChange> {
    return this.#command(() => this.#templates.putDeclared(template));
  }
  /** A group made through the API that the file now declares: it is the file's from now on. */
  adoptDeclaredGroup(name: string): Promise<void> {
    return this.#command(async () => {
      const g = this.#commands.group(name);
      if (g.source !== 'config') await this.#state.commit([put('autoScalingGroup', name, { ...g, source: 'config' })], () => this.#state.groups.set(name, { ...g, source: 'config' }));
    });
  }
  /**
   * A group the file no longer declares goes as CloudFormation takes one away: every instance leaves
   * as in a scale-in (deregistered, drained, its terminating hooks run, then stopped), and the group
   * is deleted once none is left. Unlike ForceDelete, outstanding lifecycle actions are not abandoned.
   */
  deleteDeclaredGroup(name: string): Promise<void> {
    return this.#command(async () => {
      const g = this.#commands.group(name);
      if (g.deleting !== undefined) return;
      const now = this.#clock.wallTime();
      const refresh = this.#state.activeRefresh(name);
      const cancelled = refresh === undefined ? [] : [{ ...refresh, status: 'Cancelled' as const, endedAt: now, statusReason: 'The group was removed from the configuration file.' }];
      const next: AutoScalingGroupRecord = { ...g, minSize: 0, desiredCapacity: 0, deleting: { force: false, at: now } };
      await this.#state.commit([put('autoScalingGroup', name, next), ...cancelled.map((r) => put('instanceRefresh', r.id, r))], () => {
        this.#state.groups.set(name, next);
        for (const r of cancelled) this.#state.refreshes.set(r.id, r);
      });
    });
  }

  // ---------------------------------------------------------------- hooks

  putLifecycleHook(input: PutLifecycleHookInput): Promise<void> {
    return this.#command(() => this.#hooks.putHook(input, 'api'));
  }
  putDeclaredLifecycleHook(input: PutLifecycleHookInput): Promise<void> {
    return this.#command(() => this.#hooks.putHook(input, 'config'));
  }
  describeLifecycleHooks(group: string, names?: readonly string[]): LifecycleHookRecord[] {
    this.#commands.group(group);
    return this.#state.hooksOf(group).filter((h) => names === undefined || names.length === 0 || names.includes(h.name));
  }
  deleteLifecycleHook(group: string, name: string): Promise<void> {
    return this.#command(() => this.#hooks.deleteHook(group, name));
  }
  completeLifecycleAction(input: LifecycleActionInput & { result: 'CONTINUE' | 'ABANDON' }): Promise<void> {
    return this.#command(() => this.#hooks.completeAction(input));
  }
  recordLifecycleActionHeartbeat(input: LifecycleActionInput): Promise<void> {
    return this.#command(() => this.#hooks.heartbeat(input));
  }

  // ---------------------------------------------------------------- instance refresh

  startInstanceRefresh(input: StartInstanceRefreshInput): Promise<string> {
    return this.#command(() => this.#commands.startRefresh(input));
  }
  describeInstanceRefreshes(group: string, ids?: readonly string[]): InstanceRefreshView[] {
    return this.#commands.describeRefreshes(group, ids);
  }
  cancelInstanceRefresh(group: string): Promise<string> {
    return this.#command(() => this.#commands.cancelRefresh(group));
  }
  rollbackInstanceRefresh(group: string): Promise<string> {
    return this.#command(() => this.#commands.rollbackRefresh(group));
  }
}
