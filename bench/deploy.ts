/**
 * `npm run bench:deploy`: the same zero-downtime deploy done two ways, in one run, under the same
 * load, counting what a client sees.
 *
 * - ebb: an Auto Scaling group of three instances of examples/deploy/app.mjs behind ebb's listener,
 *   rolled from version 1 to 2 by an instance refresh, then to 3…, all through the aws CLI
 *   (bench/deploy/ebb-half.ts).
 * - PM2: the same app, three workers in cluster mode with PM2's recommended graceful setup, rolled by
 *   `pm2 reload --update-env` (bench/deploy/pm2-half.ts). The load connects straight to the workers:
 *   PM2 puts no load balancer in front of them.
 *
 * The load (bench/deploy/load.ts): BENCH_CONNECTIONS keep-alive clients, no retries, every request
 * counted ok (2xx and `version N`) or failed (refused, reset, non-2xx, timeout). It runs
 * BENCH_SECONDS before the first deploy, during each, and BENCH_SECONDS after each; BENCH_ROUNDS
 * deploys in a row, since a failure that depends on timing may or may not happen in a single one.
 * Each tool's start, every deploy and the stop are bounded (60 s each); at the end every process a
 * tool started is checked by pid.
 *
 * Env: BENCH_SECONDS (default 5), BENCH_ROUNDS (default 3), BENCH_CONNECTIONS (default 16), BENCH_DELAY_MS (the app's answer
 * delay, default 20), BENCH_ONLY (`ebb` or `pm2`: run one side), BENCH_KEEP=1 (keep each side's
 * directory: ebb's log and state with the instances' output, PM2_HOME with PM2's logs).
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ebbHalf, INSTANCE_WARMUP } from './deploy/ebb-half.ts';
import type { DeployHalf, DeployOutcome, HalfSettings, Teardown } from './deploy/half.ts';
import { describeSecond, describeWindow, Load, type LoadReport, type WindowReport } from './deploy/load.ts';
import { pm2Half } from './deploy/pm2-half.ts';
import { sleep } from './deploy/processes.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const DELAY_MS = Number(process.env.BENCH_DELAY_MS ?? 20);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ONLY = process.env.BENCH_ONLY ?? '';
const KEEP = process.env.BENCH_KEEP === '1';
const INSTANCES = 3;
/** The second PM2 run: the app keeps idle keep-alive connections this long when stopping (app.mjs APP_DRAIN_MS). */
const PM2_APP_DRAIN_MS = 2000;
const PHASE_MS = 60_000;
const root = fileURLToPath(new URL('..', import.meta.url));

interface Outcome {
  readonly half: DeployHalf;
  readonly report: LoadReport | null;
  /** Every deploy that finished, one a round. */
  readonly deploys: readonly DeployOutcome[];
  /** The deploy windows of every round, counted as one. */
  readonly during: WindowReport | undefined;
  readonly teardown: Teardown;
  readonly error: string | null;
}

const t0 = performance.now();
const log = (tool: string) => (line: string) => process.stderr.write(`[${tool} ${((performance.now() - t0) / 1000).toFixed(1)}s] ${line}\n`);

async function measure(make: (settings: HalfSettings) => DeployHalf, name: string): Promise<Outcome> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `ebb-bench-deploy-${name}-`));
  const half = make({ root, dir, instances: INSTANCES, delayMs: DELAY_MS, marker: randomUUID(), phaseMs: PHASE_MS, log: log(name) });
  let load: Load | null = null;
  let report: LoadReport | null = null;
  const deploys: DeployOutcome[] = [];
  let error: string | null = null;
  try {
    const url = await half.setup();
    log(name)(`load: ${CONNECTIONS} keep-alive clients on ${url}, ${SECONDS} s before the first deploy`);
    load = new Load({ url, connections: CONNECTIONS });
    await sleep(SECONDS * 1000);
    for (let round = 1; round <= ROUNDS; round++) {
      load.window(`deploy ${round}`);
      const deploy = await half.deploy(round + 1);
      deploys.push(deploy);
      log(name)(`deploy ${round} (to version ${round + 1}): ${deploy.detail}`);
      load.window(`after ${round}`);
      await sleep(SECONDS * 1000);
    }
  } catch (e) {
    error = (e as Error).message;
    log(name)(`failed: ${error}`);
  }
  let during: WindowReport | undefined;
  if (load !== null) {
    report = await load.stop();
    during = load.merged('deploy ');
  }
  const teardown = await half.teardown();
  if (KEEP) log(name)(`kept ${dir} (BENCH_KEEP)`);
  else fs.rmSync(dir, { recursive: true, force: true });
  return { half, report, during, deploys, teardown, error };
}

const windowNamed = (r: LoadReport | null, name: string): WindowReport | undefined => r?.windows.find((w) => w.name === name);

/** Versions that answered before the first deploy and after the last, which should be only 1 and only ROUNDS + 1. */
function versionCheck(r: LoadReport | null): string {
  if (r === null) return 'no load ran';
  const seen = (from: number, to: number): string[] =>
    [...new Set(r.seconds.filter((s) => s.second >= Math.floor(from) && s.second < Math.floor(to)).flatMap((s) => Object.keys(s.versions)))].sort();
  const before = windowNamed(r, 'load');
  const after = r.windows.at(-1);
  const b = before === undefined ? [] : seen(before.from, before.to);
  // The first second after a deploy may hold answers sent before the tool said it was done.
  const a = after === undefined || !after.name.startsWith('after') ? [] : seen(after.from + 1, after.to);
  return `versions answering before the first deploy: ${b.join(', ') || '-'}; in the full seconds after the last: ${a.join(', ') || '-'}`;
}

const seconds = (xs: readonly number[]): string => (xs.length === 0 ? '-' : xs.map((x) => x.toFixed(1)).join(' / '));

function row(o: Outcome): string {
  const t = o.report?.total;
  const failedDeploy = o.deploys.length < ROUNDS ? ` (${o.error === null ? 'not run' : 'failed'})` : '';
  const cells = [
    o.half.tool,
    t === undefined ? '-' : String(t.requests),
    t === undefined ? '-' : String(t.failed),
    t === undefined || t.requests === 0 ? '-' : `${((100 * t.failed) / t.requests).toFixed(3)} %`,
    o.during === undefined ? '-' : o.during.p99.toFixed(1),
    `${seconds(o.deploys.map((d) => d.ownSeconds))}${failedDeploy}`,
    seconds(o.deploys.map((d) => d.seconds)),
    String(o.teardown.leftovers.length),
  ];
  return `| ${cells.join(' | ')} |`;
}

function details(o: Outcome): string {
  const lines = [`\n${o.half.tool}: ${o.half.traffic}`];
  if (o.error !== null) lines.push(`  FAILED: ${o.error.replaceAll('\n', '\n    ')}`);
  o.deploys.forEach((d, n) => lines.push(`  deploy ${n + 1}: ${d.detail}`));
  if (o.report !== null) {
    for (const w of o.report.windows) lines.push(`  ${describeWindow(w)}`);
    if (o.during !== undefined && ROUNDS > 1) lines.push(`  ${describeWindow({ ...o.during, name: 'the deploys together' })}`);
    lines.push(`  ${versionCheck(o.report)}`);
    lines.push('  answers per second of the load:');
    for (const s of o.report.seconds) lines.push(`  ${describeSecond(s)}`);
  }
  lines.push(`  stop: ${o.teardown.detail.replaceAll('\n', '\n    ')}`);
  for (const l of o.teardown.leftovers) lines.push(`  LEFT RUNNING (stopped by the benchmark): ${l}`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  process.stderr.write(
    `bench:deploy: ${INSTANCES} instances of examples/deploy/app.mjs (answers after ${DELAY_MS} ms), ` +
      `${CONNECTIONS} keep-alive clients, ${ROUNDS} deploys each, ${SECONDS} s of load before the first and after each\n`,
  );
  const outcomes: Outcome[] = [];
  if (ONLY === '' || ONLY === 'ebb') outcomes.push(await measure(ebbHalf, 'ebb'));
  if (ONLY === '' || ONLY === 'pm2') {
    outcomes.push(await measure((s) => pm2Half(s), 'pm2'));
    outcomes.push(await measure((s) => pm2Half(s, PM2_APP_DRAIN_MS), 'pm2-drain'));
  }

  console.log(
    `\nZero-downtime deploys, ${ROUNDS} in a row (version 1 → ${ROUNDS + 1}) of ${INSTANCES} instances, ` +
      `${CONNECTIONS} keep-alive clients without retries; deploy times are per deploy`,
  );
  console.log('| tool | requests | failed | failed % | p99 during the deploys (ms) | deploy time (s) | with CLI calls (s) | processes left |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const o of outcomes) console.log(row(o));
  for (const o of outcomes) console.log(details(o));
  const ran = (tool: string): boolean => outcomes.some((o) => o.half.tool.startsWith(tool));
  if (ran('ebb')) {
    console.log(
      `\nebb: instance refresh with MinHealthyPercentage 100, MaxHealthyPercentage 200, InstanceWarmup ${INSTANCE_WARMUP} s ` +
        '(three new instances launched at once; each old one drains and stops once a new one is healthy and warmed up). Deploy time is the refresh\'s own ' +
        'StartTime to EndTime; "with CLI calls" runs from create-launch-template-version to describe-instance-refreshes ' +
        'saying Successful, each aws CLI call (a Python process) on this same machine.',
    );
  }
  if (ran('PM2')) {
    console.log(
      '\nPM2: pm2 reload (cluster mode, wait_ready, SIGINT handled, kill_timeout 10 s); deploy time is how long pm2 reload ran. ' +
        'PM2 has no load balancer: clients connect straight to the workers. With the app as PM2 documents it, a stopping worker ' +
        "closes its idle keep-alive connections at once (Node's server.close()), and a client sending on one at that instant gets " +
        `a reset (a client that retries would hide it; these do not). The second PM2 run has the app keep them up to ${PM2_APP_DRAIN_MS} ms ` +
        'until an answer closes each (APP_DRAIN_MS): the draining ebb does in front of its instances, written into the app.',
    );
  }
  if (outcomes.some((o) => o.error !== null || o.teardown.leftovers.length > 0)) process.exitCode = 1;
}

await main();
