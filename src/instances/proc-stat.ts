/**
 * What the kernel says about a process, from /proc/<pid>/stat (proc(5)). The start time (field 22,
 * clock ticks since boot) never changes for a process and differs for any later process given the
 * same pid, so pid + start time names one process for as long as the machine runs.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcStat {
  /** Field 3: R, S, D, Z (zombie: exited, not yet reaped), T, … */
  readonly state: string;
  /** Field 5: the process group. */
  readonly pgrp: number;
  /** Field 22, as the kernel wrote it. */
  readonly startTime: string;
}

/**
 * Parses a stat line. The command name (field 2) sits in parentheses and may itself hold spaces and
 * parentheses, so the fields are counted from the last ')'.
 */
export function parseProcStat(line: string): ProcStat | null {
  const close = line.lastIndexOf(')');
  if (close === -1) return null;
  // After ')': field 3 is index 0, so field n is index n - 3.
  const fields = line.slice(close + 1).trim().split(/\s+/);
  const state = fields[0];
  const pgrp = Number(fields[2]);
  const startTime = fields[19];
  if (state === undefined || startTime === undefined || !/^\d+$/.test(startTime) || !Number.isInteger(pgrp)) return null;
  return { state, pgrp, startTime };
}

/** The process's stat, or null when there is no such process (or no /proc to ask). */
export function readProcStat(pid: number): ProcStat | null {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/** Whether the process exists and has not exited (a zombie has exited; it only waits to be reaped). */
export function isLive(stat: ProcStat | null): stat is ProcStat {
  return stat !== null && stat.state !== 'Z';
}

/** Whether `pid` is still the process that started at `startTime`, and has not exited. */
export function isSameProcess(pid: number, startTime: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists but belongs to someone else; the start time still decides.
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const stat = readProcStat(pid);
  return isLive(stat) && stat.startTime === startTime;
}

/**
 * Whether any process of the group `pgid` is still running. Zombies do not count: where nothing reaps
 * orphans (a container whose pid 1 does not), a dead member can stay a zombie for good, and the kernel
 * still counts it as a member.
 */
export function groupHasLiveMembers(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const members = liveMemberPids(pgid);
  // Without /proc nothing can be told apart: the group is taken as running.
  return members === null || members.length > 0;
}

/** The group's members that have not exited, as `pid:state:command` (for a log line saying what outlived a signal). */
export function liveGroupMembers(pgid: number): string[] {
  return (liveMemberPids(pgid) ?? []).slice(0, 20).map((pid) => {
    let command = '?';
    try {
      command = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      // gone meanwhile
    }
    return `${pid}:${readProcStat(pid)?.state ?? '?'}:${command}`;
  });
}

/** The pids of the group's processes that are not zombies; null when /proc cannot be listed. */
function liveMemberPids(pgid: number): number[] | null {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return null;
  }
  const pids: number[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readProcStat(Number(name));
    if (stat !== null && stat.pgrp === pgid && stat.state !== 'Z') pids.push(Number(name));
  }
  return pids;
}
