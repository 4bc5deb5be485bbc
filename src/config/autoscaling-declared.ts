import { dirname, resolve } from 'node:path';
import { normaliseData } from '../autoscaling/launch-template-rules.ts';
import { MAX_HOOKS_PER_GROUP } from '../autoscaling/groups.ts';
import type { DeclaredAutoScaling, DeclaredGroup } from '../autoscaling/declared-plan.ts';
import type { DeclaredLaunchTemplate } from '../autoscaling/launch-templates.ts';
import type { LaunchTemplateData } from '../autoscaling/records.ts';
import { inferTargetType, unique } from './cross-checks.ts';
import type { PathSegment, Problem } from './problems.ts';
import type { ConfigShape } from './schema.ts';

type TemplateShape = NonNullable<ConfigShape['launchTemplates']>[number];
type GroupShape = NonNullable<ConfigShape['autoScalingGroups']>[number];

/**
 * The checks that relate the Auto Scaling sections' values to each other and to the rest of the file,
 * once the shape is right. What depends on the state (a template or target group made through the
 * API, the sizes the API set) is checked against it before the file is applied (src/autoscaling/declared.ts).
 */
export function crossCheckAutoScaling(cfg: ConfigShape): Problem[] {
  const problems: Problem[] = [];
  const templates = cfg.launchTemplates ?? [];
  const groups = cfg.autoScalingGroups ?? [];
  unique(problems, templates.map((t) => t.name), (i) => ['launchTemplates', i, 'name'], 'launch template name');
  unique(problems, groups.map((g) => g.name), (i) => ['autoScalingGroups', i, 'name'], 'Auto Scaling group name');

  templates.forEach((t, i) => {
    // The catalog's own rules, one field at a time, so each problem is pinned to its field.
    for (const field of ['command', 'environment', 'workingDirectory'] as const) {
      if (t[field] === undefined) continue;
      try {
        normaliseData({ [field]: t[field] } as LaunchTemplateData);
      } catch (err) {
        problems.push({ path: ['launchTemplates', i, field], message: (err as Error).message });
      }
    }
  });

  const tgs = new Map((cfg.targetGroups ?? []).map((tg) => [tg.name, tg]));
  groups.forEach((g, i) => {
    const at = (...rest: PathSegment[]): PathSegment[] => ['autoScalingGroups', i, ...rest];
    if (g.minSize > g.maxSize) problems.push({ path: at('minSize'), message: `must be less than or equal to maxSize (${g.maxSize}); got ${g.minSize}` });
    if (g.desiredCapacity !== undefined && g.minSize <= g.maxSize && (g.desiredCapacity < g.minSize || g.desiredCapacity > g.maxSize)) {
      problems.push({ path: at('desiredCapacity'), message: `must be from minSize (${g.minSize}) to maxSize (${g.maxSize}); got ${g.desiredCapacity}` });
    }
    for (const field of ['targetGroups', 'loadBalancerNames'] as const) {
      const what = field === 'targetGroups' ? 'target group' : 'load balancer';
      (g[field] ?? []).forEach((name, j) => {
        const first = (g[field] ?? []).indexOf(name);
        if (first !== j) problems.push({ path: at(field, j), message: `${what} "${name}" is listed twice (also ${field}[${first}])` });
      });
    }
    (g.targetGroups ?? []).forEach((name, j) => {
      const tg = tgs.get(name);
      // A group made through the API may be named too: that is checked against the state.
      if (tg !== undefined && inferTargetType(tg) !== 'instance') {
        problems.push({
          path: at('targetGroups', j),
          message: `target group "${name}" has targetType ip${tg.targetType === undefined ? ' (the default when it lists no instance targets)' : ''}; Auto Scaling registers instances: set targetType: instance on it`,
        });
      }
    });
    const hooks = g.lifecycleHooks ?? [];
    unique(problems, hooks.map((h) => h.name), (j) => at('lifecycleHooks', j, 'name'), 'lifecycle hook name');
    if (hooks.length > MAX_HOOKS_PER_GROUP) problems.push({ path: at('lifecycleHooks'), message: `a group may have at most ${MAX_HOOKS_PER_GROUP} lifecycle hooks; got ${hooks.length}` });
  });
  return problems;
}

/**
 * The Auto Scaling sections as a declaration: defaults filled in (AWS's: version $Default, health
 * check type EC2, no grace period, termination policy Default, a hook's heartbeat 3600 s and default
 * result ABANDON), a script base64-encoded as user data, and a relative working directory made
 * absolute against the configuration file's directory.
 */
export function toDeclaredAutoScaling(cfg: ConfigShape, fileName: string): DeclaredAutoScaling {
  return {
    launchTemplates: (cfg.launchTemplates ?? []).map((t) => toTemplate(t, fileName)),
    groups: (cfg.autoScalingGroups ?? []).map(toGroup),
  };
}

function toTemplate(t: TemplateShape, fileName: string): DeclaredLaunchTemplate {
  const userData = t.script !== undefined ? Buffer.from(t.script, 'utf8').toString('base64') : t.userData;
  const data: LaunchTemplateData = {
    ...(t.command === undefined ? {} : { command: t.command }),
    ...(userData === undefined ? {} : { userData }),
    ...(t.environment === undefined ? {} : { environment: { ...t.environment } }),
    ...(t.workingDirectory === undefined ? {} : { workingDirectory: resolve(dirname(fileName), t.workingDirectory) }),
    ...(t.stopTimeoutSeconds === undefined ? {} : { stopTimeoutSeconds: t.stopTimeoutSeconds }),
  };
  return { name: t.name, data, ...(t.versionDescription === undefined ? {} : { versionDescription: t.versionDescription }) };
}

function toGroup(g: GroupShape): DeclaredGroup {
  return {
    name: g.name,
    launchTemplate: g.launchTemplate,
    launchTemplateVersion: g.launchTemplateVersion ?? '$Default',
    minSize: g.minSize,
    maxSize: g.maxSize,
    ...(g.desiredCapacity === undefined ? {} : { desiredCapacity: g.desiredCapacity }),
    targetGroups: [...(g.targetGroups ?? [])],
    loadBalancerNames: [...(g.loadBalancerNames ?? [])],
    healthCheckType: g.healthCheckType ?? 'EC2',
    healthCheckGracePeriod: g.healthCheckGracePeriod ?? 0,
    ...(g.defaultInstanceWarmup === undefined ? {} : { defaultInstanceWarmup: g.defaultInstanceWarmup }),
    terminationPolicies: [...(g.terminationPolicies ?? ['Default'])],
    newInstancesProtectedFromScaleIn: g.newInstancesProtectedFromScaleIn ?? false,
    lifecycleHooks: (g.lifecycleHooks ?? []).map((h) => ({
      name: h.name,
      transition: h.transition,
      heartbeatTimeout: h.heartbeatTimeout ?? 3600,
      defaultResult: h.defaultResult ?? 'ABANDON',
      ...(h.notificationTargetURL === undefined ? {} : { notificationTargetURL: h.notificationTargetURL }),
      ...(h.notificationCommand === undefined ? {} : { notificationCommand: h.notificationCommand }),
      ...(h.notificationMetadata === undefined ? {} : { notificationMetadata: h.notificationMetadata }),
    })),
  };
}
