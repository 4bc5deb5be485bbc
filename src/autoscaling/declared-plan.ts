/**
 * The Auto Scaling part of the configuration file applied as a three-way merge, as the load
 * balancing part is (src/control/declared-plan.ts): the file as last applied, the file now, and what
 * exists now. What the file changed since it was last applied is applied; what the API changed since
 * (a SetDesiredCapacity, a hook, a new default template version) and the file did not touch stays, and
 * is reported as kept. Pure: `planAutoScaling` computes the steps; declared.ts runs them.
 */
import { checkSizes, MAX_GROUPS, MAX_HOOKS_PER_GROUP } from './groups.ts';
import { normaliseData, sameData } from './launch-template-rules.ts';
import type { DeclaredLaunchTemplate } from './launch-templates.ts';
import type { HealthCheckType, LaunchTemplateData, LifecycleTransition, TerminationPolicy } from './records.ts';
import { samePlainData } from '../shared/plain-data.ts';

/** The `meta` record that keeps the Auto Scaling part of the file as it was last applied. */
export const AUTOSCALING_LAST_APPLIED_KEY = 'config.autoScaling.lastApplied';

/** What the file declares, by name (the file never sees ids or ARNs). */
export interface DeclaredAutoScaling {
  readonly launchTemplates: readonly DeclaredLaunchTemplate[];
  readonly groups: readonly DeclaredGroup[];
}

export interface DeclaredGroup {
  readonly name: string;
  /** The template's name. */
  readonly launchTemplate: string;
  /** `$Default`, `$Latest` or a version number, as text. */
  readonly launchTemplateVersion: string;
  readonly minSize: number;
  readonly maxSize: number;
  /** Unset: the file has no say (a new group starts at minSize; the API's value always stays). */
  readonly desiredCapacity?: number;
  /** Target group names. */
  readonly targetGroups: readonly string[];
  /** Classic load balancer names. */
  readonly loadBalancerNames: readonly string[];
  readonly healthCheckType: HealthCheckType;
  readonly healthCheckGracePeriod: number;
  readonly defaultInstanceWarmup?: number;
  readonly terminationPolicies: readonly TerminationPolicy[];
  readonly newInstancesProtectedFromScaleIn: boolean;
  readonly lifecycleHooks: readonly DeclaredHook[];
}

export interface DeclaredHook {
  readonly name: string;
  readonly transition: LifecycleTransition;
  readonly heartbeatTimeout: number;
  readonly defaultResult: 'CONTINUE' | 'ABANDON';
  readonly notificationTargetURL?: string;
  readonly notificationCommand?: readonly string[];
  readonly notificationMetadata?: string;
}

/** What exists now, by name, as the plan sees it. */
export interface CurrentAutoScaling {
  readonly templates: readonly CurrentTemplate[];
  readonly groups: readonly CurrentGroup[];
  /** The target groups there will be once the file's load balancing part is applied. */
  readonly targetGroups: ReadonlyArray<{ readonly name: string; readonly targetType: 'instance' | 'ip' }>;
  readonly classicLoadBalancers: readonly string[];
}

export interface CurrentTemplate {
  readonly name: string;
  readonly source: 'api' | 'config';
  readonly defaultVersion: number;
  readonly latestVersion: number;
  /** The data of the default version. */
  readonly defaultData: LaunchTemplateData;
  /** Each version, and whether it has something to run (a command or user data). */
  readonly versions: ReadonlyArray<{ readonly number: number; readonly runnable: boolean }>;
}

/** A group as the file would write it, with where it came from. */
export interface CurrentGroup extends Omit<DeclaredGroup, 'launchTemplate' | 'desiredCapacity'> {
  /** Null: the group names a template that no longer exists (by id). */
  readonly launchTemplate: string | null;
  readonly desiredCapacity: number;
  readonly source: 'api' | 'config';
  /** Being deleted (DeleteAutoScalingGroup, or the file no longer declares it). */
  readonly deleting: boolean;
  readonly instances: number;
}

/** Settings of a group the plan sets; `defaultInstanceWarmup` null clears it. */
export interface GroupSettings {
  readonly launchTemplate?: { readonly name: string; readonly version: string };
  readonly minSize?: number;
  readonly maxSize?: number;
  readonly desiredCapacity?: number;
  readonly healthCheckType?: HealthCheckType;
  readonly healthCheckGracePeriod?: number;
  readonly defaultInstanceWarmup?: number | null;
  readonly terminationPolicies?: readonly TerminationPolicy[];
  readonly newInstancesProtectedFromScaleIn?: boolean;
}

/** One step, naming things as the file does. Run in the order given. */
export type AutoScalingOp =
  | { readonly op: 'putTemplate'; readonly template: DeclaredLaunchTemplate; readonly change: 'create' | 'new-version' | 'adopt' }
  | { readonly op: 'createGroup'; readonly group: DeclaredGroup }
  | { readonly op: 'adoptGroup'; readonly name: string }
  | { readonly op: 'setGroup'; readonly name: string; readonly settings: GroupSettings }
  | { readonly op: 'attach' | 'detach'; readonly group: string; readonly targetGroups: readonly string[]; readonly loadBalancerNames: readonly string[] }
  /** `replace`: deleted first, as the file dropped a field a put cannot unset (its outstanding actions complete). */
  | { readonly op: 'putHook'; readonly group: string; readonly hook: DeclaredHook; readonly replace: boolean }
  | { readonly op: 'deleteHook'; readonly group: string; readonly name: string }
  | { readonly op: 'deleteGroup'; readonly name: string; readonly instances: number }
  | { readonly op: 'deleteTemplate'; readonly name: string };

/** Something the plan cannot do, at a field path of the file. */
export interface PlanProblem {
  readonly path: ReadonlyArray<string | number>;
  readonly message: string;
}

export interface AutoScalingPlan {
  readonly ops: readonly AutoScalingOp[];
  readonly kept: readonly string[];
  /** Non-empty: the file cannot be applied now, and nothing may change. */
  readonly problems: readonly PlanProblem[];
}

export function planAutoScaling(last: DeclaredAutoScaling | null, next: DeclaredAutoScaling, current: CurrentAutoScaling): AutoScalingPlan {
  return new Planner(last, next, current).plan();
}

/** The versions a template will have once the plan's template steps ran. */
interface TemplateAfter {
  readonly defaultVersion: number;
  readonly latestVersion: number;
  readonly versions: ReadonlyArray<{ readonly number: number; readonly runnable: boolean }>;
}

const SETTINGS = ['launchTemplate', 'minSize', 'maxSize', 'desiredCapacity', 'healthCheckType', 'healthCheckGracePeriod', 'defaultInstanceWarmup', 'terminationPolicies', 'newInstancesProtectedFromScaleIn'] as const;

class Planner {
  readonly #last: DeclaredAutoScaling | null;
  readonly #next: DeclaredAutoScaling;
  readonly #current: CurrentAutoScaling;
  readonly #kept: string[] = [];
  readonly #problems: PlanProblem[] = [];
  // Templates first (a group needs its template), then the groups, then what goes.
  readonly #templates: AutoScalingOp[] = [];
  readonly #groups: AutoScalingOp[] = [];
  readonly #removals: AutoScalingOp[] = [];
  readonly #after = new Map<string, TemplateAfter>();
  /** Declared templates the API deleted, left deleted unless a group the plan creates or changes needs one. */
  readonly #deletedByApi = new Map<string, DeclaredLaunchTemplate>();

  constructor(last: DeclaredAutoScaling | null, next: DeclaredAutoScaling, current: CurrentAutoScaling) {
    this.#last = last;
    this.#next = next;
    this.#current = current;
    for (const t of current.templates) this.#after.set(t.name, t);
  }

  plan(): AutoScalingPlan {
    this.#next.launchTemplates.forEach((d) => this.#planTemplate(d));
    this.#next.groups.forEach((d, i) => this.#planGroup(d, i));
    const creating = this.#groups.filter((op) => op.op === 'createGroup').length;
    const existing = this.#current.groups.filter((g) => !g.deleting).length;
    if (creating > 0 && existing + creating > MAX_GROUPS) {
      this.#problems.push({ path: ['autoScalingGroups'], message: `would make ${existing + creating} Auto Scaling groups; ebb keeps at most ${MAX_GROUPS}: delete some first` });
    }
    const declaredGroups = new Set(this.#next.groups.map((g) => g.name));
    for (const g of this.#current.groups) {
      if (g.source === 'config' && !g.deleting && !declaredGroups.has(g.name)) this.#removals.push({ op: 'deleteGroup', name: g.name, instances: g.instances });
    }
    const declaredTemplates = new Set(this.#next.launchTemplates.map((t) => t.name));
    for (const t of this.#current.templates) {
      if (t.source === 'config' && !declaredTemplates.has(t.name)) this.#removals.push({ op: 'deleteTemplate', name: t.name });
    }
    return { ops: [...this.#templates, ...this.#groups, ...this.#removals], kept: this.#kept, problems: this.#problems };
  }

  // ------------------------------------------------------------ launch templates

  #planTemplate(d: DeclaredLaunchTemplate): void {
    const before = this.#last?.launchTemplates.find((t) => t.name === d.name);
    const now = this.#current.templates.find((t) => t.name === d.name);
    const data = normal(d.data);
    if (now === undefined) {
      if (before !== undefined && sameData(normal(before.data), data)) {
        this.#deletedByApi.set(d.name, d);
        this.#kept.push(`launch template ${d.name} deleted through the API`);
      } else {
        this.#createTemplate(d);
      }
      return;
    }
    if (sameData(now.defaultData, data)) {
      if (now.source !== 'config') this.#templates.push({ op: 'putTemplate', template: d, change: 'adopt' });
      return;
    }
    if (before === undefined || !sameData(normal(before.data), data)) {
      // A new version, made the default: new instances launch from it; the running ones stay until replaced.
      const n = Math.max(now.latestVersion, ...now.versions.map((v) => v.number)) + 1;
      this.#after.set(d.name, { defaultVersion: n, latestVersion: n, versions: [...now.versions, { number: n, runnable: true }] });
      this.#templates.push({ op: 'putTemplate', template: d, change: 'new-version' });
    } else {
      this.#kept.push(`launch template ${d.name} default version ${now.defaultVersion}, set through the API (the file's data is not that version's)`);
    }
  }

  #createTemplate(d: DeclaredLaunchTemplate): void {
    this.#after.set(d.name, { defaultVersion: 1, latestVersion: 1, versions: [{ number: 1, runnable: true }] });
    this.#templates.push({ op: 'putTemplate', template: d, change: 'create' });
  }

  /** A group the plan creates or points at `name`: a declared template the API deleted is made again. */
  #needTemplate(name: string): void {
    const d = this.#deletedByApi.get(name);
    if (d === undefined) return;
    this.#deletedByApi.delete(name);
    const at = this.#kept.indexOf(`launch template ${name} deleted through the API`);
    if (at >= 0) this.#kept.splice(at, 1);
    this.#createTemplate(d);
  }

  // ------------------------------------------------------------ groups

  #planGroup(d: DeclaredGroup, i: number): void {
    const before = this.#last?.groups.find((g) => g.name === d.name) ?? null;
    const now = this.#current.groups.find((g) => g.name === d.name);
    const name = `Auto Scaling group ${d.name}`;
    if (now === undefined) {
      if (before !== null && same(before, d)) {
        this.#kept.push(`${name} deleted through the API`);
        return;
      }
      this.#needTemplate(d.launchTemplate);
      this.#checkTemplate(d, i);
      this.#checkAttachments(i, d.targetGroups, d.loadBalancerNames);
      this.#groups.push({ op: 'createGroup', group: d });
      return;
    }
    if (now.deleting) {
      this.#kept.push(`${name} is being deleted; it is made again from the file at the first reload or start after its deletion ends`);
      return;
    }
    if (now.source !== 'config') this.#groups.push({ op: 'adoptGroup', name: d.name });
    // `before` null (newly declared, or adopted): the file wins for everything it declares.
    const settings = this.#settings(d, now, before);
    if (settings.launchTemplate !== undefined) {
      this.#needTemplate(d.launchTemplate);
      this.#checkTemplate(d, i);
    }
    this.#checkSizes(d, now, settings, i);
    if (Object.keys(settings).length > 0) this.#groups.push({ op: 'setGroup', name: d.name, settings });
    this.#attachments(d, now, before, i);
    this.#hooks(d, now, before, i);
  }

  #settings(d: DeclaredGroup, now: CurrentGroup, before: DeclaredGroup | null): GroupSettings {
    const out: Record<string, unknown> = {};
    const wanted = settingsOf(d);
    const is = settingsOf(now);
    const was = before === null ? null : settingsOf(before);
    for (const key of SETTINGS) {
      // A file without desiredCapacity has no say in it.
      if (key === 'desiredCapacity' && d.desiredCapacity === undefined) continue;
      if (same(is[key], wanted[key])) continue;
      if (was === null || !same(was[key], wanted[key])) {
        out[key] = key === 'launchTemplate' ? { name: d.launchTemplate, version: d.launchTemplateVersion } : wanted[key];
      } else {
        this.#kept.push(`Auto Scaling group ${d.name} ${key} ${shown(is[key])}, set through the API (the file says ${shown(wanted[key])})`);
      }
    }
    return out as GroupSettings;
  }

  /** The sizes the group ends with (UpdateAutoScalingGroup keeps desired between min and max) must hold together. */
  #checkSizes(d: DeclaredGroup, now: CurrentGroup, s: GroupSettings, i: number): void {
    if (s.minSize === undefined && s.maxSize === undefined && s.desiredCapacity === undefined) return;
    const min = s.minSize ?? now.minSize;
    const max = s.maxSize ?? now.maxSize;
    const desired = s.desiredCapacity ?? Math.min(max, Math.max(min, now.desiredCapacity));
    try {
      checkSizes(min, max, desired);
    } catch (error) {
      this.#problems.push({
        path: ['autoScalingGroups', i],
        message: `the file's change to Auto Scaling group ${d.name} does not fit the sizes it keeps from the API (minSize ${now.minSize}, maxSize ${now.maxSize}, desiredCapacity ${now.desiredCapacity}): ${(error as Error).message}`,
      });
    }
  }

  #attachments(d: DeclaredGroup, now: CurrentGroup, before: DeclaredGroup | null, i: number): void {
    const attach = { targetGroups: [] as string[], loadBalancerNames: [] as string[] };
    const detach = { targetGroups: [] as string[], loadBalancerNames: [] as string[] };
    for (const field of ['targetGroups', 'loadBalancerNames'] as const) {
      const what = field === 'targetGroups' ? 'target group' : 'load balancer';
      const listed = before?.[field] ?? null;
      for (const n of d[field]) {
        if (now[field].includes(n)) continue;
        if (listed === null || !listed.includes(n)) attach[field].push(n);
        else this.#kept.push(`${what} ${n} detached from Auto Scaling group ${d.name} through the API`);
      }
      for (const n of now[field]) {
        if (!d[field].includes(n) && (listed === null || listed.includes(n))) detach[field].push(n);
      }
    }
    if (attach.targetGroups.length + attach.loadBalancerNames.length > 0) {
      this.#checkAttachments(i, attach.targetGroups, attach.loadBalancerNames, d.targetGroups, d.loadBalancerNames);
      this.#groups.push({ op: 'attach', group: d.name, ...attach });
    }
    if (detach.targetGroups.length + detach.loadBalancerNames.length > 0) this.#groups.push({ op: 'detach', group: d.name, ...detach });
  }

  #hooks(d: DeclaredGroup, now: CurrentGroup, before: DeclaredGroup | null, i: number): void {
    let count = now.lifecycleHooks.length;
    for (const h of d.lifecycleHooks) {
      const is = now.lifecycleHooks.find((x) => x.name === h.name);
      if (is !== undefined && same(is, h)) continue;
      const was = before?.lifecycleHooks.find((x) => x.name === h.name);
      if (was !== undefined && same(was, h)) {
        this.#kept.push(`lifecycle hook ${h.name} of Auto Scaling group ${d.name} ${is === undefined ? 'deleted' : 'changed'} through the API`);
        continue;
      }
      if (is === undefined) count++;
      const replace = is !== undefined && ((is.notificationCommand !== undefined && h.notificationCommand === undefined) || (is.notificationMetadata !== undefined && h.notificationMetadata === undefined));
      this.#groups.push({ op: 'putHook', group: d.name, hook: h, replace });
    }
    for (const is of now.lifecycleHooks) {
      if (d.lifecycleHooks.some((h) => h.name === is.name)) continue;
      if (before === null || before.lifecycleHooks.some((h) => h.name === is.name)) {
        this.#groups.push({ op: 'deleteHook', group: d.name, name: is.name });
        count--;
      }
    }
    if (count > MAX_HOOKS_PER_GROUP) {
      this.#problems.push({ path: ['autoScalingGroups', i, 'lifecycleHooks'], message: `would give Auto Scaling group ${d.name} ${count} lifecycle hooks with those made through the API; a group may have at most ${MAX_HOOKS_PER_GROUP}` });
    }
  }

  // ------------------------------------------------------------ references the plan uses

  #checkTemplate(d: DeclaredGroup, i: number): void {
    const at = ['autoScalingGroups', i, 'launchTemplate'];
    const declared = this.#next.launchTemplates.some((t) => t.name === d.launchTemplate);
    const now = this.#current.templates.find((t) => t.name === d.launchTemplate);
    if (!declared && now?.source === 'config') {
      this.#problems.push({ path: at, message: `names launch template "${d.launchTemplate}", which the file no longer declares under launchTemplates (so it is being removed); declare it again` });
      return;
    }
    const after = this.#after.get(d.launchTemplate);
    if (after === undefined || (!declared && now === undefined)) {
      const names = this.#next.launchTemplates.map((t) => t.name);
      this.#problems.push({
        path: at,
        message: `names launch template "${d.launchTemplate}", which is neither declared under launchTemplates nor exists` +
          `${names.length > 0 ? ` (declared: ${names.join(', ')})` : ''}; declare it, or create it first (aws ec2 create-launch-template)`,
      });
      return;
    }
    const v = d.launchTemplateVersion;
    const n = v === '$Default' ? after.defaultVersion : v === '$Latest' ? Math.max(...after.versions.map((x) => x.number)) : Number(v);
    const version = after.versions.find((x) => x.number === n);
    const path = v === '$Default' ? at : ['autoScalingGroups', i, 'launchTemplateVersion'];
    if (version === undefined) {
      this.#problems.push({ path, message: `launch template "${d.launchTemplate}" has no version ${v}; it has ${after.versions.map((x) => x.number).join(', ')}` });
    } else if (!version.runnable) {
      this.#problems.push({ path, message: `version ${n} of launch template "${d.launchTemplate}" has nothing to run (neither user data nor a command); point the group at another version` });
    }
  }

  #checkAttachments(i: number, targetGroups: readonly string[], loadBalancerNames: readonly string[], all = targetGroups, allLbs = loadBalancerNames): void {
    for (const n of targetGroups) {
      const at = ['autoScalingGroups', i, 'targetGroups', all.indexOf(n)];
      const tg = this.#current.targetGroups.find((t) => t.name === n);
      if (tg === undefined) {
        this.#problems.push({ path: at, message: `names target group "${n}", which is neither declared under targetGroups nor exists; declare it, or create it first (aws elbv2 create-target-group)` });
      } else if (tg.targetType !== 'instance') {
        this.#problems.push({ path: at, message: `target group "${n}" has target type ${tg.targetType}; Auto Scaling registers instances, so it needs target type instance` });
      }
    }
    for (const n of loadBalancerNames) {
      if (!this.#current.classicLoadBalancers.includes(n)) {
        this.#problems.push({
          path: ['autoScalingGroups', i, 'loadBalancerNames', allLbs.indexOf(n)],
          message: `names Classic load balancer "${n}", which does not exist; create it first (aws elb create-load-balancer)`,
        });
      }
    }
  }
}

// ------------------------------------------------------------ helpers

function normal(data: LaunchTemplateData): LaunchTemplateData {
  try {
    return normaliseData(data);
  } catch {
    return data; // the file's checks refuse it before a plan is made
  }
}

function settingsOf(g: DeclaredGroup | CurrentGroup): Record<(typeof SETTINGS)[number], unknown> {
  return {
    launchTemplate: `${g.launchTemplate ?? '(a deleted template)'} (${g.launchTemplateVersion})`,
    minSize: g.minSize,
    maxSize: g.maxSize,
    desiredCapacity: g.desiredCapacity,
    healthCheckType: g.healthCheckType,
    healthCheckGracePeriod: g.healthCheckGracePeriod,
    defaultInstanceWarmup: g.defaultInstanceWarmup ?? null,
    terminationPolicies: g.terminationPolicies,
    newInstancesProtectedFromScaleIn: g.newInstancesProtectedFromScaleIn,
  };
}

function shown(value: unknown): string {
  if (value === null || value === undefined) return '(none)';
  if (Array.isArray(value)) return value.join(', ');
  return typeof value === 'object' ? JSON.stringify(value) : String(value as string | number | boolean);
}

/** Deep equality of plain data, whatever the order of object keys. */
export const same = samePlainData;

/** One line per step, for the log and `ebb check`. */
export function describeAutoScalingOp(op: AutoScalingOp): string {
  switch (op.op) {
    case 'putTemplate':
      if (op.change === 'create') return `created launch template ${op.template.name}`;
      if (op.change === 'adopt') return `launch template ${op.template.name}, made through the API, now declared by the file`;
      return `launch template ${op.template.name}: a new version with the file's data, made the default (instances running keep theirs; no instance refresh is started)`;
    case 'createGroup':
      return `created Auto Scaling group ${op.group.name} (desired capacity ${op.group.desiredCapacity ?? op.group.minSize})`;
    case 'adoptGroup':
      return `Auto Scaling group ${op.name}, made through the API, now declared by the file`;
    case 'setGroup':
      return `Auto Scaling group ${op.name}: set ${Object.entries(op.settings)
        .map(([k, v]) => (k === 'launchTemplate' ? `launchTemplate to ${op.settings.launchTemplate?.name ?? ''} (${op.settings.launchTemplate?.version ?? ''})` : v === null ? `${k} back to none` : `${k} to ${shown(v)}`))
        .join(', ')}`;
    case 'attach':
    case 'detach':
      return `Auto Scaling group ${op.group}: ${op.op === 'attach' ? 'attached' : 'detached'} ${[
        ...op.targetGroups.map((n) => `target group ${n}`),
        ...op.loadBalancerNames.map((n) => `load balancer ${n}`),
      ].join(', ')}`;
    case 'putHook':
      return `Auto Scaling group ${op.group}: ${op.replace ? 'replaced' : 'put'} lifecycle hook ${op.hook.name}`;
    case 'deleteHook':
      return `Auto Scaling group ${op.group}: deleted lifecycle hook ${op.name}`;
    case 'deleteGroup':
      return op.instances === 0
        ? `Auto Scaling group ${op.name} no longer declared: deleted`
        : `Auto Scaling group ${op.name} no longer declared: its ${op.instances} instance(s) drain and stop (terminating hooks run), then it is deleted`;
    case 'deleteTemplate':
      return `launch template ${op.name} no longer declared: deleted (once no Auto Scaling group uses it)`;
  }
}
