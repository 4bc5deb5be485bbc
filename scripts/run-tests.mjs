#!/usr/bin/env node
// Runs every *.test.ts under src/, test/ and bench/ (the benchmarks' own tools, not the benchmarks) with node:test and tsx. Node 20's --test does not expand
// glob patterns itself, so the files are listed here. Extra arguments are passed to node --test
// (for example a file path to run just that file, or --test-name-pattern).
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
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
