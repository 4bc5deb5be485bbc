/**
 * Runs async tasks one at a time, in arrival order, so a command's validate → persist → apply is never
 * interleaved with another's. A failed task does not stop the ones behind it.
 *
 * `settle` (group commit, see StoreTransaction): what each task's caller waits for after the task
 * ended, whatever its outcome, before it gets the result; the next task does not wait for it. A
 * failed settle replaces the task's result with its error.
 */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();
  readonly #settle: (() => Promise<void>) | undefined;

  constructor(settle?: () => Promise<void>) {
    this.#settle = settle;
  }

  run<T>(task: () => Promise<T> | T): Promise<T> {
    // The tail never rejects (see below), so every task runs after the one before, whatever its outcome.
    const result = this.#tail.then(task);
    this.#tail = result.catch(() => undefined);
    const settle = this.#settle;
    if (settle === undefined) return result;
    return result.then(
      async (value) => {
        await settle();
        return value;
      },
      async (error: unknown) => {
        await settle();
        throw error;
      },
    );
  }
}
