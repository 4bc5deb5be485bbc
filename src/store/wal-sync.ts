import { closeSync, fsyncSync, openSync } from 'node:fs';
import { EbbError } from '../shared/errors.ts';

/** How a file is synced to disk: `fs.fdatasync`'s shape, so a test can hold a sync or fail one. */
export type SyncFile = (fd: number, done: (error: NodeJS.ErrnoException | null) => void) => void;

/**
 * The WAL file's `fdatasync`, made as a group commit: at most one runs at a time; a flush asked for
 * while one runs waits for it if it covers every write made so far, else shares the one that follows
 * it with everyone else who asks meanwhile.
 */
export class WalSync {
  readonly #fd: number;
  readonly #file: string;
  readonly #syncFile: SyncFile;
  #syncs = 0;
  /** Writes counted so far, and how many of them are known to be on disk. */
  #written = 0;
  #durable = 0;
  #running: { readonly upTo: number; readonly done: Promise<void> } | null = null;
  #next: { readonly done: Promise<void>; resolve: () => void; reject: (error: EbbError) => void } | null = null;
  #broken: EbbError | null = null;

  private constructor(fd: number, file: string, syncFile: SyncFile) {
    this.#fd = fd;
    this.#file = file;
    this.#syncFile = syncFile;
  }

  /**
   * Opens the WAL file SQLite has made, and syncs the directory that holds its entry. That sync is
   * best effort, as SQLite's own: some file systems cannot sync a directory, and keep entries anyway.
   */
  static open(dir: string, file: string, syncFile: SyncFile): WalSync {
    const fd = openSync(file, 'r+');
    try {
      const dirFd = openSync(dir, 'r');
      try {
        fsyncSync(dirFd);
      } finally {
        closeSync(dirFd);
      }
    } catch {
      // See above.
    }
    return new WalSync(fd, file, syncFile);
  }

  /** How many syncs have been started. */
  get syncs(): number {
    return this.#syncs;
  }

  /** Set by a failed sync: every later write and flush is refused with it. */
  get broken(): EbbError | null {
    return this.#broken;
  }

  written(): void {
    this.#written += 1;
  }

  flush(): Promise<void> {
    if (this.#broken !== null) return Promise.reject(this.#broken);
    const upTo = this.#written;
    if (upTo <= this.#durable) return Promise.resolve();
    if (this.#running === null) return this.#sync();
    if (upTo <= this.#running.upTo) return this.#running.done;
    if (this.#next === null) {
      let resolve!: () => void;
      let reject!: (error: EbbError) => void;
      const done = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.#next = { done, resolve, reject };
    }
    return this.#next.done;
  }

  /** Resolves when no sync is running or waiting (whatever their outcome). */
  async settled(): Promise<void> {
    while (this.#running !== null) await this.#running.done.catch(() => undefined);
  }

  close(): void {
    closeSync(this.#fd);
  }

  #sync(): Promise<void> {
    const upTo = this.#written;
    this.#syncs += 1;
    const done = new Promise<void>((resolve, reject) => {
      this.#syncFile(this.#fd, (error) => {
        this.#running = null;
        if (error === null) {
          this.#durable = Math.max(this.#durable, upTo);
          resolve();
        } else {
          this.#broken ??= new EbbError(
            'StoreUnavailable',
            `A change to ${this.#file} could not be made durable (${error.message}); what ebb holds may be ahead of the disk. Check the disk, then restart ebb: it goes on from what the disk holds.`,
            { cause: error },
          );
          reject(this.#broken);
        }
        const next = this.#next;
        this.#next = null;
        if (next === null) return;
        if (this.#broken !== null) next.reject(this.#broken);
        else this.#sync().then(next.resolve, next.reject);
      });
    });
    this.#running = { upTo, done };
    return done;
  }
}
