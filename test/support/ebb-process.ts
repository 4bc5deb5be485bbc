/**
 * `ebb serve` (or another script of the repository) as a child process: `node --import tsx` (or node
 * as given), its stdout read as JSON log lines, stopped at cleanup if it is still running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Cleanup } from './cleanup.ts';
import { after, sleep } from './timing.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = join(REPO_ROOT, 'src/main/cli.ts');

export type LogLine = Record<string, unknown>;

export interface NodeProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** stdout, a parsed line each; a line that is not JSON is kept as `{ unparsed: line }`. */
  readonly logs: LogLine[];
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code, or the signal name, once the process has exited and its output is read. */
  readonly exited: Promise<number | string>;
  exitCode(): number | string | null;
  /** Waits for a log line matching `pred`; returns it, or null after `ms` or once the process has exited without one. */
  waitForLog(pred: (line: LogLine) => boolean, ms: number): Promise<LogLine | null>;
  /** Log lines at level error, and stdout lines that were not JSON. */
  problems(): LogLine[];
}

export interface SpawnOptions {
  /** Added to this process's environment. */
  readonly env?: NodeJS.ProcessEnv;
  /** Runs the child under `ulimit -n nofile` (bash sets the limit, then execs node, so the pid is node's). */
  readonly nofile?: number;
  /**
   * At cleanup: SIGTERM, then SIGKILL if it is still running this long after. Unset: SIGKILL at
   * once (a test that wants a graceful stop does it itself and checks how it went).
   */
  readonly stopGraceMs?: number;
  /** An IPC channel to the child (`child.send`, `child.connected`), as a parent that forks it has. */
  readonly ipc?: boolean;
}

/** `node --import tsx ...args` from the repository root. */
export function spawnTsx(cleanup: Cleanup, args: readonly string[], options: SpawnOptions = {}): NodeProcess {
  return spawnNode(cleanup, ['--import', 'tsx', ...args], options);
}

/** `node ...nodeArgs` (this node) from the repository root. */
export function spawnNode(cleanup: Cleanup, nodeArgs: readonly string[], options: SpawnOptions = {}): NodeProcess {
  const [command, argv]: [string, string[]] =
    options.nofile === undefined ? [process.execPath, [...nodeArgs]] : ['bash', ['-c', `ulimit -n ${options.nofile} && exec "$@"`, 'bash', process.execPath, ...nodeArgs]];
  const child = spawn(command, argv, {
    cwd: REPO_ROOT,
    stdio: options.ipc === true ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not spawn node ${nodeArgs.join(' ')}`);
  const logs: LogLine[] = [];
  let out = '';
  let partial = '';
  let err = '';
  let code: number | string | null = null;
  child.stdout?.setEncoding('utf8');
  child.stderr?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    out += chunk;
    partial += chunk;
    for (let nl = partial.indexOf('\n'); nl >= 0; nl = partial.indexOf('\n')) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ unparsed: line });
      }
    }
  });
  child.stderr?.on('data', (chunk: string) => (err += chunk));
  let closed = false;
  child.on('exit', (c, signal) => (code = c ?? signal ?? 'unknown'));
  // 'close' follows 'exit' once stdout and stderr have been read to their end, so a test that awaits
  // `exited` sees everything the process printed.
  const exited = new Promise<number | string>((resolve) => {
    child.on('close', (c, signal) => {
      closed = true;
      code ??= c ?? signal ?? 'unknown';
      resolve(code);
    });
  });
  cleanup.add(async () => {
    if (code !== null) return;
    if (options.stopGraceMs !== undefined) {
      process.kill(pid, 'SIGTERM');
      if ((await Promise.race([exited.then(() => true), after(options.stopGraceMs, false)])) || code !== null) return;
    }
    process.kill(pid, 'SIGKILL');
    await exited;
  });
  return {
    child,
    pid,
    logs,
    stdout: () => out,
    stderr: () => err,
    exited,
    exitCode: () => code,
    waitForLog: async (pred, ms) => {
      const end = Date.now() + ms;
      let from = 0;
      while (Date.now() < end) {
        for (; from < logs.length; from++) {
          const line = logs[from];
          if (line !== undefined && pred(line)) return line;
        }
        if (closed) return null;
        await sleep(10);
      }
      return logs.find(pred) ?? null;
    },
    problems: () => logs.filter((l) => l['level'] === 'error' || 'unparsed' in l),
  };
}

/** No admin credentials from the environment the tests run in (ebb reads these two variables). */
export const NO_ADMIN_CREDENTIALS: NodeJS.ProcessEnv = { EBB_ACCESS_KEY_ID: '', EBB_SECRET_ACCESS_KEY: '' };

/**
 * `ebb serve ...args`; `env` is added to this process's environment (default: no admin credentials).
 * In ebb's own process (`--workers 1`) unless `args` say how many workers: ebb's default is one per
 * core, and the tests of workers ask for them.
 */
export function spawnEbb(cleanup: Cleanup, args: readonly string[], env: NodeJS.ProcessEnv = NO_ADMIN_CREDENTIALS, options: Omit<SpawnOptions, 'env'> = {}): NodeProcess {
  const workers = args.some((a) => a === '--workers' || a.startsWith('--workers=')) ? [] : ['--workers', '1'];
  return spawnTsx(cleanup, [CLI, 'serve', ...workers, ...args], { ...options, env });
}

/** Waits for ebb's `ebb:started` line and returns it; rejects with what ebb printed if it exited or took longer than `ms`. */
export async function waitForStart(proc: NodeProcess, ms = 15_000): Promise<LogLine> {
  const started = await proc.waitForLog((l) => l['event'] === 'ebb:started', ms);
  if (started === null) throw new Error(`ebb serve did not start (exit ${String(proc.exitCode())}): ${proc.stderr()}${proc.stdout().slice(-2000)}`);
  return started;
}
