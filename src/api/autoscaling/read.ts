import type { AutoScalingApi, PutLifecycleHookInput } from '../../autoscaling/autoscaling-api.ts';
import type { HealthCheckType, LaunchTemplateRef, LifecycleTransition, TerminationPolicy } from '../../autoscaling/records.ts';
import type { Tag } from '../../domain/resources.ts';
import { ebbError } from '../../shared/errors.ts';
import type { XmlObject } from '../xml.ts';
import { type AsParams, badMember } from './params.ts';

/** Readers for the members several Auto Scaling actions share. */

/** The model's lengths for the names every action takes. */
export const GROUP_NAME = { min: 1, max: 255 } as const;
export const INSTANCE_ID = { min: 1, max: 19 } as const;
export const HOOK_NAME = { min: 1, max: 255 } as const;

export const TRANSITIONS: readonly LifecycleTransition[] = ['autoscaling:EC2_INSTANCE_LAUNCHING', 'autoscaling:EC2_INSTANCE_TERMINATING'];
export const ACTION_RESULTS = ['CONTINUE', 'ABANDON'] as const;
export const TERMINATION_POLICIES: readonly TerminationPolicy[] = ['Default', 'OldestInstance', 'NewestInstance', 'OldestLaunchTemplate'];

const LAUNCH_TEMPLATES_ONLY =
  'ebb launches instances from launch templates; create one with aws ec2 create-launch-template and name it in LaunchTemplate (LaunchTemplateId or LaunchTemplateName, and Version)';

export function groupName(p: AsParams): string {
  return p.requiredStr('AutoScalingGroupName', GROUP_NAME);
}

/** Launch configurations and mixed instances policies are EC2 fleet features ebb has no counterpart for. */
export function refuseLaunchConfiguration(p: AsParams): void {
  p.refuse('LaunchConfigurationName', LAUNCH_TEMPLATES_ONLY);
  p.refuse('MixedInstancesPolicy', LAUNCH_TEMPLATES_ONLY);
}

/** A LaunchTemplateSpecification (`LaunchTemplate`): one of the id and the name, and an optional version. */
export function readTemplate(p: AsParams, name: string): LaunchTemplateRef | undefined {
  const s = p.struct(name);
  if (s === undefined) return undefined;
  const id = s.str('LaunchTemplateId', { min: 1, max: 255 });
  const templateName = s.str('LaunchTemplateName', { min: 3, max: 128 });
  const version = s.str('Version', { min: 1, max: 255 });
  if ((id === undefined) === (templateName === undefined)) {
    throw ebbError('ValidationError', `${name}: specify exactly one of LaunchTemplateId and LaunchTemplateName`);
  }
  return { ...(id !== undefined ? { id } : {}), ...(templateName !== undefined ? { name: templateName } : {}), ...(version !== undefined ? { version } : {}) };
}

/**
 * HealthCheckType is a comma list on AWS (`EC2,ELB`); EC2 checks are always on, so the list reads as
 * ELB when it names ELB and EC2 otherwise. EBS and VPC_LATTICE have no counterpart in ebb.
 */
export function readHealthCheckType(p: AsParams): HealthCheckType | undefined {
  const value = p.str('HealthCheckType', { min: 1, max: 32 });
  if (value === undefined) return undefined;
  const kinds = value.split(',').map((s) => s.trim());
  for (const kind of kinds) {
    if (kind === 'EBS' || kind === 'VPC_LATTICE') {
      throw ebbError('ValidationError', `HealthCheckType ${kind} is not supported by ebb; use EC2 (the process runs) or ELB (its targets pass their health checks)`);
    }
    if (kind !== 'EC2' && kind !== 'ELB') throw badMember('HealthCheckType', value, 'Member must be a comma-separated list of EC2, ELB, EBS and VPC_LATTICE');
  }
  return kinds.includes('ELB') ? 'ELB' : 'EC2';
}

export function readTerminationPolicies(p: AsParams): TerminationPolicy[] | undefined {
  const values = p.list('TerminationPolicies', { length: { min: 1, max: 1600 } });
  return values?.map((v) => {
    if (!(TERMINATION_POLICIES as readonly string[]).includes(v)) {
      throw ebbError('ValidationError', `Termination policy '${v}' is not supported by ebb; use ${TERMINATION_POLICIES.join(', ')}`);
    }
    return v as TerminationPolicy;
  });
}

/**
 * The members of a lifecycle hook shared by PutLifecycleHook and LifecycleHookSpecification, with
 * AWS's ranges (HeartbeatTimeout 30-7200 seconds).
 */
export function readHookSettings(p: AsParams): Omit<PutLifecycleHookInput, 'group' | 'name' | 'transition'> {
  const target = p.str('NotificationTargetARN', { max: 255 });
  const role = p.str('RoleARN', { min: 1, max: 255 });
  const metadata = p.str('NotificationMetadata', { min: 1, max: 4000 });
  const heartbeat = p.int('HeartbeatTimeout', { min: 30, max: 7200 });
  const result = p.enumOf('DefaultResult', ACTION_RESULTS);
  return {
    ...(target !== undefined && target !== '' ? { notificationTargetArn: target } : {}),
    ...(role !== undefined ? { roleArn: role } : {}),
    ...(metadata !== undefined ? { notificationMetadata: metadata } : {}),
    ...(heartbeat !== undefined ? { heartbeatTimeoutSeconds: heartbeat } : {}),
    ...(result !== undefined ? { defaultResult: result } : {}),
  };
}

/** LifecycleHookSpecificationList of CreateAutoScalingGroup: name and transition required. */
export function readHookSpecs(p: AsParams, group: string): PutLifecycleHookInput[] | undefined {
  return p.structList('LifecycleHookSpecificationList')?.map((s) => ({
    group,
    name: s.requiredStr('LifecycleHookName', HOOK_NAME),
    transition: s.requiredEnum('LifecycleTransition', TRANSITIONS),
    ...readHookSettings(s),
  }));
}

/** A group's tag as given (Tags.member.N): the group it is for, when named, and the tag. */
export interface GroupTag {
  readonly group: string | undefined;
  readonly tag: Tag;
}

/**
 * Tags (ResourceId, ResourceType, Key, Value, PropagateAtLaunch). ResourceType is always
 * `auto-scaling-group`; `resourceRequired` as CreateOrUpdateTags and DeleteTags have it.
 * PropagateAtLaunch is read for its shape only: a group's tags always go to its instances in ebb.
 */
export function readGroupTags(p: AsParams, resourceRequired: boolean): GroupTag[] | undefined {
  const list = resourceRequired ? p.requiredStructList('Tags') : p.structList('Tags');
  return list?.map((t) => {
    const type = resourceRequired ? t.requiredStr('ResourceType') : t.str('ResourceType');
    const id = resourceRequired ? t.requiredStr('ResourceId') : t.str('ResourceId', { min: 1 });
    if (type !== undefined && type !== 'auto-scaling-group') {
      throw ebbError('ValidationError', `ResourceType '${type}' is not valid: tags here are on groups, ResourceType auto-scaling-group`);
    }
    t.bool('PropagateAtLaunch');
    return { group: id, tag: { key: t.requiredStr('Key', { min: 1, max: 128 }), value: t.str('Value', { max: 256 }) ?? '' } };
  });
}

/** One Auto Scaling action, given its parameters and the running facade. */
export type AsHandler = (p: AsParams, as: AutoScalingApi) => Promise<XmlObject | undefined>;
export type AsTable = Readonly<Record<string, AsHandler>>;

/**
 * The members of Create/UpdateAutoScalingGroup that would change what a group does and that ebb
 * does not do: refused, so nobody relies on them. The members about AWS placement and fleets
 * (AvailabilityZones, AvailabilityZoneIds, VPCZoneIdentifier, PlacementGroup, DefaultCooldown,
 * CapacityRebalance, ServiceLinkedRoleARN, Context, the zone and capacity reservation settings) are
 * accepted and ignored: ebb runs on one host, with no zones and no cooldowns.
 */
export function checkGroupExtras(p: AsParams): void {
  refuseLaunchConfiguration(p);
  p.refuse('InstanceId', LAUNCH_TEMPLATES_ONLY);
  p.refuse('InstanceLifecyclePolicy', 'instances are always terminated after their lifecycle hooks');
  const lifetime = p.int('MaxInstanceLifetime', { min: 0 });
  if (lifetime !== undefined && lifetime > 0) {
    throw ebbError('ValidationError', 'MaxInstanceLifetime is not supported by ebb: it does not replace instances by age; replace them with StartInstanceRefresh');
  }
  const maintenance = p.struct('InstanceMaintenancePolicy');
  if (maintenance !== undefined) {
    const min = maintenance.int('MinHealthyPercentage', { min: -1, max: 100 });
    const max = maintenance.int('MaxHealthyPercentage', { min: -1, max: 200 });
    if ((min ?? -1) !== -1 || (max ?? -1) !== -1) {
      throw ebbError('ValidationError', 'InstanceMaintenancePolicy is not supported by ebb; give MinHealthyPercentage and MaxHealthyPercentage in StartInstanceRefresh Preferences');
    }
  }
  const protection = p.enumOf('DeletionProtection', ['none', 'prevent-force-deletion', 'prevent-all-deletion'] as const);
  if (protection !== undefined && protection !== 'none') {
    throw ebbError('ValidationError', `DeletionProtection '${protection}' is not supported by ebb; leave it unset or 'none'`);
  }
  const capacityType = p.str('DesiredCapacityType');
  if (capacityType !== undefined && capacityType !== 'units') {
    throw ebbError('ValidationError', `DesiredCapacityType '${capacityType}' is not supported by ebb: capacity is counted in instances ('units')`);
  }
  p.list('AvailabilityZones');
  p.str('VPCZoneIdentifier', { min: 1, max: 5000 });
  p.int('DefaultCooldown');
  p.bool('CapacityRebalance');
}

/**
 * TargetGroupARNs and LoadBalancerNames, with the TrafficSources list (Identifier, Type) folded in:
 * `elbv2` is a target group ARN, `elb` a Classic load balancer name.
 */
export function readAttachments(p: AsParams): { targetGroupArns?: string[]; loadBalancerNames?: string[] } {
  const arns = p.list('TargetGroupARNs', { length: { min: 1, max: 511 } });
  const names = p.list('LoadBalancerNames', { length: { min: 1, max: 255 } });
  const sources = readTrafficSources(p, false);
  if (sources === undefined) return { ...(arns !== undefined ? { targetGroupArns: arns } : {}), ...(names !== undefined ? { loadBalancerNames: names } : {}) };
  return {
    targetGroupArns: [...(arns ?? []), ...sources.targetGroupArns],
    loadBalancerNames: [...(names ?? []), ...sources.loadBalancerNames],
  };
}

/**
 * TrafficSources.member.N (Identifier, Type). Without a Type, an ARN is a target group's; a Classic
 * load balancer must say `elb` (as AWS requires). VPC Lattice has no counterpart in ebb.
 */
export function readTrafficSources(p: AsParams, required: boolean): { targetGroupArns: string[]; loadBalancerNames: string[] } | undefined {
  const list = required ? p.requiredStructList('TrafficSources') : p.structList('TrafficSources');
  if (list === undefined) return undefined;
  const out = { targetGroupArns: [] as string[], loadBalancerNames: [] as string[] };
  for (const s of list) {
    const id = s.requiredStr('Identifier', { min: 1, max: 511 });
    const type = s.str('Type', { min: 1, max: 511 }) ?? (id.startsWith('arn:') ? 'elbv2' : undefined);
    if (type === 'elbv2') out.targetGroupArns.push(id);
    else if (type === 'elb') out.loadBalancerNames.push(id);
    else if (type === undefined) {
      throw ebbError('ValidationError', `Traffic source '${id}' needs a Type: elbv2 for a target group ARN, elb for a Classic load balancer name`);
    } else {
      throw ebbError('ValidationError', `Traffic source type '${type}' is not supported by ebb; use elbv2 (a target group ARN) or elb (a Classic load balancer name)`);
    }
  }
  return out;
}
