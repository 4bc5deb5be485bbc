/**
 * The control plane at scale (`npm run bench:control`, a few minutes), everything on 127.0.0.1:
 *
 * 1. Health checks: `BENCH_HEALTH_GROUPS` (100) groups of `BENCH_HEALTH_PER_GROUP` (100) targets,
 *    checked every 5 s (2,000 checks/s) by ebb's control plane and health checker, against a bare
 *    Node connect–GET–close loop doing the same checks at the same rate (net.connect and a written
 *    request; and node:http with no agent), each in a process of its own, ebb and one bare loop at
 *    the same time in each window: CPU µs per check and the ratio. Goal: ebb ≤ 1.2 × the bare loop.
 * 2. DescribeTargetHealth of 1,000 targets through the admin API of `ebb serve` (SQLite store),
 *    signed as the aws CLI signs: p50 and p99 over 50 calls. Goal: ≤ 20 ms.
 * 3. RegisterTargets, one new target per call, for 10 s against `ebb serve`, from 8 clients of 8
 *    keep-alive connections, each client on its own loopback address (ebb takes at most 8 requests
 *    at once from one address): calls/s and latency, every answered change checked after a SIGKILL
 *    and a restart. Goal: ≥ 1,000 calls/s, each durable before its answer.
 *
 * Env: BENCH_PARTS (health,describe,register), BENCH_HEALTH_SECONDS (5, one window),
 * BENCH_HEALTH_WINDOWS (4 per bare loop), BENCH_HEALTH_GROUPS, BENCH_HEALTH_PER_GROUP,
 * BENCH_HEALTH_INTERVAL (5), BENCH_DESCRIBE_TARGETS
 * (1000), BENCH_DESCRIBE_CALLS (50), BENCH_REGISTER_SECONDS (10), BENCH_REGISTER_CLIENTS (8),
 * BENCH_REGISTER_CONNECTIONS (8 per client),
 * BENCH_PROFILE_DIR (a CPU profile of ebb's first health-check window).
 */
import { mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { describeBench, registerBench, type DescribeResult, type RegisterResult } from './control-plane/admin-bench.ts';
import { healthBench, type HealthWindow } from './control-plane/health-bench.ts';
import type { WindowResult } from './control-plane/health-checker.ts';

const env = (name: string, fallback: number): number => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`);
  return v;
};
const PARTS = new Set((process.env['BENCH_PARTS'] ?? 'health,describe,register').split(',').map((p) => p.trim()));
const PROFILE_DIR = process.env['BENCH_PROFILE_DIR'];
/** The whole run is bounded: whatever is still going after this is a failure of the benchmark. */
const DEADLINE_MS = 20 * 60_000;

const log = (line: string): void => void process.stderr.write(`${line}\n`);
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const perCheck = (r: WindowResult): number => r.cpuUs / Math.max(1, r.checks);
const fixed = (n: number | null | undefined, digits = 1): string => (n === null || n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits));

async function health(): Promise<string[]> {
  const groups = env('BENCH_HEALTH_GROUPS', 100);
  const perGroup = env('BENCH_HEALTH_PER_GROUP', 100);
  const intervalS = env('BENCH_HEALTH_INTERVAL', 5);
  const windowS = env('BENCH_HEALTH_SECONDS', 5);
  const windows = env('BENCH_HEALTH_WINDOWS', 4);
  log(`health checks: ${groups} groups × ${perGroup} targets every ${intervalS} s (${((groups * perGroup) / intervalS).toFixed(0)} checks/s), ${windows} windows of ${windowS} s against each bare loop`);
  if (PROFILE_DIR !== undefined) mkdirSync(PROFILE_DIR, { recursive: true });
  const result = await healthBench({
    groups,
    perGroup,
    intervalS,
    backendPorts: Math.min(100, perGroup),
    windowS,
    windows,
    ...(PROFILE_DIR === undefined ? {} : { profileDir: PROFILE_DIR }),
    log,
  });
  // A window in which either process stood still for a second (this machine is shared, and its other
  // work can starve both) or finished fewer than half its checks measured something else than checking.
  const expected = ((groups * perGroup) / intervalS) * windowS;
  const disturbed = (w: HealthWindow): boolean =>
    [w.ebb, w.bare].some((r) => r.loopDelayMaxMs > 1000 || r.checks < expected / 2);
  const counted = (against: string): HealthWindow[] => {
    const all = result.windows.filter((w) => w.against === against);
    const calm = all.filter((w) => !disturbed(w));
    return calm.length > 0 ? calm : all;
  };
  const row = (name: string, against: 'bare-net' | 'bare-http'): string => {
    const ws = counted(against);
    const side = (pick: (w: HealthWindow) => WindowResult): string =>
      `${median(ws.map((w) => pick(w).checks / (pick(w).wallMs / 1000))).toFixed(0)} | ${median(ws.map((w) => perCheck(pick(w)))).toFixed(0)}`;
    const failed = ws.reduce((n, w) => n + w.ebb.failures + w.bare.failures, 0);
    return `| ${name} | ${ws.length} | ${side((w) => w.bare)} | ${side((w) => w.ebb)} | ${failed} | ${median(ws.map((w) => perCheck(w.ebb) / perCheck(w.bare))).toFixed(2)} |`;
  };
  const left = result.windows.filter(disturbed).length;
  return [
    `### Health checks: ${groups * perGroup} targets in ${groups} groups, every ${intervalS} s (medians over windows of ${windowS} s)`,
    '',
    'ebb and one bare loop check at the same time, each in its own process, each measuring its own CPU.' +
      (left === 0 ? '' : ` ${left} of ${result.windows.length} windows were left out: a process stood still for over a second, or finished under half its checks.`),
    '',
    '| bare loop | windows | its checks/s | its CPU µs/check | ebb checks/s | ebb CPU µs/check | failed | ebb ÷ bare |',
    '|---|---|---|---|---|---|---|---|',
    row('net.connect, GET, close', 'bare-net'),
    row('node:http, no agent', 'bare-http'),
    '',
    `Goal: ebb ≤ 1.2 × the bare loop. ebb registered its targets across one interval (a group every ${((intervalS * 1000) / groups).toFixed(0)} ms); ` +
      `${result.ready.healthy ?? 0} were healthy ${fixed((result.ready.settleMs ?? NaN) / 1000)} s after the first registration, which took ` +
      `${fixed((result.ready.settleCpuUs ?? NaN) / 1e6)} s of CPU; ebb's heap ${fixed(median(result.windows.map((w) => w.ebb.heapMiB)), 0)} MiB.`,
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
    `### RegisterTargets, one new target per call (ebb serve, SQLite store, ${r.clients} clients × ${r.connections} connections, ${r.seconds.toFixed(1)} s)`,
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
    out.push(...registerLines(await registerBench({ clients: env('BENCH_REGISTER_CLIENTS', 8), connections: env('BENCH_REGISTER_CONNECTIONS', 8), seconds: env('BENCH_REGISTER_SECONDS', 10) })), '');
  }
  console.log(`\n${out.join('\n')}`);
}

await main();
