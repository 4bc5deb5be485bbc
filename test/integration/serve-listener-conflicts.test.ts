/**
 * Listeners that cannot open: a reload that moves a listener to a port in use is refused before
 * anything changes (the running listener keeps serving, attributes keep their values), and a start
 * whose listener port is taken fails with a clear error instead of running without it.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { after, Cleanup, configYaml, freePort, get, serveConfig, spawnEbb, startBackend, tempDir, writeFileAtomic } from './harness.ts';

function holdPort(cleanup: Cleanup, port: number): Promise<Server> {
  const server = createServer();
  cleanup.add(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

test('a reload moving the listener to a port in use changes nothing', { timeout: 30_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startBackend('A', c);
  const B = await startBackend('B', c);
  const s = await serveConfig(c, { targets: [A.port, B.port], delaySeconds: 10 });
  const busy = await freePort();
  await holdPort(c, busy);

  // New port taken, a new delay and B dropped: none of it may be applied.
  await writeFileAtomic(s.configPath, configYaml({ listenerPort: busy, targets: [A.port], delaySeconds: 7 }));
  s.ebb.child.kill('SIGHUP');
  const outcome = await s.ebb.waitForLog((l) => l['event'] === 'config:reload-refused' || l['event'] === 'config:reloaded', 5000);
  t.diagnostic(JSON.stringify(outcome));
  assert.equal(outcome?.['event'], 'config:reload-refused');
  assert.match(String(outcome['error']), new RegExp(`${busy}.*EADDRINUSE`));

  const replies = await Promise.all(Array.from({ length: 10 }, () => get(s.listenerPort, '/')));
  assert.ok(replies.every((r) => r.status === 200), 'the old listener still serves');
  assert.deepEqual(new Set(replies.map((r) => r.backend)), new Set(['A', 'B']), 'B was not deregistered');
  assert.equal(s.ebb.logs.some((l) => l['event'] === 'drain:start'), false);
  assert.equal(s.ebb.logs.some((l) => l['event'] === 'config:restored'), false, 'nothing needed undoing: nothing was changed');

  s.ebb.child.kill('SIGTERM');
  assert.equal(await s.ebb.exited, 0);
});

test('a listener whose port is taken at start: ebb refuses to start and says which', { timeout: 30_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const dir = await tempDir(c);
  const port = await freePort();
  await holdPort(c, port);
  const configPath = join(dir, 'ebb.yaml');
  await writeFileAtomic(configPath, configYaml({ listenerPort: port, targets: [3001] }));
  const ebb = spawnEbb(c, ['--config', configPath, '--admin', '127.0.0.1:0', '--state-dir', join(dir, 'state'), '--no-auth']);
  const code = await Promise.race([ebb.exited, after(15_000, 'still running')]);
  t.diagnostic(`exit ${String(code)}: ${ebb.stderr().trim()}`);
  assert.notEqual(code, 0);
  assert.notEqual(code, 'still running');
  assert.match(ebb.stderr(), new RegExp(`127\\.0\\.0\\.1:${port}.*EADDRINUSE`));
  assert.equal(ebb.logs.some((l) => l['event'] === 'ebb:started'), false);
});

test('a persisted listener whose port is taken at restart: ebb refuses to start', { timeout: 30_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startBackend('A', c);
  const s = await serveConfig(c, { targets: [A.port] });
  s.ebb.child.kill('SIGTERM');
  assert.equal(await s.ebb.exited, 0);
  await holdPort(c, s.listenerPort);
  // Started without the file: the listener comes from the state directory alone.
  const again = spawnEbb(c, ['--admin', '127.0.0.1:0', '--state-dir', s.stateDir, '--no-auth']);
  const code = await Promise.race([again.exited, after(15_000, 'still running')]);
  t.diagnostic(`exit ${String(code)}: ${again.stderr().trim()}`);
  assert.notEqual(code, 0);
  assert.notEqual(code, 'still running');
  assert.match(again.stderr(), new RegExp(`${s.listenerPort}.*EADDRINUSE`));
});
