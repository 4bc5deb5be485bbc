/**
 * The port through which Auto Scaling starts, watches and stops the processes that are its
 * instances. The implementation (`src/instances/`) knows processes, process groups, ports and log
 * files; Auto Scaling knows only instance ids and what it asked for.
 *
 * An instance is one process in a process group of its own, so a signal reaches everything a shell
 * script started. Its identity survives a restart of ebb: the runner records, durably and before
 * `launch` resolves, the pid, the process's start time (as the kernel reports it, so a recycled pid
 * is never mistaken for the instance) and the port, and `adopt` finds the same process again.
 */
export interface LaunchSpec {
  /** `i-` + 17 lowercase hex digits. */
  readonly instanceId: string;
  /** The Auto Scaling group that launches it (`EBB_GROUP`); empty when none. */
  readonly group: string;
  /**
   * What runs: `script` is a user-data script (run as a file: by its `#!` line when it has one, else
   * by /bin/sh); `argv` is a command and its arguments, run without a shell.
   */
  readonly run: { readonly script: string } | { readonly argv: readonly string[] };
  /** Added to ebb's own environment, then PORT, EBB_INSTANCE_ID and EBB_GROUP (those three win). */
  readonly environment: Readonly<Record<string, string>>;
  /** Absolute, or relative to ebb's working directory; unset: the instance's own directory under the state directory. */
  readonly workingDirectory?: string;
}

export interface RunningInstance {
  readonly instanceId: string;
  readonly pid: number;
  /** The kernel's start time of the process (/proc/<pid>/stat field 22), as text: with the pid, the process's identity. */
  readonly startTime: string;
  /** The TCP port the instance was given in PORT (free on 127.0.0.1 when it was chosen). */
  readonly port: number;
  /** Where its stdout and stderr go. */
  readonly logFile: string;
  /** Wall-clock ms when it was started. */
  readonly launchedAt: number;
}

export interface InstanceExit {
  readonly instanceId: string;
  /** Exit code, or null when a signal ended it or (for an adopted process) the code cannot be known. */
  readonly code: number | null;
  readonly signal: string | null;
  /** Wall-clock ms when the exit was seen. */
  readonly at: number;
}

export interface StopResult {
  /** SIGTERM: it exited within the stop timeout; SIGKILL: it had to be killed; none: it was not running. */
  readonly by: 'SIGTERM' | 'SIGKILL' | 'none';
  readonly exit: InstanceExit | null;
}

export interface InstanceRunner {
  /**
   * Chooses a free port, starts the process in a new process group with its stdout and stderr in a
   * log file, records it durably, then resolves. Rejects (InstanceLaunchFailed) when the process
   * cannot be started at all (no such working directory, spawn error); a process that starts and
   * exits at once is reported through `onExit` like any other exit.
   */
  launch(spec: LaunchSpec): Promise<RunningInstance>;
  /**
   * The instance's process as recorded when it was launched, if that same process (pid and start
   * time) is still running; it is then watched again and its exit reported through `onExit`. Null
   * when it is gone (or was never recorded).
   */
  adopt(instanceId: string): RunningInstance | null;
  /** Whether the instance's process is running (launched or adopted by this runner, and not exited). */
  isRunning(instanceId: string): boolean;
  /**
   * SIGTERM to the process group, then SIGKILL to it after `stopTimeoutMs` if the process has not
   * exited; resolves once it has exited (or at once when it is not running). The durable record is
   * removed once the process has exited.
   */
  stop(instanceId: string, stopTimeoutMs: number): Promise<StopResult>;
  /** Forgets the instance without signalling it: its process runs on, unmanaged (a detached instance). */
  release(instanceId: string): void;
  /** Every exit of a process this runner launched or adopted, once. */
  onExit(listener: (exit: InstanceExit) => void): void;
  /** Instances recorded in the runner's directory (launched by this or an earlier ebb), running or not. */
  recorded(): string[];
  /** Stops watching; the processes run on (they are adopted at the next start). */
  close(): void;
}
