/**
 * The node's access log as `ebb serve` wires it: JSON lines to a file, and SIGUSR1 after logrotate
 * moved the file (logrotate's `create` mode): lines before the signal stay in the moved file, lines
 * after go to a new file at the path. The signal is delivered to this process's listeners with
 * process.emit, as the kernel's would be, since the test runner shares the process.
 */
import assert from 'node:assert/strict';
import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { startEbb } from '../../src/main/ebb.ts';
import { Cleanup, configYaml, freePort, get, sleep, startBackend, tempDir, writeFileAtomic } from './harness.ts';

test('JSON access lines to a file; SIGUSR1 reopens it after logrotate moved it', { timeout: 30_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startBackend('A', c);
  const dir = await tempDir(c);
  const listenerPort = await freePort();
  const yaml = `${configYaml({ listenerPort, targets: [A.port] })}accessLog:\n  output: file\n  path: access.log\n  format: json\n`;
  const configPath = join(dir, 'ebb.yaml');
  await writeFileAtomic(configPath, yaml);
  const ebb = await startEbb({ configPath, stateDir: join(dir, 'state'), adminAddress: '127.0.0.1:0', authentication: false, env: {}, log: () => undefined });
  c.add(() => ebb.shutdown());
  const path = join(dir, 'access.log');
  const lines = async (p: string): Promise<Array<Record<string, unknown>>> =>
    (await readFile(p, 'utf8'))
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  assert.equal((await get(listenerPort, '/before')).status, 200);
  // Within a second, without anyone flushing.
  let first: Array<Record<string, unknown>> = [];
  const end = Date.now() + 1000;
  while (first.length === 0 && Date.now() < end) {
    first = await lines(path).catch(() => []);
    if (first.length === 0) await sleep(20);
  }
  assert.equal(first.length, 1, 'the line should reach the file within a second');
  assert.equal(first[0]?.['request_url'], `http://127.0.0.1:${listenerPort}/before`);
  assert.equal(first[0]?.['elb_status_code'], 200);
  assert.equal(first[0]?.['target_port'], A.port);

  await rename(path, `${path}.1`);
  assert.equal((await get(listenerPort, '/moved')).status, 200);
  await ebb.accessLogs.flush();
  assert.ok(process.listenerCount('SIGUSR1') >= 1, 'ebb listens for SIGUSR1 when it writes a file');
  process.emit('SIGUSR1');
  assert.equal((await get(listenerPort, '/after')).status, 200);
  await ebb.accessLogs.flush();

  assert.deepEqual((await lines(`${path}.1`)).map((l) => l['request_url']), [`http://127.0.0.1:${listenerPort}/before`, `http://127.0.0.1:${listenerPort}/moved`]);
  assert.deepEqual((await lines(path)).map((l) => l['request_url']), [`http://127.0.0.1:${listenerPort}/after`]);
  await ebb.shutdown();
  assert.equal(process.listenerCount('SIGUSR1'), 0, 'the handler is removed at shutdown');
});
