/**
 * Rapid-reset protection (CVE-2023-44487) for one HTTP/2 session: the streams a client resets
 * (RST_STREAM before ebb finished the stream), counted over a sliding window. A client that resets
 * more than `limit` streams within `windowMs` is cut off: the session gets GOAWAY(ENHANCE_YOUR_CALM)
 * and closes.
 *
 * The window is exact: the times of the last `limit` resets are kept in a ring, and the next reset
 * trips the guard if the oldest of them is less than `windowMs` old. No timer: time is read at each
 * reset (the caller passes its clock's monotonic ms).
 */
export class ResetGuard {
  readonly #times: Float64Array;
  readonly #windowMs: number;
  #next = 0;
  #count = 0;
  #total = 0;

  constructor(limit: number, windowMs: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`reset limit must be a positive integer, got ${limit}`);
    this.#times = new Float64Array(limit);
    this.#windowMs = windowMs;
  }

  /** Every reset recorded so far. */
  get total(): number {
    return this.#total;
  }

  /** Records one reset at `nowMs`; true when it is one too many (more than `limit` within the window). */
  record(nowMs: number): boolean {
    this.#total++;
    const times = this.#times;
    if (this.#count === times.length) {
      // The ring is full: the slot about to be overwritten holds the oldest of the last `limit`.
      const oldest = times[this.#next] as number;
      if (nowMs - oldest < this.#windowMs) return true;
    } else this.#count++;
    times[this.#next] = nowMs;
    this.#next = (this.#next + 1) % times.length;
    return false;
  }
}
