/**
 * Scaling activities as AWS words them (DescribeScalingActivities): a description of what is done,
 * a cause that says why in the AWS style ("At <time> …"), a status code and a progress.
 */
import { randomUUID } from 'node:crypto';
import type { ActivityStatusCode, ScalingActivityRecord } from './records.ts';

/** `2026-12-02T03:04:05Z`: the time format of AWS's causes. */
export function causeTime(wallMs: number): string {
  return new Date(wallMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function newActivity(fields: {
  group: string;
  description: string;
  cause: string;
  at: number;
  statusCode?: ActivityStatusCode;
  progress?: number;
  details?: Record<string, unknown>;
}): ScalingActivityRecord {
  return {
    activityId: randomUUID(),
    group: fields.group,
    description: fields.description,
    cause: fields.cause,
    startTime: fields.at,
    statusCode: fields.statusCode ?? 'InProgress',
    progress: fields.progress ?? 0,
    details: JSON.stringify(fields.details ?? {}),
  };
}

const PROGRESS: Readonly<Record<ActivityStatusCode, number>> = {
  PreInService: 30,
  InProgress: 20,
  WaitingForELBConnectionDraining: 50,
  MidLifecycleAction: 40,
  WaitingForInstanceWarmup: 60,
  Successful: 100,
  Failed: 100,
  Cancelled: 100,
};

/** The activity moved to `statusCode`; a final code ends it at `at`. */
export function progressed(activity: ScalingActivityRecord, statusCode: ActivityStatusCode, at: number, statusMessage?: string): ScalingActivityRecord {
  const final = statusCode === 'Successful' || statusCode === 'Failed' || statusCode === 'Cancelled';
  return {
    ...activity,
    statusCode,
    progress: Math.max(activity.progress, PROGRESS[statusCode]),
    ...(statusMessage === undefined ? {} : { statusMessage }),
    ...(final ? { endTime: at } : {}),
  };
}

/** Causes: the first sentence says what changed the group, the rest what was done about it. */
export const causes = {
  desiredChanged(at: number, from: number, to: number, by: 'user' | 'create' | 'config'): string {
    const who =
      by === 'create'
        ? 'a user request created an AutoScalingGroup'
        : by === 'config'
          ? "ebb's configuration file set group desired capacity"
          : 'a user request explicitly set group desired capacity';
    return `At ${causeTime(at)} ${who} changing the desired capacity from ${from} to ${to}.`;
  },
  launched(at: number, from: number, to: number): string {
    return `At ${causeTime(at)} an instance was started in response to a difference between desired and actual capacity, increasing the capacity from ${from} to ${to}.`;
  },
  shrunk(at: number, from: number, to: number, instanceId: string): string {
    return (
      `At ${causeTime(at)} an instance was taken out of service in response to a difference between desired and actual capacity, shrinking the capacity from ${from} to ${to}.  ` +
      `At ${causeTime(at)} instance ${instanceId} was selected for termination.`
    );
  },
  userTerminated(at: number, instanceId: string, decrement: boolean, from: number, to: number): string {
    return decrement
      ? `At ${causeTime(at)} instance ${instanceId} was taken out of service in response to a user request, shrinking the capacity from ${from} to ${to}.`
      : `At ${causeTime(at)} instance ${instanceId} was taken out of service in response to a user request.`;
  },
  unhealthy(at: number, instanceId: string, check: 'EC2' | 'ELB' | 'user'): string {
    const why =
      check === 'EC2'
        ? 'an EC2 health check indicating it has been terminated or stopped'
        : check === 'ELB'
          ? 'an ELB system health check failure'
          : 'a user health-check';
    return `At ${causeTime(at)} an instance was taken out of service in response to ${why}.  At ${causeTime(at)} instance ${instanceId} was selected for termination.`;
  },
  refresh(at: number, instanceId: string, refreshId: string): string {
    return `At ${causeTime(at)} an instance was taken out of service in response to an instance refresh (${refreshId}).  At ${causeTime(at)} instance ${instanceId} was selected for termination.`;
  },
  refreshLaunch(at: number, refreshId: string): string {
    return `At ${causeTime(at)} an instance was started in response to an instance refresh (${refreshId}).`;
  },
  deleting(at: number, instanceId: string, force: boolean): string {
    return `At ${causeTime(at)} a user request deleted the AutoScalingGroup${force ? ' with ForceDelete' : ''}.  At ${causeTime(at)} instance ${instanceId} was selected for termination.`;
  },
  standby(at: number, instanceId: string, from: number, to: number): string {
    return `At ${causeTime(at)} instance ${instanceId} was moved to standby in response to a user request, shrinking the capacity from ${from} to ${to}.`;
  },
  standbyKept(at: number, instanceId: string): string {
    return `At ${causeTime(at)} instance ${instanceId} was moved to standby in response to a user request.`;
  },
  exitStandby(at: number, instanceId: string, from: number, to: number): string {
    return `At ${causeTime(at)} instance ${instanceId} was moved out of standby in response to a user request, increasing the capacity from ${from} to ${to}.`;
  },
  detached(at: number, instanceId: string, from: number, to: number): string {
    return `At ${causeTime(at)} instance ${instanceId} was detached in response to a user request, shrinking the capacity from ${from} to ${to}.`;
  },
  attached(at: number, instanceId: string, to: number): string {
    return `At ${causeTime(at)} an instance was added in response to user request. Keeping the capacity at the new ${to}.  At ${causeTime(at)} instance ${instanceId} was attached.`;
  },
};
