import diagnosticsChannel from 'node:diagnostics_channel';
import { CHANNEL_NAMES, FORWARDED_CHANNEL_NAMES, type RequestEndMessage } from '../dataplane/channels.ts';
import { publishConnectionCounts } from '../dataplane/connection-limit.ts';
import { RequestDigest, type RequestDigestMessage } from '../dataplane/request-digest.ts';
import type { Clock, TimerHandle } from '../shared/clock.ts';
import type { FromWorker, RequestEnds } from './protocol.ts';

export interface TelemetryForwarderOptions {
  /** Hands a `telemetry` message to the link; false when the link refused it (closed or full). */
  readonly send: (message: Extract<FromWorker, { type: 'telemetry' }>) => boolean;
  readonly clock: Clock;
  /** How long the first event of a batch waits for others; default 20 ms. */
  readonly flushMs?: number;
  /** Events in one batch, sent at once when reached; default 500. */
  readonly maxBatch?: number;
}

/**
 * Forwards a worker's diagnostics-channel messages to the control side, so the metrics and access
 * logs there (which subscribe to the same channels in their own process) count every worker's work.
 *
 * Subscribing is what makes the data plane publish (it builds no message while a channel has no
 * subscriber), so a worker always pays for its telemetry; batching keeps the cost per event to an
 * array push. Bounded: a batch holds at most `maxBatch` events and is sent when full or `flushMs`
 * after its first event; when the link refuses a batch, its events are dropped and counted, and the
 * count travels with the next batch sent (`dropped`), so the control side can say what it missed.
 *
 * Request ends go one of two ways, as the control side asks (`requestEnds`): each message (`raw`, the
 * default: an access log there writes a line per request), or folded into the batch's digest
 * (`digest`, request-digest.ts: what the metrics count, at a fraction of the cost). A batch is sent
 * before the way changes, so every request end is in exactly one message or one digest. Digests
 * published in this process (the ebb retiring at a hot restart relays its own workers' there) are
 * merged into the batch's digest, so they reach the next ebb too.
 */
export class TelemetryForwarder {
  readonly #send: TelemetryForwarderOptions['send'];
  readonly #clock: Clock;
  readonly #flushMs: number;
  readonly #maxBatch: number;
  #events: Array<readonly [string, unknown]> = [];
  readonly #digest = new RequestDigest();
  /** Whether this process's own request ends are folded (`digest`) rather than sent each (`raw`). */
  #folding = false;
  #dropped = 0;
  /** Dropped since this forwarder started (for the worker's own log). */
  #droppedTotal = 0;
  #timer: TimerHandle | null = null;
  readonly #subscriptions: Array<readonly [string, (message: unknown) => void]> = [];

  constructor(options: TelemetryForwarderOptions) {
    this.#send = options.send;
    this.#clock = options.clock;
    this.#flushMs = options.flushMs ?? 20;
    this.#maxBatch = options.maxBatch ?? 500;
  }

  /**
   * Subscribes to every channel a data plane publishes on (`FORWARDED_CHANNEL_NAMES`: not
   * `ebb:connection:lost`, which ebb's own process publishes when it learns a worker is gone, and which
   * a worker has no say in), then has the connection limit say the client connections open now: none
   * in a new worker, but the ebb retiring at a hot restart holds connections the control side has not
   * seen open, and they are counted there from this first batch on.
   */
  start(): void {
    if (this.#subscriptions.length > 0) return;
    for (const name of FORWARDED_CHANNEL_NAMES) {
      const onMessage =
        name === CHANNEL_NAMES.requestEnd
          ? (message: unknown): void => {
              if (this.#folding) this.#fold(message as RequestEndMessage);
              else this.#add(name, message);
            }
          : (message: unknown): void => this.#add(name, message);
      diagnosticsChannel.subscribe(name, onMessage);
      this.#subscriptions.push([name, onMessage]);
    }
    // Published here only by a relay of this process's own workers (checked there).
    const onDigest = (message: unknown): void => {
      this.#digest.merge(message as RequestDigestMessage);
      this.#batched(this.#digest.size);
    };
    diagnosticsChannel.subscribe(CHANNEL_NAMES.requestDigest, onDigest);
    this.#subscriptions.push([CHANNEL_NAMES.requestDigest, onDigest]);
    publishConnectionCounts();
  }

  /** Unsubscribes and sends what is batched. */
  stop(): void {
    for (const [name, onMessage] of this.#subscriptions.splice(0)) diagnosticsChannel.unsubscribe(name, onMessage);
    this.flush();
  }

  /** How request ends travel from now on: each message (`raw`) or folded (`digest`). */
  requestEnds(way: RequestEnds): void {
    if ((way === 'digest') === this.#folding) return;
    this.flush();
    this.#folding = way === 'digest';
  }

  get droppedTotal(): number {
    return this.#droppedTotal;
  }

  /** Sends the batch now (and a count of drops with no events, so it is not held back until the next event). */
  flush(): void {
    this.#timer?.cancel();
    this.#timer = null;
    const digest = this.#digest.take();
    if (this.#events.length === 0 && this.#dropped === 0 && digest === null) return;
    const events = this.#events;
    this.#events = [];
    if (this.#send({ type: 'telemetry', events, dropped: this.#dropped, ...(digest !== null && { digest }) })) {
      this.#dropped = 0;
    } else {
      const lost = events.length + (digest?.requests ?? 0);
      this.#dropped += lost;
      this.#droppedTotal += lost;
    }
  }

  #add(name: string, message: unknown): void {
    this.#events.push([name, plain(message)]);
    this.#batched(this.#events.length);
  }

  #fold(message: RequestEndMessage): void {
    this.#digest.add(message);
    this.#batched(this.#digest.size);
  }

  /** A batch holding `n` of something is sent when full, else `flushMs` after its first event. */
  #batched(n: number): void {
    if (n >= this.#maxBatch) this.flush();
    else this.#timer ??= this.#clock.setTimer(this.#flushMs, () => {
      this.#timer = null;
      this.flush();
    });
  }
}

/**
 * The message as plain JSON. The channels' messages are plain records of strings, numbers, booleans
 * and null, with at most one nested record (`tls`), and pass as they are; anything else found (an
 * Error, a bigint, a class instance a publisher may add later) is converted, so serializing a batch
 * never throws nor silently turns it into `{}`.
 */
export function plain(message: unknown, depth = 0): unknown {
  if (message === null || typeof message === 'string' || typeof message === 'boolean') return message;
  if (typeof message === 'number') return Number.isFinite(message) ? message : null;
  if (typeof message === 'bigint') return message.toString();
  if (typeof message !== 'object') return null;
  if (message instanceof Error) return message.message;
  if (depth >= 4) return null;
  if (Array.isArray(message)) return message.map((v) => plain(v, depth + 1));
  if (message instanceof Map) return plain(Object.fromEntries([...(message as Map<unknown, unknown>)].map(([k, v]) => [String(k), v])), depth);
  if (message instanceof Set) return plain([...(message as Set<unknown>)], depth);
  const record = message as Record<string, unknown>;
  if (Object.getPrototypeOf(record) === Object.prototype && isFlat(record)) return record;
  const copy: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record)) if (v !== undefined && typeof v !== 'function' && typeof v !== 'symbol') copy[k] = plain(v, depth + 1);
  return copy;
}

/** Every value a string, finite number, boolean, null or undefined, or a record of those (one level down). */
function isFlat(record: Record<string, unknown>, nested = false): boolean {
  for (const k in record) {
    const v = record[k];
    if (v === null || v === undefined || typeof v === 'string' || typeof v === 'boolean') continue;
    if (typeof v === 'number' && Number.isFinite(v)) continue;
    if (!nested && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype && isFlat(v as Record<string, unknown>, true)) continue;
    return false;
  }
  return true;
}
