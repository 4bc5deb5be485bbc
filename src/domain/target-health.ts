/**
 * Target health states and reason codes, verbatim from ELBv2 (`TargetHealthStateEnum`,
 * `TargetHealthReasonEnum`), with the descriptions AWS returns beside them.
 */
export const TARGET_HEALTH_STATES = [
  'initial',
  'healthy',
  'unhealthy',
  'unhealthy.draining',
  'unused',
  'draining',
  'unavailable',
] as const;
export type TargetHealthState = (typeof TARGET_HEALTH_STATES)[number];

export const TARGET_HEALTH_REASONS = [
  'Elb.RegistrationInProgress',
  'Elb.InitialHealthChecking',
  'Target.ResponseCodeMismatch',
  'Target.Timeout',
  'Target.FailedHealthChecks',
  'Target.NotRegistered',
  'Target.NotInUse',
  'Target.DeregistrationInProgress',
  'Target.InvalidState',
  'Target.IpUnusable',
  'Target.HealthCheckDisabled',
  'Elb.InternalError',
] as const;
export type TargetHealthReason = (typeof TARGET_HEALTH_REASONS)[number];

/** Reasons a failed health check gives. */
export type HealthFailureReason = 'Target.ResponseCodeMismatch' | 'Target.Timeout' | 'Target.FailedHealthChecks';

export const REASON_DESCRIPTIONS: Readonly<Record<TargetHealthReason, string>> = {
  'Elb.RegistrationInProgress': 'Target registration is in progress',
  'Elb.InitialHealthChecking': 'Initial health checks in progress',
  'Target.ResponseCodeMismatch': 'Health checks failed',
  'Target.Timeout': 'Request timed out',
  'Target.FailedHealthChecks': 'Health checks failed',
  'Target.NotRegistered': 'Target is not registered to the target group',
  'Target.NotInUse': 'Target group is not configured to receive traffic from the load balancer',
  'Target.DeregistrationInProgress': 'Target deregistration is in progress',
  'Target.InvalidState': 'Target is in an invalid state',
  'Target.IpUnusable': 'The IP address cannot be used as a target, as it is in use by a load balancer',
  'Target.HealthCheckDisabled': 'Health checks are disabled',
  'Elb.InternalError': 'Health checks failed due to an internal error',
};

/** What DescribeTargetHealth reports for one target. `healthy` carries no reason, as in AWS. */
export interface TargetHealthView {
  readonly state: TargetHealthState;
  readonly reason?: TargetHealthReason;
  readonly description?: string;
}
