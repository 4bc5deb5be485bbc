import type { ForwardAction } from '../../domain/resources.ts';
import { ebbError } from '../../shared/errors.ts';
import { paginate, readProtocol, readTags } from '../common.ts';
import type { ActionTable } from '../handler.ts';
import type { QueryParams } from '../query-parser.ts';
import { listenerXml } from './shapes.ts';

/** ELBv2 listener actions. ebb's listeners forward to one target group. */

function readDefaultActions(p: QueryParams): ForwardAction[] {
  const list = p.requiredStructList('DefaultActions');
  if (list.length > 1) {
    throw ebbError('InvalidLoadBalancerAction', 'ebb listeners take exactly one default action (forward)');
  }
  return list.map((a) => {
    const type = a.requiredStr('Type');
    if (type !== 'forward') {
      throw ebbError('InvalidLoadBalancerAction', `Action type '${type}' is not supported by ebb; use 'forward'`);
    }
    a.int('Order', { min: 1, max: 50000 });
    let arn = a.str('TargetGroupArn');
    const fc = a.struct('ForwardConfig');
    if (fc !== undefined) {
      const groups = fc.structList('TargetGroups') ?? [];
      if (groups.length > 1) {
        throw ebbError('InvalidLoadBalancerAction', 'ebb forwards to one target group per listener; weighted forwarding to several is not supported yet');
      }
      const only = groups[0];
      if (only !== undefined) {
        const fromConfig = only.requiredStr('TargetGroupArn');
        only.int('Weight', { min: 0, max: 999 });
        if (arn !== undefined && arn !== fromConfig) {
          throw ebbError('ValidationError', 'TargetGroupArn and ForwardConfig.TargetGroups name different target groups');
        }
        arn = fromConfig;
      }
      const sticky = fc.struct('TargetGroupStickinessConfig');
      if (sticky !== undefined && sticky.bool('Enabled') === true) {
        throw ebbError('InvalidLoadBalancerAction', 'Target group stickiness across groups is not supported by ebb; use the stickiness.* target group attributes');
      }
    }
    if (arn === undefined) throw ebbError('ValidationError', "A forward action needs a TargetGroupArn (or ForwardConfig.TargetGroups)");
    return { type: 'forward', targetGroupArn: arn } satisfies ForwardAction;
  });
}

export const listenerActions: ActionTable = {
  async CreateListener(p, { control }) {
    const loadBalancerArn = p.requiredStr('LoadBalancerArn');
    const protocol = readProtocol(p, 'Protocol', 'UnsupportedProtocol', 'Listener protocol');
    const port = p.int('Port', { min: 1, max: 65535 });
    if (protocol === undefined) throw ebbError('ValidationError', 'A listener protocol must be specified (HTTP, HTTPS or TCP)');
    if (port === undefined) throw ebbError('ValidationError', 'A listener port must be specified (1-65535)');
    const certs = p.structList('Certificates');
    if (certs !== undefined && certs.length > 0 && protocol !== 'HTTPS') {
      throw ebbError('ValidationError', `Certificates can only be given to an HTTPS listener, not ${protocol}`);
    }
    const defaultActions = readDefaultActions(p);
    const tags = readTags(p);
    const listener = await control.createListener({
      loadBalancerArn,
      protocol,
      port,
      defaultActions,
      ...(tags !== undefined ? { tags } : {}),
    });
    return { Listeners: [listenerXml(listener)] };
  },

  async DescribeListeners(p, { control }) {
    const loadBalancerArn = p.str('LoadBalancerArn');
    const listenerArns = p.list('ListenerArns');
    const hasArns = listenerArns !== undefined && listenerArns.length > 0;
    if (loadBalancerArn !== undefined && hasArns) {
      throw ebbError('ValidationError', 'Specify either ListenerArns or LoadBalancerArn, not both');
    }
    const listeners = control.describeListeners({
      ...(loadBalancerArn !== undefined ? { loadBalancerArn } : {}),
      ...(hasArns ? { listenerArns } : {}),
    });
    const { page, nextMarker } = paginate(p, listeners);
    return { Listeners: page.map(listenerXml), NextMarker: nextMarker };
  },

  async ModifyListener(p, { control }) {
    const arn = p.requiredStr('ListenerArn');
    const protocol = readProtocol(p, 'Protocol', 'UnsupportedProtocol', 'Listener protocol');
    const port = p.int('Port', { min: 1, max: 65535 });
    const defaultActions = p.has('DefaultActions') ? readDefaultActions(p) : undefined;
    const listener = await control.modifyListener(arn, {
      ...(protocol !== undefined ? { protocol } : {}),
      ...(port !== undefined ? { port } : {}),
      ...(defaultActions !== undefined ? { defaultActions } : {}),
    });
    return { Listeners: [listenerXml(listener)] };
  },

  async DeleteListener(p, { control }) {
    await control.deleteListener(p.requiredStr('ListenerArn'));
    return {};
  },
};
