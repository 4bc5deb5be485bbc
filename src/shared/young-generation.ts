import v8 from 'node:v8';

/**
 * The size of V8's young generation in the processes that serve ebb's traffic.
 *
 * Why a cap: a proxy allocates a few kilobytes per request that die within the request, so under load
 * V8 grows the young generation towards its limit. V8 derives that limit from the heap's: with a heap
 * limit of 2 GiB or more, Node 20's is two semi-spaces of 16 MiB and Node 24's two of 64 MiB. At 256
 * connections on Node 24 the young generation reached 64 MiB (two of 32), and ebb's peak RSS was 171
 * MiB against 130 with semi-spaces of 16, with no more CPU per request and a p99 within the spread
 * between runs (docs/benchmarks.md, "Memory"). So every Node gets Node 20's size. Smaller was measured
 * too and is not the default: at 8, 4 or 2 MiB the peak fell further but p99 grew.
 *
 * Only where it lowers or keeps Node's own size: with smaller heap limits Node chooses smaller
 * semi-spaces (measured with `--max-heap-size`: Node 20 below 2 GiB, 4 MiB at 512 MiB; Node 24 below
 * 512 MiB), which a fixed 16 would raise (`takesCap`). Nor where the operator chose a size, on node's
 * command line or in NODE_OPTIONS.
 *
 * V8 sizes its heap when the process starts, so the cap is a node option: worker processes and a hot
 * restart's successor are started with it, and `ebb serve` (bin/ebb.js) starts node again in its own
 * process with it (`process.execve`, from Node 22.15; on an older Node its own process keeps Node's
 * size, which on Node 20 is 16 MiB anyway). ebb run from its sources (`npm start`, the tests) is not
 * started again either: its workers get the cap, its own process keeps Node's size.
 */
const CAP_SEMI_SPACE_MIB = 16;
export const YOUNG_GENERATION_OPTION = `--max-semi-space-size=${CAP_SEMI_SPACE_MIB}`;

/** The heap limit under which Node's own young generation may be smaller than the cap (V8 derives one from the other). */
export const CAP_FROM_HEAP_LIMIT_BYTES = 2 * 1024 ** 3;
const MIB = 1024 ** 2;

/** NODE_OPTIONS as node reads it: options split on spaces, quotes around one taken off. */
function splitNodeOptions(nodeOptions: string | undefined): string[] {
  return (nodeOptions ?? '').split(/\s+/).filter(Boolean).map((o) => o.replace(/^(["'])(.*)\1$/, '$2'));
}

/** The value of node option `name` (`--a-b` or `--a_b`) that wins: the last one, NODE_OPTIONS read first. */
function optionValue(options: readonly string[], name: string): string | undefined {
  const re = new RegExp(`^--${name.replace(/-/g, '[-_]')}(?:=(.*))?$`);
  let value: string | undefined;
  for (const o of options) {
    const m = re.exec(o);
    if (m !== null) value = m[1] ?? '';
  }
  return value;
}

/**
 * Whether a node process started with `execArgv` and `nodeOptions` (NODE_OPTIONS), whose heap limit is
 * `heapSizeLimit` (by default all three this process's: a child on the same machine with the same
 * options has its heap limit), gets the cap: only where it lowers Node's own size, and not when the
 * operator chose one.
 *
 * With `--max-old-space-size` (and no `--max-heap-size`), Node still sizes the young generation from
 * the machine's memory, and the heap limit is that old space plus three semi-spaces: the semi-space is
 * read from the difference. Otherwise V8 derives both from the one heap limit, and from 2 GiB on
 * neither Node 20 nor 24 chooses semi-spaces under 16 MiB.
 */
export function takesCap(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string | undefined = process.env['NODE_OPTIONS'],
  heapSizeLimit = v8.getHeapStatistics().heap_size_limit,
): boolean {
  const options = [...splitNodeOptions(nodeOptions), ...execArgv];
  if (optionValue(options, 'max-semi-space-size') !== undefined) return false;
  const oldSpaceMib = Number(optionValue(options, 'max-old-space-size'));
  if (optionValue(options, 'max-heap-size') === undefined && Number.isFinite(oldSpaceMib) && oldSpaceMib > 0) {
    return (heapSizeLimit - oldSpaceMib * MIB) / 3 > CAP_SEMI_SPACE_MIB * MIB;
  }
  return heapSizeLimit >= CAP_FROM_HEAP_LIMIT_BYTES;
}

/** Node options for a process ebb starts to serve traffic: this process's, with the cap when it takes one. */
export function servingExecArgv(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env['NODE_OPTIONS'], heapSizeLimit?: number): string[] {
  return takesCap(execArgv, nodeOptions, heapSizeLimit) ? [...execArgv, YOUNG_GENERATION_OPTION] : [...execArgv];
}

/**
 * Starts this node again in this process (same pid, descriptors and environment) with the cap, when it
 * takes one and node can; returns when it does not, or when that fails (ebb then runs with Node's own
 * size). Called by `ebb serve` before anything else runs, as what ran before is gone.
 *
 * Not when this process has an IPC channel to its parent (a hot restart's successor, a supervisor's
 * fork): node drops NODE_CHANNEL_FD from the environment as it starts, so the node started again would
 * have none. A successor of this ebb is started with the cap already (`servingExecArgv`). Nor under the
 * permission model without the right to start processes.
 */
export function restartWithCap(): void {
  const p = process as { execve?: (file: string, args: readonly string[], env: NodeJS.ProcessEnv) => never; permission?: { has(scope: string): boolean } };
  if (typeof p.execve !== 'function' || process.channel !== undefined || p.permission?.has('child') === false) return;
  if (!takesCap()) return;
  try {
    p.execve.call(process, process.execPath, [process.execPath, ...process.execArgv, YOUNG_GENERATION_OPTION, ...process.argv.slice(1)], process.env);
  } catch {
    // Refused before the exec (a permission, an argument node no longer takes): ebb runs as it was started.
  }
}
