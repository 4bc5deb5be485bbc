import type { HealthCheckConfig } from '../domain/health-check.ts';
import type { HealthCheckTarget, HealthChecker, HealthObservation } from '../domain/health-port.ts';
import type { Clock, TimerHandle } from '../shared/clock.ts';
import { failed, hostPort, type CheckOutcome } from './check-outcome.ts';
import { CheckAbort } from './check-signal.ts';
import { defaultProbe, type ProbeFn } from './probe.ts';

/** One check running: what it checks, since when, how it is cancelled, and when it times out. */
interface InFlight {
  readonly target: HealthCheckTarget;
  readonly started: number;
  readonly abort: CheckAbort;
  timeout: TimerHandle | undefined;
  done: Promise<void> | undefined;
}

interface Entry {
  target: HealthCheckTarget;
  /** The next scheduled check. */
  next: TimerHandle | undefined;
  /** Runs the next check; made once per entry rather than once per check. */
  readonly tick: () => void;
  /** Clock time the last check started at; the next one is due an interval later. */
  lastStart: number | undefined;
  inFlight: InFlight | undefined;
  removed: boolean;
  /** The setTargets call that last named this target. */
  generation: number;
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
  #generation = 0;
  #closed = false;

  constructor(options: ActiveHealthCheckerOptions) {
    this.#clock = options.clock;
    this.#probe = options.probe ?? defaultProbe;
  }

  setTargets(targets: readonly HealthCheckTarget[]): void {
    if (this.#closed) return;
    // The whole set comes with every publication (10,000 targets, say): one pass over it marks what
    // is named, and one over the entries drops the rest.
    const generation = ++this.#generation;
    const created: Entry[] = [];
    for (const target of targets) {
      const entry = this.#entries.get(target.key);
      if (entry === undefined) {
        const fresh: Entry = { target, next: undefined, tick: () => this.#check(fresh), lastStart: undefined, inFlight: undefined, removed: false, generation };
        this.#entries.set(target.key, fresh);
        created.push(fresh);
      } else if (entry.target !== target) {
        entry.generation = generation;
        this.#update(entry, target);
      } else {
        entry.generation = generation;
      }
    }
    for (const [key, entry] of this.#entries) {
      if (entry.generation !== generation) {
        this.#stop(entry);
        this.#entries.delete(key);
      }
    }
    for (const entry of created) if (!entry.removed && entry.target.config.enabled) this.#check(entry);
  }

  onObservation(listener: (observation: HealthObservation) => void): void {
    this.#listeners.push(listener);
  }

  /** Stops every check, closes their sockets and waits for them to settle. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const pending: Array<Promise<void>> = [];
    for (const entry of this.#entries.values()) {
      if (entry.inFlight?.done !== undefined) pending.push(entry.inFlight.done);
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
      entry.next = this.#clock.setTimer(Math.max(0, due), entry.tick);
    }
  }

  #check(entry: Entry): void {
    entry.next = undefined;
    if (entry.removed || this.#closed || !entry.target.config.enabled) return;
    const started = this.#clock.now();
    entry.lastStart = started;
    entry.next = this.#clock.setTimer(intervalMs(entry.target.config), entry.tick);
    if (entry.inFlight !== undefined) return; // the previous check is still running: skip this one

    const target = entry.target;
    const inFlight: InFlight = { target, started, abort: new CheckAbort(), timeout: undefined, done: undefined };
    entry.inFlight = inFlight;
    inFlight.timeout = this.#clock.setTimer(target.config.timeoutSeconds * 1000, () => this.#timedOut(entry, inFlight));
    let outcome: Promise<CheckOutcome>;
    try {
      outcome = this.#probe(target, inFlight.abort);
    } catch (err) {
      outcome = Promise.resolve(failed('Target.FailedHealthChecks', `health check not run: ${String(err)}`));
    }
    inFlight.done = outcome.then(
      (result) => this.#finish(entry, inFlight, result),
      (err: unknown) => this.#finish(entry, inFlight, failed('Target.FailedHealthChecks', `health check failed: ${String(err)}`)),
    );
  }

  #timedOut(entry: Entry, inFlight: InFlight): void {
    if (entry.inFlight !== inFlight) return;
    entry.inFlight = undefined;
    inFlight.abort.abort();
    const { host, port, config } = inFlight.target;
    this.#emit(observation(inFlight.target.key, failed('Target.Timeout', `no answer from ${hostPort(host, port)} within ${config.timeoutSeconds} s`), this.#clock.now() - inFlight.started));
  }

  #finish(entry: Entry, inFlight: InFlight, result: CheckOutcome): void {
    if (entry.removed || entry.inFlight !== inFlight) return; // removed, timed out or paused meanwhile
    inFlight.timeout?.cancel();
    entry.inFlight = undefined;
    this.#emit(observation(inFlight.target.key, result, this.#clock.now() - inFlight.started));
  }

  /** Cancels the schedule and any check in flight (its result will be ignored). */
  #pause(entry: Entry): void {
    entry.next?.cancel();
    entry.next = undefined;
    if (entry.inFlight !== undefined) {
      entry.inFlight.timeout?.cancel();
      entry.inFlight.abort.abort();
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

/** An outcome as the observation the control plane gets. */
function observation(key: string, result: CheckOutcome, durationMs: number): HealthObservation {
  if (result.ok) return { key, ok: true, durationMs };
  const { reason, detail, statusCode } = result;
  return statusCode === undefined ? { key, ok: false, reason, detail, durationMs } : { key, ok: false, reason, statusCode, detail, durationMs };
}
