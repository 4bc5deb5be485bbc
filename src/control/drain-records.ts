import type { TypedEmitter } from '../shared/typed-emitter.ts';
import type { StoreOp } from '../domain/store-port.ts';
import type { ControlEvents } from './events.ts';
import type { DrainRecord } from './outputs.ts';
import { del, put } from './store-transaction.ts';

/**
 * The records of finished drains, oldest first, at most `limit` of them in memory and in the store.
 * A record is added in two steps around the commit: `opsToAdd` gives the store operations for the
 * commit, and `ended` keeps the records and announces them once the commit has succeeded.
 */
export class DrainRecordLog {
  #records: DrainRecord[] = [];
  readonly #limit: number;
  readonly #events: TypedEmitter<ControlEvents>;
  readonly #log: (entry: Record<string, unknown>) => void;

  constructor(limit: number, events: TypedEmitter<ControlEvents>, log: (entry: Record<string, unknown>) => void) {
    this.#limit = limit;
    this.#events = events;
    this.#log = log;
  }

  /** The stored records, at start. */
  load(records: readonly DrainRecord[]): void {
    this.#records.push(...records);
    this.#records.sort((a, b) => a.endedAt - b.endedAt);
  }

  /** The newest `limit` records, oldest first. */
  recent(limit: number): DrainRecord[] {
    return this.#records.slice(-limit);
  }

  /** Store operations that add `records` and drop the oldest beyond the limit, so the store stays bounded. */
  opsToAdd(records: readonly DrainRecord[]): StoreOp[] {
    const ops = records.map((r) => put('drainRecord', r.id, r));
    const excess = this.#records.length + records.length - this.#limit;
    if (excess > 0) ops.push(...this.#records.slice(0, excess).map((r) => del('drainRecord', r.id)));
    return ops;
  }

  /** After the commit of `opsToAdd`: keeps the records and tells subscribers and the log. */
  ended(records: readonly DrainRecord[]): void {
    this.#records.push(...records);
    if (this.#records.length > this.#limit) this.#records = this.#records.slice(-this.#limit);
    for (const r of records) {
      this.#events.emit('drain:end', r);
      this.#log({
        event: 'drain:end',
        targetGroup: r.targetGroupName,
        target: `${r.targetId}:${r.port}`,
        outcome: r.outcome,
        durationMs: r.endedAt - r.startedAt,
        requestsCompleted: r.requestsCompleted,
        requestsCut: r.requestsCut,
        tunnelsClosed: r.tunnelsClosed,
      });
    }
  }
}
