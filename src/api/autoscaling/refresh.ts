import type { RefreshPreferences } from '../../autoscaling/records.ts';
import { ebbError } from '../../shared/errors.ts';
import type { AsParams } from './params.ts';
import { type AsTable, groupName, readTemplate, refuseLaunchConfiguration } from './read.ts';
import { refreshXml } from './shapes.ts';

/** Auto Scaling instance refresh actions (the Rolling strategy). */

type Preferences = { -readonly [K in keyof RefreshPreferences]?: RefreshPreferences[K] };

/**
 * RefreshPreferences with AWS's ranges. What ebb does not do is refused (automatic rollback, alarms,
 * bake time), and so is any other way with protected and standby instances than ebb's: protected
 * instances are replaced (Refresh), instances in standby are left alone (Ignore).
 */
function readPreferences(p: AsParams): Partial<RefreshPreferences> | undefined {
  const s = p.struct('Preferences');
  if (s === undefined) return undefined;
  const out: Preferences = {};
  const min = s.int('MinHealthyPercentage', { min: 0, max: 100 });
  if (min !== undefined) out.minHealthyPercentage = min;
  const max = s.int('MaxHealthyPercentage', { min: 100, max: 200 });
  if (max !== undefined) out.maxHealthyPercentage = max;
  const warmup = s.int('InstanceWarmup', { min: 0 });
  if (warmup !== undefined) out.instanceWarmupSeconds = warmup;
  const skip = s.bool('SkipMatching');
  if (skip !== undefined) out.skipMatching = skip;
  const checkpoints = s.intList('CheckpointPercentages', { min: 1, max: 100 });
  if (checkpoints !== undefined) out.checkpointPercentages = checkpoints;
  const delay = s.int('CheckpointDelay', { min: 0, max: 172_800 });
  if (delay !== undefined) out.checkpointDelaySeconds = delay;
  if (s.bool('AutoRollback') === true) {
    throw ebbError('ValidationError', 'AutoRollback is not supported by ebb: roll a failed refresh back with RollbackInstanceRefresh');
  }
  const alarms = s.struct('AlarmSpecification')?.list('Alarms') ?? [];
  if (alarms.length > 0) throw ebbError('ValidationError', 'AlarmSpecification is not supported by ebb: it has no alarms; leave it unset');
  const bake = s.int('BakeTime', { min: 0, max: 172_800 });
  if (bake !== undefined && bake > 0) throw ebbError('ValidationError', 'BakeTime is not supported by ebb; leave it unset or 0');
  const protectedInstances = s.enumOf('ScaleInProtectedInstances', ['Refresh', 'Ignore', 'Wait'] as const);
  if (protectedInstances !== undefined && protectedInstances !== 'Refresh') {
    throw ebbError('ValidationError', `ScaleInProtectedInstances '${protectedInstances}' is not supported by ebb: a refresh replaces protected instances too; leave it unset or set Refresh`);
  }
  const standby = s.enumOf('StandbyInstances', ['Terminate', 'Ignore', 'Wait'] as const);
  if (standby !== undefined && standby !== 'Ignore') {
    throw ebbError('ValidationError', `StandbyInstances '${standby}' is not supported by ebb: a refresh leaves instances in standby as they are; leave it unset or set Ignore`);
  }
  return out;
}

export const refreshActions: AsTable = {
  async StartInstanceRefresh(p, as) {
    const group = groupName(p);
    const strategy = p.enumOf('Strategy', ['Rolling', 'ReplaceRootVolume'] as const);
    if (strategy === 'ReplaceRootVolume') {
      throw ebbError('ValidationError', "Strategy 'ReplaceRootVolume' is not supported by ebb: instances are processes with no root volume; use Rolling");
    }
    const desired = p.struct('DesiredConfiguration');
    if (desired !== undefined) refuseLaunchConfiguration(desired);
    const launchTemplate = desired === undefined ? undefined : readTemplate(desired, 'LaunchTemplate');
    const preferences = readPreferences(p);
    const id = await as.startInstanceRefresh({
      group,
      ...(preferences !== undefined ? { preferences } : {}),
      ...(launchTemplate !== undefined ? { desiredConfiguration: { launchTemplate } } : {}),
    });
    return { InstanceRefreshId: id };
  },

  async DescribeInstanceRefreshes(p, as) {
    const pager = p.pager({ default: 50, max: 100 });
    const group = groupName(p);
    const ids = p.list('InstanceRefreshIds', { length: { min: 1, max: 255 } });
    const refreshes = as.describeInstanceRefreshes(group, ids !== undefined && ids.length > 0 ? ids : undefined);
    const { page, nextToken } = pager.cut(refreshes);
    return { InstanceRefreshes: page.map((r) => refreshXml(r, as)), NextToken: nextToken };
  },

  async CancelInstanceRefresh(p, as) {
    const group = groupName(p);
    // WaitForTransitioningInstances is read for its shape: an instance already leaving service drains either way.
    p.bool('WaitForTransitioningInstances');
    return { InstanceRefreshId: await as.cancelInstanceRefresh(group) };
  },

  async RollbackInstanceRefresh(p, as) {
    return { InstanceRefreshId: await as.rollbackInstanceRefresh(groupName(p)) };
  },
};
