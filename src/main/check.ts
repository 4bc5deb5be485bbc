import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { checkAutoScaling, recordsOfStore } from '../autoscaling/declared.ts';
import { describeAutoScalingOp } from '../autoscaling/declared-plan.ts';
import type { CommandSpec } from '../cli/commands.ts';
import { CliError, EXIT, usageError } from '../cli/exit-codes.ts';
import { flagValue, parseLine } from '../cli/options.ts';
import { printJson, type CliIo } from '../cli/output.ts';
import { readDeclaredCertificates, type ReadCertificates } from '../config/certificates-declared.ts';
import { loadConfigFile, type EbbConfig } from '../config/load-config.ts';
import { checkDeclared } from '../control/apply-declared.ts';
import { ControlPlane } from '../control/control-plane.ts';
import { describeOp } from '../control/declared-plan.ts';
import type { StateStore } from '../domain/store-port.ts';
import { realClock } from '../shared/clock.ts';
import { describeError, EbbError } from '../shared/errors.ts';
import { InMemoryStateStore } from '../store/in-memory-state-store.ts';
import { openStateStore } from '../store/open-state-store.ts';
import { DB_FILE } from '../store/sqlite-state-store.ts';
import { checkPort } from './port-probe.ts';
import { DEFAULT_STATE_DIR } from './options.ts';

/** `ebb check`'s command line, in the client's table so help and typo suggestions cover it too. */
export const CHECK_COMMAND: CommandSpec = {
  name: 'check',
  args: '',
  summary: 'Validate a configuration file (as nginx -t does) and say what applying it to the state in STATE-DIR would change.',
  flags: { '--config': { kind: 'value', help: 'The configuration file to check (required).' } },
  minArgs: 0,
  maxArgs: 0,
};

/** What `ebb check --json` prints. */
export interface CheckReport {
  readonly file: string;
  readonly valid: boolean;
  /** The file's problems (`file:line:col: field: what was expected`), or why applying it would be refused. */
  readonly problems: readonly string[];
  readonly stateDir: string;
  /** Whether the state directory held a state (else: what a first start with the file would do). */
  readonly stateFound: boolean;
  /** One line per change applying the file would make now, in the order ebb makes them. */
  readonly changes: readonly string[];
  /** What the file declares and did not change since it was last applied, left as the API made it. */
  readonly kept: readonly string[];
}

/**
 * `ebb check --config FILE [--state-dir DIR] [--json]`: validates the file as `ebb serve` reads it
 * (every problem with its line, exit 2, like `nginx -t` and `haproxy -c`), then plans it against the
 * state ebb keeps in the state directory, as a reload (SIGHUP) or the next start would: the three-way
 * merge of the file as last applied, the file now and what exists now (src/control/declared-plan.ts),
 * with the same checks a reload makes first (fields that cannot change, listener ports that are taken,
 * names of templates and target groups an Auto Scaling group uses, sizes that must fit those the API set).
 *
 * The state is read from a copy: a running ebb holds its database with an exclusive lock, and the
 * copy is opened, upgraded and planned against in a temporary directory, so the state directory and
 * the running ebb are never changed. Exit codes: 0 valid (the changes printed), 2 invalid (the file,
 * or applying it would be refused), 3 the state could not be read.
 */
export async function runCheck(argv: readonly string[], io: CliIo): Promise<number> {
  const json = argv.includes('--json');
  let report: CheckReport;
  try {
    const line = parseLine(CHECK_COMMAND, argv);
    if (line.help) {
      io.stdout.write(checkUsage());
      return EXIT.ok;
    }
    const file = flagValue(line, '--config');
    if (file === undefined) throw usageError("'ebb check' needs --config FILE: the configuration file to check.");
    report = await check(resolve(io.cwd, file), flagValue(line, '--state-dir'), io);
  } catch (error) {
    const e = error instanceof CliError ? error : new CliError(EXIT.refused, 'StateUnreadable', describeError(error));
    if (json) printJson(io, { error: { code: e.code, message: e.message, exitCode: e.exitCode } }, false);
    io.stderr.write(`ebb check: ${e.message}\n`);
    return e.exitCode;
  }
  if (json) printJson(io, report);
  else io.stdout.write(renderReport(report));
  if (!report.valid) return EXIT.usage;
  return EXIT.ok;
}

function checkUsage(): string {
  return [
    'Usage: ebb check --config FILE [--state-dir DIR] [--json]',
    '',
    `  ${CHECK_COMMAND.summary}`,
    '',
    '  --config FILE              The configuration file to check.',
    "  --state-dir DIR            ebb's state directory (default $EBB_STATE_DIR, else the file's admin.stateDir, else ./.ebb).",
    '  --json                     Print JSON instead of text.',
    '',
    'Nothing is changed: the state is read from a copy. Exit 0 when the file is valid, 2 when it is not or',
    'applying it would be refused, 3 when the state cannot be read. See docs/cli.md.',
    '',
  ].join('\n');
}

async function check(file: string, stateDirFlag: string | undefined, io: CliIo): Promise<CheckReport> {
  let config: EbbConfig;
  let certificates: ReadCertificates;
  try {
    config = await loadConfigFile(file);
    // The certificate files as ebb serve reads them at a start or reload: one missing or bad makes the file invalid.
    certificates = await readDeclaredCertificates(config.certificates, realClock.wallTime());
  } catch (error) {
    if (EbbError.is(error) && error.code === 'ConfigUnreadable') throw new CliError(EXIT.usage, error.code, error.message);
    if (!EbbError.is(error) || error.code !== 'ConfigInvalid') throw error;
    return { file, valid: false, problems: error.message.split('\n'), stateDir: '', stateFound: false, changes: [], kept: [] };
  }
  // The state directory as `ebb serve` chooses it.
  const stateDir = resolve(io.cwd, stateDirFlag ?? io.env['EBB_STATE_DIR'] ?? config.admin.stateDir ?? DEFAULT_STATE_DIR);
  const { store, found, dispose } = await stateCopy(stateDir);
  const control = new ControlPlane({
    clock: realClock,
    store,
    dataPlanes: [],
    ...(config.admin.region === undefined ? {} : { region: config.admin.region }),
    ...(config.admin.accountId === undefined ? {} : { accountId: config.admin.accountId }),
    listenAddresses: {
      ...(config.listenAddresses?.['internet-facing'] !== undefined && { 'internet-facing': config.listenAddresses['internet-facing'] }),
      ...(config.listenAddresses?.internal !== undefined && { internal: config.listenAddresses.internal }),
    },
  });
  try {
    await control.start();
    try {
      const plan = await checkDeclared(control, config.declared, { checkPort });
      // Planned from the stored records: Auto Scaling is not started here, so no instance is adopted or stopped.
      const scaling = checkAutoScaling(config.autoScaling.declared, recordsOfStore(await store.load()), control, plan.ops, { where: config.autoScaling.where });
      // Applied to the copy, to say which certificates are new or changed on disk.
      const certificateChanges = await control.certificates.applyDeclared(certificates.certificates);
      return {
        file,
        valid: true,
        problems: [],
        stateDir,
        stateFound: found,
        changes: [...certificateChanges, ...plan.ops.map(describeOp), ...scaling.ops.map(describeAutoScalingOp)],
        kept: [...plan.kept, ...scaling.kept],
      };
    } catch (error) {
      if (EbbError.is(error) && (error.code === 'ConfigInvalid' || error.code === 'ListenAddressInUse' || error.code === 'ValidationError')) {
        return { file, valid: false, problems: [`applying ${file} to the state in ${stateDir} would be refused: ${error.message}`], stateDir, stateFound: found, changes: [], kept: [] };
      }
      throw error;
    }
  } finally {
    await control.close().catch(() => undefined);
    await store.close().catch(() => undefined);
    dispose();
  }
}

/**
 * The state of `stateDir`, opened from a copy in a temporary directory (or an empty state when there
 * is none). The database and its write-ahead log are copied together; a copy taken while the running
 * ebb was writing (the files changed under it) is taken again.
 */
async function stateCopy(stateDir: string): Promise<{ store: StateStore; found: boolean; dispose: () => void }> {
  const db = join(stateDir, DB_FILE);
  if (!existsSync(db)) return { store: new InMemoryStateStore(), found: false, dispose: () => undefined };
  const copy = mkdtempSync(join(tmpdir(), 'ebb-check-'));
  const dispose = (): void => rmSync(copy, { recursive: true, force: true });
  try {
    const stamp = (): string =>
      [db, `${db}-wal`]
        .map((f) => {
          try {
            const s = statSync(f);
            return `${s.size}:${s.mtimeMs}`;
          } catch {
            return '-';
          }
        })
        .join('/');
    for (let attempt = 0; ; attempt++) {
      const before = stamp();
      copyFileSync(db, join(copy, DB_FILE));
      if (existsSync(`${db}-wal`)) copyFileSync(`${db}-wal`, join(copy, `${DB_FILE}-wal`));
      if (stamp() === before) break;
      if (attempt === 5) throw new CliError(EXIT.refused, 'StateBusy', `The state in ${stateDir} kept changing while it was read; run ebb check again.`);
    }
    return { store: await openStateStore(copy), found: true, dispose };
  } catch (error) {
    dispose();
    if (error instanceof CliError) throw error;
    throw new CliError(EXIT.refused, 'StateUnreadable', `Cannot read the state in ${stateDir}: ${describeError(error)}. Check --state-dir.`);
  }
}

function renderReport(r: CheckReport): string {
  if (!r.valid) return `${r.problems.join('\n')}\n${r.file}: test failed\n`;
  const out = [`${r.file}: the configuration is valid`];
  const basis = r.stateFound ? `the state in ${r.stateDir} (a reload, or the next start, would apply it so)` : `no state in ${r.stateDir}: a first start would`;
  if (r.changes.length === 0) out.push(`Applied to ${r.stateDir}: nothing would change.`);
  else out.push(`Applied to ${basis}:`, ...r.changes.map((c) => `  ${c}`));
  if (r.kept.length > 0) out.push('Kept as the API left them (the file did not change them since it was last applied):', ...r.kept.map((k) => `  ${k}`));
  return `${out.join('\n')}\n`;
}
