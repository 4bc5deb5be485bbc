/**
 * Interleaved rounds: for each connection count, round after round, every target once, so drift on
 * the machine (another process, a warmer page cache) falls on all targets alike. Each round starts
 * at a different target, so no target is always the one measured first. The CPU of each target's
 * whole process group is read from /proc just before and after its wrk window.
 */
import fs from 'node:fs';
import path from 'node:path';
import { clockTicksPerSecond, groupCpuSplit, groupPeakRss, type GroupMemory } from './proc.ts';
import type { Target } from './servers.ts';
import { parseWrk, runWrk } from './wrk.ts';

export interface Sample {
  readonly target: string;
  readonly connections: number;
  readonly round: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly requests: number;
  readonly errors: number;
  /** The target group's CPU seconds over the window. */
  readonly cpuSeconds: number;
  /** Of those, its first process's (ebb's own process beside its workers; all of a one-process group). */
  readonly leaderCpuSeconds: number;
}

export interface RoundPlan {
  readonly connections: readonly number[];
  readonly rounds: number;
  readonly seconds: number;
  /** Warm-up windows of 1 s per target and connection count (0: none). */
  readonly warmupWindows: number;
  /** Where wrk runs (`taskset -c`), or null. */
  readonly loadCpus: string | null;
  readonly ticksPerSecond: number;
  /** Where each window's wrk output is written (the work directory, kept with --keep). */
  readonly outputDir: string;
  /** Every request on a new connection (`Connection: close`). */
  readonly newConnections: boolean;
}

const log = (line: string): void => void process.stderr.write(`${line}\n`);

export async function measureOnce(target: Target, connections: number, round: number, plan: RoundPlan): Promise<Sample> {
  const before = groupCpuSplit(target.group.pgid);
  const output = await runWrk(`http://127.0.0.1:${target.port}/`, connections, plan.seconds, plan.loadCpus, plan.newConnections);
  const after = groupCpuSplit(target.group.pgid);
  target.group.assertRunning();
  fs.writeFileSync(path.join(plan.outputDir, `wrk.${target.name.replace(/[^\w.-]+/g, '_')}.c${connections}.r${round}.txt`), output);
  const wrk = parseWrk(output);
  if (!Number.isFinite(wrk.requestsPerSecond)) throw new Error(`wrk printed no result for ${target.name}:\n${output}`);
  const seconds = (ticks: number): number => ticks / plan.ticksPerSecond;
  return { target: target.name, connections, round, ...wrk, cpuSeconds: seconds(after.total - before.total), leaderCpuSeconds: seconds(after.leader - before.leader) };
}

/**
 * Each target, at each connection count the rounds use, in windows of a second: every window opens
 * its connections afresh, as every round does, so a round's first second is not also the target's
 * first pass through connection setup at that count (docs/benchmarks.md: ebb's first such window at
 * 256 connections stood apart from all later ones).
 */
export async function warmUp(targets: readonly Target[], plan: RoundPlan): Promise<void> {
  const windows = plan.warmupWindows;
  if (windows <= 0) return;
  log(`# warm-up: ${windows} window${windows === 1 ? '' : 's'} of 1 s per target and connection count`);
  for (const t of targets) {
    for (const connections of plan.connections) {
      for (let i = 0; i < windows; i++) await runWrk(`http://127.0.0.1:${t.port}/`, connections, 1, plan.loadCpus, plan.newConnections);
    }
  }
}

export async function interleavedRounds(targets: readonly Target[], plan: RoundPlan): Promise<Sample[]> {
  const samples: Sample[] = [];
  for (const connections of plan.connections) {
    for (let round = 1; round <= plan.rounds; round++) {
      for (let i = 0; i < targets.length; i++) {
        const target = targets[(i + round - 1) % targets.length];
        if (target === undefined) continue;
        const s = await measureOnce(target, connections, round, plan);
        samples.push(s);
        log(`  ${target.name.padEnd(18)} c=${String(connections).padEnd(4)} r=${round}  ${s.requestsPerSecond.toFixed(0)} req/s  p99 ${s.p99Ms.toFixed(2)} ms  max ${s.maxMs.toFixed(1)} ms  ${s.errors} errors`);
      }
    }
  }
  return samples;
}

/**
 * The whole measurement both tables make: the warm-up, the interleaved rounds, then each target's
 * peak memory over the run. `loadCpus` is where wrk runs (null: unpinned).
 */
export async function measureTargets(
  targets: readonly Target[],
  options: Pick<RoundPlan, 'connections' | 'rounds' | 'seconds' | 'warmupWindows' | 'newConnections'>,
  loadCpus: string | null,
  outputDir: string,
): Promise<{ samples: Sample[]; memory: Map<string, GroupMemory> }> {
  const plan: RoundPlan = {
    connections: options.connections,
    rounds: options.rounds,
    seconds: options.seconds,
    warmupWindows: options.warmupWindows,
    loadCpus,
    ticksPerSecond: clockTicksPerSecond(),
    outputDir,
    newConnections: options.newConnections,
  };
  await warmUp(targets, plan);
  const samples = await interleavedRounds(targets, plan);
  return { samples, memory: new Map(targets.map((t) => [t.name, groupPeakRss(t.group.pgid)])) };
}
