import type { LifecycleActionInput } from '../../autoscaling/autoscaling-api.ts';
import { ebbError } from '../../shared/errors.ts';
import type { AsParams } from './params.ts';
import { ACTION_RESULTS, type AsTable, groupName, HOOK_NAME, INSTANCE_ID, readHookSettings, TRANSITIONS } from './read.ts';
import { hookXml } from './shapes.ts';

/** Auto Scaling lifecycle hook actions. */

/**
 * The hook, group and instance a lifecycle action call names: by LifecycleActionToken or by
 * InstanceId, one of them required (AWS refuses a call with neither). The group is a name here,
 * up to 1600 characters in the model (ResourceName), since AWS also takes the group's ARN.
 */
function readLifecycleAction(p: AsParams): LifecycleActionInput {
  const hookName = p.requiredStr('LifecycleHookName', HOOK_NAME);
  const group = p.requiredStr('AutoScalingGroupName', { min: 1, max: 1600 });
  const token = p.str('LifecycleActionToken', { min: 36, max: 36 });
  const instanceId = p.str('InstanceId', INSTANCE_ID);
  if (token === undefined && instanceId === undefined) {
    throw ebbError('ValidationError', 'Specify the lifecycle action by LifecycleActionToken (from the notification) or by InstanceId');
  }
  return { group, hookName, ...(token !== undefined ? { token } : {}), ...(instanceId !== undefined ? { instanceId } : {}) };
}

export const hookActions: AsTable = {
  async PutLifecycleHook(p, as) {
    const name = p.requiredStr('LifecycleHookName', HOOK_NAME);
    const group = groupName(p);
    const transition = p.enumOf('LifecycleTransition', TRANSITIONS);
    await as.putLifecycleHook({ group, name, ...(transition !== undefined ? { transition } : {}), ...readHookSettings(p) });
    return {};
  },

  async DescribeLifecycleHooks(p, as) {
    const group = groupName(p);
    const names = p.list('LifecycleHookNames', { count: { max: 50 }, length: HOOK_NAME });
    const hooks = as.describeLifecycleHooks(group, names !== undefined && names.length > 0 ? names : undefined);
    return { LifecycleHooks: hooks.map(hookXml) };
  },

  async DeleteLifecycleHook(p, as) {
    const name = p.requiredStr('LifecycleHookName', HOOK_NAME);
    await as.deleteLifecycleHook(groupName(p), name);
    return {};
  },

  async CompleteLifecycleAction(p, as) {
    const action = readLifecycleAction(p);
    const result = p.requiredEnum('LifecycleActionResult', ACTION_RESULTS);
    await as.completeLifecycleAction({ ...action, result });
    return {};
  },

  async RecordLifecycleActionHeartbeat(p, as) {
    await as.recordLifecycleActionHeartbeat(readLifecycleAction(p));
    return {};
  },
};
