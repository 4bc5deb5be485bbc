/**
 * What a probe needs of the signal that cancels it. An AbortSignal has it; the scheduler passes its
 * own lighter one (CheckAbort), since an AbortController with its EventTarget per check cost more CPU
 * than the rest of the checker's work on a check.
 */
export interface CheckSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { readonly once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** A CheckSignal for one check: aborted once, its listeners told once. */
export class CheckAbort implements CheckSignal {
  #aborted = false;
  #listeners: Array<() => void> | null = null;

  get aborted(): boolean {
    return this.#aborted;
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.#aborted) return;
    (this.#listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const listeners = this.#listeners;
    if (listeners === null) return;
    const i = listeners.indexOf(listener);
    if (i >= 0) listeners.splice(i, 1);
  }

  abort(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    const listeners = this.#listeners;
    this.#listeners = null;
    for (const listener of listeners ?? []) listener();
  }
}
