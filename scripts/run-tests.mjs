#!/usr/bin/env node
// Runs every *.test.ts under src/, test/ and bench/ (the benchmarks' own tools, not the benchmarks) with node:test and tsx. Node 20's --test does not expand
// glob patterns itself, so the files are listed here. Extra arguments are passed to node --test
// (for example a file path to run just that file, or --test-name-pattern).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const explicit = args.filter((a) => a.endsWith('.test.ts'));
const flags = args.filter((a) => !a.endsWith('.test.ts'));
const files =
  explicit.length > 0
    ? explicit
    : ['src', 'test', 'bench']
        .flatMap((dir) => readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((f) => join(dir, f)))
        .filter((f) => f.endsWith('.test.ts') && !f.includes('node_modules'))
        .sort();

// The dashboard's browser test drives Debian's chromium with playwright-core, which downloads no browser
// itself. A machine without it gets it here, from Debian's packages, so that this command alone sets up
// everything the suite needs (the README's second command) and the test is never skipped.
const CHROMIUM = '/usr/bin/chromium';
function ensureChromium() {
  if (process.env.EBB_CHROMIUM || existsSync(CHROMIUM) || !files.some((f) => f.endsWith('dashboard-browser.test.ts'))) return;
  const say = (line) => process.stderr.write(`npm test: ${line}\n`);
  const hasApt = spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!hasApt || process.getuid?.() !== 0) {
    say(`the dashboard's browser test needs Chromium at ${CHROMIUM}: install Debian's (apt-get install -y chromium, as root) or set EBB_CHROMIUM to a Chromium binary`);
    return;
  }
  const apt = (argv) => spawnSync('apt-get', argv, { stdio: 'inherit', timeout: 600_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  // apt-cache knows no candidate before a first `apt-get update`.
  const policy = spawnSync('apt-cache', ['policy', 'chromium'], { encoding: 'utf8', timeout: 60_000 });
  if (!/Candidate: [0-9]/.test(policy.stdout ?? '')) apt(['update', '-q']);
  say("installing Debian's chromium for the dashboard's browser test (apt-get install chromium)");
  if (apt(['install', '-y', '-q', 'chromium']).status !== 0 || !existsSync(CHROMIUM)) {
    say(`apt-get install chromium failed: the dashboard's browser test will fail (or set EBB_CHROMIUM to a Chromium binary)`);
  }
}
ensureChromium();

// Four files at a time on two cores: most integration tests wait on real timers, child processes and
// sockets rather than the CPU. With three at a time the cores were still idle over a quarter of the
// time; with four they are busy most of it (test/integration/[dehmps]*: 105 s at three, 92 s at four).
// The tests' own timeouts leave room for the load that four at a time make.
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=4', '--test-timeout=180000', ...flags, ...files],
  { stdio: 'inherit' },
);
// A run killed by a signal (the OOM killer, a CI timeout) exits 128 + the signal's number, as a shell
// reports it, so it is not mistaken for a run whose tests failed (1).
child.on('exit', (code, signal) => process.exit(code ?? 128 + (constants.signals[signal ?? ''] ?? 0)));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
