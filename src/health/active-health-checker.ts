import type { HealthCheckConfig } from '../domain/health-check.ts';
import type { HealthCheckTarget, HealthChecker, HealthObservation } from '../domain/health-port.ts';
import type { Clock, TimerHandle } from '../shared/clock.ts';
import { failed, hostPort, type CheckOutcome } from './check-outcome.ts';
import { defaultProbe, type ProbeFn } from './probe.ts';

interface InFlight {
  readonly seq: number;
  readonly controller: AbortController;
  readonly timeout: TimerHandle;
  readonly done: Promise<void>;
}

interface Entry {
  target: HealthCheckTarget;
  /** The next scheduled check. */
  next: TimerHandle | undefined;
  /** Clock time the last check started at; the next one is due an interval later. */
  lastStart: number | undefined;
  inFlight: InFlight | undefined;
  removed: boolean;
}

export interface ActiveHealthCheckerOptions {
  readonly clock: Clock;
  /** How one check is run; the standard TCP/HTTP(S) probe unless replaced (custom checkers, tests). */
  readonly probe?: ProbeFn;
}

/**
 * Active health checks on the injected clock. Each target is checked as soon as it is added, then
 * every `intervalSeconds` (measured from the start of one check to the start of the next); a check
 * that has not finished after `timeoutSeconds` is reported as Target.Timeout and its socket closed.
 * At most one check per target is in flight: a check that falls due while the previous one is still
 * running is skipped. Targets whose health check is disabled are not checked.
 *
 * Every finished check is reported as a raw observation; thresholds (hysteresis) are the target state
 * machine's job. Results that arrive after a target was removed, or after its check timed out, are
 * dropped.
 */
export class ActiveHealthChecker implements HealthChecker {
  readonly #clock: Clock;
  readonly #probe: ProbeFn;
  readonly #entries = new Map<string, Entry>();
  readonly #listeners: Array<(observation: HealthObservation) => void> = [];
  #seq = 0;
  #closed = false;

  constructor(options: ActiveHealthCheckerOptions) {
    this.#clock = options.clock;
    this.#probe = options.probe ?? defaultProbe;
  }

  setTargets(targets: readonly HealthCheckTarget[]): void {
    if (this.#closed) return;
    const wanted = new Map<string, HealthCheckTarget>();
    for (const t of targets) wanted.set(t.key, t);

    for (const [key, entry] of this.#entries) {
      if (!wanted.has(key)) {
        this.#stop(entry);
        this.#entries.delete(key);
      }
    }
    for (const [key, target] of wanted) {
      const entry = this.#entries.get(key);
      if (entry === undefined) {
        const created: Entry = { target, next: undefined, lastStart: undefined, inFlight: undefined, removed: false };
        this.#entries.set(key, created);
        if (target.config.enabled) this.#check(created);
      } else {
        this.#update(entry, target);
      }
    }
  }

  onObservation(listener: (observation: HealthObservation) => void): void {
    this.#listeners.push(listener);
  }

  /** Stops every check, closes their sockets and waits for them to settle. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const pending: Array<Promise<void>> = [];
    for (const entry of this.#entries.values()) {
      if (entry.inFlight !== undefined) pending.push(entry.inFlight.done);
      this.#stop(entry);
    }
    this.#entries.clear();
    await Promise.all(pending);
  }

  /** Keys currently being checked (enabled or not); for status views and tests. */
  keys(): string[] {
    return [...this.#entries.keys()];
  }

  #update(entry: Entry, target: HealthCheckTarget): void {
    const before = entry.target.config;
    entry.target = target;
    const after = target.config;
    if (!after.enabled) {
      if (before.enabled) this.#pause(entry);
      return;
    }
    if (!before.enabled) {
      this.#check(entry);
      return;
    }
    // Everything else takes effect at the next check; a new interval also moves that check, so that
    // shortening 300 s to 5 s does not wait out the old 300 s.
    if (after.intervalSeconds !== before.intervalSeconds && entry.next !== undefined && entry.lastStart !== undefined) {
      entry.next.cancel();
      const due = entry.lastStart + intervalMs(after) - this.#clock.now();
      entry.next = this.#clock.setTimer(Math.max(0, due), () => this.#check(entry));
    }
  }

  #check(entry: Entry): void {
    entry.next = undefined;
    if (entry.removed || this.#closed || !entry.target.config.enabled) return;
    entry.lastStart = this.#clock.now();
    entry.next = this.#clock.setTimer(intervalMs(entry.target.config), () => this.#check(entry));
    if (entry.inFlight !== undefined) return; // the previous check is still running: skip this one

    const target = entry.target;
    const seq = ++this.#seq;
    const started = entry.lastStart;
    const controller = new AbortController();
    const timeoutMs = target.config.timeoutSeconds * 1000;
    const timeout = this.#clock.setTimer(timeoutMs, () => {
      if (entry.inFlight?.seq !== seq) return;
      entry.inFlight = undefined;
      controller.abort();
      this.#emit({
        key: target.key,
        ...failed('Target.Timeout', `no answer from ${hostPort(target.host, target.port)} within ${target.config.timeoutSeconds} s`),
        durationMs: this.#clock.now() - started,
      });
    });
    let outcome: Promise<CheckOutcome>;
    try {
      outcome = this.#probe(target, controller.signal);
    } catch (err) {
      outcome = Promise.resolve(failed('Target.FailedHealthChecks', `health check not run: ${String(err)}`));
    }
    const done = outcome.then(
      (result) => this.#finish(entry, seq, target.key, result, started),
      (err: unknown) => this.#finish(entry, seq, target.key, failed('Target.FailedHealthChecks', `health check failed: ${String(err)}`), started),
    );
    entry.inFlight = { seq, controller, timeout, done };
  }

  #finish(entry: Entry, seq: number, key: string, result: CheckOutcome, started: number): void {
    if (entry.removed || entry.inFlight?.seq !== seq) return; // removed, timed out or paused meanwhile
    entry.inFlight.timeout.cancel();
    entry.inFlight = undefined;
    this.#emit({ key, ...result, durationMs: this.#clock.now() - started });
  }

  /** Cancels the schedule and any check in flight (its result will be ignored). */
  #pause(entry: Entry): void {
    entry.next?.cancel();
    entry.next = undefined;
    if (entry.inFlight !== undefined) {
      entry.inFlight.timeout.cancel();
      entry.inFlight.controller.abort();
      entry.inFlight = undefined;
    }
  }

  #stop(entry: Entry): void {
    entry.removed = true;
    this.#pause(entry);
  }

  #emit(observation: HealthObservation): void {
    for (const listener of this.#listeners) {
      try {
        listener(observation);
      } catch (err) {
        // A listener's bug must not stop the checks of every other target.
        process.emitWarning(`A health observation listener threw for ${observation.key}: ${String(err)}`, 'EbbHealthWarning');
      }
    }
  }
}

function intervalMs(config: HealthCheckConfig): number {
  return config.intervalSeconds * 1000;
}
