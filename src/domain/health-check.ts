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

/** AWS defaults for an HTTP(S) target group (ALB); a TCP group's defaults differ where noted. */
export function defaultHealthCheck(targetProtocol: 'HTTP' | 'HTTPS' | 'TCP'): HealthCheckConfig {
  const tcp = targetProtocol === 'TCP';
  return {
    enabled: true,
    protocol: tcp ? 'TCP' : targetProtocol,
    port: 'traffic-port',
    path: '/',
    intervalSeconds: 30,
    timeoutSeconds: tcp ? 10 : 5,
    healthyThresholdCount: 5,
    unhealthyThresholdCount: 2,
    matcher: tcp ? '200-399' : '200',
  };
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
