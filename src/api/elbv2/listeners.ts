import type { ForwardAction } from '../../domain/resources.ts';
import { ebbError } from '../../shared/errors.ts';
import { paginate, readListenerProtocol, readTags } from '../common.ts';
import type { ActionTable } from '../handler.ts';
import type { QueryParams } from '../query-parser.ts';
import { readAttributes } from './load-balancers.ts';
import { attributesXml, listenerXml } from './shapes.ts';

/** ELBv2 listener actions. ebb's listeners forward to one target group. */

/**
 * `Certificates.member.N.CertificateArn`: the ARNs, in order. `IsDefault` is an output member ("Do not
 * set this value when specifying a certificate as an input", botocore elbv2 Certificate); true is refused.
 */
export function readCertificates(p: QueryParams, name = 'Certificates'): string[] | undefined {
  return p.structList(name)?.map((c) => {
    if (c.bool('IsDefault') === true) {
      throw ebbError('ValidationError', 'Do not set IsDefault on a certificate you give: the one CreateListener or ModifyListener takes is the default, and AddListenerCertificates adds others');
    }
    return c.requiredStr('CertificateArn', { maxLength: 2048 });
  });
}

/** `AlpnPolicy.member.1`: one policy name at most (botocore elbv2 AlpnPolicyName, "You can specify one policy name"). */
function readAlpnPolicy(p: QueryParams): string | undefined {
  const list = p.list('AlpnPolicy');
  if (list === undefined || list.length === 0) return undefined;
  if (list.length > 1) throw ebbError('ValidationError', `Give one ALPN policy; got ${list.length}`);
  return list[0];
}

/** The TLS members of CreateListener and ModifyListener, as far as they are given. */
function readTls(p: QueryParams): { certificateArns?: string[]; sslPolicy?: string; alpnPolicy?: string } {
  const certificateArns = readCertificates(p);
  const sslPolicy = p.str('SslPolicy', { maxLength: 1024 });
  const alpnPolicy = readAlpnPolicy(p);
  if (p.has('MutualAuthentication')) {
    const mode = p.struct('MutualAuthentication')?.str('Mode');
    if (mode !== undefined && mode !== 'off') throw ebbError('ValidationError', `MutualAuthentication mode '${mode}' is not supported by ebb; leave it out or use off`);
  }
  return {
    ...(certificateArns !== undefined && { certificateArns }),
    ...(sslPolicy !== undefined && { sslPolicy }),
    ...(alpnPolicy !== undefined && { alpnPolicy }),
  };
}

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
    const protocol = readListenerProtocol(p);
    const port = p.int('Port', { min: 1, max: 65535 });
    if (protocol === undefined) throw ebbError('ValidationError', 'A listener protocol must be specified (HTTP or HTTPS for an application load balancer, TCP or TLS for a network one)');
    if (port === undefined) throw ebbError('ValidationError', 'A listener port must be specified (1-65535)');
    const tls = readTls(p);
    const defaultActions = readDefaultActions(p);
    const tags = readTags(p);
    const listener = await control.createListener({
      loadBalancerArn,
      protocol,
      port,
      defaultActions,
      ...tls,
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
    const protocol = readListenerProtocol(p);
    const port = p.int('Port', { min: 1, max: 65535 });
    const tls = readTls(p);
    const defaultActions = p.has('DefaultActions') ? readDefaultActions(p) : undefined;
    const listener = await control.modifyListener(arn, {
      ...(protocol !== undefined ? { protocol } : {}),
      ...(port !== undefined ? { port } : {}),
      ...(defaultActions !== undefined ? { defaultActions } : {}),
      ...tls,
    });
    return { Listeners: [listenerXml(listener)] };
  },

  async DeleteListener(p, { control }) {
    await control.deleteListener(p.requiredStr('ListenerArn'));
    return {};
  },
};

/** Listener attributes (`tcp.idle_timeout.seconds`, TCP listeners). */
export const listenerAttributeActions: ActionTable = {
  async DescribeListenerAttributes(p, { control }) {
    return { Attributes: attributesXml(control.describeListenerAttributes(p.requiredStr('ListenerArn'))) };
  },

  async ModifyListenerAttributes(p, { control }) {
    const arn = p.requiredStr('ListenerArn');
    const attrs = readAttributes(p, 20);
    return { Attributes: attributesXml(await control.modifyListenerAttributes(arn, attrs)) };
  },
};
