/**
 * `npm run bench -- --workers [N]`: ebb serve --workers 1 against --workers N, and HAProxy nbthread 1
 * against nbthread N as the yardstick of what this machine lets any proxy gain, in the same
 * interleaved rounds. Each row's "× its 1" is the median of its req/s over its one-process row's in
 * the same round; the goal is ≥ 0.85 × N.
 *
 * The proxies get CPUs 1..N and wrk and the backend CPU 0 only when the machine has a core to spare
 * beyond N; otherwise everything runs unpinned, and the table says that the load generator and the
 * backend then take cores the workers would need.
 */
import os from 'node:os';
import { measureTargets } from './measure.ts';
import type { RunOptions } from './options.ts';
import { freePort } from './processes.ts';
import { buildEbb, findExecutable, startBackend, startEbb, startHaproxy, type Placement, type Target } from './servers.ts';
import { ebbHasWorkersOption, machineLine, requireWrk } from './setup.ts';
import { scalingTable, summarise } from './table.ts';

const log = (line: string): void => void process.stderr.write(`${line}\n`);

function scalingPlacement(options: RunOptions): { placement: Placement; note: string } {
  const cores = os.cpus().length;
  const n = options.maxWorkers;
  if (!options.pin) return { placement: { proxy: null, load: null }, note: 'unpinned (--no-pin)' };
  if (cores >= n + 1 && findExecutable('taskset') !== null) {
    return { placement: { proxy: `1-${n}`, load: '0' }, note: `proxies on CPUs 1-${n}, wrk and the backend on CPU 0 (taskset)` };
  }
  return {
    placement: { proxy: null, load: null },
    note:
      `unpinned: ${cores} CPUs leave none free beside ${n} workers, so wrk and the backend take CPU the workers would need; ` +
      `the gain shown is what this machine allows, not what ebb would reach with free cores (HAProxy's rows show the same limit)`,
  };
}

export async function scaling(options: RunOptions, work: string): Promise<number> {
  if (!ebbHasWorkersOption()) {
    console.error(
      'bench --workers: this ebb has no --workers option (ebb serve runs one process), so there is no scaling to measure.\n' +
        'It needs `ebb serve --workers N` (src/main/options.ts); the per-core table runs without it: npm run bench',
    );
    return 3;
  }
  requireWrk();
  const n = options.maxWorkers;
  const { placement: cpus, note } = scalingPlacement(options);
  log(machineLine());
  const build = buildEbb(options.fromSource, options.node);
  const backendPort = await freePort();
  await startBackend(work, backendPort, cpus.load);
  const targets: Target[] = [];
  const units = new Map<string, number>();
  for (const workers of [1, n]) {
    const [port, adminPort] = await Promise.all([freePort(), freePort()]);
    const name = `ebb --workers ${workers}`;
    const ebb = await startEbb({ name: `ebb-w${workers}`, port, adminPort, backendPort, accessLog: options.accessLog, workers, build, nodeFlags: options.nodeFlags }, work, cpus.proxy);
    targets.push({ ...ebb, name });
    units.set(name, workers);
  }
  for (const threads of [1, n]) {
    const name = `haproxy nbthread ${threads}`;
    const haproxy = await startHaproxy(work, `haproxy-t${threads}`, await freePort(), backendPort, threads, cpus.proxy);
    if (haproxy !== null) targets.push({ ...haproxy, name });
    units.set(name, threads);
  }

  log(`# ${targets.map((t) => t.name).join(', ')}; connections ${options.connections.join(', ')}; ${options.rounds} rounds of ${options.seconds} s`);
  const { samples, memory } = await measureTargets(targets, options, cpus.load, work);
  const ebbRows = summarise(samples.filter((s) => s.target.startsWith('ebb')), 'ebb --workers 1', memory);
  const haproxyRows = summarise(samples.filter((s) => s.target.startsWith('haproxy')), 'haproxy nbthread 1', memory);

  console.log(`\n${machineLine()}`);
  console.log(`# GET / -> "ok\\n" from nginx (1 worker); wrk -t1 --latency; ${options.rounds} interleaved rounds of ${options.seconds} s; medians`);
  console.log(`# ${note}`);
  console.log(`# ebb: every feature on (its defaults), metrics on, access log ${options.accessLog ? 'on' : 'off'}; ${build.note}${options.nodeFlags.length > 0 ? `; node ${options.nodeFlags.join(' ')}` : ''}`);
  console.log('# peak RSS: VmHWM summed over the group (the control plane and its workers), and the largest single process\'s');
  console.log(`\n${scalingTable([...ebbRows, ...haproxyRows], units)}\n`);
  for (const c of options.connections) {
    const ebb = ebbRows.find((r) => r.connections === c && r.target === `ebb --workers ${n}`);
    const hap = haproxyRows.find((r) => r.connections === c && r.target === `haproxy nbthread ${n}`);
    console.log(
      `at ${c} connections: ebb ${n} workers = ${ebb?.rpsRatio.toFixed(2) ?? '-'} × 1 worker (goal ≥ ${(0.85 * n).toFixed(2)})` +
        (hap === undefined ? '' : `; HAProxy ${n} threads = ${hap.rpsRatio.toFixed(2)} × 1 thread on the same machine`),
    );
  }
  return 0;
}
