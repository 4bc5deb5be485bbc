import { ebbError } from '../shared/errors.ts';
import type { ListenerProtocol, Tag, TargetGroupProtocol } from '../domain/resources.ts';
import type { QueryParams } from './query-parser.ts';
import type { XmlObject } from './xml.ts';

/** Helpers shared by the ELBv2 and Classic handlers. */

/** `Tags.member.N.Key/Value` (or another list name); the control plane checks them as it stores them. */
export function readTags(p: QueryParams, name = 'Tags'): Tag[] | undefined {
  return p.structList(name)?.map((t) => ({ key: t.requiredStr('Key'), value: t.str('Value') ?? '' }));
}

/** Every protocol the ELBv2 model names; ebb serves HTTP, HTTPS, TCP and TLS listeners, and HTTP, HTTPS and TCP groups and checks. */
const ELBV2_PROTOCOLS = ['HTTP', 'HTTPS', 'TCP', 'TLS', 'UDP', 'TCP_UDP', 'GENEVE', 'QUIC', 'TCP_QUIC'] as const;

/**
 * A target group's `Protocol` or `HealthCheckProtocol`, or undefined when absent. A value outside the
 * model is a ValidationError; a modelled one ebb does not serve is refused with `code`, saying what to use.
 */
export function readProtocol(
  p: QueryParams,
  name: string,
  code: 'ValidationError' | 'UnsupportedProtocol',
  what: string,
): TargetGroupProtocol | undefined {
  const value = p.enumOf(name, ELBV2_PROTOCOLS);
  if (value === undefined || value === 'HTTP' || value === 'HTTPS' || value === 'TCP') return value;
  // A TLS group would re-encrypt to its targets; ebb's TLS listeners forward to TCP groups (NLB's TLS termination).
  const hint = value === 'TLS' && name === 'Protocol' ? ' (a TLS listener forwards to a TCP group: the listener ends TLS)' : '';
  throw ebbError(code, `${what} '${value}' is not supported by ebb; use HTTP, HTTPS or TCP${hint}`);
}

/** A listener's `Protocol`, or undefined when absent: HTTP and HTTPS (application), TCP and TLS (network). */
export function readListenerProtocol(p: QueryParams, name = 'Protocol'): ListenerProtocol | undefined {
  const value = p.enumOf(name, ELBV2_PROTOCOLS);
  if (value === undefined || value === 'HTTP' || value === 'HTTPS' || value === 'TCP' || value === 'TLS') return value;
  throw ebbError('UnsupportedProtocol', `Listener protocol '${value}' is not supported by ebb; use HTTP or HTTPS (application), TCP or TLS (network)`);
}

export function tagsXml(tags: readonly Tag[]): XmlObject[] {
  return tags.map((t) => ({ Key: t.key, Value: t.value }));
}

/** The last path segment of an ARN (the id of an ELBv2 resource). */
export function arnId(arn: string): string {
  const i = arn.lastIndexOf('/');
  return i === -1 ? arn : arn.slice(i + 1);
}

/** A stable DNS name for a load balancer; `*.localhost` names resolve to the loopback address. */
export function dnsName(name: string, arn: string): string {
  const id = arnId(arn);
  return id === name ? `${name}.elb.localhost` : `${name}-${id}.elb.localhost`;
}

export const CANONICAL_HOSTED_ZONE_ID = 'Z0EBBLOCAL0000';

/**
 * Paging for Describe* calls: `Marker` is an opaque offset that ebb gave out, `PageSize` 1-400.
 * Returns the page and the NextMarker to send back (undefined on the last page).
 */
export function paginate<T>(p: QueryParams, items: readonly T[]): { page: T[]; nextMarker: string | undefined } {
  const pageSize = p.int('PageSize', { min: 1, max: 400 }) ?? 400;
  const marker = p.str('Marker');
  let start = 0;
  if (marker !== undefined && marker !== '') {
    const m = /^ebb-(\d{1,9})$/.exec(Buffer.from(marker, 'base64url').toString('utf8'));
    if (m === null) throw ebbError('ValidationError', `The marker '${marker}' is not one ebb gave out; start again without Marker`);
    start = Number(m[1]);
  }
  const page = items.slice(start, start + pageSize);
  const next = start + pageSize < items.length ? Buffer.from(`ebb-${start + pageSize}`).toString('base64url') : undefined;
  return { page, nextMarker: next };
}
