/**
 * The control plane at scale (`npm run bench:control`, a few minutes), everything on 127.0.0.1:
 *
 * 1. Health checks: `BENCH_HEALTH_GROUPS` (100) groups of `BENCH_HEALTH_PER_GROUP` (100) targets,
 *    checked every 5 s (2,000 checks/s) by ebb's control plane and health checker, against a bare
 *    Node connect–GET–close loop doing the same checks at the same rate (net.connect and a written
 *    request; and node:http with no agent), each in a process of its own, in turns, in the same run:
 *    CPU µs per check and the ratio. Goal: ebb ≤ 1.2 × the bare loop.
 * 2. DescribeTargetHealth of 1,000 targets through the admin API of `ebb serve` (SQLite store),
 *    signed as the aws CLI signs: p50 and p99 over 50 calls. Goal: ≤ 20 ms.
 * 3. RegisterTargets, one new target per call, from 64 keep-alive connections for 10 s against
 *    `ebb serve`: calls/s and latency, every answered change checked after a SIGKILL and a restart.
 *    Goal: ≥ 1,000 calls/s, each durable before its answer.
 *
 * Env: BENCH_PARTS (health,describe,register), BENCH_ROUNDS (2), BENCH_HEALTH_SECONDS (10),
 * BENCH_HEALTH_GROUPS, BENCH_HEALTH_PER_GROUP, BENCH_HEALTH_INTERVAL (5), BENCH_DESCRIBE_TARGETS
 * (1000), BENCH_DESCRIBE_CALLS (50), BENCH_REGISTER_SECONDS (10), BENCH_REGISTER_CONNECTIONS (64),
 * BENCH_PROFILE_DIR (CPU profiles of ebb's health-check windows).
 */
import { mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { describeBench, registerBench, type DescribeResult, type RegisterResult } from './control-plane/admin-bench.ts';
import { healthBench } from './control-plane/health-bench.ts';
import type { HealthRunResult } from './control-plane/health-checker.ts';

const env = (name: string, fallback: number): number => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`);
  return v;
};
const PARTS = new Set((process.env['BENCH_PARTS'] ?? 'health,describe,register').split(',').map((p) => p.trim()));
const ROUNDS = env('BENCH_ROUNDS', 2);
const PROFILE_DIR = process.env['BENCH_PROFILE_DIR'];
/** The whole run is bounded: whatever is still going after this is a failure of the benchmark. */
const DEADLINE_MS = 20 * 60_000;

const log = (line: string): void => void process.stderr.write(`${line}\n`);
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const perCheck = (r: HealthRunResult | undefined): number => (r === undefined ? NaN : r.cpuUs / Math.max(1, r.checks));
const fixed = (n: number | null | undefined, digits = 1): string => (n === null || n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits));

async function health(): Promise<string[]> {
  const groups = env('BENCH_HEALTH_GROUPS', 100);
  const perGroup = env('BENCH_HEALTH_PER_GROUP', 100);
  const intervalS = env('BENCH_HEALTH_INTERVAL', 5);
  const measureS = env('BENCH_HEALTH_SECONDS', 10);
  log(`health checks: ${groups} groups × ${perGroup} targets every ${intervalS} s (${((groups * perGroup) / intervalS).toFixed(0)} checks/s), ${ROUNDS} rounds of ${measureS} s per side`);
  if (PROFILE_DIR !== undefined) mkdirSync(PROFILE_DIR, { recursive: true });
  const rounds = await healthBench({
    groups,
    perGroup,
    intervalS,
    backendPorts: Math.min(100, perGroup),
    measureS,
    rounds: ROUNDS,
    modes: ['bare-net', 'bare-http', 'ebb'],
    ...(PROFILE_DIR === undefined ? {} : { profileDir: PROFILE_DIR }),
    log,
  });
  const side = (mode: string): HealthRunResult[] => rounds.map((r) => r.find((x) => x.mode === mode)).filter((x): x is HealthRunResult => x !== undefined);
  const ratioTo = (mode: string): number => median(rounds.map((r) => perCheck(r.find((x) => x.mode === 'ebb')) / perCheck(r.find((x) => x.mode === mode))));
  const row = (name: string, mode: string, ratio: string): string => {
    const rs = side(mode);
    const checks = median(rs.map((r) => r.checks / (r.wallMs / 1000)));
    return `| ${name} | ${checks.toFixed(0)} | ${median(rs.map(perCheck)).toFixed(0)} | ${median(rs.map((r) => r.cpuUs / r.wallMs / 10)).toFixed(1)} | ${rs.reduce((a, r) => a + r.failures, 0)} | ${ratio} |`;
  };
  const ebb = side('ebb');
  return [
    `### Health checks: ${groups * perGroup} targets in ${groups} groups, every ${intervalS} s (medians of ${ROUNDS} rounds × ${measureS} s)`,
    '',
    '| checker | checks/s | CPU µs/check | CPU % of a core | failed | ebb ÷ this |',
    '|---|---|---|---|---|---|',
    row('bare loop: net.connect, GET, close', 'bare-net', fixed(ratioTo('bare-net'), 2)),
    row('bare loop: node:http, no agent', 'bare-http', fixed(ratioTo('bare-http'), 2)),
    row('ebb: control plane + ActiveHealthChecker', 'ebb', '1.00'),
    '',
    `Goal: ebb ≤ 1.2 × the bare loop. ebb registered its targets across one interval; all were healthy after ` +
      `${fixed(median(ebb.map((r) => (r.settleMs ?? NaN) / 1000)))} s, which took ${fixed(median(ebb.map((r) => (r.settleCpuUs ?? NaN) / 1e6)))} s of CPU; ` +
      `heap at the end ${fixed(median(ebb.map((r) => r.heapMiB)), 0)} MiB.`,
  ];
}

function describeLines(r: DescribeResult): string[] {
  return [
    `### DescribeTargetHealth of ${r.targets} targets (ebb serve, SQLite store, signed calls one after another)`,
    '',
    '| calls | p50 ms | p99 ms | max ms | ebb CPU ms/call | answer KiB |',
    '|---|---|---|---|---|---|',
    `| ${r.latency.count} | ${fixed(r.latency.p50, 2)} | ${fixed(r.latency.p99, 2)} | ${fixed(r.latency.max, 2)} | ${fixed(r.cpuUsPerCall === null ? null : r.cpuUsPerCall / 1000, 2)} | ${fixed(r.bytes / 1024, 0)} |`,
    '',
    'Goal: ≤ 20 ms.',
  ];
}

function registerLines(r: RegisterResult): string[] {
  return [
    `### RegisterTargets, one new target per call (ebb serve, SQLite store, ${r.connections} connections, ${r.seconds.toFixed(1)} s)`,
    '',
    '| calls/s | answered | errors | p50 ms | p99 ms | max ms | ebb CPU µs/call | lost after SIGKILL |',
    '|---|---|---|---|---|---|---|---|',
    `| ${r.callsPerSecond.toFixed(0)} | ${r.answered} | ${r.errors} | ${fixed(r.latency.p50, 2)} | ${fixed(r.latency.p99, 2)} | ${fixed(r.latency.max, 2)} | ${fixed(r.cpuUsPerCall, 0)} | ${r.lostAfterKill} of ${r.answered} (${r.foundAfterKill} found) |`,
    '',
    `Goal: ≥ 1,000 calls/s, every answered change durable.${r.firstError === undefined ? '' : ` First error: ${r.firstError}`}`,
  ];
}

async function main(): Promise<void> {
  const watchdog = setTimeout(() => {
    log(`bench:control: still running after ${DEADLINE_MS / 60_000} minutes; giving up`);
    process.exit(2);
  }, DEADLINE_MS);
  watchdog.unref();
  log(`bench:control on ${cpus().length} cores, Node ${process.version}`);
  const out: string[] = [];
  if (PARTS.has('health')) out.push(...(await health()), '');
  if (PARTS.has('describe')) {
    log('DescribeTargetHealth ...');
    out.push(...describeLines(await describeBench({ targets: env('BENCH_DESCRIBE_TARGETS', 1000), calls: env('BENCH_DESCRIBE_CALLS', 50) })), '');
  }
  if (PARTS.has('register')) {
    log('RegisterTargets ...');
    out.push(...registerLines(await registerBench({ connections: env('BENCH_REGISTER_CONNECTIONS', 64), seconds: env('BENCH_REGISTER_SECONDS', 10) })), '');
  }
  console.log(`\n${out.join('\n')}`);
}

await main();
