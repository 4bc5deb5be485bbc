/**
 * An instance's files under the runner's directory: `<dir>/<instanceId>/` holds `instance.json` (the
 * durable record: which process is the instance), `output.log` (its stdout and stderr; the
 * operator's, never removed by ebb) and `user-data` (the script it runs, when it runs one).
 */
import { closeSync, existsSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { RunningInstance } from '../domain/instance-runner.ts';

export const RECORD_FILE = 'instance.json';
export const LOG_FILE = 'output.log';
export const USER_DATA_FILE = 'user-data';

/**
 * Instance ids name directories, so only a plain name is let through: no separators, no `..`. Auto
 * Scaling's ids (`i-` + 17 hex digits) always pass.
 */
export function isSafeInstanceId(id: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/.test(id);
}

export function instanceDir(dir: string, instanceId: string): string {
  return join(dir, instanceId);
}

/**
 * Writes the record so that after a crash it is either wholly there or not at all: a temporary file,
 * flushed, renamed over the record, and the directory flushed so the rename itself survives.
 */
export function writeRecord(dir: string, instance: RunningInstance): void {
  const home = instanceDir(dir, instance.instanceId);
  const file = join(home, RECORD_FILE);
  const tmp = `${file}.tmp`;
  try {
    const fd = openSync(tmp, 'w', 0o644);
    try {
      writeSync(fd, `${JSON.stringify(instance, null, 2)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
  syncDir(home);
}

function syncDir(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export type ReadRecord = { readonly ok: true; readonly instance: RunningInstance } | { readonly ok: false; readonly reason: 'missing' | 'corrupt'; readonly detail: string };

/** The record, checked field by field: a file that is not a record is `corrupt`, never half-trusted. */
export function readRecord(dir: string, instanceId: string): ReadRecord {
  const file = join(instanceDir(dir, instanceId), RECORD_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { ok: false, reason: code === 'ENOENT' ? 'missing' : 'corrupt', detail: `${file}: ${(error as Error).message}` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, reason: 'corrupt', detail: `${file}: ${(error as Error).message}` };
  }
  const r = value as Record<string, unknown> | null;
  const valid =
    typeof r === 'object' &&
    r !== null &&
    r.instanceId === instanceId &&
    Number.isInteger(r.pid) &&
    (r.pid as number) > 1 &&
    typeof r.startTime === 'string' &&
    Number.isInteger(r.port) &&
    (r.port as number) > 0 &&
    (r.port as number) < 65536 &&
    typeof r.logFile === 'string' &&
    typeof r.launchedAt === 'number';
  if (!valid) return { ok: false, reason: 'corrupt', detail: `${file}: not an instance record for ${instanceId}` };
  return {
    ok: true,
    instance: {
      instanceId,
      pid: r.pid as number,
      startTime: r.startTime as string,
      port: r.port as number,
      logFile: r.logFile as string,
      launchedAt: r.launchedAt as number,
    },
  };
}

export function removeRecord(dir: string, instanceId: string): void {
  rmSync(join(instanceDir(dir, instanceId), RECORD_FILE), { force: true });
}

/** Ids of the instance directories that hold a record, sorted. */
export function recordedIds(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((name) => {
      if (!isSafeInstanceId(name)) return false;
      return existsSync(join(dir, name, RECORD_FILE));
    })
    .sort();
}

/**
 * Removes the directories (logs and user data) of instances that ended, all but the `keep` most
 * recently changed, so a template that keeps failing cannot fill the disk; directories with a record
 * (instances that run or may run) are never touched. Returns the ids removed.
 */
export function pruneEnded(dir: string, keep: number, inUse: ReadonlySet<string>): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const ended = names
    // Only directories named as ebb names its instances: anything else there is not ebb's to remove.
    .filter((name) => /^i-[0-9a-f]{17}$/.test(name) && !inUse.has(name) && !existsSync(join(dir, name, RECORD_FILE)))
    .map((name) => {
      try {
        return { name, at: statSync(join(dir, name)).mtimeMs };
      } catch {
        return null;
      }
    })
    .filter((e): e is { name: string; at: number } => e !== null)
    .sort((a, b) => b.at - a.at);
  const removed = ended.slice(keep).map((e) => e.name);
  for (const name of removed) rmSync(join(dir, name), { recursive: true, force: true });
  return removed;
}

