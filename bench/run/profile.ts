/**
 * `npm run bench -- --profile`: ebb under `node --cpu-prof` for one 64-connection round, then the top
 * 15 functions by self time. The process is started, warmed up and left idle a moment before the
 * round and after it, so the round is the profile's longest busy stretch, and only that stretch is counted
 * (startup, module compilation and shutdown are left out).
 */
import fs from 'node:fs';
import path from 'node:path';
import { busiestWindow, formatTop, parseCpuProfile, topSelfTime } from './cpuprofile.ts';
import { measureOnce, warmUp, type RoundPlan } from './measure.ts';
import type { RunOptions } from './options.ts';
import { clockTicksPerSecond } from './proc.ts';
import { freePort, sleep } from './processes.ts';
import { buildEbb, REPO, startBackend, startEbb } from './servers.ts';
import { ebbHasWorkersOption, machineLine, placement, requireWrk } from './setup.ts';

const log = (line: string): void => void process.stderr.write(`${line}\n`);
const CONNECTIONS = 64;
const TOP = 15;
/** Profiles kept in .bench/, the newest; older ones are deleted (each is a few MiB). */
const KEEP_PROFILES = 5;

function pruneProfiles(dir: string): void {
  const profiles = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  const byAge = profiles.map((f) => ({ f, t: fs.statSync(path.join(dir, f)).mtimeMs })).sort((a, b) => b.t - a.t);
  for (const { f } of byAge.slice(KEEP_PROFILES)) fs.rmSync(path.join(dir, f));
}

export async function profile(options: RunOptions, work: string): Promise<number> {
  requireWrk();
  const { placement: cpus, note } = placement(options.pin);
  const workers = ebbHasWorkersOption() ? 1 : null;
  const profileDir = path.join(work, 'cpuprofile');
  fs.mkdirSync(profileDir);
  const [backendPort, ebbPort, adminPort] = await Promise.all([freePort(), freePort(), freePort()]);
  log(machineLine());
  const build = buildEbb(options.fromSource, options.node);
  const backend = await startBackend(work, backendPort, cpus.load);
  const ebb = await startEbb(
    { name: 'ebb', port: ebbPort, adminPort, backendPort, accessLog: options.accessLog, workers, build, nodeFlags: [...options.nodeFlags, '--cpu-prof', '--cpu-prof-dir', profileDir] },
    work,
    cpus.proxy,
  );
  const plan: RoundPlan = {
    connections: [CONNECTIONS],
    rounds: 1,
    seconds: options.seconds,
    warmupWindows: options.warmupWindows,
    loadCpus: cpus.load,
    ticksPerSecond: clockTicksPerSecond(),
    outputDir: work,
    newConnections: options.newConnections,
  };
  await sleep(1000); // idle stretches around the warm-up and the round set the round apart in the profile
  await warmUp([ebb], plan);
  await sleep(1000);
  const sample = await measureOnce(ebb, CONNECTIONS, 1, plan);
  await sleep(1000);
  await ebb.group.stop(15_000); // a graceful stop: node writes the profile as it exits
  await backend.group.stop();

  const files = fs.readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) throw new Error(`ebb wrote no .cpuprofile (did it exit gracefully?); its log:\n${ebb.group.logTail()}`);
  const kept = path.join(REPO, '.bench');
  fs.mkdirSync(kept, { recursive: true });
  console.log(`\n${machineLine()}`);
  console.log(`# ebb serve${workers === null ? '' : ' --workers 1'} under node --cpu-prof, ${build.note}; wrk -c${CONNECTIONS}${options.newConnections ? " -H 'Connection: close'" : ''} for ${options.seconds} s; ${note}`);
  console.log(`# under the profiler: ${sample.requestsPerSecond.toFixed(0)} req/s, p99 ${sample.p99Ms.toFixed(2)} ms, ${sample.errors} errors`);
  for (const file of files) {
    const cpuProfile = parseCpuProfile(fs.readFileSync(path.join(profileDir, file), 'utf8'));
    const window = busiestWindow(cpuProfile);
    const summary = topSelfTime(cpuProfile, TOP, REPO, window);
    const target = path.join(kept, file);
    fs.copyFileSync(path.join(profileDir, file), target);
    console.log(`\n${file} (the round: ${((window.end - window.start) / 1e6).toFixed(1)} s of the profile's ${((cpuProfile.endTime - cpuProfile.startTime) / 1e6).toFixed(1)} s), kept as ${path.relative(process.cwd(), target)}`);
    console.log(formatTop(summary));
  }
  pruneProfiles(kept);
  console.log('\nOpen a .cpuprofile in Chrome DevTools (Performance, load profile) or speedscope for the flame graph.');
  return 0;
}
