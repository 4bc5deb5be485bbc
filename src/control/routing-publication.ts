import { listenerSettings, targetGroupAttributesWithDefaults } from '../domain/attributes.ts';
import type { HealthCheckTarget } from '../domain/health-port.ts';
import type { CertificateRecord, InstanceRecord, ListenerRecord, LoadBalancerRecord, TargetGroupRecord, TargetRegistration } from '../domain/resources.ts';
import type { ListenerCertificate, ListenerRoute, ListenerTls, RoutableTarget, RoutingSnapshot, TargetGroupRoute, TargetTls } from '../domain/routing-snapshot.ts';
import { DEFAULT_SSL_POLICY, tlsPolicySettings } from '../domain/tls-policies.ts';
import type { TargetLifecycle } from '../domain/target-lifecycle.ts';
import { isIpAddress } from './names.ts';

/**
 * What is published from the records and the target lifecycles, as a pure function: the routing
 * snapshot every data plane swaps in, and the set of targets the health checker checks. It reads the
 * lifecycles and changes nothing; the caller first tells each lifecycle whether its group is in use
 * (`groupsInUse`), since that decides routability, and afterwards marks the checked targets as checking.
 */
export interface PublicationInput {
  readonly version: number;
  /** The control clock's monotonic ms as the snapshot is built: targets carry how long they have been healthy, not when. */
  readonly now: number;
  readonly loadBalancers: ReadonlyMap<string, LoadBalancerRecord>;
  /** In creation order, which is the snapshot's order. */
  readonly listeners: readonly ListenerRecord[];
  readonly targetGroups: readonly TargetGroupRecord[];
  /** In registration order. */
  readonly targets: readonly PublishedTarget[];
  readonly instances: ReadonlyMap<string, InstanceRecord>;
  /** Certificates by ARN, for HTTPS and TLS listeners (none: such listeners publish no certificate). */
  readonly certificates?: ReadonlyMap<string, CertificateRecord>;
  /** An HTTPS group's TLS to its targets, with its CA file's PEM as last read (`target-ca-files.ts`); none: not verified. */
  readonly targetTls?: (tg: TargetGroupRecord) => TargetTls | null;
}

export interface PublishedTarget {
  readonly key: string;
  readonly reg: TargetRegistration;
  readonly life: Pick<TargetLifecycle, 'isRoutable' | 'isFailOpenCandidate' | 'healthySince'>;
}

export interface Publication {
  readonly snapshot: RoutingSnapshot;
  readonly checks: readonly HealthCheckTarget[];
}

/** Groups some listener forwards to; a target of any other group is unused (Target.NotInUse) and not checked. */
export function groupsInUse(listeners: Iterable<ListenerRecord>): Set<string> {
  const inUse = new Set<string>();
  for (const l of listeners) for (const a of l.defaultActions) inUse.add(a.targetGroupArn);
  return inUse;
}

export function buildPublication(input: PublicationInput): Publication {
  const groups = new Map<string, TargetGroupRecord>();
  for (const tg of input.targetGroups) groups.set(tg.arn, tg);
  const byGroup = new Map<string, PublishedTarget[]>();
  for (const t of input.targets) {
    const list = byGroup.get(t.reg.targetGroupArn);
    if (list === undefined) byGroup.set(t.reg.targetGroupArn, [t]);
    else list.push(t);
  }
  const inUse = groupsInUse(input.listeners);
  const tlsOf = (tg: TargetGroupRecord): TargetTls | null => input.targetTls?.(tg) ?? (tg.protocol === 'HTTPS' ? { caPem: null } : null);

  // A target is checked while a listener forwards to its group, checks are on, and its host is known.
  const checks: HealthCheckTarget[] = [];
  for (const t of input.targets) {
    const tg = groups.get(t.reg.targetGroupArn);
    if (tg === undefined || !inUse.has(tg.arn) || !tg.healthCheck.enabled) continue;
    const host = hostOf(input.instances, t.reg.id);
    const caPem = tg.healthCheck.protocol === 'HTTPS' ? tlsOf(tg)?.caPem : null;
    if (host !== null) checks.push({ key: t.key, host, port: healthCheckPort(tg, t.reg.port), config: tg.healthCheck, ...(typeof caPem === 'string' && { caPem }) });
  }

  const targetGroups = new Map<string, TargetGroupRoute>();
  for (const tg of groups.values()) targetGroups.set(tg.arn, groupRoute(tg, byGroup.get(tg.arn) ?? [], input.instances, input.now, tlsOf(tg)));

  const listeners: ListenerRoute[] = [];
  for (const l of input.listeners) {
    const lb = input.loadBalancers.get(l.loadBalancerArn);
    if (lb === undefined) continue;
    listeners.push({
      arn: l.arn,
      protocol: l.protocol,
      address: l.address,
      port: l.port,
      targetGroupArn: l.defaultActions[0]?.targetGroupArn ?? null,
      settings: listenerSettings(lb.attributes, l.attributes ?? {}),
      tls: listenerTls(l, input.certificates),
    });
  }
  return { snapshot: { version: input.version, listeners, targetGroups }, checks };
}

/**
 * What an HTTPS or TLS listener's handshake offers: its certificates in its order (the default first),
 * each with its chain, and its security policy as Node settings (ebb's default when it names none).
 * A certificate ebb does not know is left out; a listener left with none publishes an empty list,
 * which a data plane refuses to open. Null for HTTP and TCP listeners.
 */
export function listenerTls(l: ListenerRecord, certificates: ReadonlyMap<string, CertificateRecord> = new Map()): ListenerTls | null {
  if (l.protocol !== 'HTTPS' && l.protocol !== 'TLS') return null;
  const served: ListenerCertificate[] = [];
  for (const arn of l.certificateArns ?? []) {
    const c = certificates.get(arn);
    if (c !== undefined) served.push({ arn, certificatePem: c.certificatePem + c.chainPem, privateKeyPem: c.privateKeyPem, names: c.subjectAlternativeNames });
  }
  const policy = tlsPolicySettings(l.sslPolicy ?? DEFAULT_SSL_POLICY) ?? tlsPolicySettings(DEFAULT_SSL_POLICY);
  if (policy === undefined) throw new Error(`the default security policy ${DEFAULT_SSL_POLICY} is missing from tls-policies.ts`);
  return { certificates: served, policy };
}

/**
 * A group's route: its routable targets, or, when none is routable, every registered non-draining
 * one (fail-open, as ALB does when all targets are unhealthy:
 * https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html).
 */
function groupRoute(tg: TargetGroupRecord, targets: readonly PublishedTarget[], instances: ReadonlyMap<string, InstanceRecord>, now: number, targetTls: TargetTls | null): TargetGroupRoute {
  const attrs = targetGroupAttributesWithDefaults(tg.attributes, tg.protocol);
  const routable = targets.filter((t) => t.life.isRoutable());
  const failOpen = routable.length === 0 && targets.some((t) => t.life.isFailOpenCandidate());
  const chosen = failOpen ? targets.filter((t) => t.life.isFailOpenCandidate()) : routable;
  const routes: RoutableTarget[] = [];
  for (const t of chosen) {
    const host = hostOf(instances, t.reg.id);
    if (host !== null) routes.push({ key: t.key, host, port: t.reg.port, healthyForMs: t.life.healthySince === null ? null : Math.max(0, now - t.life.healthySince) });
  }
  return {
    arn: tg.arn,
    name: tg.name,
    protocol: tg.protocol,
    targetTls,
    proxyProtocolV2: attrs['proxy_protocol_v2.enabled'] === 'true',
    connectionTermination: attrs['deregistration_delay.connection_termination.enabled'] === 'true',
    algorithm: (attrs['load_balancing.algorithm.type'] ?? 'round_robin') as TargetGroupRoute['algorithm'],
    targets: routes,
    failOpen,
    slowStartMs: Number(attrs['slow_start.duration_seconds'] ?? '0') * 1000,
  };
}

/** The port a target is checked on: its traffic port unless the group names another. */
export function healthCheckPort(tg: TargetGroupRecord, trafficPort: number): number {
  return tg.healthCheck.port === 'traffic-port' ? trafficPort : tg.healthCheck.port;
}

/** Where a target is reached: an IP target at its id, an instance at the address it was declared with (null: unknown). */
function hostOf(instances: ReadonlyMap<string, InstanceRecord>, id: string): string | null {
  if (isIpAddress(id)) return id;
  return instances.get(id)?.address ?? null;
}
