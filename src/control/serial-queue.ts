/**
 * Runs async tasks one at a time, in arrival order, so a command's validate → persist → apply is never
 * interleaved with another's. A failed task does not stop the ones behind it.
 */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T> | T): Promise<T> {
    // The tail never rejects (see below), so every task runs after the one before, whatever its outcome.
    const result = this.#tail.then(task);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}
