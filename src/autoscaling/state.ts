/**
 * Auto Scaling's records in memory, and the one way they change: commit the store operations, then
 * update the maps (as the control plane's StoreTransaction does). A failed commit changes nothing.
 */
import type { StateStore, StoreKind, StoreOp } from '../domain/store-port.ts';
import { EbbError } from '../shared/errors.ts';
import type {
  AutoScalingGroupRecord,
  AutoScalingInstanceRecord,
  InstanceRefreshRecord,
  LifecycleHookRecord,
  ScalingActivityRecord,
} from './records.ts';

export function put(kind: StoreKind, key: string, value: unknown): StoreOp {
  return { op: 'put', kind, key, value: withoutUndefined(value) };
}

export function del(kind: StoreKind, key: string): StoreOp {
  return { op: 'delete', kind, key };
}

/** Stored records are plain JSON: no `undefined` members. */
function withoutUndefined(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutUndefined);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = withoutUndefined(v);
  return out;
}

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
  readonly #store: StateStore;

  constructor(store: StateStore) {
    this.#store = store;
  }

  /** Commits `ops` atomically, then runs `apply` (which must not throw). A store failure is StoreUnavailable. */
  async commit<T>(ops: readonly StoreOp[], apply: () => T): Promise<T> {
    if (ops.length > 0) {
      try {
        await this.#store.commit(ops);
      } catch (error) {
        if (EbbError.is(error)) throw error;
        throw new EbbError('StoreUnavailable', `The state store refused the change (${(error as Error).message}); nothing changed. Check the state directory's disk and permissions, then retry.`, {
          cause: error,
        });
      }
    }
    return apply();
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
