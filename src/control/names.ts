import { ebbError } from '../shared/errors.ts';
import { isIP } from 'node:net';

const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$/;

/** Load balancer and target group names, as AWS allows them. */
export function validateName(kind: 'load balancer' | 'target group', name: string): void {
  if (!NAME.test(name)) {
    throw ebbError(
      'ValidationError',
      `The ${kind} name '${name}' is not valid: use 1-32 letters, digits and hyphens, not starting or ending with a hyphen`,
    );
  }
  if (kind === 'load balancer' && name.startsWith('internal-')) {
    throw ebbError('ValidationError', `The load balancer name '${name}' cannot begin with 'internal-'`);
  }
}

export function validatePort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw ebbError('ValidationError', `${what} must be an integer from 1 to 65535; got ${String(port)}`);
  }
}

export function isIpAddress(value: string): boolean {
  return isIP(value) !== 0;
}

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** A DNS host name (RFC 1123 labels). */
export function isHostName(value: string): boolean {
  return HOST_NAME.test(value);
}

const INSTANCE_ID = /^i-[A-Za-z0-9]{1,32}$/;

/** An instance id as ebb names instances: `i-` and 1-32 letters and digits (`i-0abc`). */
export function isInstanceId(value: string): boolean {
  return INSTANCE_ID.test(value);
}
