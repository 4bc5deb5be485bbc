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
import type { InstanceRunner, StopResult } from '../domain/instance-runner.ts';
import type { Clock } from '../shared/clock.ts';
import { describeError } from '../shared/errors.ts';
import type { TypedEmitter } from '../shared/typed-emitter.ts';
import { causes } from './activities.ts';
import type { AutoScalingEvents } from './events.ts';
import { chooseForScaleIn, countedInstances } from './groups.ts';
import { actionsOutcome, expireActions, LAUNCHING, nextActionDeadline, startActions, TERMINATING } from './hooks.ts';
import type { LaunchTemplateCatalog } from './launch-templates.ts';
import type { LoadBalancing } from './load-balancing.ts';
import type { Notifier } from './notifications.ts';
import type {
  AutoScalingGroupRecord,
  AutoScalingInstanceRecord,
  Departure,
  LifecycleHookRecord,
  ScalingActivityRecord,
} from './records.ts';
import { LaunchBackoff } from './launch-backoff.ts';
import { Launcher } from './launcher.ts';
import { RefreshPlanner } from './refresh.ts';
import { Transitions } from './transitions.ts';
import { del, put, type AutoScalingState } from './state.ts';

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


export class Engine {
  readonly #d: EngineDeps;
  /** Instances whose process is being stopped now (a stop outlives a pass). */
  readonly #stopping = new Set<string>();
  /** Failed launches in a row, by group. */
  readonly #backoff: LaunchBackoff;
  readonly #t: Transitions;
  readonly #launcher: Launcher;
  /** Why a group's capacity last changed: the first sentence of its next activities' causes. */
  readonly #capacityCause = new Map<string, string>();
  readonly #refresh: RefreshPlanner;

  constructor(deps: EngineDeps) {
    this.#d = deps;
    this.#backoff = new LaunchBackoff(deps.options.launchBackoffBaseMs, deps.options.launchBackoffMaxMs);
    this.#t = new Transitions(deps);
    this.#launcher = new Launcher({
      ...deps,
      transitions: this.#t,
      backoff: this.#backoff,
      withCause: (group, what) => this.#withCause(group, what),
      templateFor: (group) => this.#refresh.launchTemplateFor(group),
    });
    this.#refresh = new RefreshPlanner({
      state: deps.state,
      templates: deps.templates,
      clock: deps.clock,
      events: deps.events,
      ready: (i, g, warmup) => this.ready(i, g, warmup),
      depart: (i, departure, cause) => this.depart(i, departure, cause),
      launchFailures: (group) => this.#backoff.failures(group),
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
    this.#backoff.clear(group);
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
    this.#launcher.failed(instance.group, `Instance ${instanceId}'s process ${how} ${after} ms after it started (its output is in ${instance.process?.logFile ?? 'its log file'})`);
  }

  // ---------------------------------------------------------------- instances

  async #advance(i: AutoScalingInstanceRecord): Promise<void> {
    const d = this.#d;
    const group = i.group === null ? undefined : d.state.groups.get(i.group);
    const running = i.origin === 'attached' || (i.process !== undefined && d.runner.isRunning(i.instanceId));
    switch (i.lifecycleState) {
      case 'Pending': {
        if (i.origin === 'launched' && i.process === undefined) return this.#launcher.start(i, group);
        if (!running) return this.depart(i, this.#departure(i, 'terminate', 'health', true), causes.unhealthy(d.clock.wallTime(), i.instanceId, 'EC2'));
        const hooks = group === undefined ? [] : d.state.hooksOf(group.name).filter((h) => h.transition === LAUNCHING);
        if (i.entry === 'launch' && hooks.length > 0) {
          const actions = startActions(hooks, LAUNCHING, d.clock.wallTime());
          await this.#t.update(i, { lifecycleState: 'Pending:Wait', actions }, { statusCode: 'MidLifecycleAction' });
          this.#t.notify(i, hooks, actions);
          return;
        }
        return this.#t.update(i, { lifecycleState: 'Pending:Proceed' }, { statusCode: 'PreInService' });
      }
      case 'Pending:Wait': {
        if (!running) return this.depart(i, this.#departure(i, 'terminate', 'health', true), causes.unhealthy(d.clock.wallTime(), i.instanceId, 'EC2'));
        const outcome = await this.#expire(i);
        if (outcome === 'CONTINUE') return this.#t.update(i, { lifecycleState: 'Pending:Proceed', actions: [] }, { statusCode: 'PreInService' });
        if (outcome === 'ABANDON') {
          await this.#t.endEntry(i, 'Failed', 'A launching lifecycle action was completed with ABANDON; the instance is terminated.');
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
        await this.#t.update(i, { lifecycleState: 'InService', inServiceAt: at, healthStatus: 'Healthy', actions: [] });
        await this.#t.endEntry(d.state.instances.get(i.instanceId) ?? i, 'Successful');
        return;
      }
      case 'InService': {
        if (group === undefined) return;
        const now = d.clock.wallTime();
        if (!running) {
          await this.#t.update(i, { healthStatus: 'Unhealthy' });
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
        if (outcome !== 'waiting') await this.#t.update(i, { lifecycleState: 'Terminating:Proceed' }, { statusCode: 'InProgress' });
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
      await this.#t.activity(departure.activityId, 'WaitingForELBConnectionDraining');
      return;
    }
    if (departure.kind === 'standby') {
      await this.#t.update(i, { lifecycleState: 'Standby', departure: undefined });
      await this.#t.activity(departure.activityId, 'Successful');
      return;
    }
    if (departure.kind === 'detach') {
      await this.#t.update(i, { lifecycleState: 'Detached', departure: undefined, group: null });
      await this.#t.activity(departure.activityId, 'Successful');
      return;
    }
    // ForceDelete skips the hooks of every instance, those already leaving when it came too.
    const skip = departure.skipHooks || group?.deleting?.force === true;
    const hooks = group === undefined || skip ? [] : d.state.hooksOf(group.name).filter((h) => h.transition === TERMINATING);
    if (hooks.length > 0) {
      const actions = startActions(hooks, TERMINATING, d.clock.wallTime());
      await this.#t.update(i, { lifecycleState: 'Terminating:Wait', actions }, { statusCode: 'MidLifecycleAction' });
      this.#t.notify(i, hooks, actions);
      return;
    }
    await this.#t.update(i, { lifecycleState: 'Terminating:Proceed' }, { statusCode: 'InProgress' });
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
    await this.#t.update(i, { lifecycleState: 'Terminated', departure: undefined, actions: [] });
    if (i.departure !== undefined) await this.#t.activity(i.departure.activityId, 'Successful', message);
    await d.state.commit([del('autoScalingInstance', i.instanceId)], () => d.state.instances.delete(i.instanceId));
    await d.lb.forget(i);
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
    if (i.healthStatus !== 'Unhealthy') await this.#t.update(i, { healthStatus: 'Unhealthy' });
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
      if (d.state.instancesOf(group.name).length === 0) {
        await d.state.deleteGroup(group.name);
        this.forgetGroup(group.name);
        d.log({ event: 'autoscaling:group-deleted', group: group.name });
      }
      return;
    }
    if (group.registering !== undefined && group.registering.length > 0) await this.#joinAttached(group);
    const surge = await this.#refresh.step(group);
    // Counted after the refresh's step, which may have sent instances away.
    const counted = countedInstances(d.state.instancesOf(group.name));
    const target = group.desiredCapacity + surge;
    if (counted.length < target) {
      if (!this.#backoff.allows(group.name, now)) return;
      for (let n = counted.length; n < target; n++) {
        await this.#launcher.launch(group, n, n + 1, surge > 0);
        // A launch that failed pauses the rest of the round too.
        if (!this.#backoff.allows(group.name, d.clock.wallTime())) break;
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

  // ---------------------------------------------------------------- shared steps

  /**
   * Starts an instance's way out: its departure and activity committed, then its deregistration
   * from every target group (the drains start). The next passes follow it to the end.
   */
  async depart(i: AutoScalingInstanceRecord, departure: Departure, cause: string, activity?: ScalingActivityRecord): Promise<void> {
    await this.#t.departAll([{ instance: i, departure, cause, ...(activity === undefined ? {} : { activity }) }]);
  }

  /** Several departures and the group change that goes with them, in one commit (transitions.ts). */
  departAll(items: Parameters<Transitions['departAll']>[0], group?: AutoScalingGroupRecord): Promise<void> {
    return this.#t.departAll(items, group);
  }

  /** After a restart, each lifecycle action still waiting is notified again (transitions.ts). */
  renotify(): number {
    return this.#t.renotify();
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
      await this.#t.update(i, { actions: expired });
      for (const a of expired.filter((x, n) => x.result !== actions[n]?.result)) {
        this.#d.log({ event: 'autoscaling:lifecycle-action-timeout', instance: i.instanceId, hook: a.hookName, result: a.result });
      }
    }
    return actionsOutcome(expired);
  }

  /** A launch that got its process into service ends the run of failures. */
  clearBackoff(group: string): void {
    this.#backoff.clear(group);
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
    wakes.push(...this.#backoff.wakes(now, new Set(d.state.groups.keys())));
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
