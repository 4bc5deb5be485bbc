/**
 * What the deploy benchmark needs to run commands and account for processes: a command with a
 * deadline, a bounded wait, a free port, and the processes that carry a marker in their environment
 * (how the benchmark finds every instance it caused, whoever started it, to check that none is left).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to its end, or kills it at the deadline; never rejects for a non-zero exit. */
export function run(file: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { env: options.env ?? process.env, timeout: options.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024, killSignal: 'SIGKILL' },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : error.killed ? 124 : 1;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) || (error !== null && typeof error.code !== 'number' ? error.message : '') });
      },
    );
  });
}

/** The command as a shell would show it, for reports. */
export function shown(file: string, args: readonly string[]): string {
  return [file, ...args].map((a) => (/^[\w@%+=:,./$-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)).join(' ');
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value other than undefined, or throws after `timeoutMs` saying what it waited for. */
export async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined> | T | undefined, intervalMs = 250): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`${what}: not within ${(timeoutMs / 1000).toFixed(0)} s`);
    await sleep(intervalMs);
  }
}

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Whether the process runs: it exists and is not a zombie (an exited process its parent has not reaped). */
export function isRunning(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the command name, which is in parentheses and may itself contain them.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Processes whose environment holds `name=value` (those of this user; others cannot be read). */
export function processesWithEnv(name: string, value: string): number[] {
  const needle = Buffer.from(`\0${name}=${value}\0`);
  const first = Buffer.from(`${name}=${value}\0`);
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const env = fs.readFileSync(`/proc/${entry}/environ`);
      if ((env.indexOf(needle) >= 0 || env.subarray(0, first.length).equals(first)) && isRunning(Number(entry))) found.push(Number(entry));
    } catch {
      // gone meanwhile, or not ours
    }
  }
  return found;
}

/** The command line of a process, for reports (empty once it is gone). */
export function commandLine(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}

/**
 * Every process seen carrying a marker while a tool ran, sampled on an interval, so the check at the
 * end covers instances that came and went during the deploy too.
 */
export class ProcessWatch {
  readonly #seen = new Map<number, string>();
  readonly #timer: NodeJS.Timeout;

  constructor(
    readonly name: string,
    readonly value: string,
    intervalMs = 500,
  ) {
    this.sample();
    this.#timer = setInterval(() => this.sample(), intervalMs);
  }

  sample(): void {
    // The latest command line: a user-data script's shell becomes the app when it execs it.
    for (const pid of processesWithEnv(this.name, this.value)) this.#seen.set(pid, commandLine(pid) || (this.#seen.get(pid) ?? ''));
  }

  /** Every pid seen so far, with its command line. */
  get seen(): ReadonlyMap<number, string> {
    return this.#seen;
  }

  /** How many pids seen so far ran a command line containing `text`. */
  count(text: string): number {
    return [...this.#seen.values()].filter((c) => c.includes(text)).length;
  }

  /** Stops sampling; returns the pids seen that still run. */
  stop(): number[] {
    clearInterval(this.#timer);
    this.sample();
    return [...this.#seen.keys()].filter(isRunning);
  }
}
