import type { Socket } from 'node:net';

/**
 * The idle timeout of a socket, as its listener's ticker checks it. It looks at the socket's byte counters
 * (`bytesRead`, `bytesWritten`: the handle's own, so they count the reads and writes ebb makes straight
 * to the handle as well as the stream's) once per tick, instead of a timer that every read and write
 * re-arms: re-arming a Node timer reads the loop's clock and moves the timer in its list, twice or more
 * per request, where a look per tick costs nothing per request.
 *
 * A write the kernel takes in parts (a client slow to read) moves too, each time libuv hands it more:
 * the bytes libuv still holds for the socket (its handle's `writeQueueSize`; under TLS, the TCP
 * socket's beneath, as the TLS layer's own stays whole until the write is done) shrink. That is what
 * net.Socket's own timer looks at before it fires (`_onTimeout`), no finer: the kernel wakes a writer
 * only once much of its send buffer is free. Quiet is counted from the first look that saw something
 * change, never from before the last byte moved: a timeout is never early, and at most two ticks late.
 */
export class QuietWatch {
  #moved = 0;
  #queued = 0;
  #since: number;

  constructor(now: number) {
    this.#since = now;
  }

  /**
   * Whether nothing has moved either way for `timeoutMs` as of `now`: true once, then (as a socket's own
   * timer) not again until something moves and stops. A socket whose own timer runs (`setTimeout`: ebb
   * is closing it, with a grace) or that is destroyed is left to that.
   */
  expired(socket: Socket, now: number, timeoutMs: number): boolean {
    if (socket.timeout || socket.destroyed) return false;
    const moved = socket.bytesRead + socket.bytesWritten;
    const s = socket as QueuedSocket;
    const queued = (s._handle?.writeQueueSize ?? 0) + (s._parent?._handle?.writeQueueSize ?? 0);
    if (moved !== this.#moved || queued !== this.#queued) {
      this.#moved = moved;
      this.#queued = queued;
      this.#since = now;
      return false;
    }
    if (now - this.#since < timeoutMs) return false;
    this.#since = Number.POSITIVE_INFINITY;
    return true;
  }
}

/** What libuv still holds to write on the socket's handle (net.Socket reads it the same way), and on a TLS socket's TCP socket. */
interface QueuedSocket {
  readonly _handle?: { readonly writeQueueSize?: number } | null;
  readonly _parent?: QueuedSocket | null;
}
