/**
 * The ebb command-line client's exit codes (docs/cli.md lists them). Scripts branch on them, so a code
 * keeps its meaning once released: a new situation gets a new number.
 */
export const EXIT = {
  /** Done: the command did what it says (a drain it waited for ended idle). */
  ok: 0,
  /** A drain ended without finishing its work: the deadline cut requests or tunnels, or it was cancelled. */
  drainCut: 1,
  /** The command line is wrong (an unknown command or option, a bad argument); for `check`, the file is invalid. */
  usage: 2,
  /** ebb refused the request: an unknown target group or target, a bad value (its error code is printed). */
  refused: 3,
  /** `wait-drained`: the target is registered and not draining, so there is no drain to wait for. */
  notDraining: 4,
  /** `--timeout` passed before what was waited for happened. */
  timeout: 5,
  /** ebb could not be reached at the endpoint, or what answered there is not ebb's admin endpoint. */
  unreachable: 6,
  /** No credentials were found, or ebb did not accept them (unknown key, wrong secret, wrong region). */
  credentials: 7,
  /** This ebb does not offer it (an ebb without Auto Scaling asked for standby). */
  unavailable: 8,
  /** A fault in the client itself; please report it with the message. */
  internal: 70,
  /** Interrupted (Ctrl-C) while waiting or watching; what ebb was doing goes on without the client. */
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure the client reports as one message (what happened and what to do) and an exit code. */
export class CliError extends Error {
  readonly exitCode: ExitCode;
  /** ebb's error code when ebb refused the request (`TargetGroupNotFound`), for `--json` output. */
  readonly code: string;

  constructor(exitCode: ExitCode, code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CliError';
    this.exitCode = exitCode;
    this.code = code;
  }
}

export function usageError(message: string): CliError {
  return new CliError(EXIT.usage, 'UsageError', message);
}
