import type { Socket } from 'node:net';
import { handleError, nativeStreams, refreshIdleTimer, tcpHandleOf } from './tcp/native-streams.ts';
import type { TcpHandle, WriteReq } from './tcp/native-streams.ts';

/**
 * What the HTTP data plane writes to one socket (a client's or a target's), as `socket.write` would
 * write it, but straight to the socket's TCP handle while nothing is queued in the socket
 * (tcp/native-streams.ts): no `Writable.write`, no request object made per write.
 *
 * It keeps `socket.write`'s contract, so callers need not know which way a write went:
 * - The return value is false when the caller should wait for the socket's 'drain' before writing
 *   more: a write the kernel did not take whole is in flight, and 'drain' is emitted on the socket
 *   once libuv has written it (or net.Socket emits its own, for a write that went through it).
 * - Order: a write made while one is in flight goes through net.Socket, which hands it to the same
 *   handle; libuv writes a handle's requests in order, and `end()`'s shutdown waits for them.
 * - The socket's timer (`setTimeout`), when it has one (a closing grace, a tunnel), is refreshed by each
 *   write, as net.Socket refreshes it; the socket's `bytesWritten` counts the write either way.
 * - A write error destroys the socket with the error, as net.Socket does.
 * Anything else — a TLS socket, one still connecting, corked, ended, with bytes queued, a Node
 * without the stream layer — is written by net.Socket itself.
 */
export class SocketWriter {
  readonly #socket: Socket;
  #handle: TcpHandle | null = null;
  #spare: WriteReq | null = null;
  #inFlight: WriteReq | null = null;

  constructor(socket: Socket) {
    this.#socket = socket;
  }

  /** Bytes given to this socket that are not written yet (a Buffer among them may still be read from). */
  get holdsWrite(): boolean {
    return this.#inFlight !== null || this.#socket.writableLength > 0;
  }

  latin1(text: string): boolean {
    const handle = this.#direct();
    if (handle === null) return this.#socket.write(text, 'latin1');
    const req = (this.#spare ??= (nativeStreams as NonNullable<typeof nativeStreams>).newWriteReq());
    return this.#dispatched(req, handle.writeLatin1String(req, text), null);
  }

  buffer(chunk: Buffer): boolean {
    const handle = this.#direct();
    if (handle === null) return this.#socket.write(chunk);
    const req = (this.#spare ??= (nativeStreams as NonNullable<typeof nativeStreams>).newWriteReq());
    return this.#dispatched(req, handle.writeBuffer(req, chunk), chunk);
  }

  /** The handle to write to now, or null when net.Socket must write (see above). */
  #direct(): TcpHandle | null {
    const s = this.#socket;
    if (nativeStreams === null || this.#inFlight !== null || s.writableLength !== 0 || s.writableCorked !== 0 || s.writableEnded) return null;
    const known = this.#handle;
    if (known !== null && !s.destroyed) return known;
    return (this.#handle = tcpHandleOf(s, { connected: true }));
  }

  #dispatched(req: WriteReq, err: number, chunk: Buffer | null): boolean {
    const socket = this.#socket;
    if (err !== 0) {
      socket.destroy(handleError(err, 'write'));
      return false;
    }
    refreshIdleTimer(socket);
    if (!(nativeStreams as NonNullable<typeof nativeStreams>).lastWriteWasAsync()) return true;
    // libuv writes the rest later: the request (and the chunk it reads from) stays alive until then.
    this.#spare = null;
    this.#inFlight = req;
    req.buffer = chunk;
    req.oncomplete = (status: number) => this.#completed(req, status);
    return false;
  }

  #completed(req: WriteReq, status: number): void {
    if (this.#inFlight === req) this.#inFlight = null;
    req.buffer = null;
    req.oncomplete = null;
    const socket = this.#socket;
    if (socket.destroyed) return;
    if (status < 0) {
      socket.destroy(handleError(status, 'write'));
      return;
    }
    refreshIdleTimer(socket);
    socket.emit('drain');
  }
}
