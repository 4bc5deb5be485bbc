import { ebbError } from '../shared/errors.ts';
import { healthCheckProtocolProblem, matcherProblem, validateHealthCheck, type HealthCheckConfig } from '../domain/health-check.ts';
import type { TargetGroupProtocol } from '../domain/resources.ts';

/** A health check with `change` laid over `base`; fields `change` leaves undefined keep `base`'s. Throws ValidationError. */
export function mergeHealthCheck(base: HealthCheckConfig, change: Partial<HealthCheckConfig>): HealthCheckConfig {
  const merged: HealthCheckConfig = { ...base, ...stripUndefined(change) };
  validateHealthCheck(merged);
  return merged;
}

/**
 * `mergeHealthCheck` for a group of `protocol`, with the domain's rules on which check protocol suits
 * it and which status codes its matcher may name. `classic`: the group is a Classic load balancer's.
 */
export function groupHealthCheck(protocol: TargetGroupProtocol, classic: boolean, base: HealthCheckConfig, change: Partial<HealthCheckConfig>): HealthCheckConfig {
  const merged = mergeHealthCheck(base, change);
  const problem = healthCheckProtocolProblem(protocol, merged.protocol, classic) ?? matcherProblem(protocol, merged);
  if (problem !== null) throw ebbError('ValidationError', problem);
  return merged;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
