import net from 'node:net';
import type { Socket } from 'node:net';
import { handleError, nativeStreams, tcpHandleOf } from './native-streams.ts';
import type { NativeStreams, TcpHandle, WriteReq } from './native-streams.ts';

/**
 * Reads of a TCP flow's sockets into a buffer of each socket's own (`onread`, Node docs: net,
 * `socket.connect(options)`), instead of a new buffer per read. An HTTP client connection, which
 * parses what it reads rather than writing it on, reads into one buffer shared by all of them
 * (`readSharedInPlace`).
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
 * The buffer starts small (a socket that carries little holds 4 KiB, not 48), grows to 48 KiB once
 * a read fills it, and shrinks back after a small read.
 */
export const SMALL_READ_BUFFER = 4 * 1024;
/**
 * 48 KiB, not Node's 64: each read is written on whole, and a 65,536-byte write is 53 bytes more
 * than loopback's largest segment (MSS 65,483: MTU 65,536 less the IP and TCP headers), so it went
 * out as a full segment and a 53-byte one, and the reader was woken for each. Measured through a TCP
 * listener (1 GiB, one curl, ebb and HAProxy each on one core, bench/protocols.sh's setup, three to six
 * rounds each): 64 KiB cost 0.89–1.22 CPU s per GiB in all rounds but one (0.69), against HAProxy's
 * 0.51–0.97 in the same runs; 48 and 60 KiB 0.50–0.74, 32 KiB 0.56–0.77. Almost all of the difference
 * was system time.
 */
export const LARGE_READ_BUFFER = 48 * 1024;

/**
 * The one buffer every shared reader of the process reads into (see `DirectReader`'s `shared`): a
 * read is delivered, and done with, before libuv makes the next one, so one buffer serves them all
 * as long as nothing keeps a view of it past the read (`inSharedReadBuffer`, `ownedChunk`).
 */
let sharedReadBuffer: Buffer | null = null;

/** Whether `chunk` lies in the shared read buffer, which the next read of any shared reader overwrites. */
export function inSharedReadBuffer(chunk: Buffer): boolean {
  return sharedReadBuffer !== null && chunk.buffer === sharedReadBuffer.buffer;
}

/** `chunk`, or a copy of it when it lies in the shared read buffer: what may be kept past the read. */
export function ownedChunk(chunk: Buffer): Buffer {
  return inSharedReadBuffer(chunk) ? Buffer.from(chunk) : chunk;
}

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

/**
 * What a reader's reads go to, as an object's method rather than a closure: `side` is the number the
 * reader was made with (a TCP flow reads two sockets into one sink). A call through one method of a
 * few classes is one V8 can inline into the read path; a call through a closure made per socket is
 * not, and profiling showed it as a frame of its own on every read.
 */
export interface DirectReadSink {
  directRead(chunk: Buffer, side: number): ReadOutcome;
}

/** A `DirectRead` function as a sink. */
class FunctionSink implements DirectReadSink {
  readonly #read: DirectRead;
  constructor(read: DirectRead) {
    this.#read = read;
  }
  directRead(chunk: Buffer): ReadOutcome {
    return this.#read(chunk);
  }
}

/** The `onread` option of a socket whose reads go to `read` (through net.Socket's own read path). */
export function directReadOption(read: DirectRead): net.OnReadOpts {
  return new DirectReader(read).option;
}

/** What a taken-over handle carries for `DirectReader.#fastRead`: its reader. */
const READER = Symbol('ebb.directReader');
interface TakenOverHandle extends TcpHandle {
  [READER]: DirectReader;
}

/**
 * A socket's reads into the buffer it keeps. `option` is the `onread` the socket is made with;
 * `takeOver`, once the socket has its TCP handle, also moves each read past net.Socket's read
 * plumbing (native-streams.ts): the handle's read goes straight to `read`. A read of the same length
 * as the last one into the same buffer reuses its view, so a flow of small, even messages allocates
 * nothing per read.
 */
export class DirectReader {
  #buffer: Buffer;
  #nextSize: number;
  /** Reads into the process's shared buffer (its sink copies what it keeps) rather than one of its own. */
  readonly #shared: boolean;
  #held = false;
  #view: Buffer | null = null;
  /** Set by `takeOver`: the socket read, and the `onread` its handle had (for the end of stream and errors). */
  #socket: Socket | null = null;
  #portableOnread: TcpHandle['onread'] | null = null;
  readonly #sink: DirectReadSink;
  readonly #side: number;
  #option: net.OnReadOpts | null = null;

  /**
   * `read`: a function, or a sink whose `directRead` is given `side` with each read. `shared`: read
   * into the buffer every shared reader of the process reads into, so a socket read this way holds
   * no buffer of its own between reads; its sink must return `free` (copying, with `ownedChunk`,
   * whatever it keeps) or `held-full` for a chunk it is done with but whose socket should stop.
   */
  constructor(read: DirectRead | DirectReadSink, side = 0, shared = false) {
    this.#sink = typeof read === 'function' ? new FunctionSink(read) : read;
    this.#side = side;
    this.#shared = shared;
    this.#buffer = shared ? (sharedReadBuffer ??= Buffer.allocUnsafeSlow(LARGE_READ_BUFFER)) : Buffer.allocUnsafeSlow(SMALL_READ_BUFFER);
    this.#nextSize = this.#buffer.length;
  }

  /** The `onread` option of a socket this reader reads (`net.connect`); made when first asked for, as a socket read in place needs none. */
  get option(): net.OnReadOpts {
    return (this.#option ??= {
      // Node asks for the buffer once when the socket starts and again after every read.
      buffer: () => {
        this.#renew();
        return this.#buffer;
      },
      // The buffer Node read into is the one given last, so `#buffer` itself.
      callback: (n: number): boolean => this.#onRead(n) !== 'held-full',
    });
  }

  /**
   * An accepted plain TCP socket read, from now on, by this reader: the handle reads into the
   * reader's buffer and each read goes from the handle to the sink (`takeOver`), with no buffer,
   * Buffer or stream event made for it. Returns false, and leaves the socket as it was, when it is not
   * a plain TCP socket with nothing read yet, or this Node lacks what it takes (then read it as a
   * stream).
   *
   * Node gives no `onread` to the sockets a server accepts. The socket stays the one the server
   * accepted: its handle is told to read into the reader's buffer, and the socket is marked as
   * net.Socket marks one made with `onread`, so that `pause()` and `resume()` stop and start the
   * handle's reads. (Moving the handle into a second net.Socket made with `onread`, as ebb did
   * before, cost each new connection about a tenth more CPU and half again the memory that outlived
   * a scavenge, on connection churn.)
   */
  readInPlace(socket: Socket): boolean {
    const onreadKey = onreadKeyOf(socket);
    const handle = tcpHandleOf(socket, { connected: true });
    if (onreadKey === null || nativeStreams === null || handle?.useUserBuffer === undefined || socket.readableLength > 0) return false;
    const marked = socket as unknown as Record<symbol, unknown>;
    // Only tested for truth by net.Socket once the reader has the handle, as for a socket whose `onread`
    // buffer is a function. (Its `onread` callback is called only on the read path the reader takes over.)
    marked[onreadKey] = true;
    // A socket that has delivered a chunk as a stream (a PROXY header read by 'data') has a read(0) of
    // its stream's on the way (`maybeReadMore`), which on a socket so marked would start the handle's
    // reads again after a pause(). A socket that never delivered one stays `reading` for good (its
    // constructor's read(0) is never answered by a push); this one is made the same.
    const state = (socket as unknown as { _readableState?: { reading: boolean } })._readableState;
    if (state !== undefined && !state.reading) state.reading = true;
    handle.useUserBuffer(this.#buffer);
    this.takeOver(socket);
    return true;
  }

  /**
   * Reads from now on go from `socket`'s handle to `read` without net.Socket's onStreamRead (which
   * also refreshes `socket.setTimeout`'s timer: a TCP flow and an HTTP client connection keep their
   * idle clocks on their listener's ticker, and a tunnel refreshes the timer itself). An end of stream
   * or an error still goes through net.Socket. Does nothing when the socket is not a plain TCP one
   * or Node's stream layer is not reachable.
   */
  takeOver(socket: Socket): void {
    const handle = tcpHandleOf(socket, { connected: false }) as TakenOverHandle | null;
    if (nativeStreams === null || handle === null) return;
    this.#socket = socket;
    this.#portableOnread = handle.onread;
    handle[READER] = this;
    handle.onread = DirectReader.#fastRead as TcpHandle['onread'];
  }

  /**
   * Every taken-over handle's `onread`: one function for all of them, which finds its reader in one
   * property of the handle (and the rest on the reader), rather than a closure made per socket.
   * Measured on connection churn (wrk `Connection: close`, 16 clients, `--trace-gc-nvp`): with a
   * closure per target connection, each HTTP connection left 2.7–3.4 KB in the old generation (its
   * target side: socket, reader, connection), which V8's scavenges kept until a mark-compact though
   * nothing live pointed at it; with this function, 1.3–1.4 KB, and scavenge time per connection
   * halved. Why a closure had that effect was not found. Three properties on the handle instead of one
   * cost TCP keep-alive requests about a tenth more CPU in the same A/B runs; one costs nothing seen.
   */
  static readonly #fastRead = function fastRead(this: TakenOverHandle, arrayBuffer: ArrayBuffer | undefined): Uint8Array | undefined {
    // No destroyed check: net.Socket sets a destroyed socket's handle.onread to a no-op.
    const n = (nativeStreams as NativeStreams).readBytes();
    const reader = this[READER];
    if (n <= 0) return (reader.#portableOnread as TcpHandle['onread']).call(this, arrayBuffer);
    if (reader.#onRead(n) === 'held-full') {
      // As net.Socket stops reading when a push returns false; `socket.resume()` starts it again.
      this.reading = false;
      const err = this.readStop();
      if (err !== 0) reader.#socket?.destroy(handleError(err, 'read'));
    }
    // The buffer for the next read when it is a new one (undefined: the same one again).
    const before = reader.#buffer;
    reader.#renew();
    return reader.#buffer === before ? undefined : reader.#buffer;
  };

  #onRead(n: number): ReadOutcome {
    const buffer = this.#buffer;
    let view = this.#view;
    if (view === null || view.length !== n) view = this.#view = buffer.subarray(0, n);
    const outcome = this.#sink.directRead(view, this.#side);
    // A shared reader's sink keeps nothing of the chunk (see the constructor): its buffer is free.
    if (this.#shared) return outcome;
    if (n === buffer.length) this.#nextSize = LARGE_READ_BUFFER;
    else if (n <= SMALL_READ_BUFFER) this.#nextSize = SMALL_READ_BUFFER;
    this.#held = outcome !== 'free';
    return outcome;
  }

  /** A new buffer when a write holds the last one, or the size should change. */
  #renew(): void {
    if (this.#held || this.#nextSize !== this.#buffer.length) {
      this.#buffer = Buffer.allocUnsafeSlow(this.#nextSize);
      this.#view = null;
    }
    this.#held = false;
  }
}

/** Writes `chunk` to `to` through net.Socket, and says what became of it (see `ReadOutcome`). */
export function writeRead(to: Socket, chunk: Buffer): ReadOutcome {
  const more = to.write(chunk);
  if (to.writableLength === 0) return 'free';
  return more ? 'held' : 'held-full';
}

/**
 * The writes of a flow's reads to one socket. While nothing is queued in the socket, a chunk goes
 * straight to its TCP handle (native-streams.ts): when the kernel takes every byte the chunk is free
 * at once, as with `writeRead`; when it does not, the write keeps the chunk, the reader stops
 * (`held-full`) and `onWritable` is called once libuv has written the rest — one write in flight per
 * direction, as a proxy with a full buffer stops reading. Anything else (a TLS socket, one still
 * connecting, ended or with bytes queued, no native streams) goes through `writeRead`, whose
 * back-pressure is the socket's own 'drain'. A flow counts the bytes it writes itself, whichever
 * way they went.
 */
export class DirectWriter {
  readonly #socket: Socket;
  readonly #onWritable: () => void;
  #spare: WriteReq | null = null;
  #pending: WriteReq | null = null;
  /** The socket's handle, once found (see `#direct`). */
  #known: TcpHandle | null = null;
  #endAfterWrite = false;

  constructor(socket: Socket, onWritable: () => void) {
    this.#socket = socket;
    this.#onWritable = onWritable;
  }

  write(chunk: Buffer): ReadOutcome {
    const socket = this.#socket;
    const native = nativeStreams;
    const handle = native !== null && this.#pending === null ? this.#direct() : null;
    if (native === null || handle === null) return writeRead(socket, chunk);
    const req = (this.#spare ??= native.newWriteReq());
    const err = handle.writeBuffer(req, chunk);
    if (err !== 0) {
      socket.destroy(handleError(err, 'write'));
      return 'free';
    }
    if (!native.lastWriteWasAsync()) return 'free';
    this.#spare = null;
    this.#pending = req;
    req.buffer = chunk;
    req.oncomplete = (status: number) => this.#completed(req, status);
    return 'held-full';
  }

  /**
   * Ends the socket's writable side (FIN) after what this writer has in flight. net.Socket would send
   * its FIN at once, behind the write in libuv's queue; but libuv refuses to reset a socket whose FIN
   * is queued (`uv_tcp_close_reset`: EINVAL), so a flow's reset after its grace would fail and the
   * socket would never close. Waiting here keeps the FIN out of libuv until the write is done, as
   * net.Socket's own queue does for its writes.
   */
  end(): void {
    if (this.#pending !== null) this.#endAfterWrite = true;
    else this.#socket.end();
  }

  /**
   * The socket's TCP handle when a write may go straight to it: nothing in net.Socket's queue, not
   * ended, connected and not destroyed. The handle is found once and kept; a write checks that the
   * socket still has it (net.Socket drops it at once when destroyed) rather than reading `destroyed`,
   * which touches the readable state too: one more object per read, and profiling showed the read
   * path stalled on such loads.
   */
  #direct(): TcpHandle | null {
    const socket = this.#socket;
    if (socket.writableLength !== 0 || socket.writableEnded) return null;
    const known = this.#known;
    if (known !== null && (socket as unknown as { _handle: unknown })._handle === known) return known;
    return (this.#known = tcpHandleOf(socket, { connected: true }));
  }

  #completed(req: WriteReq, status: number): void {
    if (this.#pending === req) this.#pending = null;
    req.buffer = null;
    req.oncomplete = null;
    const socket = this.#socket;
    if (socket.destroyed) return;
    if (status < 0) {
      socket.destroy(handleError(status, 'write'));
      return;
    }
    if (this.#endAfterWrite) {
      this.#endAfterWrite = false;
      socket.end();
    }
    this.#onWritable();
  }
}

/**
 * net.Socket's own key for the buffer of a socket made with `onread` (lib/net.js `kBuffer`), found
 * once by its description on a socket; null when this Node has no such key. Each socket carries it
 * from its constructor on (null when made without `onread`); set, it makes the socket's `pause()`
 * and `resume()` stop and start its handle's reads, as for a socket made with `onread`.
 */
let foundOnreadKey: symbol | null | undefined;

function onreadKeyOf(socket: Socket): symbol | null {
  if (foundOnreadKey === undefined) foundOnreadKey = Object.getOwnPropertySymbols(socket).find((k) => k.description === 'kBuffer') ?? null;
  return foundOnreadKey;
}

/** An accepted plain TCP socket read in place into the buffer every shared reader reads into (see `DirectReader.readInPlace`). */
export function readSharedInPlace(socket: Socket, sink: DirectReadSink): boolean {
  return new DirectReader(sink, 0, true).readInPlace(socket);
}
