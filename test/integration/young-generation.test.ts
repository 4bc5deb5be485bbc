/**
 * The young generation's cap (src/shared/young-generation.ts) as an operator gets it: `ebb serve`, run
 * as bin/ebb.js, starts node again in its own process with the cap where that lowers Node's own size
 * and node can (`process.execve`), and not otherwise; a size in NODE_OPTIONS is left to ebb and its
 * workers; and node holds V8's young generation to the cap. (Workers started from the sources, and a
 * hot restart's successor, are checked in workers.test.ts and hot-restart-harness.ts.)
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { YOUNG_GENERATION_OPTION } from '../../src/shared/young-generation.ts';
import { Cleanup, configYaml, freePort, REPO_ROOT, sleep, tempDir, waitFor, writeFileAtomic } from './harness.ts';
import { alive } from '../support/processes.ts';

const BIN = join(REPO_ROOT, 'bin/ebb.js');
const CAN_RESTART = typeof (process as { execve?: unknown }).execve === 'function';
const linuxOnly = process.platform !== 'linux' && 'reads /proc';

const cmdline = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').filter(Boolean);

/** `node [nodeOptions] bin/ebb.js serve ...args` until it says it started; stopped with SIGTERM by the caller, SIGKILL at cleanup. */
async function serveBin(
  c: Cleanup,
  nodeOptions: readonly string[],
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  ipc = false,
): Promise<{ pid: number; started: Record<string, unknown>; output: () => string; child: ChildProcess }> {
  assert.ok(existsSync(join(REPO_ROOT, 'dist/main/cli.js')), 'bin/ebb.js runs dist/, which npm install builds (its prepare script)');
  const dir = await tempDir(c);
  const config = join(dir, 'ebb.yaml');
  await writeFileAtomic(config, configYaml({ listenerPort: await freePort(), targets: [await freePort()], healthCheck: false }));
  const child = spawn(process.execPath, [...nodeOptions, BIN, 'serve', '--config', config, '--state-dir', join(dir, 'state'), '--admin', '127.0.0.1:0', '--no-auth', ...args], {
    stdio: ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '', EBB_ACCESS_KEY_ID: '', EBB_SECRET_ACCESS_KEY: '', ...env },
  });
  const pid = child.pid;
  assert.ok(pid !== undefined, 'bin/ebb.js started');
  const workers: number[] = [];
  c.add(() => {
    for (const p of [pid, ...workers]) if (alive(p)) process.kill(p, 'SIGKILL');
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  assert.ok(await waitFor(() => out.includes('"ebb:started"'), 30_000, 20), `ebb did not start: ${out.slice(-2000)}`);
  const line = out.split('\n').find((l) => l.includes('"ebb:started"')) ?? '{}';
  const started = JSON.parse(line) as Record<string, unknown>;
  workers.push(...((started['workers'] as number[] | undefined) ?? []));
  return { pid, started, output: () => out, child };
}

async function stop(pid: number, output: () => string): Promise<void> {
  process.kill(pid, 'SIGTERM');
  assert.ok(await waitFor(() => !alive(pid), 15_000, 20), `ebb did not stop on SIGTERM: ${output().slice(-2000)}`);
}

// Each ebb below gets a heap limit of 4 GiB (a limit, not a reservation), so that whether the cap is
// taken does not depend on the memory of the machine the tests run on.
const HEAP = '--max-heap-size=4096';

test("ebb serve starts node again in its own process with the cap, where that lowers Node's young generation", { skip: linuxOnly, timeout: 60_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const { pid, started, output } = await serveBin(c, [HEAP], ['--workers', '1']);
  const argv = cmdline(pid);
  t.diagnostic(`node ${process.version}, process.execve ${CAN_RESTART ? 'present' : 'absent'}: ${argv.join(' ')}`);
  assert.equal(started['pid'], pid, 'the same process, started again in place: its pid is the one its parent knows');
  assert.deepEqual(argv.slice(1, 5), CAN_RESTART ? [HEAP, YOUNG_GENERATION_OPTION, BIN, 'serve'] : [HEAP, BIN, 'serve', '--config']);
  await stop(pid, output);
});

test('under a 2 GiB heap limit, where Node may choose a smaller young generation itself, ebb serve is not started again', { skip: linuxOnly, timeout: 60_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const { pid, output } = await serveBin(c, ['--max-heap-size=1024'], ['--workers', '1']);
  assert.deepEqual(cmdline(pid).slice(1, 4), ['--max-heap-size=1024', BIN, 'serve']);
  await stop(pid, output);
});

test('ebb started with an IPC channel keeps it: not started again, which would lose it', { skip: linuxOnly, timeout: 60_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const { pid, child, output } = await serveBin(c, [HEAP], ['--workers', '1'], {}, true);
  let disconnected = false;
  child.on('disconnect', () => (disconnected = true));
  await sleep(200);
  assert.ok(child.connected && !disconnected, 'the channel to ebb is still open');
  assert.deepEqual(cmdline(pid).slice(1, 4), [HEAP, BIN, 'serve']);
  await stop(pid, output);
});

test('a size the operator put in NODE_OPTIONS is what ebb and its workers run with', { skip: linuxOnly, timeout: 60_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const nodeOptions = '--max-semi-space-size=4';
  const { pid, started, output } = await serveBin(c, [HEAP], ['--workers', '2'], { NODE_OPTIONS: nodeOptions });
  const workers = started['workers'] as number[];
  assert.equal(workers.length, 2, JSON.stringify(started));
  for (const p of [pid, ...workers]) {
    const argv = cmdline(p);
    assert.ok(!argv.includes(YOUNG_GENERATION_OPTION), `${p}: ${argv.join(' ')}`);
    assert.ok(readFileSync(`/proc/${p}/environ`, 'latin1').split('\0').includes(`NODE_OPTIONS=${nodeOptions}`), `${p} inherits NODE_OPTIONS`);
  }
  await stop(pid, output);
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
