/** The command line of `npm run bench` (bench/run.ts). */
export type Mode = 'per-core' | 'workers' | 'profile' | 'help';

export interface RunOptions {
  readonly mode: Mode;
  readonly seconds: number;
  readonly rounds: number;
  readonly connections: readonly number[];
  /** Warm-up windows of 1 s per target and connection count before the rounds. */
  readonly warmupWindows: number;
  /** Proxies on CPU 1, wrk and the backend on CPU 0 (per-core table and profile). */
  readonly pin: boolean;
  readonly accessLog: boolean;
  /** The scaling table's largest worker count (compared with 1). */
  readonly maxWorkers: number;
  /** The node binary that runs ebb (default: the one running the benchmark). */
  readonly node: string;
  /** Run ebb from its sources under tsx instead of building it first. */
  readonly fromSource: boolean;
  /** Keep the work directory (configs, logs, wrk output, profiles). */
  readonly keep: boolean;
  /**
   * HAProxy's `http-reuse`: `always` (the default here, its fastest) or `safe` (HAProxy's own default, and
   * what ebb does: a client connection's first request goes on a target connection of its own).
   */
  readonly haproxyReuse: 'always' | 'safe';
  /** Node options put before ebb's script (`--node-flags '--max-semi-space-size=1'`), to measure one. */
  readonly nodeFlags: readonly string[];
  /** Every request on a new client connection (wrk sends `Connection: close`): what a connection costs. */
  readonly newConnections: boolean;
}

export const USAGE = `Usage: npm run bench [-- OPTIONS]

  (no mode)      The per-core table: the backend direct, HAProxy and nginx (when installed),
                 node-floor (bench/node-floor.cjs: Node relaying the bytes, nothing parsed) and ebb,
                 one core each, interleaved rounds, medians and ratios to HAProxy (~4 min).
  --workers [N]  The scaling table: ebb serve --workers 1 against --workers N (default: the
                 number of cores), and HAProxy nbthread 1 against N as the machine's own yardstick.
  --profile      One 64-connection round with ebb under node --cpu-prof; prints the top 15
                 functions by self time and keeps the .cpuprofile.

  -d SECS        Seconds per wrk window (default 5).
  -r ROUNDS      Rounds, interleaved over the targets (default 3).
  -c 'C1 C2'     Connection counts (default '64 256'; commas work too).
  --warmup N     Warm-up windows of 1 s per target and connection count before the rounds,
                 each opening its connections afresh as a round does (default 2; 0: none).
  --no-pin       Run everything unpinned (default: proxies on CPU 1, wrk and backend on CPU 0).
  --access-log   Turn on ebb's access log (to a file; off by default, as for HAProxy and nginx).
  --from-source  Run ebb under tsx instead of compiling it first into .bench/dist (~10 s saved;
                 tsx's compiler then adds some 40 MiB to ebb's peak RSS).
  --node FILE    The node binary that runs ebb (default: this one), e.g. Node 24 to compare
                 its workers' reusePort sockets with Node 20's cluster module.
  --keep         Keep the work directory (configs, logs, wrk output, profiles).
  --haproxy-reuse safe|always
                 HAProxy's http-reuse (default always). safe is HAProxy's own default and what
                 ebb does: each client connection's first request on a target connection of its own.
  --new-connections
                 Every request on a new connection (wrk sends Connection: close), so the table
                 gives what a client connection costs, with its target connection; pair it
                 with --haproxy-reuse safe, which opens a target connection for each too.
  --node-flags 'F1 F2'
                 Node options for the node that runs ebb (its workers inherit them), e.g.
                 '--max-semi-space-size=4' to measure what a V8 setting costs or saves.

Needs wrk and nginx (the backend), haproxy for the ratios, taskset for pinning:
  apt-get install -y wrk nginx haproxy
Older load benchmark (ebb's data plane in-process against the backend direct): npm run bench:load
`;

function positive(flag: string, value: string | undefined, integer: boolean): number {
  const n = Number(value);
  if (value === undefined || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new Error(`${flag} needs a positive ${integer ? 'whole ' : ''}number (got '${value ?? ''}')\n\n${USAGE}`);
  }
  return n;
}

export function parseRunArgs(argv: readonly string[], cores: number): RunOptions {
  let mode: Mode = 'per-core';
  const o = { seconds: 5, rounds: 3, connections: [64, 256] as number[], warmupWindows: 2, pin: true, accessLog: false, maxWorkers: Math.max(2, cores), fromSource: false, node: process.execPath, keep: false, haproxyReuse: 'always' as 'always' | 'safe', nodeFlags: [] as string[], newConnections: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case '-d':
      case '--duration':
        o.seconds = positive(flag, value(), false);
        break;
      case '-r':
      case '--rounds':
        o.rounds = positive(flag, value(), true);
        break;
      case '-c':
      case '--connections': {
        const v = value() ?? '';
        o.connections = v.split(/[\s,]+/).filter(Boolean).map((c) => positive(flag, c, true));
        if (o.connections.length === 0) positive(flag, undefined, true);
        break;
      }
      case '--warmup': {
        const v = value();
        o.warmupWindows = v === '0' ? 0 : positive(flag, v, true);
        break;
      }
      case '--no-pin':
        o.pin = false;
        break;
      case '--haproxy-reuse': {
        const v = argv[++i];
        if (v !== 'safe' && v !== 'always') throw new Error(`--haproxy-reuse takes safe or always (got '${v ?? ''}')\n\n${USAGE}`);
        o.haproxyReuse = v;
        break;
      }
      case '--access-log':
        o.accessLog = true;
        break;
      case '--new-connections':
        o.newConnections = true;
        break;
      case '--node-flags': {
        const v = value() ?? '';
        o.nodeFlags = v.split(/\s+/).filter(Boolean);
        if (o.nodeFlags.length === 0 || o.nodeFlags.some((f) => !f.startsWith('--'))) {
          throw new Error(`--node-flags takes node options, each starting with -- (got '${v}')\n\n${USAGE}`);
        }
        break;
      }
      case '--node': {
        const v = value();
        if (v === undefined || v === '') throw new Error(`--node needs the path of a node binary\n\n${USAGE}`);
        o.node = v;
        break;
      }
      case '--from-source':
        o.fromSource = true;
        break;
      case '--keep':
        o.keep = true;
        break;
      case '--profile':
        mode = 'profile';
        break;
      case '--workers': {
        mode = 'workers';
        const next = inline ?? argv[i + 1];
        if (next !== undefined && /^\d+$/.test(next)) {
          if (inline === undefined) i++;
          o.maxWorkers = positive(flag, next, true);
          if (o.maxWorkers < 2) throw new Error(`--workers compares 1 worker with N; N must be at least 2\n\n${USAGE}`);
        } else if (inline !== undefined) {
          positive(flag, inline, true);
        }
        break;
      }
      case '-h':
      case '--help':
        mode = 'help';
        break;
      default:
        throw new Error(`unknown option '${arg}'\n\n${USAGE}`);
    }
  }
  // The scaling table's header and goal are for clients that keep their connections.
  if (o.newConnections && mode === 'workers') throw new Error(`--new-connections goes with the per-core table or --profile, not --workers\n\n${USAGE}`);
  return { mode, ...o };
}
