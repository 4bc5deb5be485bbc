/**
 * Auto Scaling's instances as local processes (the InstanceRunner port, src/domain/instance-runner.ts).
 * Each instance is the leader of a session and process group of its own, so a signal sent to the group
 * reaches everything its script started; its stdout and stderr are appended to a file the runner
 * never holds open, so they keep flowing while ebb is down; and it is recorded (pid, kernel start time,
 * port) before `launch` resolves, so the next ebb finds the same process again and never a stranger
 * that inherited its pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { InstanceExit, InstanceRunner, LaunchSpec, RunningInstance, StopResult } from '../domain/instance-runner.ts';
import type { Clock, TimerHandle } from '../shared/clock.ts';
import { describeError, EbbError } from '../shared/errors.ts';
import { chooseFreePort } from './free-port.ts';
import { instanceDir, isSafeInstanceId, LOG_FILE, pruneEnded, readRecord, recordedIds, removeRecord, USER_DATA_FILE, writeRecord } from './instance-files.ts';
import { groupHasLiveMembers, isSameProcess, liveGroupMembers, readProcStat } from './proc-stat.ts';

export interface ProcessInstanceRunnerOptions {
  /** Where instances' directories are made, e.g. `<state-dir>/instances`. */
  readonly dir: string;
  readonly clock: Clock;
  readonly log?: (entry: Record<string, unknown>) => void;
  /** How often adopted processes (not ebb's children, so no exit event) are looked at. Default 500. */
  readonly pollIntervalMs?: number;
}

interface Watched {
  readonly instance: RunningInstance;
  /** Null for an adopted process: not ebb's child, so its end is found by looking. */
  readonly child: ChildProcess | null;
  exit: InstanceExit | null;
  readonly exited: Promise<void>;
  readonly markExited: () => void;
}

/** How often a stop looks again at an adopted process, or at what is left of a group. */
const STOP_STEP_MS = 100;
/** Directories of ended instances kept for their logs (the newest); older ones go at the next launch. */
export const ENDED_KEPT = 50;
/** Members of a group still alive this long after SIGKILL (stuck in the kernel) are logged and left. */
const KILL_GRACE_MS = 5000;

type Signal = 'SIGTERM' | 'SIGKILL';

export class ProcessInstanceRunner implements InstanceRunner {
  readonly #dir: string;
  readonly #clock: Clock;
  readonly #log: (entry: Record<string, unknown>) => void;
  readonly #pollIntervalMs: number;
  readonly #watched = new Map<string, Watched>();
  readonly #launching = new Set<string>();
  /** Ports chosen for launches not yet watched. */
  readonly #reservedPorts = new Set<number>();
  readonly #stopping = new Map<string, Promise<StopResult>>();
  /**
   * Instances whose first process has exited while others of its group still run (a script that
   * started a server in the background and ended): still running, as an EC2 instance whose boot
   * script ended is; their exit is told once the whole group is gone.
   */
  readonly #lingering = new Map<string, { readonly pgid: number; readonly exit: InstanceExit }>();
  readonly #listeners: Array<(exit: InstanceExit) => void> = [];
  /** One timer for every adopted process. */
  #pollTimer: TimerHandle | null = null;
  /** Ends the pauses of stops in progress, so `close` does not leave them waiting on cancelled timers. */
  readonly #wakers = new Set<() => void>();
  #closed = false;
  readonly #closing: Promise<void>;
  readonly #markClosing: () => void;

  constructor(options: ProcessInstanceRunnerOptions) {
    this.#dir = options.dir;
    this.#clock = options.clock;
    this.#log = options.log ?? (() => {});
    this.#pollIntervalMs = Math.max(1, options.pollIntervalMs ?? 500);
    let markClosing!: () => void;
    this.#closing = new Promise<void>((r) => (markClosing = r));
    this.#markClosing = markClosing;
  }

  async launch(spec: LaunchSpec): Promise<RunningInstance> {
    const id = spec.instanceId;
    if (!isSafeInstanceId(id)) throw launchFailed(`The instance id ${JSON.stringify(id)} cannot name a directory; use letters, digits, '-' and '_' (Auto Scaling's ids look like i-0123456789abcdef0).`);
    this.#refuseIfClosed(id);
    if (this.#watched.has(id) || this.#launching.has(id) || this.#stopping.has(id)) throw launchFailed(`Instance ${id} is already running or being stopped; stop it first, or launch under a new id.`);
    const earlier = readRecord(this.#dir, id);
    if (earlier.ok && isSameProcess(earlier.instance.pid, earlier.instance.startTime)) {
      throw launchFailed(`Instance ${id} is already running as pid ${earlier.instance.pid} (recorded in ${instanceDir(this.#dir, id)}); adopt or stop it before launching it again.`);
    }
    this.#launching.add(id);
    try {
      const port = await chooseFreePort(this.#heldPorts());
      this.#refuseIfClosed(id);
      this.#reservedPorts.add(port);
      try {
        return await this.#start(spec, port);
      } finally {
        this.#reservedPorts.delete(port);
      }
    } finally {
      this.#launching.delete(id);
    }
  }

  adopt(instanceId: string): RunningInstance | null {
    const watched = this.#watched.get(instanceId);
    if (watched !== undefined) return watched.instance;
    if (this.#closed || !isSafeInstanceId(instanceId)) return null;
    const record = readRecord(this.#dir, instanceId);
    if (!record.ok) {
      this.#log({ event: 'instance:adopt-no-record', level: record.reason === 'corrupt' ? 'warn' : 'info', instanceId, reason: record.reason, detail: record.detail });
      return null;
    }
    const { instance } = record;
    if (!isSameProcess(instance.pid, instance.startTime)) {
      // The kernel reuses no pid while a process group of that number lives, so the group is the instance's.
      if (groupHasLiveMembers(instance.pid)) {
        this.#lingering.set(instanceId, { pgid: instance.pid, exit: { instanceId, code: null, signal: null, at: this.#clock.wallTime() } });
        this.#log({ event: 'instance:adopt-group', instanceId, pgid: instance.pid, port: instance.port });
        this.#schedulePoll();
        return instance;
      }
      this.#log({ event: 'instance:adopt-gone', instanceId, pid: instance.pid });
      return null;
    }
    this.#watch(instance, null);
    this.#log({ event: 'instance:adopt', instanceId, pid: instance.pid, port: instance.port });
    this.#schedulePoll();
    return instance;
  }

  isRunning(instanceId: string): boolean {
    return this.#watched.has(instanceId) || this.#lingering.has(instanceId);
  }

  stop(instanceId: string, stopTimeoutMs: number): Promise<StopResult> {
    const pending = this.#stopping.get(instanceId);
    if (pending !== undefined) return pending;
    const stopping = this.#stop(instanceId, Math.max(0, stopTimeoutMs)).finally(() => this.#stopping.delete(instanceId));
    this.#stopping.set(instanceId, stopping);
    return stopping;
  }

  release(instanceId: string): void {
    this.#watched.delete(instanceId);
    this.#lingering.delete(instanceId);
    if (isSafeInstanceId(instanceId)) removeRecord(this.#dir, instanceId);
    this.#log({ event: 'instance:release', instanceId });
  }

  onExit(listener: (exit: InstanceExit) => void): void {
    this.#listeners.push(listener);
  }

  recorded(): string[] {
    return recordedIds(this.#dir);
  }

  close(): void {
    this.#closed = true;
    this.#pollTimer?.cancel();
    this.#pollTimer = null;
    this.#watched.clear();
    for (const wake of [...this.#wakers]) wake();
    this.#markClosing();
  }

  // ------------------------------------------------------------------ launching

  async #start(spec: LaunchSpec, port: number): Promise<RunningInstance> {
    const id = spec.instanceId;
    const home = instanceDir(this.#dir, id);
    const fresh = !existsSync(home);
    try {
      mkdirSync(home, { recursive: true });
    } catch (error) {
      throw launchFailed(`Could not create ${home} (${describeError(error)}); make the state directory writable by ebb.`, error);
    }
    // A launch that fails leaves nothing behind that looks like an instance.
    const fail = (message: string, cause?: unknown): EbbError => {
      if (fresh) rmSync(home, { recursive: true, force: true });
      else removeRecord(this.#dir, id);
      return launchFailed(message, cause);
    };

    const cwd = spec.workingDirectory === undefined ? home : resolve(spec.workingDirectory);
    if (!isDirectory(cwd)) throw fail(`The working directory ${cwd} does not exist or is not a directory; create it, or change the launch template's workingDirectory.`);

    let file: string;
    let args: string[];
    if ('script' in spec.run) {
      const script = join(home, USER_DATA_FILE);
      try {
        writeFileSync(script, spec.run.script, { mode: 0o755 });
        chmodSync(script, 0o755);
      } catch (error) {
        throw fail(`Could not write the user data to ${script} (${describeError(error)}); make the state directory writable by ebb.`, error);
      }
      // As cloud-init does: a script with a #! line runs by it; anything else is a shell script.
      [file, args] = spec.run.script.startsWith('#!') ? [script, []] : ['/bin/sh', [script]];
    } else {
      const [command, ...rest] = spec.run.argv;
      if (command === undefined || command === '') throw fail(`Instance ${id} has no command to run; give the launch template a command or user data.`);
      [file, args] = [command, rest];
    }

    const logFile = join(home, LOG_FILE);
    let out: number;
    try {
      out = openSync(logFile, 'a', 0o644);
    } catch (error) {
      throw fail(`Could not open the log file ${logFile} (${describeError(error)}); make the state directory writable by ebb.`, error);
    }
    const launchedAt = this.#clock.wallTime();
    let child: ChildProcess;
    try {
      child = spawn(file, args, {
        cwd,
        env: { ...inheritedEnvironment(), ...spec.environment, PORT: String(port), EBB_INSTANCE_ID: id, EBB_GROUP: spec.group },
        // A session of its own: its own process group (pgid = pid), and no tie to ebb's terminal.
        detached: true,
        stdio: ['ignore', out, out],
      });
    } catch (error) {
      throw fail(`Could not start ${file} for instance ${id} (${describeError(error)}); check the command and its arguments.`, error);
    } finally {
      // The child has its own copies; ebb keeps no log file open.
      closeSync(out);
    }
    const pid = child.pid;
    if (pid === undefined) {
      const [error] = (await once(child, 'error')) as [NodeJS.ErrnoException];
      throw fail(spawnFailure(file, error), error);
    }
    child.on('error', (error) => this.#log({ event: 'instance:process-error', level: 'warn', instanceId: id, pid, error: describeError(error) }));

    // Read before anything can reap the child: even one that has already exited is still a zombie here.
    const stat = readProcStat(pid);
    if (stat === null) this.#log({ event: 'instance:no-start-time', level: 'warn', instanceId: id, pid, detail: `/proc/${pid}/stat unreadable; the instance is known by its pid alone` });
    const instance: RunningInstance = { instanceId: id, pid, startTime: stat?.startTime ?? '', port, logFile, launchedAt };
    try {
      writeRecord(this.#dir, instance);
    } catch (error) {
      // Unrecorded, it would be lost at the next restart: better not to run it at all.
      signalGroup(pid, 'SIGKILL');
      child.unref();
      throw fail(`Could not record instance ${id} in ${home} (${describeError(error)}); free disk space or make the state directory writable, then launch again.`, error);
    }
    const watched = this.#watch(instance, child);
    child.once('exit', (code, signal) => this.#exited(watched, code, signal));
    child.unref();
    this.#log({ event: 'instance:launch', instanceId: id, group: spec.group, pid, port, logFile });
    const pruned = pruneEnded(this.#dir, ENDED_KEPT, new Set([...this.#watched.keys(), ...this.#lingering.keys(), ...this.#launching]));
    if (pruned.length > 0) this.#log({ event: 'instance:logs-pruned', removed: pruned.length, kept: ENDED_KEPT });
    return instance;
  }

  #heldPorts(): Set<number> {
    const held = new Set(this.#reservedPorts);
    for (const w of this.#watched.values()) held.add(w.instance.port);
    return held;
  }

  #refuseIfClosed(id: string): void {
    if (this.#closed) throw launchFailed(`ebb is shutting down, so instance ${id} was not launched; it is launched after ebb starts again.`);
  }

  // ------------------------------------------------------------------ watching

  #watch(instance: RunningInstance, child: ChildProcess | null): Watched {
    let markExited!: () => void;
    const exited = new Promise<void>((r) => (markExited = r));
    const watched: Watched = { instance, child, exit: null, exited, markExited };
    this.#watched.set(instance.instanceId, watched);
    return watched;
  }

  /** Records the end of the process once; listeners hear of it only while the runner still watches it. */
  #exited(watched: Watched, code: number | null, signal: string | null): void {
    if (watched.exit !== null) return;
    const { instanceId, pid } = watched.instance;
    const exit: InstanceExit = { instanceId, code, signal, at: this.#clock.wallTime() };
    watched.exit = exit;
    watched.markExited();
    if (this.#watched.get(instanceId) !== watched) return;
    this.#watched.delete(instanceId);
    if (!this.#closed && !this.#stopping.has(instanceId) && groupHasLiveMembers(pid)) {
      this.#lingering.set(instanceId, { pgid: pid, exit });
      this.#log({ event: 'instance:leader-exit', instanceId, pid, code, signal, note: 'others of its process group still run' });
      this.#schedulePoll();
      return;
    }
    this.#tellExit(exit, pid);
  }

  #tellExit(exit: InstanceExit, pid: number): void {
    const { instanceId, code, signal } = exit;
    this.#log({ event: 'instance:exit', instanceId, pid, code, signal });
    for (const listener of [...this.#listeners]) {
      try {
        listener(exit);
      } catch (error) {
        this.#log({ event: 'instance:exit-listener-failed', level: 'error', instanceId, error: describeError(error) });
      }
    }
  }

  #schedulePoll(): void {
    if (this.#pollTimer !== null || this.#closed) return;
    if (![...this.#watched.values()].some((w) => w.child === null) && this.#lingering.size === 0) return;
    this.#pollTimer = this.#clock.setTimer(this.#pollIntervalMs, () => {
      this.#pollTimer = null;
      for (const w of [...this.#watched.values()]) {
        if (w.child === null && !isSameProcess(w.instance.pid, w.instance.startTime)) this.#exited(w, null, null);
      }
      for (const [id, l] of [...this.#lingering]) {
        if (this.#stopping.has(id) || groupHasLiveMembers(l.pgid)) continue;
        this.#lingering.delete(id);
        this.#tellExit(l.exit, l.pgid);
      }
      this.#schedulePoll();
    });
  }

  // ------------------------------------------------------------------ stopping

  async #stop(instanceId: string, stopTimeoutMs: number): Promise<StopResult> {
    if (this.#closed) throw shuttingDown(instanceId, 'was not stopped');
    // An instance recorded but not yet adopted (after a restart) is still stopped, not left running.
    if (!this.#watched.has(instanceId) && !this.#lingering.has(instanceId)) this.adopt(instanceId);
    const lingering = this.#lingering.get(instanceId);
    if (lingering !== undefined && !this.#watched.has(instanceId)) return this.#stopGroup(instanceId, lingering.pgid, lingering.exit, stopTimeoutMs);
    const watched = this.#watched.get(instanceId);
    if (watched !== undefined && watched.child === null && !isSameProcess(watched.instance.pid, watched.instance.startTime)) this.#exited(watched, null, null);
    if (watched === undefined || watched.exit !== null) {
      if (isSafeInstanceId(instanceId)) removeRecord(this.#dir, instanceId);
      return { by: 'none', exit: null };
    }

    const { pid, startTime } = watched.instance;
    const started = this.#clock.now();
    let by: Signal = 'SIGTERM';
    let killedAt: number | null = null;
    this.#log({ event: 'instance:stop', instanceId, pid, signal: 'SIGTERM', stopTimeoutMs });
    signalGroup(pid, 'SIGTERM', this.#log);
    // Done when the process has exited and nothing else in its group runs: a script's children (the
    // server a shell started) get the same time to finish as the script.
    for (;;) {
      if (watched.exit === null && watched.child === null && !isSameProcess(pid, startTime)) this.#exited(watched, null, null);
      if (watched.exit !== null && !groupHasLiveMembers(pid)) break;
      const now = this.#clock.now();
      if (killedAt === null && now - started >= stopTimeoutMs) {
        by = 'SIGKILL';
        killedAt = now;
        // What outlived SIGTERM, for whoever reads why the stop took its whole timeout.
        this.#log({ event: 'instance:stop', instanceId, pid, signal: 'SIGKILL', afterMs: now - started, leaderExited: watched.exit !== null, members: liveGroupMembers(pid) });
        signalGroup(pid, 'SIGKILL', this.#log);
      } else if (killedAt !== null && watched.exit !== null && now - killedAt >= KILL_GRACE_MS) {
        this.#log({ event: 'instance:group-survives-kill', level: 'warn', instanceId, pgid: pid });
        break;
      }
      if (this.#closed) throw shuttingDown(instanceId, `was sent ${by} but was not seen to exit`);
      const untilKill = started + stopTimeoutMs - now;
      if (watched.exit === null && watched.child !== null) {
        // ebb's own child: its exit event wakes the stop, so one wait per stage.
        await Promise.race([watched.exited, killedAt === null ? this.#pause(untilKill) : this.#closing]);
      } else {
        // An adopted process, or what is left of the group: looked at again and again.
        await this.#pause(killedAt === null ? Math.min(STOP_STEP_MS, untilKill) : STOP_STEP_MS);
      }
    }
    removeRecord(this.#dir, instanceId);
    return { by, exit: watched.exit };
  }

  /** What is left of a group whose first process has exited: SIGTERM, the stop timeout, SIGKILL. */
  async #stopGroup(instanceId: string, pgid: number, exit: InstanceExit, stopTimeoutMs: number): Promise<StopResult> {
    const started = this.#clock.now();
    let by: Signal = 'SIGTERM';
    let killedAt: number | null = null;
    this.#log({ event: 'instance:stop', instanceId, pgid, signal: 'SIGTERM', stopTimeoutMs, note: 'the first process had exited; the rest of its group is stopped' });
    signalGroup(pgid, 'SIGTERM', this.#log);
    while (groupHasLiveMembers(pgid)) {
      const now = this.#clock.now();
      if (killedAt === null && now - started >= stopTimeoutMs) {
        by = 'SIGKILL';
        killedAt = now;
        this.#log({ event: 'instance:stop', instanceId, pgid, signal: 'SIGKILL', afterMs: now - started });
        signalGroup(pgid, 'SIGKILL', this.#log);
      } else if (killedAt !== null && now - killedAt >= KILL_GRACE_MS) {
        this.#log({ event: 'instance:group-survives-kill', level: 'warn', instanceId, pgid });
        break;
      }
      if (this.#closed) throw shuttingDown(instanceId, `was sent ${by} but was not seen to exit`);
      await this.#pause(killedAt === null ? Math.min(STOP_STEP_MS, started + stopTimeoutMs - now) : STOP_STEP_MS);
    }
    this.#lingering.delete(instanceId);
    removeRecord(this.#dir, instanceId);
    this.#tellExit(exit, pgid);
    return { by, exit };
  }

  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: TimerHandle | null = null;
      const wake = (): void => {
        timer?.cancel();
        this.#wakers.delete(wake);
        resolve();
      };
      this.#wakers.add(wake);
      timer = this.#clock.setTimer(Math.max(0, ms), wake);
    });
  }
}

/**
 * Signals the whole process group; a group already gone is no error. An instance ebb launched leads
 * its group for life (a session leader cannot change group), but a record written by hand may name a
 * process that leads none: then the process alone is signalled, so a stop still ends.
 */
function signalGroup(pgid: number, signal: Signal, log?: (entry: Record<string, unknown>) => void): void {
  try {
    process.kill(-pgid, signal);
    return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') {
      log?.({ event: 'instance:signal-failed', level: 'warn', pgid, signal, error: describeError(error) });
      return;
    }
  }
  try {
    process.kill(pgid, signal);
  } catch {
    // gone as well
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function spawnFailure(file: string, error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'ENOENT':
      return `Could not start ${file}: it does not exist, or the interpreter its #! line names does not; check the command or the user data's first line.`;
    case 'EACCES':
      return `Could not start ${file}: permission denied; make it (or its #! interpreter) executable and readable by the user ebb runs as.`;
    case 'ENOEXEC':
      return `Could not start ${file}: not an executable format; start a script with a #! line, or run it through its interpreter.`;
    default:
      return `Could not start ${file} (${describeError(error)}); check the command and the working directory.`;
  }
}

function launchFailed(message: string, cause?: unknown): EbbError {
  return new EbbError('InstanceLaunchFailed', message, cause === undefined ? undefined : { cause });
}

function shuttingDown(instanceId: string, what: string): EbbError {
  return new EbbError('ServiceUnavailable', `ebb is shutting down: instance ${instanceId} ${what}; it is watched again, and can be stopped, once ebb has started again.`);
}

/** ebb's own environment without its admin secret: an instance is an application, not an operator. */
function inheritedEnvironment(): NodeJS.ProcessEnv {
  const { EBB_ACCESS_KEY_ID: _key, EBB_SECRET_ACCESS_KEY: _secret, ...rest } = process.env;
  return rest;
}
