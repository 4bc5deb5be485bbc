import type { Clock, TimerHandle } from '../../shared/clock.ts';
import { count, newCounters, type AccessLogCounters } from './counters.ts';

/**
 * Where lines go: a file that rotates, an S3-style folder of interval files, a file descriptor.
 * A LineWriter calls one method at a time, never two at once, so a destination needs no locking and
 * a rotation never runs beside a write (nothing is lost or split across it).
 */
export interface Destination {
  /** Writes whole lines (each ending in `\n`), rotating first if it is time or the file is full. */
  write(data: string): Promise<void>;
  /** Wall ms at which the destination wants `tick` (a time rotation, an interval's end), or null. */
  nextDeadline(): number | null;
  /** Rotates or closes what is due at the current wall time. */
  tick(): Promise<void>;
  /** Closes and opens the file again at its path (after logrotate moved it away). */
  reopen(): Promise<void>;
  /** Closes for good (an S3-layout interval is finished). */
  close(): Promise<void>;
}

export interface LineWriterOptions {
  readonly clock: Clock;
  /**
   * The bound: characters of lines waiting to be written. A line that would pass it is dropped and
   * counted, so a slow disk or reader costs lines, never the request path's time or memory. At most
   * this much more is in the one write under way.
   */
  readonly maxBufferBytes: number;
  /** How long a line may wait to be batched with others; ALB-style tools expect a line within a second. */
  readonly flushMs?: number;
  /** A failure of the destination (logged by the owner; the writer counts it and goes on). */
  readonly onError: (what: string, error: unknown) => void;
}

/** Default bound on queued lines: 4 MiB, about 10,000 ALB lines. */
export const DEFAULT_BUFFER_BYTES = 4 * 1024 * 1024;
const DEFAULT_FLUSH_MS = 200;
/** Lines joined into one string as they come (`write`). */
const CHUNK_LINES = 64;

/**
 * Takes lines on the request path (`write` is synchronous and never waits) and writes them off it, in
 * batches, one destination call at a time: a batch at most `flushMs` after its first line, or at once
 * when a quarter of the bound is queued.
 */
export class LineWriter {
  readonly counters: AccessLogCounters = newCounters();
  readonly #dest: Destination;
  readonly #clock: Clock;
  readonly #max: number;
  readonly #flushMs: number;
  readonly #onError: LineWriterOptions['onError'];
  /** Lines waiting, joined in runs of CHUNK_LINES (see `write`), each run without its last newline. */
  #queue: string[] = [];
  /** The newest lines, not yet joined into a run. */
  #newest: string[] = [];
  #queuedLines = 0;
  #queued = 0;
  #flushTimer: TimerHandle | null = null;
  #flushUrgent = false;
  #deadlineTimer: TimerHandle | null = null;
  #deadlineAt: number | null = null;
  /** The destination calls, in order: each op starts when the one before has ended. */
  #chain: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(dest: Destination, options: LineWriterOptions) {
    this.#dest = dest;
    this.#clock = options.clock;
    this.#max = options.maxBufferBytes;
    this.#flushMs = options.flushMs ?? DEFAULT_FLUSH_MS;
    this.#onError = options.onError;
  }

  /** Queues one line (without its newline). Returns false when it was dropped (buffer full, or closed). */
  write(line: string): boolean {
    const size = line.length + 1;
    if (this.#closed || this.#queued + size > this.#max) {
      count(this.counters, 'linesDropped');
      return false;
    }
    // Lines wait up to flushMs, long enough to outlive the young generation. Joined in small runs, they
    // die young and what waits is a few long flat strings: a line made by concatenation is a tree of
    // small strings, and thousands of those held for 200 ms cost more collecting than making them.
    this.#newest.push(line);
    if (this.#newest.length >= CHUNK_LINES) this.#joinRun();
    this.#queuedLines++;
    this.#queued += size;
    const urgent = this.#queued * 4 >= this.#max;
    if (this.#flushTimer === null || (urgent && !this.#flushUrgent)) {
      this.#flushTimer?.cancel();
      this.#flushUrgent = urgent;
      this.#flushTimer = this.#clock.setTimer(urgent ? 0 : this.#flushMs, () => {
        this.#flushTimer = null;
        this.#flushUrgent = false;
        void this.#run(() => this.#writeQueued());
      });
    }
    return true;
  }

  /** Lines queued and not yet handed to the destination. */
  get queuedLines(): number {
    return this.#queuedLines;
  }

  #joinRun(): void {
    this.#queue.push(this.#newest.join('\n'));
    this.#newest = [];
  }

  /** Resolves once every line queued so far has been handed to the destination. */
  flush(): Promise<void> {
    return this.#run(() => this.#writeQueued());
  }

  /** Writes what is queued, then closes and reopens the file (SIGUSR1, after logrotate). */
  reopen(): Promise<void> {
    return this.#run(async () => {
      await this.#writeQueued();
      await this.#guard('reopen', () => this.#dest.reopen());
    });
  }

  /** Writes what is queued and closes the destination; later lines are dropped. Idempotent. */
  close(): Promise<void> {
    if (this.#closed) return this.#chain;
    this.#closed = true;
    this.#flushTimer?.cancel();
    this.#flushTimer = null;
    this.#deadlineTimer?.cancel();
    this.#deadlineTimer = null;
    return this.#run(async () => {
      await this.#writeQueued();
      await this.#guard('close', () => this.#dest.close());
    });
  }

  #run(op: () => Promise<void>): Promise<void> {
    this.#chain = this.#chain.then(op).then(
      () => this.#armDeadline(),
      (error: unknown) => this.#onError('write', error),
    );
    return this.#chain;
  }

  async #writeQueued(): Promise<void> {
    while (this.#queuedLines > 0) {
      if (this.#newest.length > 0) this.#joinRun();
      const runs = this.#queue;
      const lines = this.#queuedLines;
      this.#queue = [];
      this.#queuedLines = 0;
      this.#queued = 0;
      const data = `${runs.join('\n')}\n`;
      try {
        await this.#dest.write(data);
        count(this.counters, 'linesWritten', lines);
      } catch (error) {
        count(this.counters, 'linesDropped', lines);
        count(this.counters, 'writeErrors');
        this.#onError('write', error);
      }
    }
  }

  async #guard(what: string, op: () => Promise<void>): Promise<void> {
    try {
      await op();
    } catch (error) {
      count(this.counters, 'writeErrors');
      this.#onError(what, error);
    }
  }

  /** Sets the timer for the destination's next deadline (a rotation, an interval's end), if it changed. */
  #armDeadline(): void {
    if (this.#closed) return;
    const at = this.#dest.nextDeadline();
    if (at === this.#deadlineAt) return;
    this.#deadlineTimer?.cancel();
    this.#deadlineTimer = null;
    this.#deadlineAt = at;
    if (at === null) return;
    this.#deadlineTimer = this.#clock.setTimer(Math.max(0, at - this.#clock.wallTime()), () => {
      this.#deadlineTimer = null;
      this.#deadlineAt = null;
      void this.#run(async () => {
        // Lines queued before the deadline belong to the file that is closing.
        await this.#writeQueued();
        await this.#guard('rotate', () => this.#dest.tick());
      });
    });
  }
}
