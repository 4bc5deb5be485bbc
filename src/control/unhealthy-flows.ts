import type { Clock, TimerHandle } from '../shared/clock.ts';
import { describeError } from '../shared/errors.ts';
import { targetGroupAttributesWithDefaults } from '../domain/attributes.ts';
import type { DataPlane } from '../domain/data-plane-port.ts';
import type { HealthStatus } from '../domain/target-lifecycle.ts';
import type { TargetGroupRecord } from '../domain/resources.ts';
import type { RegisteredTarget, TargetRegistry } from './registered-targets.ts';

export interface UnhealthyFlowsOptions {
  readonly clock: Clock;
  readonly dataPlanes: readonly DataPlane[];
  readonly targets: TargetRegistry;
  readonly log: (entry: Record<string, unknown>) => void;
  /** Runs work nobody awaits in the command queue (retried if it fails). */
  readonly inBackground: (what: string, task: () => Promise<void>) => void;
  /** Publishes a new snapshot (a view changed). */
  readonly publish: () => void;
  /** Resolves once the data planes route by the health observed so far (DrainsOptions.routed). */
  readonly routed: () => Promise<void>;
  readonly targetGroup: (arn: string) => TargetGroupRecord | undefined;
}

/**
 * What happens to the open flows of a TCP group's target that fails its health checks, as NLB does
 * (https://docs.aws.amazon.com/elasticloadbalancing/latest/network/edit-target-group-attributes.html#target-health-state):
 * - `target_health_state.unhealthy.connection_termination.enabled` true (the default): its flows are
 *   closed as it turns unhealthy (FIN, then RST after the data plane's grace);
 * - false, with `target_health_state.unhealthy.draining_interval_seconds` > 0: it reads
 *   `unhealthy.draining` and keeps its flows for the interval; if it has not recovered by then it
 *   reads `unhealthy` and its flows are closed;
 * - false with an interval of 0: its flows live until they close.
 * While the group fails open (no target routable) nothing is closed: every target still takes new
 * flows then, so cutting the old ones would only move them. HTTP groups are not affected: their
 * requests are never pinned to a target beyond the one in flight.
 */
export class UnhealthyFlows {
  readonly #o: UnhealthyFlowsOptions;
  /** Draining-interval timers by target key. */
  readonly #timers = new Map<string, TimerHandle>();

  constructor(options: UnhealthyFlowsOptions) {
    this.#o = options;
  }

  /** After a health observation was applied to `target`; `before` is the health it had. */
  healthObserved(target: RegisteredTarget, before: HealthStatus): void {
    const tg = this.#o.targetGroup(target.reg.targetGroupArn);
    if (tg === undefined || tg.protocol !== 'TCP') return;
    const after = target.life.health;
    if (after === before) return;
    if (after !== 'unhealthy') {
      this.#cancel(target.key);
      return;
    }
    if (target.life.registration !== 'registered') return;
    const attrs = targetGroupAttributesWithDefaults(tg.attributes, tg.protocol);
    if (attrs['target_health_state.unhealthy.connection_termination.enabled'] !== 'false') {
      this.#closeWhenRouted(target);
      return;
    }
    const intervalSeconds = Number(attrs['target_health_state.unhealthy.draining_interval_seconds'] ?? '0');
    if (intervalSeconds <= 0) return;
    target.life.startUnhealthyDraining();
    this.#o.targets.reportChange(target);
    this.#cancel(target.key);
    const key = target.key;
    this.#timers.set(
      key,
      this.#o.clock.setTimer(intervalSeconds * 1000, () => {
        this.#timers.delete(key);
        this.#o.inBackground(`end the unhealthy draining of ${key}`, () => this.#intervalOver(target));
      }),
    );
  }

  /**
   * Closes the flows of a target that just turned unhealthy once every data plane routes new flows
   * elsewhere. A data plane's `terminate` closes the flows it has and blocks nothing, so closing them
   * before the publication is applied (one waiting its turn among thousands of registrations, or a
   * worker still busy with the one before) would leave the flows accepted in between open for good.
   */
  #closeWhenRouted(target: RegisteredTarget): void {
    const close = (): void => {
      if (target.life.health !== 'unhealthy') return; // recovered meanwhile (a registration gone is #terminate's to skip)
      this.#o.inBackground(`close the flows of unhealthy ${target.key}`, () => this.#terminate(target, 'unhealthy'));
    };
    // A microtask later: this runs while the observation is applied, before its publication is made or set for later.
    void Promise.resolve()
      .then(() => this.#o.routed())
      .then(close, close);
  }

  /** The registration is gone or its group changed: nothing more to do for it. */
  forget(key: string): void {
    this.#cancel(key);
  }

  stopTimers(): void {
    for (const timer of this.#timers.values()) timer.cancel();
    this.#timers.clear();
  }

  async #intervalOver(target: RegisteredTarget): Promise<void> {
    if (this.#o.targets.get(target.key) !== target || !target.life.unhealthyDraining) return;
    target.life.endUnhealthyDraining();
    this.#o.targets.reportChange(target);
    this.#o.publish();
    if (target.life.health === 'unhealthy' && target.life.registration === 'registered') await this.#terminate(target, 'unhealthy-draining-interval');
  }

  async #terminate(target: RegisteredTarget, why: string): Promise<void> {
    if (this.#o.targets.get(target.key) !== target) return;
    if (this.#failsOpen(target.reg.targetGroupArn)) {
      this.#o.log({ event: 'unhealthy:flows-kept', target: `${target.reg.id}:${target.reg.port}`, why: 'the group fails open' });
      return;
    }
    try {
      const results = await Promise.all(this.#o.dataPlanes.map((dp) => dp.terminate(target.key)));
      const flows = results.reduce((n, r) => n + r.tunnelsClosed, 0);
      this.#o.log({ event: 'unhealthy:flows-closed', target: `${target.reg.id}:${target.reg.port}`, flows, why });
    } catch (error) {
      this.#o.log({ event: 'unhealthy:flows-close-failed', level: 'error', target: target.key, error: describeError(error) });
    }
  }

  /** No target of the group may take new work: it routes to all of them (fail-open), so none is cut. */
  #failsOpen(groupArn: string): boolean {
    return !this.#o.targets.of(groupArn).some((t) => t.life.isRoutable());
  }

  #cancel(key: string): void {
    this.#timers.get(key)?.cancel();
    this.#timers.delete(key);
  }
}
