/** What a test started, stopped in reverse order when it ends. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Stops what a test started, last first; a step that fails does not keep the others from running. */
export class Cleanup {
  readonly #steps: Array<() => Promise<unknown> | unknown> = [];

  add(step: () => Promise<unknown> | unknown): void {
    this.#steps.push(step);
  }

  async run(): Promise<void> {
    while (this.#steps.length > 0) {
      const step = this.#steps.pop();
      try {
        await step?.();
      } catch {
        // keep cleaning up
      }
    }
  }
}

/** A fresh directory in the OS temp dir, removed at cleanup. */
export async function tempDir(cleanup: Cleanup): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ebb-e2e-'));
  cleanup.add(() => rm(dir, { recursive: true, force: true }));
  return dir;
}
