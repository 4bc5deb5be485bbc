/**
 * What the access-log writers did, as monotonic counters (Prometheus counter semantics: they only go
 * up, from process start). One object per writer, and `ACCESS_LOG_COUNTERS` summing every writer of
 * the process, for the metrics endpoint to expose.
 */
export interface AccessLogCounters {
  /** Lines handed to the file or stream. */
  linesWritten: number;
  /** Lines lost: refused because the buffer was full (the disk or the reader is slower than traffic), or lost with a failed write. */
  linesDropped: number;
  /** Writes, opens, renames or compressions that failed (each is logged). */
  writeErrors: number;
  /** Files closed and replaced: size or time rotation, and S3-layout intervals closed. */
  filesRotated: number;
}

export function newCounters(): AccessLogCounters {
  return { linesWritten: 0, linesDropped: 0, writeErrors: 0, filesRotated: 0 };
}

/** Every access-log writer of this process, summed. Read-only for readers; only the writers add to it. */
export const ACCESS_LOG_COUNTERS: Readonly<AccessLogCounters> = newCounters();

/** Adds to a writer's own counters and to the process total. */
export function count(own: AccessLogCounters, key: keyof AccessLogCounters, n = 1): void {
  own[key] += n;
  (ACCESS_LOG_COUNTERS as AccessLogCounters)[key] += n;
}
