import { randomBytes } from 'node:crypto';
import { ebbError, type EbbError } from '../shared/errors.ts';

/** ARNs in the AWS form, with the configured region and account id. */
export class ArnFactory {
  constructor(
    readonly region: string,
    readonly accountId: string,
  ) {}

  #prefix(): string {
    return `arn:aws:elasticloadbalancing:${this.region}:${this.accountId}`;
  }

  loadBalancer(name: string, type: 'application' | 'network' | 'classic'): string {
    if (type === 'classic') return `${this.#prefix()}:loadbalancer/${name}`;
    return `${this.#prefix()}:loadbalancer/${type === 'network' ? 'net' : 'app'}/${name}/${newId()}`;
  }

  listener(loadBalancerArn: string): string {
    const tail = loadBalancerArn.slice(loadBalancerArn.indexOf(':loadbalancer/') + ':loadbalancer/'.length);
    return `${this.#prefix()}:listener/${tail}/${newId()}`;
  }

  targetGroup(name: string): string {
    return `${this.#prefix()}:targetgroup/${name}/${newId()}`;
  }
}

function newId(): string {
  return randomBytes(8).toString('hex');
}

const ARN_PATTERN = /^arn:aws:elasticloadbalancing:[^:]*:\d{12}:(loadbalancer|listener|targetgroup)\/.+$/;

export function isWellFormedArn(value: string): boolean {
  return ARN_PATTERN.test(value);
}

export type ArnResource = 'loadbalancer' | 'listener' | 'targetgroup';

/** A malformed ARN is a ValidationError (as in AWS); a well-formed unknown one is the resource's NotFound. */
export function checkArn(arn: string, resource: ArnResource, label: string): void {
  if (!isWellFormedArn(arn) || !arn.includes(`:${resource}/`)) {
    throw ebbError('ValidationError', `'${arn}' is not a valid ${label} ARN`);
  }
}

/** An ARN of a load balancer, listener or target group, whichever. */
export function checkAnyArn(arn: string): void {
  if (!isWellFormedArn(arn)) throw ebbError('ValidationError', `'${arn}' is not a valid load balancer, listener or target group ARN`);
}

/** The NotFound error for a well-formed ARN of no resource, by the kind of resource it names. */
export function notFoundFor(arn: string): EbbError {
  if (arn.includes(':targetgroup/')) return ebbError('TargetGroupNotFound', `Target group '${arn}' not found`);
  if (arn.includes(':listener/')) return ebbError('ListenerNotFound', `Listener '${arn}' not found`);
  return ebbError('LoadBalancerNotFound', `Load balancer '${arn}' not found`);
}
