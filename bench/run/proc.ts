/**
 * A process group's CPU time and peak memory, from /proc: every process whose pgid is the group's
 * (a proxy's master and workers, ebb's data-plane processes), so a proxy that forks is counted whole.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

export interface ProcStat {
  readonly pid: number;
  readonly pgid: number;
  /** utime + stime, in clock ticks. */
  readonly cpuTicks: number;
}

/**
 * One line of /proc/PID/stat. The command name is in parentheses and may itself hold spaces and
 * parentheses, so the fields are counted from the last ')': state is field 3, pgid 5, utime 14, stime 15.
 */
export function parseProcStat(line: string): ProcStat | null {
  const close = line.lastIndexOf(')');
  if (close < 0) return null;
  const pid = Number(line.slice(0, line.indexOf('(')).trim());
  const rest = line.slice(close + 2).split(' ');
  const pgid = Number(rest[2]);
  const cpuTicks = Number(rest[11]) + Number(rest[12]);
  if (!Number.isInteger(pid) || !Number.isInteger(pgid) || !Number.isFinite(cpuTicks)) return null;
  return { pid, pgid, cpuTicks };
}

/** VmHWM (the process's peak resident set) from /proc/PID/status, in KiB; null when absent (a zombie). */
export function parseVmHwmKib(status: string): number | null {
  const m = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status);
  return m === null ? null : Number(m[1]);
}

function readOrNull(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null; // gone meanwhile
  }
}

/** Every live process of the group, with its CPU ticks so far. */
export function groupStats(pgid: number): ProcStat[] {
  const found: ProcStat[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const line = readOrNull(`/proc/${entry}/stat`);
    const stat = line === null ? null : parseProcStat(line);
    if (stat !== null && stat.pgid === pgid) found.push(stat);
  }
  return found;
}

/**
 * utime + stime so far, in clock ticks, of the whole group (an exited member's ticks are lost) and of its
 * leader (the process the group is named after: ebb's own process, whose children are its workers), so
 * the scaling table can say what ebb's process spends beside its workers.
 */
export function groupCpuSplit(pgid: number): { readonly total: number; readonly leader: number } {
  let total = 0;
  let leader = 0;
  for (const s of groupStats(pgid)) {
    total += s.cpuTicks;
    if (s.pid === pgid) leader = s.cpuTicks;
  }
  return { total, leader };
}

export interface GroupMemory {
  /** VmHWM summed over the group's processes. */
  readonly sumKib: number;
  /** The largest VmHWM of one process of the group. */
  readonly maxKib: number;
  readonly processes: number;
}

export function groupPeakRss(pgid: number): GroupMemory {
  let sumKib = 0;
  let maxKib = 0;
  let processes = 0;
  for (const { pid } of groupStats(pgid)) {
    const status = readOrNull(`/proc/${pid}/status`);
    const kib = status === null ? null : parseVmHwmKib(status);
    if (kib === null) continue;
    sumKib += kib;
    maxKib = Math.max(maxKib, kib);
    processes++;
  }
  return { sumKib, maxKib, processes };
}

/** Clock ticks per second (USER_HZ), almost always 100. */
export function clockTicksPerSecond(): number {
  try {
    const hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(hz) && hz > 0 ? hz : 100;
  } catch {
    return 100;
  }
}
