import { ebbError } from '../../shared/errors.ts';
import type { AsParams } from './params.ts';
import { type AsTable, groupName, INSTANCE_ID } from './read.ts';
import { activityXml, groupArns } from './shapes.ts';

/** Auto Scaling actions on a group's instances: terminate, health, protection, attach and detach, standby; and the activities they start. */

/** InstanceIds with AWS's count limit for the action (20 for standby, attach and detach; 50 for protection). */
function instanceIds(p: AsParams, max: number, required: boolean): string[] {
  const opts = { count: { max }, length: INSTANCE_ID };
  return required ? p.requiredList('InstanceIds', opts) : (p.list('InstanceIds', opts) ?? []);
}

export const instanceActions: AsTable = {
  async TerminateInstanceInAutoScalingGroup(p, as) {
    const id = p.requiredStr('InstanceId', INSTANCE_ID);
    const decrement = p.requiredBool('ShouldDecrementDesiredCapacity');
    const activity = await as.terminateInstanceInAutoScalingGroup(id, decrement);
    return { Activity: activityXml(activity, groupArns(as)) };
  },

  async SetInstanceHealth(p, as) {
    const id = p.requiredStr('InstanceId', INSTANCE_ID);
    const status = p.requiredEnum('HealthStatus', ['Healthy', 'Unhealthy'] as const);
    await as.setInstanceHealth(id, status, p.bool('ShouldRespectGracePeriod') ?? true);
    return undefined;
  },

  async SetInstanceProtection(p, as) {
    const ids = instanceIds(p, 50, true);
    const group = groupName(p);
    const protect = p.requiredBool('ProtectedFromScaleIn');
    await as.setInstanceProtection(group, ids, protect);
    return {};
  },

  async AttachInstances(p, as) {
    const ids = instanceIds(p, 20, false);
    const group = groupName(p);
    await as.attachInstances(group, ids);
    return undefined;
  },

  async DetachInstances(p, as) {
    const ids = instanceIds(p, 20, false);
    const group = groupName(p);
    const decrement = p.requiredBool('ShouldDecrementDesiredCapacity');
    const activities = await as.detachInstances(group, ids, decrement);
    const arns = groupArns(as);
    return { Activities: activities.map((a) => activityXml(a, arns)) };
  },

  async EnterStandby(p, as) {
    const ids = instanceIds(p, 20, false);
    const group = groupName(p);
    const decrement = p.requiredBool('ShouldDecrementDesiredCapacity');
    const activities = await as.enterStandby(group, ids, decrement);
    const arns = groupArns(as);
    return { Activities: activities.map((a) => activityXml(a, arns)) };
  },

  async ExitStandby(p, as) {
    const ids = instanceIds(p, 20, false);
    const group = groupName(p);
    const activities = await as.exitStandby(group, ids);
    const arns = groupArns(as);
    return { Activities: activities.map((a) => activityXml(a, arns)) };
  },

  async DescribeScalingActivities(p, as) {
    const pager = p.pager({ default: 100, max: 100 });
    const activityIds = p.list('ActivityIds');
    const group = p.str('AutoScalingGroupName', { min: 1, max: 255 });
    // Read for its shape only: the answer holds the activities ebb still keeps.
    p.bool('IncludeDeletedGroups');
    if (p.has('Filters')) {
      throw ebbError('ValidationError', 'Filters is not supported by ebb for DescribeScalingActivities; select with AutoScalingGroupName or ActivityIds');
    }
    const found = as.describeScalingActivities({
      ...(group !== undefined ? { group } : {}),
      ...(activityIds !== undefined && activityIds.length > 0 ? { activityIds } : {}),
      maxRecords: pager.upTo,
    });
    const { page, nextToken } = pager.cut(found);
    const arns = groupArns(as);
    return { Activities: page.map((a) => activityXml(a, arns)), NextToken: nextToken };
  },
};
