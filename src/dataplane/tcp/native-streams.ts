import util from 'node:util';

/**
 * Node's stream-handle layer (`internalBinding('stream_wrap')`, reached through `process.binding`),
 * which TCP flows and HTTP connections use to read and write a socket's handle without net.Socket's
 * stream plumbing.
 *
 * Why: a small request through a TCP listener is two reads and two writes, and profiling showed the
 * JavaScript around each (onStreamRead and the onread callbacks; Writable.write, createWriteWrap,
 * writeOrBuffer, Socket._write) costing more than a third of ebb's user time per request, beside
 * HAProxy's `mode tcp` which does the same system calls. Going to the handle does what net.Socket
 * does for a buffer write and a user-buffer read, minus the stream state a flow does not use.
 *
 * What is relied on, checked on Node 20 and 24 (and by this file's tests on whichever Node runs them):
 * - `handle.writeBuffer(req, buffer)` returns 0 or a negative errno; when the kernel did not take every
 *   byte, `streamBaseState[kLastWriteWasAsync]` is 1 and `req.oncomplete(status)` is called later
 *   (libuv never completes a TCP write inside the call). `req` must be a `WriteWrap`: any other value
 *   aborts the process on Node 20 (a C++ assertion), so nothing else is ever passed.
 * - A write that completes at once does not touch `req`, so one spare `WriteWrap` serves every such write.
 * - `handle.onread` is called with the byte count in `streamBaseState[kReadBytesOrError]`; in user-buffer
 *   mode the value it returns, when a Uint8Array, is the buffer the next read goes into.
 *
 * When any of it is missing (another runtime, a Node that changed it), `nativeStreams` is null and
 * flows use net.Socket's public interface as before: the same behaviour, at the old cost.
 * `process.binding` is deprecated in documentation only; under `--pending-deprecation` reaching it
 * prints DEP0111 once.
 */
export interface NativeStreams {
  readonly newWriteReq: () => WriteReq;
  /** Bytes of the last read (or a negative errno), as `handle.onread` sees them. */
  readonly readBytes: () => number;
  /** Whether the last `writeBuffer` left bytes for libuv to write later. */
  readonly lastWriteWasAsync: () => boolean;
}

/** A `WriteWrap`: what `writeBuffer` is given, and what it completes later when the write was left pending. */
export interface WriteReq {
  oncomplete: ((status: number) => void) | null;
  /** Keeps the written memory alive until the write completes (as Node's own writes do). */
  buffer: Buffer | null;
}

/** The handle under a plain TCP net.Socket, as far as flows use it. */
export interface TcpHandle {
  writeBuffer(req: WriteReq, data: Buffer): number;
  writeLatin1String(req: WriteReq, data: string): number;
  readStop(): number;
  /** Reads into `buffer` from now on, and tells `onread` only the byte count (what `onread` sockets use). */
  useUserBuffer?(buffer: Uint8Array): void;
  reading: boolean;
  onread: (this: TcpHandle, arrayBuffer: ArrayBuffer | undefined) => Uint8Array | undefined;
}

interface StreamWrapBinding {
  WriteWrap?: unknown;
  streamBaseState?: unknown;
  kReadBytesOrError?: unknown;
  kLastWriteWasAsync?: unknown;
}

function load(): NativeStreams | null {
  const binding = (process as { binding?: (name: string) => unknown }).binding;
  if (typeof binding !== 'function') return null;
  let b: StreamWrapBinding;
  try {
    b = binding.call(process, 'stream_wrap') as StreamWrapBinding;
  } catch {
    return null;
  }
  const { WriteWrap, streamBaseState: state, kReadBytesOrError: kRead, kLastWriteWasAsync: kAsync } = b;
  if (typeof WriteWrap !== 'function' || !(state instanceof Int32Array) || typeof kRead !== 'number' || typeof kAsync !== 'number') return null;
  const Ctor = WriteWrap as new () => WriteReq;
  return {
    newWriteReq: () => {
      const req = new Ctor();
      req.oncomplete = null;
      req.buffer = null;
      return req;
    },
    readBytes: () => state[kRead] as number,
    lastWriteWasAsync: () => state[kAsync] !== 0,
  };
}

export const nativeStreams: NativeStreams | null = load();

/**
 * The TCP handle under `socket` when it is a plain TCP socket that is not destroyed (and, with
 * `connected`, no longer connecting); null otherwise (a TLS socket's handle is the TLS layer).
 */
export function tcpHandleOf(socket: { readonly connecting: boolean; readonly destroyed: boolean }, { connected }: { connected: boolean }): TcpHandle | null {
  if (socket.destroyed || (connected && socket.connecting)) return null;
  const handle = (socket as unknown as { _handle?: { constructor?: { name?: string } } | null })._handle;
  if (handle == null || handle.constructor?.name !== 'TCP') return null;
  return handle as unknown as TcpHandle;
}

/** An error for a negative errno from a handle call, shaped as Node's own (`code`, `errno`, `syscall`). */
export function handleError(errno: number, syscall: 'read' | 'write'): NodeJS.ErrnoException {
  const code = util.getSystemErrorName(errno);
  const error: NodeJS.ErrnoException = new Error(`${syscall} ${code}`);
  error.errno = errno;
  error.code = code;
  error.syscall = syscall;
  return error;
}

/**
 * Refreshes a socket's idle timer (`setTimeout`), as net.Socket does on each read and write it makes
 * itself (`_unrefTimer`, public since Node 0.x though undocumented): for reads and writes that go
 * straight to the handle.
 */
export function refreshIdleTimer(socket: object): void {
  (socket as { _unrefTimer?: () => void })._unrefTimer?.();
}
