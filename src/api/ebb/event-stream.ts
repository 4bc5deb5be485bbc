import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock, TimerHandle } from '../../shared/clock.ts';
import { ebbError } from '../../shared/errors.ts';
import { iso } from './http.ts';

/**
 * The Server-Sent Events stream (`GET /ebb/v1/events`), in the format of the HTML standard
 * (https://html.spec.whatwg.org/multipage/server-sent-events.html): each event is `id`, `event` and one
 * `data` line of JSON, ended by a blank line. A comment line every `heartbeatMs` keeps proxies and idle
 * timers from closing a quiet stream. Each client has a bounded buffer: a client that reads more slowly
 * than events come is sent a last `stream:dropped` event and closed, so it can reconnect (and read the
 * current state again) instead of holding ever more of ebb's memory. `Last-Event-ID` is not honoured:
 * a client that reconnects reads the state again through the other endpoints.
 */
export interface EventStreamOptions {
  readonly clock: Clock;
  /** Default 15 s. */
  readonly heartbeatMs?: number;
  /** Bytes a client may have unread before it is dropped. Default 1 MiB. */
  readonly maxBufferedBytes?: number;
  /** Clients at once; more are refused (ServiceUnavailable). Default 256. */
  readonly maxClients?: number;
}

export const DEFAULT_HEARTBEAT_MS = 15_000;
export const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;
export const DEFAULT_MAX_CLIENTS = 256;
/** How long a dropped or closing client has to take its last event before its connection is cut. */
const CLOSE_GRACE_MS = 2000;

interface Client {
  readonly res: ServerResponse;
  readonly heartbeat: { timer: TimerHandle | null };
  closed: boolean;
}

export class EventStream {
  readonly #clock: Clock;
  readonly #heartbeatMs: number;
  readonly #maxBuffered: number;
  readonly #maxClients: number;
  readonly #clients = new Set<Client>();
  #nextId = 1;
  #closed = false;
  /** Told when the number of clients goes from 0 to 1 or back (drain progress runs only while someone listens). */
  onListening: (listening: boolean) => void = () => undefined;

  constructor(options: EventStreamOptions) {
    this.#clock = options.clock;
    this.#heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.#maxBuffered = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    this.#maxClients = options.maxClients ?? DEFAULT_MAX_CLIENTS;
  }

  get clients(): number {
    return this.#clients.size;
  }

  /** Takes a client: answers 200 with the stream, then a `stream:ready` event once it is subscribed. */
  accept(req: IncomingMessage, res: ServerResponse, requestId: string): void {
    if (this.#closed) throw ebbError('ServiceUnavailable', 'ebb is stopping; reconnect to the event stream once it is back');
    if (this.#clients.size >= this.#maxClients) {
      throw ebbError('ServiceUnavailable', `ebb already streams events to ${this.#maxClients} clients; retry later or close another stream`);
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // nginx buffers proxied responses unless told not to (https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_buffering).
      'x-accel-buffering': 'no',
      'x-amzn-requestid': requestId,
    });
    req.socket.setNoDelay(true);
    const client: Client = { res, heartbeat: { timer: null }, closed: false };
    this.#clients.add(client);
    const beat = (): void => {
      client.heartbeat.timer = this.#clock.setTimer(this.#heartbeatMs, () => {
        if (client.closed) return;
        this.#write(client, `: heartbeat ${iso(this.#clock.wallTime())}\n\n`);
        beat();
      });
    };
    beat();
    res.on('close', () => this.#forget(client));
    if (this.#clients.size === 1) this.onListening(true);
    this.#write(client, this.#frame('stream:ready', { at: iso(this.#clock.wallTime()), heartbeatMs: this.#heartbeatMs }));
  }

  /** Sends an event to every client. */
  publish(type: string, data: object): void {
    if (this.#clients.size === 0) return;
    const frame = this.#frame(type, data);
    for (const c of [...this.#clients]) this.#write(c, frame);
  }

  /** Ends every stream with a last `stream:closing` event (ebb is stopping). */
  close(): void {
    this.#closed = true;
    const frame = this.#frame('stream:closing', { at: iso(this.#clock.wallTime()), reason: 'ebb is stopping' });
    for (const c of [...this.#clients]) this.#end(c, frame);
  }

  #frame(type: string, data: object): string {
    // JSON.stringify escapes line breaks inside strings, so the data is one line as the format needs.
    return `id: ${this.#nextId++}\nevent: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  }

  #write(client: Client, text: string): void {
    if (client.closed) return;
    if (client.res.writableLength + Buffer.byteLength(text) > this.#maxBuffered) {
      const why = `this client had more than ${this.#maxBuffered} bytes of events unread; reconnect and read the current state again`;
      this.#end(client, this.#frame('stream:dropped', { at: iso(this.#clock.wallTime()), reason: why }));
      return;
    }
    client.res.write(text);
  }

  #end(client: Client, last: string): void {
    if (client.closed) return;
    client.res.end(last);
    const socket = client.res.socket;
    this.#forget(client);
    // A client that does not read cannot take its last event either: its connection is cut soon after.
    if (socket !== null) {
      const t = this.#clock.setTimer(CLOSE_GRACE_MS, () => socket.destroy());
      socket.once('close', () => t.cancel());
    }
  }

  #forget(client: Client): void {
    if (client.closed) return;
    client.closed = true;
    client.heartbeat.timer?.cancel();
    this.#clients.delete(client);
    if (this.#clients.size === 0) this.onListening(false);
  }
}
