/**
 * `npm run bench:deploy`: the same zero-downtime deploy done two ways, in one run, under the same
 * load, counting what a client sees.
 *
 * - ebb: an Auto Scaling group of three instances of examples/deploy/app.mjs behind ebb's listener,
 *   rolled from version 1 to 2 by an instance refresh, all through the aws CLI (bench/deploy/ebb-half.ts).
 * - PM2: the same app, three workers in cluster mode with PM2's recommended graceful setup, rolled by
 *   `pm2 reload --update-env` (bench/deploy/pm2-half.ts). The load connects straight to the workers:
 *   PM2 puts no load balancer in front of them.
 *
 * The load (bench/deploy/load.ts): BENCH_CONNECTIONS keep-alive clients, no retries, every request
 * counted ok (2xx and `version N`) or failed (refused, reset, non-2xx, timeout). It runs
 * BENCH_SECONDS before the deploy, during it, and BENCH_SECONDS after. Each tool's start, deploy and
 * stop are bounded (60 s each); at the end every process a tool started is checked by pid.
 *
 * Env: BENCH_SECONDS (default 5), BENCH_CONNECTIONS (default 16), BENCH_DELAY_MS (the app's answer
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
  readonly deploy: DeployOutcome | null;
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
  let deploy: DeployOutcome | null = null;
  let error: string | null = null;
  try {
    const url = await half.setup();
    log(name)(`load: ${CONNECTIONS} keep-alive clients on ${url}, ${SECONDS} s before the deploy`);
    load = new Load({ url, connections: CONNECTIONS });
    await sleep(SECONDS * 1000);
    load.window('deploy');
    deploy = await half.deploy();
    log(name)(deploy.detail);
    load.window('after');
    await sleep(SECONDS * 1000);
  } catch (e) {
    error = (e as Error).message;
    log(name)(`failed: ${error}`);
  }
  if (load !== null) report = await load.stop();
  const teardown = await half.teardown();
  if (KEEP) log(name)(`kept ${dir} (BENCH_KEEP)`);
  else fs.rmSync(dir, { recursive: true, force: true });
  return { half, report, deploy, teardown, error };
}

const windowNamed = (r: LoadReport | null, name: string): WindowReport | undefined => r?.windows.find((w) => w.name === name);

/** Versions that answered before and after the deploy, which should be only 1 and only 2. */
function versionCheck(r: LoadReport | null): string {
  if (r === null) return 'no load ran';
  const seen = (from: number, to: number): string[] =>
    [...new Set(r.seconds.filter((s) => s.second >= Math.floor(from) && s.second < Math.floor(to)).flatMap((s) => Object.keys(s.versions)))].sort();
  const before = windowNamed(r, 'load');
  const after = windowNamed(r, 'after');
  const b = before === undefined ? [] : seen(before.from, before.to);
  // The first second after the deploy may hold answers sent before the tool said it was done.
  const a = after === undefined ? [] : seen(after.from + 1, after.to);
  return `versions answering before the deploy: ${b.join(', ') || '-'}; in the after window's full seconds: ${a.join(', ') || '-'}`;
}

function row(o: Outcome): string {
  const t = o.report?.total;
  const during = windowNamed(o.report, 'deploy');
  const cells = [
    o.half.tool,
    t === undefined ? '-' : String(t.requests),
    t === undefined ? '-' : String(t.failed),
    t === undefined || t.requests === 0 ? '-' : `${((100 * t.failed) / t.requests).toFixed(3)} %`,
    during === undefined ? '-' : during.p99.toFixed(1),
    o.deploy === null ? `- (${o.error === null ? 'not run' : 'failed'})` : o.deploy.ownSeconds.toFixed(1),
    o.deploy === null ? '-' : o.deploy.seconds.toFixed(1),
    String(o.teardown.leftovers.length),
  ];
  return `| ${cells.join(' | ')} |`;
}

function details(o: Outcome): string {
  const lines = [`\n${o.half.tool}: ${o.half.traffic}`];
  if (o.error !== null) lines.push(`  FAILED: ${o.error.replaceAll('\n', '\n    ')}`);
  if (o.deploy !== null) lines.push(`  deploy: ${o.deploy.detail}`);
  if (o.report !== null) {
    for (const w of o.report.windows) lines.push(`  ${describeWindow(w)}`);
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
      `${CONNECTIONS} keep-alive clients, ${SECONDS} s of load before and after each deploy\n`,
  );
  const outcomes: Outcome[] = [];
  if (ONLY === '' || ONLY === 'ebb') outcomes.push(await measure(ebbHalf, 'ebb'));
  if (ONLY === '' || ONLY === 'pm2') {
    outcomes.push(await measure((s) => pm2Half(s), 'pm2'));
    outcomes.push(await measure((s) => pm2Half(s, PM2_APP_DRAIN_MS), 'pm2-drain'));
  }

  console.log(`\nZero-downtime deploy, version 1 → 2 of ${INSTANCES} instances, ${CONNECTIONS} keep-alive clients without retries`);
  console.log('| tool | requests | failed | failed % | p99 during deploy (ms) | deploy time (s) | with CLI calls (s) | processes left |');
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
