/**
 * The servers the benchmark starts. Each runs in a session of its own (spawn's `detached` calls
 * setsid), so its pgid is its pid and everything it forks stays in that group: the group is what is
 * measured, and what is signalled at the end. Nothing else is ever signalled.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { sleep } from '../deploy/processes.ts';

// The deploy benchmark's helpers, shared rather than written again.
export { freePort, sleep } from '../deploy/processes.ts';

const started = new Set<ServerGroup>();

export class ServerGroup {
  readonly pgid: number;
  #exited = false;
  #exitCode: number | null = null;

  private constructor(
    readonly name: string,
    readonly logFile: string,
    pid: number,
  ) {
    this.pgid = pid;
  }

  /** Starts `argv` (behind `taskset -c CPUS` when `cpus` is given), its output to `logFile`. */
  static start(name: string, argv: readonly string[], options: { cpus: string | null; logFile: string; cwd?: string; env?: NodeJS.ProcessEnv }): ServerGroup {
    const command = options.cpus === null ? [...argv] : ['taskset', '-c', options.cpus, ...argv];
    const log = fs.openSync(options.logFile, 'a');
    const child = spawn(command[0] ?? '', command.slice(1), {
      detached: true,
      stdio: ['ignore', log, log],
      cwd: options.cwd ?? process.cwd(),
      env: options.env ?? process.env,
    });
    fs.closeSync(log);
    if (child.pid === undefined) throw new Error(`could not start ${name} (${command.join(' ')}); is it installed?`);
    const group = new ServerGroup(name, options.logFile, child.pid);
    child.on('error', () => (group.#exited = true));
    child.on('exit', (code) => {
      group.#exited = true;
      group.#exitCode = code;
    });
    started.add(group);
    return group;
  }

  get exited(): boolean {
    return this.#exited;
  }

  /** The last lines of its log, for a report of why it failed. */
  logTail(lines = 20): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** Throws, with its log, when the group's first process has exited. */
  assertRunning(): void {
    if (this.#exited) throw new Error(`${this.name} exited (code ${this.#exitCode ?? 'signal'}); its log:\n${this.logTail()}`);
  }

  #signal(signal: NodeJS.Signals): boolean {
    try {
      process.kill(-this.pgid, signal);
      return true;
    } catch {
      return false; // no process left in the group
    }
  }

  /** SIGTERM to the group, then SIGKILL to what is left after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    started.delete(this);
    if (!this.#signal('SIGTERM')) return;
    const deadline = performance.now() + graceMs;
    while (performance.now() < deadline) {
      await sleep(50);
      if (!this.#signal(0 as unknown as NodeJS.Signals)) return;
    }
    this.#signal('SIGKILL');
  }

  /** Stops every group still running, all at once (each by its own pgid). */
  static async stopAllStarted(): Promise<void> {
    await Promise.all([...started].map((group) => group.stop()));
  }

  /** At exit, when no await is possible: SIGKILL to the groups still running. */
  static killAllStartedSync(): void {
    for (const group of started) group.#signal('SIGKILL');
    started.clear();
  }
}

function getStatus(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

/** Waits until GET / answers 200 (a load balancer answers 503 until its target passes a health check). */
export async function waitFor200(group: ServerGroup, port: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last = 0;
  while (performance.now() < deadline) {
    group.assertRunning();
    last = await getStatus(port, '/');
    if (last === 200) return;
    await sleep(200);
  }
  throw new Error(`${group.name} did not answer 200 on 127.0.0.1:${port} within ${timeoutMs / 1000} s (last: ${last || 'no answer'}); its log:\n${group.logTail()}`);
}

/** GET a path's body (for ebb's /metrics at the end of a run). */
export function getText(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        if (body.length < 4 << 20) body += d; // bounded: the metrics text is far smaller
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0, body: '' }));
  });
}
