import type { InstanceExit, InstanceRunner, LaunchSpec, RunningInstance, StopResult } from '../../src/domain/instance-runner.ts';
import type { Clock } from '../../src/shared/clock.ts';

interface FakeProcess {
  readonly instance: RunningInstance;
  readonly spec: LaunchSpec;
  running: boolean;
  /** Set while a stop waits for the process to exit (the test decides when it does). */
  stopping: ((exit: InstanceExit) => void) | null;
  signals: string[];
}

/**
 * An instance runner without processes: launches succeed (or fail, when told), and the test decides
 * when a process exits and whether it obeys SIGTERM. Every signal sent is recorded in order.
 */
export class FakeInstanceRunner implements InstanceRunner {
  readonly #clock: Clock;
  readonly #processes = new Map<string, FakeProcess>();
  readonly #listeners: Array<(exit: InstanceExit) => void> = [];
  #nextPid = 1000;
  #nextPort = 20000;
  /** The next launches reject with this error. */
  failLaunches: Error | null = null;
  /** SIGTERM ends the process at once (true) or the test ends it with `exit` (false). */
  exitOnTerm = true;
  /** Every launch spec, in order. */
  readonly launches: LaunchSpec[] = [];
  /** `instanceId:SIGNAL` in order. */
  readonly signals: string[] = [];

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  launch(spec: LaunchSpec): Promise<RunningInstance> {
    this.launches.push(spec);
    if (this.failLaunches !== null) return Promise.reject(this.failLaunches);
    const instance: RunningInstance = {
      instanceId: spec.instanceId,
      pid: this.#nextPid++,
      startTime: String(this.#clock.now()),
      port: this.#nextPort++,
      logFile: `/fake/${spec.instanceId}/output.log`,
      launchedAt: this.#clock.wallTime(),
    };
    this.#processes.set(spec.instanceId, { instance, spec, running: true, stopping: null, signals: [] });
    return Promise.resolve(instance);
  }

  adopt(instanceId: string): RunningInstance | null {
    const p = this.#processes.get(instanceId);
    return p?.running === true ? p.instance : null;
  }

  isRunning(instanceId: string): boolean {
    return this.#processes.get(instanceId)?.running === true;
  }

  stop(instanceId: string, stopTimeoutMs: number): Promise<StopResult> {
    const p = this.#processes.get(instanceId);
    if (p === undefined || !p.running) {
      this.#processes.delete(instanceId);
      return Promise.resolve({ by: 'none', exit: null });
    }
    this.#signal(p, 'SIGTERM');
    if (this.exitOnTerm) return Promise.resolve({ by: 'SIGTERM', exit: this.#end(p, null, 'SIGTERM') });
    return new Promise((resolve) => {
      const timer = this.#clock.setTimer(stopTimeoutMs, () => {
        this.#signal(p, 'SIGKILL');
        p.stopping = null;
        resolve({ by: 'SIGKILL', exit: this.#end(p, null, 'SIGKILL') });
      });
      p.stopping = (exit) => {
        timer.cancel();
        resolve({ by: 'SIGTERM', exit });
      };
    });
  }

  release(instanceId: string): void {
    this.#processes.delete(instanceId);
  }

  onExit(listener: (exit: InstanceExit) => void): void {
    this.#listeners.push(listener);
  }

  recorded(): string[] {
    return [...this.#processes.keys()];
  }

  close(): void {}

  // ---- for tests

  /** The process exits by itself (a crash, or its own end after SIGTERM). */
  exit(instanceId: string, code: number | null = 1, signal: string | null = null): void {
    const p = this.#processes.get(instanceId);
    if (p === undefined || !p.running) throw new Error(`${instanceId} is not running`);
    const exit = this.#end(p, code, signal);
    p.stopping?.(exit);
    p.stopping = null;
  }

  /** Signals sent to one instance, in order. */
  signalsOf(instanceId: string): string[] {
    return this.#processes.get(instanceId)?.signals ?? this.signals.filter((s) => s.startsWith(`${instanceId}:`)).map((s) => s.slice(instanceId.length + 1));
  }

  running(): string[] {
    return [...this.#processes.values()].filter((p) => p.running).map((p) => p.instance.instanceId);
  }

  #signal(p: FakeProcess, signal: string): void {
    p.signals.push(signal);
    this.signals.push(`${p.instance.instanceId}:${signal}`);
  }

  #end(p: FakeProcess, code: number | null, signal: string | null): InstanceExit {
    p.running = false;
    const exit: InstanceExit = { instanceId: p.instance.instanceId, code, signal, at: this.#clock.wallTime() };
    for (const l of this.#listeners) l(exit);
    return exit;
  }
}
