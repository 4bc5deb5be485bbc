/**
 * The health-check half of the control-plane benchmark: one backends process (health-backends.ts),
 * then, round after round, each side (health-checker.ts) in a process of its own, one at a time, so
 * that each measures its own CPU on the same backends in the same run.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { HealthMode, HealthRunResult, HealthRunSpec } from './health-checker.ts';

const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));

export interface HealthBenchOptions {
  readonly groups: number;
  readonly perGroup: number;
  readonly intervalS: number;
  readonly backendPorts: number;
  readonly measureS: number;
  readonly rounds: number;
  readonly modes: readonly HealthMode[];
  /** A directory to write each ebb window's CPU profile to. */
  readonly profileDir?: string;
  readonly log: (line: string) => void;
}

interface Backends {
  readonly ports: number[];
  stop(): void;
}

async function startBackends(count: number): Promise<Backends> {
  const child = spawn(process.execPath, ['--import', 'tsx', here('./health-backends.ts'), String(count)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start the health-check backends');
  const stop = (): void => {
    if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGTERM');
  };
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

function runSide(spec: HealthRunSpec, timeoutMs: number): Promise<HealthRunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', here('./health-checker.ts'), JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pid = child.pid;
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => (out += chunk));
    const timer = setTimeout(() => {
      if (pid !== undefined) process.kill(pid, 'SIGKILL');
      reject(new Error(`the ${spec.mode} side did not finish within ${Math.round(timeoutMs / 1000)} s`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as HealthRunResult);
      } catch {
        reject(new Error(`the ${spec.mode} side exited (${String(code)}) without a result: ${out.slice(-500)}`));
      }
    });
  });
}

export async function healthBench(options: HealthBenchOptions): Promise<HealthRunResult[][]> {
  const backends = await startBackends(options.backendPorts);
  try {
    const rounds: HealthRunResult[][] = [];
    for (let r = 0; r < options.rounds; r++) {
      const round: HealthRunResult[] = [];
      for (const mode of options.modes) {
        const ebb = mode === 'ebb';
        // ebb registers its groups across one interval, then needs two intervals to find them healthy.
        const warmupS = ebb ? 4 * options.intervalS : 3;
        const spec: HealthRunSpec = {
          mode,
          ports: backends.ports,
          groups: options.groups,
          perGroup: options.perGroup,
          intervalS: options.intervalS,
          warmupS,
          measureS: options.measureS,
          ...(ebb && options.profileDir !== undefined ? { profile: `${options.profileDir}/ebb-health-round${r + 1}.cpuprofile` } : {}),
        };
        const result = await runSide(spec, (warmupS + options.measureS + 20 * options.intervalS + 60) * 1000);
        options.log(
          `  round ${r + 1} ${mode}: ${result.checks} checks in ${(result.wallMs / 1000).toFixed(1)} s, ` +
            `${(result.cpuUs / Math.max(1, result.checks)).toFixed(0)} µs CPU/check, ${result.failures} failed` +
            (result.settleMs === undefined ? '' : `, all healthy after ${(result.settleMs / 1000).toFixed(1)} s (${((result.settleCpuUs ?? 0) / 1e6).toFixed(1)} s CPU)`),
        );
        round.push(result);
      }
      rounds.push(round);
    }
    return rounds;
  } finally {
    backends.stop();
  }
}
