import v8 from 'node:v8';

/**
 * The size of V8's young generation in the processes that serve ebb's traffic.
 *
 * Why a cap: a proxy allocates a few kilobytes per request that die within the request, so under load
 * V8 grows the young generation towards its limit. V8 derives that limit from the heap's: with a heap
 * limit of 2 GiB or more, Node 20's is two semi-spaces of 16 MiB and Node 24's two of 64 MiB. At 256 connections on Node 24 the young generation reached
 * 64 MiB (two of 32), and ebb's peak RSS was 171 MiB against 130 with semi-spaces of 16, with the same
 * CPU per request and p99 (docs/benchmarks.md, "Memory"). So every Node gets Node 20's size. Smaller
 * was measured too and is not the default: at 8, 4 or 2 MiB the peak fell further but p99 grew.
 *
 * Only where it lowers or keeps Node's own size: with smaller heap limits Node chooses smaller
 * semi-spaces (measured with `--max-heap-size`: Node 20 below 2 GiB, 4 MiB at 512 MiB; Node 24 below
 * 512 MiB), which a fixed 16 would raise. So the cap applies from a 2 GiB heap limit, where neither
 * chooses less. Nor where the operator chose a size, on node's command line or in NODE_OPTIONS.
 *
 * V8 sizes its heap when the process starts, so the cap is a node option: worker processes and a hot
 * restart's successor are started with it, and `ebb serve` (bin/ebb.js) starts node again in its own
 * process with it (`process.execve`, Node 22.15 and later; Node 20, which has none, stops at 16 MiB
 * anyway). ebb run from its sources (`npm start`, the tests) is not started again: its workers get
 * the cap, its own process keeps Node's size.
 */
export const YOUNG_GENERATION_OPTION = '--max-semi-space-size=16';

/** The heap limit under which Node's own young generation is smaller than the cap (V8 derives one from the other). */
export const CAP_FROM_HEAP_LIMIT_BYTES = 2 * 1024 ** 3;

/** Whether `options` (node's command-line options, or NODE_OPTIONS split) already size the young generation. */
function setsSemiSpace(options: readonly string[]): boolean {
  return options.some((o) => /^--max[-_]semi[-_]space[-_]size(=|$)/.test(o));
}

/**
 * Whether a node process started with `execArgv` and `nodeOptions` (NODE_OPTIONS), whose heap limit is
 * `heapSizeLimit` (this process's, which a child on the same machine with the same options shares),
 * gets the cap: not when it would raise Node's own size, nor when the operator chose one.
 */
export function takesCap(execArgv: readonly string[], nodeOptions: string | undefined, heapSizeLimit: number): boolean {
  return heapSizeLimit >= CAP_FROM_HEAP_LIMIT_BYTES && !setsSemiSpace(execArgv) && !setsSemiSpace((nodeOptions ?? '').split(/\s+/));
}

/** Node options for a process ebb starts to serve traffic: this process's, with the cap when it takes one. */
export function servingExecArgv(execArgv: readonly string[], nodeOptions: string | undefined, heapSizeLimit = v8.getHeapStatistics().heap_size_limit): string[] {
  return takesCap(execArgv, nodeOptions, heapSizeLimit) ? [...execArgv, YOUNG_GENERATION_OPTION] : [...execArgv];
}

/**
 * Starts this node again in this process (same pid, descriptors and environment) with the cap, when it
 * takes one and node can (`process.execve`); returns only when it does not. Called by `ebb serve`
 * before anything else runs, as what ran before is gone.
 */
export function restartWithCap(): void {
  const execve = (process as { execve?: (file: string, args: readonly string[], env: NodeJS.ProcessEnv) => never }).execve;
  if (typeof execve !== 'function' || !takesCap(process.execArgv, process.env['NODE_OPTIONS'], v8.getHeapStatistics().heap_size_limit)) return;
  execve.call(process, process.execPath, [process.execPath, ...process.execArgv, YOUNG_GENERATION_OPTION, ...process.argv.slice(1)], process.env);
}
