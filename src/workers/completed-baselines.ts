/**
 * `completedWhenApplied` calls waiting for the worker's `applied` of a snapshot sent after them (its
 * counts are the worker's at that moment); each is answered with the key's `completed` then.
 */
export class CompletedBaselines {
  #waiting: Array<{ readonly key: string; readonly afterSeq: number; readonly resolve: (completed: number) => void }> = [];

  get size(): number {
    return this.#waiting.length;
  }

  /** Waits for an `applied` of a seq after `afterSeq`. */
  wait(key: string, afterSeq: number): Promise<number> {
    return new Promise((resolve) => this.#waiting.push({ key, afterSeq, resolve }));
  }

  /** Answers those waiting for an `applied` of a seq up to `seq` (Infinity: all, with what is known). */
  resolve(seq: number, completedOf: (key: string) => number): void {
    const done = this.#waiting.filter((b) => b.afterSeq < seq);
    if (done.length === 0) return;
    this.#waiting = this.#waiting.filter((b) => b.afterSeq >= seq);
    for (const b of done) b.resolve(completedOf(b.key));
  }
}
