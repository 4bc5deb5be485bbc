/**
 * Label values for ebb's metrics, written as CloudWatch writes the dimensions of ELB's metrics, so a
 * query or a dashboard made for ALB reads ebb's series with the same values.
 *
 * CloudWatch's `LoadBalancer` dimension is "the final portion of the load balancer ARN"
 * (`app/my-load-balancer/50dc6c495c0c9188`) and `TargetGroup` that of the target group ARN
 * (`targetgroup/my-target-group/73e2d6bc24d8a067`): AWS documentation, Elastic Load Balancing,
 * "CloudWatch metrics for your Application Load Balancer", "Metric dimensions for Application Load
 * Balancers". A Classic load balancer is named by `LoadBalancerName` ("CloudWatch metrics for your
 * Classic Load Balancer"); its ARN in ebb ends in `loadbalancer/NAME`, so the final portion is the name.
 */

/** The resource part of an ELB ARN: what follows `arn:aws:elasticloadbalancing:REGION:ACCOUNT:`. */
function resourceOf(arn: string): string {
  // Names and ids contain no colon, so the resource is everything after the fifth one.
  let at = -1;
  for (let i = 0; i < 5; i++) {
    at = arn.indexOf(':', at + 1);
    if (at === -1) return arn;
  }
  return arn.slice(at + 1);
}

/** `app/web/0123456789abcdef` for an ALB, `net/…` for an NLB, the name for a Classic load balancer. */
export function loadBalancerDimension(loadBalancerArn: string): string {
  const resource = resourceOf(loadBalancerArn);
  return resource.startsWith('loadbalancer/') ? resource.slice('loadbalancer/'.length) : resource;
}

/** `targetgroup/web/0123456789abcdef`. */
export function targetGroupDimension(targetGroupArn: string): string {
  return resourceOf(targetGroupArn);
}

/**
 * The load balancer a listener belongs to, as its dimension. A listener's ARN is its load balancer's
 * resource with `listener/` in front and the listener's own id behind (`listener/app/web/LBID/LID`,
 * or `listener/NAME/LID` for a Classic one): the same string as `loadBalancerDimension` gives.
 */
export function listenerLoadBalancerDimension(listenerArn: string): string {
  const resource = resourceOf(listenerArn);
  const inner = resource.startsWith('listener/') ? resource.slice('listener/'.length) : resource;
  const last = inner.lastIndexOf('/');
  return last === -1 ? inner : inner.slice(0, last);
}

/** A registration key (`targetKey(group, id, port)` in src/domain/resources.ts) split into its parts. */
export interface TargetKeyParts {
  readonly targetGroupArn: string;
  readonly id: string;
  readonly port: number;
}

/** The parts of `ARN|ID|PORT`; null for anything else. ARNs, ids and ports contain no `|`. */
export function parseTargetKey(key: string): TargetKeyParts | null {
  const a = key.indexOf('|');
  const b = key.lastIndexOf('|');
  if (a <= 0 || b === a) return null;
  const port = Number(key.slice(b + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) return null;
  return { targetGroupArn: key.slice(0, a), id: key.slice(a + 1, b), port };
}

/**
 * The `target` label of ebb's per-target series: the registration's id and port as the API names a
 * target (`10.0.0.5:8080`, `i-0abc:80`), an IPv6 address in brackets. Bounded by the registrations,
 * and gone with them.
 */
export function targetDimension(id: string, port: number): string {
  return id.includes(':') ? `[${id}]:${port}` : `${id}:${port}`;
}
