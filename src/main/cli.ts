import { readFileSync } from 'node:fs';
import { ALL_COMMANDS, clientCommand, clientUsage, unknownCommand } from '../cli/commands.ts';
import type { CliIo } from '../cli/output.ts';
import { describeError, EbbError } from '../shared/errors.ts';
import { startEbb, type Ebb } from './ebb.ts';
import { createLog } from './logger.ts';
import { Restart } from '../restart/predecessor.ts';
import { Takeover } from '../restart/successor.ts';
import { realClock } from '../shared/clock.ts';
import { defaultWorkers, parseArgs, usage } from './options.ts';

/**
 * `ebb serve`: runs until SIGTERM/SIGINT (graceful shutdown, exit 0), re-reads its config on SIGHUP.
 * A second SIGTERM/SIGINT during shutdown exits at once (status 1).
 * Exit codes: 0 clean stop, 1 forced stop or runtime failure, 2 bad command line or configuration.
 * The client commands (status, register, deregister, drains, wait-*, dashboard, standby) run in
 * src/cli and talk to a running ebb over its admin endpoint; their exit codes are in docs/cli.md.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const first = argv[0];
  // The client commands and `check` are loaded only when asked for: `ebb serve` does without their
  // terminal, table and XML libraries, which would otherwise sit in every ebb's memory (docs/benchmarks.md, "Memory").
  if (first !== undefined && clientCommand(first) !== undefined) return (await import('../cli/run.ts')).runClient(argv, clientIo());
  if (first === 'check') return (await import('./check.ts')).runCheck(argv.slice(1), clientIo());
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
  let restart: Restart | null = null;
  const stop = (signal: string): void => {
    log({ event: 'signal', signal });
    // A restart that still has the state is called off; past that, this ebb is retiring already.
    if (restart !== null && !stopping && !restart.abort(signal)) {
      stopping = true;
      log({ event: 'restart:retiring', message: 'this ebb stops once its data plane has finished; a second signal stops it at once' });
      return;
    }
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
    if (restart !== null) log({ event: 'config:reload-refused', level: 'warn', error: 'a hot restart is under way; the new ebb reads the file' });
    else if (ebb !== null) void ebb.reload();
  };
  const onUsr2 = (): void => {
    log({ event: 'signal', signal: 'SIGUSR2' });
    if (restart !== null) return log({ event: 'restart:busy', message: 'a hot restart is under way already' });
    const why =
      ebb === null || stopping
        ? 'ebb is starting or stopping'
        : ebb.dataPlane.predecessor?.attached === true
          ? 'the ebb this one took over from is still finishing its work; send SIGUSR2 once it has exited'
          : process.pid === 1
            ? "ebb is the container's first process: once it exits the kernel ends every other process, the new ebb too; restart the container instead"
            : null;
    const retiring = why === null && ebb !== null ? ebb.retiring() : null;
    if (retiring === null) {
      return log({ event: 'restart:refused', level: 'error', error: why ?? 'ebb has no data plane to hand over' });
    }
    const current = new Restart({ ebb: retiring, clock: realClock, log });
    restart = current;
    void current.outcome.then(async (outcome) => {
      if (outcome.kind === 'failed') {
        restart = null;
        return;
      }
      if (outcome.kind === 'stranded') {
        // No control plane is left here: what is in flight finishes, then ebb stops, so a supervisor starts it again.
        await retiring.dataPlane.close(30_000);
        await retiring.stopTelemetry();
        finish(1);
        return;
      }
      const { kind: _, ...counted } = outcome;
      if (outcome.successorExited === null) log({ event: 'restart:retired', successor: current.successor.pid ?? null, ...counted });
      // Nobody serves now: said loudly, and the exit status tells a supervisor.
      else log({ event: 'restart:retired', level: 'error', successor: current.successor.pid ?? null, message: `the new ebb ended (${outcome.successorExited}) after it took over`, ...counted });
      finish(outcome.successorExited === null ? 0 : 1);
    });
  };
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  process.on('SIGHUP', onHup);
  process.on('SIGUSR2', onUsr2);
  let takeover: Takeover | null = null;
  try {
    takeover = await Takeover.fromEnvironment(process.env, { clock: realClock, log });
    ebb = await startEbb({ ...parsed.serve, workers: parsed.serve.workers ?? defaultWorkers(), log, takeover });
  } catch (error) {
    takeover?.failed(describeError(error));
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
    process.off('SIGHUP', onHup);
    process.off('SIGUSR2', onUsr2);
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
