/**
 * The young generation's cap (src/shared/young-generation.ts) as an operator gets it: `ebb` run
 * through bin/ebb.js's `#!` line starts node with it, and node holds V8's young generation to it.
 * (Worker processes get it too: test/integration/workers.test.ts reads their command lines.)
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { YOUNG_GENERATION_OPTION } from '../../src/shared/young-generation.ts';
import { Cleanup, configYaml, freePort, REPO_ROOT, tempDir, waitFor, writeFileAtomic } from './harness.ts';
import { alive } from '../support/processes.ts';

const BIN = join(REPO_ROOT, 'bin/ebb.js');

test('ebb, run through its #! line, starts node with the young generation cap', { skip: process.platform !== 'linux' && 'reads /proc', timeout: 30_000 }, async (t) => {
  assert.ok(existsSync(join(REPO_ROOT, 'dist/main/cli.js')), 'bin/ebb.js runs dist/, which npm install builds (its prepare script)');
  const c = new Cleanup();
  t.after(() => c.run());
  const dir = await tempDir(c);
  const listenerPort = await freePort();
  const config = join(dir, 'ebb.yaml');
  await writeFileAtomic(config, configYaml({ listenerPort, targets: [await freePort()], healthCheck: false }));
  // bin/ebb.js itself, as a shell runs it: the kernel reads its #! line, env starts node in the same process.
  const ebb = spawn(BIN, ['serve', '--config', config, '--state-dir', join(dir, 'state'), '--admin', '127.0.0.1:0', '--no-auth', '--workers', '1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '', EBB_ACCESS_KEY_ID: '', EBB_SECRET_ACCESS_KEY: '' },
  });
  const pid = ebb.pid;
  assert.ok(pid !== undefined, 'bin/ebb.js started');
  c.add(() => {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  let out = '';
  ebb.stdout.on('data', (d: Buffer) => (out += d.toString()));
  ebb.stderr.on('data', (d: Buffer) => (out += d.toString()));
  assert.ok(await waitFor(() => out.includes('"ebb:started"'), 20_000, 20), `ebb did not start: ${out.slice(-2000)}`);
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').filter(Boolean);
  assert.match(argv[0] ?? '', /(^|\/)node$/, `the process is node: ${argv.join(' ')}`);
  assert.equal(argv[1], YOUNG_GENERATION_OPTION, `node's first option is the cap: ${argv.join(' ')}`);
  assert.equal(argv[2], BIN);
  process.kill(pid, 'SIGTERM');
  assert.ok(await waitFor(() => !alive(pid), 10_000, 20), `ebb did not stop on SIGTERM: ${out.slice(-2000)}`);
});

test("node holds V8's young generation to the cap however much survives a scavenge", { timeout: 30_000 }, (t) => {
  // Objects that live through a scavenge or two make V8 grow the young generation to its largest.
  const script = `
    const v8 = require('node:v8');
    let keep = [];
    const end = Date.now() + 600;
    while (Date.now() < end) {
      for (let i = 0; i < 20000; i++) { keep.push({ i, pair: [i, i], text: 'x' + i }); if (keep.length > 50000) keep = []; }
    }
    const young = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    process.stdout.write(String(young.space_size));`;
  const run = (options: string[]): number => {
    const r = spawnSync(process.execPath, [...options, '-e', script], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, NODE_OPTIONS: '' } });
    assert.equal(r.status, 0, r.stderr);
    return Number(r.stdout) / 1048576;
  };
  const capped = run([YOUNG_GENERATION_OPTION]);
  const small = run(['--max-semi-space-size=2']);
  t.diagnostic(`young generation: ${capped} MiB with ${YOUNG_GENERATION_OPTION}, ${small} MiB with --max-semi-space-size=2, node ${process.version}`);
  assert.ok(capped <= 32, `two semi-spaces of at most 16 MiB: ${capped} MiB`);
  assert.ok(small <= 4 && capped > small, `the option is what sizes it: ${small} MiB at 2, ${capped} MiB at 16`);
});

