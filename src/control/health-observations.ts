import type { Clock, TimerHandle } from '../shared/clock.ts';
import type { HealthObservation } from '../domain/health-port.ts';
import type { TargetGroupRecord } from '../domain/resources.ts';
import type { HealthStatus } from '../domain/target-lifecycle.ts';
import type { RegisteredTarget, TargetRegistry } from './registered-targets.ts';

/** Below this many registrations a publication costs well under a millisecond: a health change is published at once. */
export const SPREAD_FROM_REGISTRATIONS = 1000;
/** From there on, publications for health changes are at least this much apart per registration (100 ms at 10,000). */
export const SPACING_MS_PER_REGISTRATION = 0.01;

export interface HealthObservationsOptions {
  readonly clock: Clock;
  readonly targets: TargetRegistry;
  readonly targetGroup: (arn: string) => TargetGroupRecord | undefined;
  /** Publishes a routing snapshot of the current view. */
  readonly publish: () => void;
  /** Told of every observation applied, with the health the target had before it. */
  readonly observed: (target: RegisteredTarget, before: HealthStatus) => void;
}

/**
 * Where the health checker's results enter the control plane: each is applied to its target's
 * lifecycle with its group's thresholds, and a change of what is routed is published.
 *
 * A publication rebuilds the whole snapshot (every registration) and hands it to every data plane,
 * so when thousands of targets change health together (ebb's start, a fleet of backends restarting)
 * one publication per change would cost the square of their number: 10,000 targets turning healthy
 * took 77 s of CPU. Below SPREAD_FROM_REGISTRATIONS registrations a change is published at once; from
 * there on, publications for health changes are at least SPACING_MS_PER_REGISTRATION per registration
 * apart, and the changes in between are published together at the end of that time. Health checks
 * run every 5 to 300 s and a target changes state only after 2 to 10 of them, so a tenth of a second
 * more is nothing a client can tell.
 */
export class HealthObservations {
  readonly #o: HealthObservationsOptions;
  #timer: TimerHandle | null = null;
  #lastPublished = Number.NEGATIVE_INFINITY;
  #closed = false;
  /** What `published()` gave out while a publication waits for its time. */
  #waiting: { readonly promise: Promise<void>; readonly resolve: () => void } | null = null;

  constructor(options: HealthObservationsOptions) {
    this.#o = options;
  }

  observe(observation: HealthObservation): void {
    if (this.#closed) return;
    const target = this.#o.targets.get(observation.key);
    if (target === undefined) return;
    const tg = this.#o.targetGroup(target.reg.targetGroupArn);
    if (tg === undefined) return;
    const before = target.life.health;
    const changed = this.#o.targets.observe(target, tg, observation);
    // What the same observation decides (a TCP target turning unhealthy.draining) is applied before the
    // change is published and reported, so it is reported once: healthy → unhealthy.draining, not
    // healthy → unhealthy and, in the same millisecond, unhealthy → unhealthy.draining. (Closing a
    // target's flows waits for the publication to be applied: UnhealthyFlows, `routed`.)
    this.#o.observed(target, before);
    if (changed) this.#changed();
  }

  /** Resolves once the changes observed so far are published: at once unless a publication waits for its time. */
  published(): Promise<void> {
    if (this.#timer === null) return Promise.resolve();
    if (this.#waiting === null) {
      let resolve = (): void => undefined;
      const promise = new Promise<void>((r) => (resolve = r));
      this.#waiting = { promise, resolve };
    }
    return this.#waiting.promise;
  }

  /** Nothing is applied or published after this; a publication waiting for its time is dropped (and its waiters let go). */
  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = null;
    this.#release();
  }

  #changed(): void {
    if (this.#timer !== null) return; // the publication already set for later takes this change too
    const registrations = this.#o.targets.size;
    const spacing = registrations >= SPREAD_FROM_REGISTRATIONS ? registrations * SPACING_MS_PER_REGISTRATION : 0;
    const wait = this.#lastPublished + spacing - this.#o.clock.now();
    if (wait <= 0) {
      this.#publishNow();
      return;
    }
    this.#timer = this.#o.clock.setTimer(wait, () => {
      this.#timer = null;
      if (!this.#closed) this.#publishNow();
    });
  }

  #publishNow(): void {
    this.#lastPublished = this.#o.clock.now();
    this.#o.publish();
    this.#release();
  }

  #release(): void {
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.resolve();
  }
}
