/**
 * The size of V8's young generation in the processes ebb starts to serve traffic.
 *
 * Why a cap: a proxy allocates a few kilobytes per request that die within the request, so under load
 * V8 grows the young generation to its largest. On Node 20 that is semi-spaces of 16 MiB (32 MiB in
 * all); Node 24 allows up to 64 MiB each. At 256 connections on Node 24, ebb's peak RSS was 154 MiB
 * with Node's default and 127 with 16 MiB, with the same CPU per request and p99 (docs/benchmarks.md,
 * "Memory"). So every Node gets Node 20's young generation. Smaller was measured too and is not the
 * default: at 8, 4 or 2 MiB the peak fell further but p99 grew.
 *
 * V8 sizes its heap when the process starts, so the cap is a Node option: `bin/ebb.js` carries it in
 * its `#!` line (`npm start` and `npm run demo` on their command lines), and worker processes and a
 * hot restart's successor get it here. Another size is given on node's own command line, which node
 * reads after NODE_OPTIONS, and then it ignores the script's `#!` line: `node --max-semi-space-size=8
 * bin/ebb.js serve`. ebb passes that on to the processes it starts, and one in NODE_OPTIONS too when
 * its own command line has none.
 */
export const YOUNG_GENERATION_OPTION = '--max-semi-space-size=16';

/** Whether `options` (node's command-line options, or NODE_OPTIONS split) already size the young generation. */
function setsSemiSpace(options: readonly string[]): boolean {
  return options.some((o) => /^--max[-_]semi[-_]space[-_]size(=|$)/.test(o));
}

/**
 * Node options for a process ebb starts to serve traffic: `execArgv` (this process's), with the
 * young-generation cap added unless `execArgv` or `nodeOptions` (the NODE_OPTIONS it will inherit)
 * size it already.
 */
export function servingExecArgv(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  if (setsSemiSpace(execArgv) || setsSemiSpace((nodeOptions ?? '').split(/\s+/))) return [...execArgv];
  return [...execArgv, YOUNG_GENERATION_OPTION];
}
