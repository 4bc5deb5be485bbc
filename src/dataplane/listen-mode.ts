import type net from 'node:net';

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
