import type { ControlApi } from '../../control/control-api.ts';
import type { CreateTargetGroupInput } from '../../control/inputs.ts';
import { ACCESS_LOG_ATTRIBUTES, accessLogPrefixProblem, DEFAULT_CLASSIC_EMIT_INTERVAL } from '../../domain/attributes.ts';
import type { HealthCheckConfig } from '../../domain/health-check.ts';
import type { ListenerProtocol, ListenerRecord, TargetGroupRecord } from '../../domain/resources.ts';
import { EbbError, ebbError } from '../../shared/errors.ts';
import { CANONICAL_HOSTED_ZONE_ID, dnsName, paginate, readTags } from '../common.ts';
import type { ActionTable } from '../handler.ts';
import type { QueryParams } from '../query-parser.ts';
import type { XmlObject } from '../xml.ts';
import {
  DEFAULT_DRAINING_TIMEOUT,
  DELAY_KEY,
  type ClassicLoadBalancer,
  classicGroupName,
  classicState,
  drainingSettings,
  expand,
  findClassic,
  findClassicLoadBalancers,
  healthTarget,
  instanceDescriptions,
  parseHealthTarget,
  registeredInstanceIds,
} from './classic-mapping.ts';

/** Classic ELB (2012-06-01) actions, mapped onto the control plane (see classic-mapping.ts). */

const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$/;
const IDLE_KEY = 'idle_timeout.timeout_seconds';
const DESYNC_KEY = 'routing.http.desync_mitigation_mode';

function readName(p: QueryParams): string {
  const name = p.requiredStr('LoadBalancerName');
  if (!NAME.test(name)) {
    throw ebbError(
      'ValidationError',
      `The load balancer name '${name}' is not valid: use 1-32 letters, digits and hyphens, not starting or ending with a hyphen`,
    );
  }
  return name;
}

interface ClassicListenerInput {
  /** The ELBv2 listener it becomes: Classic's SSL is a TLS listener. */
  readonly protocol: ListenerProtocol;
  readonly loadBalancerPort: number;
  readonly instanceProtocol: 'HTTP' | 'HTTPS' | 'TCP';
  readonly instancePort: number;
  /** HTTPS and SSL listeners: SSLCertificateId, a certificate ebb knows (ACM's ImportCertificate, or the file's). */
  readonly certificateArn?: string;
}

/** Classic's protocol names and the ELBv2 listener protocols they become. */
const FRONT: Readonly<Record<string, ListenerProtocol>> = { HTTP: 'HTTP', HTTPS: 'HTTPS', TCP: 'TCP', SSL: 'TLS' };

/** An ELBv2 listener protocol as Classic names it. */
function classicProtocol(protocol: ListenerProtocol): string {
  return protocol === 'TLS' ? 'SSL' : protocol;
}

/**
 * `Listeners.member.N`: front protocols HTTP, HTTPS, TCP and SSL (an HTTPS or SSL listener needs
 * SSLCertificateId, the ARN of a certificate ebb knows); back protocols HTTP, HTTPS and TCP, as Classic
 * pairs them ("If the front-end protocol is TCP or SSL, the back-end protocol must be TCP or SSL. If the
 * front-end protocol is HTTP or HTTPS, the back-end protocol must be HTTP or HTTPS", botocore elb
 * Listener). InstanceProtocol SSL (TLS to instances over TCP) is not served. One instance protocol per
 * instance port, since each instance port is one target group.
 */
function readListeners(p: QueryParams): ClassicListenerInput[] {
  const list = p.requiredStructList('Listeners');
  const out: ClassicListenerInput[] = [];
  for (const l of list) {
    const protocolName = l.requiredStr('Protocol').toUpperCase();
    const loadBalancerPort = l.requiredInt('LoadBalancerPort', { min: 1, max: 65535 });
    const instancePort = l.requiredInt('InstancePort', { min: 1, max: 65535 });
    const instanceProtocol = l.str('InstanceProtocol')?.toUpperCase() ?? protocolName;
    const certificateArn = l.str('SSLCertificateId', { maxLength: 2048 });
    const front = FRONT[protocolName];
    if (front === undefined || !Object.hasOwn(FRONT, protocolName)) {
      throw ebbError('UnsupportedProtocol', `Listener protocol '${protocolName}' is not valid: use HTTP, HTTPS, TCP or SSL`);
    }
    const web = front === 'HTTP' || front === 'HTTPS';
    if (!['HTTP', 'HTTPS', 'TCP', 'SSL'].includes(instanceProtocol)) {
      throw ebbError('UnsupportedProtocol', `InstanceProtocol '${instanceProtocol}' is not valid: use HTTP, HTTPS, TCP or SSL`);
    }
    if (web && instanceProtocol !== 'HTTP' && instanceProtocol !== 'HTTPS') {
      throw ebbError('InvalidConfigurationRequest', `An ${protocolName} listener must use InstanceProtocol HTTP or HTTPS; got ${instanceProtocol}`);
    }
    if (!web && instanceProtocol !== 'TCP' && instanceProtocol !== 'SSL') {
      throw ebbError('InvalidConfigurationRequest', `A ${protocolName} listener must use InstanceProtocol TCP or SSL; got ${instanceProtocol}`);
    }
    if (instanceProtocol === 'SSL') {
      throw ebbError(
        'UnsupportedProtocol',
        `InstanceProtocol SSL${l.str('InstanceProtocol') === undefined ? ' (the default for an SSL listener)' : ''} is not supported by ebb: it opens plain TCP to instances behind a TCP or SSL listener; give InstanceProtocol=TCP (the SSL listener still ends TLS from clients)`,
      );
    }
    if ((front === 'HTTPS' || front === 'TLS') && certificateArn === undefined) {
      throw ebbError(
        'ValidationError',
        `An ${protocolName} listener needs SSLCertificateId: the ARN of a certificate imported with aws acm import-certificate (or declared in ebb's configuration file)`,
      );
    }
    if (out.some((o) => o.loadBalancerPort === loadBalancerPort)) {
      throw ebbError('InvalidConfigurationRequest', `LoadBalancerPort ${loadBalancerPort} is given to more than one listener`);
    }
    const clash = out.find((o) => o.instancePort === instancePort && o.instanceProtocol !== instanceProtocol);
    if (clash !== undefined) {
      throw ebbError(
        'InvalidConfigurationRequest',
        `InstancePort ${instancePort} is used with both ${clash.instanceProtocol} and ${instanceProtocol}; use one instance protocol per port`,
      );
    }
    out.push({
      protocol: front,
      loadBalancerPort,
      instanceProtocol: instanceProtocol as ClassicListenerInput['instanceProtocol'],
      instancePort,
      ...(certificateArn !== undefined && { certificateArn }),
    });
  }
  return out;
}

function readInstanceIds(p: QueryParams, required: boolean): string[] | undefined {
  const list = required ? p.requiredStructList('Instances') : p.structList('Instances');
  if (list === undefined) return undefined;
  const ids = list.map((i) => i.requiredStr('InstanceId', { maxLength: 256 }));
  return [...new Set(ids)];
}

function checkKnownInstances(control: ControlApi, ids: readonly string[]): void {
  const known = new Set(control.describeInstances().map((i) => i.id));
  for (const id of ids) {
    if (!known.has(id)) {
      throw ebbError(
        'InvalidInstance',
        `The instance '${id}' is not known to ebb: declare it under 'instances:' in the configuration (id and address) or launch it from an Auto Scaling group`,
      );
    }
  }
}

/** Classic's default health check (AWS): TCP on the first listener's instance port, 30 s, 5 s, 10/2. */
function defaultClassicHealthCheck(instancePort: number): Partial<HealthCheckConfig> {
  return {
    enabled: true,
    protocol: 'TCP',
    port: instancePort,
    path: '/',
    intervalSeconds: 30,
    timeoutSeconds: 5,
    healthyThresholdCount: 10,
    unhealthyThresholdCount: 2,
    matcher: '200',
  };
}

function healthCheckXml(group: TargetGroupRecord | undefined): XmlObject | undefined {
  if (group === undefined) return undefined;
  const hc = group.healthCheck;
  return {
    Target: healthTarget(group),
    Interval: hc.intervalSeconds,
    Timeout: hc.timeoutSeconds,
    UnhealthyThreshold: hc.unhealthyThresholdCount,
    HealthyThreshold: hc.healthyThresholdCount,
  };
}

function listenerDescription(l: ListenerRecord, groups: readonly TargetGroupRecord[]): XmlObject {
  const group = groups.find((g) => g.arn === l.defaultActions[0]?.targetGroupArn);
  return {
    Listener: {
      Protocol: classicProtocol(l.protocol),
      LoadBalancerPort: l.port,
      InstanceProtocol: group?.protocol,
      InstancePort: group?.port,
      SSLCertificateId: l.certificateArns?.[0],
    },
    PolicyNames: [],
  };
}

function describeXml(control: ControlApi, clb: ClassicLoadBalancer): XmlObject {
  const dns = dnsName(clb.lb.name, clb.lb.arn);
  return {
    LoadBalancerName: clb.lb.name,
    DNSName: dns,
    CanonicalHostedZoneName: dns,
    CanonicalHostedZoneNameID: CANONICAL_HOSTED_ZONE_ID,
    ListenerDescriptions: clb.listeners.map((l) => listenerDescription(l, clb.groups)),
    Policies: { AppCookieStickinessPolicies: [], LBCookieStickinessPolicies: [], OtherPolicies: [] },
    BackendServerDescriptions: [],
    AvailabilityZones: [],
    Subnets: [],
    Instances: registeredInstanceIds(control, clb).map((id) => ({ InstanceId: id })),
    HealthCheck: healthCheckXml(clb.groups[0]),
    SecurityGroups: [],
    CreatedTime: new Date(clb.lb.createdAt),
    Scheme: clb.lb.scheme,
  };
}

export const classicActions: ActionTable = {
  async CreateLoadBalancer(p, { control }) {
    const name = readName(p);
    const listeners = readListeners(p);
    const scheme = p.str('Scheme');
    if (scheme !== undefined && scheme !== 'internet-facing' && scheme !== 'internal') {
      throw ebbError('InvalidScheme', `Scheme '${scheme}' is not valid: use internet-facing or internal`);
    }
    // Zones, subnets and security groups describe AWS networking; ebb accepts and ignores them.
    p.list('AvailabilityZones');
    p.list('Subnets');
    p.list('SecurityGroups');
    const tags = readTags(p) ?? [];
    const existing = control.describeLoadBalancers({ type: 'classic' }).find((l) => l.name === name);
    if (existing !== undefined) {
      // AWS returns the existing load balancer when the call is repeated with the same listeners.
      const clb = expand(control, existing);
      const same =
        clb.listeners.length === listeners.length &&
        listeners.every((l) => clb.listeners.some((x) => x.port === l.loadBalancerPort && x.protocol === l.protocol));
      if (same) return { DNSName: dnsName(existing.name, existing.arn) };
      throw ebbError('DuplicateLoadBalancerName', `A load balancer named '${name}' already exists with different listeners`);
    }

    const healthCheck = defaultClassicHealthCheck(listeners[0]?.instancePort ?? 80);
    const groups = new Map<number, CreateTargetGroupInput>();
    for (const l of listeners) {
      if (groups.has(l.instancePort)) continue;
      groups.set(l.instancePort, {
        name: classicGroupName(name, l.instancePort),
        protocol: l.instanceProtocol,
        port: l.instancePort,
        targetType: 'instance',
        healthCheck,
        attributes: { [DELAY_KEY]: String(DEFAULT_DRAINING_TIMEOUT) },
      });
    }
    // One change: a crash or a port that cannot open leaves nothing half-made, so a retry works.
    const { loadBalancer: lb } = await control.createLoadBalancerStack({
      loadBalancer: { name, type: 'classic', ...(scheme !== undefined ? { scheme } : {}), tags },
      targetGroups: [...groups.values()],
      listeners: listeners.map((l) => ({
        protocol: l.protocol,
        port: l.loadBalancerPort,
        targetGroupName: classicGroupName(name, l.instancePort),
        ...(l.certificateArn !== undefined && { certificateArns: [l.certificateArn] }),
      })),
    });
    return { DNSName: dnsName(lb.name, lb.arn) };
  },

  /** Replaces the certificate of the HTTPS or SSL listener on LoadBalancerPort (its ELBv2 listener's default). */
  async SetLoadBalancerListenerSSLCertificate(p, { control }) {
    const clb = findClassic(control, readName(p));
    const port = p.requiredInt('LoadBalancerPort', { min: 1, max: 65535 });
    const certificateArn = p.requiredStr('SSLCertificateId', { maxLength: 2048 });
    const listener = clb.listeners.find((l) => l.port === port);
    if (listener === undefined) {
      throw ebbError('ListenerNotFound', `The load balancer '${clb.lb.name}' has no listener on port ${port}; its ports: ${clb.listeners.map((l) => l.port).join(', ')}`);
    }
    if (listener.protocol !== 'HTTPS' && listener.protocol !== 'TLS') {
      throw ebbError('InvalidConfigurationRequest', `The listener on port ${port} uses ${classicProtocol(listener.protocol)}; only HTTPS and SSL listeners have a certificate`);
    }
    await control.modifyListener(listener.arn, { certificateArns: [certificateArn] });
    return {};
  },

  async DescribeLoadBalancers(p, { control }) {
    const names = p.list('LoadBalancerNames');
    const lbs = findClassicLoadBalancers(control, names);
    const { page, nextMarker } = paginate(p, lbs);
    return { LoadBalancerDescriptions: page.map((lb) => describeXml(control, expand(control, lb))), NextMarker: nextMarker };
  },

  async DeleteLoadBalancer(p, { control }) {
    const name = readName(p);
    let clb: ClassicLoadBalancer;
    try {
      clb = findClassic(control, name);
    } catch (err) {
      // Deleting a load balancer that does not exist succeeds, as on AWS.
      if (EbbError.is(err) && err.code === 'LoadBalancerNotFound') return {};
      throw err;
    }
    // One change: a failure or a crash leaves the whole load balancer, so a retry works.
    await control.deleteLoadBalancer(clb.lb.arn, { withTargetGroups: true });
    return {};
  },

  async RegisterInstancesWithLoadBalancer(p, { control }) {
    const clb = findClassic(control, readName(p));
    const ids = readInstanceIds(p, true) ?? [];
    checkKnownInstances(control, ids);
    for (const g of clb.groups) await control.registerTargets(g.arn, ids.map((id) => ({ id })));
    return { Instances: registeredInstanceIds(control, clb).map((id) => ({ InstanceId: id })) };
  },

  async DeregisterInstancesFromLoadBalancer(p, { control }) {
    const clb = findClassic(control, readName(p));
    const ids = readInstanceIds(p, true) ?? [];
    checkKnownInstances(control, ids);
    const registered = new Set(registeredInstanceIds(control, clb));
    for (const id of ids) {
      if (!registered.has(id)) {
        throw ebbError('InvalidInstance', `The instance '${id}' is not registered with the load balancer '${clb.lb.name}'`);
      }
    }
    for (const g of clb.groups) await control.deregisterTargets(g.arn, ids.map((id) => ({ id })));
    return { Instances: registeredInstanceIds(control, clb).map((id) => ({ InstanceId: id })) };
  },

  async DescribeInstanceHealth(p, { control }) {
    const clb = findClassic(control, readName(p));
    const asked = readInstanceIds(p, false);
    const known = instanceDescriptions(control, clb);
    if (asked === undefined || asked.length === 0) {
      return { InstanceStates: [...known.entries()].map(([id, d]) => ({ ...classicState(id, d) })) };
    }
    checkKnownInstances(control, asked);
    return { InstanceStates: asked.map((id) => ({ ...classicState(id, known.get(id)) })) };
  },

  async ConfigureHealthCheck(p, { control }) {
    const clb = findClassic(control, readName(p));
    const hc = p.struct('HealthCheck');
    if (hc === undefined) throw ebbError('ValidationError', "1 validation error detected: Value null at 'HealthCheck' failed to satisfy constraint: Member must not be null");
    const target = parseHealthTarget(hc.requiredStr('Target'));
    const interval = hc.requiredInt('Interval', { min: 5, max: 300 });
    const timeout = hc.requiredInt('Timeout', { min: 2, max: 60 });
    const unhealthy = hc.requiredInt('UnhealthyThreshold', { min: 2, max: 10 });
    const healthy = hc.requiredInt('HealthyThreshold', { min: 2, max: 10 });
    if (timeout >= interval) {
      throw ebbError('ValidationError', `HealthCheck.Timeout (${timeout}) must be smaller than HealthCheck.Interval (${interval})`);
    }
    const config: Partial<HealthCheckConfig> = {
      enabled: true,
      ...target,
      intervalSeconds: interval,
      timeoutSeconds: timeout,
      healthyThresholdCount: healthy,
      unhealthyThresholdCount: unhealthy,
      // Classic counts anything but 200 OK as a failed HTTP check.
      matcher: '200',
    };
    let last: TargetGroupRecord | undefined;
    for (const g of clb.groups) {
      last = await control.modifyTargetGroup(g.arn, config);
    }
    return { HealthCheck: healthCheckXml(last) ?? { Target: hc.requiredStr('Target'), Interval: interval, Timeout: timeout, UnhealthyThreshold: unhealthy, HealthyThreshold: healthy } };
  },

  async DescribeLoadBalancerAttributes(p, { control }) {
    const clb = findClassic(control, readName(p));
    return { LoadBalancerAttributes: attributesXml(control, clb) };
  },

  async ModifyLoadBalancerAttributes(p, { control }) {
    const name = readName(p);
    const clb = findClassic(control, name);
    const attrs = p.struct('LoadBalancerAttributes');
    if (attrs === undefined) {
      throw ebbError('ValidationError', "1 validation error detected: Value null at 'LoadBalancerAttributes' failed to satisfy constraint: Member must not be null");
    }
    // Read and check everything before changing anything: a rejected call changes nothing.
    const draining = attrs.struct('ConnectionDraining');
    let drainEnabled: boolean | undefined;
    let drainTimeout: number | undefined;
    if (draining !== undefined) {
      drainEnabled = draining.requiredBool('Enabled');
      const t = draining.str('Timeout');
      if (t !== undefined) {
        if (!/^-?\d{1,10}$/.test(t) || +t < 1 || +t > 3600) {
          throw ebbError('InvalidConfigurationRequest', `ConnectionDraining.Timeout must be an integer from 1 to 3600 seconds; got '${t}'`);
        }
        drainTimeout = Number(t);
      }
    }
    const settings = attrs.struct('ConnectionSettings');
    const idle = settings?.requiredInt('IdleTimeout', { min: 1, max: 3600 });
    const crossZoneStruct = attrs.struct('CrossZoneLoadBalancing');
    const crossZone = crossZoneStruct?.requiredBool('Enabled');
    const accessLog = attrs.struct('AccessLog');
    const lbAttrs: Record<string, string> = accessLog === undefined ? {} : accessLogAttributes(accessLog, clb.lb.attributes);
    if (idle !== undefined) lbAttrs[IDLE_KEY] = String(idle);
    const additional = attrs.structList('AdditionalAttributes') ?? [];
    if (additional.length > 10) throw ebbError('ValidationError', `At most 10 AdditionalAttributes may be given; got ${additional.length}`);
    const additionalOut: XmlObject[] = [];
    for (const a of additional) {
      const key = a.requiredStr('Key');
      const value = a.requiredStr('Value');
      if (key !== 'elb.http.desyncmitigationmode') {
        throw ebbError('LoadBalancerAttributeNotFound', `The additional attribute '${key}' is not supported; ebb knows elb.http.desyncmitigationmode`);
      }
      if (!['monitor', 'defensive', 'strictest'].includes(value)) {
        throw ebbError('InvalidConfigurationRequest', `elb.http.desyncmitigationmode must be monitor, defensive or strictest; got '${value}'`);
      }
      lbAttrs[DESYNC_KEY] = value;
      additionalOut.push({ Key: key, Value: value });
    }

    // One change: a failure or a crash leaves every attribute as it was.
    const record = await control.modifyClassicAttributes(clb.lb.arn, {
      attributes: lbAttrs,
      ...(crossZone !== undefined ? { crossZone } : {}),
      ...(drainEnabled !== undefined ? { connectionDraining: { enabled: drainEnabled, ...(drainTimeout !== undefined ? { timeoutSeconds: drainTimeout } : {}) } } : {}),
    });
    const out: Record<string, XmlObject | XmlObject[]> = {};
    if (crossZone !== undefined) out['CrossZoneLoadBalancing'] = { Enabled: crossZone };
    if (accessLog !== undefined) out['AccessLog'] = accessLogXml(record.attributes);
    if (drainEnabled !== undefined) {
      out['ConnectionDraining'] = { Enabled: drainEnabled, Timeout: record.classic?.drainingTimeoutSeconds ?? DEFAULT_DRAINING_TIMEOUT };
    }
    if (idle !== undefined) out['ConnectionSettings'] = { IdleTimeout: idle };
    if (additional.length > 0) out['AdditionalAttributes'] = additionalOut;
    return { LoadBalancerName: name, LoadBalancerAttributes: out };
  },
};

function attributesXml(control: ControlApi, clb: ClassicLoadBalancer): XmlObject {
  const lbAttrs = control.describeLoadBalancerAttributes(clb.lb.arn);
  const draining = drainingSettings(control, clb);
  const crossZone = clb.lb.classic?.crossZone ?? false;
  return {
    CrossZoneLoadBalancing: { Enabled: crossZone },
    AccessLog: accessLogXml(clb.lb.attributes),
    ConnectionDraining: { Enabled: draining.enabled, Timeout: draining.timeout },
    ConnectionSettings: { IdleTimeout: Number(lbAttrs[IDLE_KEY] ?? 60) },
    AdditionalAttributes: [{ Key: 'elb.http.desyncmitigationmode', Value: lbAttrs[DESYNC_KEY] ?? 'defensive' }],
  };
}

/**
 * Classic's AccessLog (botocore elb `AccessLog`: Enabled, S3BucketName, EmitInterval 5 or 60 with 60
 * the default, S3BucketPrefix) as the load balancer attributes ebb keeps for every load balancer
 * (access_logs.s3.*, ebb.access_logs.s3.emit_interval.minutes); docs/access-logs.md. The bucket is a
 * local directory. Members not given keep their value; enabling needs a bucket, given or kept.
 */
function accessLogAttributes(p: QueryParams, current: Readonly<Record<string, string>>): Record<string, string> {
  const enabled = p.requiredBool('Enabled');
  const bucket = p.str('S3BucketName', { maxLength: 1024 });
  const prefix = p.str('S3BucketPrefix', { maxLength: 1024 });
  const interval = p.str('EmitInterval');
  if (interval !== undefined && interval !== '5' && interval !== '60') {
    throw ebbError('InvalidConfigurationRequest', `AccessLog.EmitInterval must be 5 or 60 (minutes); got '${interval}'`);
  }
  if (enabled && (bucket ?? current[ACCESS_LOG_ATTRIBUTES.bucket] ?? '') === '') {
    throw ebbError('InvalidConfigurationRequest', 'AccessLog.S3BucketName is required to enable access logs: a directory, absolute or relative to the state directory');
  }
  if (bucket !== undefined && /[\x00-\x1f\x7f]/.test(bucket)) {
    throw ebbError('ValidationError', 'AccessLog.S3BucketName must not contain control characters');
  }
  const prefixProblem = prefix === undefined ? null : accessLogPrefixProblem(prefix);
  if (prefixProblem !== null) throw ebbError('ValidationError', `AccessLog.S3BucketPrefix ${prefixProblem}; got '${prefix ?? ''}'`);
  return {
    [ACCESS_LOG_ATTRIBUTES.enabled]: String(enabled),
    ...(bucket !== undefined && { [ACCESS_LOG_ATTRIBUTES.bucket]: bucket }),
    ...(prefix !== undefined && { [ACCESS_LOG_ATTRIBUTES.prefix]: prefix }),
    ...(interval !== undefined && { [ACCESS_LOG_ATTRIBUTES.emitInterval]: interval }),
  };
}

/** AccessLog as Classic describes it: Enabled alone until a bucket is set, then every member. */
function accessLogXml(attrs: Readonly<Record<string, string>>): XmlObject {
  const bucket = attrs[ACCESS_LOG_ATTRIBUTES.bucket] ?? '';
  const enabled = attrs[ACCESS_LOG_ATTRIBUTES.enabled] === 'true';
  if (bucket === '') return { Enabled: enabled };
  return {
    Enabled: enabled,
    S3BucketName: bucket,
    EmitInterval: Number(attrs[ACCESS_LOG_ATTRIBUTES.emitInterval] ?? DEFAULT_CLASSIC_EMIT_INTERVAL),
    S3BucketPrefix: attrs[ACCESS_LOG_ATTRIBUTES.prefix] ?? '',
  };
}
