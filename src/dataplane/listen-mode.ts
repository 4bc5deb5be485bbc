import type net from 'node:net';
import { copyListeningSocket, type AcceptCopiesBinding } from './accept-copies.ts';

/**
 * How a data plane's listeners bind their port (docs/workers.md).
 * - `exclusive`: the process binds the port itself, alone: the one in-process data plane of `ebb serve`.
 * - `shared`: in a `node:cluster` worker, the primary binds one socket and every worker accepts on it.
 * - `reuseport`: each process binds a socket of its own with SO_REUSEPORT, and the kernel spreads new
 *   connections over them (Node 22.12+ on Linux).
 */
export type ListenMode = 'exclusive' | 'shared' | 'reuseport';

/** `server.listen` options for `mode`. A port of 0 cannot be given to each worker apart: it is shared. */
export function listenOptions(mode: ListenMode, host: string, port: number): net.ListenOptions {
  if (mode === 'shared' || (mode === 'reuseport' && port === 0)) return { host, port, exclusive: false };
  if (mode === 'reuseport') return { host, port, exclusive: true, reusePort: true } as net.ListenOptions;
  return { host, port, exclusive: true };
}

/**
 * The mode for data-plane workers on this Node and system: `reuseport` where Node has it (22.12+ and
 * 23.1+) and the kernel balances it (Linux), since one accept queue per worker spreads connections
 * evenly where a single shared socket wakes whichever worker the kernel picks; else `shared`.
 */
export function workerListenMode(nodeVersion: string = process.versions.node, platform: string = process.platform): ListenMode {
  if (platform !== 'linux') return 'shared';
  const [major = 0, minor = 0] = nodeVersion.split('.').map(Number);
  const reusePort = major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
  return reusePort ? 'reuseport' : 'shared';
}

/** A listening socket's handle as Node passes it between processes (the TCP wrap under a `net.Server`). */
export interface SocketHandle {
  close(callback?: () => void): void;
}

/**
 * Listening sockets an earlier ebb handed over at a hot restart (docs/restart.md), by the address and
 * port their listener was declared with. A listener opening on one of them listens on the handed-over
 * socket instead of binding a new one, so the connections queued on it, and every one that arrives
 * while the processes change places, are accepted by the new process: none is refused. An address may
 * have several (an ebb with workers, each with a socket of its own under SO_REUSEPORT): each is taken
 * once, in the order added; those no listener took are closed by `closeUnclaimed`.
 */
export class InheritedSockets {
  readonly #handles = new Map<string, SocketHandle[]>();

  add(address: string, port: number, handle: SocketHandle): void {
    const key = `${address}:${port}`;
    const list = this.#handles.get(key);
    if (list === undefined) this.#handles.set(key, [handle]);
    else list.push(handle);
  }

  has(address: string, port: number): boolean {
    return this.#handles.has(`${address}:${port}`);
  }

  /** The next handle for the address, once: null when none is left. */
  take(address: string, port: number): SocketHandle | null {
    const key = `${address}:${port}`;
    const list = this.#handles.get(key);
    const handle = list?.shift();
    if (list !== undefined && list.length === 0) this.#handles.delete(key);
    return handle ?? null;
  }

  /** Every handle left, by address, taken at once (the workers' pool hands them out). */
  takeAll(): Array<{ readonly address: string; readonly port: number; readonly handles: SocketHandle[] }> {
    const out = [...this.#handles].map(([key, handles]) => {
      const at = key.lastIndexOf(':');
      return { address: key.slice(0, at), port: Number(key.slice(at + 1)), handles };
    });
    this.#handles.clear();
    return out;
  }

  /** Closes every handle no listener took (its listener was deleted meanwhile); returns their addresses. */
  closeUnclaimed(): string[] {
    const keys = [...this.#handles.keys()];
    for (const list of this.#handles.values()) for (const handle of list) handle.close();
    this.#handles.clear();
    return keys;
  }
}

/** How a listener binds: its mode, and the sockets handed over by an earlier ebb, if any. */
export interface ListenBinding {
  readonly mode: ListenMode;
  readonly inherited: InheritedSockets | null;
  /**
   * `exclusive` only: descriptors of each listening socket, so a turn of the event loop accepts up to
   * that many connections (accept-copies.ts), and where to say why none could be added. Absent: one.
   */
  readonly acceptCopies?: AcceptCopiesBinding;
}

export const EXCLUSIVE_BINDING: ListenBinding = { mode: 'exclusive', inherited: null };

/** `server.listen` on the socket handed over for the address, or on a new one bound as the mode says. */
export function listenOn(server: net.Server, binding: ListenBinding, address: string, port: number): void {
  const inherited = binding.inherited?.take(address, port) ?? null;
  const copies = binding.acceptCopies;
  if (copies !== undefined && copies.count > 1 && binding.mode === 'exclusive') server.once('listening', () => copyListeningSocket(server, copies, address, port));
  if (inherited !== null) server.listen(inherited);
  else server.listen(listenOptions(binding.mode, address, port));
}
