import { DEFAULT_SSL_POLICY, describeSslPolicy, SSL_POLICY_NAMES, type SslPolicyDescription } from '../../domain/tls-policies.ts';
import { ebbError } from '../../shared/errors.ts';
import { paginate } from '../common.ts';
import type { ActionTable } from '../handler.ts';
import type { XmlObject } from '../xml.ts';
import { readCertificates } from './listeners.ts';

/**
 * An HTTPS or TLS listener's certificate list (the default one is CreateListener's and ModifyListener's;
 * the others are chosen by SNI) and the security policies ebb serves (botocore elbv2 2015-12-01).
 */

/** AddListenerCertificates and RemoveListenerCertificates: "You can specify one certificate per call." */
function oneCertificate(arns: readonly string[] | undefined, action: string): string[] {
  if (arns === undefined || arns.length === 0) {
    throw ebbError('ValidationError', "1 validation error detected: Value null at 'certificates' failed to satisfy constraint: Member must not be null");
  }
  if (arns.length > 1) throw ebbError('ValidationError', `${action} takes one certificate per call; got ${arns.length}. Call it once for each`);
  return [...arns];
}

function sslPolicyXml(d: SslPolicyDescription): XmlObject {
  return {
    SslProtocols: [...d.sslProtocols],
    Ciphers: d.ciphers.map((c) => ({ Name: c.name, Priority: c.priority })),
    Name: d.name,
    SupportedLoadBalancerTypes: [...d.supportedLoadBalancerTypes],
  };
}

export const listenerCertificateActions: ActionTable = {
  async AddListenerCertificates(p, { control }) {
    const arn = p.requiredStr('ListenerArn');
    const certificates = oneCertificate(readCertificates(p), 'AddListenerCertificates');
    const added = await control.addListenerCertificates(arn, certificates);
    return { Certificates: added.map((c) => ({ CertificateArn: c.certificateArn, IsDefault: c.isDefault })) };
  },

  async DescribeListenerCertificates(p, { control }) {
    const all = control.describeListenerCertificates(p.requiredStr('ListenerArn'));
    const { page, nextMarker } = paginate(p, all);
    return { Certificates: page.map((c) => ({ CertificateArn: c.certificateArn, IsDefault: c.isDefault })), NextMarker: nextMarker };
  },

  async RemoveListenerCertificates(p, { control }) {
    const arn = p.requiredStr('ListenerArn');
    await control.removeListenerCertificates(arn, oneCertificate(readCertificates(p), 'RemoveListenerCertificates'));
    return {};
  },

  /**
   * Every policy ebb serves, or those named (an unknown name is SSLPolicyNotFound); `LoadBalancerType`
   * keeps those a type may use (gateway load balancers have none). ebb's default comes first.
   */
  async DescribeSSLPolicies(p) {
    const names = p.list('Names');
    const type = p.enumOf('LoadBalancerType', ['application', 'network', 'gateway'] as const);
    const wanted = names !== undefined && names.length > 0 ? names : [DEFAULT_SSL_POLICY, ...SSL_POLICY_NAMES.filter((n) => n !== DEFAULT_SSL_POLICY)];
    const policies = wanted.map((name) => {
      const d = describeSslPolicy(name);
      if (d === undefined) throw ebbError('SSLPolicyNotFound', `SSL policy '${name}' not found: leave out Names to list every policy ebb serves`);
      return d;
    });
    const listed = type === undefined ? policies : policies.filter((d) => d.supportedLoadBalancerTypes.includes(type));
    const { page, nextMarker } = paginate(p, listed);
    return { SslPolicies: page.map(sslPolicyXml), NextMarker: nextMarker };
  },
};
