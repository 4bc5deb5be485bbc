import type { AutoScalingApi } from '../../autoscaling/autoscaling-api.ts';
import { MAX_GROUPS } from '../../autoscaling/groups.ts';
import { ebbError } from '../../shared/errors.ts';
import type { ActionHandler } from '../handler.ts';
import type { XmlObject } from '../xml.ts';
import { AUTOSCALING_ACTIONS } from './autoscaling-model.ts';
import { groupActions, groupCount } from './groups.ts';
import { hookActions } from './hooks.ts';
import { instanceActions } from './instances.ts';
import { AsParams } from './params.ts';
import { type AsHandler, TERMINATION_POLICIES, TRANSITIONS } from './read.ts';
import { refreshActions } from './refresh.ts';
import { trafficActions } from './traffic.ts';

/**
 * Auto Scaling (2011-01-01). Every action of the model is recognised: the group, instance, load
 * balancing, lifecycle hook and instance refresh actions run on the Auto Scaling facade; the
 * Describe* of what ebb does not have (launch configurations, policies, scheduled actions, warm
 * pools…) answer their empty shape, so tools that look before they act keep working; the other
 * actions say what to use instead. docs/autoscaling-api.md lists them.
 *
 * The tables are read into Maps of their own entries: the Action is user input and must not reach
 * Object.prototype.
 */
const ACTIONS = new Map(Object.entries(AUTOSCALING_ACTIONS));

const HANDLERS: ReadonlyMap<string, AsHandler> = new Map(
  Object.entries({ ...groupActions, ...instanceActions, ...trafficActions, ...hookActions, ...refreshActions }),
);

/** The processes ebb runs for a group (AWS's names); none of them can be suspended. */
const PROCESSES = ['Launch', 'Terminate', 'AddToLoadBalancer', 'HealthCheck', 'ReplaceUnhealthy', 'InstanceRefresh'] as const;

/** Describe* that state what ebb is, answered whether or not Auto Scaling runs. */
const FACTS: ReadonlyMap<string, (as: AutoScalingApi | undefined) => XmlObject> = new Map(
  Object.entries({
    DescribeAccountLimits: (as: AutoScalingApi | undefined) => ({
      MaxNumberOfAutoScalingGroups: MAX_GROUPS,
      MaxNumberOfLaunchConfigurations: 0,
      NumberOfAutoScalingGroups: groupCount(as),
      NumberOfLaunchConfigurations: 0,
    }),
    DescribeLifecycleHookTypes: () => ({ LifecycleHookTypes: [...TRANSITIONS] }),
    DescribeTerminationPolicyTypes: () => ({ TerminationPolicyTypes: [...TERMINATION_POLICIES] }),
    DescribeScalingProcessTypes: () => ({ Processes: PROCESSES.map((name) => ({ ProcessName: name })) }),
    // ebb sends no Auto Scaling notifications (PutNotificationConfiguration is not available), so none can be configured.
    DescribeAutoScalingNotificationTypes: () => ({ AutoScalingNotificationTypes: [] }),
  }),
);

/** What to use instead of an action ebb does not serve. */
const INSTEAD: ReadonlyMap<string, string> = new Map(
  Object.entries({
    CreateLaunchConfiguration: 'ebb launches instances from launch templates: create one with aws ec2 create-launch-template',
    DeleteLaunchConfiguration: 'ebb has no launch configurations; it launches instances from launch templates (aws ec2 describe-launch-templates)',
    PutScalingPolicy: 'ebb runs no scaling policies; set a group\'s capacity with SetDesiredCapacity or UpdateAutoScalingGroup',
    DeletePolicy: 'ebb runs no scaling policies, so there is none to delete',
    ExecutePolicy: 'ebb runs no scaling policies; set a group\'s capacity with SetDesiredCapacity',
    GetPredictiveScalingForecast: 'ebb runs no scaling policies and makes no forecasts',
    PutScheduledUpdateGroupAction: 'ebb runs no scheduled actions; call SetDesiredCapacity from a scheduler such as cron',
    BatchPutScheduledUpdateGroupAction: 'ebb runs no scheduled actions; call SetDesiredCapacity from a scheduler such as cron',
    DeleteScheduledAction: 'ebb runs no scheduled actions, so there is none to delete',
    BatchDeleteScheduledAction: 'ebb runs no scheduled actions, so there is none to delete',
    PutWarmPool: 'ebb keeps no warm pool; instances are processes that start in moments',
    DeleteWarmPool: 'ebb keeps no warm pool, so there is none to delete',
    SuspendProcesses: 'ebb cannot suspend its processes; keep an instance out of service with EnterStandby, or from scale-in with SetInstanceProtection',
    ResumeProcesses: 'ebb cannot suspend its processes, so there is none to resume',
    PutNotificationConfiguration: 'ebb sends no Auto Scaling notifications; use a lifecycle hook with an http:// NotificationTargetARN, or ebb\'s event stream (GET /ebb/v1/events)',
    DeleteNotificationConfiguration: 'ebb sends no Auto Scaling notifications, so there is none to delete',
    EnableMetricsCollection: 'ebb\'s metrics are always on its Prometheus endpoint (GET /metrics, docs/metrics.md)',
    DisableMetricsCollection: 'ebb\'s metrics are always on its Prometheus endpoint (GET /metrics, docs/metrics.md)',
    LaunchInstances: 'ebb launches a group\'s instances itself when its desired capacity rises; use SetDesiredCapacity',
  }),
);

function notRunning(action: string): Error {
  return ebbError(
    'InvalidAction',
    `Auto Scaling is not running in this ebb, so ${action} has no group to act on; run Auto Scaling groups on an ebb serve (docs/autoscaling-api.md), ` +
      'or register targets with ELBv2 RegisterTargets meanwhile',
  );
}

function notAvailable(action: string): Error {
  const instead = INSTEAD.get(action) ?? 'docs/autoscaling-api.md lists the Auto Scaling actions ebb serves';
  return ebbError('InvalidAction', `The Auto Scaling action ${action} is not available in ebb: ${instead}`);
}

/** The handler for an Auto Scaling action, or undefined when the model has no such action. */
export function autoscalingHandler(action: string): ActionHandler | undefined {
  const entry = ACTIONS.get(action);
  if (entry === undefined) return undefined;
  const empty = entry.empty;
  const fact = FACTS.get(action);
  if (fact !== undefined) return async (_params, ctx) => fact(ctx.autoscaling);
  const handler = HANDLERS.get(action);
  if (handler !== undefined) {
    return async (params, ctx) => {
      const as = ctx.autoscaling;
      if (as !== undefined) return handler(new AsParams(params), as);
      // Without Auto Scaling there are no groups: looking finds nothing, acting is refused.
      if (empty !== undefined) return { ...empty };
      throw notRunning(action);
    };
  }
  if (empty !== undefined) return async () => ({ ...empty });
  return async () => {
    throw notAvailable(action);
  };
}
