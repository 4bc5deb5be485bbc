import type { HealthCheckConfig, } from './health-check.ts';
import type { HealthFailureReason } from './target-health.ts';

/** One target to check, as the health checker is told it. */
export interface HealthCheckTarget {
  /** The registration key (`RoutableTarget.key`). */
  readonly key: string;
  readonly host: string;
  /** The port to check (traffic port or the configured one, already resolved). */
  readonly port: number;
  readonly config: HealthCheckConfig;
  /** HTTPS checks of a group with `ebb.target_tls.ca_file`: the CA's PEM the target's certificate must chain to. */
  readonly caPem?: string | null;
}

export type HealthObservation =
  | {
      readonly key: string;
      readonly ok: true;
      /** How long the check took, ms (from its start to its answer, or to its timeout). */
      readonly durationMs?: number;
    }
  | {
      readonly key: string;
      readonly ok: false;
      readonly durationMs?: number;
      readonly reason: HealthFailureReason;
      /** The HTTP status that did not match, for Target.ResponseCodeMismatch. */
      readonly statusCode?: number;
      readonly detail: string;
    };

/**
 * Runs active checks on its own schedule and reports each result. It keeps no verdict: the
 * thresholds (hysteresis) are applied by the target state machine.
 */
export interface HealthChecker {
  /** Replaces the set of targets to check. New targets are checked at once, then every interval. */
  setTargets(targets: readonly HealthCheckTarget[]): void;
  onObservation(listener: (observation: HealthObservation) => void): void;
  close(): Promise<void>;
}
