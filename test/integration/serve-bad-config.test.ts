/**
 * Bad configuration (issue 2 §7, test 10, and §2's reload rule): `ebb serve` with an invalid file
 * names the file, line and field and exits non-zero with nothing started; a SIGHUP with an invalid
 * file is refused, logged, and the running state is kept. Health is irrelevant (fail-open routes).
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  after,
  Cleanup,
  configYaml,
  connectionRefused,
  exists,
  freePort,
  get,
  serveConfig,
  spawnEbb,
  startBackend,
  tempDir,
  writeFileAtomic,
} from './harness.ts';

/** The 1-based line of the first line of `text` that contains `needle`. */
function lineOf(text: string, needle: string): number {
  const i = text.split('\n').findIndex((l) => l.includes(needle));
  assert.ok(i >= 0, `${needle} is in the file`);
  return i + 1;
}

const cases = [
  {
    name: 'an out-of-range value',
    edit: (yaml: string) => yaml.replace('intervalSeconds: 5', 'intervalSeconds: 1'),
    needle: 'intervalSeconds: 1',
    field: 'targetGroups[0].healthCheck.intervalSeconds',
    expected: /from 5 to 300/,
  },
  {
    name: 'an unknown key',
    edit: (yaml: string) => yaml.replace('    healthCheck:', '    helthCheck:'),
    needle: 'helthCheck:',
    field: 'targetGroups[0].helthCheck',
    expected: /unknown key/,
  },
];

for (const k of cases) {
  test(`a bad config file (${k.name}): a clear error with file, line and field; non-zero exit; nothing started`, { timeout: 30_000 }, async (t) => {
    const c = new Cleanup();
    t.after(() => c.run());
    const dir = await tempDir(c);
    const listenerPort = await freePort();
    const yaml = k.edit(configYaml({ listenerPort, targets: [3001, 3002] }));
    const configPath = join(dir, 'bad.yaml');
    await writeFile(configPath, yaml);
    const stateDir = join(dir, 'state');
    const ebb = spawnEbb(c, ['--config', configPath, '--admin', '127.0.0.1:0', '--state-dir', stateDir, '--no-auth']);

    const code = await Promise.race([ebb.exited, after(15_000, 'still running')]);
    const stderr = ebb.stderr();
    t.diagnostic(`exit ${String(code)}; stderr: ${stderr.trim()}`);
    assert.notEqual(code, 0);
    assert.equal(code, 2, 'a bad configuration exits with status 2');
    const line = lineOf(yaml, k.needle);
    assert.match(stderr, new RegExp(`bad\\.yaml:${line}:\\d+: `), `the error should name the file and line ${line}`);
    assert.ok(stderr.includes(k.field), `the error should name the field ${k.field}`);
    assert.match(stderr, k.expected);
    assert.ok(stderr.split('\n').length < 10, 'one clear error, not a stack trace');
    assert.ok(!stderr.includes('    at '), 'no stack trace');
    assert.ok(await connectionRefused(listenerPort), 'the listener must not have been opened');
    assert.equal(exists(stateDir), false, 'no state directory should be created');
    assert.equal(ebb.logs.some((l) => l['event'] === 'ebb:started'), false);
  });
}

test('SIGHUP with an invalid file is refused and logged; the running state is kept', { timeout: 30_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startBackend('A', c);
  const B = await startBackend('B', c);
  const s = await serveConfig(c, { targets: [A.port, B.port], delaySeconds: 10 });

  const before = await Promise.all(Array.from({ length: 10 }, () => get(s.listenerPort, '/')));
  assert.deepEqual(new Set(before.map((r) => r.backend)), new Set(['A', 'B']));

  // The invalid file would also drop B: if any of it were applied, B would drain.
  const bad = configYaml({ listenerPort: s.listenerPort, targets: [A.port], delaySeconds: 10 }).replace('matcher: "200-399"', 'matcher: "banana"');
  await writeFileAtomic(s.configPath, bad);
  s.ebb.child.kill('SIGHUP');
  const refused = await s.ebb.waitForLog((l) => l['event'] === 'config:reload-refused' || l['event'] === 'config:reloaded', 5000);
  t.diagnostic(`log: ${JSON.stringify(refused)}`);
  assert.equal(refused?.['event'], 'config:reload-refused', 'the reload should be refused');
  const error = String(refused['error']);
  assert.ok(error.includes(`:${lineOf(bad, 'matcher:')}:`), 'the logged error names the line');
  assert.ok(error.includes('targetGroups[0].healthCheck.matcher'), 'the logged error names the field');

  const after = await Promise.all(Array.from({ length: 10 }, () => get(s.listenerPort, '/')));
  assert.ok(after.every((r) => r.status === 200));
  assert.deepEqual(new Set(after.map((r) => r.backend)), new Set(['A', 'B']), 'both targets still serve');
  assert.equal(s.ebb.logs.some((l) => l['event'] === 'drain:start'), false, 'nothing was deregistered');

  // A valid file afterwards is applied.
  await writeFileAtomic(s.configPath, configYaml({ listenerPort: s.listenerPort, targets: [A.port], delaySeconds: 10 }));
  s.ebb.child.kill('SIGHUP');
  assert.notEqual(await s.ebb.waitForLog((l) => l['event'] === 'config:reloaded', 5000), null, 'a valid file is applied');
  assert.notEqual(await s.ebb.waitForLog((l) => l['event'] === 'drain:start', 2000), null, 'B is deregistered and drains');
  const last = await Promise.all(Array.from({ length: 6 }, () => get(s.listenerPort, '/')));
  assert.deepEqual(last.map((r) => r.backend), Array.from({ length: 6 }, () => 'A'));

  s.ebb.child.kill('SIGTERM');
  assert.equal(await s.ebb.exited, 0);
});
