/** Ports on 127.0.0.1: one to listen on, and what connecting to one gives. */
import net from 'node:net';

/*
 * Ports are handed out below the kernel's ephemeral range (32768–60999 on Linux), never from it: a
 * port bound on :0 and closed is free only until the next outgoing connection of any test running
 * beside this one takes it as its local port, and then the ebb told to listen there fails with
 * EADDRINUSE. Outgoing connections never take a port below the range. Each test process walks the
 * range from its own random start, so two processes rarely try the same port, and one that is taken
 * is skipped.
 */
const LOW = 20_000;
const HIGH = 32_000;
let next = LOW + Math.floor(Math.random() * (HIGH - LOW));

function tryListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A port that was free a moment ago and that no outgoing connection will take: for listeners a test creates, or a port nothing listens on. */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = next;
    next = next + 1 >= HIGH ? LOW : next + 1;
    if (await tryListen(port)) return port;
  }
  throw new Error(`no free port found between ${LOW} and ${HIGH} after 200 tries`);
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
