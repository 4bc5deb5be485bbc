import type { TlsPolicySettings } from './routing-snapshot.ts';

/**
 * ELB security policies (the `SslPolicy` of an HTTPS or TLS listener) and what each becomes in Node's
 * TLS: the protocol versions and the ciphers, in AWS's priority order. The protocols and ciphers are
 * AWS's own, as the ALB and NLB guides list them and DescribeSSLPolicies answers
 * (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/describe-ssl-policies.html,
 * https://docs.aws.amazon.com/elasticloadbalancing/latest/network/describe-ssl-policies.html).
 * AWS's cipher names are OpenSSL's, and its TLS 1.3 suites are the IANA names OpenSSL takes too, so
 * they map one to one.
 *
 * ebb's default, for a listener created without a policy through the API or the file, is
 * ELBSecurityPolicy-TLS13-1-2-2021-06 (TLS 1.2 and 1.3, forward secrecy only). AWS's default for
 * listeners created through the CLI, CloudFormation or the CDK is ELBSecurityPolicy-2016-08, which still
 * allows TLS 1.0 and 1.1 and RSA key exchange: a deliberate deviation, stricter, documented in
 * docs/certificates.md. A listener that needs old clients names a policy that allows them.
 *
 * OpenSSL 3 (which Node 20 and later ship) refuses TLS 1.0 and 1.1 at its default security level 1,
 * since their handshake signs with SHA-1 and MD5. The policies that allow them therefore append
 * `@SECLEVEL=0` to the cipher list, which lowers the level for that listener only; without it such a
 * policy would quietly be TLS 1.2 only.
 */

/** One row of DescribeSSLPolicies: the policy as AWS describes it. */
export interface SslPolicyDescription {
  readonly name: string;
  /** `TLSv1`, `TLSv1.1`, `TLSv1.2`, `TLSv1.3`, newest first as AWS lists them. */
  readonly sslProtocols: readonly string[];
  /** Cipher names with their priority (1 first), TLS 1.3 suites first as AWS lists them. */
  readonly ciphers: ReadonlyArray<{ readonly name: string; readonly priority: number }>;
  /** `application`, `network`: which load balancers may use it. */
  readonly supportedLoadBalancerTypes: readonly string[];
}

/** ebb's default security policy (AWS's CLI default is ELBSecurityPolicy-2016-08; see above). */
export const DEFAULT_SSL_POLICY = 'ELBSecurityPolicy-TLS13-1-2-2021-06';

const TLS13 = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'] as const;

/** ECDHE with AES-GCM: the restricted (`Res`) policies' TLS 1.2 ciphers. */
const ECDHE_GCM = ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384'] as const;

/** ECDHE with AES-GCM and AES-CBC with SHA-2: forward secrecy, no SHA-1. */
const ECDHE_SHA2 = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES128-SHA256',
  'ECDHE-RSA-AES128-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-AES256-SHA384',
  'ECDHE-RSA-AES256-SHA384',
] as const;

/** RSA key exchange with SHA-2 (no forward secrecy). */
const RSA_SHA2 = ['AES128-GCM-SHA256', 'AES128-SHA256', 'AES256-GCM-SHA384', 'AES256-SHA256'] as const;

/** The 2016-08 family: every ECDHE cipher including SHA-1, then RSA key exchange including SHA-1, in AWS's order. */
const CLASSIC_2016 = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES128-SHA256',
  'ECDHE-RSA-AES128-SHA256',
  'ECDHE-ECDSA-AES128-SHA',
  'ECDHE-RSA-AES128-SHA',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-AES256-SHA384',
  'ECDHE-RSA-AES256-SHA384',
  'ECDHE-RSA-AES256-SHA',
  'ECDHE-ECDSA-AES256-SHA',
  'AES128-GCM-SHA256',
  'AES128-SHA256',
  'AES128-SHA',
  'AES256-GCM-SHA384',
  'AES256-SHA256',
  'AES256-SHA',
] as const;

/** The ECDHE part of CLASSIC_2016 (the forward-secrecy policies of 2018 and 2019). */
const ECDHE_ALL = CLASSIC_2016.slice(0, 12);

/** The TLS 1.3 policies' wider TLS 1.2 lists, in their order (Ext2 and 1-0/1-1 put SHA-1 ECDHE in). */
const EXT2_2021 = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES128-SHA256',
  'ECDHE-RSA-AES128-SHA256',
  'ECDHE-ECDSA-AES128-SHA',
  'ECDHE-RSA-AES128-SHA',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-AES256-SHA384',
  'ECDHE-RSA-AES256-SHA384',
  'ECDHE-ECDSA-AES256-SHA',
  'ECDHE-RSA-AES256-SHA',
  'AES128-GCM-SHA256',
  'AES128-SHA256',
  'AES128-SHA',
  'AES256-GCM-SHA384',
  'AES256-SHA256',
  'AES256-SHA',
] as const;

type Protocol = 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

interface PolicyRow {
  readonly protocols: readonly Protocol[];
  readonly ciphers: readonly string[];
}

const BOTH = ['application', 'network'] as const;

/** The policies ebb serves, by name. AWS has more (FIPS, post-quantum); they are refused with SSLPolicyNotFound. */
const POLICIES: ReadonlyMap<string, PolicyRow> = new Map<string, PolicyRow>([
  ['ELBSecurityPolicy-TLS13-1-2-2021-06', { protocols: ['TLSv1.3', 'TLSv1.2'], ciphers: [...TLS13, ...ECDHE_SHA2] }],
  ['ELBSecurityPolicy-TLS13-1-2-Res-2021-06', { protocols: ['TLSv1.3', 'TLSv1.2'], ciphers: [...TLS13, ...ECDHE_GCM] }],
  ['ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06', { protocols: ['TLSv1.3', 'TLSv1.2'], ciphers: [...TLS13, ...ECDHE_SHA2, ...RSA_SHA2] }],
  ['ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06', { protocols: ['TLSv1.3', 'TLSv1.2'], ciphers: [...TLS13, ...EXT2_2021] }],
  ['ELBSecurityPolicy-TLS13-1-1-2021-06', { protocols: ['TLSv1.3', 'TLSv1.2', 'TLSv1.1'], ciphers: [...TLS13, ...EXT2_2021] }],
  ['ELBSecurityPolicy-TLS13-1-0-2021-06', { protocols: ['TLSv1.3', 'TLSv1.2', 'TLSv1.1', 'TLSv1'], ciphers: [...TLS13, ...EXT2_2021] }],
  ['ELBSecurityPolicy-TLS13-1-3-2021-06', { protocols: ['TLSv1.3'], ciphers: [...TLS13] }],
  ['ELBSecurityPolicy-FS-1-2-Res-2020-10', { protocols: ['TLSv1.2'], ciphers: [...ECDHE_GCM] }],
  ['ELBSecurityPolicy-FS-1-2-Res-2019-08', { protocols: ['TLSv1.2'], ciphers: [...ECDHE_SHA2] }],
  ['ELBSecurityPolicy-FS-1-2-2019-08', { protocols: ['TLSv1.2'], ciphers: ECDHE_ALL }],
  ['ELBSecurityPolicy-FS-1-1-2019-08', { protocols: ['TLSv1.2', 'TLSv1.1'], ciphers: ECDHE_ALL }],
  ['ELBSecurityPolicy-FS-2018-06', { protocols: ['TLSv1.2', 'TLSv1.1', 'TLSv1'], ciphers: ECDHE_ALL }],
  ['ELBSecurityPolicy-TLS-1-2-Ext-2018-06', { protocols: ['TLSv1.2'], ciphers: CLASSIC_2016 }],
  ['ELBSecurityPolicy-TLS-1-2-2017-01', { protocols: ['TLSv1.2'], ciphers: [...ECDHE_SHA2, ...RSA_SHA2] }],
  ['ELBSecurityPolicy-TLS-1-1-2017-01', { protocols: ['TLSv1.2', 'TLSv1.1'], ciphers: CLASSIC_2016 }],
  ['ELBSecurityPolicy-2016-08', { protocols: ['TLSv1.2', 'TLSv1.1', 'TLSv1'], ciphers: CLASSIC_2016 }],
  ['ELBSecurityPolicy-2015-05', { protocols: ['TLSv1.2', 'TLSv1.1', 'TLSv1'], ciphers: CLASSIC_2016 }],
]);

/** Every policy name ebb serves, in the order DescribeSSLPolicies lists them. */
export const SSL_POLICY_NAMES: readonly string[] = [...POLICIES.keys()];

export function isSslPolicy(name: string): boolean {
  return POLICIES.has(name);
}

/** A policy as DescribeSSLPolicies answers it; undefined for a name ebb does not serve. */
export function describeSslPolicy(name: string): SslPolicyDescription | undefined {
  const row = POLICIES.get(name);
  if (row === undefined) return undefined;
  return {
    name,
    sslProtocols: row.protocols,
    ciphers: row.ciphers.map((c, i) => ({ name: c, priority: i + 1 })),
    supportedLoadBalancerTypes: BOTH,
  };
}

const ORDER: readonly Protocol[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/**
 * A policy as Node's TLS settings; undefined for a name ebb does not serve. TLS 1.3 suites go to
 * `ciphersuites`, the rest to `ciphers` (with `@SECLEVEL=0` when TLS 1.0 or 1.1 is allowed, see above).
 */
export function tlsPolicySettings(name: string): TlsPolicySettings | undefined {
  const row = POLICIES.get(name);
  if (row === undefined) return undefined;
  const versions = [...row.protocols].sort((a, b) => ORDER.indexOf(a) - ORDER.indexOf(b));
  const minVersion = versions[0] ?? 'TLSv1.2';
  const maxVersion = versions.includes('TLSv1.3') ? 'TLSv1.3' : 'TLSv1.2';
  const legacy = minVersion === 'TLSv1' || minVersion === 'TLSv1.1';
  const tls12 = row.ciphers.filter((c) => !c.startsWith('TLS_'));
  const tls13 = row.ciphers.filter((c) => c.startsWith('TLS_'));
  return {
    name,
    minVersion,
    maxVersion,
    ciphers: tls12.length === 0 ? '' : tls12.join(':') + (legacy ? ':@SECLEVEL=0' : ''),
    ciphersuites: tls13.join(':'),
  };
}

/**
 * The options of `tls.createSecureContext` (and `tls.createServer`) for a policy: Node takes TLS 1.3
 * suites and older ciphers in one `ciphers` list, telling them apart by their `TLS_` prefix, and the
 * server's order decides, as on ELB ("the first cipher on the server's list that matches").
 */
export function secureContextOptions(policy: TlsPolicySettings): {
  minVersion: TlsPolicySettings['minVersion'];
  maxVersion: TlsPolicySettings['maxVersion'];
  ciphers: string;
  honorCipherOrder: true;
} {
  const ciphers = [policy.ciphersuites, policy.ciphers].filter((c) => c !== '').join(':');
  return { minVersion: policy.minVersion, maxVersion: policy.maxVersion, ciphers, honorCipherOrder: true };
}
