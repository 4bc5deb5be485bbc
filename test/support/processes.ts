import { readFileSync } from 'node:fs';

/**
 * Whether the process runs: `process.kill(pid, 0)` finds it and it is not a zombie. A process whose
 * parent was killed is an orphan; where pid 1 does not reap orphans (some containers), one that
 * exited stays a zombie, which signal 0 still finds.
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // `pid (comm) state …`: comm may hold spaces or parentheses, so the state follows the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc: signal 0 decides
  }
}

/** The command line a process runs (/proc/PID/cmdline): node and its options, the script, its arguments. */
export function commandLine(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').filter(Boolean);
}
