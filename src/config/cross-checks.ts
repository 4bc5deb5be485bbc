import {
  LOAD_BALANCER_ATTRIBUTES,
  loadBalancerAttributeConflict,
  TARGET_GROUP_ATTRIBUTES,
  targetGroupAttributeConflict,
  validateLoadBalancerAttributes,
  validateTargetGroupAttributes,
} from '../domain/attributes.ts';
import { defaultHealthCheck, healthCheckProtocolProblem, validateHealthCheck, type HealthCheckConfig } from '../domain/health-check.ts';
import { isIpAddress } from '../control/names.ts';
import type { ListenerProtocol, LoadBalancerType, TargetGroupProtocol } from '../domain/resources.ts';
import { formatPath, type PathSegment, type Problem } from './problems.ts';
import type { ConfigShape } from './schema.ts';

/** Listener protocols each kind of load balancer takes. */
const LISTENER_PROTOCOLS: Readonly<Record<LoadBalancerType, readonly ListenerProtocol[]>> = {
  application: ['HTTP', 'HTTPS'],
  network: ['TCP'],
  classic: ['HTTP', 'HTTPS', 'TCP'],
};

const WILDCARD = new Set(['0.0.0.0', '::']);

/**
 * How a target group's targets are named when the file does not say: `instance` when there are targets
 * and none of their ids is an IP address, `ip` otherwise.
 */
export function inferTargetType(tg: { targetType?: 'instance' | 'ip' | undefined; targets?: ReadonlyArray<{ id: string }> | undefined }): 'instance' | 'ip' {
  if (tg.targetType !== undefined) return tg.targetType;
  const targets = tg.targets ?? [];
  return targets.length > 0 && targets.every((t) => !isIpAddress(t.id)) ? 'instance' : 'ip';
}

/**
 * The checks that relate values to each other, run once the file has the right shape. Value rules
 * come from the domain (health-check ranges, attributes), so that the file and the API accept the
 * same things; each domain error is pinned to the field it is about.
 */
export function crossCheck(cfg: ConfigShape): Problem[] {
  const problems: Problem[] = [];
  const lbs = cfg.loadBalancers ?? [];
  const tgs = cfg.targetGroups ?? [];
  const instances = cfg.instances ?? [];

  unique(problems, lbs.map((lb) => lb.name), (i) => ['loadBalancers', i, 'name'], 'load balancer name');
  unique(problems, tgs.map((tg) => tg.name), (i) => ['targetGroups', i, 'name'], 'target group name');
  unique(problems, instances.map((x) => x.id), (i) => ['instances', i, 'id'], 'instance id');

  const tgByName = new Map(tgs.map((tg) => [tg.name, tg]));
  const bound: Array<{ address: string; port: number; path: readonly PathSegment[] }> = [];

  lbs.forEach((lb, i) => {
    const type = lb.type ?? 'application';
    if (type === 'classic') {
      // A Classic load balancer is a bundle of groups the Classic API builds and manages.
      problems.push({
        path: ['loadBalancers', i, 'type'],
        message: 'Classic load balancers are created through the Classic ELB API (aws elb create-load-balancer), not declared in the file; use type: application',
      });
    }
    for (const [key, value] of Object.entries(lb.attributes ?? {})) {
      checkAttribute(problems, ['loadBalancers', i, 'attributes', key], key, Object.keys(LOAD_BALANCER_ATTRIBUTES), () =>
        validateLoadBalancerAttributes({ [key]: value }),
      );
    }
    // Attributes that must go together, on the whole set (a bucket when access logs are on).
    const lbConflict = loadBalancerAttributeConflict(Object.fromEntries(Object.entries(lb.attributes ?? {}).map(([k, v]) => [k, String(v)])));
    if (lbConflict !== null) problems.push({ path: ['loadBalancers', i, 'attributes', 'access_logs.s3.enabled'], message: lbConflict });
    (lb.listeners ?? []).forEach((l, j) => {
      const at = ['loadBalancers', i, 'listeners', j] as const;
      const allowed = LISTENER_PROTOCOLS[type];
      if (!allowed.includes(l.protocol)) {
        problems.push({
          path: [...at, 'protocol'],
          message: `a listener of ${article(type)} ${type} load balancer must use ${allowed.join(' or ')}; got ${l.protocol}` +
            (type === 'application' ? ' (use type: network for TCP)' : ''),
        });
      } else if (l.protocol !== 'HTTP') {
        // The same rule the control plane applies, said here with the file's line.
        problems.push({
          path: [...at, 'protocol'],
          message: `ebb serves HTTP listeners only for now (HTTPS and TCP listeners come in later releases); got ${l.protocol}`,
        });
      }
      const tgName = l.defaultActions[0]?.targetGroup ?? '';
      const tg = tgByName.get(tgName);
      if (tg === undefined) {
        const declared = tgs.map((t) => t.name);
        problems.push({
          path: [...at, 'defaultActions', 0, 'targetGroup'],
          message: `names target group "${tgName}", which is not declared under targetGroups` +
            (declared.length > 0 ? `; declared: ${declared.join(', ')}` : ''),
        });
      } else if ((l.protocol === 'TCP') !== (tg.protocol === 'TCP')) {
        problems.push({
          path: [...at, 'defaultActions', 0, 'targetGroup'],
          message: `${article(l.protocol)} ${l.protocol} listener cannot forward to target group "${tg.name}", whose protocol is ${tg.protocol}` +
            `; ${l.protocol === 'TCP' ? 'TCP listeners forward to TCP target groups' : 'HTTP(S) listeners forward to HTTP or HTTPS target groups'}`,
        });
      }
      const address = l.address ?? '0.0.0.0';
      const clash = bound.find((b) => b.port === l.port && (b.address === address || WILDCARD.has(b.address) || WILDCARD.has(address)));
      if (clash !== undefined) {
        problems.push({
          path: [...at, 'port'],
          message: `port ${l.port} on ${address} is already taken by the listener at ${formatPath(clash.path)}`,
        });
      }
      bound.push({ address, port: l.port, path: at });
    });
  });

  const instanceIds = new Set(instances.map((x) => x.id));
  tgs.forEach((tg, i) => {
    checkHealthCheck(problems, ['targetGroups', i, 'healthCheck'], tg.protocol, tg.healthCheck);
    const supported = Object.entries(TARGET_GROUP_ATTRIBUTES)
      .filter(([, spec]) => spec.protocols === undefined || spec.protocols.includes(tg.protocol))
      .map(([key]) => key);
    for (const [key, value] of Object.entries(tg.attributes ?? {})) {
      checkAttribute(problems, ['targetGroups', i, 'attributes', key], key, supported, () =>
        validateTargetGroupAttributes({ [key]: value }, tg.protocol),
      );
    }
    // Attributes that cannot go together, checked on the group's whole set (as ModifyTargetGroupAttributes does).
    const conflict = targetGroupAttributeConflict(Object.fromEntries(Object.entries(tg.attributes ?? {}).map(([k, v]) => [k, String(v)])));
    if (conflict !== null) problems.push({ path: ['targetGroups', i, 'attributes', 'slow_start.duration_seconds'], message: conflict });
    if (tg.protocol === 'HTTPS') {
      problems.push({
        path: ['targetGroups', i, 'protocol'],
        message: 'HTTPS target groups are not served yet: ebb would reach the targets in plain text; use HTTP until TLS to targets comes in a later release',
      });
    }

    const targetType = inferTargetType(tg);
    const inferred = tg.targetType === undefined;
    const seen = new Map<string, number>();
    (tg.targets ?? []).forEach((t, j) => {
      const at = ['targetGroups', i, 'targets', j, 'id'];
      if (targetType === 'ip' && !isIpAddress(t.id)) {
        const hint = inferred ? ' (the default when any id is an IP address); to name instances, set targetType: instance and declare them under instances' : '';
        problems.push({ path: at, message: `must be an IP address; got "${t.id}". The group's targetType is ip${hint}` });
      } else if (targetType === 'instance' && !instanceIds.has(t.id)) {
        problems.push({
          path: at,
          message: `names instance "${t.id}", which is not declared under instances; declare it there with its address`,
        });
      }
      const key = `${t.id}:${t.port ?? tg.port}`;
      const first = seen.get(key);
      if (first !== undefined) {
        problems.push({ path: ['targetGroups', i, 'targets', j], message: `target ${key} is listed twice (also targets[${first}])` });
      } else {
        seen.set(key, j);
      }
    });
  });
  return problems;
}

function checkHealthCheck(
  problems: Problem[],
  at: readonly PathSegment[],
  tgProtocol: TargetGroupProtocol,
  written: LooseHealthCheck | undefined,
): void {
  if (written === undefined) return;
  const given = definedHealthCheck(written);
  const before = problems.length;
  // The rule is the domain's (one place for the API and the file); the file is never a Classic load balancer's.
  const protocolProblem = given.protocol === undefined ? null : healthCheckProtocolProblem(tgProtocol, given.protocol, false);
  if (protocolProblem !== null) problems.push({ path: [...at, 'protocol'], message: protocolProblem });
  const defaults = defaultHealthCheck(tgProtocol);
  const merged: HealthCheckConfig = { ...defaults, ...given };
  if (merged.protocol === 'TCP') {
    for (const field of ['path', 'matcher'] as const) {
      if (given[field] !== undefined) {
        problems.push({ path: [...at, field], message: `applies to HTTP and HTTPS health checks only; remove it or set protocol: HTTP` });
      }
    }
  }
  if (merged.timeoutSeconds >= merged.intervalSeconds) {
    if (given.timeoutSeconds !== undefined) {
      problems.push({
        path: [...at, 'timeoutSeconds'],
        message: `must be smaller than intervalSeconds (${merged.intervalSeconds}${given.intervalSeconds === undefined ? ', the default' : ''}); got ${merged.timeoutSeconds}`,
      });
    } else if (given.intervalSeconds !== undefined) {
      problems.push({
        path: [...at, 'intervalSeconds'],
        message: `must be greater than timeoutSeconds (${merged.timeoutSeconds}, the default for ${tgProtocol}); got ${merged.intervalSeconds}; set a shorter timeoutSeconds as well`,
      });
    }
  }
  if (problems.length > before) return;
  // The domain's check is the authority: anything it refuses that the checks above did not catch.
  try {
    validateHealthCheck(merged);
  } catch (err) {
    problems.push({ path: at, message: (err as Error).message });
  }
}

/** The health-check fields as zod outputs them (optional ones may be `undefined`). */
export type LooseHealthCheck = { [K in keyof HealthCheckConfig]?: HealthCheckConfig[K] | undefined };

/** Only the fields the file set. */
export function definedHealthCheck(hc: LooseHealthCheck): Partial<HealthCheckConfig> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(hc)) if (v !== undefined) out[k] = v;
  return out as Partial<HealthCheckConfig>;
}

function checkAttribute(problems: Problem[], path: readonly PathSegment[], key: string, allowed: readonly string[], validate: () => void): void {
  try {
    validate();
  } catch (err) {
    const message = (err as Error).message;
    if (!allowed.includes(key)) {
      problems.push({ path, at: 'key', message: `${message}; allowed keys: ${allowed.join(', ')}` });
    } else {
      problems.push({ path, message });
    }
  }
}

/** A problem for each value already used earlier in `values` (names that must be unique). */
export function unique(problems: Problem[], values: readonly string[], pathOf: (i: number) => PathSegment[], what: string): void {
  const first = new Map<string, number>();
  values.forEach((v, i) => {
    const j = first.get(v);
    if (j === undefined) first.set(v, i);
    else problems.push({ path: pathOf(i), message: `the ${what} "${v}" is already used at ${formatPath(pathOf(j))}; ${what}s must be unique` });
  });
}

function article(word: string): 'a' | 'an' {
  return /^[aeiouAEIOH]/.test(word) ? 'an' : 'a';
}
