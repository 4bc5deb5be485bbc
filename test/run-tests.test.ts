/**
 * scripts/run-tests.mjs, the runner behind `npm test`: its exit status must say how the test run ended.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../scripts/run-tests.mjs', import.meta.url));

/** Runs the runner on one test file written to a temp dir (so the suite itself never picks it up). */
function runOn(source: string): { status: number | null; signal: NodeJS.Signals | null } {
  const dir = mkdtempSync(join(tmpdir(), 'ebb-run-tests-'));
  try {
    const file = join(dir, 'probe.test.ts');
    writeFileSync(file, source);
    // Without NODE_TEST_CONTEXT: with it, the inner `node --test` reports to this run instead of exiting with its result.
    const env = { ...process.env };
    delete env['NODE_TEST_CONTEXT'];
    const r = spawnSync(process.execPath, [SCRIPT, file], { encoding: 'utf8', env, timeout: 60_000 });
    return { status: r.status, signal: r.signal };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a passing run exits 0 and a failing one 1', () => {
  assert.equal(runOn("import { test } from 'node:test';\ntest('passes', () => {});\n").status, 0);
  assert.equal(runOn("import { test } from 'node:test';\ntest('fails', () => { throw new Error('no'); });\n").status, 1);
});

test('a test process killed by a signal exits 128 + the signal number, as a shell reports it, not 1 like a failing test', () => {
  // The test file's parent is the `node --test` process the runner started: kill it as the OOM killer would.
  const r = runOn("process.kill(process.ppid, 'SIGKILL');\nsetTimeout(() => undefined, 5000);\n");
  assert.equal(r.signal, null);
  assert.equal(r.status, 128 + constants.signals.SIGKILL);
});
