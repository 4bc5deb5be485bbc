/**
 * How an instance's changes are committed and told: each change of an instance (and the activity
 * it reports to) is one commit, then its lifecycle and activity events, then its log line. The
 * engine decides what changes; this room writes it down the same way every time.
 */
import type { Clock } from '../shared/clock.ts';
import type { TypedEmitter } from '../shared/typed-emitter.ts';
import { newActivity, progressed } from './activities.ts';
import type { AutoScalingEvents } from './events.ts';
import { lifecycleMessage } from './hooks.ts';
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
import { put, type AutoScalingState } from './state.ts';

export interface TransitionDeps {
  readonly state: AutoScalingState;
  readonly lb: LoadBalancing;
  readonly clock: Clock;
  readonly events: TypedEmitter<AutoScalingEvents>;
  readonly notifier: Notifier;
  readonly accountId: string;
  readonly log: (entry: Record<string, unknown>) => void;
}

export class Transitions {
  readonly #d: TransitionDeps;

  constructor(deps: TransitionDeps) {
    this.#d = deps;
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
      if (i.entryActivityId !== undefined) await this.endEntry(i, 'Cancelled', 'The instance left before it was in service.');
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
      this.lifecycle(m.next, m.next.lifecycleState, m.from);
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
    if (stateChanged) this.lifecycle(next, next.lifecycleState, current.lifecycleState);
    const activityId = next.departure?.activityId ?? next.entryActivityId;
    if (activity !== undefined && activityId !== undefined) await this.activity(activityId, activity.statusCode);
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
      this.notify(i, this.#d.state.hooksOf(i.group), waiting);
      sent += waiting.length;
    }
    return sent;
  }

  notify(i: AutoScalingInstanceRecord, hooks: readonly LifecycleHookRecord[], actions: readonly LifecycleActionRecord[]): void {
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

  async activity(activityId: string, statusCode: ActivityStatusCode, message?: string): Promise<void> {
    const d = this.#d;
    const a = d.state.activities.get(activityId);
    if (a === undefined || a.endTime !== undefined || (a.statusCode === statusCode && message === undefined)) return;
    const next = progressed(a, statusCode, d.clock.wallTime(), message);
    await d.state.commit([put('scalingActivity', activityId, next)], () => d.state.activities.set(activityId, next));
    d.events.emit('autoscaling:activity', next);
  }

  async endEntry(i: AutoScalingInstanceRecord, statusCode: 'Successful' | 'Failed' | 'Cancelled', message?: string): Promise<void> {
    if (i.entryActivityId === undefined) return;
    await this.activity(i.entryActivityId, statusCode, message);
    const now = this.#d.state.instances.get(i.instanceId);
    if (now !== undefined) {
      const next = { ...now, entryActivityId: undefined };
      await this.#d.state.commit([put('autoScalingInstance', i.instanceId, next)], () => this.#d.state.instances.set(i.instanceId, next));
    }
  }

  lifecycle(i: AutoScalingInstanceRecord, to: AutoScalingInstanceRecord['lifecycleState'], from: AutoScalingInstanceRecord['lifecycleState'] | null = null): void {
    const waiting = to === 'Pending:Wait' || to === 'Terminating:Wait';
    this.#d.events.emit('autoscaling:lifecycle', { group: i.group, instanceId: i.instanceId, from, to, at: this.#d.clock.wallTime(), ...(waiting ? { actions: i.actions ?? [] } : {}) });
    this.#d.log({ event: 'autoscaling:lifecycle', group: i.group, instance: i.instanceId, from, to });
  }

  /** A failed launch of the group, as a Failed activity of its own. */
  async failedLaunch(group: string, cause: string, message: string): Promise<void> {
    const d = this.#d;
    const at = d.clock.wallTime();
    const a = progressed(newActivity({ group, description: 'Launching a new EC2 instance.  Status Reason: the instance failed to start.', cause, at }), 'Failed', at, message);
    await d.state.commit([put('scalingActivity', a.activityId, a)], () => d.state.activities.set(a.activityId, a));
    d.events.emit('autoscaling:activity', a);
  }
}
