import type { ControlApi } from '../../control/control-api.ts';
import { HEALTH_CHECK_RANGES, parseMatcher, type HealthCheckConfig } from '../../domain/health-check.ts';
import { ebbError } from '../../shared/errors.ts';
import { paginate, readProtocol, readTags } from '../common.ts';
import type { ActionTable } from '../handler.ts';
import type { IntRange, QueryParams } from '../query-parser.ts';
import { readAttributes } from './load-balancers.ts';
import { attributesXml, targetGroupXml } from './shapes.ts';

/** ELBv2 target group actions. */

/** The AWS range of a health-check count or period, as the query parser takes it. */
function range(field: keyof typeof HEALTH_CHECK_RANGES): IntRange {
  const [min, max] = HEALTH_CHECK_RANGES[field];
  return { min, max };
}

/**
 * The health-check members of Create/ModifyTargetGroup, as a partial config. Each value is read in
 * its wire form; how they fit together (timeout below interval, a path for HTTP) is checked by the
 * control plane on the merged config.
 */
function readHealthCheck(p: QueryParams): Partial<HealthCheckConfig> {
  const hc: { -readonly [K in keyof HealthCheckConfig]?: HealthCheckConfig[K] } = {};
  const protocol = readProtocol(p, 'HealthCheckProtocol', 'ValidationError', 'HealthCheckProtocol');
  if (protocol !== undefined) hc.protocol = protocol;
  const port = p.str('HealthCheckPort');
  if (port !== undefined) {
    if (port === 'traffic-port') hc.port = 'traffic-port';
    else if (/^\d{1,5}$/.test(port) && +port >= 1 && +port <= 65535) hc.port = Number(port);
    else throw ebbError('ValidationError', `HealthCheckPort must be 'traffic-port' or a port from 1 to 65535; got '${port}'`);
  }
  const enabled = p.bool('HealthCheckEnabled');
  if (enabled !== undefined) hc.enabled = enabled;
  const path = p.str('HealthCheckPath', { minLength: 1, maxLength: 1024 });
  if (path !== undefined) hc.path = path;
  const interval = p.int('HealthCheckIntervalSeconds', range('intervalSeconds'));
  if (interval !== undefined) hc.intervalSeconds = interval;
  const timeout = p.int('HealthCheckTimeoutSeconds', range('timeoutSeconds'));
  if (timeout !== undefined) hc.timeoutSeconds = timeout;
  const healthy = p.int('HealthyThresholdCount', range('healthyThresholdCount'));
  if (healthy !== undefined) hc.healthyThresholdCount = healthy;
  const unhealthy = p.int('UnhealthyThresholdCount', range('unhealthyThresholdCount'));
  if (unhealthy !== undefined) hc.unhealthyThresholdCount = unhealthy;
  const matcher = p.struct('Matcher');
  if (matcher !== undefined) {
    if (matcher.str('GrpcCode') !== undefined) throw ebbError('ValidationError', 'Matcher.GrpcCode is not supported by ebb; use Matcher.HttpCode');
    const code = matcher.str('HttpCode');
    if (code !== undefined) {
      parseMatcher(code);
      hc.matcher = code;
    }
  }
  return hc;
}

/** The groups behind Classic load balancers (those their listeners forward to). */
function classicGroupArns(control: ControlApi): Set<string> {
  const out = new Set<string>();
  for (const lb of control.describeLoadBalancers({ type: 'classic' })) {
    for (const g of control.describeTargetGroups({ loadBalancerArn: lb.arn })) out.add(g.arn);
  }
  return out;
}

export const targetGroupActions: ActionTable = {
  async CreateTargetGroup(p, { control }) {
    // The name is checked by the control plane, with the same message the configuration file gets.
    const name = p.requiredStr('Name');
    const targetType = p.enumOf('TargetType', ['instance', 'ip', 'lambda', 'alb'] as const) ?? 'instance';
    if (targetType === 'lambda' || targetType === 'alb') {
      throw ebbError('ValidationError', `TargetType '${targetType}' is not supported by ebb; use 'instance' or 'ip'`);
    }
    const protocol = readProtocol(p, 'Protocol', 'ValidationError', 'Protocol');
    if (protocol === undefined) throw ebbError('ValidationError', "A protocol must be specified for a target group of type 'instance' or 'ip'");
    const port = p.int('Port', { min: 1, max: 65535 });
    if (port === undefined) throw ebbError('ValidationError', "A port must be specified for a target group of type 'instance' or 'ip'");
    const ipType = p.enumOf('IpAddressType', ['ipv4', 'ipv6'] as const);
    if (ipType === 'ipv6') throw ebbError('ValidationError', "IpAddressType 'ipv6' is not supported by ebb yet; use 'ipv4'");
    const pv = p.str('ProtocolVersion');
    if (pv !== undefined && pv !== 'HTTP1') throw ebbError('ValidationError', `ProtocolVersion '${pv}' is not supported by ebb; use HTTP1`);
    p.str('VpcId'); // AWS networking; accepted and ignored
    const healthCheck = readHealthCheck(p);
    const tags = readTags(p);
    const tg = await control.createTargetGroup({
      name,
      protocol,
      port,
      targetType,
      healthCheck,
      ...(tags !== undefined ? { tags } : {}),
    });
    return { TargetGroups: [targetGroupXml(tg, control)] };
  },

  async DescribeTargetGroups(p, { control }) {
    const arns = p.list('TargetGroupArns');
    const names = p.list('Names');
    const loadBalancerArn = p.str('LoadBalancerArn');
    const given = [arns !== undefined && arns.length > 0, names !== undefined && names.length > 0, loadBalancerArn !== undefined];
    if (given.filter(Boolean).length > 1) {
      throw ebbError('ValidationError', 'Specify at most one of LoadBalancerArn, TargetGroupArns and Names');
    }
    let groups = control.describeTargetGroups({
      ...(arns !== undefined && arns.length > 0 ? { arns } : {}),
      ...(names !== undefined && names.length > 0 ? { names } : {}),
      ...(loadBalancerArn !== undefined ? { loadBalancerArn } : {}),
    });
    // The groups behind Classic load balancers are ebb's own plumbing: list them only when asked for.
    if (!given.some(Boolean)) {
      const classic = classicGroupArns(control);
      groups = groups.filter((g) => !classic.has(g.arn));
    }
    const { page, nextMarker } = paginate(p, groups);
    return { TargetGroups: page.map((g) => targetGroupXml(g, control)), NextMarker: nextMarker };
  },

  async ModifyTargetGroup(p, { control }) {
    const arn = p.requiredStr('TargetGroupArn');
    const healthCheck = readHealthCheck(p);
    const tg = await control.modifyTargetGroup(arn, healthCheck);
    return { TargetGroups: [targetGroupXml(tg, control)] };
  },

  async DeleteTargetGroup(p, { control }) {
    await control.deleteTargetGroup(p.requiredStr('TargetGroupArn'));
    return {};
  },

  async DescribeTargetGroupAttributes(p, { control }) {
    return { Attributes: attributesXml(control.describeTargetGroupAttributes(p.requiredStr('TargetGroupArn'))) };
  },

  async ModifyTargetGroupAttributes(p, { control }) {
    const arn = p.requiredStr('TargetGroupArn');
    const attrs = readAttributes(p, 100);
    return { Attributes: attributesXml(await control.modifyTargetGroupAttributes(arn, attrs)) };
  },
};
