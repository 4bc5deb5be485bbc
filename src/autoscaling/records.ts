/**
 * What Auto Scaling stores, shaped after the EC2 and Auto Scaling models (ec2 2016-11-15,
 * autoscaling 2011-01-01). Plain records: what is committed and what the API describes. Times are
 * wall-clock milliseconds since the epoch (they outlive the process, so no monotonic time here).
 */
import type { Tag } from '../domain/resources.ts';

// ---------------------------------------------------------------- launch templates (EC2)

/** What an instance runs: the data of one launch template version. */
export interface LaunchTemplateData {
  /** Base64, as EC2 takes it: the script the instance runs (decoded, run by its #! line or /bin/sh). */
  readonly userData?: string;
  /** Declared in the file only: a command and its arguments, run without a shell. */
  readonly command?: readonly string[];
  /** Declared in the file only: added to the instance's environment. */
  readonly environment?: Readonly<Record<string, string>>;
  /** Declared in the file only. */
  readonly workingDirectory?: string;
  /** Between SIGTERM and SIGKILL (default 30). Declared in the file only. */
  readonly stopTimeoutSeconds?: number;
  /** TagSpecifications for `instance`: the tags every instance launched from it gets. */
  readonly instanceTags?: readonly Tag[];
}

export interface LaunchTemplateVersionRecord {
  readonly versionNumber: number;
  readonly versionDescription?: string;
  readonly createdAt: number;
  readonly data: LaunchTemplateData;
}

export interface LaunchTemplateRecord {
  /** `lt-` + 17 hex. */
  readonly id: string;
  readonly name: string;
  readonly createdAt: number;
  readonly defaultVersion: number;
  readonly latestVersion: number;
  readonly versions: readonly LaunchTemplateVersionRecord[];
  readonly tags: readonly Tag[];
  readonly source: 'api' | 'config';
}

/** A reference to a launch template, as a group holds it: by id or name, and `$Latest`, `$Default` or a number. */
export interface LaunchTemplateRef {
  readonly id?: string;
  readonly name?: string;
  /** `$Latest`, `$Default` or a version number as text; unset means `$Default`. */
  readonly version?: string;
}

/** A launch template version resolved: what an instance was launched from. */
export interface ResolvedTemplate {
  readonly id: string;
  readonly name: string;
  readonly version: number;
  readonly data: LaunchTemplateData;
}

// ---------------------------------------------------------------- groups

export type TerminationPolicy = 'Default' | 'OldestInstance' | 'NewestInstance' | 'OldestLaunchTemplate';
export type HealthCheckType = 'EC2' | 'ELB';

export interface AutoScalingGroupRecord {
  readonly name: string;
  readonly arn: string;
  readonly launchTemplate: LaunchTemplateRef;
  readonly minSize: number;
  readonly maxSize: number;
  readonly desiredCapacity: number;
  readonly targetGroupArns: readonly string[];
  /** Classic load balancer names. */
  readonly loadBalancerNames: readonly string[];
  readonly healthCheckType: HealthCheckType;
  readonly healthCheckGracePeriodSeconds: number;
  /** Seconds; unset: none (InstanceWarmup falls back to the grace period). */
  readonly defaultInstanceWarmupSeconds?: number;
  readonly terminationPolicies: readonly TerminationPolicy[];
  readonly newInstancesProtectedFromScaleIn: boolean;
  readonly tags: readonly Tag[];
  readonly createdAt: number;
  /** Target groups just attached whose in-service instances are still to be registered there (done by the next pass; survives a crash). */
  readonly registering?: readonly string[];
  /** Set by DeleteAutoScalingGroup while the group's instances drain and stop. */
  readonly deleting?: { readonly force: boolean; readonly at: number };
  readonly source: 'api' | 'config';
}

// ---------------------------------------------------------------- instances

/** The Auto Scaling lifecycle states ebb uses, exactly as AWS names them. */
export type LifecycleState =
  | 'Pending'
  | 'Pending:Wait'
  | 'Pending:Proceed'
  | 'InService'
  | 'Terminating'
  | 'Terminating:Wait'
  | 'Terminating:Proceed'
  | 'Terminated'
  | 'EnteringStandby'
  | 'Standby'
  | 'Detaching'
  | 'Detached';

/** Why an instance is leaving service, and what follows. */
export interface Departure {
  readonly kind: 'terminate' | 'standby' | 'detach';
  /** Whether desired capacity was decremented when this was asked (it is, at the time of asking). */
  readonly decrement: boolean;
  /** The activity this departure reports to. */
  readonly activityId: string;
  /** Lifecycle hooks are skipped (ForceDelete, detach, standby). */
  readonly skipHooks: boolean;
  /** What sent it: a health check (replacements are limited to a tenth of the group at a time), a refresh, a scale-in, a user. */
  readonly reason: 'health' | 'refresh' | 'scale-in' | 'user' | 'delete' | 'launch-abandoned';
}

/** One outstanding lifecycle action: an instance held by one hook. */
export interface LifecycleActionRecord {
  readonly hookName: string;
  readonly token: string;
  readonly transition: LifecycleTransition;
  /** Wall ms when the heartbeat timeout runs out (extended by RecordLifecycleActionHeartbeat). */
  readonly heartbeatDeadline: number;
  /** Wall ms: the global timeout (the lesser of 48 h and 100 × heartbeat timeout from the start). */
  readonly globalDeadline: number;
  readonly startedAt: number;
  /** Set once completed (by a call or by the timeout). */
  readonly result?: 'CONTINUE' | 'ABANDON';
}

/** An instance of a group (or, once detached or never attached, of no group). */
export interface AutoScalingInstanceRecord {
  readonly instanceId: string;
  /** The group it belongs to; null once detached (the process runs on, unmanaged). */
  readonly group: string | null;
  readonly lifecycleState: LifecycleState;
  readonly healthStatus: 'Healthy' | 'Unhealthy';
  readonly protectedFromScaleIn: boolean;
  /** The template version it was launched from; unset for an attached instance. */
  readonly launchTemplate?: { readonly id: string; readonly name: string; readonly version: number };
  /** Launched by ebb (a process it starts and stops) or attached (a server it only routes to). */
  readonly origin: 'launched' | 'attached';
  /** Where it is reached and on which port it is registered. */
  readonly address: string;
  readonly port: number;
  /** The process, for a launched instance (unset until it has started). */
  readonly process?: { readonly pid: number; readonly startTime: string; readonly logFile: string };
  readonly launchedAt: number;
  /** Wall ms when it went InService (grace period and warm-up count from here). */
  readonly inServiceAt?: number;
  /** Set while it leaves service. */
  readonly departure?: Departure | undefined;
  /** How it entered the group: launched (launching hooks apply), or from standby or attached (they do not). */
  readonly entry: 'launch' | 'standby' | 'attach';
  /** The activity that reports its way into service, while it is on that way. */
  readonly entryActivityId?: string | undefined;
  /** Outstanding lifecycle actions (launching or terminating). */
  readonly actions?: readonly LifecycleActionRecord[];
  /** Wall ms of the last state change. */
  readonly stateChangedAt: number;
  readonly tags: readonly Tag[];
}

// ---------------------------------------------------------------- lifecycle hooks

export type LifecycleTransition = 'autoscaling:EC2_INSTANCE_LAUNCHING' | 'autoscaling:EC2_INSTANCE_TERMINATING';

export interface LifecycleHookRecord {
  readonly group: string;
  readonly name: string;
  readonly transition: LifecycleTransition;
  /** An `http://` URL ebb POSTs the notification to; or an ARN ebb keeps but cannot deliver to. */
  readonly notificationTargetArn?: string;
  /** Declared in the file only: a command that gets each notification's JSON on stdin. */
  readonly notificationCommand?: readonly string[];
  readonly roleArn?: string;
  readonly notificationMetadata?: string;
  readonly heartbeatTimeoutSeconds: number;
  readonly defaultResult: 'CONTINUE' | 'ABANDON';
  readonly source: 'api' | 'config';
}

// ---------------------------------------------------------------- instance refresh

export type InstanceRefreshStatus =
  | 'Pending'
  | 'InProgress'
  | 'Successful'
  | 'Failed'
  | 'Cancelling'
  | 'Cancelled'
  | 'RollbackInProgress'
  | 'RollbackFailed'
  | 'RollbackSuccessful';

export interface RefreshPreferences {
  readonly minHealthyPercentage: number;
  readonly maxHealthyPercentage: number;
  /** Seconds. */
  readonly instanceWarmupSeconds: number;
  readonly skipMatching: boolean;
  readonly checkpointPercentages: readonly number[];
  readonly checkpointDelaySeconds: number;
}

export interface InstanceRefreshRecord {
  readonly id: string;
  readonly group: string;
  readonly status: InstanceRefreshStatus;
  readonly statusReason?: string;
  readonly startedAt: number;
  readonly endedAt?: number;
  readonly preferences: RefreshPreferences;
  /** What instances are refreshed to (DesiredConfiguration, or the group's template when it began). */
  readonly target: LaunchTemplateRef;
  /** The group's template before the refresh, resolved to its version then, for RollbackInstanceRefresh. */
  readonly previous: LaunchTemplateRef;
  /** The group's template reference as it was given (`$Latest` stays `$Latest`), restored by a rollback. */
  readonly previousRef?: LaunchTemplateRef;
  /** Started with a DesiredConfiguration: only such a refresh can be rolled back, as on AWS. */
  readonly withDesiredConfiguration?: boolean;
  /** Instances to replace when it began, and those replaced so far. */
  readonly toReplace: readonly string[];
  readonly replaced: readonly string[];
  /** Wall ms: waiting at a checkpoint until then. */
  readonly checkpointUntil?: number;
  /** The checkpoints already reached (each waits once). */
  readonly checkpointsReached?: readonly number[];
}

// ---------------------------------------------------------------- activities

export type ActivityStatusCode =
  | 'PreInService'
  | 'InProgress'
  | 'WaitingForELBConnectionDraining'
  | 'MidLifecycleAction'
  | 'WaitingForInstanceWarmup'
  | 'Successful'
  | 'Failed'
  | 'Cancelled';

export interface ScalingActivityRecord {
  readonly activityId: string;
  readonly group: string;
  readonly description: string;
  readonly cause: string;
  readonly startTime: number;
  readonly endTime?: number;
  readonly statusCode: ActivityStatusCode;
  readonly statusMessage?: string;
  readonly progress: number;
  /** JSON text, as AWS gives it (`{"Subnet ID":…}` there; here the instance and its port). */
  readonly details: string;
}
