/**
 * The commands on groups, their instances, hooks and refreshes: each checks everything first (a
 * refused command commits nothing), commits, and leaves the rest to the engine's next pass. They run
 * in the facade's serial queue.
 */
import { randomUUID } from 'node:crypto';
import type { Tag } from '../domain/resources.ts';
import { mergeTags, removeTagKeys, validateTags } from '../domain/tag-rules.ts';
import type { Clock } from '../shared/clock.ts';
import { ebbError } from '../shared/errors.ts';
import type { TypedEmitter } from '../shared/typed-emitter.ts';
import { causes, newActivity } from './activities.ts';
import type { CreateGroupInput, StartInstanceRefreshInput, UpdateGroupInput } from './autoscaling-api.ts';
import type { Engine } from './engine.ts';
import type { AutoScalingEvents } from './events.ts';
import { checkGroupName, checkHealthCheck, checkSizes, checkTerminationPolicies, checkWarmup, countedInstances, MAX_GROUPS, MAX_HOOKS_PER_GROUP } from './groups.ts';
import { buildHook } from './hooks.ts';
import type { LaunchTemplateCatalog } from './launch-templates.ts';
import type { LoadBalancing } from './load-balancing.ts';
import type { AutoScalingGroupRecord, AutoScalingInstanceRecord, ScalingActivityRecord } from './records.ts';
import type { RefreshPlanner } from './refresh.ts';
import { isActive } from './refresh.ts';
import { hookKey, put, type AutoScalingState } from './state.ts';

export interface GroupCommandDeps {
  readonly state: AutoScalingState;
  readonly engine: Engine;
  readonly refresh: RefreshPlanner;
  readonly lb: LoadBalancing;
  readonly templates: LaunchTemplateCatalog;
  readonly clock: Clock;
  readonly events: TypedEmitter<AutoScalingEvents>;
  readonly region: string;
  readonly accountId: string;
}

export class GroupCommands {
  readonly #d: GroupCommandDeps;

  constructor(deps: GroupCommandDeps) {
    this.#d = deps;
  }

  groupArn(name: string): string {
    // Each group its own UUID, as on AWS: a group deleted and made again under its name is another group.
    return `arn:aws:autoscaling:${this.#d.region}:${this.#d.accountId}:autoScalingGroup:${randomUUID()}:autoScalingGroupName/${name}`;
  }

  group(name: string): AutoScalingGroupRecord {
    const g = this.#d.state.groups.get(name);
    if (g === undefined) throw ebbError('ValidationError', `AutoScalingGroup name not found - AutoScalingGroup ${name} not found. DescribeAutoScalingGroups lists the groups.`);
    return g;
  }

  /** A group that is not being deleted. */
  live(name: string): AutoScalingGroupRecord {
    const g = this.group(name);
    if (g.deleting !== undefined) throw ebbError('ScalingActivityInProgress', `The AutoScalingGroup ${name} is being deleted; it takes no other changes.`);
    return g;
  }

  instance(instanceId: string, group?: string): AutoScalingInstanceRecord {
    const i = this.#d.state.instances.get(instanceId);
    if (i === undefined || i.group === null) throw ebbError('ValidationError', `Instance Id not found - No managed instance found for instance ID ${instanceId}.`);
    if (group !== undefined && i.group !== group) throw ebbError('ValidationError', `The instance ${instanceId} is not part of Auto Scaling group ${group}.`);
    return i;
  }

  async create(input: CreateGroupInput, source: 'api' | 'config'): Promise<AutoScalingGroupRecord> {
    const d = this.#d;
    checkGroupName(input.name);
    if (d.state.groups.has(input.name)) throw ebbError('AlreadyExists', `AutoScalingGroup by this name already exists - A group with the name ${input.name} already exists.`);
    if (d.state.groups.size >= MAX_GROUPS) throw ebbError('LimitExceeded', `You have reached ebb's limit of ${MAX_GROUPS} Auto Scaling groups; delete one first.`);
    d.templates.resolve(input.launchTemplate);
    const desired = input.desiredCapacity ?? input.minSize;
    checkSizes(input.minSize, input.maxSize, desired);
    const healthCheckType = input.healthCheckType ?? 'EC2';
    const grace = input.healthCheckGracePeriodSeconds ?? 0;
    checkHealthCheck(healthCheckType, grace);
    checkWarmup(input.defaultInstanceWarmupSeconds);
    const terminationPolicies = checkTerminationPolicies(input.terminationPolicies ?? ['Default']);
    const targetGroupArns = [...new Set(input.targetGroupArns ?? [])];
    const loadBalancerNames = [...new Set(input.loadBalancerNames ?? [])];
    d.lb.checkAttachments(targetGroupArns, loadBalancerNames);
    const tags = validateTags(input.tags ?? []);
    const hooks = (input.lifecycleHooks ?? []).map((h) => buildHook({ ...h, group: input.name }, undefined, source));
    if (hooks.length > MAX_HOOKS_PER_GROUP) throw ebbError('LimitExceeded', `A group may have at most ${MAX_HOOKS_PER_GROUP} lifecycle hooks.`);
    const now = d.clock.wallTime();
    const group: AutoScalingGroupRecord = {
      name: input.name,
      arn: this.groupArn(input.name),
      launchTemplate: input.launchTemplate,
      minSize: input.minSize,
      maxSize: input.maxSize,
      desiredCapacity: desired,
      targetGroupArns,
      loadBalancerNames,
      healthCheckType,
      healthCheckGracePeriodSeconds: grace,
      ...(input.defaultInstanceWarmupSeconds === undefined || input.defaultInstanceWarmupSeconds < 0 ? {} : { defaultInstanceWarmupSeconds: input.defaultInstanceWarmupSeconds }),
      terminationPolicies,
      newInstancesProtectedFromScaleIn: input.newInstancesProtectedFromScaleIn ?? false,
      tags,
      createdAt: now,
      source,
    };
    await d.state.commit([put('autoScalingGroup', group.name, group), ...hooks.map((h) => put('lifecycleHook', hookKey(h.group, h.name), h))], () => {
      d.state.groups.set(group.name, group);
      for (const h of hooks) d.state.hooks.set(hookKey(h.group, h.name), h);
    });
    d.engine.setCapacityCause(group.name, causes.desiredChanged(now, 0, desired, source === 'config' ? 'config' : 'create'));
    return group;
  }

  async update(input: UpdateGroupInput, source: 'api' | 'config' = 'api'): Promise<AutoScalingGroupRecord> {
    const d = this.#d;
    const g = this.live(input.name);
    if (input.launchTemplate !== undefined) d.templates.resolve(input.launchTemplate);
    const minSize = input.minSize ?? g.minSize;
    const maxSize = input.maxSize ?? g.maxSize;
    // As AWS: a new MinSize above the desired capacity raises it; a new MaxSize below lowers it.
    let desired = input.desiredCapacity ?? g.desiredCapacity;
    if (input.desiredCapacity === undefined) desired = Math.min(maxSize, Math.max(minSize, desired));
    checkSizes(minSize, maxSize, desired);
    const healthCheckType = input.healthCheckType ?? g.healthCheckType;
    const grace = input.healthCheckGracePeriodSeconds ?? g.healthCheckGracePeriodSeconds;
    checkHealthCheck(healthCheckType, grace);
    checkWarmup(input.defaultInstanceWarmupSeconds);
    const terminationPolicies = input.terminationPolicies === undefined ? g.terminationPolicies : checkTerminationPolicies(input.terminationPolicies);
    const warmup = input.defaultInstanceWarmupSeconds === undefined ? g.defaultInstanceWarmupSeconds : input.defaultInstanceWarmupSeconds < 0 ? undefined : input.defaultInstanceWarmupSeconds;
    const { defaultInstanceWarmupSeconds: _w, ...rest } = g;
    const next: AutoScalingGroupRecord = {
      ...rest,
      ...(input.launchTemplate === undefined ? {} : { launchTemplate: input.launchTemplate }),
      minSize,
      maxSize,
      desiredCapacity: desired,
      healthCheckType,
      healthCheckGracePeriodSeconds: grace,
      ...(warmup === undefined ? {} : { defaultInstanceWarmupSeconds: warmup }),
      terminationPolicies,
      newInstancesProtectedFromScaleIn: input.newInstancesProtectedFromScaleIn ?? g.newInstancesProtectedFromScaleIn,
    };
    await d.state.commit([put('autoScalingGroup', next.name, next)], () => d.state.groups.set(next.name, next));
    if (desired !== g.desiredCapacity) d.engine.setCapacityCause(g.name, causes.desiredChanged(d.clock.wallTime(), g.desiredCapacity, desired, source === 'config' ? 'config' : 'user'));
    return next;
  }

  async delete(name: string, force: boolean): Promise<void> {
    const d = this.#d;
    const g = this.group(name);
    const members = d.state.instancesOf(name);
    if (!force && members.length > 0) {
      throw ebbError('ResourceInUse', `You cannot delete an AutoScalingGroup while there are instances still in the group: ${name} has ${members.length}. Set its desired capacity (and MinSize) to 0 first, or delete it with ForceDelete (every instance still drains before it stops).`);
    }
    if (!force && d.state.activeRefresh(name) !== undefined) {
      throw ebbError('ScalingActivityInProgress', `You cannot delete an AutoScalingGroup while an instance refresh is in progress for it; cancel it first, or use ForceDelete.`);
    }
    const now = d.clock.wallTime();
    const refresh = d.state.activeRefresh(name);
    const cancelled = refresh === undefined ? [] : [{ ...refresh, status: 'Cancelled' as const, endedAt: now, statusReason: 'The group was deleted.' }];
    // ForceDelete abandons outstanding lifecycle actions, as AWS does; the drains still run.
    const abandoned = members
      .filter((i) => (i.actions ?? []).some((a) => a.result === undefined))
      .map((i) => ({ ...i, actions: (i.actions ?? []).map((a) => (a.result === undefined ? { ...a, result: 'ABANDON' as const } : a)) }));
    const next: AutoScalingGroupRecord = { ...g, minSize: 0, desiredCapacity: 0, deleting: { force, at: now } };
    await d.state.commit(
      [put('autoScalingGroup', name, next), ...cancelled.map((r) => put('instanceRefresh', r.id, r)), ...abandoned.map((i) => put('autoScalingInstance', i.instanceId, i))],
      () => {
        d.state.groups.set(name, next);
        for (const r of cancelled) d.state.refreshes.set(r.id, r);
        for (const i of abandoned) d.state.instances.set(i.instanceId, i);
      },
    );
  }

  async setDesiredCapacity(name: string, desired: number): Promise<void> {
    const d = this.#d;
    const g = this.live(name);
    if (!Number.isInteger(desired) || desired < 0) throw ebbError('ValidationError', `DesiredCapacity must be a whole number of 0 or more; got ${desired}.`);
    if (desired > g.maxSize) throw ebbError('ValidationError', `New SetDesiredCapacity value ${desired} is above max value ${g.maxSize} for the AutoScalingGroup.`);
    if (desired < g.minSize) throw ebbError('ValidationError', `New SetDesiredCapacity value ${desired} is below min value ${g.minSize} for the AutoScalingGroup.`);
    if (desired === g.desiredCapacity) return;
    const next = { ...g, desiredCapacity: desired };
    await d.state.commit([put('autoScalingGroup', name, next)], () => d.state.groups.set(name, next));
    d.engine.setCapacityCause(name, causes.desiredChanged(d.clock.wallTime(), g.desiredCapacity, desired, 'user'));
  }

  /** Lowers the desired capacity by `n` for instances leaving with ShouldDecrementDesiredCapacity. */
  /** The group with its desired capacity lowered by `n` (committed by the caller with the departures), or the refusal. */
  #decrement(g: AutoScalingGroupRecord, n: number, what: string): AutoScalingGroupRecord {
    if (g.desiredCapacity - n < g.minSize) {
      throw ebbError(
        'ValidationError',
        `${what} with ShouldDecrementDesiredCapacity would take the desired capacity from ${g.desiredCapacity} to ${g.desiredCapacity - n}, below the group's min size ${g.minSize}. ` +
          'Either set ShouldDecrementDesiredCapacity to false or lower the group\'s MinSize.',
      );
    }
    return { ...g, desiredCapacity: g.desiredCapacity - n };
  }

  /** Instance ids named in one call, each once (AWS refuses a repeated id too). */
  #instances(ids: readonly string[], group: string): AutoScalingInstanceRecord[] {
    const seen = new Set<string>();
    for (const id of ids) {
      if (seen.has(id)) throw ebbError('ValidationError', `The instance ${id} is named twice in one request; name each instance once.`);
      seen.add(id);
    }
    return ids.map((id) => this.instance(id, group));
  }

  #checkCanLeave(i: AutoScalingInstanceRecord): void {
    if (i.departure !== undefined || i.lifecycleState.startsWith('Terminating') || i.lifecycleState === 'Terminated') {
      throw ebbError('ValidationError', `The instance ${i.instanceId} is already leaving the group (${i.lifecycleState}).`);
    }
  }

  async terminate(instanceId: string, decrement: boolean): Promise<ScalingActivityRecord> {
    const d = this.#d;
    const i = this.instance(instanceId);
    const g = this.live(i.group ?? '');
    this.#checkCanLeave(i);
    const counted = countedInstances(d.state.instancesOf(g.name)).length;
    const counts = countedInstances([i]).length === 1;
    const lowered = decrement && counts ? this.#decrement(g, 1, `Terminating ${instanceId}`) : undefined;
    const now = d.clock.wallTime();
    const activity = newActivity({
      group: g.name,
      description: `Terminating EC2 instance: ${instanceId}`,
      cause: causes.userTerminated(now, instanceId, decrement, counted, decrement && counts ? counted - 1 : counted),
      at: now,
      details: { InstanceId: instanceId },
    });
    await d.engine.departAll([{ instance: i, departure: { kind: 'terminate', decrement, activityId: activity.activityId, skipHooks: false, reason: 'user' }, cause: activity.cause, activity }], lowered);
    return d.state.activities.get(activity.activityId) ?? activity;
  }

  async setInstanceHealth(instanceId: string, health: 'Healthy' | 'Unhealthy', respectGrace: boolean): Promise<void> {
    const d = this.#d;
    if (health !== 'Healthy' && health !== 'Unhealthy') throw ebbError('ValidationError', `HealthStatus must be Healthy or Unhealthy; got ${String(health)}.`);
    const i = this.instance(instanceId);
    const g = this.group(i.group ?? '');
    if (health === 'Unhealthy' && respectGrace && i.inServiceAt !== undefined && d.clock.wallTime() < i.inServiceAt + g.healthCheckGracePeriodSeconds * 1000) return;
    if (i.departure !== undefined || i.healthStatus === health) return;
    const next = { ...i, healthStatus: health };
    await d.state.commit([put('autoScalingInstance', instanceId, next)], () => d.state.instances.set(instanceId, next));
  }

  async setInstanceProtection(group: string, ids: readonly string[], flag: boolean): Promise<void> {
    const d = this.#d;
    this.group(group);
    const next = this.#instances(ids, group).map((i) => ({ ...i, protectedFromScaleIn: flag }));
    await d.state.commit(
      next.map((i) => put('autoScalingInstance', i.instanceId, i)),
      () => next.forEach((i) => d.state.instances.set(i.instanceId, i)),
    );
  }

  async attachInstances(group: string, ids: readonly string[]): Promise<void> {
    const d = this.#d;
    const g = this.live(group);
    const known = new Map(d.lb.knownInstances().map((i) => [i.id, i]));
    if (new Set(ids).size !== ids.length) throw ebbError('ValidationError', 'An instance is named twice in one request; name each instance once.');
    for (const id of ids) {
      if (!known.has(id)) throw ebbError('ValidationError', `Instance ${id} is not one ebb knows: declare it under instances: in the file (id and address) before attaching it.`);
      if (d.state.instances.has(id)) throw ebbError('ValidationError', `Instance ${id} is already part of an Auto Scaling group (or launched by ebb).`);
    }
    if (g.desiredCapacity + ids.length > g.maxSize) {
      throw ebbError('ValidationError', `Attaching ${ids.length} instance(s) would take ${group} to ${g.desiredCapacity + ids.length}, above its max size ${g.maxSize}.`);
    }
    const now = d.clock.wallTime();
    const port = d.lb.defaultPort(g);
    const next = { ...g, desiredCapacity: g.desiredCapacity + ids.length };
    const made = ids.map((id) => {
      const activity = newActivity({ group, description: `Attaching an existing EC2 instance: ${id}`, cause: causes.attached(now, id, next.desiredCapacity), at: now, details: { InstanceId: id } });
      const instance: AutoScalingInstanceRecord = {
        instanceId: id,
        group,
        lifecycleState: 'Pending',
        healthStatus: 'Healthy',
        protectedFromScaleIn: g.newInstancesProtectedFromScaleIn,
        origin: 'attached',
        entry: 'attach',
        entryActivityId: activity.activityId,
        address: known.get(id)?.address ?? '127.0.0.1',
        port,
        launchedAt: now,
        stateChangedAt: now,
        tags: [{ key: 'aws:autoscaling:groupName', value: group }],
      };
      return { activity, instance };
    });
    await d.state.commit(
      [put('autoScalingGroup', group, next), ...made.flatMap((m) => [put('autoScalingInstance', m.instance.instanceId, m.instance), put('scalingActivity', m.activity.activityId, m.activity)])],
      () => {
        d.state.groups.set(group, next);
        for (const m of made) {
          d.state.instances.set(m.instance.instanceId, m.instance);
          d.state.activities.set(m.activity.activityId, m.activity);
        }
      },
    );
    for (const m of made) d.events.emit('autoscaling:activity', m.activity);
  }

  async detachInstances(group: string, ids: readonly string[], decrement: boolean): Promise<ScalingActivityRecord[]> {
    const d = this.#d;
    const g = this.live(group);
    const instances = this.#instances(ids, group);
    instances.forEach((i) => this.#checkCanLeave(i));
    const counting = countedInstances(instances).length;
    const before = countedInstances(d.state.instancesOf(group)).length;
    const lowered = decrement && counting > 0 ? this.#decrement(g, counting, `Detaching ${counting} instance(s)`) : undefined;
    const now = d.clock.wallTime();
    let size = before;
    const items = instances.map((i) => {
      const to = countedInstances([i]).length === 1 ? size - 1 : size;
      const activity = newActivity({ group, description: `Detaching EC2 instance: ${i.instanceId}`, cause: causes.detached(now, i.instanceId, size, to), at: now, details: { InstanceId: i.instanceId } });
      size = to;
      return { instance: i, departure: { kind: 'detach' as const, decrement, activityId: activity.activityId, skipHooks: true, reason: 'user' as const }, cause: activity.cause, activity };
    });
    await d.engine.departAll(items, lowered);
    return items.map((x) => d.state.activities.get(x.activity.activityId) ?? x.activity);
  }

  async enterStandby(group: string, ids: readonly string[], decrement: boolean): Promise<ScalingActivityRecord[]> {
    const d = this.#d;
    const g = this.live(group);
    const instances = this.#instances(ids, group);
    for (const i of instances) {
      if (i.lifecycleState !== 'InService') throw ebbError('ValidationError', `The instance ${i.instanceId} is not in InService (it is ${i.lifecycleState}); only InService instances can enter Standby.`);
    }
    const before = countedInstances(d.state.instancesOf(group)).length;
    const lowered = decrement ? this.#decrement(g, instances.length, `Moving ${instances.length} instance(s) to Standby`) : undefined;
    const now = d.clock.wallTime();
    let size = before;
    const items = instances.map((i) => {
      const cause = decrement ? causes.standby(now, i.instanceId, size, size - 1) : causes.standbyKept(now, i.instanceId);
      size--;
      const activity = newActivity({ group, description: `Moving EC2 instance to Standby: ${i.instanceId}`, cause, at: now, progress: 50, details: { InstanceId: i.instanceId } });
      return { instance: i, departure: { kind: 'standby' as const, decrement, activityId: activity.activityId, skipHooks: true, reason: 'user' as const }, cause, activity };
    });
    await d.engine.departAll(items, lowered);
    return items.map((x) => d.state.activities.get(x.activity.activityId) ?? x.activity);
  }

  async exitStandby(group: string, ids: readonly string[]): Promise<ScalingActivityRecord[]> {
    const d = this.#d;
    const g = this.live(group);
    const instances = this.#instances(ids, group);
    for (const i of instances) {
      if (i.lifecycleState !== 'Standby') throw ebbError('ValidationError', `The instance ${i.instanceId} is not in Standby (it is ${i.lifecycleState}).`);
    }
    if (g.desiredCapacity + instances.length > g.maxSize) {
      throw ebbError('ValidationError', `Moving ${instances.length} instance(s) out of Standby would take ${group}'s desired capacity to ${g.desiredCapacity + instances.length}, above its max size ${g.maxSize}; raise MaxSize first.`);
    }
    const now = d.clock.wallTime();
    const before = countedInstances(d.state.instancesOf(group)).length;
    const next = { ...g, desiredCapacity: g.desiredCapacity + instances.length };
    const made = instances.map((i, n) => {
      const activity = newActivity({
        group,
        description: `Moving EC2 instance out of Standby: ${i.instanceId}`,
        cause: causes.exitStandby(now, i.instanceId, before + n, before + n + 1),
        at: now,
        statusCode: 'PreInService',
        progress: 30,
        details: { InstanceId: i.instanceId },
      });
      const instance: AutoScalingInstanceRecord = { ...i, lifecycleState: 'Pending', entry: 'standby', entryActivityId: activity.activityId, stateChangedAt: now };
      return { activity, instance, from: i.lifecycleState };
    });
    await d.state.commit(
      [put('autoScalingGroup', group, next), ...made.flatMap((m) => [put('autoScalingInstance', m.instance.instanceId, m.instance), put('scalingActivity', m.activity.activityId, m.activity)])],
      () => {
        d.state.groups.set(group, next);
        for (const m of made) {
          d.state.instances.set(m.instance.instanceId, m.instance);
          d.state.activities.set(m.activity.activityId, m.activity);
        }
      },
    );
    for (const m of made) {
      d.events.emit('autoscaling:activity', m.activity);
      d.events.emit('autoscaling:lifecycle', { group, instanceId: m.instance.instanceId, from: m.from, to: 'Pending', at: now });
    }
    return made.map((m) => m.activity);
  }

  async attachTargetGroups(group: string, arns: readonly string[], names: readonly string[]): Promise<void> {
    const d = this.#d;
    const g = this.live(group);
    d.lb.checkAttachments(arns, names);
    const added = { targetGroupArns: [...new Set([...g.targetGroupArns, ...arns])], loadBalancerNames: [...new Set([...g.loadBalancerNames, ...names])] };
    const fresh = d.lb.targetGroupsOf(added).filter((a) => !d.lb.targetGroupsOf(g).includes(a));
    // Instances already in service join the new target groups in the next pass (`registering` is
    // committed with the change, so a crash between cannot leave them out); new ones on their way in.
    const next = { ...g, ...added, registering: [...new Set([...(g.registering ?? []), ...fresh])] };
    await d.state.commit([put('autoScalingGroup', group, next)], () => d.state.groups.set(group, next));
  }

  async detachTargetGroups(group: string, arns: readonly string[], names: readonly string[]): Promise<void> {
    const d = this.#d;
    const g = this.live(group);
    const before = d.lb.targetGroupsOf(g);
    const kept = { targetGroupArns: g.targetGroupArns.filter((a) => !arns.includes(a)), loadBalancerNames: g.loadBalancerNames.filter((n) => !names.includes(n)) };
    const after = new Set(d.lb.targetGroupsOf(kept));
    const removed = before.filter((a) => !after.has(a));
    // Deregistered (with their drains, as AWS does) before the change is committed: a crash between
    // leaves the group as it was, and the call is retried.
    for (const i of d.state.instancesOf(group)) await d.lb.deregister(i, removed);
    const next = { ...g, ...kept, registering: (g.registering ?? []).filter((a) => after.has(a)) };
    await d.state.commit([put('autoScalingGroup', group, next)], () => d.state.groups.set(group, next));
  }

  async tags(group: string, add: readonly Tag[], removeKeys: readonly string[]): Promise<void> {
    const d = this.#d;
    const g = this.group(group);
    const tags = removeKeys.length > 0 ? removeTagKeys(g.tags, removeKeys) : validateTags(mergeTags(g.tags, add));
    const next = { ...g, tags };
    await d.state.commit([put('autoScalingGroup', group, next)], () => d.state.groups.set(group, next));
  }

  // ---------------------------------------------------------------- instance refresh

  async startRefresh(input: StartInstanceRefreshInput): Promise<string> {
    const d = this.#d;
    const g = this.live(input.group);
    const { refresh, groupTemplate } = d.refresh.plan(g, input);
    const next = groupTemplate === undefined ? g : { ...g, launchTemplate: groupTemplate };
    await d.state.commit([put('instanceRefresh', refresh.id, refresh), put('autoScalingGroup', g.name, next)], () => {
      d.state.refreshes.set(refresh.id, refresh);
      d.state.groups.set(g.name, next);
    });
    return refresh.id;
  }

  async cancelRefresh(group: string): Promise<string> {
    const d = this.#d;
    this.group(group);
    const r = d.state.activeRefresh(group);
    if (r === undefined || r.status === 'Cancelling') throw ebbError('ActiveInstanceRefreshNotFound', `No in progress or pending Instance Refresh found for Auto Scaling group ${group}.`);
    const next = { ...r, status: 'Cancelling' as const, statusReason: 'Cancelling: instances already leaving finish their drain; no more are replaced.' };
    await d.state.commit([put('instanceRefresh', r.id, next)], () => d.state.refreshes.set(r.id, next));
    return r.id;
  }

  async rollbackRefresh(group: string): Promise<string> {
    const d = this.#d;
    const g = this.group(group);
    const r = d.state.activeRefresh(group);
    if (r === undefined) throw ebbError('ActiveInstanceRefreshNotFound', `No in progress or pending Instance Refresh found for Auto Scaling group ${group}.`);
    const next = d.refresh.rollback(r);
    const nextGroup = { ...g, launchTemplate: r.previousRef ?? r.previous };
    await d.state.commit([put('instanceRefresh', r.id, next), put('autoScalingGroup', group, nextGroup)], () => {
      d.state.refreshes.set(r.id, next);
      d.state.groups.set(group, nextGroup);
    });
    return r.id;
  }

  describeRefreshes(group: string, ids?: readonly string[]) {
    const d = this.#d;
    this.group(group);
    return d.state
      .refreshesOf(group)
      .filter((r) => ids === undefined || ids.length === 0 || ids.includes(r.id))
      .map((r) => ({ ...r, percentageComplete: d.refresh.percentage(r), instancesToUpdate: isActive(r) ? r.toReplace.length - r.replaced.length : 0 }));
  }
}
