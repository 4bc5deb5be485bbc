import { AdminClient } from './admin-client.ts';
import { clientCommand, commandUsage } from './commands.ts';
import { resolveConnection } from './connection.ts';
import { dashboard } from './dashboard.ts';
import { drains } from './drains.ts';
import { CliError, EXIT, usageError, type ExitCode } from './exit-codes.ts';
import { flagValue, parseLine, secondsFlag, type ParsedLine } from './options.ts';
import { printJson, type CliIo } from './output.ts';
import { standby } from './standby.ts';
import { status } from './status.ts';
import { deregister, register, waitDrained, waitNotRouted } from './targets.ts';

/**
 * Runs one client command (`argv[0]` is its name) and resolves with its exit code (docs/cli.md).
 * Never throws: a failure is one line on stderr saying what to do (and with --json, an `error`
 * object on stdout).
 */
export async function runClient(argv: readonly string[], io: CliIo): Promise<number> {
  const name = argv[0] ?? '';
  const spec = clientCommand(name);
  if (spec === undefined) throw new Error(`not a client command: ${name}`);
  const json = argv.includes('--json');
  try {
    const line = parseLine(spec, argv.slice(1));
    if (line.help) {
      io.stdout.write(commandUsage(spec));
      return EXIT.ok;
    }
    const client = new AdminClient(
      resolveConnection({ endpoint: flagValue(line, '--endpoint'), stateDir: flagValue(line, '--state-dir'), region: flagValue(line, '--region'), env: io.env, cwd: io.cwd }),
    );
    return await run(client, io, line, line.flags.has('--json'));
  } catch (error) {
    const e =
      error instanceof CliError
        ? error
        : new CliError(EXIT.internal, 'InternalError', `Unexpected failure in the ebb client: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    if (json) printJson(io, { error: { code: e.code, message: e.message, exitCode: e.exitCode } }, false);
    io.stderr.write(`ebb ${name}: ${e.message}\n`);
    return e.exitCode;
  }
}

async function run(client: AdminClient, io: CliIo, line: ParsedLine, json: boolean): Promise<ExitCode> {
  const [first = '', ...rest] = line.args;
  switch (line.command.name) {
    case 'status':
      if (!line.flags.has('--watch') && line.flags.has('--interval')) throw usageError('--interval goes with --watch.');
      await status(client, io, { json, watch: line.flags.has('--watch'), intervalSeconds: Math.max(0.2, secondsFlag(line, '--interval', 3600) ?? 1) });
      return EXIT.ok;
    case 'register':
      return register(client, io, first, rest, json);
    case 'deregister':
      return deregister(client, io, { group: first, targets: rest, timeoutSeconds: secondsFlag(line, '--timeout', 3600, true), wait: line.flags.has('--wait'), json });
    case 'drains': {
      const limit = flagValue(line, '--limit');
      if (limit !== undefined && (!/^\d{1,4}$/.test(limit) || Number(limit) < 1 || Number(limit) > 1000)) throw usageError(`--limit must be a number from 1 to 1000; got '${limit}'.`);
      const outcome = flagValue(line, '--outcome');
      if (outcome !== undefined && !['idle', 'deadline', 'cancelled'].includes(outcome)) throw usageError(`--outcome must be idle, deadline or cancelled; got '${outcome}'.`);
      await drains(client, io, { group: flagValue(line, '--group'), outcome, limit: limit === undefined ? 20 : Number(limit), json });
      return EXIT.ok;
    }
    case 'wait-drained':
      return waitDrained(client, io, { group: first, target: rest[0] ?? '', timeoutSeconds: secondsFlag(line, '--timeout', 86_400), json });
    case 'wait-not-routed':
      return waitNotRouted(client, io, { group: first, target: rest[0] ?? '', timeoutSeconds: secondsFlag(line, '--timeout', 86_400), json });
    case 'dashboard':
      await dashboard(client, io, json);
      return EXIT.ok;
    case 'standby':
    case 'unstandby':
      return standby(client, io, {
        enter: line.command.name === 'standby',
        instanceId: first,
        group: flagValue(line, '--group'),
        decrement: !line.flags.has('--keep-desired-capacity'),
        wait: line.flags.has('--wait'),
        timeoutSeconds: secondsFlag(line, '--timeout', 86_400),
        json,
        ...(io.signal === undefined ? {} : { signal: io.signal }),
      });
    default:
      throw new Error(`no handler for ${line.command.name}`);
  }
}
