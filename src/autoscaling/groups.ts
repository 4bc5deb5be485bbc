/**
 * The rules a group's settings obey (CreateAutoScalingGroup, UpdateAutoScalingGroup), and the order
 * in which a termination policy picks instances to leave. Pure: the facade commits what these build.
 */
import { ebbError } from '../shared/errors.ts';
import type { AutoScalingGroupRecord, AutoScalingInstanceRecord, HealthCheckType, TerminationPolicy } from './records.ts';

/** A group launches processes on this machine: a bound keeps a typo from starting thousands. */
export const MAX_GROUP_SIZE = 100;
export const MAX_GROUPS = 50;
export const MAX_HOOKS_PER_GROUP = 50;

const TERMINATION_POLICIES: ReadonlySet<string> = new Set(['Default', 'OldestInstance', 'NewestInstance', 'OldestLaunchTemplate']);

export function checkGroupName(name: string): void {
  if (name.length < 1 || name.length > 255) {
    throw ebbError('ValidationError', `The Auto Scaling group name must be 1 to 255 characters long; "${name.slice(0, 40)}" is ${name.length}.`);
  }
  if (/[\u0000-\u001f:]/.test(name)) {
    throw ebbError('ValidationError', `The Auto Scaling group name "${name}" has a control character or a colon; use letters, digits, - and _.`);
  }
}

export function checkSizes(minSize: number, maxSize: number, desired: number): void {
  for (const [field, value] of [
    ['MinSize', minSize],
    ['MaxSize', maxSize],
    ['DesiredCapacity', desired],
  ] as const) {
    if (!Number.isInteger(value) || value < 0) throw ebbError('ValidationError', `${field} must be a whole number of 0 or more; got ${value}.`);
  }
  if (maxSize > MAX_GROUP_SIZE) {
    throw ebbError('ValidationError', `MaxSize ${maxSize} is above ebb's limit of ${MAX_GROUP_SIZE} instances a group (each instance is a process on this machine).`);
  }
  if (minSize > maxSize) throw ebbError('ValidationError', `MinSize (${minSize}) must be less than or equal to MaxSize (${maxSize}).`);
  if (desired < minSize || desired > maxSize) {
    throw ebbError('ValidationError', `Desired capacity:${desired} must be between the specified min size:${minSize} and max size:${maxSize}`);
  }
}

export function checkHealthCheck(type: HealthCheckType, graceSeconds: number): void {
  if (type !== 'EC2' && type !== 'ELB') throw ebbError('ValidationError', `HealthCheckType must be EC2 or ELB; got ${String(type)}.`);
  if (!Number.isInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > 172_800) {
    throw ebbError('ValidationError', `HealthCheckGracePeriod must be a whole number of seconds from 0 to 172800; got ${graceSeconds}.`);
  }
}

export function checkWarmup(seconds: number | undefined): void {
  if (seconds === undefined) return;
  if (!Number.isInteger(seconds) || seconds < -1 || seconds > 172_800) {
    throw ebbError('ValidationError', `DefaultInstanceWarmup must be a whole number of seconds from 0 to 172800 (-1 clears it); got ${seconds}.`);
  }
}

export function checkTerminationPolicies(policies: readonly string[]): readonly TerminationPolicy[] {
  for (const p of policies) {
    if (!TERMINATION_POLICIES.has(p)) {
      throw ebbError('ValidationError', `Termination policy "${p}" is not one ebb knows: use Default, OldestInstance, NewestInstance or OldestLaunchTemplate.`);
    }
  }
  return policies as readonly TerminationPolicy[];
}

/** The group's instances that count toward its capacity: launching or in service, and not leaving. */
export function countedInstances(instances: readonly AutoScalingInstanceRecord[]): AutoScalingInstanceRecord[] {
  return instances.filter(
    (i) => i.departure === undefined && (i.lifecycleState === 'InService' || i.lifecycleState.startsWith('Pending')),
  );
}

/**
 * The instances a scale-in takes, `count` of them, in the order the group's termination policies
 * choose. Instances protected from scale-in are never chosen. Default is OldestLaunchTemplate, then
 * OldestInstance: ebb has no zones to balance and no billing hour to be near.
 */
export function chooseForScaleIn(
  group: AutoScalingGroupRecord,
  candidates: readonly AutoScalingInstanceRecord[],
  count: number,
  currentTemplate: { id: string; version: number } | undefined,
): AutoScalingInstanceRecord[] {
  const policies = group.terminationPolicies.length === 0 ? (['Default'] as const) : group.terminationPolicies;
  const steps = policies.flatMap((p) => (p === 'Default' ? (['OldestLaunchTemplate', 'OldestInstance'] as const) : [p]));
  const outdated = (i: AutoScalingInstanceRecord): number =>
    currentTemplate !== undefined && i.launchTemplate !== undefined && (i.launchTemplate.id !== currentTemplate.id || i.launchTemplate.version !== currentTemplate.version) ? 0 : 1;
  const order = (a: AutoScalingInstanceRecord, b: AutoScalingInstanceRecord): number => {
    // Instances not yet in service go first: they carry no traffic.
    const pending = Number(a.lifecycleState === 'InService') - Number(b.lifecycleState === 'InService');
    if (pending !== 0) return pending;
    for (const step of steps) {
      let d = 0;
      if (step === 'OldestLaunchTemplate') d = outdated(a) - outdated(b) || (a.launchTemplate?.version ?? 0) - (b.launchTemplate?.version ?? 0);
      else if (step === 'OldestInstance') d = a.launchedAt - b.launchedAt;
      else if (step === 'NewestInstance') d = b.launchedAt - a.launchedAt;
      if (d !== 0) return d;
    }
    return a.instanceId < b.instanceId ? -1 : 1;
  };
  return candidates
    .filter((i) => !i.protectedFromScaleIn)
    .slice()
    .sort(order)
    .slice(0, Math.max(0, count));
}
