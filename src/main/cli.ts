import { readFileSync } from 'node:fs';
import { ALL_COMMANDS, clientUsage, unknownCommand } from '../cli/commands.ts';
import type { CliIo } from '../cli/output.ts';
import { isClientCommand, runClient } from '../cli/run.ts';
import { describeError, EbbError } from '../shared/errors.ts';
import { runCheck } from './check.ts';
import { startEbb, type Ebb } from './ebb.ts';
import { createLog } from './logger.ts';
import { parseArgs, usage } from './options.ts';

/**
 * `ebb serve`: runs until SIGTERM/SIGINT (graceful shutdown, exit 0), re-reads its config on SIGHUP.
 * A second SIGTERM/SIGINT during shutdown exits at once (status 1).
 * Exit codes: 0 clean stop, 1 forced stop or runtime failure, 2 bad command line or configuration.
 * The client commands (status, register, deregister, drains, wait-*, dashboard, standby) run in
 * src/cli and talk to a running ebb over its admin endpoint; their exit codes are in docs/cli.md.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const first = argv[0];
  if (first !== undefined && isClientCommand(first)) return runClient(argv, clientIo());
  if (first === 'check') return runCheck(argv.slice(1), clientIo());
  if (first !== undefined && !first.startsWith('-') && !ALL_COMMANDS.includes(first)) {
    process.stderr.write(`ebb: ${unknownCommand(first)}\n`);
    return 2;
  }
  let parsed;
  try {
    parsed = parseArgs(argv);
  } catch (error) {
    process.stderr.write(`ebb: ${describeError(error)}\n`);
    return 2;
  }
  if (parsed.command === 'help') {
    process.stdout.write(`${clientUsage()}\n${usage()}`);
    return 0;
  }
  if (parsed.command === 'version') {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`ebb ${pkg.version}\n`);
    return 0;
  }
  const log = createLog();
  // The signal handlers are in place before ebb starts: a SIGTERM that comes while it starts (or just
  // after it says it has started) is a graceful stop once it is up, never the default kill.
  let ebb: Ebb | null = null;
  let stopping = false;
  let pendingStop: string | null = null;
  let finish: (code: number) => void = () => {};
  const stop = (signal: string): void => {
    log({ event: 'signal', signal });
    if (ebb === null) {
      // Still starting: stop as soon as it is up; a second signal stops at once.
      if (pendingStop !== null) process.exit(1);
      pendingStop = signal;
      return;
    }
    if (stopping) {
      log({ event: 'ebb:forced-stop' });
      ebb.dataPlane.destroy();
      finish(1);
      return;
    }
    stopping = true;
    ebb.shutdown().then(
      () => finish(0),
      (error: unknown) => {
        process.stderr.write(`ebb: shutdown failed: ${describeError(error)}\n`);
        finish(1);
      },
    );
  };
  const onTerm = (): void => stop('SIGTERM');
  const onInt = (): void => stop('SIGINT');
  const onHup = (): void => {
    log({ event: 'signal', signal: 'SIGHUP' });
    if (ebb !== null) void ebb.reload();
  };
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  process.on('SIGHUP', onHup);
  try {
    ebb = await startEbb({ ...parsed.serve, log });
  } catch (error) {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
    process.off('SIGHUP', onHup);
    process.stderr.write(`ebb: ${describeError(error)}\n`);
    return EbbError.is(error) && ['ConfigInvalid', 'ConfigUnreadable', 'ValidationError'].includes(error.code) ? 2 : 1;
  }
  return new Promise<number>((resolve) => {
    finish = resolve;
    if (pendingStop !== null) stop(pendingStop);
  });
}

/**
 * The client commands' terminal: this process's streams, and Ctrl-C as a signal to stop following a
 * drain or a --watch (the command then ends as it should: cursor shown, what goes on said); a second
 * Ctrl-C exits at once. The listener stays registered: the terminal libraries re-raise a signal that
 * no other listener is left to handle.
 */
function clientIo(): CliIo {
  const interrupt = new AbortController();
  process.on('SIGINT', () => {
    if (interrupt.signal.aborted) process.exit(130);
    interrupt.abort();
  });
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd(), signal: interrupt.signal };
}

const isEntry = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isEntry) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`ebb: ${describeError(error)}\n`);
      process.exit(1);
    },
  );
}
