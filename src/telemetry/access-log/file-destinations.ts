import { write as fsWrite } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Clock } from '../../shared/clock.ts';
import { count, type AccessLogCounters } from './counters.ts';
import type { Destination } from './line-writer.ts';

/** Writes all of `data` to an open file. */
async function writeAll(handle: FileHandle, data: Buffer): Promise<void> {
  let at = 0;
  while (at < data.length) {
    const { bytesWritten } = await handle.write(data, at, data.length - at);
    at += bytesWritten;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());

/**
 * A file descriptor ebb did not open: standard output. Node writes `process.stdout` synchronously
 * when it is a file or (on Linux) a pipe ("A note on process I/O", Node.js documentation, process),
 * so a slow reader would stall the event loop and with it every request. `fs.write` runs on libuv's
 * thread pool instead; a short or EAGAIN write (a non-blocking pipe that is full) is retried.
 */
export class FdDestination implements Destination {
  constructor(readonly fd: number) {}

  async write(data: string): Promise<void> {
    const buf = Buffer.from(data, 'utf8');
    let at = 0;
    while (at < buf.length) {
      try {
        at += await new Promise<number>((resolve, reject) => {
          fsWrite(this.fd, buf, at, buf.length - at, null, (err, n) => (err === null ? resolve(n) : reject(err)));
        });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
        await sleep(10);
      }
    }
  }

  nextDeadline(): null {
    return null;
  }
  async tick(): Promise<void> {}
  async reopen(): Promise<void> {}
  async close(): Promise<void> {}
}

export interface RotatingFileOptions {
  readonly clock: Clock;
  /** Rotate before a write that would take the file past this many bytes; 0: never by size. */
  readonly maxBytes: number;
  /** Rotate at each multiple of this many ms of wall time (UTC-aligned: hourly rotates on the hour); 0: never by time. */
  readonly intervalMs: number;
  /** Rotated files kept (the oldest beyond are deleted); 0: all. */
  readonly keep: number;
  readonly counters: AccessLogCounters;
}

/** `20260101T000000Z`, and the same with a `.N` counter when two rotations fall in one second. */
const ROTATED = /^\d{8}T\d{6}Z(?:\.\d+)?$/;

function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

/**
 * One file, rotated by size and by time: the file is closed, renamed to `PATH.YYYYMMDDTHHMMSSZ` and a
 * new one opened at PATH, between two writes, so no line is lost or split. An empty file is never
 * rotated. `reopen` (SIGUSR1) closes and opens PATH again, for logrotate's `create` mode: logrotate
 * renames the file, ebb keeps writing into the renamed one until told, then starts the new one.
 */
export class RotatingFileDestination implements Destination {
  readonly path: string;
  readonly #o: RotatingFileOptions;
  #handle: FileHandle | null = null;
  #size = 0;
  #periodEnd = 0;

  constructor(path: string, options: RotatingFileOptions) {
    this.path = path;
    this.#o = options;
  }

  async write(data: string): Promise<void> {
    const buf = Buffer.from(data, 'utf8');
    await this.#open();
    const now = this.#o.clock.wallTime();
    if (now >= this.#periodEnd) {
      if (this.#size > 0) await this.#rotate();
      else this.#periodEnd = this.#nextBoundary(now);
    }
    if (this.#size > 0 && this.#o.maxBytes > 0 && this.#size + buf.length > this.#o.maxBytes) await this.#rotate();
    const handle = await this.#open();
    await writeAll(handle, buf);
    this.#size += buf.length;
  }

  nextDeadline(): number | null {
    return this.#o.intervalMs > 0 && this.#handle !== null && this.#size > 0 ? this.#periodEnd : null;
  }

  async tick(): Promise<void> {
    const now = this.#o.clock.wallTime();
    if (this.#handle === null || now < this.#periodEnd) return;
    if (this.#size > 0) await this.#rotate();
    else this.#periodEnd = this.#nextBoundary(now);
  }

  async reopen(): Promise<void> {
    await this.#closeHandle();
    await this.#open();
  }

  async close(): Promise<void> {
    await this.#closeHandle();
  }

  async #open(): Promise<FileHandle> {
    if (this.#handle !== null) return this.#handle;
    await mkdir(dirname(this.path), { recursive: true });
    const handle = await open(this.path, 'a', 0o640);
    this.#handle = handle;
    this.#size = (await handle.stat()).size;
    this.#periodEnd = this.#nextBoundary(this.#o.clock.wallTime());
    return handle;
  }

  #nextBoundary(now: number): number {
    const every = this.#o.intervalMs;
    return every > 0 ? (Math.floor(now / every) + 1) * every : Number.POSITIVE_INFINITY;
  }

  async #closeHandle(): Promise<void> {
    const handle = this.#handle;
    this.#handle = null;
    this.#size = 0;
    if (handle !== null) await handle.close();
  }

  async #rotate(): Promise<void> {
    await this.#closeHandle();
    const base = `${this.path}.${stamp(this.#o.clock.wallTime())}`;
    let to = base;
    for (let n = 1; await exists(to); n++) to = `${base}.${n}`;
    await rename(this.path, to);
    count(this.#o.counters, 'filesRotated');
    await this.#open();
    if (this.#o.keep > 0) await this.#prune();
  }

  /** Deletes the oldest rotated files beyond `keep`. */
  async #prune(): Promise<void> {
    const dir = dirname(this.path);
    const name = basename(this.path);
    const rotated = (await readdir(dir)).filter((f) => f.startsWith(`${name}.`) && ROTATED.test(f.slice(name.length + 1)));
    rotated.sort(byRotation(name.length + 1));
    for (const old of rotated.slice(0, Math.max(0, rotated.length - this.#o.keep))) await rm(join(dir, old), { force: true });
  }
}

/** Oldest first: by stamp, then by the `.N` counter as a number. */
function byRotation(skip: number): (a: string, b: string) => number {
  const key = (f: string): [string, number] => {
    const rest = f.slice(skip);
    const dot = rest.indexOf('.');
    return dot === -1 ? [rest, 0] : [rest.slice(0, dot), Number(rest.slice(dot + 1))];
  };
  return (a, b) => {
    const [sa, na] = key(a);
    const [sb, nb] = key(b);
    return sa < sb ? -1 : sa > sb ? 1 : na - nb;
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
