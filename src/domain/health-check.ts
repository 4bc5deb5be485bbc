import { ebbError } from '../shared/errors.ts';

/** A target group's active health check, in ELBv2 terms. */
export interface HealthCheckConfig {
  readonly enabled: boolean;
  readonly protocol: 'HTTP' | 'HTTPS' | 'TCP';
  /** `traffic-port` checks the port the target receives traffic on. */
  readonly port: 'traffic-port' | number;
  readonly path: string;
  readonly intervalSeconds: number;
  readonly timeoutSeconds: number;
  readonly healthyThresholdCount: number;
  readonly unhealthyThresholdCount: number;
  /** HTTP codes that count as healthy: `200`, `200,202`, `200-399`. */
  readonly matcher: string;
}

/**
 * AWS's defaults for a new group's health check, by the group's protocol and the check's protocol
 * (given, or the group's default: TCP for a TCP group, the group's own protocol for HTTP and HTTPS).
 * Sources, where the botocore elbv2 model's text and AWS's answers differ:
 * - protocol: the model (CreateTargetGroup HealthCheckProtocol) says "For Application Load Balancers,
 *   the default is HTTP. For Network Load Balancers ... TCP". An HTTPS group is checked over HTTPS by
 *   default here, as AWS answers (the `aws elbv2 modify-target-group` example's HTTPS group, and moto,
 *   which mirrors AWS's responses): a target serving only TLS would fail a plain HTTP check;
 * - timeout: the model says "HTTP 6 s; TCP, TLS or HTTPS 10 s". That is NLB's rule by *check* protocol
 *   (NLB guide, "Health checks for Network Load Balancer target groups": 6 s for HTTP checks, 10 s for
 *   TCP and HTTPS checks; the `aws elbv2 create-target-group` example 4: a TCP group checked over HTTP
 *   answers 6). An HTTP or HTTPS group (ALB) gets 5 s (ALB guide, "Health checks for Application Load
 *   Balancer target groups": "5 seconds if the target type is instance or ip"; the create-target-group
 *   example 1 answers 5 for an HTTP group, the modify-target-group example 5 for an HTTPS one);
 * - interval 30 s, healthy threshold 5, unhealthy threshold 2 for HTTP, HTTPS and TCP groups alike
 *   (the model; the create-target-group examples 1, 3 and 4);
 * - matcher: 200 for HTTP and HTTPS groups, 200-399 for an HTTP(S) check of a TCP group (the model's
 *   Matcher ranges; create-target-group example 4). A TCP check has no matcher; 200-399 is kept.
 */
export function defaultHealthCheck(
  targetProtocol: 'HTTP' | 'HTTPS' | 'TCP',
  checkProtocol: HealthCheckConfig['protocol'] = targetProtocol,
): HealthCheckConfig {
  const network = targetProtocol === 'TCP';
  return {
    enabled: true,
    protocol: checkProtocol,
    port: 'traffic-port',
    path: '/',
    intervalSeconds: 30,
    timeoutSeconds: network ? (checkProtocol === 'HTTP' ? 6 : 10) : 5,
    healthyThresholdCount: 5,
    unhealthyThresholdCount: 2,
    matcher: network ? '200-399' : '200',
  };
}

/** A group's health check as created: the defaults for its protocol and the check protocol `given` names, overlaid with `given`. */
export function healthCheckWithDefaults(targetProtocol: 'HTTP' | 'HTTPS' | 'TCP', given: Partial<HealthCheckConfig>): HealthCheckConfig {
  const defined = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) as Partial<HealthCheckConfig>;
  return { ...defaultHealthCheck(targetProtocol, defined.protocol), ...defined };
}

export const HEALTH_CHECK_RANGES = {
  intervalSeconds: [5, 300],
  timeoutSeconds: [2, 120],
  healthyThresholdCount: [2, 10],
  unhealthyThresholdCount: [2, 10],
} as const;

/** Parses a matcher into a predicate; throws ValidationError naming what is wrong. */
export function parseMatcher(matcher: string): (status: number) => boolean {
  const parts = matcher.split(',').map((p) => p.trim());
  const ranges: Array<[number, number]> = [];
  for (const part of parts) {
    const m = /^(\d{3})(?:-(\d{3}))?$/.exec(part);
    if (m === null) {
      throw ebbError('ValidationError', `Health check matcher '${matcher}' is not valid: use codes like 200, 200,202 or 200-399`);
    }
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo < 200 || hi > 599 || lo > hi) {
      throw ebbError('ValidationError', `Health check matcher '${matcher}' must name codes between 200 and 599, low to high`);
    }
    ranges.push([lo, hi]);
  }
  return (status) => ranges.some(([lo, hi]) => status >= lo && status <= hi);
}

/**
 * Why a health check's protocol does not suit its group's, or null. ELBv2 does not check an HTTP or
 * HTTPS group over TCP ("The TCP protocol is not supported for health checks if the protocol of the
 * target group is HTTP or HTTPS",
 * https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateTargetGroup.html);
 * a Classic load balancer's groups may be, as TCP is the Classic default check.
 */
export function healthCheckProtocolProblem(groupProtocol: HealthCheckConfig['protocol'], check: HealthCheckConfig['protocol'], classic: boolean): string | null {
  if (check !== 'TCP' || groupProtocol === 'TCP' || classic) return null;
  return `Health check protocol TCP is not supported for health checks of an ${groupProtocol} target group; use HTTP or HTTPS`;
}

/**
 * Why a matcher names codes its group's checks may not count as healthy, or null: "For target groups
 * with a protocol of HTTP or HTTPS, the range is 200-499"; TCP groups (NLB) take 200-599 (botocore
 * elbv2 CreateTargetGroup `Matcher`). A TCP check has no matcher.
 */
export function matcherProblem(groupProtocol: HealthCheckConfig['protocol'], hc: Pick<HealthCheckConfig, 'protocol' | 'matcher'>): string | null {
  if (hc.protocol === 'TCP' || groupProtocol === 'TCP') return null;
  const codes = hc.matcher.split(',').flatMap((p) => p.trim().split('-').map(Number));
  if (codes.every((c) => c <= 499)) return null;
  return `Health check matcher '${hc.matcher}' names codes above 499, which an ${groupProtocol} target group's checks cannot count as healthy; use codes from 200 to 499`;
}

/** Checks every field against the AWS ranges; throws ValidationError for the first field out of range. */
export function validateHealthCheck(hc: HealthCheckConfig): void {
  for (const [field, [lo, hi]] of Object.entries(HEALTH_CHECK_RANGES) as Array<[keyof typeof HEALTH_CHECK_RANGES, readonly [number, number]]>) {
    const value = hc[field];
    if (!Number.isInteger(value) || value < lo || value > hi) {
      throw ebbError('ValidationError', `Health check ${field} must be an integer from ${lo} to ${hi}; got ${String(value)}`);
    }
  }
  if (hc.timeoutSeconds >= hc.intervalSeconds) {
    throw ebbError(
      'ValidationError',
      `Health check timeoutSeconds (${hc.timeoutSeconds}) must be smaller than intervalSeconds (${hc.intervalSeconds})`,
    );
  }
  if (hc.port !== 'traffic-port' && (!Number.isInteger(hc.port) || hc.port < 1 || hc.port > 65535)) {
    throw ebbError('ValidationError', `Health check port must be 'traffic-port' or 1-65535; got ${String(hc.port)}`);
  }
  if (hc.protocol !== 'TCP') {
    if (hc.path.length < 1 || hc.path.length > 1024 || !hc.path.startsWith('/')) {
      throw ebbError('ValidationError', `Health check path must start with '/' and be 1-1024 characters; got '${hc.path}'`);
    }
    parseMatcher(hc.matcher);
  }
}
