import type { HealthObservation } from './health-port.ts';
import {
  REASON_DESCRIPTIONS,
  type HealthFailureReason,
  type TargetHealthState,
  type TargetHealthView,
} from './target-health.ts';

/**
 * The lifecycle of one target registration, kept as independent flags (registration, health) and
 * collapsed to the AWS state + reason only when viewed. Health checks keep running while a target
 * drains, so a re-registered target returns straight to the health it has.
 *
 * Transitions (AWS view):
 *   register            → initial (Elb.RegistrationInProgress)
 *   checks start        → initial (Elb.InitialHealthChecking)
 *   N passes            → healthy           (N = healthy threshold)
 *   M failures          → unhealthy (reason of the last failure)   (M = unhealthy threshold)
 *   deregister          → draining (Target.DeregistrationInProgress)
 *   drain ends          → unused (Target.NotRegistered), and the registration is gone
 *   re-register drain   → the current health view (initial / healthy / unhealthy)
 * With health checks disabled a registered target is `unavailable` (Target.HealthCheckDisabled) and routable.
 * A TCP group's target whose flows are kept for a while after it fails (NLB's
 * `target_health_state.unhealthy.draining_interval_seconds`) reads `unhealthy.draining` until then.
 */
export type Registration = 'registered' | 'draining' | 'removed';
export type HealthStatus = 'unknown' | 'healthy' | 'unhealthy';
export type HealthTransition = 'Unchanged' | 'Changed' | 'ChangePending';

/** Health the checks settled, as it is handed to the next ebb at a hot restart (a duration, never an instant). */
export interface SettledHealth {
  readonly health: 'healthy' | 'unhealthy';
  readonly failure: { readonly reason: HealthFailureReason; readonly statusCode?: number } | null;
  /** How long it has been healthy (slow start goes on from there); null when unhealthy. */
  readonly healthyForMs: number | null;
}

export interface Thresholds {
  readonly healthy: number;
  readonly unhealthy: number;
}

export class TargetLifecycle {
  #registration: Registration = 'registered';
  #health: HealthStatus = 'unknown';
  #checking = false;
  #checksEnabled: boolean;
  #failure: { reason: HealthFailureReason; statusCode?: number } | null = null;
  #passes = 0;
  #fails = 0;
  #healthySince: number | null = null;
  #inUse = true;
  /** NLB's `unhealthy.draining`: unhealthy, its flows kept until the draining interval ends. */
  #unhealthyDraining = false;

  constructor(checksEnabled: boolean) {
    this.#checksEnabled = checksEnabled;
  }

  /** Monotonic ms when the target last became healthy (for slow start), else null. */
  get healthySince(): number | null {
    return this.#healthySince;
  }

  /** What the health checks last settled (with hysteresis). */
  get health(): HealthStatus {
    return this.#health;
  }

  get registration(): Registration {
    return this.#registration;
  }

  /** Unhealthy, with its flows kept for the draining interval (`unhealthy.draining`). No-op unless unhealthy. */
  startUnhealthyDraining(): void {
    if (this.#health === 'unhealthy') this.#unhealthyDraining = true;
  }

  /** The draining interval is over (or the target recovered): `unhealthy.draining` ends. */
  endUnhealthyDraining(): void {
    this.#unhealthyDraining = false;
  }

  get unhealthyDraining(): boolean {
    return this.#unhealthyDraining;
  }

  /** May receive new work when the group is not failing open. */
  isRoutable(): boolean {
    if (this.#registration !== 'registered' || !this.#inUse) return false;
    return this.#checksEnabled ? this.#health === 'healthy' : true;
  }

  /** May receive new work when no target of the group is routable (fail-open); never while draining. */
  isFailOpenCandidate(): boolean {
    return this.#registration === 'registered' && this.#inUse;
  }

  /** Health checks ran at least once for this registration. */
  markChecking(): void {
    this.#checking = true;
  }

  setChecksEnabled(enabled: boolean): void {
    if (enabled === this.#checksEnabled) return;
    this.#checksEnabled = enabled;
    this.#resetHealth();
  }

  /** Whether any listener forwards to the group (AWS reports Target.NotInUse otherwise). */
  setInUse(inUse: boolean): void {
    this.#inUse = inUse;
  }

  /** Applies one health-check result with hysteresis. */
  observe(observation: HealthObservation, thresholds: Thresholds, now: number): HealthTransition {
    if (this.#registration === 'removed' || !this.#checksEnabled) return 'Unchanged';
    this.#checking = true;
    if (observation.ok) {
      this.#passes += 1;
      this.#fails = 0;
      if (this.#health === 'healthy') return 'Unchanged';
      if (this.#passes >= thresholds.healthy) {
        this.#health = 'healthy';
        this.#unhealthyDraining = false;
        this.#failure = null;
        this.#healthySince = now;
        return 'Changed';
      }
      return 'ChangePending';
    }
    this.#fails += 1;
    this.#passes = 0;
    const failure =
      observation.statusCode === undefined
        ? { reason: observation.reason }
        : { reason: observation.reason, statusCode: observation.statusCode };
    if (this.#health === 'unhealthy') {
      const changedReason = this.#failure?.reason !== failure.reason || this.#failure.statusCode !== failure.statusCode;
      this.#failure = failure;
      return changedReason ? 'Changed' : 'Unchanged';
    }
    if (this.#fails >= thresholds.unhealthy) {
      this.#health = 'unhealthy';
      this.#failure = failure;
      this.#healthySince = null;
      return 'Changed';
    }
    return 'ChangePending';
  }

  /** Starts draining. Returns false when the target was not registered (nothing to do). */
  deregister(): boolean {
    if (this.#registration !== 'registered') return false;
    this.#registration = 'draining';
    return true;
  }

  /** Cancels a drain. Returns false when the target was not draining. */
  reregister(): boolean {
    if (this.#registration !== 'draining') return false;
    this.#registration = 'registered';
    return true;
  }

  /** The drain is over (or the group is gone): the registration no longer exists. */
  remove(): void {
    this.#registration = 'removed';
  }

  view(): TargetHealthView {
    switch (this.#registration) {
      case 'removed':
        return viewOf('unused', 'Target.NotRegistered');
      case 'draining':
        return viewOf('draining', 'Target.DeregistrationInProgress');
      case 'registered':
        break;
      default: {
        const never: never = this.#registration;
        return never;
      }
    }
    if (!this.#inUse) return viewOf('unused', 'Target.NotInUse');
    if (!this.#checksEnabled) return viewOf('unavailable', 'Target.HealthCheckDisabled');
    switch (this.#health) {
      case 'unknown':
        return viewOf('initial', this.#checking ? 'Elb.InitialHealthChecking' : 'Elb.RegistrationInProgress');
      case 'healthy':
        return { state: 'healthy' };
      case 'unhealthy': {
        const failure = this.#failure ?? { reason: 'Target.FailedHealthChecks' as const };
        const description =
          failure.reason === 'Target.ResponseCodeMismatch' && failure.statusCode !== undefined
            ? `Health checks failed with these codes: [${failure.statusCode}]`
            : REASON_DESCRIPTIONS[failure.reason];
        return { state: this.#unhealthyDraining ? 'unhealthy.draining' : 'unhealthy', reason: failure.reason, description };
      }
      default: {
        const never: never = this.#health;
        return never;
      }
    }
  }

  /** The health the checks settled, to carry across a hot restart; null while unknown or with checks off. */
  settledHealth(now: number): SettledHealth | null {
    if (this.#health === 'unknown' || !this.#checksEnabled) return null;
    return {
      health: this.#health,
      failure: this.#failure,
      healthyForMs: this.#healthySince === null ? null : Math.max(0, now - this.#healthySince),
    };
  }

  /**
   * Takes up the health an earlier ebb's checks settled (hot restart), so a healthy target stays
   * routable and an unhealthy one stays out while this ebb's own checks begin; they go on from it.
   */
  resumeHealth(settled: SettledHealth, now: number): void {
    if (!this.#checksEnabled || this.#registration === 'removed') return;
    this.#health = settled.health;
    this.#failure = settled.failure;
    this.#healthySince = settled.healthyForMs === null ? null : now - settled.healthyForMs;
    this.#checking = true;
  }

  #resetHealth(): void {
    this.#health = 'unknown';
    this.#unhealthyDraining = false;
    this.#failure = null;
    this.#passes = 0;
    this.#fails = 0;
    this.#healthySince = null;
    this.#checking = false;
  }
}

function viewOf(state: TargetHealthState, reason: keyof typeof REASON_DESCRIPTIONS): TargetHealthView {
  return { state, reason, description: REASON_DESCRIPTIONS[reason] };
}

export function sameView(a: TargetHealthView, b: TargetHealthView): boolean {
  return a.state === b.state && a.reason === b.reason && a.description === b.description;
}
