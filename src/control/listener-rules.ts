import { ebbError } from '../shared/errors.ts';
import { listenerAttributesWithDefaults, validateListenerAttributes } from '../domain/attributes.ts';
import { isTlsListener, listenerProtocolProblem, pairingProblem } from '../domain/listener-protocols.ts';
import type { ListenerProtocol, ListenerRecord, LoadBalancerRecord, TargetGroupRecord } from '../domain/resources.ts';
import { DEFAULT_SSL_POLICY, isSslPolicy } from '../domain/tls-policies.ts';
import { isIpAddress, validatePort } from './names.ts';

/**
 * The rules a listener keeps, apart from the catalog that holds the records: its protocol against its
 * load balancer's type, the groups it may forward to, its port against every other listener, and an
 * HTTPS or TLS listener's certificates, security policy and ALPN policy. Each throws the AWS error
 * before anything is written.
 */

/** Finds a certificate ebb knows by ARN (ACM's ImportCertificate, or declared in the file); undefined if none. */
export type CertificateLookup = (arn: string) => { readonly arn: string } | undefined;

/**
 * Certificates a load balancer may hold besides its listeners' defaults: ALB's and NLB's quota
 * ("Certificates per load balancer (not counting default certificates)": 25,
 * https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-limits.html).
 */
export const MAX_LISTENER_CERTIFICATES = 25;

/** The ALPN policies of a TLS listener (botocore elbv2 CreateListener `AlpnPolicy`). ebb negotiates none yet. */
export const ALPN_POLICIES = ['HTTP1Only', 'HTTP2Only', 'HTTP2Optional', 'HTTP2Preferred', 'None'] as const;

/** An HTTPS or TLS listener's TLS members as a command gives them; what is left out is kept (or defaulted). */
export interface ListenerTlsInput {
  /** CreateListener and ModifyListener: the default certificate, exactly one. */
  readonly certificateArns?: readonly string[] | undefined;
  /**
   * The configuration file's: the certificates chosen by SNI besides the default, replacing the
   * listener's list (the API adds and removes them one by one with Add/RemoveListenerCertificates).
   */
  readonly sniCertificateArns?: readonly string[] | undefined;
  readonly sslPolicy?: string | undefined;
  readonly alpnPolicy?: string | undefined;
}

/** What an HTTPS or TLS listener's record holds of TLS; empty for HTTP and TCP. */
export interface ListenerTlsFields {
  readonly certificateArns?: readonly string[];
  readonly sslPolicy?: string;
}

/** A load balancer of `lb`'s type takes listeners of `protocol`. Throws ValidationError. */
export function checkListenerProtocol(lb: LoadBalancerRecord, protocol: ListenerProtocol): void {
  const problem = listenerProtocolProblem(lb.type, protocol);
  if (problem !== null) throw ebbError('ValidationError', problem);
}

/** A listener of `protocol` may forward to `tg`. Throws IncompatibleProtocols, AWS's code for the pairing. */
export function checkPairing(protocol: ListenerProtocol, tg: TargetGroupRecord): void {
  const problem = pairingProblem(protocol, tg.name, tg.protocol);
  if (problem !== null) throw ebbError('IncompatibleProtocols', problem);
}

/** Port and address of a listener against `others` (those there are, and those about to be); `self` is the one being changed. */
export function checkListenerPort(port: number, address: string, self: string | null, others: Iterable<ListenerRecord>): void {
  validatePort(port, 'Port');
  if (!isIpAddress(address)) throw ebbError('ValidationError', `Listener address '${address}' is not an IP address`);
  for (const other of others) {
    if (other.arn !== self && other.port === port && (other.address === address || isWildcard(other.address) || isWildcard(address))) {
      throw ebbError('DuplicateListener', `A listener already uses port ${port} (${other.arn})`);
    }
  }
}

/** An address that takes every interface of its family (a dual-stack `::` takes IPv4 too, on Linux). */
function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}

/**
 * The TLS fields of a listener of `protocol` made from `input` over `before` (the listener being
 * changed, or null for a new one):
 * - HTTP and TCP listeners take no certificate, policy or ALPN policy (ValidationError), and one that
 *   becomes HTTP or TCP drops what it had, as AWS does;
 * - HTTPS and TLS listeners need a default certificate: exactly one given (CreateListener, and
 *   ModifyListener to replace it, keeping the others), or kept from `before`; each must be one ebb
 *   knows (CertificateNotFound);
 * - the policy is the one given, else kept, else ebb's default; an unknown name is SSLPolicyNotFound;
 * - AlpnPolicy is a TLS listener's only, and ebb negotiates no ALPN there yet: `None` alone is taken.
 */
export function listenerTls(protocol: ListenerProtocol, input: ListenerTlsInput, before: ListenerRecord | null, certificates: CertificateLookup): ListenerTlsFields {
  const given = input.certificateArns ?? [];
  if (!isTlsListener(protocol)) {
    if (given.length > 0 || (input.sniCertificateArns?.length ?? 0) > 0) {
      throw ebbError('ValidationError', `Certificates can be given to HTTPS and TLS listeners only, not ${protocol}; remove them, or use protocol ${protocol === 'TCP' ? 'TLS' : 'HTTPS'}`);
    }
    if (input.sslPolicy !== undefined) {
      throw ebbError('ValidationError', `An SSL policy can be given to HTTPS and TLS listeners only, not ${protocol}; remove it, or use protocol ${protocol === 'TCP' ? 'TLS' : 'HTTPS'}`);
    }
    if (input.alpnPolicy !== undefined) throw ebbError('ValidationError', `An ALPN policy can be given to TLS listeners only, not ${protocol}; remove it`);
    return {};
  }
  if (input.alpnPolicy !== undefined) checkAlpnPolicy(protocol, input.alpnPolicy);
  if (given.length > 1) {
    throw ebbError(
      'ValidationError',
      `Give exactly one certificate, the listener's default; got ${given.length}. Add the others with AddListenerCertificates (aws elbv2 add-listener-certificates), one per call`,
    );
  }
  const kept = before !== null && isTlsListener(before.protocol) ? (before.certificateArns ?? []) : [];
  const newDefault = given[0];
  if (newDefault === undefined && kept.length === 0) {
    throw ebbError(
      'ValidationError',
      `A certificate must be specified for ${protocol} listeners: give Certificates=[{CertificateArn=...}] with the ARN of a certificate imported with aws acm import-certificate (or declared in the configuration file)`,
    );
  }
  if (newDefault !== undefined) requireCertificate(newDefault, certificates);
  const defaultArn = newDefault ?? kept[0] ?? '';
  let others = kept.slice(1);
  if (input.sniCertificateArns !== undefined) {
    for (const arn of input.sniCertificateArns) requireCertificate(arn, certificates);
    others = [...input.sniCertificateArns];
    if (new Set(others.filter((arn) => arn !== defaultArn)).size > MAX_LISTENER_CERTIFICATES) {
      throw ebbError('TooManyCertificates', `A listener holds at most ${MAX_LISTENER_CERTIFICATES} certificates besides its default one; got ${others.length}`);
    }
  }
  const certificateArns = [defaultArn, ...new Set(others.filter((arn) => arn !== defaultArn))];
  const sslPolicy = input.sslPolicy ?? (before !== null && isTlsListener(before.protocol) ? before.sslPolicy : undefined) ?? DEFAULT_SSL_POLICY;
  checkSslPolicy(sslPolicy);
  return { certificateArns, sslPolicy };
}

/** The certificate ebb knows under `arn`. Throws CertificateNotFound, saying how to make it known. */
export function requireCertificate(arn: string, certificates: CertificateLookup): void {
  if (certificates(arn) !== undefined) return;
  throw ebbError(
    'CertificateNotFound',
    `Certificate '${arn}' not found: import it with aws acm import-certificate (the ARN it answers is the one to give), or declare it under certificates in the configuration file`,
  );
}

/** Throws SSLPolicyNotFound for a policy name ebb does not serve, pointing at DescribeSSLPolicies. */
export function checkSslPolicy(name: string): void {
  if (isSslPolicy(name)) return;
  throw ebbError('SSLPolicyNotFound', `SSL policy '${name}' not found: aws elbv2 describe-ssl-policies lists the policies ebb serves`);
}

function checkAlpnPolicy(protocol: ListenerProtocol, name: string): void {
  if (protocol !== 'TLS') throw ebbError('ValidationError', `An ALPN policy can be given to TLS listeners only, not ${protocol}; remove it (an HTTPS listener offers h2 by routing.http2.enabled)`);
  if (!(ALPN_POLICIES as readonly string[]).includes(name)) {
    throw ebbError('ALPNPolicyNotFound', `ALPN policy '${name}' is not valid: use one of ${ALPN_POLICIES.join(', ')}`);
  }
  if (name !== 'None') {
    throw ebbError('ALPNPolicyNotFound', `ALPN policy '${name}' is not supported by ebb yet: its TLS listeners negotiate no application protocol; leave AlpnPolicy out or use None`);
  }
}

/**
 * A listener's attributes after a change of protocol: those that still apply are kept, the others
 * dropped (a TCP listener's idle timeout on one that became TLS), as its certificates are when it
 * becomes plain.
 */
export function attributesForProtocol(attributes: Readonly<Record<string, string>> | undefined, protocol: ListenerProtocol): Readonly<Record<string, string>> | undefined {
  if (attributes === undefined) return undefined;
  const applicable = listenerAttributesWithDefaults({}, protocol);
  const kept = Object.fromEntries(Object.entries(attributes).filter(([key]) => Object.hasOwn(applicable, key)));
  return Object.keys(kept).length > 0 ? kept : undefined;
}

/** Checks attributes given to a new listener of `protocol` (the file's); returns them, or undefined for none. */
export function newListenerAttributes(attributes: Readonly<Record<string, string>> | undefined, protocol: ListenerProtocol): Readonly<Record<string, string>> | undefined {
  if (attributes === undefined || Object.keys(attributes).length === 0) return undefined;
  validateListenerAttributes(attributes, protocol);
  return { ...attributes };
}

/**
 * The certificate list of `listener` with `arns` added (once each; those it has are left). Throws
 * TooManyCertificates when its load balancer's listeners would hold more than MAX_LISTENER_CERTIFICATES
 * besides their defaults (`siblings`: every listener of the load balancer, `listener` included).
 */
export function withCertificatesAdded(listener: ListenerRecord, arns: readonly string[], siblings: readonly ListenerRecord[], certificates: CertificateLookup): string[] {
  requireTlsListener(listener);
  for (const arn of arns) requireCertificate(arn, certificates);
  const list = [...(listener.certificateArns ?? [])];
  for (const arn of arns) if (!list.includes(arn)) list.push(arn);
  const others = siblings.filter((l) => l.arn !== listener.arn).reduce((n, l) => n + Math.max(0, (l.certificateArns?.length ?? 0) - 1), 0);
  if (others + list.length - 1 > MAX_LISTENER_CERTIFICATES) {
    throw ebbError(
      'TooManyCertificates',
      `A load balancer holds at most ${MAX_LISTENER_CERTIFICATES} certificates besides its listeners' default ones; this one would hold ${others + list.length - 1}. Remove some with aws elbv2 remove-listener-certificates first`,
    );
  }
  return list;
}

/** The certificate list of `listener` without `arns` (one it does not hold is no change). The default cannot go: OperationNotPermitted. */
export function withCertificatesRemoved(listener: ListenerRecord, arns: readonly string[]): string[] {
  requireTlsListener(listener);
  const list = listener.certificateArns ?? [];
  const defaultArn = list[0];
  if (defaultArn !== undefined && arns.includes(defaultArn)) {
    throw ebbError(
      'OperationNotPermitted',
      `Certificate '${defaultArn}' is the default certificate of listener '${listener.arn}' and cannot be removed; make another the default with aws elbv2 modify-listener --certificates first`,
    );
  }
  return list.filter((arn) => !arns.includes(arn));
}

function requireTlsListener(listener: ListenerRecord): void {
  if (isTlsListener(listener.protocol)) return;
  throw ebbError('ValidationError', `Listener '${listener.arn}' uses ${listener.protocol}; certificates belong to HTTPS and TLS listeners`);
}
