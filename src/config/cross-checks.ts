import {
  attributeKeysFor,
  loadBalancerAttributeConflict,
  targetGroupAttributeConflict,
  validateListenerAttributes,
  validateLoadBalancerAttributes,
  validateTargetGroupAttributeValues,
} from '../domain/attributes.ts';
import { healthCheckProtocolProblem, healthCheckWithDefaults, matcherProblem, validateHealthCheck, type HealthCheckConfig } from '../domain/health-check.ts';
import { isTlsListener, listenerProtocolProblem, pairingProblem } from '../domain/listener-protocols.ts';
import { MAX_LISTENER_CERTIFICATES } from '../control/listener-rules.ts';
import { isIpAddress } from '../control/names.ts';
import type { TargetGroupProtocol } from '../domain/resources.ts';
import { formatPath, type PathSegment, type Problem } from './problems.ts';
import type { ConfigShape } from './schema.ts';

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
  unique(problems, (cfg.certificates ?? []).map((c) => c.arn), (i) => ['certificates', i, 'arn'], 'certificate ARN');

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
      checkAttribute(problems, ['loadBalancers', i, 'attributes', key], key, attributeKeysFor({ kind: 'load balancer', type }), () =>
        validateLoadBalancerAttributes({ [key]: value }, type),
      );
    }
    // Attributes that must go together, on the whole set (a bucket when access logs are on).
    const lbConflict = loadBalancerAttributeConflict(Object.fromEntries(Object.entries(lb.attributes ?? {}).map(([k, v]) => [k, String(v)])));
    if (lbConflict !== null) problems.push({ path: ['loadBalancers', i, 'attributes', 'access_logs.s3.enabled'], message: lbConflict });
    (lb.listeners ?? []).forEach((l, j) => {
      const at = ['loadBalancers', i, 'listeners', j] as const;
      // The rules are the domain's, as the API applies them; here with the file's line.
      const protocolProblem = listenerProtocolProblem(type, l.protocol);
      if (protocolProblem !== null) problems.push({ path: [...at, 'protocol'], message: protocolProblem });
      checkListenerTls(problems, at, l);
      for (const [key, value] of Object.entries(l.attributes ?? {})) {
        checkAttribute(problems, [...at, 'attributes', key], key, attributeKeysFor({ kind: 'listener', listenerProtocol: l.protocol }), () =>
          validateListenerAttributes({ [key]: value }, l.protocol),
        );
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
      } else {
        const pairing = pairingProblem(l.protocol, tg.name, tg.protocol);
        if (pairing !== null) problems.push({ path: [...at, 'defaultActions', 0, 'targetGroup'], message: pairing });
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
    const supported = attributeKeysFor({ kind: 'target group', protocol: tg.protocol });
    for (const [key, value] of Object.entries(tg.attributes ?? {})) {
      checkAttribute(problems, ['targetGroups', i, 'attributes', key], key, supported, () =>
        validateTargetGroupAttributeValues({ [key]: value }, tg.protocol),
      );
    }
    // Attributes that cannot go together, checked on the group's whole set (as ModifyTargetGroupAttributes does).
    const conflict = targetGroupAttributeConflict(Object.fromEntries(Object.entries(tg.attributes ?? {}).map(([k, v]) => [k, String(v)])));
    if (conflict !== null) {
      const key = conflict.startsWith('target_health_state.') ? 'target_health_state.unhealthy.draining_interval_seconds' : 'slow_start.duration_seconds';
      problems.push({ path: ['targetGroups', i, 'attributes', key], message: conflict });
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
  const merged: HealthCheckConfig = healthCheckWithDefaults(tgProtocol, given);
  const matcher = given.matcher === undefined ? null : matcherProblem(tgProtocol, merged);
  if (matcher !== null) problems.push({ path: [...at, 'matcher'], message: matcher });
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

type ListenerShape = NonNullable<NonNullable<ConfigShape['loadBalancers']>[number]['listeners']>[number];

/**
 * An HTTPS or TLS listener needs its certificates (the first is the default) and may name a policy; an
 * HTTP or TCP listener takes neither, as the API refuses them. Whether an ARN names a certificate ebb
 * knows is found when the file is applied (the API's certificates live in the state).
 */
function checkListenerTls(problems: Problem[], at: readonly PathSegment[], l: ListenerShape): void {
  const certificates = l.certificates ?? [];
  if (!isTlsListener(l.protocol)) {
    const secure = l.protocol === 'TCP' ? 'TLS' : 'HTTPS';
    if (l.certificates !== undefined) problems.push({ path: [...at, 'certificates'], at: 'key', message: `applies to HTTPS and TLS listeners only; remove it, or set protocol: ${secure}` });
    if (l.sslPolicy !== undefined) problems.push({ path: [...at, 'sslPolicy'], at: 'key', message: `applies to HTTPS and TLS listeners only; remove it, or set protocol: ${secure}` });
    return;
  }
  if (certificates.length === 0) {
    problems.push({
      path: l.certificates === undefined ? [...at, 'protocol'] : [...at, 'certificates'],
      message: `${article(l.protocol)} ${l.protocol} listener needs certificates: a list whose first entry is the default, each { certificateFile, privateKeyFile } or { certificateArn }`,
    });
  } else if (certificates.length > MAX_LISTENER_CERTIFICATES + 1) {
    problems.push({ path: [...at, 'certificates'], message: `holds at most ${MAX_LISTENER_CERTIFICATES + 1} certificates (the default and ${MAX_LISTENER_CERTIFICATES} chosen by SNI, AWS's quota); got ${certificates.length}` });
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
      problems.push({ path, at: 'key', message: allowed.length > 0 ? `${message}; allowed keys: ${allowed.join(', ')}` : message });
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
