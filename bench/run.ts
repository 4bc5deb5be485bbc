/**
 * `npm run bench`: ebb side by side with HAProxy and nginx, one core each, on 127.0.0.1 (see
 * bench/run/options.ts for the modes and flags, docs/benchmarks.md for how to read the tables).
 * Every server runs in a process group of its own and is stopped by that group's id at the end,
 * on an error and on Ctrl-C; the whole run is bounded by a deadline.
 */
import fs from 'node:fs';
import os from 'node:os';
import { parseRunArgs, USAGE, type RunOptions } from './run/options.ts';
import { perCore } from './run/per-core.ts';
import { profile } from './run/profile.ts';
import { ServerGroup } from './run/processes.ts';
import { scaling } from './run/scaling.ts';
import { makeWorkDir } from './run/setup.ts';

/** Far beyond what the flags ask for: a run still going then is stuck. */
function deadlineMs(o: RunOptions): number {
  const windows = o.connections.length * (o.rounds * 4 * (o.seconds + 2) + 5 * o.warmupWindows * 2);
  return (windows + 180) * 1000;
}

async function main(): Promise<number> {
  let options: RunOptions;
  try {
    options = parseRunArgs(process.argv.slice(2), os.availableParallelism());
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n`);
    return 2;
  }
  if (options.mode === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const work = makeWorkDir();
  const deadline = setTimeout(() => {
    process.stderr.write(`bench: still running after ${deadlineMs(options) / 1000} s; stopping\n`);
    ServerGroup.killAllStartedSync();
    process.exit(1);
  }, deadlineMs(options));
  try {
    if (options.mode === 'workers') return await scaling(options, work);
    if (options.mode === 'profile') return await profile(options, work);
    return await perCore(options, work);
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n`);
    return 1;
  } finally {
    clearTimeout(deadline);
    await ServerGroup.stopAllStarted();
    if (options.keep) process.stderr.write(`bench: kept ${work}\n`);
    else fs.rmSync(work, { recursive: true, force: true });
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    ServerGroup.killAllStartedSync();
    process.exit(130);
  });
}
process.on('exit', () => ServerGroup.killAllStartedSync());
process.exitCode = await main();
