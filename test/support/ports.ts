/** Ports on 127.0.0.1: one to listen on, and what connecting to one gives. */
import net, { type AddressInfo } from 'node:net';

/** A port that was free a moment ago (bound on :0, then closed): for listeners a test creates, or a port nothing listens on. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/**
 * Opens a TCP connection to `port` and closes it: 'connected', the error code (ECONNREFUSED once
 * nothing listens), or 'timeout' when neither happened within `timeoutMs` (default: no limit).
 */
export function connectOutcome(port: number, timeoutMs?: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            s.destroy();
            resolve('timeout');
          }, timeoutMs);
    s.on('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve('connected');
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(e.code ?? 'error');
    });
  });
}

/** Whether a TCP connection to the port is refused (nothing listening). */
export async function connectionRefused(port: number, timeoutMs = 1000): Promise<boolean> {
  return (await connectOutcome(port, timeoutMs)) === 'ECONNREFUSED';
}
