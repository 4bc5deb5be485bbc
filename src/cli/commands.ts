/**
 * The commands of `ebb` (the client ones, and `serve` and `check`, which src/main runs), their usage,
 * and the nearest command to a typo. One table, so the help text, the option parser and the
 * suggestions cannot disagree.
 */

export type FlagKind = 'bool' | 'value';

export interface CommandSpec {
  readonly name: string;
  /** The positional arguments, as the usage line shows them. */
  readonly args: string;
  readonly summary: string;
  /** Flags of this command besides the common ones, with what a value means. */
  readonly flags: Readonly<Record<string, { readonly kind: FlagKind; readonly help: string }>>;
  readonly minArgs: number;
  /** Infinity: any number. */
  readonly maxArgs: number;
}

const timeout = { kind: 'value', help: 'Give up after S seconds (exit 5). Default: wait as long as it takes.' } as const;

export const CLIENT_COMMANDS: readonly CommandSpec[] = [
  {
    name: 'status',
    args: '',
    summary: 'Load balancers, target groups and targets: state, requests in flight, drains and their time left.',
    flags: {
      '--watch': { kind: 'bool', help: 'Redraw every --interval seconds until interrupted.' },
      '--interval': { kind: 'value', help: 'Seconds between redraws with --watch (default 1).' },
    },
    minArgs: 0,
    maxArgs: 0,
  },
  {
    name: 'register',
    args: 'GROUP TARGET...',
    summary: 'Register targets (HOST:PORT, an instance id, or an id alone for the group\'s port).',
    flags: {},
    minArgs: 2,
    maxArgs: Infinity,
  },
  {
    name: 'deregister',
    args: 'GROUP TARGET...',
    summary: 'Deregister targets; they drain. --wait shows the drain until it ends.',
    flags: {
      '--timeout': { kind: 'value', help: "This deregistration's delay in seconds, instead of the group's deregistration_delay.timeout_seconds." },
      '--wait': { kind: 'bool', help: 'Show each drain live (requests in flight, tunnels, time left) and return when it ends.' },
    },
    minArgs: 2,
    maxArgs: Infinity,
  },
  {
    name: 'drains',
    args: '',
    summary: 'Drains in progress and the records of finished ones (how each ended, what was cut).',
    flags: {
      '--group': { kind: 'value', help: "Only this target group's (name or ARN)." },
      '--outcome': { kind: 'value', help: 'Only records that ended so: idle, deadline or cancelled.' },
      '--limit': { kind: 'value', help: 'At most N records, newest first (default 20).' },
    },
    minArgs: 0,
    maxArgs: 0,
  },
  {
    name: 'wait-drained',
    args: 'GROUP TARGET',
    summary: "Wait until the target's drain has ended; at once when it is not registered.",
    flags: { '--timeout': timeout },
    minArgs: 2,
    maxArgs: 2,
  },
  {
    name: 'wait-not-routed',
    args: 'GROUP TARGET',
    summary: 'Wait until no new request can be routed to the target.',
    flags: { '--timeout': timeout },
    minArgs: 2,
    maxArgs: 2,
  },
  {
    name: 'dashboard',
    args: '',
    summary: 'Print a one-time sign-in link to the dashboard.',
    flags: {},
    minArgs: 0,
    maxArgs: 0,
  },
  {
    name: 'standby',
    args: 'INSTANCE-ID',
    summary: 'Move an Auto Scaling group instance to Standby (it drains out of its target groups).',
    flags: {
      '--group': { kind: 'value', help: 'The Auto Scaling group (default: the one the instance is in).' },
      '--keep-desired-capacity': { kind: 'bool', help: 'Do not lower the desired capacity (a replacement is launched).' },
      '--wait': { kind: 'bool', help: 'Wait until the instance is in Standby: its drain has ended.' },
      '--timeout': timeout,
    },
    minArgs: 1,
    maxArgs: 1,
  },
  {
    name: 'unstandby',
    args: 'INSTANCE-ID',
    summary: 'Return an instance from Standby to service.',
    flags: {
      '--group': { kind: 'value', help: 'The Auto Scaling group (default: the one the instance is in).' },
      '--wait': { kind: 'bool', help: 'Wait until the instance is InService again: registered and healthy.' },
      '--timeout': timeout,
    },
    minArgs: 1,
    maxArgs: 1,
  },
];

/** The flags every client command takes. */
export const COMMON_FLAGS: Readonly<Record<string, { readonly kind: FlagKind; readonly help: string }>> = {
  '--endpoint': { kind: 'value', help: "ebb's admin endpoint (default $EBB_ENDPOINT, else http://127.0.0.1:9900)." },
  '--state-dir': { kind: 'value', help: "Where ebb keeps its state and made credentials (default $EBB_STATE_DIR, else ./.ebb)." },
  '--region': { kind: 'value', help: "The region to sign for (default the credentials file's, else $AWS_REGION, else us-east-1)." },
  '--json': { kind: 'bool', help: 'Print JSON instead of text.' },
};

/** Every command name `ebb` takes, for suggestions. */
export const ALL_COMMANDS: readonly string[] = ['serve', 'check', ...CLIENT_COMMANDS.map((c) => c.name), 'help', 'version'];

export function clientCommand(name: string): CommandSpec | undefined {
  return CLIENT_COMMANDS.find((c) => c.name === name);
}

/**
 * Edit distance with adjacent swaps counting one (optimal string alignment), so `stauts` is one step
 * from `status`, as a person mistypes.
 */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const row = d[i] as number[];
      const prev = d[i - 1] as number[];
      let best = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, ((d[i - 2] as number[])[j - 2] as number) + 1);
      row[j] = best;
    }
  }
  return (d[rows - 1] as number[])[cols - 1] as number;
}

/**
 * The known word nearest to `word`, or undefined when none is near enough to be what was meant: at
 * most a third of the word's letters wrong (at least one), or a unique word it starts.
 */
export function nearest(word: string, known: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = editDistance(w, name);
    if (best === undefined || distance < best.distance) best = { name, distance };
  }
  if (best !== undefined && best.distance <= Math.max(1, Math.floor(w.length / 3))) return best.name;
  const prefixed = known.filter((k) => k.startsWith(w) || w.startsWith(k));
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

/** The message for an unknown command: the nearest one when there is one, and where the list is. */
export function unknownCommand(word: string): string {
  const near = nearest(word, ALL_COMMANDS);
  return `Unknown command '${word}'.${near === undefined ? '' : ` Did you mean 'ebb ${near}'?`} Run 'ebb help' for the list of commands.`;
}

function flagLines(flags: Readonly<Record<string, { readonly kind: FlagKind; readonly help: string }>>): string[] {
  return Object.entries(flags).map(([flag, f]) => {
    const head = f.kind === 'value' ? `${flag} ${valueName(flag)}` : flag;
    return `  ${head.padEnd(26)} ${f.help}`;
  });
}

function valueName(flag: string): string {
  switch (flag) {
    case '--timeout':
    case '--interval':
      return 'S';
    case '--endpoint':
      return 'URL';
    case '--state-dir':
      return 'DIR';
    case '--limit':
      return 'N';
    default:
      return flag.slice(2).toUpperCase();
  }
}

function usageLine(c: CommandSpec): string {
  const flags = Object.entries(c.flags).map(([flag, f]) => (f.kind === 'value' ? `[${flag} ${valueName(flag)}]` : `[${flag}]`));
  return ['ebb', c.name, c.args, ...flags, '[--json]'].filter((s) => s !== '').join(' ');
}

/** `ebb COMMAND --help`. */
export function commandUsage(c: CommandSpec): string {
  return [`Usage: ${usageLine(c)}`, '', `  ${c.summary}`, '', ...flagLines(c.flags), ...flagLines(COMMON_FLAGS), '', 'Exit codes: docs/cli.md.', ''].join('\n');
}

/** The client commands, for `ebb help`. */
export function clientUsage(): string {
  return [
    'Usage: ebb COMMAND [ARGS] [--endpoint URL] [--json]',
    '',
    'Commands that talk to a running ebb (its admin endpoint, signed with the admin credentials):',
    ...CLIENT_COMMANDS.map((c) => `  ${(c.name + (c.args === '' ? '' : ` ${c.args}`)).padEnd(30)} ${c.summary}`),
    `  ${'check --config FILE'.padEnd(30)} Validate a configuration file and say what a reload would change.`,
    '',
    'GROUP is a target group name or ARN. TARGET is HOST:PORT, [IPv6]:PORT, INSTANCE-ID:PORT, or an id',
    "alone for the group's port. Credentials: $EBB_ACCESS_KEY_ID and $EBB_SECRET_ACCESS_KEY, else",
    'STATE-DIR/credentials (made by ebb serve at its first start), else $AWS_ACCESS_KEY_ID and',
    "$AWS_SECRET_ACCESS_KEY. 'ebb COMMAND --help' shows a command's options; docs/cli.md has the rest.",
    '',
  ].join('\n');
}
