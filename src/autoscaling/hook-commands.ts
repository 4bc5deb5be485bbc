/**
 * The commands on lifecycle hooks and their actions: PutLifecycleHook (and its test notification),
 * DeleteLifecycleHook (completing what it held as AWS does), CompleteLifecycleAction and
 * RecordLifecycleActionHeartbeat, by token or by instance id. The engine acts on what they commit.
 */
import type { Clock } from '../shared/clock.ts';
import { ebbError } from '../shared/errors.ts';
import type { LifecycleActionInput, PutLifecycleHookInput } from './autoscaling-api.ts';
import type { GroupCommands } from './group-commands.ts';
import { MAX_HOOKS_PER_GROUP } from './groups.ts';
import { buildHook, LAUNCHING, testMessage } from './hooks.ts';
import type { Notifier } from './notifications.ts';
import type { AutoScalingInstanceRecord, LifecycleActionRecord } from './records.ts';
import { del, hookKey, put, type AutoScalingState } from './state.ts';

export interface HookCommandDeps {
  readonly state: AutoScalingState;
  readonly clock: Clock;
  readonly notifier: Notifier;
  readonly accountId: string;
  /** Finds groups (and refuses one being deleted) as every command does. */
  readonly groups: Pick<GroupCommands, 'group' | 'live'>;
}

export class HookCommands {
  readonly #d: HookCommandDeps;
  readonly #groups: HookCommandDeps['groups'];

  constructor(deps: HookCommandDeps) {
    this.#d = deps;
    this.#groups = deps.groups;
  }

  async putHook(input: PutLifecycleHookInput, source: 'api' | 'config'): Promise<void> {
    const d = this.#d;
    const g = this.#groups.live(input.group);
    const key = hookKey(input.group, input.name);
    const existing = d.state.hooks.get(key);
    if (existing === undefined && d.state.hooksOf(input.group).length >= MAX_HOOKS_PER_GROUP) {
      throw ebbError('LimitExceeded', `The group ${input.group} has ${MAX_HOOKS_PER_GROUP} lifecycle hooks, the most a group may have.`);
    }
    const hook = buildHook(input, existing, source);
    await d.state.commit([put('lifecycleHook', key, hook)], () => d.state.hooks.set(key, hook));
    const url = hook.notificationTargetArn?.startsWith('http://') === true ? hook.notificationTargetArn : undefined;
    if (url !== undefined || hook.notificationCommand !== undefined) {
      const message = testMessage({ accountId: d.accountId, group: g.name, groupArn: g.arn, at: d.clock.wallTime() });
      d.notifier.send({ ...(url === undefined ? {} : { url }), ...(hook.notificationCommand === undefined ? {} : { command: hook.notificationCommand }), message });
    }
  }

  async deleteHook(group: string, name: string): Promise<void> {
    const d = this.#d;
    this.#groups.group(group);
    const key = hookKey(group, name);
    if (!d.state.hooks.has(key)) throw ebbError('ValidationError', `No Lifecycle Hook found with name ${name} for group ${group}.`);
    // Outstanding actions of the hook complete as AWS completes them: ABANDON launching, CONTINUE terminating.
    const completed = d.state
      .instancesOf(group)
      .filter((i) => (i.actions ?? []).some((a) => a.hookName === name && a.result === undefined))
      .map((i) => ({
        ...i,
        actions: (i.actions ?? []).map((a) => (a.hookName === name && a.result === undefined ? { ...a, result: a.transition === LAUNCHING ? ('ABANDON' as const) : ('CONTINUE' as const) } : a)),
      }));
    await d.state.commit([del('lifecycleHook', key), ...completed.map((i) => put('autoScalingInstance', i.instanceId, i))], () => {
      d.state.hooks.delete(key);
      for (const i of completed) d.state.instances.set(i.instanceId, i);
    });
  }

  #findAction(input: LifecycleActionInput): { instance: AutoScalingInstanceRecord; action: LifecycleActionRecord } {
    const d = this.#d;
    this.#groups.group(input.group);
    if (input.token === undefined && input.instanceId === undefined) {
      throw ebbError('ValidationError', 'Either LifecycleActionToken or InstanceId is required to name the lifecycle action.');
    }
    for (const instance of d.state.instancesOf(input.group)) {
      if (input.instanceId !== undefined && instance.instanceId !== input.instanceId) continue;
      const action = (instance.actions ?? []).find((a) => a.hookName === input.hookName && a.result === undefined && (input.token === undefined || a.token === input.token));
      if (action !== undefined) return { instance, action };
    }
    const named = input.token !== undefined ? `token ${input.token}` : `instance ${input.instanceId ?? ''}`;
    throw ebbError('ValidationError', `No active Lifecycle Action found with ${named} for hook ${input.hookName} of group ${input.group}: it may have completed or timed out already.`);
  }

  async completeAction(input: LifecycleActionInput & { result: 'CONTINUE' | 'ABANDON' }): Promise<void> {
    const d = this.#d;
    if (input.result !== 'CONTINUE' && input.result !== 'ABANDON') throw ebbError('ValidationError', `LifecycleActionResult must be CONTINUE or ABANDON; got ${String(input.result)}.`);
    const { instance, action } = this.#findAction(input);
    const next = { ...instance, actions: (instance.actions ?? []).map((a) => (a === action ? { ...a, result: input.result } : a)) };
    await d.state.commit([put('autoScalingInstance', instance.instanceId, next)], () => d.state.instances.set(instance.instanceId, next));
  }

  async heartbeat(input: LifecycleActionInput): Promise<void> {
    const d = this.#d;
    const { instance, action } = this.#findAction(input);
    const hook = d.state.hooks.get(hookKey(input.group, input.hookName));
    const timeout = (hook?.heartbeatTimeoutSeconds ?? 3600) * 1000;
    const extended = { ...action, heartbeatDeadline: Math.min(action.globalDeadline, d.clock.wallTime() + timeout) };
    const next = { ...instance, actions: (instance.actions ?? []).map((a) => (a === action ? extended : a)) };
    await d.state.commit([put('autoScalingInstance', instance.instanceId, next)], () => d.state.instances.set(instance.instanceId, next));
  }
}
