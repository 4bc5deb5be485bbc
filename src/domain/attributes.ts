import { ebbError } from '../shared/errors.ts';
import type { ListenerProtocol, LoadBalancerType, TargetGroupProtocol } from './resources.ts';
import type { ListenerSettings } from './routing-snapshot.ts';

/**
 * Attribute keys ebb supports, with AWS defaults and ranges. Values are kept as strings, as on the
 * wire; `attributeNumber`/`attributeBool` read them. Setting a key the kind of resource does not
 * support is a ValidationError, as in AWS.
 */
interface AttributeSpec {
  readonly default: string;
  /** Returns an error message, or null when the value is valid. */
  readonly check: (value: string) => string | null;
  /** Target-group protocols the key applies to; all when absent. */
  readonly protocols?: readonly TargetGroupProtocol[];
  /** Load balancer types the key applies to (botocore elbv2 LoadBalancerAttribute.Key); all when absent. */
  readonly types?: readonly LoadBalancerType[];
  /** Listener protocols the key applies to (botocore elbv2 ListenerAttribute.Key); all when absent. */
  readonly listenerProtocols?: readonly ListenerProtocol[];
  /** A default that differs by target-group protocol (NLB's `stickiness.type` is source_ip). */
  readonly protocolDefaults?: Partial<Record<TargetGroupProtocol, string>>;
  /** Values allowed only for some target-group protocols: returns why not, or null. */
  readonly protocolCheck?: (value: string, protocol: TargetGroupProtocol) => string | null;
  /**
   * Values ebb accepts but cannot honour yet are refused rather than silently ignored: returns why,
   * or null when ebb does what the value asks.
   */
  readonly notYet?: (value: string) => string | null;
}

const onlyDefault =
  (defaultValue: string, what: string) =>
  (value: string): string | null =>
    value === defaultValue ? null : `is not supported by ebb yet (${what}); leave it at '${defaultValue}'`;

const intIn =
  (lo: number, hi: number, extra?: (n: number) => string | null) =>
  (value: string): string | null => {
    if (!/^\d+$/.test(value)) return `must be an integer from ${lo} to ${hi}`;
    const n = Number(value);
    if (n < lo || n > hi) return `must be from ${lo} to ${hi}`;
    return extra === undefined ? null : extra(n);
  };
const bool = (value: string): string | null => (value === 'true' || value === 'false' ? null : `must be true or false`);
const oneOf =
  (...allowed: string[]) =>
  (value: string): string | null =>
    allowed.includes(value) ? null : `must be one of ${allowed.join(', ')}`;

export const TARGET_GROUP_ATTRIBUTES: Readonly<Record<string, AttributeSpec>> = {
  'deregistration_delay.timeout_seconds': { default: '300', check: intIn(0, 3600) },
  'deregistration_delay.connection_termination.enabled': { default: 'false', check: bool, protocols: ['TCP'] },
  'load_balancing.algorithm.type': {
    default: 'round_robin',
    check: oneOf('round_robin', 'least_outstanding_requests', 'weighted_random'),
    protocols: ['HTTP', 'HTTPS'],
  },
  'slow_start.duration_seconds': {
    default: '0',
    check: intIn(0, 900, (n) => (n !== 0 && n < 30 ? 'must be 0 (off) or from 30 to 900' : null)),
    protocols: ['HTTP', 'HTTPS'],
  },
  'stickiness.enabled': { default: 'false', check: bool, notYet: onlyDefault('false', 'sticky sessions come in a later release') },
  // lb_cookie and app_cookie for ALB, source_ip for NLB (botocore elbv2 TargetGroupAttribute.Key).
  'stickiness.type': {
    default: 'lb_cookie',
    protocolDefaults: { TCP: 'source_ip' },
    check: oneOf('lb_cookie', 'app_cookie', 'source_ip'),
    protocolCheck: (value, protocol) =>
      (protocol === 'TCP') === (value === 'source_ip') ? null : protocol === 'TCP' ? 'must be source_ip on a TCP target group' : 'must be lb_cookie or app_cookie on an HTTP or HTTPS target group',
  },
  'stickiness.lb_cookie.duration_seconds': { default: '86400', check: intIn(1, 604800), protocols: ['HTTP', 'HTTPS'] },
  // NLB's (botocore elbv2 TargetGroupAttribute.Key, "supported only by Network Load Balancers").
  'proxy_protocol_v2.enabled': { default: 'false', check: bool, protocols: ['TCP'] },
  'target_health_state.unhealthy.connection_termination.enabled': { default: 'true', check: bool, protocols: ['TCP'] },
  'target_health_state.unhealthy.draining_interval_seconds': { default: '0', check: intIn(0, 360000), protocols: ['TCP'] },
  // ebb's own, in the AWS style: the PEM file of the CA certificates an HTTPS group's targets must
  // present a certificate from (empty: not verified, as ALB). The control plane reads it when set
  // (src/control/target-ca-files.ts).
  'ebb.target_tls.ca_file': {
    default: '',
    check: (v) => (v === '' || v.startsWith('/') ? null : 'must be the absolute path of a PEM file of CA certificates, or empty (targets not verified)'),
    protocols: ['HTTPS'],
  },
};

/** The NLB attributes whose combination AWS restricts (see `targetGroupAttributeConflict`). */
const UNHEALTHY_TERMINATION = 'target_health_state.unhealthy.connection_termination.enabled';
const UNHEALTHY_DRAINING_INTERVAL = 'target_health_state.unhealthy.draining_interval_seconds';

const APPLICATION: readonly LoadBalancerType[] = ['application', 'classic'];

/**
 * `types`: the load balancers a key applies to. The HTTP ones are ALB's (botocore elbv2
 * LoadBalancerAttribute.Key, "supported by only Application Load Balancers"), which a Classic load
 * balancer shares in ebb (its ConnectionSettings and desync mode are these keys); a network load
 * balancer refuses them, as AWS does.
 */
export const LOAD_BALANCER_ATTRIBUTES: Readonly<Record<string, AttributeSpec>> = {
  'idle_timeout.timeout_seconds': { default: '60', check: intIn(1, 4000), types: APPLICATION },
  'client_keep_alive.seconds': {
    default: '3600',
    check: intIn(60, 604800),
    notYet: onlyDefault('3600', 'client connections are not yet closed after a maximum lifetime'),
    types: APPLICATION,
  },
  'deletion_protection.enabled': { default: 'false', check: bool },
  'routing.http.desync_mitigation_mode': {
    default: 'defensive',
    check: oneOf('monitor', 'defensive', 'strictest'),
    types: APPLICATION,
  },
  'routing.http.xff_header_processing.mode': { default: 'append', check: oneOf('append', 'preserve', 'remove'), types: APPLICATION },
  'routing.http2.enabled': { default: 'true', check: bool, types: APPLICATION },
  'routing.http.preserve_host_header.enabled': {
    default: 'true',
    check: bool,
    notYet: onlyDefault('true', 'ebb forwards the Host header as the client sent it'),
    types: APPLICATION,
  },
  // ebb's own timeouts and limits, named in the AWS style (no AWS equivalent exists).
  'ebb.client_header_timeout.seconds': { default: '60', check: intIn(1, 3600), types: APPLICATION },
  'ebb.target_connect_timeout.seconds': { default: '10', check: intIn(1, 300) },
  'ebb.target_response_timeout.seconds': { default: '60', check: intIn(1, 4000), types: APPLICATION },
  'ebb.max_header_bytes': { default: '16384', check: intIn(1024, 65536), types: APPLICATION },
  'ebb.max_headers_count': { default: '100', check: intIn(10, 1000), types: APPLICATION },
  'ebb.shutdown_timeout.seconds': { default: '30', check: intIn(0, 3600) },
  // Access logs (botocore elbv2 LoadBalancerAttribute.Key): AWS's defaults are off, no bucket, no
  // prefix. The bucket names a local directory (absolute, or relative to the state directory) laid out
  // as the S3 bucket would be; see docs/access-logs.md.
  'access_logs.s3.enabled': { default: 'false', check: bool },
  'access_logs.s3.bucket': { default: '', check: (v) => (/[\x00-\x1f\x7f]/.test(v) ? 'must not contain control characters' : null) },
  'access_logs.s3.prefix': { default: '', check: accessLogPrefixProblem },
  // Classic's AccessLog.EmitInterval (botocore elb AccessLog: 5 or 60 minutes); ALB publishes every 5.
  'ebb.access_logs.s3.emit_interval.minutes': { default: '5', check: oneOf('5', '60') },
};

/**
 * Listener attributes (botocore elbv2 ListenerAttribute.Key): NLB's TCP idle timeout ("The valid range
 * is 60-6000 seconds. The default is 350 seconds"), which AWS lets TCP listeners change (NLB guide,
 * "Update the TCP idle timeout"); a TLS flow keeps the default. ALB's listener attributes (mTLS header
 * names, response headers) are not served.
 */
export const LISTENER_ATTRIBUTES: Readonly<Record<string, AttributeSpec>> = {
  'tcp.idle_timeout.seconds': { default: '350', check: intIn(60, 6000), listenerProtocols: ['TCP'] },
  // ebb's own (no AWS equivalent: an NLB takes no PROXY header in): every connection starts with a
  // PROXY protocol v1 or v2 header from a load balancer in front of ebb (docs/tcp.md).
  'ebb.accept_proxy_protocol.enabled': { default: 'false', check: bool, listenerProtocols: ['TCP', 'TLS'] },
};

/** The attribute keys of access logs, for the access-log writer and the Classic API. */
export const ACCESS_LOG_ATTRIBUTES = {
  enabled: 'access_logs.s3.enabled',
  bucket: 'access_logs.s3.bucket',
  prefix: 'access_logs.s3.prefix',
  emitInterval: 'ebb.access_logs.s3.emit_interval.minutes',
} as const;

/** Classic's EmitInterval when none was set (botocore elb AccessLog: "Default: 60 minutes"). */
export const DEFAULT_CLASSIC_EMIT_INTERVAL = 60;

/**
 * ALB's rule for the prefix: it "must not include the string AWSLogs" ("Access logs for your
 * Application Load Balancer", Access log files), since ELB adds `AWSLogs/` after it. ebb's own: the
 * prefix is a path inside the bucket's directory, so it may not start with `/` or climb out with `..`.
 */
export function accessLogPrefixProblem(value: string): string | null {
  if (value.includes('AWSLogs')) return 'must not include the string AWSLogs (ebb adds AWSLogs/ after the prefix, as ELB does)';
  if (value.startsWith('/')) return "must not start with '/' (it is a path inside the bucket)";
  if (value.split('/').includes('..')) return "must not contain '..' (it is a path inside the bucket)";
  if (/[\x00-\x1f\x7f]/.test(value)) return 'must not contain control characters';
  return null;
}

/**
 * Why a load balancer's whole attribute set cannot hold together, or null: AWS requires a bucket when
 * access logs are enabled ("This attribute is required if access logs are enabled", botocore elbv2
 * LoadBalancerAttribute.Key). Check the set as it will be after a change, not the change alone.
 */
export function loadBalancerAttributeConflict(attrs: Readonly<Record<string, string>>): string | null {
  if (attrs[ACCESS_LOG_ATTRIBUTES.enabled] === 'true' && (attrs[ACCESS_LOG_ATTRIBUTES.bucket] ?? '') === '') {
    return 'access_logs.s3.bucket is required when access_logs.s3.enabled is true: set it to a directory (absolute, or relative to the state directory)';
  }
  return null;
}

/**
 * Checks a change to a load balancer's attributes, and the whole set it leaves (a bucket for access
 * logs, as AWS requires); returns that set. InvalidConfigurationRequest is the code ELBv2 answers a
 * setting that does not fit the rest with.
 */
export function validateLoadBalancerAttributeChange(
  current: Readonly<Record<string, string>>,
  change: Readonly<Record<string, string>>,
  type?: LoadBalancerType,
): Record<string, string> {
  validateLoadBalancerAttributes(change, type);
  const merged = { ...current, ...change };
  const conflict = loadBalancerAttributeConflict(merged);
  if (conflict !== null) throw ebbError('InvalidConfigurationRequest', conflict);
  return merged;
}

/** What a key is checked against: the target group's protocol, the load balancer's type, the listener's protocol. */
interface AppliesTo {
  readonly protocol?: TargetGroupProtocol | undefined;
  readonly type?: LoadBalancerType | undefined;
  readonly listenerProtocol?: ListenerProtocol | undefined;
}

function validate(
  kind: 'target group' | 'load balancer' | 'listener',
  specs: Readonly<Record<string, AttributeSpec>>,
  attrs: Readonly<Record<string, string>>,
  on: AppliesTo = {},
): void {
  const { protocol, type, listenerProtocol } = on;
  for (const [key, value] of Object.entries(attrs)) {
    // Own keys only: a key named `constructor` or `__proto__` is user input, not a spec.
    const spec = Object.hasOwn(specs, key) ? specs[key] : undefined;
    if (spec === undefined) {
      throw ebbError('ValidationError', `Attribute key '${key}' is not recognized for a ${kind}`);
    }
    if (protocol !== undefined && spec.protocols !== undefined && !spec.protocols.includes(protocol)) {
      throw ebbError('ValidationError', `Attribute key '${key}' is not supported on a ${protocol} ${kind}`);
    }
    if (type !== undefined && spec.types !== undefined && !spec.types.includes(type)) {
      // AWS's wording for an ALB attribute on a network load balancer.
      throw ebbError('ValidationError', `Load balancer attribute key '${key}' is not supported on load balancers with type '${type}'`);
    }
    if (listenerProtocol !== undefined && spec.listenerProtocols !== undefined && !spec.listenerProtocols.includes(listenerProtocol)) {
      throw ebbError(
        'ValidationError',
        `Listener attribute key '${key}' is not supported on ${listenerProtocol} listeners; it applies to ${spec.listenerProtocols.join(' and ')} listeners`,
      );
    }
    const problem = spec.check(value) ?? (protocol !== undefined ? (spec.protocolCheck?.(value, protocol) ?? null) : null);
    if (problem !== null) {
      throw ebbError('ValidationError', `Attribute '${key}' ${problem}; got '${value}'`);
    }
    const notYet = spec.notYet?.(value) ?? null;
    if (notYet !== null) {
      throw ebbError('ValidationError', `Attribute '${key}' = '${value}' ${notYet}`);
    }
  }
}

/**
 * Checks `attrs` as set on a group of `protocol` whose attributes are `current` (none for a new group,
 * or for a wholesale replacement): each key and value, then the set they make together. Throws
 * ValidationError for a key or value, InvalidConfigurationRequest for a combination.
 */
export function validateTargetGroupAttributes(
  attrs: Readonly<Record<string, string>>,
  protocol: TargetGroupProtocol,
  current: Readonly<Record<string, string>> = {},
): void {
  validateTargetGroupAttributeValues(attrs, protocol);
  const problem = targetGroupAttributeConflict({ ...current, ...attrs });
  if (problem !== null) throw ebbError('InvalidConfigurationRequest', problem);
}

/** Each key and value on its own, for a group of `protocol` (not how they combine: `targetGroupAttributeConflict`). Throws ValidationError. */
export function validateTargetGroupAttributeValues(attrs: Readonly<Record<string, string>>, protocol: TargetGroupProtocol): void {
  validate('target group', TARGET_GROUP_ATTRIBUTES, attrs, { protocol });
}

/**
 * Why a group's attributes cannot hold together, or null. ALB refuses slow start with the least
 * outstanding requests algorithm, which picks by load and has no weights to ramp up
 * (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-target-group-attributes.html#slow-start-mode);
 * AWS answers InvalidConfigurationRequest. ebb's least-outstanding picker would ignore the duration.
 */
export function targetGroupAttributeConflict(attrs: Readonly<Record<string, string>>): string | null {
  // NLB: "This attribute can only be configured when target_health_state.unhealthy.connection_termination.enabled
  // is false" (botocore elbv2 TargetGroupAttribute.Key). A draining interval of 0 (the default) is no configuration.
  const interval = attrs[UNHEALTHY_DRAINING_INTERVAL];
  if (interval !== undefined && interval !== '0' && (attrs[UNHEALTHY_TERMINATION] ?? 'true') === 'true') {
    return (
      `${UNHEALTHY_DRAINING_INTERVAL} can only be configured when ${UNHEALTHY_TERMINATION} is false ` +
      `(it is ${attrs[UNHEALTHY_TERMINATION] ?? 'true, the default'}); set ${UNHEALTHY_TERMINATION} to false in the same call, or the interval to 0`
    );
  }
  const slowStart = attrs['slow_start.duration_seconds'];
  if (attrs['load_balancing.algorithm.type'] === 'least_outstanding_requests' && slowStart !== undefined && slowStart !== '0') {
    return (
      `You cannot enable both slow start mode and least outstanding requests: slow_start.duration_seconds is ${slowStart} ` +
      `and load_balancing.algorithm.type is least_outstanding_requests; set slow_start.duration_seconds to 0, or use round_robin or weighted_random`
    );
  }
  return null;
}

/** `type`: the load balancer's; a key another type's alone is refused (none given: every key is known). */
export function validateLoadBalancerAttributes(attrs: Readonly<Record<string, string>>, type?: LoadBalancerType): void {
  validate('load balancer', LOAD_BALANCER_ATTRIBUTES, attrs, { type });
}

/** Checks attributes set on a listener of `protocol`. Throws ValidationError. */
export function validateListenerAttributes(attrs: Readonly<Record<string, string>>, protocol: ListenerProtocol): void {
  validate('listener', LISTENER_ATTRIBUTES, attrs, { listenerProtocol: protocol });
}

/** The full attribute set for a target group: defaults for its protocol, overlaid with what was set. */
export function targetGroupAttributesWithDefaults(
  set: Readonly<Record<string, string>>,
  protocol: TargetGroupProtocol,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, spec] of Object.entries(TARGET_GROUP_ATTRIBUTES)) {
    if (spec.protocols === undefined || spec.protocols.includes(protocol)) out[key] = spec.protocolDefaults?.[protocol] ?? spec.default;
  }
  return { ...out, ...set };
}

/** The full attribute set of a load balancer; with `type`, only the keys that type has (as it is described). */
export function loadBalancerAttributesWithDefaults(set: Readonly<Record<string, string>>, type?: LoadBalancerType): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, spec] of Object.entries(LOAD_BALANCER_ATTRIBUTES)) {
    if (type === undefined || spec.types === undefined || spec.types.includes(type)) out[key] = spec.default;
  }
  return { ...out, ...set };
}

/** The keys `kind` has that apply to a target group of `protocol`, a load balancer of `type` (for messages that list them). */
export function attributeKeysFor(on: AppliesTo & { readonly kind: 'target group' | 'load balancer' | 'listener' }): string[] {
  const specs = on.kind === 'target group' ? TARGET_GROUP_ATTRIBUTES : on.kind === 'load balancer' ? LOAD_BALANCER_ATTRIBUTES : LISTENER_ATTRIBUTES;
  return Object.entries(specs)
    .filter(([, spec]) => on.protocol === undefined || spec.protocols === undefined || spec.protocols.includes(on.protocol))
    .filter(([, spec]) => on.type === undefined || spec.types === undefined || spec.types.includes(on.type))
    .filter(([, spec]) => on.listenerProtocol === undefined || spec.listenerProtocols === undefined || spec.listenerProtocols.includes(on.listenerProtocol))
    .map(([key]) => key);
}

export function attributeNumber(attrs: Readonly<Record<string, string>>, key: string, fallback: number): number {
  const v = attrs[key];
  return v === undefined ? fallback : Number(v);
}

export function attributeBool(attrs: Readonly<Record<string, string>>, key: string): boolean {
  return attrs[key] === 'true';
}

/**
 * A listener's attributes with defaults filled in for what is not set; with `protocol`, only the keys a
 * listener of that protocol has (as DescribeListenerAttributes lists them).
 */
export function listenerAttributesWithDefaults(set: Readonly<Record<string, string>>, protocol?: ListenerProtocol): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, spec] of Object.entries(LISTENER_ATTRIBUTES)) {
    if (protocol === undefined || spec.listenerProtocols === undefined || spec.listenerProtocols.includes(protocol)) out[key] = spec.default;
  }
  return { ...out, ...set };
}

/**
 * A listener's timeouts and limits, from its load balancer's attributes and its own (defaults filled in
 * for what is not set).
 */
export function listenerSettings(set: Readonly<Record<string, string>>, listenerSet: Readonly<Record<string, string>> = {}): ListenerSettings {
  const a = loadBalancerAttributesWithDefaults(set);
  const la = listenerAttributesWithDefaults(listenerSet);
  return {
    idleTimeoutMs: Number(a['idle_timeout.timeout_seconds']) * 1000,
    clientHeaderTimeoutMs: Number(a['ebb.client_header_timeout.seconds']) * 1000,
    targetConnectTimeoutMs: Number(a['ebb.target_connect_timeout.seconds']) * 1000,
    targetResponseTimeoutMs: Number(a['ebb.target_response_timeout.seconds']) * 1000,
    maxHeaderBytes: Number(a['ebb.max_header_bytes']),
    maxHeadersCount: Number(a['ebb.max_headers_count']),
    xffMode: a['routing.http.xff_header_processing.mode'] as ListenerSettings['xffMode'],
    desyncMode: a['routing.http.desync_mitigation_mode'] as ListenerSettings['desyncMode'],
    http2: a['routing.http2.enabled'] === 'true',
    tcpIdleTimeoutMs: Number(la['tcp.idle_timeout.seconds']) * 1000,
    acceptProxyProtocol: la['ebb.accept_proxy_protocol.enabled'] === 'true',
  };
}
