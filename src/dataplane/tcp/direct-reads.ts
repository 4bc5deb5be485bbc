import net from 'node:net';
import type { Socket } from 'node:net';

/**
 * Reads of a TCP flow's sockets into a buffer of each socket's own (`onread`, Node docs: net,
 * `socket.connect(options)`), instead of a new buffer per read.
 *
 * Why: piping through Node's streams allocates a 64 KiB buffer for every read, shrinks it, wraps
 * it in a Buffer and pushes it through a Readable before the other side's write. Measured side by
 * side with HAProxy's `mode tcp` (bench/protocols.sh), that cost 1.55 × HAProxy's CPU per GiB in
 * bulk and 1.3 × per small request for a bare `socket.pipe()`; reading into a buffer the socket
 * keeps, and writing straight from it, halves the bulk cost and takes a quarter off small requests.
 *
 * A read is written to the other side at once. When that write completes at once (the kernel took
 * every byte: `writableLength` is 0 after it), the buffer is read into again; when it does not, the
 * pending write still points at the buffer's memory, so the socket is given a new one for its next
 * read and the old one goes with the write. Nothing is copied either way.
 *
 * The buffer starts small (a socket that carries little holds 4 KiB, not 64), grows to 64 KiB once
 * a read fills it (bulk moves in reads as large as Node's own), and shrinks back after a small read.
 */
export const SMALL_READ_BUFFER = 4 * 1024;
export const LARGE_READ_BUFFER = 64 * 1024;

/**
 * What is done with each read: `chunk` is a view of the socket's buffer, valid only during the call.
 * Returns whether `chunk` is free again (it was written at once, or dropped) and whether to keep
 * reading (false: reading stops until the socket is resumed, for back-pressure).
 */
export type DirectRead = (chunk: Buffer) => ReadOutcome;

/**
 * - `free`: the chunk is free again; keep reading.
 * - `held`: a write still holds the chunk; keep reading (into a new buffer).
 * - `held-full`: a write still holds the chunk and the other side is full: stop reading until the
 *   socket is resumed.
 */
export type ReadOutcome = 'free' | 'held' | 'held-full';

/** The `onread` option of a socket whose reads go to `read`. */
export function directReadOption(read: DirectRead): net.OnReadOpts {
  let buffer = Buffer.allocUnsafeSlow(SMALL_READ_BUFFER);
  let nextSize = SMALL_READ_BUFFER;
  let held = false;
  return {
    // Node asks for the buffer once when the socket starts and again after every read.
    buffer: () => {
      if (held || nextSize !== buffer.length) buffer = Buffer.allocUnsafeSlow(nextSize);
      held = false;
      return buffer;
    },
    // `buf` is the buffer given last, so `buffer` itself.
    callback: (n: number): boolean => {
      if (n === buffer.length) nextSize = LARGE_READ_BUFFER;
      else if (n <= SMALL_READ_BUFFER) nextSize = SMALL_READ_BUFFER;
      const outcome = read(buffer.subarray(0, n));
      held = outcome !== 'free';
      return outcome !== 'held-full';
    },
  };
}

/** Writes `chunk` to `to`, and says what became of it (see `ReadOutcome`). */
export function writeRead(to: Socket, chunk: Buffer): ReadOutcome {
  const more = to.write(chunk);
  if (to.writableLength === 0) return 'free';
  return more ? 'held' : 'held-full';
}

/** The accepted socket the connection's handle was moved out of: closed when its flow ends (see `adoptForDirectReads`). */
export type HandleHusk = Socket;

/**
 * An accepted connection's handle, moved into a socket that reads with `onread`.
 *
 * `net.Server` takes no `onread` for the sockets it accepts, so the handle under the accepted socket
 * is taken out of it and given to a new `net.Socket({ handle, onread })` — the constructor Node's own
 * server uses for each accepted connection. The accepted socket is left without a handle and kept
 * open (the husk) until the flow ends, so the server's connection count and whatever counts its
 * `'close'` (the connection limit) still see the connection for as long as it lives.
 *
 * Returns null (and leaves the socket as it was) when the socket is not a plain, open TCP socket with
 * nothing read yet — a TLS socket, or one whose PROXY header left bytes behind — so the caller reads
 * it as a stream instead.
 */
export function adoptForDirectReads(socket: Socket, onread: net.OnReadOpts): { socket: Socket; husk: HandleHusk } | null {
  const inner = socket as unknown as { _handle?: { readStop?: unknown } | null };
  const handle = inner._handle;
  if (socket.destroyed || socket.readableLength > 0) return null;
  // A TLS socket's handle is the TLS layer (TLSWrap), not a TCP handle.
  if (handle == null || typeof handle.readStop !== 'function' || handle.constructor?.name !== 'TCP') return null;
  inner._handle = null;
  const options = { handle, onread, allowHalfOpen: socket.allowHalfOpen, readable: true, writable: true };
  const adopted = new net.Socket(options as net.SocketConstructorOpts);
  return { socket: adopted, husk: socket };
}
