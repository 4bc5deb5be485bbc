/**
 * Instance refresh: replaces a group's instances with instances of its (new) launch template, under
 * AWS's rules. With MaxHealthyPercentage above 100, new instances launch first (up to that share of
 * the desired capacity) and old ones drain as new ones become ready; at 100, old instances drain and
 * stop in batches that keep MinHealthyPercentage of the desired capacity ready, at least one at a
 * time. "Ready" is in service, healthy in every target group, and past the instance warm-up. Either
 * way every old instance goes the whole way out: deregistration, the drain, the hooks, SIGTERM.
 */
import { randomUUID } from 'node:crypto';
import { ebbError } from '../shared/errors.ts';
import type { Clock } from '../shared/clock.ts';
import type { TypedEmitter } from '../shared/typed-emitter.ts';
import type { StartInstanceRefreshInput } from './autoscaling-api.ts';
import { causes } from './activities.ts';
import type { AutoScalingEvents } from './events.ts';
import { countedInstances } from './groups.ts';
import type { LaunchTemplateCatalog } from './launch-templates.ts';
import type {
  AutoScalingGroupRecord,
  AutoScalingInstanceRecord,
  Departure,
  InstanceRefreshRecord,
  InstanceRefreshStatus,
  RefreshPreferences,
  ResolvedTemplate,
} from './records.ts';
import { put, type AutoScalingState } from './state.ts';

/** Refreshes kept per group once finished (AWS keeps them for a while). */
const FINISHED_KEPT = 20;
/** Failed launches in a row that fail a refresh. */
const FAILED_LAUNCHES_TO_FAIL = 5;

export interface RefreshDeps {
  readonly state: AutoScalingState;
  readonly templates: LaunchTemplateCatalog;
  readonly clock: Clock;
  readonly events: TypedEmitter<AutoScalingEvents>;
  readonly ready: (i: AutoScalingInstanceRecord, group: AutoScalingGroupRecord, warmupSeconds: number) => boolean;
  readonly depart: (i: AutoScalingInstanceRecord, departure: Departure, cause: string) => Promise<void>;
  readonly launchFailures: (group: string) => number;
}

const ACTIVE: ReadonlySet<InstanceRefreshStatus> = new Set(['Pending', 'InProgress', 'Cancelling', 'RollbackInProgress']);

export function isActive(r: InstanceRefreshRecord): boolean {
  return ACTIVE.has(r.status);
}

/** The preferences a StartInstanceRefresh gets, AWS's defaults filled in, checked. */
export function refreshPreferences(group: AutoScalingGroupRecord, given: Partial<RefreshPreferences> | undefined): RefreshPreferences {
  const p = given ?? {};
  const min = p.minHealthyPercentage ?? 90;
  const max = p.maxHealthyPercentage ?? 100;
  if (!Number.isInteger(min) || min < 0 || min > 100) throw ebbError('ValidationError', `MinHealthyPercentage must be a whole number from 0 to 100; got ${min}.`);
  if (!Number.isInteger(max) || max < 100 || max > 200) throw ebbError('ValidationError', `MaxHealthyPercentage must be a whole number from 100 to 200; got ${max}.`);
  if (max - min > 100) throw ebbError('ValidationError', `MaxHealthyPercentage (${max}) may be at most 100 above MinHealthyPercentage (${min}).`);
  if (min === 100 && max === 100) {
    throw ebbError('ValidationError', 'MinHealthyPercentage 100 with MaxHealthyPercentage 100 leaves no room to replace an instance: raise MaxHealthyPercentage above 100, or lower MinHealthyPercentage.');
  }
  const warmup = p.instanceWarmupSeconds ?? group.defaultInstanceWarmupSeconds ?? group.healthCheckGracePeriodSeconds;
  if (!Number.isInteger(warmup) || warmup < 0 || warmup > 172_800) throw ebbError('ValidationError', `InstanceWarmup must be a whole number of seconds from 0 to 172800; got ${warmup}.`);
  const checkpoints = p.checkpointPercentages ?? [];
  for (let n = 0; n < checkpoints.length; n++) {
    const c = checkpoints[n] ?? 0;
    if (!Number.isInteger(c) || c < 1 || c > 100 || (n > 0 && c <= (checkpoints[n - 1] ?? 0))) {
      throw ebbError('ValidationError', 'CheckpointPercentages must be whole numbers from 1 to 100 in ascending order, each once.');
    }
  }
  const delay = p.checkpointDelaySeconds ?? 3600;
  if (!Number.isInteger(delay) || delay < 0 || delay > 172_800) throw ebbError('ValidationError', `CheckpointDelay must be a whole number of seconds from 0 to 172800; got ${delay}.`);
  return { minHealthyPercentage: min, maxHealthyPercentage: max, instanceWarmupSeconds: warmup, skipMatching: p.skipMatching ?? false, checkpointPercentages: checkpoints, checkpointDelaySeconds: delay };
}

export class RefreshPlanner {
  readonly #d: RefreshDeps;

  constructor(deps: RefreshDeps) {
    this.#d = deps;
  }

  /** The record a StartInstanceRefresh creates (its template resolved to a version now), and the group's new template if it names one. */
  plan(group: AutoScalingGroupRecord, input: StartInstanceRefreshInput): { refresh: InstanceRefreshRecord; groupTemplate?: AutoScalingGroupRecord['launchTemplate'] } {
    if (this.#d.state.activeRefresh(group.name) !== undefined) {
      throw ebbError('InstanceRefreshInProgress', `An instance refresh is already in progress for ${group.name}: wait for it, or cancel it with CancelInstanceRefresh.`);
    }
    const preferences = refreshPreferences(group, input.preferences);
    const ref = input.desiredConfiguration?.launchTemplate ?? group.launchTemplate;
    const resolved = this.#d.templates.resolve(ref);
    const target = { id: resolved.id, version: String(resolved.version) };
    const previous = (() => {
      try {
        const r = this.#d.templates.resolve(group.launchTemplate);
        return { id: r.id, version: String(r.version) };
      } catch {
        return group.launchTemplate;
      }
    })();
    const members = countedInstances(this.#d.state.instancesOf(group.name));
    const toReplace = members.filter((i) => !(preferences.skipMatching && matches(i, resolved))).map((i) => i.instanceId);
    const refresh: InstanceRefreshRecord = {
      id: randomUUID(),
      group: group.name,
      status: 'Pending',
      startedAt: this.#d.clock.wallTime(),
      preferences,
      target,
      previous,
      previousRef: group.launchTemplate,
      withDesiredConfiguration: input.desiredConfiguration?.launchTemplate !== undefined,
      toReplace,
      replaced: [],
    };
    return { refresh, ...(input.desiredConfiguration?.launchTemplate === undefined ? {} : { groupTemplate: ref }) };
  }

  /** The record a RollbackInstanceRefresh turns the active refresh into: back to the template before it. */
  rollback(refresh: InstanceRefreshRecord): InstanceRefreshRecord {
    if (refresh.status === 'RollbackInProgress') throw ebbError('IrreversibleInstanceRefresh', 'The instance refresh is already rolling back.');
    if (refresh.status === 'Cancelling') throw ebbError('IrreversibleInstanceRefresh', 'The instance refresh is being cancelled; it cannot be rolled back now.');
    if (refresh.withDesiredConfiguration !== true) {
      throw ebbError(
        'IrreversibleInstanceRefresh',
        'The instance refresh was started without a DesiredConfiguration, so there is no earlier configuration to roll back to; cancel it instead (CancelInstanceRefresh), or start refreshes with --desired-configuration to be able to roll them back.',
      );
    }
    const previous = this.#d.templates.resolve(refresh.previous);
    const members = countedInstances(this.#d.state.instancesOf(refresh.group));
    return {
      ...refresh,
      status: 'RollbackInProgress',
      statusReason: 'Rolling back: replacing instances launched by the refresh with instances of the launch template it replaced.',
      target: refresh.previous,
      toReplace: members.filter((i) => !matches(i, previous)).map((i) => i.instanceId),
      replaced: [],
    };
  }

  /** During an active refresh, instances launch from its template. */
  launchTemplateFor(group: AutoScalingGroupRecord): ResolvedTemplate | undefined {
    const r = this.#d.state.activeRefresh(group.name);
    return r === undefined ? undefined : this.#d.templates.resolve(r.target);
  }

  /** One step of the group's active refresh; resolves with how many instances to run above the desired capacity. */
  async step(group: AutoScalingGroupRecord): Promise<number> {
    const d = this.#d;
    let r = d.state.activeRefresh(group.name);
    if (r === undefined) return 0;
    const now = d.clock.wallTime();
    if (r.status === 'Pending') r = await this.#save({ ...r, status: 'InProgress' });
    const instances = new Map(d.state.instancesOf(group.name).map((i) => [i.instanceId, i]));
    const replaced = r.toReplace.filter((id) => !instances.has(id));
    if (replaced.length !== r.replaced.length) r = await this.#save({ ...r, replaced });
    const old = r.toReplace.map((id) => instances.get(id)).filter((i): i is AutoScalingInstanceRecord => i !== undefined);
    const oldStaying = old.filter((i) => i.departure === undefined && i.lifecycleState !== 'Standby');
    const oldLeaving = old.filter((i) => i.departure !== undefined);
    const counted = countedInstances([...instances.values()]);
    const warmup = r.preferences.instanceWarmupSeconds;
    const ready = counted.filter((i) => d.ready(i, group, warmup));

    if (r.status === 'Cancelling') {
      if (oldLeaving.length === 0) await this.#finish(r, 'Cancelled', 'The instance refresh was cancelled.');
      return 0;
    }
    if (d.launchFailures(group.name) >= FAILED_LAUNCHES_TO_FAIL) {
      await this.#finish(r, r.status === 'RollbackInProgress' ? 'RollbackFailed' : 'Failed', `${FAILED_LAUNCHES_TO_FAIL} launches in a row failed; DescribeScalingActivities says why.`);
      return 0;
    }
    if (oldStaying.length === 0 && oldLeaving.length === 0) {
      if (counted.length >= group.desiredCapacity && counted.every((i) => d.ready(i, group, warmup))) {
        await this.#finish(r, r.status === 'RollbackInProgress' ? 'RollbackSuccessful' : 'Successful', undefined);
      }
      return 0;
    }
    const percentage = this.percentage(r);
    const reached = r.checkpointsReached ?? [];
    const checkpoint = r.preferences.checkpointPercentages.find((c) => c < 100 && percentage >= c && !reached.includes(c));
    if (r.checkpointUntil !== undefined && now < r.checkpointUntil) return 0;
    if (checkpoint !== undefined && oldLeaving.length === 0) {
      await this.#save({
        ...r,
        checkpointUntil: now + r.preferences.checkpointDelaySeconds * 1000,
        checkpointsReached: [...reached, checkpoint],
        statusReason: `Waiting at checkpoint ${checkpoint}% for ${r.preferences.checkpointDelaySeconds} s.`,
      });
      return 0;
    }
    const desired = group.desiredCapacity;
    const minHealthy = Math.ceil((desired * r.preferences.minHealthyPercentage) / 100);
    // Above 100 %, room for at least one more instance, however small the group (3 at 110 % is still 4).
    const maxTotal =
      r.preferences.maxHealthyPercentage > 100 && desired > 0 ? Math.max(desired + 1, Math.floor((desired * r.preferences.maxHealthyPercentage) / 100)) : desired;
    const room = maxTotal - desired;
    let take: number;
    if (room > 0) {
      take = Math.min(oldStaying.length, Math.max(0, ready.length - minHealthy), Math.max(0, counted.length - desired));
    } else {
      take = Math.min(oldStaying.length, Math.max(0, ready.length - minHealthy));
      // At least one at a time: with nothing leaving and every instance ready, one goes.
      if (take === 0 && oldLeaving.length === 0 && counted.length >= desired && counted.every((i) => d.ready(i, group, warmup))) take = 1;
    }
    // Old instances that are not ready carry no traffic: they go first.
    const order = oldStaying.slice().sort((a, b) => Number(d.ready(a, group, warmup)) - Number(d.ready(b, group, warmup)) || a.launchedAt - b.launchedAt);
    for (const i of order.slice(0, take)) {
      await d.depart(i, { kind: 'terminate', decrement: false, activityId: '', skipHooks: false, reason: 'refresh' }, causes.refresh(now, i.instanceId, r.id));
    }
    // The extra instances still wanted: one for each old instance that stays (those just sent away need none).
    return Math.max(0, Math.min(room, oldStaying.length - take));
  }

  /** Share of the instances to replace that are gone, 0-100. */
  percentage(r: InstanceRefreshRecord): number {
    if (r.status === 'Successful' || r.status === 'RollbackSuccessful') return 100;
    return r.toReplace.length === 0 ? 100 : Math.floor((r.replaced.length * 100) / r.toReplace.length);
  }

  async #finish(r: InstanceRefreshRecord, status: InstanceRefreshStatus, reason: string | undefined): Promise<void> {
    const at = this.#d.clock.wallTime();
    const { statusReason: _drop, checkpointUntil: _c, ...rest } = r;
    await this.#save({ ...rest, status, endedAt: at, ...(reason === undefined ? {} : { statusReason: reason }) });
    // Keep a bounded number of finished refreshes per group.
    const finished = this.#d.state.refreshesOf(r.group).filter((x) => !isActive(x));
    for (const old of finished.slice(FINISHED_KEPT)) {
      await this.#d.state.commit([{ op: 'delete', kind: 'instanceRefresh', key: old.id }], () => this.#d.state.refreshes.delete(old.id));
    }
  }

  async #save(r: InstanceRefreshRecord): Promise<InstanceRefreshRecord> {
    await this.#d.state.commit([put('instanceRefresh', r.id, r)], () => this.#d.state.refreshes.set(r.id, r));
    return r;
  }
}

/** The instance runs the template version `t`. */
export function matches(i: AutoScalingInstanceRecord, t: ResolvedTemplate): boolean {
  return i.launchTemplate !== undefined && i.launchTemplate.id === t.id && i.launchTemplate.version === t.version;
}
