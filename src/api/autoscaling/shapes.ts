import type { AutoScalingApi, InstanceRefreshView } from '../../autoscaling/autoscaling-api.ts';
import type {
  AutoScalingGroupRecord,
  AutoScalingInstanceRecord,
  LaunchTemplateRef,
  LifecycleHookRecord,
  ScalingActivityRecord,
} from '../../autoscaling/records.ts';
import type { Tag } from '../../domain/resources.ts';
import type { XmlObject } from '../xml.ts';

/**
 * Auto Scaling output shapes (botocore autoscaling 2011-01-01), filled from the facade's records.
 * What ebb has no counterpart for is said plainly rather than invented: one zone (the region's `a`,
 * since AWS requires the member), instance type `ebb.process` for a process ebb launches and
 * `ebb.attached` for a server it only routes to.
 */

/** The zone every instance is in: ebb has no zones, and the shapes require one. */
export function zoneOf(as: AutoScalingApi): string {
  return `${as.region}a`;
}

/** AWS's DefaultCooldown when none is given; ebb runs no scaling policies, so it is never waited on. */
const DEFAULT_COOLDOWN = 300;

/** What a group's lifecycle state reads as once it no longer counts as one of the group's instances. */
const GONE = new Set(['Terminated', 'Detached']);

/**
 * A LaunchTemplateSpecification with both the id and the name, as AWS shows it, whichever of the two
 * the group was given; the version as given (`$Default` when none was).
 */
export function templateSpecXml(ref: LaunchTemplateRef, as: AutoScalingApi): XmlObject {
  let id = ref.id;
  let name = ref.name;
  try {
    const filter = id !== undefined ? { ids: [id] } : name !== undefined ? { names: [name] } : undefined;
    const found = filter === undefined ? undefined : as.describeLaunchTemplates(filter)[0];
    if (found !== undefined) {
      id = found.id;
      name = found.name;
    }
  } catch {
    // A template that cannot be found is shown as the group names it; the facade reports it where it matters (at launch).
  }
  return { LaunchTemplateId: id, LaunchTemplateName: name, Version: ref.version ?? '$Default' };
}

function instanceTemplateXml(i: AutoScalingInstanceRecord): XmlObject | undefined {
  const t = i.launchTemplate;
  return t === undefined ? undefined : { LaunchTemplateId: t.id, LaunchTemplateName: t.name, Version: String(t.version) };
}

function instanceType(i: AutoScalingInstanceRecord): string {
  return i.origin === 'launched' ? 'ebb.process' : 'ebb.attached';
}

/** Whether an instance is still one of its group's (AWS drops terminated and detached ones from the group). */
export function isCurrent(i: AutoScalingInstanceRecord): boolean {
  return i.group !== null && !GONE.has(i.lifecycleState);
}

/** An Instance of a group (DescribeAutoScalingGroups): HealthStatus `Healthy`/`Unhealthy`, as AWS writes it there. */
export function groupInstanceXml(i: AutoScalingInstanceRecord, as: AutoScalingApi): XmlObject {
  return {
    InstanceId: i.instanceId,
    InstanceType: instanceType(i),
    AvailabilityZone: zoneOf(as),
    LifecycleState: i.lifecycleState,
    HealthStatus: i.healthStatus,
    LaunchTemplate: instanceTemplateXml(i),
    ProtectedFromScaleIn: i.protectedFromScaleIn,
  };
}

/**
 * An AutoScalingInstanceDetails (DescribeAutoScalingInstances): AWS writes HealthStatus in capitals
 * here (`HEALTHY`, `UNHEALTHY`; the model's own example shows it), unlike in the group's Instances.
 */
export function autoScalingInstanceXml(i: AutoScalingInstanceRecord & { group: string }, as: AutoScalingApi): XmlObject {
  return {
    InstanceId: i.instanceId,
    InstanceType: instanceType(i),
    AutoScalingGroupName: i.group,
    AvailabilityZone: zoneOf(as),
    LifecycleState: i.lifecycleState,
    HealthStatus: i.healthStatus.toUpperCase(),
    LaunchTemplate: instanceTemplateXml(i),
    ProtectedFromScaleIn: i.protectedFromScaleIn,
  };
}

/** A group's tag as a TagDescription. */
export function tagXml(group: string, tag: Tag): XmlObject {
  return { ResourceId: group, ResourceType: 'auto-scaling-group', Key: tag.key, Value: tag.value, PropagateAtLaunch: propagates(tag) };
}

/**
 * PropagateAtLaunch of a group's tag: the facade's Tag carries only key and value, and a group's
 * tags go to the instances it launches, so true unless the record says otherwise.
 */
function propagates(tag: Tag): boolean {
  const flag = (tag as { readonly propagateAtLaunch?: unknown }).propagateAtLaunch;
  return typeof flag === 'boolean' ? flag : true;
}

export function groupXml(
  group: AutoScalingGroupRecord,
  instances: readonly AutoScalingInstanceRecord[] | undefined,
  as: AutoScalingApi,
): XmlObject {
  return {
    AutoScalingGroupName: group.name,
    AutoScalingGroupARN: group.arn,
    LaunchTemplate: templateSpecXml(group.launchTemplate, as),
    MinSize: group.minSize,
    MaxSize: group.maxSize,
    DesiredCapacity: group.desiredCapacity,
    DefaultCooldown: DEFAULT_COOLDOWN,
    AvailabilityZones: [zoneOf(as)],
    LoadBalancerNames: [...group.loadBalancerNames],
    TargetGroupARNs: [...group.targetGroupArns],
    HealthCheckType: group.healthCheckType,
    HealthCheckGracePeriod: group.healthCheckGracePeriodSeconds,
    Instances: instances?.filter(isCurrent).map((i) => groupInstanceXml(i, as)),
    CreatedTime: new Date(group.createdAt),
    SuspendedProcesses: [],
    EnabledMetrics: [],
    Status: group.deleting !== undefined ? 'Delete in progress' : undefined,
    Tags: group.tags.map((t) => tagXml(group.name, t)),
    TerminationPolicies: [...group.terminationPolicies],
    NewInstancesProtectedFromScaleIn: group.newInstancesProtectedFromScaleIn,
    DefaultInstanceWarmup: group.defaultInstanceWarmupSeconds,
    TrafficSources: trafficSourcesOf(group),
  };
}

/** A group's traffic sources: its target groups (`elbv2`) and Classic load balancers (`elb`). */
export function trafficSourcesOf(group: AutoScalingGroupRecord): XmlObject[] {
  return [
    ...group.targetGroupArns.map((arn) => ({ Identifier: arn, Type: 'elbv2' })),
    ...group.loadBalancerNames.map((name) => ({ Identifier: name, Type: 'elb' })),
  ];
}

/** Group name to ARN, for activities (whose record names only the group). */
export function groupArns(as: AutoScalingApi): Map<string, string> {
  return new Map(as.describeAutoScalingGroups().map(({ group }) => [group.name, group.arn]));
}

export function activityXml(a: ScalingActivityRecord, arns: ReadonlyMap<string, string>): XmlObject {
  return {
    ActivityId: a.activityId,
    AutoScalingGroupName: a.group,
    Description: a.description,
    Cause: a.cause,
    StartTime: new Date(a.startTime),
    EndTime: a.endTime === undefined ? undefined : new Date(a.endTime),
    StatusCode: a.statusCode,
    StatusMessage: a.statusMessage,
    Progress: a.progress,
    Details: a.details,
    AutoScalingGroupARN: arns.get(a.group),
  };
}

/** AWS's GlobalTimeout: the lesser of 48 hours and 100 heartbeat timeouts. */
export function globalTimeout(heartbeatTimeoutSeconds: number): number {
  return Math.min(172_800, 100 * heartbeatTimeoutSeconds);
}

export function hookXml(h: LifecycleHookRecord): XmlObject {
  return {
    LifecycleHookName: h.name,
    AutoScalingGroupName: h.group,
    LifecycleTransition: h.transition,
    NotificationTargetARN: h.notificationTargetArn,
    RoleARN: h.roleArn,
    NotificationMetadata: h.notificationMetadata,
    HeartbeatTimeout: h.heartbeatTimeoutSeconds,
    GlobalTimeout: globalTimeout(h.heartbeatTimeoutSeconds),
    DefaultResult: h.defaultResult,
  };
}

/** An InstanceRefresh, with the facade's count of its progress. */
export function refreshXml(r: InstanceRefreshView, as: AutoScalingApi): XmlObject {
  const percent = r.percentageComplete;
  const toUpdate = r.instancesToUpdate;
  const p = r.preferences;
  return {
    InstanceRefreshId: r.id,
    AutoScalingGroupName: r.group,
    Status: r.status,
    StatusReason: r.statusReason,
    StartTime: new Date(r.startedAt),
    EndTime: r.endedAt === undefined ? undefined : new Date(r.endedAt),
    PercentageComplete: percent,
    InstancesToUpdate: toUpdate,
    ProgressDetails: { LivePoolProgress: { PercentageComplete: percent, InstancesToUpdate: toUpdate } },
    Preferences: {
      MinHealthyPercentage: p.minHealthyPercentage,
      InstanceWarmup: p.instanceWarmupSeconds,
      CheckpointPercentages: p.checkpointPercentages.length > 0 ? [...p.checkpointPercentages] : undefined,
      CheckpointDelay: p.checkpointPercentages.length > 0 ? p.checkpointDelaySeconds : undefined,
      SkipMatching: p.skipMatching,
      AutoRollback: false,
      MaxHealthyPercentage: p.maxHealthyPercentage,
    },
    DesiredConfiguration: { LaunchTemplate: templateSpecXml(r.target, as) },
    Strategy: 'Rolling',
  };
}
