/**
 * The Auto Scaling part of the configuration file against the facade: what exists now (from the
 * facade, or from a store's records for `ebb check` and the checks before a start), the check that
 * refuses a file before anything changes, and the steps of the plan (declared-plan.ts) run one by
 * one. The file as applied is kept in a `meta` record, the base of the next three-way merge.
 */
import type { ControlApi } from '../control/control-api.ts';
import type { DeclaredOp } from '../control/declared-plan.ts';
import type { StoreKind } from '../domain/store-port.ts';
import { describeError, ebbError } from '../shared/errors.ts';
import type { AutoScaling } from './auto-scaling.ts';
import type { PutLifecycleHookInput, UpdateGroupInput } from './autoscaling-api.ts';
import {
  AUTOSCALING_LAST_APPLIED_KEY,
  describeAutoScalingOp,
  planAutoScaling,
  same,
  type AutoScalingOp,
  type AutoScalingPlan,
  type CurrentAutoScaling,
  type CurrentGroup,
  type DeclaredAutoScaling,
  type DeclaredHook,
  type PlanProblem,
} from './declared-plan.ts';
import type { AutoScalingGroupRecord, AutoScalingInstanceRecord, LaunchTemplateRecord, LifecycleHookRecord } from './records.ts';

/** The records the plan is made from. */
export interface AutoScalingRecords {
  readonly templates: readonly LaunchTemplateRecord[];
  readonly groups: readonly AutoScalingGroupRecord[];
  readonly hooks: readonly LifecycleHookRecord[];
  readonly instances: readonly AutoScalingInstanceRecord[];
  /** The stored form of the file as last applied, or null. */
  readonly lastApplied: unknown;
}

export interface AutoScalingApplyResult {
  readonly created: string[];
  readonly changed: string[];
  readonly removed: string[];
  /** One line per change made. */
  readonly applied: string[];
  /** What the file declares and did not change since it was last applied, left as the API made it, and why. */
  readonly kept: string[];
  readonly mergedWith: string;
}

export interface AutoScalingCheckOptions {
  /** The text before a problem's message: where in the file it is (default: the field path). */
  readonly where?: (path: ReadonlyArray<string | number>) => string;
}

/** Steps made before one failed; the file as last applied stays the base, so the next reload or start does the rest. */
export class AutoScalingPartlyApplied extends Error {
  readonly applied: readonly string[];

  constructor(cause: unknown, applied: readonly string[]) {
    super(`${describeError(cause)} (the Auto Scaling part of the file was applied up to here: ${applied.length === 0 ? 'nothing' : applied.join('; ')}; the next reload or start applies the rest)`, { cause });
    this.name = 'AutoScalingPartlyApplied';
    this.applied = applied;
  }
}

const MERGED_WITH_LAST = 'the file as last applied';
const MERGED_WITH_NOTHING = 'nothing: no file was applied before in this state, so the file wins for what it declares';

/** The stored form of a declaration. */
export function storedAutoScaling(declared: DeclaredAutoScaling): { declared: DeclaredAutoScaling } {
  return { declared };
}

/** The declaration kept in the store, or null when there is none (the file then wins for what it declares). */
export function restoreAutoScaling(value: unknown): DeclaredAutoScaling | null {
  if (value === null || typeof value !== 'object') return null;
  const declared = (value as { declared?: Partial<DeclaredAutoScaling> | null }).declared;
  if (declared === undefined || declared === null || !Array.isArray(declared.launchTemplates) || !Array.isArray(declared.groups)) return null;
  return declared as DeclaredAutoScaling;
}

/** The records in a store's load (a copy of the state for `ebb check`, or the state before a start). */
export function recordsOfStore(loaded: ReadonlyMap<StoreKind, ReadonlyMap<string, unknown>>): AutoScalingRecords {
  const of = <T>(kind: StoreKind): T[] => [...(loaded.get(kind)?.values() ?? [])] as T[];
  return {
    templates: of<LaunchTemplateRecord>('launchTemplate'),
    groups: of<AutoScalingGroupRecord>('autoScalingGroup'),
    hooks: of<LifecycleHookRecord>('lifecycleHook'),
    instances: of<AutoScalingInstanceRecord>('autoScalingInstance'),
    lastApplied: loaded.get('meta')?.get(AUTOSCALING_LAST_APPLIED_KEY) ?? null,
  };
}

export function recordsOfFacade(as: AutoScaling): AutoScalingRecords {
  const groups = as.describeAutoScalingGroups();
  return {
    templates: as.describeLaunchTemplates(),
    groups: groups.map((g) => g.group),
    hooks: groups.flatMap((g) => as.describeLifecycleHooks(g.group.name)),
    instances: groups.flatMap((g) => g.instances),
    lastApplied: as.lastAppliedDeclaration(),
  };
}

/**
 * What exists, as the plan sees it. `elbOps`: the steps of the file's load balancing part still to
 * run, so the target groups it creates or removes count as they will be.
 */
export function currentAutoScaling(records: AutoScalingRecords, control: ControlApi, elbOps: readonly DeclaredOp[] = []): CurrentAutoScaling {
  const tgs = control.describeTargetGroups();
  const tgName = new Map(tgs.map((tg) => [tg.arn, tg.name]));
  const removed = new Set(elbOps.flatMap((op) => (op.op === 'removeTargetGroup' ? [op.name] : [])));
  const targetGroups = [
    ...tgs.filter((tg) => !removed.has(tg.name)).map((tg) => ({ name: tg.name, targetType: tg.targetType })),
    ...elbOps.flatMap((op) => (op.op === 'createTargetGroup' ? [{ name: op.group.name, targetType: op.group.targetType }] : [])),
  ];
  const templateName = new Map(records.templates.map((t) => [t.id, t.name]));
  const groups = records.groups.map(
    (g): CurrentGroup => ({
      name: g.name,
      source: g.source,
      deleting: g.deleting !== undefined,
      launchTemplate: g.launchTemplate.name ?? templateName.get(g.launchTemplate.id ?? '') ?? null,
      launchTemplateVersion: g.launchTemplate.version ?? '$Default',
      minSize: g.minSize,
      maxSize: g.maxSize,
      desiredCapacity: g.desiredCapacity,
      targetGroups: g.targetGroupArns.flatMap((arn) => tgName.get(arn) ?? []),
      loadBalancerNames: g.loadBalancerNames,
      healthCheckType: g.healthCheckType,
      healthCheckGracePeriod: g.healthCheckGracePeriodSeconds,
      ...(g.defaultInstanceWarmupSeconds === undefined ? {} : { defaultInstanceWarmup: g.defaultInstanceWarmupSeconds }),
      terminationPolicies: g.terminationPolicies,
      newInstancesProtectedFromScaleIn: g.newInstancesProtectedFromScaleIn,
      lifecycleHooks: records.hooks.filter((h) => h.group === g.name).map(hookOf),
      instances: records.instances.filter((i) => i.group === g.name && i.lifecycleState !== 'Terminated').length,
    }),
  );
  return {
    templates: records.templates.map((t) => ({
      name: t.name,
      source: t.source,
      defaultVersion: t.defaultVersion,
      latestVersion: t.latestVersion,
      defaultData: t.versions.find((v) => v.versionNumber === t.defaultVersion)?.data ?? {},
      versions: t.versions.map((v) => ({ number: v.versionNumber, runnable: v.data.userData !== undefined || v.data.command !== undefined })),
    })),
    groups,
    targetGroups,
    classicLoadBalancers: control.describeLoadBalancers({ type: 'classic' }).map((lb) => lb.name),
  };
}

/** A hook as the file would write it. Any target (an ARN too) is kept as the URL, so it differs from a file's without one. */
function hookOf(h: LifecycleHookRecord): DeclaredHook {
  return {
    name: h.name,
    transition: h.transition,
    heartbeatTimeout: h.heartbeatTimeoutSeconds,
    defaultResult: h.defaultResult,
    ...(h.notificationTargetArn === undefined ? {} : { notificationTargetURL: h.notificationTargetArn }),
    ...(h.notificationCommand === undefined ? {} : { notificationCommand: h.notificationCommand }),
    ...(h.notificationMetadata === undefined || h.notificationMetadata === '' ? {} : { notificationMetadata: h.notificationMetadata }),
  };
}

/**
 * The plan for `declared` against `records`, or ConfigInvalid naming every problem (where in the
 * file, and why) when the file cannot be applied now; then nothing may change.
 */
export function checkAutoScaling(
  declared: DeclaredAutoScaling,
  records: AutoScalingRecords,
  control: ControlApi,
  elbOps: readonly DeclaredOp[] = [],
  options: AutoScalingCheckOptions = {},
): AutoScalingPlan {
  const plan = planAutoScaling(restoreAutoScaling(records.lastApplied), declared, currentAutoScaling(records, control, elbOps));
  if (plan.problems.length > 0) throw refusal(plan.problems, options);
  return plan;
}

function refusal(problems: readonly PlanProblem[], options: AutoScalingCheckOptions): Error {
  const where = options.where ?? pathText;
  return ebbError('ConfigInvalid', `${problems.map((p) => `${where(p.path)}: ${p.message}`).join('\n')}\nNothing was changed.`);
}

function pathText(path: ReadonlyArray<string | number>): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/**
 * Applies the Auto Scaling part of the file: plans it against what exists now, refuses it whole
 * (ConfigInvalid, nothing changed) when it cannot be applied, else runs each step and keeps the file
 * as the last applied one. A step that fails throws AutoScalingPartlyApplied.
 */
export async function applyAutoScaling(
  as: AutoScaling,
  control: ControlApi,
  declared: DeclaredAutoScaling,
  options: AutoScalingCheckOptions = {},
): Promise<AutoScalingApplyResult> {
  const records = recordsOfFacade(as);
  const last = restoreAutoScaling(records.lastApplied);
  const plan = checkAutoScaling(declared, records, control, [], options);
  const r: AutoScalingApplyResult = { created: [], changed: [], removed: [], applied: [], kept: [...plan.kept], mergedWith: last === null ? MERGED_WITH_NOTHING : MERGED_WITH_LAST };
  try {
    for (const op of plan.ops) {
      const line = await step(as, control, op, r);
      if (line !== null) r.applied.push(line);
    }
    if (!same(last, declared)) await as.recordAppliedDeclaration(storedAutoScaling(declared));
  } catch (error) {
    throw new AutoScalingPartlyApplied(error, r.applied);
  }
  return r;
}

/** Runs one step; resolves with the line saying what it did, or null when it changed nothing. */
async function step(as: AutoScaling, control: ControlApi, op: AutoScalingOp, r: AutoScalingApplyResult): Promise<string | null> {
  switch (op.op) {
    case 'putTemplate': {
      const done = await as.putDeclaredLaunchTemplate(op.template);
      const t = done.template;
      if (done.change === 'created') r.created.push(`launch template ${t.name}`);
      else if (done.change !== 'unchanged') r.changed.push(`launch template ${t.name}`);
      if (done.change === 'new-version') return `launch template ${t.name}: version ${t.defaultVersion}, with the file's new data, is now the default (instances running keep theirs; no instance refresh is started)`;
      return done.change === 'unchanged' ? null : describeAutoScalingOp({ ...op, change: done.change === 'created' ? 'create' : 'adopt' });
    }
    case 'createGroup': {
      const g = op.group;
      await as.createDeclaredGroup({
        name: g.name,
        launchTemplate: { name: g.launchTemplate, version: g.launchTemplateVersion },
        minSize: g.minSize,
        maxSize: g.maxSize,
        ...(g.desiredCapacity === undefined ? {} : { desiredCapacity: g.desiredCapacity }),
        targetGroupArns: arns(control, g.targetGroups),
        loadBalancerNames: g.loadBalancerNames,
        healthCheckType: g.healthCheckType,
        healthCheckGracePeriodSeconds: g.healthCheckGracePeriod,
        ...(g.defaultInstanceWarmup === undefined ? {} : { defaultInstanceWarmupSeconds: g.defaultInstanceWarmup }),
        terminationPolicies: g.terminationPolicies,
        newInstancesProtectedFromScaleIn: g.newInstancesProtectedFromScaleIn,
        // In the same command, so no instance launches before its launching hooks exist.
        lifecycleHooks: g.lifecycleHooks.map((h) => hookInput(g.name, h)),
      });
      r.created.push(`Auto Scaling group ${g.name}`);
      return describeAutoScalingOp(op);
    }
    case 'adoptGroup':
      await as.adoptDeclaredGroup(op.name);
      return describeAutoScalingOp(op);
    case 'setGroup': {
      const s = op.settings;
      const input: UpdateGroupInput = {
        name: op.name,
        ...(s.launchTemplate === undefined ? {} : { launchTemplate: { name: s.launchTemplate.name, version: s.launchTemplate.version } }),
        ...(s.minSize === undefined ? {} : { minSize: s.minSize }),
        ...(s.maxSize === undefined ? {} : { maxSize: s.maxSize }),
        ...(s.desiredCapacity === undefined ? {} : { desiredCapacity: s.desiredCapacity }),
        ...(s.healthCheckType === undefined ? {} : { healthCheckType: s.healthCheckType }),
        ...(s.healthCheckGracePeriod === undefined ? {} : { healthCheckGracePeriodSeconds: s.healthCheckGracePeriod }),
        ...(s.defaultInstanceWarmup === undefined ? {} : { defaultInstanceWarmupSeconds: s.defaultInstanceWarmup ?? -1 }),
        ...(s.terminationPolicies === undefined ? {} : { terminationPolicies: s.terminationPolicies }),
        ...(s.newInstancesProtectedFromScaleIn === undefined ? {} : { newInstancesProtectedFromScaleIn: s.newInstancesProtectedFromScaleIn }),
      };
      await as.updateDeclaredGroup(input);
      r.changed.push(`Auto Scaling group ${op.name}`);
      return describeAutoScalingOp(op);
    }
    case 'attach':
      if (op.targetGroups.length > 0) await as.attachLoadBalancerTargetGroups(op.group, arns(control, op.targetGroups));
      if (op.loadBalancerNames.length > 0) await as.attachLoadBalancers(op.group, op.loadBalancerNames);
      r.changed.push(`Auto Scaling group ${op.group}`);
      return describeAutoScalingOp(op);
    case 'detach': {
      // Their instances drain out of what is detached, as AWS's "Removing" state waits for in-flight requests.
      const known = arns(control, op.targetGroups.filter((n) => control.describeTargetGroups().some((tg) => tg.name === n)));
      if (known.length > 0) await as.detachLoadBalancerTargetGroups(op.group, known);
      if (op.loadBalancerNames.length > 0) await as.detachLoadBalancers(op.group, op.loadBalancerNames);
      r.changed.push(`Auto Scaling group ${op.group}`);
      return describeAutoScalingOp(op);
    }
    case 'putHook':
      if (op.replace) await as.deleteLifecycleHook(op.group, op.hook.name);
      await as.putDeclaredLifecycleHook(hookInput(op.group, op.hook));
      r.changed.push(`Auto Scaling group ${op.group}`);
      return describeAutoScalingOp(op);
    case 'deleteHook':
      if (!as.describeLifecycleHooks(op.group).some((h) => h.name === op.name)) return null;
      await as.deleteLifecycleHook(op.group, op.name);
      r.changed.push(`Auto Scaling group ${op.group}`);
      return describeAutoScalingOp(op);
    case 'deleteGroup':
      await as.deleteDeclaredGroup(op.name);
      r.removed.push(`Auto Scaling group ${op.name}`);
      return describeAutoScalingOp(op);
    case 'deleteTemplate': {
      const template = as.describeLaunchTemplates().find((t) => t.name === op.name);
      if (template === undefined) return null;
      const users = as
        .describeAutoScalingGroups()
        .filter(({ group }) => group.launchTemplate.id === template.id || group.launchTemplate.name === template.name)
        .map(({ group }) => group.name);
      if (users.length > 0) {
        // As EC2 refuses to delete a template a group uses: it goes once they are gone.
        r.kept.push(`launch template ${op.name}, no longer declared, stays while Auto Scaling group ${users.join(', ')} uses it; it is deleted at the first reload or start after`);
        return null;
      }
      await as.deleteLaunchTemplate({ name: op.name });
      r.removed.push(`launch template ${op.name}`);
      return `deleted launch template ${op.name}`;
    }
  }
}

function hookInput(group: string, h: DeclaredHook): PutLifecycleHookInput {
  return {
    group,
    name: h.name,
    transition: h.transition,
    heartbeatTimeoutSeconds: h.heartbeatTimeout,
    defaultResult: h.defaultResult,
    // An empty target unsets one the hook had (a put keeps what it is not given).
    notificationTargetArn: h.notificationTargetURL ?? '',
    ...(h.notificationCommand === undefined ? {} : { notificationCommand: h.notificationCommand }),
    ...(h.notificationMetadata === undefined ? {} : { notificationMetadata: h.notificationMetadata }),
  };
}

/** Target group ARNs by name (checked to exist before any step ran). */
function arns(control: ControlApi, names: readonly string[]): string[] {
  const tgs = control.describeTargetGroups();
  return names.map((n) => {
    const tg = tgs.find((t) => t.name === n);
    if (tg === undefined) throw ebbError('ValidationError', `Target group '${n}' not found; declare it under targetGroups or create it first.`);
    return tg.arn;
  });
}
