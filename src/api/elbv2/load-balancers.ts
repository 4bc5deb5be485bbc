import { ebbError } from '../../shared/errors.ts';
import type { ActionTable } from '../handler.ts';
import { paginate, readTags } from '../common.ts';
import type { QueryParams } from '../query-parser.ts';
import { attributesXml, loadBalancerXml } from './shapes.ts';

/** ELBv2 load balancer actions. */

/**
 * `Attributes.member.N.Key/Value` into a map; a key given twice is refused. The keys are the client's,
 * so the map has no prototype: `Key=__proto__` is an attribute name like any other, not a setter.
 */
export function readAttributes(p: QueryParams, maxMembers: number): Record<string, string> {
  const list = p.requiredStructList('Attributes');
  if (list.length > maxMembers) throw ebbError('ValidationError', `You can modify at most ${maxMembers} attributes in one call; got ${list.length}`);
  const out = Object.create(null) as Record<string, string>;
  for (const a of list) {
    const key = a.requiredStr('Key', { maxLength: 256, pattern: /^[a-zA-Z0-9._]+$/, patternHint: 'must contain only letters, digits, dots and underscores' });
    const value = a.str('Value', { maxLength: 1024 }) ?? '';
    if (Object.hasOwn(out, key)) throw ebbError('ValidationError', `The attribute '${key}' is given more than once`);
    out[key] = value;
  }
  return out;
}

export const loadBalancerActions: ActionTable = {
  async CreateLoadBalancer(p, { control }) {
    // The name is checked by the control plane, with the same message the configuration file gets.
    const name = p.requiredStr('Name');
    const type = p.enumOf('Type', ['application', 'network', 'gateway'] as const) ?? 'application';
    if (type === 'gateway') throw ebbError('ValidationError', "Gateway load balancers are not supported by ebb; use Type 'application' or 'network'");
    const scheme = p.enumOf('Scheme', ['internet-facing', 'internal'] as const);
    const ipType = p.enumOf('IpAddressType', ['ipv4', 'dualstack', 'dualstack-without-public-ipv4'] as const);
    if (ipType !== undefined && ipType !== 'ipv4') {
      throw ebbError('ValidationError', `IpAddressType '${ipType}' is not supported by ebb; listeners bind the address they are given (use 'ipv4')`);
    }
    // Subnets, SubnetMappings and SecurityGroups describe AWS networking; ebb accepts and ignores them.
    p.list('Subnets');
    p.list('SecurityGroups');
    const tags = readTags(p);
    const lb = await control.createLoadBalancer({
      name,
      type,
      ...(scheme !== undefined ? { scheme } : {}),
      ...(tags !== undefined ? { tags } : {}),
    });
    return { LoadBalancers: [loadBalancerXml(lb)] };
  },

  async DescribeLoadBalancers(p, { control }) {
    const arns = p.list('LoadBalancerArns');
    const names = p.list('Names');
    if (arns !== undefined && arns.length > 0 && names !== undefined && names.length > 0) {
      throw ebbError('ValidationError', 'Specify either LoadBalancerArns or Names, not both');
    }
    const lbs = control.describeLoadBalancers({
      type: 'elbv2',
      ...(arns !== undefined && arns.length > 0 ? { arns } : {}),
      ...(names !== undefined && names.length > 0 ? { names } : {}),
    });
    const { page, nextMarker } = paginate(p, lbs);
    return { LoadBalancers: page.map(loadBalancerXml), NextMarker: nextMarker };
  },

  async DeleteLoadBalancer(p, { control }) {
    await control.deleteLoadBalancer(p.requiredStr('LoadBalancerArn'));
    return {};
  },

  async DescribeLoadBalancerAttributes(p, { control }) {
    return { Attributes: attributesXml(control.describeLoadBalancerAttributes(p.requiredStr('LoadBalancerArn'))) };
  },

  async ModifyLoadBalancerAttributes(p, { control }) {
    const arn = p.requiredStr('LoadBalancerArn');
    const attrs = readAttributes(p, 20);
    return { Attributes: attributesXml(await control.modifyLoadBalancerAttributes(arn, attrs)) };
  },
};
