/**
 * The young generation's cap (src/shared/young-generation.ts) as an operator gets it: `ebb serve`, run
 * as bin/ebb.js, starts node again in its own process with the cap where that lowers Node's own size
 * and node can (`process.execve`), and not otherwise; a size in NODE_OPTIONS is left to ebb and its
 * workers; and node holds V8's young generation to the cap. (Workers started from the sources, and a
 * hot restart's successor, are checked in workers.test.ts and hot-restart-harness.ts.)
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { YOUNG_GENERATION_OPTION } from '../../src/shared/young-generation.ts';
import { NO_ADMIN_CREDENTIALS, spawnNode, waitForStart, type NodeProcess } from '../support/ebb-process.ts';
import { commandLine } from '../support/processes.ts';
import { Cleanup, configYaml, freePort, REPO_ROOT, sleep, tempDir, writeFileAtomic } from './harness.ts';

const BIN = join(REPO_ROOT, 'bin/ebb.js');
const CAN_RESTART = typeof (process as { execve?: unknown }).execve === 'function';
const linuxOnly = process.platform !== 'linux' && 'reads /proc';

/** `node [nodeOptions] bin/ebb.js serve ...args`, started: its `ebb:started` line. */
async function serveBin(c: Cleanup, nodeOptions: readonly string[], args: readonly string[], env: NodeJS.ProcessEnv = {}, ipc = false): Promise<{ ebb: NodeProcess; started: Record<string, unknown> }> {
  assert.ok(existsSync(join(REPO_ROOT, 'dist/main/cli.js')), 'bin/ebb.js runs dist/, which npm install builds (its prepare script)');
  const dir = await tempDir(c);
  const config = join(dir, 'ebb.yaml');
  await writeFileAtomic(config, configYaml({ listenerPort: await freePort(), targets: [await freePort()], healthCheck: false }));
  const serve = ['serve', '--config', config, '--state-dir', join(dir, 'state'), '--admin', '127.0.0.1:0', '--no-auth', ...args];
  const ebb = spawnNode(c, [...nodeOptions, BIN, ...serve], { env: { ...NO_ADMIN_CREDENTIALS, NODE_OPTIONS: '', ...env }, ipc });
  return { ebb, started: await waitForStart(ebb, 30_000) };
}

/** SIGTERM, and ebb exits 0. */
async function stop(ebb: NodeProcess): Promise<void> {
  process.kill(ebb.pid, 'SIGTERM');
  assert.equal(await ebb.exited, 0, ebb.stderr());
}

// Each ebb below gets a heap limit of 4 GiB (a limit, not a reservation), so that whether the cap is
// taken does not depend on the memory of the machine the tests run on.
const HEAP = '--max-heap-size=4096';

test("ebb serve starts node again in its own process with the cap, where that lowers Node's young generation", { skip: linuxOnly, timeout: 60_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const { ebb, started } = await serveBin(c, [HEAP], ['--workers', '1']);
  const argv = commandLine(ebb.pid);
  t.diagnostic(`node ${process.version}, process.execve ${CAN_RESTART ? 'present' : 'absent'}: ${argv.join(' ')}`);
  assert.equal(started['pid'], ebb.pid, 'the same process, started again in place: its pid is the one its parent knows');
  assert.deepEqual(argv.slice(1, 5), CAN_RESTART ? [HEAP, YOUNG_GENERATION_OPTION, BIN, 'serve'] : [HEAP, BIN, 'serve', '--config']);
  await stop(ebb);
});

test('under a 2 GiB heap limit, where Node may choose a smaller young generation itself, ebb serve is not started again', { skip: linuxOnly, timeout: 60_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const { ebb } = await serveBin(c, ['--max-heap-size=1024'], ['--workers', '1']);
  assert.deepEqual(commandLine(ebb.pid).slice(1, 4), ['--max-heap-size=1024', BIN, 'serve']);
  await stop(ebb);
});

test('ebb started with an IPC channel keeps it: not started again, which would lose it', { skip: linuxOnly, timeout: 60_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const { ebb } = await serveBin(c, [HEAP], ['--workers', '1'], {}, true);
  let disconnected = false;
  ebb.child.on('disconnect', () => (disconnected = true));
  await sleep(200);
  assert.ok(ebb.child.connected && !disconnected, 'the channel to ebb is still open');
  assert.deepEqual(commandLine(ebb.pid).slice(1, 4), [HEAP, BIN, 'serve']);
  await stop(ebb);
});

test('a size the operator put in NODE_OPTIONS is what ebb and its workers run with', { skip: linuxOnly, timeout: 60_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const nodeOptions = '--max-semi-space-size=4';
  const { ebb, started } = await serveBin(c, [HEAP], ['--workers', '2'], { NODE_OPTIONS: nodeOptions });
  const workers = started['workers'] as number[];
  assert.equal(workers.length, 2, JSON.stringify(started));
  for (const p of [ebb.pid, ...workers]) {
    const argv = commandLine(p);
    assert.ok(!argv.includes(YOUNG_GENERATION_OPTION), `${p}: ${argv.join(' ')}`);
    assert.ok(readFileSync(`/proc/${p}/environ`, 'latin1').split('\0').includes(`NODE_OPTIONS=${nodeOptions}`), `${p} inherits NODE_OPTIONS`);
  }
  await stop(ebb);
});

test("node holds V8's young generation to the cap however much survives a scavenge", { timeout: 30_000 }, (t) => {
  // Objects that live through a scavenge or two make V8 grow the young generation to its limit.
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
