import type { HealthChecker, HealthCheckTarget, HealthObservation } from '../../src/domain/health-port.ts';
import type { HealthFailureReason } from '../../src/domain/target-health.ts';

/** A health checker whose results the test decides. */
export class FakeHealthChecker implements HealthChecker {
  targets: readonly HealthCheckTarget[] = [];
  readonly #listeners: Array<(o: HealthObservation) => void> = [];

  setTargets(targets: readonly HealthCheckTarget[]): void {
    this.targets = targets;
  }

  onObservation(listener: (o: HealthObservation) => void): void {
    this.#listeners.push(listener);
  }

  pass(key: string, times = 1): void {
    for (let i = 0; i < times; i++) for (const l of this.#listeners) l({ key, ok: true });
  }

  fail(key: string, reason: HealthFailureReason, times = 1, statusCode?: number): void {
    for (let i = 0; i < times; i++) {
      for (const l of this.#listeners) {
        l(statusCode === undefined ? { key, ok: false, reason, detail: 'test' } : { key, ok: false, reason, statusCode, detail: 'test' });
      }
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
