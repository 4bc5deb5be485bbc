/**
 * Lifecycle hooks: the rules a hook obeys (PutLifecycleHook), the actions that hold an instance in
 * Pending:Wait or Terminating:Wait, their timeouts, and the message a hook's notification carries
 * (the one AWS sends to SNS or SQS, field for field).
 */
import { randomUUID } from 'node:crypto';
import { ebbError } from '../shared/errors.ts';
import type { PutLifecycleHookInput } from './autoscaling-api.ts';
import type { LifecycleActionRecord, LifecycleHookRecord, LifecycleTransition } from './records.ts';

export const LAUNCHING: LifecycleTransition = 'autoscaling:EC2_INSTANCE_LAUNCHING';
export const TERMINATING: LifecycleTransition = 'autoscaling:EC2_INSTANCE_TERMINATING';
const TRANSITIONS: ReadonlySet<string> = new Set([LAUNCHING, TERMINATING]);
/** AWS: the global timeout is the lesser of 48 hours and 100 × the heartbeat timeout. */
const GLOBAL_TIMEOUT_CAP_SECONDS = 172_800;

export function globalTimeoutSeconds(heartbeatTimeoutSeconds: number): number {
  return Math.min(GLOBAL_TIMEOUT_CAP_SECONDS, 100 * heartbeatTimeoutSeconds);
}

/** The hook PutLifecycleHook makes of `input` over `existing` (a new hook when undefined). */
export function buildHook(input: PutLifecycleHookInput, existing: LifecycleHookRecord | undefined, source: 'api' | 'config'): LifecycleHookRecord {
  if (!/^[A-Za-z0-9\-_/]{1,255}$/.test(input.name)) {
    throw ebbError('ValidationError', `LifecycleHookName "${input.name}" must be 1 to 255 letters, digits, -, _ or /.`);
  }
  const transition = input.transition ?? existing?.transition;
  if (transition === undefined) {
    throw ebbError('ValidationError', `LifecycleTransition is required for the new hook ${input.name}: autoscaling:EC2_INSTANCE_LAUNCHING or autoscaling:EC2_INSTANCE_TERMINATING.`);
  }
  if (!TRANSITIONS.has(transition)) {
    throw ebbError('ValidationError', `LifecycleTransition "${transition}" is not valid: use autoscaling:EC2_INSTANCE_LAUNCHING or autoscaling:EC2_INSTANCE_TERMINATING.`);
  }
  const heartbeat = input.heartbeatTimeoutSeconds ?? existing?.heartbeatTimeoutSeconds ?? 3600;
  if (!Number.isInteger(heartbeat) || heartbeat < 30 || heartbeat > 7200) {
    throw ebbError('ValidationError', `HeartbeatTimeout must be a whole number of seconds from 30 to 7200; got ${heartbeat}.`);
  }
  const defaultResult = input.defaultResult ?? existing?.defaultResult ?? 'ABANDON';
  if (defaultResult !== 'CONTINUE' && defaultResult !== 'ABANDON') {
    throw ebbError('ValidationError', `DefaultResult must be CONTINUE or ABANDON; got ${String(defaultResult)}.`);
  }
  const metadata = input.notificationMetadata ?? existing?.notificationMetadata;
  if (metadata !== undefined && (metadata.length > 4000 || !/^[\x20-\x7e\r\n\t]*$/.test(metadata))) {
    throw ebbError('ValidationError', 'NotificationMetadata must be at most 4000 printable ASCII characters.');
  }
  const target = input.notificationTargetArn ?? existing?.notificationTargetArn;
  if (target !== undefined && target !== '' && !target.startsWith('http://') && !target.startsWith('arn:')) {
    throw ebbError('ValidationError', `NotificationTargetARN "${target}" is neither an http:// URL (where ebb posts the notification) nor an ARN.`);
  }
  const command = input.notificationCommand ?? existing?.notificationCommand;
  const roleArn = input.roleArn ?? existing?.roleArn;
  return {
    group: input.group,
    name: input.name,
    transition,
    ...(target === undefined || target === '' ? {} : { notificationTargetArn: target }),
    ...(command === undefined ? {} : { notificationCommand: command }),
    ...(roleArn === undefined ? {} : { roleArn }),
    ...(metadata === undefined ? {} : { notificationMetadata: metadata }),
    heartbeatTimeoutSeconds: heartbeat,
    defaultResult,
    source,
  };
}

/** The actions that hold an instance, one per hook of the transition, started at `at` (wall ms). */
export function startActions(hooks: readonly LifecycleHookRecord[], transition: LifecycleTransition, at: number): LifecycleActionRecord[] {
  return hooks
    .filter((h) => h.transition === transition)
    .map((h) => ({
      hookName: h.name,
      token: randomUUID(),
      transition,
      heartbeatDeadline: at + h.heartbeatTimeoutSeconds * 1000,
      globalDeadline: at + globalTimeoutSeconds(h.heartbeatTimeoutSeconds) * 1000,
      startedAt: at,
    }));
}

/** The actions with every one whose time ran out completed with its hook's default result. */
export function expireActions(actions: readonly LifecycleActionRecord[], hooks: ReadonlyMap<string, LifecycleHookRecord>, now: number): LifecycleActionRecord[] {
  return actions.map((a) => {
    if (a.result !== undefined || now < Math.min(a.heartbeatDeadline, a.globalDeadline)) return a;
    // A hook deleted meanwhile completes as DeleteLifecycleHook does: ABANDON launching, CONTINUE terminating.
    const fallback = a.transition === LAUNCHING ? 'ABANDON' : 'CONTINUE';
    return { ...a, result: hooks.get(a.hookName)?.defaultResult ?? fallback };
  });
}

/** Where the actions stand: waiting, or done with CONTINUE or ABANDON (any ABANDON decides). */
export function actionsOutcome(actions: readonly LifecycleActionRecord[]): 'waiting' | 'CONTINUE' | 'ABANDON' {
  if (actions.some((a) => a.result === 'ABANDON')) return 'ABANDON';
  return actions.every((a) => a.result !== undefined) ? 'CONTINUE' : 'waiting';
}

/** The earliest wall time at which one of the actions times out, if any is waiting. */
export function nextActionDeadline(actions: readonly LifecycleActionRecord[]): number | undefined {
  const waiting = actions.filter((a) => a.result === undefined).map((a) => Math.min(a.heartbeatDeadline, a.globalDeadline));
  return waiting.length === 0 ? undefined : Math.min(...waiting);
}

/** The message AWS sends to SNS or SQS for a lifecycle action. */
export function lifecycleMessage(fields: {
  accountId: string;
  group: string;
  hook: LifecycleHookRecord;
  instanceId: string;
  token: string;
  at: number;
}): Record<string, string> {
  return {
    Origin: fields.hook.transition === LAUNCHING ? 'EC2' : 'AutoScalingGroup',
    Destination: fields.hook.transition === LAUNCHING ? 'AutoScalingGroup' : 'EC2',
    LifecycleHookName: fields.hook.name,
    AccountId: fields.accountId,
    RequestId: randomUUID(),
    LifecycleTransition: fields.hook.transition,
    AutoScalingGroupName: fields.group,
    Service: 'AWS Auto Scaling',
    Time: new Date(fields.at).toISOString(),
    EC2InstanceId: fields.instanceId,
    LifecycleActionToken: fields.token,
    ...(fields.hook.notificationMetadata === undefined ? {} : { NotificationMetadata: fields.hook.notificationMetadata }),
  };
}

/** The test message AWS sends when a hook with a notification target is put. */
export function testMessage(fields: { accountId: string; group: string; groupArn: string; at: number }): Record<string, string> {
  return {
    AccountId: fields.accountId,
    RequestId: randomUUID(),
    AutoScalingGroupARN: fields.groupArn,
    AutoScalingGroupName: fields.group,
    Service: 'AWS Auto Scaling',
    Event: 'autoscaling:TEST_NOTIFICATION',
    Time: new Date(fields.at).toISOString(),
  };
}
