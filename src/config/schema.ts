import { isIP } from 'node:net';
import { z } from 'zod';
import { HEALTH_CHECK_RANGES, parseMatcher } from '../domain/health-check.ts';
import { isSslPolicy } from '../domain/tls-policies.ts';
import { isCertificateArn } from '../control/certificates.ts';
import { isHostName, isInstanceId, isIpAddress, validateName } from '../control/names.ts';
import { autoScaling, autoScalingGroups, launchTemplates } from './autoscaling-schema.ts';
import { bool, checkedText, expect, intIn, leaf, list, oneOf, strict, text } from './schema-parts.ts';

export { intIn } from './schema-parts.ts';

/**
 * The shape of the configuration file, as zod schemas. Every leaf carries its expectation as a phrase
 * ("an integer from 1 to 65535"); `load-config.ts` turns an issue into `must be <phrase>; got <value>`
 * or `is required (<phrase>)`. Issues flagged `params.sentence` carry a whole sentence (the domain's
 * own message) and are shown as they are. Objects are strict: an unknown key is an error that lists
 * the allowed keys. Values are checked here one by one; checks that relate several values (names
 * that must exist, health-check timeout below interval, attributes by protocol) are in
 * `cross-checks.ts`. The Auto Scaling sections are in `autoscaling-schema.ts`.
 */

const port = intIn(1, 65535);
/** A target group's protocol, and a health check's. */
const protocol = oneOf(['HTTP', 'HTTPS', 'TCP'] as const);
const listenerProtocol = oneOf(['HTTP', 'HTTPS', 'TCP', 'TLS'] as const);

/** A name as AWS allows it; the message is the control plane's, so file and API agree. */
const resourceName = (kind: 'load balancer' | 'target group') => checkedText((v) => validateName(kind, v));

/** Attribute values may be written as YAML numbers or booleans; they are kept as strings, as on the wire. */
const attributes = z
  .record(
    z.string(),
    leaf<string | number | boolean>('a string, number or boolean', (v) => ['string', 'number', 'boolean'].includes(typeof v)).transform(
      (v) => String(v),
    ),
    expect('a mapping of attribute keys to values'),
  )
  .optional();

const range = (field: keyof typeof HEALTH_CHECK_RANGES) => intIn(HEALTH_CHECK_RANGES[field][0], HEALTH_CHECK_RANGES[field][1]);

const matcher = leaf<string | number>('HTTP codes such as "200", "200,202" or "200-399"', (v) => typeof v === 'string' || typeof v === 'number')
  .transform((v) => String(v))
  .superRefine((v, ctx) => {
    try {
      parseMatcher(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message, params: { sentence: true } });
    }
  });

const healthCheck = strict({
  enabled: bool.optional(),
  protocol: protocol.optional(),
  port: leaf<number | 'traffic-port'>(
    'an integer from 1 to 65535 or "traffic-port"',
    (v) => v === 'traffic-port' || (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535),
  ).optional(),
  path: leaf<string>(
    "a path starting with '/', 1-1024 characters",
    (v) => typeof v === 'string' && v.startsWith('/') && v.length <= 1024,
  ).optional(),
  intervalSeconds: range('intervalSeconds').optional(),
  timeoutSeconds: range('timeoutSeconds').optional(),
  healthyThresholdCount: range('healthyThresholdCount').optional(),
  unhealthyThresholdCount: range('unhealthyThresholdCount').optional(),
  matcher: matcher.optional(),
});

const ipAddress = leaf<string>('an IP address', (v) => typeof v === 'string' && isIpAddress(v));
const hostAddress = leaf<string>('an IP address or a host name', (v) => typeof v === 'string' && (isIpAddress(v) || isHostName(v)));

const target = strict({ id: text, port: port.optional() });

const targetGroup = strict({
  name: resourceName('target group'),
  protocol,
  port,
  targetType: oneOf(['instance', 'ip'] as const).optional(),
  healthCheck: healthCheck.optional(),
  attributes,
  targets: list(target).optional(),
});

/**
 * A listener's certificate: one ebb knows by ARN (ACM's ImportCertificate, or the top-level
 * `certificates:`), or PEM files read at every start and reload (`certificateFile` may hold the chain
 * after the certificate, as certbot's fullchain.pem does). The first of a listener's list is its default.
 */
/** ACM's ARN form, which the API's certificates have and listeners name. */
const certificateArnText = leaf<string>('a certificate ARN such as arn:aws:acm:us-east-1:123456789012:certificate/site', (v) => typeof v === 'string' && isCertificateArn(v));

const listenerCertificate = strict({
  certificateArn: certificateArnText.optional(),
  certificateFile: text.optional(),
  privateKeyFile: text.optional(),
  chainFile: text.optional(),
}).superRefine((v, ctx) => {
  const files = v.certificateFile !== undefined || v.privateKeyFile !== undefined || v.chainFile !== undefined;
  if (v.certificateArn !== undefined && files) {
    ctx.addIssue({ code: 'custom', path: ['certificateArn'], message: 'names a certificate by ARN, so the files cannot be given too; keep certificateArn, or certificateFile and privateKeyFile', params: { sentence: true } });
  } else if (v.certificateArn === undefined && !files) {
    ctx.addIssue({ code: 'custom', message: 'is required to be { certificateArn } or { certificateFile, privateKeyFile, chainFile? }', params: { sentence: true } });
  } else if (files) {
    for (const key of ['certificateFile', 'privateKeyFile'] as const) {
      if (v[key] === undefined) ctx.addIssue({ code: 'custom', path: [key], message: `is required with ${key === 'certificateFile' ? 'privateKeyFile' : 'certificateFile'} (a PEM file, relative to this file)`, params: { sentence: true } });
    }
  }
});

/** A certificate the file declares under an ARN of its choosing, which listeners name by `certificateArn`. */
const declaredCertificate = strict({
  arn: certificateArnText,
  certificateFile: text,
  privateKeyFile: text,
  chainFile: text.optional(),
});

const sslPolicy = leaf<string>(
  'a security policy name such as ELBSecurityPolicy-TLS13-1-2-2021-06 (aws elbv2 describe-ssl-policies lists those ebb serves)',
  (v) => typeof v === 'string' && isSslPolicy(v),
);

const forwardAction = strict({
  type: oneOf(['forward'] as const),
  targetGroup: text,
});

const listener = strict({
  protocol: listenerProtocol,
  port,
  address: ipAddress.optional(),
  defaultActions: list(forwardAction).refine((a) => a.length === 1, expect('a list of exactly one forward action')),
  /** HTTPS and TLS listeners: the first is the default certificate, the others are chosen by SNI. */
  certificates: list(listenerCertificate).optional(),
  sslPolicy: sslPolicy.optional(),
  attributes,
});

const loadBalancer = strict({
  name: resourceName('load balancer'),
  type: oneOf(['application', 'network', 'classic'] as const).optional(),
  attributes,
  listeners: list(listener).optional(),
});

const instance = strict({
  id: leaf<string>('an instance id such as i-0abc (i- followed by letters and digits)', (v) => typeof v === 'string' && isInstanceId(v)),
  address: hostAddress,
});

/** `host:port`, with the IPv6 host in brackets; port 0 picks a free port. */
export function parseHostPort(v: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(v);
  if (m === null) return null;
  const host = m[1] ?? m[2] ?? '';
  const p = Number(m[3]);
  if (p > 65535) return null;
  if (m[1] !== undefined ? isIP(host) !== 6 : !isIpAddress(host) && !isHostName(host)) return null;
  return { host, port: p };
}

/**
 * Who may read `GET /metrics`: Prometheus sends a bearer token from a file, not a SigV4 signature, so
 * the token is read from the file named here; or `public: true` serves it to anyone. The two exclude
 * each other, so a file cannot say both and leave the reader guessing which wins.
 */
const metricsAccess = strict({ bearerTokenFile: text.optional(), public: bool.optional() }).superRefine((v, ctx) => {
  if (v.public === true && v.bearerTokenFile !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['public'],
      message: 'cannot be true together with bearerTokenFile (true serves /metrics to anyone, so the token would never be asked for); keep one of the two',
      params: { sentence: true },
    });
  }
});

const admin = strict({
  address: leaf<string>('"HOST:PORT", such as "127.0.0.1:9900"', (v) => typeof v === 'string' && parseHostPort(v) !== null).optional(),
  region: leaf<string>('an AWS region name such as us-east-1', (v) => typeof v === 'string' && /^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/.test(v)).optional(),
  // Unquoted, YAML reads an account id as a number (and drops leading zeros): accept 12 digits either way.
  accountId: leaf<string | number>(
    'a 12-digit AWS account id, in quotes',
    (v) => (typeof v === 'string' && /^\d{12}$/.test(v)) || (typeof v === 'number' && Number.isInteger(v) && String(v).length === 12),
  )
    .transform((v) => String(v))
    .optional(),
  credentials: list(strict({ accessKeyId: text, secretAccessKey: text })).optional(),
  authentication: bool.optional(),
  stateDir: text.optional(),
  metrics: metricsAccess.optional(),
});

/** Where listeners created without an address listen, by their load balancer's scheme (the node's, not one resource's). */
const listenAddresses = strict({ 'internet-facing': ipAddress.optional(), internal: ipAddress.optional() });

/**
 * The node's own access log (docs/access-logs.md): every load balancer's requests, one line each, to
 * standard output or to a file that rotates by size and time. A load balancer's S3-layout logs are its
 * attributes (access_logs.s3.*), not this.
 */
const accessLog = strict({
  output: oneOf(['stdout', 'file'] as const),
  path: text.optional(),
  format: oneOf(['alb', 'json'] as const).optional(),
  rotateBytes: intIn(0, 1_099_511_627_776).optional(),
  rotateSeconds: intIn(0, 31_536_000).optional(),
  keep: intIn(0, 100_000).optional(),
  bufferBytes: intIn(65_536, 1_073_741_824).optional(),
}).superRefine((v, ctx) => {
  if (v.output === 'file' && v.path === undefined) {
    ctx.addIssue({ code: 'custom', path: ['path'], message: 'is required with output: file (the file to write, relative to this file)', params: { sentence: true } });
  }
  if (v.output === 'stdout' && v.path !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['path'], message: 'is only for output: file; remove it, or set output: file', params: { sentence: true } });
  }
});

export const configSchema = strict(
  {
    loadBalancers: list(loadBalancer).optional(),
    certificates: list(declaredCertificate).optional(),
    targetGroups: list(targetGroup).optional(),
    instances: list(instance).optional(),
    admin: admin.optional(),
    listenAddresses: listenAddresses.optional(),
    accessLog: accessLog.optional(),
    autoScaling: autoScaling.optional(),
    launchTemplates: launchTemplates.optional(),
    autoScalingGroups: autoScalingGroups.optional(),
  },
  'a mapping with loadBalancers, targetGroups, instances and admin',
);

export type ConfigShape = z.output<typeof configSchema>;
