import type { ListenerProtocol, LoadBalancerType, TargetGroupProtocol } from './resources.ts';

/**
 * Which listener protocols each kind of load balancer takes and which target groups a listener of each
 * protocol may forward to, as AWS has them (botocore elbv2 CreateListener `Protocol`: "For Application
 * Load Balancers, the supported protocols are HTTP and HTTPS. For Network Load Balancers, the supported
 * protocols are TCP, TLS, ..."; NLB guide, "Listeners": a TLS listener forwards to TCP or TLS target
 * groups, a TCP listener to TCP ones). One place for the API and the configuration file, so that they
 * refuse the same things with the same words. A Classic load balancer's listeners are ELBv2 listeners
 * underneath (HTTP, HTTPS; TCP, and SSL as TLS).
 */

export const LISTENER_PROTOCOLS: Readonly<Record<LoadBalancerType, readonly ListenerProtocol[]>> = {
  application: ['HTTP', 'HTTPS'],
  network: ['TCP', 'TLS'],
  classic: ['HTTP', 'HTTPS', 'TCP', 'TLS'],
};

/** Listener protocols that terminate TLS, and so take certificates and a security policy. */
export function isTlsListener(protocol: ListenerProtocol): boolean {
  return protocol === 'HTTPS' || protocol === 'TLS';
}

/** Target-group protocols a listener of `protocol` may forward to. */
export function groupProtocolsFor(protocol: ListenerProtocol): readonly TargetGroupProtocol[] {
  return protocol === 'TCP' || protocol === 'TLS' ? ['TCP'] : ['HTTP', 'HTTPS'];
}

/** Why a load balancer of `type` cannot have a listener of `protocol`, or null. */
export function listenerProtocolProblem(type: LoadBalancerType, protocol: ListenerProtocol): string | null {
  const allowed = LISTENER_PROTOCOLS[type];
  if (allowed.includes(protocol)) return null;
  const hint = type === 'application' ? '; TCP and TLS listeners belong to a load balancer of type network' : type === 'network' ? '; HTTP and HTTPS listeners belong to a load balancer of type application' : '';
  return `Listener protocol '${protocol}' must be one of '${allowed.join(', ')}' for a load balancer of type ${type}${hint}`;
}

/** Why a listener of `protocol` cannot forward to a group of `groupProtocol` (named `groupName`), or null. */
export function pairingProblem(protocol: ListenerProtocol, groupName: string, groupProtocol: TargetGroupProtocol): string | null {
  const allowed = groupProtocolsFor(protocol);
  if (allowed.includes(groupProtocol)) return null;
  const what =
    protocol === 'TCP' || protocol === 'TLS'
      ? `${protocol} listeners forward to TCP target groups${protocol === 'TLS' ? ' (the listener ends TLS and the flow goes on in TCP)' : ''}`
      : `${protocol} listeners forward to HTTP or HTTPS target groups`;
  return `Listener protocol '${protocol}' is not supported with a target group with the protocol '${groupProtocol}' ('${groupName}'): ${what}; forward to such a group, or use a listener protocol that fits '${groupName}'`;
}
