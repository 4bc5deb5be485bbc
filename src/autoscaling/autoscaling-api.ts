/**
 * Auto Scaling's facade: every command the EC2 and Auto Scaling Query APIs and the configuration
 * file translate into. As in the control plane, commands check, commit (resolving only once the
 * change is durable), then act; a refused command changes nothing. Errors are EbbError with the AWS
 * codes (ValidationError naming the field, AlreadyExists,
 * ScalingActivityInProgress, InstanceRefreshInProgress, LimitExceeded, and the EC2 codes of the
 * launch template actions).
 */
import type { Tag } from '../domain/resources.ts';
import type { TypedEmitter } from '../shared/typed-emitter.ts';
import type {
  AutoScalingGroupRecord,
  AutoScalingInstanceRecord,
  HealthCheckType,
  InstanceRefreshRecord,
  LaunchTemplateData,
  LaunchTemplateRecord,
  LaunchTemplateRef,
  LifecycleHookRecord,
  LifecycleTransition,
  RefreshPreferences,
  ScalingActivityRecord,
  TerminationPolicy,
} from './records.ts';
import type { AutoScalingEvents } from './events.ts';

// ---------------------------------------------------------------- inputs

export interface CreateLaunchTemplateInput {
  readonly name: string;
  readonly versionDescription?: string;
  readonly data: LaunchTemplateData;
  readonly tags?: readonly Tag[];
}

export interface CreateLaunchTemplateVersionInput {
  readonly template: { readonly id?: string; readonly name?: string };
  /** Version to start from (its data, overlaid with `data`), as `SourceVersion` does. */
  readonly sourceVersion?: string;
  readonly versionDescription?: string;
  readonly data: LaunchTemplateData;
}

export interface CreateGroupInput {
  readonly name: string;
  readonly launchTemplate: LaunchTemplateRef;
  readonly minSize: number;
  readonly maxSize: number;
  /** Unset: MinSize. */
  readonly desiredCapacity?: number;
  readonly targetGroupArns?: readonly string[];
  readonly loadBalancerNames?: readonly string[];
  readonly healthCheckType?: HealthCheckType;
  readonly healthCheckGracePeriodSeconds?: number;
  readonly defaultInstanceWarmupSeconds?: number;
  readonly terminationPolicies?: readonly TerminationPolicy[];
  readonly newInstancesProtectedFromScaleIn?: boolean;
  readonly lifecycleHooks?: readonly PutLifecycleHookInput[];
  readonly tags?: readonly Tag[];
}

/** Every field optional: only those given change. `defaultInstanceWarmupSeconds` -1 clears it. */
export type UpdateGroupInput = Partial<Omit<CreateGroupInput, 'name' | 'targetGroupArns' | 'loadBalancerNames' | 'lifecycleHooks' | 'tags'>> & {
  readonly name: string;
};

export interface PutLifecycleHookInput {
  readonly group: string;
  readonly name: string;
  /** Required when the hook is new. */
  readonly transition?: LifecycleTransition;
  readonly notificationTargetArn?: string;
  readonly notificationCommand?: readonly string[];
  readonly roleArn?: string;
  readonly notificationMetadata?: string;
  readonly heartbeatTimeoutSeconds?: number;
  readonly defaultResult?: 'CONTINUE' | 'ABANDON';
}

export interface LifecycleActionInput {
  readonly group: string;
  readonly hookName: string;
  readonly token?: string;
  readonly instanceId?: string;
}

export interface StartInstanceRefreshInput {
  readonly group: string;
  readonly preferences?: Partial<RefreshPreferences>;
  readonly desiredConfiguration?: { readonly launchTemplate?: LaunchTemplateRef };
}

/** A launched or attached instance as DescribeInstances (EC2) sees it. */
export interface Ec2InstanceView {
  readonly instanceId: string;
  /** pending, running, shutting-down, terminated, stopped (EC2's instance state names). */
  readonly state: 'pending' | 'running' | 'shutting-down' | 'terminated' | 'stopped';
  readonly privateIpAddress: string;
  readonly port: number;
  readonly launchTime: number;
  readonly launchTemplate?: { readonly id: string; readonly name: string; readonly version: number };
  readonly group: string | null;
  readonly tags: readonly Tag[];
  readonly pid?: number;
  readonly logFile?: string;
}

/** An instance refresh as DescribeInstanceRefreshes answers: the record and its progress. */
export interface InstanceRefreshView extends InstanceRefreshRecord {
  readonly percentageComplete: number;
  /** Instances still to replace. */
  readonly instancesToUpdate: number;
}

// ---------------------------------------------------------------- the facade

export interface AutoScalingApi {
  readonly events: TypedEmitter<AutoScalingEvents>;
  readonly region: string;
  readonly accountId: string;

  // Launch templates (EC2 2016-11-15)
  createLaunchTemplate(input: CreateLaunchTemplateInput): Promise<LaunchTemplateRecord>;
  createLaunchTemplateVersion(input: CreateLaunchTemplateVersionInput): Promise<{ template: LaunchTemplateRecord; versionNumber: number }>;
  /** No filter: all. Unknown id or name: the EC2 NotFound code. */
  describeLaunchTemplates(filter?: { ids?: readonly string[]; names?: readonly string[] }): LaunchTemplateRecord[];
  /** Versions given as numbers, `$Latest` or `$Default`; none: every version. */
  describeLaunchTemplateVersions(template: { id?: string; name?: string }, versions?: readonly string[]): Array<{ template: LaunchTemplateRecord; versionNumber: number }>;
  modifyLaunchTemplate(template: { id?: string; name?: string }, defaultVersion: string): Promise<LaunchTemplateRecord>;
  /** Refused while a group names it. */
  deleteLaunchTemplate(template: { id?: string; name?: string }): Promise<LaunchTemplateRecord>;
  deleteLaunchTemplateVersions(template: { id?: string; name?: string }, versions: readonly string[]): Promise<{ deleted: number[]; failed: Array<{ version: string; code: string; message: string }> }>;
  /** ebb's instances; `ids` unknown: InvalidInstanceID.NotFound. */
  describeInstances(ids?: readonly string[]): Ec2InstanceView[];

  // Groups
  createAutoScalingGroup(input: CreateGroupInput): Promise<AutoScalingGroupRecord>;
  updateAutoScalingGroup(input: UpdateGroupInput): Promise<AutoScalingGroupRecord>;
  deleteAutoScalingGroup(name: string, forceDelete: boolean): Promise<void>;
  describeAutoScalingGroups(names?: readonly string[]): Array<{ group: AutoScalingGroupRecord; instances: AutoScalingInstanceRecord[] }>;
  describeAutoScalingInstances(instanceIds?: readonly string[]): AutoScalingInstanceRecord[];
  setDesiredCapacity(name: string, desiredCapacity: number): Promise<void>;
  terminateInstanceInAutoScalingGroup(instanceId: string, shouldDecrementDesiredCapacity: boolean): Promise<ScalingActivityRecord>;
  setInstanceHealth(instanceId: string, healthStatus: 'Healthy' | 'Unhealthy', shouldRespectGracePeriod: boolean): Promise<void>;
  setInstanceProtection(group: string, instanceIds: readonly string[], protectedFromScaleIn: boolean): Promise<void>;
  /** Servers ebb does not launch: each must be an instance declared under `instances:` (or registered with putInstance). */
  attachInstances(group: string, instanceIds: readonly string[]): Promise<void>;
  detachInstances(group: string, instanceIds: readonly string[], shouldDecrementDesiredCapacity: boolean): Promise<ScalingActivityRecord[]>;
  attachLoadBalancerTargetGroups(group: string, targetGroupArns: readonly string[]): Promise<void>;
  detachLoadBalancerTargetGroups(group: string, targetGroupArns: readonly string[]): Promise<void>;
  describeLoadBalancerTargetGroups(group: string): Array<{ targetGroupArn: string; state: 'Adding' | 'Added' | 'InService' | 'Removing' | 'Removed' }>;
  attachLoadBalancers(group: string, names: readonly string[]): Promise<void>;
  detachLoadBalancers(group: string, names: readonly string[]): Promise<void>;
  describeLoadBalancers(group: string): Array<{ loadBalancerName: string; state: 'Adding' | 'Added' | 'InService' | 'Removing' | 'Removed' }>;
  enterStandby(group: string, instanceIds: readonly string[], shouldDecrementDesiredCapacity: boolean): Promise<ScalingActivityRecord[]>;
  exitStandby(group: string, instanceIds: readonly string[]): Promise<ScalingActivityRecord[]>;
  /** Newest first; `activityIds` unknown are left out, as AWS does. */
  describeScalingActivities(filter: { group?: string; activityIds?: readonly string[]; maxRecords?: number }): ScalingActivityRecord[];
  createOrUpdateTags(group: string, tags: readonly Tag[]): Promise<void>;
  deleteTags(group: string, keys: readonly string[]): Promise<void>;

  // Lifecycle hooks
  putLifecycleHook(input: PutLifecycleHookInput): Promise<void>;
  describeLifecycleHooks(group: string, names?: readonly string[]): LifecycleHookRecord[];
  deleteLifecycleHook(group: string, name: string): Promise<void>;
  completeLifecycleAction(input: LifecycleActionInput & { result: 'CONTINUE' | 'ABANDON' }): Promise<void>;
  recordLifecycleActionHeartbeat(input: LifecycleActionInput): Promise<void>;

  // Instance refresh
  startInstanceRefresh(input: StartInstanceRefreshInput): Promise<string>;
  /** Newest first, each with its progress. */
  describeInstanceRefreshes(group: string, ids?: readonly string[]): InstanceRefreshView[];
  /** The id of the refresh being cancelled; none in progress: ActiveInstanceRefreshNotFound. */
  cancelInstanceRefresh(group: string): Promise<string>;
  rollbackInstanceRefresh(group: string): Promise<string>;
}
