import { randomBytes } from 'node:crypto';

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
