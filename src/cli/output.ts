import Table from 'cli-table3';

/** Where a command writes, and what it knows of its surroundings; tests give their own. */
export interface Output {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface CliIo {
  readonly stdout: Output;
  readonly stderr: Output;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  /** Aborted when the user interrupts (Ctrl-C): live views stop and say what goes on without them. */
  readonly signal?: AbortSignal;
}

/**
 * Whether stdout is a terminal: tables with borders and live views; else plain lines a script can
 * read. A terminal that reports no width (some CI pseudo-terminals) gets plain lines: a redraw fitted
 * to zero columns would show nothing.
 */
export function isTerminal(io: CliIo): boolean {
  return io.stdout.isTTY === true && io.env['TERM'] !== 'dumb' && (io.stdout.columns ?? 80) > 0;
}

export function printJson(io: CliIo, value: unknown, pretty = isTerminal(io)): void {
  io.stdout.write(`${pretty ? JSON.stringify(value, null, 2) : JSON.stringify(value)}\n`);
}

/** A table: bordered on a terminal, else aligned columns with no borders, one line per row (cli-table3 both). */
export function table(io: CliIo, head: readonly string[], rows: ReadonlyArray<readonly (string | number)[]>): string {
  const plain = !isTerminal(io);
  const t = new Table({
    head: [...head],
    style: plain ? { head: [], border: [], 'padding-left': 0, 'padding-right': 2, compact: true } : { head: ['cyan'], border: ['grey'] },
    ...(plain && {
      chars: {
        top: '', 'top-mid': '', 'top-left': '', 'top-right': '',
        bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
        left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '',
      },
    }),
  });
  for (const row of rows) t.push(row.map((c) => String(c)));
  // cli-table3 pads the last column too; trailing spaces only get in a script's way.
  return t.toString().split('\n').map((l) => l.trimEnd()).join('\n');
}

/** Milliseconds as a person reads them: `850 ms`, `3.0 s`, `4 m 05 s`, `1 h 02 m`. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const total = Math.round(s);
  if (total < 3600) return `${Math.floor(total / 60)} m ${String(total % 60).padStart(2, '0')} s`;
  return `${Math.floor(total / 3600)} h ${String(Math.floor((total % 3600) / 60)).padStart(2, '0')} m`;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
