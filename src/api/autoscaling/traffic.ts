import type { XmlObject } from '../xml.ts';
import type { AsParams } from './params.ts';
import { type AsTable, groupName, readTrafficSources } from './read.ts';

/**
 * Auto Scaling actions on a group's load balancing: ELBv2 target groups (TargetGroupARNs), Classic
 * load balancers (LoadBalancerNames), and both as traffic sources (`elbv2`, `elb`).
 */

function targetGroupArns(p: AsParams): string[] {
  return p.requiredList('TargetGroupARNs', { length: { min: 1, max: 511 } });
}

function loadBalancerNames(p: AsParams): string[] {
  return p.requiredList('LoadBalancerNames', { length: { min: 1, max: 255 } });
}

export const trafficActions: AsTable = {
  async AttachLoadBalancerTargetGroups(p, as) {
    const group = groupName(p);
    await as.attachLoadBalancerTargetGroups(group, targetGroupArns(p));
    return {};
  },

  async DetachLoadBalancerTargetGroups(p, as) {
    const group = groupName(p);
    await as.detachLoadBalancerTargetGroups(group, targetGroupArns(p));
    return {};
  },

  async DescribeLoadBalancerTargetGroups(p, as) {
    const pager = p.pager({ default: 100, max: 100 });
    const states = as.describeLoadBalancerTargetGroups(groupName(p));
    const { page, nextToken } = pager.cut(states);
    return { LoadBalancerTargetGroups: page.map((s) => ({ LoadBalancerTargetGroupARN: s.targetGroupArn, State: s.state })), NextToken: nextToken };
  },

  async AttachLoadBalancers(p, as) {
    const group = groupName(p);
    await as.attachLoadBalancers(group, loadBalancerNames(p));
    return {};
  },

  async DetachLoadBalancers(p, as) {
    const group = groupName(p);
    await as.detachLoadBalancers(group, loadBalancerNames(p));
    return {};
  },

  async DescribeLoadBalancers(p, as) {
    const pager = p.pager({ default: 100, max: 100 });
    const states = as.describeLoadBalancers(groupName(p));
    const { page, nextToken } = pager.cut(states);
    return { LoadBalancers: page.map((s) => ({ LoadBalancerName: s.loadBalancerName, State: s.state })), NextToken: nextToken };
  },

  async AttachTrafficSources(p, as) {
    const group = groupName(p);
    const sources = readTrafficSources(p, true) ?? { targetGroupArns: [], loadBalancerNames: [] };
    // SkipZonalShiftValidation: ebb has no zones to shift.
    p.bool('SkipZonalShiftValidation');
    if (sources.targetGroupArns.length > 0) await as.attachLoadBalancerTargetGroups(group, sources.targetGroupArns);
    if (sources.loadBalancerNames.length > 0) await as.attachLoadBalancers(group, sources.loadBalancerNames);
    return {};
  },

  async DetachTrafficSources(p, as) {
    const group = groupName(p);
    const sources = readTrafficSources(p, true) ?? { targetGroupArns: [], loadBalancerNames: [] };
    if (sources.targetGroupArns.length > 0) await as.detachLoadBalancerTargetGroups(group, sources.targetGroupArns);
    if (sources.loadBalancerNames.length > 0) await as.detachLoadBalancers(group, sources.loadBalancerNames);
    return {};
  },

  async DescribeTrafficSources(p, as) {
    const pager = p.pager({ default: 50, max: 100 });
    const group = groupName(p);
    const type = p.str('TrafficSourceType', { min: 1, max: 255 });
    const all: XmlObject[] = [];
    if (type === undefined || type === 'elbv2') {
      for (const s of as.describeLoadBalancerTargetGroups(group)) {
        all.push({ TrafficSource: s.targetGroupArn, State: s.state, Identifier: s.targetGroupArn, Type: 'elbv2' });
      }
    }
    if (type === undefined || type === 'elb') {
      for (const s of as.describeLoadBalancers(group)) {
        all.push({ TrafficSource: s.loadBalancerName, State: s.state, Identifier: s.loadBalancerName, Type: 'elb' });
      }
    }
    const { page, nextToken } = pager.cut(all);
    return { TrafficSources: page, NextToken: nextToken };
  },
};
