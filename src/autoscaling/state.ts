/**
 * Auto Scaling's records in memory, and the one way they change: commit the store operations, then
 * update the maps (as the control plane's StoreTransaction does). A failed commit changes nothing.
 */
import type { StateStore, StoreOp } from '../domain/store-port.ts';
import { del, StoreTransaction } from '../control/store-transaction.ts';
import type {
  AutoScalingGroupRecord,
  AutoScalingInstanceRecord,
  InstanceRefreshRecord,
  LifecycleHookRecord,
  ScalingActivityRecord,
} from './records.ts';

// The control plane's store operations: JSON drops `undefined` members, so records need no cleaning.
export { del, put } from '../control/store-transaction.ts';

export function hookKey(group: string, name: string): string {
  return `${group}|${name}`;
}

/** Activities kept per group, newest first (AWS keeps six weeks; ebb keeps a count). */
export const ACTIVITIES_PER_GROUP = 100;

export class AutoScalingState {
  readonly groups = new Map<string, AutoScalingGroupRecord>();
  readonly instances = new Map<string, AutoScalingInstanceRecord>();
  readonly hooks = new Map<string, LifecycleHookRecord>();
  readonly refreshes = new Map<string, InstanceRefreshRecord>();
  readonly activities = new Map<string, ScalingActivityRecord>();
  readonly #store: StoreTransaction;

  constructor(store: StateStore) {
    this.#store = new StoreTransaction(store, () => undefined);
  }

  /** Commits `ops` atomically, then runs `apply` (which must not throw). A store failure is StoreUnavailable. */
  async commit<T>(ops: readonly StoreOp[], apply: () => T): Promise<T> {
    // Auto Scaling publishes no routing snapshot: its target changes go through the control plane.
    return this.#store.transact(ops, apply, { publish: false });
  }

  instancesOf(group: string): AutoScalingInstanceRecord[] {
    return [...this.instances.values()].filter((i) => i.group === group);
  }

  hooksOf(group: string): LifecycleHookRecord[] {
    return [...this.hooks.values()].filter((h) => h.group === group);
  }

  refreshesOf(group: string): InstanceRefreshRecord[] {
    return [...this.refreshes.values()].filter((r) => r.group === group).sort((a, b) => b.startedAt - a.startedAt);
  }

  /** The refresh of the group that is not finished, if any. */
  activeRefresh(group: string): InstanceRefreshRecord | undefined {
    return this.refreshesOf(group).find((r) => ['Pending', 'InProgress', 'Cancelling', 'RollbackInProgress'].includes(r.status));
  }

  activitiesOf(group: string): ScalingActivityRecord[] {
    return [...this.activities.values()].filter((a) => a.group === group).sort((a, b) => b.startTime - a.startTime);
  }

  /** The ids of the oldest finished activities to drop so the group stays at the limit once `adding` more are added. */
  trimActivities(group: string, adding: number): string[] {
    const all = this.activitiesOf(group);
    const over = all.length + adding - ACTIVITIES_PER_GROUP;
    if (over <= 0) return [];
    return all
      .filter((a) => a.endTime !== undefined)
      .slice(-over)
      .map((a) => a.activityId);
  }

  /** Deletes a group with its hooks, refreshes and activities, in one commit. */
  async deleteGroup(name: string): Promise<void> {
    const hooks = this.hooksOf(name);
    const refreshes = this.refreshesOf(name);
    const activities = this.activitiesOf(name);
    const ops: StoreOp[] = [
      del('autoScalingGroup', name),
      ...hooks.map((h) => del('lifecycleHook', hookKey(h.group, h.name))),
      ...refreshes.map((r) => del('instanceRefresh', r.id)),
      ...activities.map((a) => del('scalingActivity', a.activityId)),
    ];
    await this.commit(ops, () => {
      this.groups.delete(name);
      for (const h of hooks) this.hooks.delete(hookKey(h.group, h.name));
      for (const r of refreshes) this.refreshes.delete(r.id);
      for (const a of activities) this.activities.delete(a.activityId);
    });
  }
}
