/**
 * The health-check half of the control-plane benchmark. Two backends processes (health-backends.ts),
 * one for ebb's checks and one for the bare loops', and one process per side (health-checker.ts): ebb's, started first and left to find every target
 * healthy, then the two bare loops. Each window, ebb and one bare loop check at the same rate at the
 * same time, each counting its own checks and CPU, so both see the same machine (this one is shared:
 * what else runs on it changes from minute to minute); windows alternate between the bare loops, and
 * the figure is the median of the windows' ratios.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { HealthMode, HealthSideSpec, ParentMessage, ReadyMessage, WindowResult } from './health-checker.ts';

const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface HealthBenchOptions {
  readonly groups: number;
  readonly perGroup: number;
  readonly intervalS: number;
  readonly backendPorts: number;
  /** Length of one measured window, s, and how many windows each bare loop gets. */
  readonly windowS: number;
  readonly windows: number;
  /** A directory to write ebb's CPU profile of its first window to. */
  readonly profileDir?: string;
  readonly log: (line: string) => void;
}

export interface HealthWindow {
  readonly against: Exclude<HealthMode, 'ebb'>;
  readonly ebb: WindowResult;
  readonly bare: WindowResult;
}

export interface HealthBenchResult {
  readonly ready: ReadyMessage;
  readonly windows: HealthWindow[];
}

async function startBackends(count: number): Promise<{ ports: number[]; stop: () => void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', here('./health-backends.ts'), String(count)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const stop = (): void => stopChild(child);
  const ports = await new Promise<number[]>((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve((JSON.parse(out.slice(0, nl)) as { ports: number[] }).ports);
    });
    child.once('exit', (code) => reject(new Error(`the health-check backends exited (${String(code)}) before listening`)));
    setTimeout(() => reject(new Error('the health-check backends did not listen within 30 s')), 30_000).unref();
  }).catch((error: unknown) => {
    stop();
    throw error;
  });
  return { ports, stop };
}

function stopChild(child: ChildProcess): void {
  if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
}

/** A side in its own process, spoken to over IPC. */
class Side {
  readonly child: ChildProcess;
  readonly #waiting: Array<(message: ReadyMessage | WindowResult) => void> = [];

  constructor(spec: HealthSideSpec) {
    this.child = fork(here('./health-checker.ts'), [JSON.stringify(spec)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (message: ReadyMessage | WindowResult) => this.#waiting.shift()?.(message));
  }

  next<T extends ReadyMessage | WindowResult>(timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`a health-check side did not answer within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
      this.child.once('exit', (code) => reject(new Error(`a health-check side exited (${String(code)})`)));
      this.#waiting.push((message) => {
        clearTimeout(timer);
        resolve(message as T);
      });
    });
  }

  send(message: ParentMessage): void {
    this.child.send(message);
  }

  window(ms: number, profile?: string): Promise<WindowResult> {
    const answer = this.next<WindowResult>(ms + 30_000);
    this.send({ type: 'window', ms, ...(profile === undefined ? {} : { profile }) });
    return answer;
  }
}

export async function healthBench(options: HealthBenchOptions): Promise<HealthBenchResult> {
  // Backends of their own for ebb and for the bare loops: one process answering 4,000 new
  // connections a second on a shared machine falls behind, its accept queues overflow, and checks
  // time out on both sides.
  const backends = await Promise.all([startBackends(options.backendPorts), startBackends(options.backendPorts)]);
  const sides: Side[] = [];
  try {
    const spec = (mode: HealthMode): HealthSideSpec => ({
      mode,
      ports: (mode === 'ebb' ? backends[0] : backends[1]).ports,
      groups: options.groups,
      perGroup: options.perGroup,
      intervalS: options.intervalS,
    });
    const ebb = new Side(spec('ebb'));
    sides.push(ebb);
    const ready = await ebb.next<ReadyMessage>((30 * options.intervalS + 60) * 1000);
    options.log(
      `  ebb: ${ready.healthy ?? 0} targets healthy ${((ready.settleMs ?? 0) / 1000).toFixed(1)} s after the first registration, ` +
        `which took ${((ready.settleCpuUs ?? 0) / 1e6).toFixed(1)} s of CPU`,
    );
    const bare = { 'bare-net': new Side(spec('bare-net')), 'bare-http': new Side(spec('bare-http')) };
    sides.push(bare['bare-net'], bare['bare-http']);
    await Promise.all([bare['bare-net'].next(30_000), bare['bare-http'].next(30_000)]);
    const windows: HealthWindow[] = [];
    for (let w = 0; w < options.windows * 2; w++) {
      const against = w % 2 === 0 ? 'bare-net' : 'bare-http';
      const side = bare[against];
      side.send({ type: 'run', on: true });
      await sleep(1000); // to its steady number of checks in flight
      const profile = w === 0 && options.profileDir !== undefined ? `${options.profileDir}/ebb-health.cpuprofile` : undefined;
      const [e, b] = await Promise.all([ebb.window(options.windowS * 1000, profile), side.window(options.windowS * 1000)]);
      side.send({ type: 'run', on: false });
      windows.push({ against, ebb: e, bare: b });
      const us = (r: WindowResult): string => (r.cpuUs / Math.max(1, r.checks)).toFixed(0);
      options.log(
        `  window ${w + 1}: ebb ${e.checks} checks, ${us(e)} µs CPU/check, event loop held up ${e.loopDelayMaxMs.toFixed(0)} ms at most; ` +
          `${against} ${b.checks} checks, ${us(b)} µs CPU/check, ${b.loopDelayMaxMs.toFixed(0)} ms; ratio ${(Number(us(e)) / Number(us(b))).toFixed(2)}`,
      );
      for (const [who, r] of [['ebb', e], [against, b]] as const) {
        if (r.topFailure !== undefined) options.log(`    ${who}: ${r.failures} failed, most often ${r.topFailure}`);
      }
      await sleep(500); // the bare loop's last checks end
    }
    for (const side of sides) side.send({ type: 'exit' });
    return { ready, windows };
  } finally {
    await sleep(200);
    for (const side of sides) stopChild(side.child);
    for (const b of backends) b.stop();
  }
}
