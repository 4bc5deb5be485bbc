/**
 * wrk as the load generator: one thread, C keep-alive connections, `--latency` for the percentiles.
 * wrk prints its figures with units of its own choosing (`512.00us`, `1.20ms`, `1.01s`); the parser
 * turns them into numbers, and counts socket errors and non-2xx/3xx answers together as errors.
 */
import { execFile } from 'node:child_process';

export interface WrkResult {
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /**
   * The slowest request's latency. wrk corrects its percentiles for coordinated omission (a request
   * slower than the mean interval counts again for every interval it held its connection up), so a
   * few requests of hundreds of ms move the p99 by themselves; the maximum shows when that happened.
   */
  readonly maxMs: number;
  /** Requests completed in the window (the divisor of CPU per request). */
  readonly requests: number;
  /** Socket errors (connect, read, write, timeout) and non-2xx/3xx answers. */
  readonly errors: number;
}

function milliseconds(value: string, unit: string): number {
  const v = Number(value);
  if (unit === 'us') return v / 1000;
  if (unit === 's') return v * 1000;
  if (unit === 'm') return v * 60_000;
  return v;
}

/** Reads what `wrk --latency` printed; NaN for a figure that is missing (wrk failed to run). */
export function parseWrk(output: string): WrkResult {
  const latency = (pct: string): number => {
    const m = new RegExp(`^\\s*${pct}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(output);
    return m === null ? NaN : milliseconds(m[1] ?? '', m[2] ?? '');
  };
  const max = /^\s*Latency\s+[\d.]+(?:us|ms|s|m)\s+[\d.]+(?:us|ms|s|m)\s+([\d.]+)(us|ms|s|m)\b/m.exec(output);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(output);
  const socketErrors = socket === null ? 0 : socket.slice(1).reduce((sum, n) => sum + Number(n), 0);
  return {
    requestsPerSecond: Number(/Requests\/sec:\s+([\d.]+)/.exec(output)?.[1] ?? NaN),
    p50Ms: latency('50'),
    p99Ms: latency('99'),
    maxMs: max === null ? NaN : milliseconds(max[1] ?? '', max[2] ?? ''),
    requests: Number(/(\d+) requests in /.exec(output)?.[1] ?? NaN),
    errors: socketErrors + (non2xx === null ? 0 : Number(non2xx[1])),
  };
}

/**
 * The command that runs wrk, behind `taskset -c CPUS` when `cpus` is given. `newConnections`: each
 * request asks to close its connection, so wrk opens a new one for the next.
 */
export function wrkCommand(url: string, connections: number, seconds: number, cpus: string | null, newConnections = false): string[] {
  const close = newConnections ? ['-H', 'Connection: close'] : [];
  const wrk = ['wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '5s', '--latency', ...close, url];
  return cpus === null ? wrk : ['taskset', '-c', cpus, ...wrk];
}

/** Runs wrk to its end (bounded: its own duration plus a grace) and returns its raw output. */
export function runWrk(url: string, connections: number, seconds: number, cpus: string | null, newConnections = false): Promise<string> {
  const [file = 'wrk', ...args] = wrkCommand(url, connections, seconds, cpus, newConnections);
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: (seconds + 15) * 1000, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      if (error !== null && stdout.length === 0) reject(new Error(`wrk against ${url} failed: ${stderr || error.message}`));
      else resolve(`${stdout}${stderr}`);
    });
  });
}
