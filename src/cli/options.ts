import { COMMON_FLAGS, nearest, type CommandSpec } from './commands.ts';
import { usageError } from './exit-codes.ts';

/** A client command's command line, parsed against its spec. */
export interface ParsedLine {
  readonly command: CommandSpec;
  readonly args: readonly string[];
  /** Flags given: a value, or true for a boolean flag. */
  readonly flags: ReadonlyMap<string, string | true>;
  readonly help: boolean;
}

/**
 * `--flag value`, `--flag=value` and boolean `--flag`, anywhere among the arguments; `--` ends the
 * options. An unknown flag is refused with the nearest known one, so a typo is never taken as an
 * argument or silently ignored.
 */
export function parseLine(command: CommandSpec, argv: readonly string[]): ParsedLine {
  const known = { ...COMMON_FLAGS, ...command.flags };
  const args: string[] = [];
  const flags = new Map<string, string | true>();
  let help = false;
  let optionsEnded = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (optionsEnded || !arg.startsWith('-') || arg === '-') {
      args.push(arg);
      continue;
    }
    if (arg === '--') {
      optionsEnded = true;
      continue;
    }
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    const spec = Object.hasOwn(known, name) ? known[name] : undefined;
    if (spec === undefined) {
      const near = nearest(name.replace(/^-+/, ''), Object.keys(known).map((k) => k.slice(2)));
      throw usageError(`'ebb ${command.name}' has no option '${name}'.${near === undefined ? '' : ` Did you mean '--${near}'?`} See 'ebb ${command.name} --help'.`);
    }
    if (flags.has(name)) throw usageError(`${name} is given more than once.`);
    if (spec.kind === 'bool') {
      if (eq !== -1) throw usageError(`${name} takes no value; write ${name} alone.`);
      flags.set(name, true);
      continue;
    }
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined || value === '') throw usageError(`${name} needs a value. See 'ebb ${command.name} --help'.`);
    flags.set(name, value);
  }
  if (!help) {
    if (args.length < command.minArgs) {
      throw usageError(`'ebb ${command.name}' needs ${command.args}; got ${args.length === 0 ? 'nothing' : args.join(' ')}. Usage: ebb ${command.name} ${command.args}`);
    }
    if (args.length > command.maxArgs) {
      throw usageError(`'ebb ${command.name}' takes ${command.maxArgs === 0 ? 'no arguments' : command.args}; got ${args.join(' ')}.`);
    }
  }
  return { command, args, flags, help };
}

/** A value flag's value, or undefined when it was not given. */
export function flagValue(line: ParsedLine, name: string): string | undefined {
  const v = line.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

/** A number of seconds from 0 to `max` (decimals allowed), or undefined when the flag was not given. */
export function secondsFlag(line: ParsedLine, name: string, max: number, integer = false): number | undefined {
  const v = flagValue(line, name);
  if (v === undefined) return undefined;
  const pattern = integer ? /^\d{1,7}$/ : /^\d{1,7}(\.\d{1,3})?$/;
  if (!pattern.test(v) || Number(v) > max) {
    throw usageError(`${name} must be ${integer ? 'a whole number of' : 'a number of'} seconds from 0 to ${max}; got '${v}'.`);
  }
  return Number(v);
}
