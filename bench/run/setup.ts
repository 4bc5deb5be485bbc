/**
 * What every mode of the benchmark shares: the work directory, where things are pinned, what this
 * ebb's command line offers, the versions of the peers, and the metrics ebb served.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from '../../src/main/options.ts';
import { findExecutable, type Placement } from './servers.ts';

export function makeWorkDir(): string {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ebb-bench-'));
  fs.chmodSync(work, 0o755); // nginx's workers run as nobody when started as root
  return work;
}

/** Proxies on CPU 1, wrk and the backend on CPU 0, when asked and possible. */
export function placement(pin: boolean): { placement: Placement; note: string } {
  if (!pin) return { placement: { proxy: null, load: null }, note: 'unpinned (--no-pin)' };
  if (os.cpus().length < 2) return { placement: { proxy: null, load: null }, note: 'unpinned (one CPU only)' };
  if (findExecutable('taskset') === null) throw new Error('taskset is needed to pin (apt-get install -y util-linux), or pass --no-pin');
  return { placement: { proxy: '1', load: '0' }, note: 'proxies on CPU 1, wrk and backend on CPU 0 (taskset)' };
}

export function requireWrk(): void {
  if (findExecutable('wrk') === null) throw new Error('wrk is needed as the load generator: apt-get install -y wrk');
}

/** Whether this ebb's `serve` takes `--workers N` (asked of its own command-line parser). */
export function ebbHasWorkersOption(): boolean {
  try {
    parseArgs(['serve', '--workers', '1']);
    return true;
  } catch {
    return false;
  }
}

/** The first line a program prints (to either stream) with these arguments, whatever its exit status. */
function versionOf(name: string, args: readonly string[]): string | null {
  const file = findExecutable(name);
  if (file === null) return null;
  try {
    return execFileSync('sh', ['-c', '"$0" "$@" 2>&1; true', file, ...args], { encoding: 'utf8', timeout: 5000 }).split('\n')[0]?.trim() ?? '';
  } catch {
    return '';
  }
}

/** One line naming the machine and every program measured, for the head of a report. */
export function machineLine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const versions = [
    `node ${process.version}`,
    versionOf('haproxy', ['-v'])?.replace(/ - https.*$/, '') ?? 'haproxy: not installed',
    versionOf('nginx', ['-v']) ?? 'nginx: not installed',
    versionOf('wrk', ['-v'])?.replace(/ \[.*$/, '') ?? 'wrk: not installed',
  ];
  return `# ${os.cpus().length} CPUs (${cpu}), ${os.release()}; ${versions.join('; ')}`;
}

/** The sum of every series of a counter in Prometheus text (`name{labels} value` lines). */
export function sumCounter(metricsText: string, name: string): number | null {
  let sum: number | null = null;
  for (const line of metricsText.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) sum = (sum ?? 0) + value;
  }
  return sum;
}
