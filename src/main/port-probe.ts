import { createServer } from 'node:net';
import { ebbError } from '../shared/errors.ts';

/** Whether `address:port` can be listened on now: null if so, else the errno code (EADDRINUSE, EACCES...). */
export function checkPort(address: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    server.listen({ port, host: address, exclusive: true }, () => server.close(() => resolve(null)));
  });
}

/** An address ebb is about to listen on, and what for (named in the error). */
export interface WantedAddress {
  /** For the message: `the admin API (--admin)`, `listener web:8080`. */
  readonly what: string;
  readonly host: string;
  /** 0 asks the system for a free port: nothing to check. */
  readonly port: number;
}

/** Hosts that take the port on every address (`::` too, as Node binds it dual-stack). */
const WILDCARDS = new Set(['0.0.0.0', '::']);

function overlap(a: WantedAddress, b: WantedAddress): boolean {
  return a.port === b.port && (a.host === b.host || WILDCARDS.has(a.host) || WILDCARDS.has(b.host));
}

function show(a: WantedAddress): string {
  return `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}

/**
 * Checks that every address can be listened on, before ebb opens or writes anything: no two of them
 * take the same port, and each is free on this machine now. Throws ListenAddressInUse naming every
 * address that is not, with the errno code (EADDRINUSE, EACCES, EADDRNOTAVAIL).
 */
export async function checkAddresses(wanted: readonly WantedAddress[], probe = checkPort): Promise<void> {
  const problems: string[] = [];
  const fixed = wanted.filter((a) => a.port !== 0);
  fixed.forEach((a, i) => {
    const other = fixed.slice(0, i).find((b) => overlap(a, b));
    if (other !== undefined) problems.push(`${a.what} on ${show(a)} takes the port of ${other.what} on ${show(other)}`);
  });
  const seen = new Set<string>();
  for (const a of fixed) {
    const key = show(a);
    if (seen.has(key)) continue;
    seen.add(key);
    const problem = await probe(a.host, a.port);
    if (problem !== null) problems.push(`${a.what} cannot listen on ${key} (${problem})`);
  }
  if (problems.length > 0) {
    throw ebbError(
      'ListenAddressInUse',
      `ebb cannot listen where it is asked to, so it did not start and changed nothing:\n  ${problems.join('\n  ')}\nFree the port or choose another (--admin for the admin API; the file, or the API, for a listener).`,
    );
  }
}
