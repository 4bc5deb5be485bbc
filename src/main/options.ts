import { availableParallelism } from 'node:os';
import { parseHostPort } from '../config/schema.ts';
import { isIpAddress } from '../control/names.ts';
import { ebbError } from '../shared/errors.ts';

/** What `ebb serve` is told on its command line and in its environment. */
export interface ServeOptions {
  readonly configPath?: string;
  readonly adminAddress?: string;
  readonly stateDir?: string;
  /** false only when the operator asked for it (`--no-auth`); logged loudly. */
  readonly authentication?: boolean;
  /** Where listeners of internet-facing load balancers created without an address listen (`--listen-internet-facing`). */
  readonly listenInternetFacing?: string;
  /** Where listeners of internal load balancers created without an address listen (`--listen-internal`). */
  readonly listenInternal?: string;
  /**
   * Data-plane processes (`--workers N`): 1 serves traffic in ebb's own process; 2 or more start that
   * many worker processes sharing the listeners (docs/workers.md). Without the flag `ebb serve` runs one
   * per core (`defaultWorkers`); `startEbb` called without it serves in its own process.
   */
  readonly workers?: number;
}

export interface AdminEndpoint {
  readonly host: string;
  readonly port: number;
}

export const DEFAULT_ADMIN_ADDRESS = '127.0.0.1:9900';
export const DEFAULT_STATE_DIR = './.ebb';

/** Parses `HOST:PORT` (IPv6 as `[::1]:9900`), as the file's `admin.address` is; port 0 picks a free one. */
export function parseAddress(value: string, what: string): AdminEndpoint {
  const parsed = parseHostPort(value);
  if (parsed === null) throw ebbError('ValidationError', `${what} '${value}' is not HOST:PORT (for example 127.0.0.1:9900)`);
  return parsed;
}

export interface ParsedCommand {
  readonly command: 'serve' | 'help' | 'version';
  readonly serve: ServeOptions;
}

const USAGE = `Usage: ebb serve [--config FILE] [--admin HOST:PORT] [--state-dir DIR] [--no-auth]
                 [--listen-internet-facing ADDRESS] [--listen-internal ADDRESS] [--workers N]

  --config FILE      YAML file declaring load balancers, listeners, target groups and targets.
                     SIGHUP re-reads it and applies the difference.
  --admin HOST:PORT  Where the AWS-compatible admin API listens (default ${DEFAULT_ADMIN_ADDRESS}).
  --state-dir DIR    Where ebb keeps its state (default ${DEFAULT_STATE_DIR}, or $EBB_STATE_DIR).
  --no-auth          Accept unsigned admin requests. For tests and local experiments only.
  --listen-internet-facing ADDRESS
                     Where a listener of an internet-facing load balancer listens when it is
                     created without an address (default 0.0.0.0, or listenAddresses in the file).
  --listen-internal ADDRESS
                     The same for an internal load balancer (default 127.0.0.1).
  --workers N        Data-plane processes that share the listeners, so traffic uses every core
                     (default: one per core, here ${availableParallelism()}; 1: traffic in ebb's own process).

Admin credentials: admin.credentials in the file, or EBB_ACCESS_KEY_ID and EBB_SECRET_ACCESS_KEY.
With none, ebb makes a key pair at its first start and keeps it in STATE-DIR/credentials (mode 0600,
the AWS shared-credentials format, profile ebb); it prints how to use it.
`;

export function usage(): string {
  return USAGE;
}

function ipAddress(flag: string, value: string): string {
  if (!isIpAddress(value)) throw ebbError('ValidationError', `${flag} '${value}' is not an IP address (for example 0.0.0.0, 127.0.0.1 or ::1)`);
  return value;
}

/** The most data-plane workers `--workers` takes. */
export const MAX_WORKERS = 256;

/** `ebb serve` without `--workers`: one data-plane process per core (1 on a one-core machine: ebb's own). */
export function defaultWorkers(cores: number = availableParallelism()): number {
  return Math.min(MAX_WORKERS, Math.max(1, cores));
}

/** `--workers`: a count, or `auto` (or 0) for one per core. */
export function workerCount(value: string, cores: number = availableParallelism()): number {
  if (value === 'auto' || value === '0') return defaultWorkers(cores);
  const n = /^[0-9]+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n > MAX_WORKERS) {
    throw ebbError('ValidationError', `--workers '${value}' is not a number of processes; give 1 to ${MAX_WORKERS}, or auto for one per core (${cores} here)`);
  }
  return n;
}

export function parseArgs(argv: readonly string[]): ParsedCommand {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    return { command: 'help', serve: {} };
  }
  if (command === 'version' || command === '--version') return { command: 'version', serve: {} };
  if (command !== 'serve') throw ebbError('ValidationError', `Unknown command '${command}'.\n\n${USAGE}`);
  const serve: { -readonly [K in keyof ServeOptions]: ServeOptions[K] } = {};
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] ?? '';
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? rest[++i];
      if (v === undefined || v.length === 0) throw ebbError('ValidationError', `${flag} needs a value.\n\n${USAGE}`);
      return v;
    };
    switch (flag) {
      case '--config':
        serve.configPath = value();
        break;
      case '--admin':
        serve.adminAddress = value();
        break;
      case '--state-dir':
        serve.stateDir = value();
        break;
      case '--no-auth':
        serve.authentication = false;
        break;
      case '--listen-internet-facing':
        serve.listenInternetFacing = ipAddress(flag, value());
        break;
      case '--listen-internal':
        serve.listenInternal = ipAddress(flag, value());
        break;
      case '--workers':
        serve.workers = workerCount(value());
        break;
      default:
        throw ebbError('ValidationError', `Unknown option '${arg}'.\n\n${USAGE}`);
    }
  }
  return { command: 'serve', serve };
}
