/**
 * The reconciler: one pass over every instance and group moves each as far as it can go now, and
 * says when it must look again. Every step is committed before the next one starts, so a crash at
 * any point resumes from the last step made (the pass is run again at start). The facade runs passes
 * in its serial queue; nothing here waits for a drain, a hook or a process: those are states, and
 * their ends (drain:end, a completed action, an exit) start another pass.
 *
 * An instance's way out is always: deregistration from every target group of the group → the
 * drains end → terminating hooks (Terminating:Wait) → SIGTERM → stop timeout → SIGKILL → Terminated.
 */
import { randomBytes } from 'node:crypto';
import type { InstanceRunner, StopResult } from '../domain/instance-runner.ts';
import type { StoreOp } from '../domain/store-port.ts';
import type { Clock } from '../shared/clock.ts';
import { describeError } from '../shared/errors.ts';
import type { TypedEmitter } from '../shared/typed-emitter.ts';
import { causes, causeTime, newActivity, progressed } from './activities.ts';
import type { AutoScalingEvents } from './events.ts';
import { chooseForScaleIn, countedInstances } from './groups.ts';
import { actionsOutcome, expireActions, LAUNCHING, lifecycleMessage, nextActionDeadline, startActions, TERMINATING } from './hooks.ts';
import type { LaunchTemplateCatalog } from './launch-templates.ts';
import type { LoadBalancing } from './load-balancing.ts';
import type { Notifier } from './notifications.ts';
import type {
  ActivityStatusCode,
  AutoScalingGroupRecord,
  AutoScalingInstanceRecord,
  Departure,
  LifecycleActionRecord,
  LifecycleHookRecord,
  ScalingActivityRecord,
} from './records.ts';
import { RefreshPlanner } from './refresh.ts';
import { del, hookKey, put, type AutoScalingState } from './state.ts';

export interface EngineOptions {
  /** First pause after a failed launch; it doubles with each failure in a row (default 2 s). */
  readonly launchBackoffBaseMs: number;
  /** The longest pause between failed launches (default 5 min). */
  readonly launchBackoffMaxMs: number;
  /** A process that exits this soon after it started counts as a failed launch (default 10 s). */
  readonly launchFailureWindowMs: number;
  /** How often a pass runs while something is on its way (default 1 s). */
  readonly tickMs: number;
}

export const DEFAULT_ENGINE_OPTIONS: EngineOptions = {
  launchBackoffBaseMs: 2000,
  launchBackoffMaxMs: 300_000,
  launchFailureWindowMs: 10_000,
  tickMs: 1000,
};

export interface EngineDeps {
  readonly state: AutoScalingState;
  readonly lb: LoadBalancing;
  readonly runner: InstanceRunner;
  readonly templates: LaunchTemplateCatalog;
  readonly clock: Clock;
  readonly events: TypedEmitter<AutoScalingEvents>;
  readonly notifier: Notifier;
  readonly accountId: string;
  readonly log: (entry: Record<string, unknown>) => void;
  readonly options: EngineOptions;
  /** Starts another pass soon (a stop finished in the background). */
  readonly kick: () => void;
  /** Runs `task` in the facade's serial queue. */
  readonly inQueue: (task: () => Promise<void>) => void;
}

interface Backoff {
  failures: number;
  /** Wall ms before which the group launches nothing. */
  until: number;
  reason: string;
  /** Wall ms of the failure that was counted last. */
  countedAt: number;
}

export function newInstanceId(): string {
  return `i-${randomBytes(9).toString('hex').slice(0, 17)}`;
}

export class Engine {
  readonly #d: EngineDeps;
  /** Instances whose process is being stopped now (a stop outlives a pass). */
  readonly #stopping = new Set<string>();
  /** Failed launches in a row, by group. */
  readonly #backoff = new Map<string, Backoff>();
  /** Why a group's capacity last changed: the first sentence of its next activities' causes. */
  readonly #capacityCause = new Map<string, string>();
  readonly #refresh: RefreshPlanner;

  constructor(deps: EngineDeps) {
    this.#d = deps;
    this.#refresh = new RefreshPlanner({
      state: deps.state,
      templates: deps.templates,
      clock: deps.clock,
      events: deps.events,
      ready: (i, g, warmup) => this.ready(i, g, warmup),
      depart: (i, departure, cause) => this.depart(i, departure, cause),
      launchFailures: (group) => this.#backoff.get(group)?.failures ?? 0,
    });
  }

  get refreshPlanner(): RefreshPlanner {
    return this.#refresh;
  }

  /** The first sentence of the next activities' causes for the group. */
  setCapacityCause(group: string, cause: string): void {
    this.#capacityCause.set(group, cause);
  }

  forgetGroup(group: string): void {
    this.#capacityCause.delete(group);
    this.#backoff.delete(group);
  }

  /** One pass. Resolves with the wall time of the next pass it needs (undefined: only when kicked). */
  async pass(): Promise<number | undefined> {
    await this.#advanceAll();
    for (const group of [...this.#d.state.groups.values()]) {
      try {
        await this.#capacity(group);
      } catch (error) {
        this.#d.log({ event: 'autoscaling:step-failed', level: 'warn', group: group.name, error: describeError(error) });
      }
    }
    // What the groups just launched or sent away moves on in the same pass.
    await this.#advanceAll();
    await this.#trimActivities();
    return this.#nextWake();
  }

  async #advanceAll(): Promise<void> {
    for (const id of [...this.#d.state.instances.keys()]) {
      // As far as it can go now: each step that changes its state is followed by the next.
      for (let steps = 0; steps < 8; steps++) {
        const instance = this.#d.state.instances.get(id);
        if (instance === undefined) break;
        try {
          await this.#advance(instance);
        } catch (error) {
          this.#d.log({ event: 'autoscaling:step-failed', level: 'warn', instance: id, state: instance.lifecycleState, error: describeError(error) });
          break;
        }
        if (this.#d.state.instances.get(id)?.lifecycleState === instance.lifecycleState) break;
      }
    }
  }

  /** Each group keeps its newest activities up to the limit. */
  async #trimActivities(): Promise<void> {
    const d = this.#d;
    const ids = [...new Set([...d.state.activities.values()].map((a) => a.group))].flatMap((g) => d.state.trimActivities(g, 0));
    if (ids.length > 0) await d.state.commit(ids.map((id) => del('scalingActivity', id)), () => ids.forEach((id) => d.state.activities.delete(id)));
  }

  /** A process exited: within the launch window, or before service, it is a failed launch. */
  onExit(instanceId: string, code: number | null, signal: string | null): void {
    const instance = this.#d.state.instances.get(instanceId);
    if (instance?.group == null || this.#stopping.has(instanceId) || instance.departure !== undefined) return;
    const early = instance.lifecycleState.startsWith('Pending') || this.#d.clock.wallTime() - instance.launchedAt < this.#d.options.launchFailureWindowMs;
    if (!early) return;
    const after = Math.max(0, this.#d.clock.wallTime() - instance.launchedAt);
    const how = signal === null ? `exited with code ${code ?? '?'}` : `was ended by ${signal}`;
    this.#launchFailed(instance.group, `Instance ${instanceId}'s process ${how} ${after} ms after it started (its output is in ${instance.process?.logFile ?? 'its log file'})`);
  }

  // ---------------------------------------------------------------- instances

  async #advance(i: AutoScalingInstanceRecord): Promise<void> {
    const d = this.#d;
    const group = i.group === null ? undefined : d.state.groups.get(i.group);
    const running = i.origin === 'attached' || (i.process !== undefined && d.runner.isRunning(i.instanceId));
    switch (i.lifecycleState) {
      case 'Pending': {
        if (i.origin === 'launched' && i.process === undefined) return this.#launchProcess(i, group);
        if (!running) return this.depart(i, this.#departure(i, 'terminate', 'health', true), causes.unhealthy(d.clock.wallTime(), i.instanceId, 'EC2'));
        const hooks = group === undefined ? [] : d.state.hooksOf(group.name).filter((h) => h.transition === LAUNCHING);
        if (i.entry === 'launch' && hooks.length > 0) {
          const actions = startActions(hooks, LAUNCHING, d.clock.wallTime());
          await this.update(i, { lifecycleState: 'Pending:Wait', actions }, { statusCode: 'MidLifecycleAction' });
          this.#notify(i, hooks, actions);
          return;
        }
        return this.update(i, { lifecycleState: 'Pending:Proceed' }, { statusCode: 'PreInService' });
      }
      case 'Pending:Wait': {
        if (!running) return this.depart(i, this.#departure(i, 'terminate', 'health', true), causes.unhealthy(d.clock.wallTime(), i.instanceId, 'EC2'));
        const outcome = await this.#expire(i);
        if (outcome === 'CONTINUE') return this.update(i, { lifecycleState: 'Pending:Proceed', actions: [] }, { statusCode: 'PreInService' });
        if (outcome === 'ABANDON') {
          await this.#endEntry(i, 'Failed', 'A launching lifecycle action was completed with ABANDON; the instance is terminated.');
          const now = this.#d.state.instances.get(i.instanceId) ?? i;
          return this.depart(now, this.#departure(now, 'terminate', 'launch-abandoned', true), `At ${new Date(d.clock.wallTime()).toISOString()} a launching lifecycle action for instance ${i.instanceId} was abandoned.`);
        }
        return;
      }
      case 'Pending:Proceed': {
        if (!running) return this.depart(i, this.#departure(i, 'terminate', 'health', true), causes.unhealthy(d.clock.wallTime(), i.instanceId, 'EC2'));
        if (group === undefined) return;
        await d.lb.register(i, d.lb.targetGroupsOf(group));
        const at = d.clock.wallTime();
        await this.update(i, { lifecycleState: 'InService', inServiceAt: at, healthStatus: 'Healthy', actions: [] });
        await this.#endEntry(d.state.instances.get(i.instanceId) ?? i, 'Successful');
        return;
      }
      case 'InService': {
        if (group === undefined) return;
        const now = d.clock.wallTime();
        if (!running) {
          await this.update(i, { healthStatus: 'Unhealthy' });
          return this.depart(d.state.instances.get(i.instanceId) ?? i, this.#departure(i, 'terminate', 'health', false), causes.unhealthy(now, i.instanceId, 'EC2'));
        }
        // Past the launch window and still running: the run of failed launches is over.
        if (i.origin === 'launched' && now - i.launchedAt >= d.options.launchFailureWindowMs) this.clearBackoff(group.name);
        if (i.healthStatus === 'Unhealthy') return this.#replaceUnhealthy(i, group, 'user');
        const graceOver = now >= (i.inServiceAt ?? now) + group.healthCheckGracePeriodSeconds * 1000;
        if (group.healthCheckType === 'ELB' && graceOver && d.lb.unhealthy(i, d.lb.targetGroupsOf(group))) return this.#replaceUnhealthy(i, group, 'ELB');
        return;
      }
      case 'Terminating':
      case 'EnteringStandby':
      case 'Detaching':
        return this.#leave(i, group);
      case 'Terminating:Wait': {
        const outcome = await this.#expire(i);
        if (outcome !== 'waiting') await this.update(i, { lifecycleState: 'Terminating:Proceed' }, { statusCode: 'InProgress' });
        return;
      }
      case 'Terminating:Proceed':
        return this.#stop(i);
      case 'Standby':
        if (!running) return this.#terminated(i, { by: 'none', exit: null }, 'The instance was in Standby and its process exited.');
        return;
      case 'Detached':
        // An attached server was never ebb's to watch; a launched one is watched until its process ends.
        if (!running || i.origin === 'attached') {
          await d.state.commit([del('autoScalingInstance', i.instanceId)], () => d.state.instances.delete(i.instanceId));
          await d.lb.forget(i);
        }
        return;
      case 'Terminated':
        await d.state.commit([del('autoScalingInstance', i.instanceId)], () => d.state.instances.delete(i.instanceId));
        await d.lb.forget(i);
        return;
    }
  }

  /** Deregistered everywhere and drained: on to the hooks, to Standby, or out of the group. */
  async #leave(i: AutoScalingInstanceRecord, group: AutoScalingGroupRecord | undefined): Promise<void> {
    const d = this.#d;
    const departure = i.departure;
    if (departure === undefined) return;
    // A launched instance is about to stop: it leaves every target group that holds it, the group's or
    // not (one detached from the group meanwhile); an attached server leaves its group's.
    const own = group === undefined ? [] : d.lb.targetGroupsOf(group);
    const tgs = i.origin === 'launched' ? [...new Set([...own, ...d.lb.holding(i)])] : own;
    await d.lb.deregister(i, tgs);
    if (!d.lb.drained(i, tgs)) {
      await this.#activity(departure.activityId, 'WaitingForELBConnectionDraining');
      return;
    }
    if (departure.kind === 'standby') {
      await this.update(i, { lifecycleState: 'Standby', departure: undefined });
      await this.#activity(departure.activityId, 'Successful');
      return;
    }
    if (departure.kind === 'detach') {
      await this.update(i, { lifecycleState: 'Detached', departure: undefined, group: null });
      await this.#activity(departure.activityId, 'Successful');
      return;
    }
    // ForceDelete skips the hooks of every instance, those already leaving when it came too.
    const skip = departure.skipHooks || group?.deleting?.force === true;
    const hooks = group === undefined || skip ? [] : d.state.hooksOf(group.name).filter((h) => h.transition === TERMINATING);
    if (hooks.length > 0) {
      const actions = startActions(hooks, TERMINATING, d.clock.wallTime());
      await this.update(i, { lifecycleState: 'Terminating:Wait', actions }, { statusCode: 'MidLifecycleAction' });
      this.#notify(i, hooks, actions);
      return;
    }
    await this.update(i, { lifecycleState: 'Terminating:Proceed' }, { statusCode: 'InProgress' });
  }

  /** SIGTERM only now, after the drain and the hooks; the stop finishes in the background. */
  async #stop(i: AutoScalingInstanceRecord): Promise<void> {
    const d = this.#d;
    if (i.origin === 'attached' || i.process === undefined || !d.runner.isRunning(i.instanceId)) {
      if (this.#stopping.has(i.instanceId)) return;
      return this.#terminated(i, { by: 'none', exit: null });
    }
    if (this.#stopping.has(i.instanceId)) return;
    this.#stopping.add(i.instanceId);
    const template = i.launchTemplate === undefined ? undefined : d.templates.find({ id: i.launchTemplate.id });
    const version = template?.versions.find((v) => v.versionNumber === i.launchTemplate?.version);
    const timeoutMs = (version?.data.stopTimeoutSeconds ?? 30) * 1000;
    d.log({ event: 'autoscaling:stop', instance: i.instanceId, pid: i.process.pid, stopTimeoutSeconds: timeoutMs / 1000 });
    d.runner.stop(i.instanceId, timeoutMs).then(
      (result) =>
        d.inQueue(async () => {
          this.#stopping.delete(i.instanceId);
          const now = d.state.instances.get(i.instanceId);
          if (now !== undefined) await this.#terminated(now, result);
        }),
      (error: unknown) => {
        this.#stopping.delete(i.instanceId);
        d.log({ event: 'autoscaling:stop-failed', level: 'error', instance: i.instanceId, error: describeError(error) });
        d.kick();
      },
    );
  }

  async #terminated(i: AutoScalingInstanceRecord, result: StopResult, note?: string): Promise<void> {
    const d = this.#d;
    const message =
      note ??
      (result.by === 'none' ? 'The instance was not running.' : result.by === 'SIGTERM' ? 'The instance exited after SIGTERM.' : 'The instance did not exit within its stop timeout and was killed (SIGKILL).');
    await this.update(i, { lifecycleState: 'Terminated', departure: undefined, actions: [] });
    if (i.departure !== undefined) await this.#activity(i.departure.activityId, 'Successful', message);
    await d.state.commit([del('autoScalingInstance', i.instanceId)], () => d.state.instances.delete(i.instanceId));
    await d.lb.forget(i);
  }

  async #launchProcess(i: AutoScalingInstanceRecord, group: AutoScalingGroupRecord | undefined): Promise<void> {
    const d = this.#d;
    const adopted = d.runner.adopt(i.instanceId);
    let started = adopted;
    if (started === null) {
      try {
        if (i.launchTemplate === undefined) throw new Error('the instance names no launch template');
        const resolved = d.templates.resolve({ id: i.launchTemplate.id, version: String(i.launchTemplate.version) });
        const data = resolved.data;
        const run = data.command !== undefined && data.command.length > 0 ? { argv: data.command } : { script: Buffer.from(data.userData ?? '', 'base64').toString('utf8') };
        started = await d.runner.launch({
          instanceId: i.instanceId,
          group: i.group ?? '',
          run,
          environment: data.environment ?? {},
          ...(data.workingDirectory === undefined ? {} : { workingDirectory: data.workingDirectory }),
        });
      } catch (error) {
        const message = group === undefined ? describeError(error) : this.#launchFailed(group.name, `Instance ${i.instanceId} could not be started: ${describeError(error)}`, false);
        await this.#endEntry(i, 'Failed', message);
        await d.state.commit([del('autoScalingInstance', i.instanceId)], () => d.state.instances.delete(i.instanceId));
        this.#lifecycle(i, 'Terminated');
        return;
      }
    }
    d.log({ event: 'autoscaling:launched', instance: i.instanceId, group: i.group, pid: started.pid, port: started.port, adopted: adopted !== null, log: started.logFile });
    await this.update(i, {
      port: started.port,
      launchedAt: started.launchedAt,
      process: { pid: started.pid, startTime: started.startTime, logFile: started.logFile },
    });
  }

  async #replaceUnhealthy(i: AutoScalingInstanceRecord, group: AutoScalingGroupRecord, check: 'ELB' | 'user'): Promise<void> {
    // AWS replaces at most a tenth of the desired capacity at a time (at least one).
    const limit = Math.max(1, Math.floor(group.desiredCapacity / 10));
    // In flight: instances leaving for their health, and instances not yet ready (their replacements
    // among them); the next goes once those are healthy and warmed up.
    const members = this.#d.state.instancesOf(group.name);
    const warmup = group.defaultInstanceWarmupSeconds ?? group.healthCheckGracePeriodSeconds;
    const leaving = members.filter((x) => x.departure?.reason === 'health').length;
    const unready = countedInstances(members).filter((x) => x.instanceId !== i.instanceId && !this.ready(x, group, warmup)).length;
    if (leaving + unready >= limit) return;
    if (i.healthStatus !== 'Unhealthy') await this.update(i, { healthStatus: 'Unhealthy' });
    const now = this.#d.state.instances.get(i.instanceId) ?? i;
    return this.depart(now, this.#departure(now, 'terminate', 'health', false), causes.unhealthy(this.#d.clock.wallTime(), i.instanceId, check));
  }

  // ---------------------------------------------------------------- groups

  async #capacity(group: AutoScalingGroupRecord): Promise<void> {
    const d = this.#d;
    const now = d.clock.wallTime();
    const members = d.state.instancesOf(group.name);
    if (group.deleting !== undefined) {
      for (const i of members) {
        if (i.departure !== undefined || i.lifecycleState.startsWith('Terminating') || i.lifecycleState === 'Terminated') continue;
        await this.depart(i, this.#departure(i, 'terminate', 'delete', group.deleting.force), causes.deleting(now, i.instanceId, group.deleting.force));
      }
      if (d.state.instancesOf(group.name).length === 0) await this.#deleteGroup(group);
      return;
    }
    if (group.registering !== undefined && group.registering.length > 0) await this.#joinAttached(group);
    const surge = await this.#refresh.step(group);
    // Counted after the refresh's step, which may have sent instances away.
    const counted = countedInstances(d.state.instancesOf(group.name));
    const target = group.desiredCapacity + surge;
    if (counted.length < target) {
      const backoff = this.#backoff.get(group.name);
      if (backoff !== undefined && now < backoff.until) return;
      for (let n = counted.length; n < target; n++) {
        await this.#launch(group, n, n + 1, surge > 0);
        // A launch that failed pauses the rest of the round too.
        if ((this.#backoff.get(group.name)?.until ?? 0) > d.clock.wallTime()) break;
      }
      this.#capacityCause.delete(group.name);
    } else if (counted.length > target) {
      const current = this.#currentTemplate(group);
      const victims = chooseForScaleIn(group, counted, counted.length - target, current);
      let size = counted.length;
      for (const v of victims) {
        await this.depart(v, this.#departure(v, 'terminate', 'scale-in', false), this.#withCause(group, causes.shrunk(now, size, size - 1, v.instanceId)));
        size--;
      }
      this.#capacityCause.delete(group.name);
    }
  }

  /** Registers the in-service instances in the target groups attached to the group, then clears the list. */
  async #joinAttached(group: AutoScalingGroupRecord): Promise<void> {
    const d = this.#d;
    const arns = group.registering ?? [];
    for (const i of d.state.instancesOf(group.name)) {
      if (i.lifecycleState === 'InService' && i.departure === undefined) await d.lb.register(i, arns);
    }
    const now = d.state.groups.get(group.name) ?? group;
    const { registering: _done, ...next } = now;
    await d.state.commit([put('autoScalingGroup', group.name, next)], () => d.state.groups.set(group.name, next));
  }

  async #launch(group: AutoScalingGroupRecord, from: number, to: number, forRefresh: boolean): Promise<void> {
    const d = this.#d;
    const now = d.clock.wallTime();
    let resolved;
    try {
      resolved = this.#refresh.launchTemplateFor(group) ?? d.templates.resolve(group.launchTemplate);
    } catch (error) {
      this.#launchFailed(group.name, describeError(error));
      return;
    }
    const instanceId = newInstanceId();
    const refresh = d.state.activeRefresh(group.name);
    const cause = forRefresh && refresh !== undefined ? causes.refreshLaunch(now, refresh.id) : this.#withCause(group, causes.launched(now, from, to));
    const activity = newActivity({ group: group.name, description: `Launching a new EC2 instance: ${instanceId}`, cause, at: now, details: { InstanceId: instanceId } });
    const instance: AutoScalingInstanceRecord = {
      instanceId,
      group: group.name,
      lifecycleState: 'Pending',
      healthStatus: 'Healthy',
      protectedFromScaleIn: group.newInstancesProtectedFromScaleIn,
      launchTemplate: { id: resolved.id, name: resolved.name, version: resolved.version },
      origin: 'launched',
      entry: 'launch',
      entryActivityId: activity.activityId,
      address: '127.0.0.1',
      port: 0,
      launchedAt: now,
      stateChangedAt: now,
      tags: [...(resolved.data.instanceTags ?? []), ...group.tags, { key: 'aws:autoscaling:groupName', value: group.name }],
    };
    const trimmed = d.state.trimActivities(group.name, 1);
    await d.state.commit([put('autoScalingInstance', instanceId, instance), put('scalingActivity', activity.activityId, activity), ...trimmed.map((id) => del('scalingActivity', id))], () => {
      for (const id of trimmed) d.state.activities.delete(id);
      d.state.instances.set(instanceId, instance);
      d.state.activities.set(activity.activityId, activity);
    });
    d.events.emit('autoscaling:activity', activity);
    this.#lifecycle(instance, 'Pending', null);
    await this.#launchProcess(instance, group);
  }

  async #deleteGroup(group: AutoScalingGroupRecord): Promise<void> {
    const d = this.#d;
    const hooks = d.state.hooksOf(group.name);
    const refreshes = d.state.refreshesOf(group.name);
    const activities = d.state.activitiesOf(group.name);
    const ops: StoreOp[] = [
      del('autoScalingGroup', group.name),
      ...hooks.map((h) => del('lifecycleHook', hookKey(h.group, h.name))),
      ...refreshes.map((r) => del('instanceRefresh', r.id)),
      ...activities.map((a) => del('scalingActivity', a.activityId)),
    ];
    await d.state.commit(ops, () => {
      d.state.groups.delete(group.name);
      for (const h of hooks) d.state.hooks.delete(hookKey(h.group, h.name));
      for (const r of refreshes) d.state.refreshes.delete(r.id);
      for (const a of activities) d.state.activities.delete(a.activityId);
    });
    this.forgetGroup(group.name);
    d.log({ event: 'autoscaling:group-deleted', group: group.name });
  }

  // ---------------------------------------------------------------- shared steps

  /**
   * Starts an instance's way out: its departure and activity committed, then its deregistration
   * from every target group (the drains start). The next passes follow it to the end.
   */
  async depart(i: AutoScalingInstanceRecord, departure: Departure, cause: string, activity?: ScalingActivityRecord): Promise<void> {
    await this.departAll([{ instance: i, departure, cause, ...(activity === undefined ? {} : { activity }) }]);
  }

  /**
   * Several departures, and the group change that goes with them (a lowered desired capacity), in one
   * commit: a crash cannot leave the capacity lowered without the instances on their way out.
   */
  async departAll(
    items: ReadonlyArray<{ instance: AutoScalingInstanceRecord; departure: Departure; cause: string; activity?: ScalingActivityRecord }>,
    group?: AutoScalingGroupRecord,
  ): Promise<void> {
    const d = this.#d;
    const made: Array<{ next: AutoScalingInstanceRecord; record: ScalingActivityRecord; from: AutoScalingInstanceRecord['lifecycleState'] }> = [];
    for (const { instance: i, departure, cause, activity } of items) {
      const state = departure.kind === 'terminate' ? 'Terminating' : departure.kind === 'standby' ? 'EnteringStandby' : 'Detaching';
      const description =
        departure.kind === 'terminate'
          ? `Terminating EC2 instance: ${i.instanceId}`
          : departure.kind === 'standby'
            ? `Moving EC2 instance to Standby: ${i.instanceId}`
            : `Detaching EC2 instance: ${i.instanceId}`;
      const record =
        activity ?? newActivity({ group: i.group ?? '', description, cause, at: d.clock.wallTime(), statusCode: 'InProgress', details: { InstanceId: i.instanceId } });
      if (i.entryActivityId !== undefined) await this.#endEntry(i, 'Cancelled', 'The instance left before it was in service.');
      const now = d.state.instances.get(i.instanceId) ?? i;
      const next: AutoScalingInstanceRecord = {
        ...now,
        lifecycleState: state,
        departure: { ...departure, activityId: record.activityId },
        actions: [],
        entryActivityId: undefined,
        stateChangedAt: d.clock.wallTime(),
      };
      made.push({ next, record, from: now.lifecycleState });
    }
    const ops = [
      ...(group === undefined ? [] : [put('autoScalingGroup', group.name, group)]),
      ...made.flatMap((m) => [put('autoScalingInstance', m.next.instanceId, m.next), put('scalingActivity', m.record.activityId, m.record)]),
    ];
    await d.state.commit(ops, () => {
      if (group !== undefined) d.state.groups.set(group.name, group);
      for (const m of made) {
        d.state.instances.set(m.next.instanceId, m.next);
        d.state.activities.set(m.record.activityId, m.record);
      }
    });
    for (const m of made) {
      d.events.emit('autoscaling:activity', m.record);
      this.#lifecycle(m.next, m.next.lifecycleState, m.from);
    }
    for (const m of made) {
      const g = m.next.group === null ? undefined : d.state.groups.get(m.next.group);
      if (g !== undefined) await d.lb.deregister(m.next, d.lb.targetGroupsOf(g));
    }
  }

  /** Commits a change to an instance; a state change is an event, and may move its activity. */
  async update(i: AutoScalingInstanceRecord, patch: Partial<AutoScalingInstanceRecord>, activity?: { statusCode: ActivityStatusCode }): Promise<void> {
    const d = this.#d;
    const current = d.state.instances.get(i.instanceId) ?? i;
    const stateChanged = patch.lifecycleState !== undefined && patch.lifecycleState !== current.lifecycleState;
    const next: AutoScalingInstanceRecord = { ...current, ...patch, ...(stateChanged ? { stateChangedAt: d.clock.wallTime() } : {}) };
    await d.state.commit([put('autoScalingInstance', i.instanceId, next)], () => d.state.instances.set(i.instanceId, next));
    if (stateChanged) this.#lifecycle(next, next.lifecycleState, current.lifecycleState);
    const activityId = next.departure?.activityId ?? next.entryActivityId;
    if (activity !== undefined && activityId !== undefined) await this.#activity(activityId, activity.statusCode);
  }

  /** Whether an instance is ready: in service, running, healthy in every target group, and warmed up. */
  ready(i: AutoScalingInstanceRecord, group: AutoScalingGroupRecord, warmupSeconds: number): boolean {
    if (i.lifecycleState !== 'InService' || i.departure !== undefined) return false;
    if (i.origin === 'launched' && !this.#d.runner.isRunning(i.instanceId)) return false;
    if (this.#d.clock.wallTime() < (i.inServiceAt ?? 0) + warmupSeconds * 1000) return false;
    return this.#d.lb.healthy(i, this.#d.lb.targetGroupsOf(group));
  }

  #departure(i: AutoScalingInstanceRecord, kind: Departure['kind'], reason: Departure['reason'], skipHooks: boolean): Departure {
    return { kind, decrement: false, activityId: '', skipHooks: skipHooks || i.origin === 'attached', reason };
  }

  async #expire(i: AutoScalingInstanceRecord): Promise<'waiting' | 'CONTINUE' | 'ABANDON'> {
    const actions = i.actions ?? [];
    const hooks = new Map<string, LifecycleHookRecord>(i.group === null ? [] : this.#d.state.hooksOf(i.group).map((h) => [h.name, h]));
    const expired = expireActions(actions, hooks, this.#d.clock.wallTime());
    if (expired.some((a, n) => a.result !== actions[n]?.result)) {
      await this.update(i, { actions: expired });
      for (const a of expired.filter((x, n) => x.result !== actions[n]?.result)) {
        this.#d.log({ event: 'autoscaling:lifecycle-action-timeout', instance: i.instanceId, hook: a.hookName, result: a.result });
      }
    }
    return actionsOutcome(expired);
  }

  /**
   * After a restart, each lifecycle action still waiting is notified again: its first notification
   * may have died with ebb. Delivery is at least once, as SNS and SQS deliver (a handler completes an
   * action once; a second CompleteLifecycleAction for it is refused).
   */
  renotify(): number {
    let sent = 0;
    for (const i of this.#d.state.instances.values()) {
      const waiting = (i.actions ?? []).filter((a) => a.result === undefined);
      if (waiting.length === 0 || i.group === null) continue;
      this.#notify(i, this.#d.state.hooksOf(i.group), waiting);
      sent += waiting.length;
    }
    return sent;
  }

  #notify(i: AutoScalingInstanceRecord, hooks: readonly LifecycleHookRecord[], actions: readonly LifecycleActionRecord[]): void {
    for (const a of actions) {
      const hook = hooks.find((h) => h.name === a.hookName);
      if (hook === undefined || i.group === null) continue;
      const message = lifecycleMessage({ accountId: this.#d.accountId, group: i.group, hook, instanceId: i.instanceId, token: a.token, at: a.startedAt });
      const url = hook.notificationTargetArn?.startsWith('http://') === true ? hook.notificationTargetArn : undefined;
      if (url !== undefined || hook.notificationCommand !== undefined) {
        this.#d.notifier.send({ ...(url === undefined ? {} : { url }), ...(hook.notificationCommand === undefined ? {} : { command: hook.notificationCommand }), message });
      }
    }
  }

  async #activity(activityId: string, statusCode: ActivityStatusCode, message?: string): Promise<void> {
    const d = this.#d;
    const a = d.state.activities.get(activityId);
    if (a === undefined || a.endTime !== undefined || (a.statusCode === statusCode && message === undefined)) return;
    const next = progressed(a, statusCode, d.clock.wallTime(), message);
    await d.state.commit([put('scalingActivity', activityId, next)], () => d.state.activities.set(activityId, next));
    d.events.emit('autoscaling:activity', next);
  }

  async #endEntry(i: AutoScalingInstanceRecord, statusCode: 'Successful' | 'Failed' | 'Cancelled', message?: string): Promise<void> {
    if (i.entryActivityId === undefined) return;
    await this.#activity(i.entryActivityId, statusCode, message);
    const now = this.#d.state.instances.get(i.instanceId);
    if (now !== undefined) {
      const next = { ...now, entryActivityId: undefined };
      await this.#d.state.commit([put('autoScalingInstance', i.instanceId, next)], () => this.#d.state.instances.set(i.instanceId, next));
    }
  }

  #lifecycle(i: AutoScalingInstanceRecord, to: AutoScalingInstanceRecord['lifecycleState'], from: AutoScalingInstanceRecord['lifecycleState'] | null = null): void {
    const waiting = to === 'Pending:Wait' || to === 'Terminating:Wait';
    this.#d.events.emit('autoscaling:lifecycle', { group: i.group, instanceId: i.instanceId, from, to, at: this.#d.clock.wallTime(), ...(waiting ? { actions: i.actions ?? [] } : {}) });
    this.#d.log({ event: 'autoscaling:lifecycle', group: i.group, instance: i.instanceId, from, to });
  }

  /**
   * Counts a failed launch and pauses the group's launches, doubling the pause with each failure in a
   * row. Failures seen together (several instances of one round) count once. Returns what the
   * activity says; `activity` false when the caller ends the launch's own activity with it.
   */
  #launchFailed(group: string, reason: string, activity = true): string {
    const d = this.#d;
    const now = d.clock.wallTime();
    const previous = this.#backoff.get(group);
    const sameRound = previous !== undefined && now < previous.countedAt + Math.min(1000, d.options.launchBackoffBaseMs);
    const failures = sameRound ? previous.failures : (previous?.failures ?? 0) + 1;
    const pause = Math.min(d.options.launchBackoffMaxMs, d.options.launchBackoffBaseMs * 2 ** (failures - 1));
    this.#backoff.set(group, { failures, until: sameRound ? previous.until : now + pause, reason, countedAt: sameRound ? previous.countedAt : now });
    d.log({ event: 'autoscaling:launch-failed', level: 'warn', group, failures, pauseMs: pause, reason });
    const message = `${reason}. ebb waits ${Math.round(pause / 1000)} s before the next launch (failure ${failures} in a row); fix the launch template, then update the group or create a new version.`;
    if (activity) void this.#failureActivity(group, message);
    return message;
  }

  async #failureActivity(group: string, message: string): Promise<void> {
    const d = this.#d;
    const at = d.clock.wallTime();
    const a = progressed(newActivity({ group, description: 'Launching a new EC2 instance.  Status Reason: the instance failed to start.', cause: this.#withCause(d.state.groups.get(group), `At ${causeTime(at)} an instance was started in response to a difference between desired and actual capacity.`), at }), 'Failed', at, message);
    const trimmed = d.state.trimActivities(group, 1);
    await d.state
      .commit([put('scalingActivity', a.activityId, a), ...trimmed.map((id) => del('scalingActivity', id))], () => {
        for (const id of trimmed) d.state.activities.delete(id);
        d.state.activities.set(a.activityId, a);
      })
      .catch(() => undefined);
    d.events.emit('autoscaling:activity', a);
  }

  /** A launch that got its process into service ends the run of failures. */
  clearBackoff(group: string): void {
    this.#backoff.delete(group);
  }

  /**
   * `what` after the sentence that says why the group's capacity changed (a SetDesiredCapacity, the
   * file), for the activities that answer that change; a later replacement has only its own.
   */
  #withCause(group: AutoScalingGroupRecord | undefined, what: string): string {
    const why = group === undefined ? undefined : this.#capacityCause.get(group.name);
    return why === undefined ? what : `${why}  ${what}`;
  }

  #currentTemplate(group: AutoScalingGroupRecord): { id: string; version: number } | undefined {
    try {
      const r = this.#d.templates.resolve(group.launchTemplate);
      return { id: r.id, version: r.version };
    } catch {
      return undefined;
    }
  }

  #nextWake(): number | undefined {
    const d = this.#d;
    const now = d.clock.wallTime();
    const wakes: number[] = [];
    let moving = this.#stopping.size > 0;
    for (const i of d.state.instances.values()) {
      const deadline = nextActionDeadline(i.actions ?? []);
      if (deadline !== undefined) wakes.push(deadline);
      if (i.lifecycleState !== 'InService' && i.lifecycleState !== 'Standby' && i.lifecycleState !== 'Detached') moving = true;
      const group = i.group === null ? undefined : d.state.groups.get(i.group);
      if (group?.healthCheckType === 'ELB' && i.inServiceAt !== undefined) {
        const graceEnd = i.inServiceAt + group.healthCheckGracePeriodSeconds * 1000;
        if (graceEnd > now) wakes.push(graceEnd);
      }
    }
    for (const [name, b] of this.#backoff) if (b.until > now && d.state.groups.has(name)) wakes.push(b.until);
    for (const g of d.state.groups.values()) {
      if (g.deleting !== undefined || d.state.activeRefresh(g.name) !== undefined) moving = true;
      // A group running with fewer instances than it wants (for example while a launch backs off) is looked at again.
      if (countedInstances(d.state.instancesOf(g.name)).length !== g.desiredCapacity) moving = true;
    }
    // A group with ELB health checks is looked at each tick: an unhealthy target is replaced.
    if ([...d.state.groups.values()].some((g) => g.healthCheckType === 'ELB')) moving = true;
    if (moving) wakes.push(now + d.options.tickMs);
    return wakes.length === 0 ? undefined : Math.max(now, Math.min(...wakes));
  }
}
