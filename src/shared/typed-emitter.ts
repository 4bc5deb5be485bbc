/**
 * A small synchronous event emitter with typed events. Listeners run in registration order; one that
 * throws does not stop the others, nor the emitter: its error becomes a process warning, since a
 * failing subscriber (a log, a metric) must not take the load balancer down.
 */
export class TypedEmitter<Events extends { [K in keyof Events]: unknown }> {
  readonly #listeners = new Map<keyof Events, Array<(payload: never) => void>>();

  on<K extends keyof Events>(event: K, listener: (payload: Events[K]) => void): () => void {
    const list = this.#listeners.get(event) ?? [];
    list.push(listener as (payload: never) => void);
    this.#listeners.set(event, list);
    return () => {
      const current = this.#listeners.get(event);
      if (current === undefined) return;
      const i = current.indexOf(listener as (payload: never) => void);
      if (i >= 0) current.splice(i, 1);
    };
  }

  emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const list = this.#listeners.get(event);
    if (list === undefined) return;
    for (const listener of [...list]) {
      try {
        (listener as (p: Events[K]) => void)(payload);
      } catch (error) {
        process.emitWarning(error instanceof Error ? error : new Error(String(error)), { code: 'EBB_LISTENER_FAILED' });
      }
    }
  }
}
