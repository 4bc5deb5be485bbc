/**
 * The per-core table: the backend direct, HAProxy (nbthread 1), nginx (1 worker), node-floor (Node
 * relaying the bytes and nothing more: the least any Node proxy spends) and ebb (`--workers 1` where
 * this ebb has the option), each proxy on one core, measured in the same
 * interleaved rounds against the same backend, with ratios to HAProxy's figures of the same round.
 */
import type { RunOptions } from './options.ts';
import { measureTargets } from './measure.ts';
import { freePort, getText } from './processes.ts';
import { buildEbb, startBackend, startEbb, startHaproxy, startNginxProxy, startNodeFloor, type Target } from './servers.ts';
import { ebbHasWorkersOption, machineLine, placement, requireWrk, sumCounter } from './setup.ts';
import { perCoreTable, summarise, type Row } from './table.ts';

const log = (line: string): void => void process.stderr.write(`${line}\n`);
const fixed = (x: number | undefined, d = 2): string => (x !== undefined && Number.isFinite(x) ? x.toFixed(d) : '-');

/** The largest single process's VmHWM of a target over the run, in MiB. */
function peakMib(rows: readonly Row[], target: string): number {
  return Math.max(...rows.filter((r) => r.target === target).map((r) => r.memory?.maxKib ?? 0)) / 1024;
}

/** `vsFloor`: the same rows with their ratios to node-floor's figures of the same round. */
function goalLines(rows: readonly Row[], vsFloor: readonly Row[]): string[] {
  const ebb = rows.filter((r) => r.target === 'ebb');
  const at = (of: readonly Row[], f: (r: Row) => number): string => of.map((r) => `${fixed(f(r))} at ${r.connections}`).join(', ');
  return [
    `ebb req/s ÷ HAProxy: ${at(ebb, (r) => r.rpsRatio)} connections (goal ≥ 0.5)`,
    `ebb CPU per request ÷ HAProxy: ${at(ebb, (r) => r.cpuRatio)} connections`,
    `ebb p99 ÷ HAProxy: ${at(ebb, (r) => r.p99Ratio)} connections (goal ≤ 2)`,
    `ebb peak RSS: ${peakMib(rows, 'ebb').toFixed(1)} MiB, its largest process's VmHWM over the whole run, all connection counts (goal ≤ 64 MiB per data-plane process)`,
    `ebb CPU per request ÷ node-floor: ${at(vsFloor.filter((r) => r.target === 'ebb'), (r) => r.cpuRatio)} connections (what ebb's HTTP work adds to what Node costs to carry the same bytes)`,
    `node-floor peak RSS: ${peakMib(rows, 'node-floor').toFixed(1)} MiB (Node holding the same connections with nothing allocated per read: the least a Node proxy's process takes)`,
  ];
}

export async function perCore(options: RunOptions, work: string): Promise<number> {
  requireWrk();
  const { placement: cpus, note } = placement(options.pin);
  const workers = ebbHasWorkersOption() ? 1 : null;
  const [backendPort, haproxyPort, nginxPort, floorPort, ebbPort, adminPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
  log(machineLine());
  log(options.fromSource ? '# ebb from its sources (tsx)' : '# building ebb into .bench/dist (tsc, about 10 s)');
  const build = buildEbb(options.fromSource, options.node);
  log(`# starting the backend, the peers and ebb in ${work}`);
  const backend = await startBackend(work, backendPort, cpus.load);
  const haproxy = await startHaproxy(work, 'haproxy', haproxyPort, backendPort, 1, cpus.proxy, options.haproxyReuse);
  const nginx = await startNginxProxy(work, nginxPort, backendPort, cpus.proxy);
  const floor = await startNodeFloor(work, floorPort, backendPort, build.node, cpus.proxy);
  const ebb = await startEbb({ name: 'ebb', port: ebbPort, adminPort, backendPort, accessLog: options.accessLog, workers, build, nodeFlags: options.nodeFlags }, work, cpus.proxy);
  const targets: Target[] = [backend, ...(haproxy === null ? [] : [haproxy]), ...(nginx === null ? [] : [nginx]), floor, ebb];

  log(`# ${targets.map((t) => t.name).join(', ')}; connections ${options.connections.join(', ')}; ${options.rounds} rounds of ${options.seconds} s; ${note}`);
  const { samples, memory } = await measureTargets(targets, options, cpus.load, work);
  const metrics = await getText(adminPort, '/metrics');
  const counted = metrics.status === 200 ? sumCounter(metrics.body, 'ebb_request_count') : null;

  const rows = summarise(samples, haproxy === null ? null : 'haproxy', memory);
  const ebbSetup = [
    workers === null ? 'ebb serve (this ebb has no --workers option: one process)' : 'ebb serve --workers 1',
    build.note,
    ...(options.nodeFlags.length > 0 ? [`node ${options.nodeFlags.join(' ')}`] : []),
    'health checks every 5 s, drain accounting, X-Forwarded-*, strict parsing (its defaults)',
    counted === null ? `metrics: GET /metrics answered ${metrics.status}` : `metrics on (ebb_request_count: ${counted})`,
    options.accessLog ? 'access log on (to a file)' : 'access log off (--access-log turns it on)',
  ];
  console.log(`\n${machineLine()}`);
  const wrkLine = options.newConnections ? "wrk -t1 --latency -H 'Connection: close' (every request on a new connection)" : 'wrk -t1 --latency';
  console.log(`# GET / -> "ok\\n" from nginx (1 worker); ${wrkLine}; ${options.rounds} interleaved rounds of ${options.seconds} s; medians; ${note}`);
  console.log(`# HAProxy nbthread 1 http-reuse ${options.haproxyReuse}, nginx 1 worker (upstream keep-alive 256), node-floor (bench/node-floor.cjs: each client connection relayed byte for byte on a target connection of its own, nothing parsed), ${ebbSetup.join('; ')}`);
  console.log('# CPU µs/req: utime+stime of the whole process group over the window ÷ requests; ratios: median of the same round\'s ratios');
  console.log('# peak RSS: VmHWM (peak over the whole run) summed over the group\'s processes, and the largest single process\'s');
  console.log(`\n${perCoreTable(rows, 'HAProxy')}\n`);
  if (haproxy === null) console.log('HAProxy is not installed (apt-get install -y haproxy): no ratios.');
  else if (options.newConnections) console.log('Every request on a new connection: the goals (for clients that keep their connections) are not set against these figures.');
  else for (const line of goalLines(rows, summarise(samples, 'node-floor', memory))) console.log(line);
  if (nginx === null) console.log('nginx as a proxy: not installed.');
  console.log('\nWhere ebb spends its CPU: npm run bench -- --profile (one 64-connection round under node --cpu-prof, top 15 self-time functions)');
  for (const r of rows.filter((row) => row.errors > 0)) console.log(`${r.target} at ${r.connections} connections had ${r.errors} errors: its figures there are suspect (logs: --keep)`);
  return 0;
}
