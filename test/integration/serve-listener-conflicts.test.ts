/**
 * Ports that cannot open: a reload that moves a listener to a port in use is refused before anything
 * changes (the running listener keeps serving, attributes keep their values); a start whose admin
 * port, listener port or stored listener's port is taken fails with a clear error naming the address
 * instead of running without it, and leaves the state directory as it was.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { CreateListenerCommand, CreateLoadBalancerCommand, DescribeTargetGroupsCommand } from '@aws-sdk/client-elastic-load-balancing-v2';
import { openSqlite } from '../../src/store/sqlite-driver.ts';
import { DB_FILE } from '../../src/store/sqlite-state-store.ts';
import {
  after,
  Cleanup,
  configYaml,
  connectionRefused,
  freePort,
  get,
  serveConfig,
  spawnEbb,
  type Spawned,
  startBackend,
  tempDir,
  writeFileAtomic,
} from './harness.ts';
import { sdkClient } from './process-harness.ts';

function holdPort(cleanup: Cleanup, port: number, host = '127.0.0.1'): Promise<Server> {
  const server = createServer();
  cleanup.add(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
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

/** Every record in a state directory's database, as text (read after ebb has exited). */
function records(stateDir: string): string[] {
  const db = openSqlite(join(stateDir, DB_FILE));
  try {
    return db.prepare('SELECT kind, key, value FROM records ORDER BY kind, key').all().map((r) => JSON.stringify(r));
  } finally {
    db.close();
  }
}

/** Waits for a refused start; returns its stderr. */
async function refused(t: TestContext, ebb: Spawned): Promise<string> {
  const code = await Promise.race([ebb.exited, after(15_000, 'still running')]);
  t.diagnostic(`exit ${String(code)}: ${ebb.stderr().trim()}`);
  assert.notEqual(code, 'still running');
  assert.notEqual(code, 0);
  assert.equal(ebb.logs.some((l) => l['event'] === 'ebb:started'), false);
  return ebb.stderr();
}

test('the admin port taken at start: ebb refuses, names the address, and creates no state directory', { timeout: 30_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const dir = await tempDir(c);
  const adminPort = await freePort();
  await holdPort(c, adminPort);
  const listenerPort = await freePort();
  const configPath = join(dir, 'ebb.yaml');
  await writeFileAtomic(configPath, configYaml({ listenerPort, targets: [3001] }));
  const stateDir = join(dir, 'state');
  const ebb = spawnEbb(c, ['--config', configPath, '--admin', `127.0.0.1:${adminPort}`, '--state-dir', stateDir, '--no-auth']);
  const stderr = await refused(t, ebb);
  assert.match(stderr, new RegExp(`admin API .*127\\.0\\.0\\.1:${adminPort}.*EADDRINUSE`));
  assert.equal(existsSync(stateDir), false, 'the state directory was not even created');
  assert.equal(await connectionRefused(listenerPort), true, 'the listener is not open');
});

test('the admin port taken at restart with a changed file: the stored state is left as it was', { timeout: 30_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startBackend('A', c);
  const B = await startBackend('B', c);
  const s = await serveConfig(c, { targets: [A.port], delaySeconds: 10 });
  s.ebb.child.kill('SIGTERM');
  assert.equal(await s.ebb.exited, 0);
  const before = records(s.stateDir);
  assert.ok(before.some((r) => r.includes(`"${A.port}"`) || r.includes(`:${A.port}`)), 'the first start stored its target');

  const adminPort = await freePort();
  await holdPort(c, adminPort);
  await writeFileAtomic(s.configPath, configYaml({ listenerPort: s.listenerPort, targets: [A.port, B.port], delaySeconds: 7 }));
  const again = spawnEbb(c, ['--config', s.configPath, '--admin', `127.0.0.1:${adminPort}`, '--state-dir', s.stateDir, '--no-auth']);
  assert.match(await refused(t, again), new RegExp(`127\\.0\\.0\\.1:${adminPort} \\(EADDRINUSE\\)`));
  assert.deepEqual(records(s.stateDir), before, 'neither the new target nor the new delay was stored');
});

test('a listener made through the API whose port is taken at restart with a changed file: refused before the file is applied', { timeout: 30_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startBackend('A', c);
  const B = await startBackend('B', c);
  const s = await serveConfig(c, { targets: [A.port], delaySeconds: 10 });
  const started = s.ebb.logs.find((l) => l['event'] === 'ebb:started');
  const client = sdkClient(`http://${String(started?.['admin'])}`);
  c.add(() => client.destroy());
  const lb = await client.send(new CreateLoadBalancerCommand({ Name: 'from-api', Subnets: ['subnet-1'] }));
  const tg = await client.send(new DescribeTargetGroupsCommand({ Names: ['web'] }));
  const apiPort = await freePort();
  await client.send(
    new CreateListenerCommand({
      LoadBalancerArn: lb.LoadBalancers?.[0]?.LoadBalancerArn,
      Protocol: 'HTTP',
      Port: apiPort,
      DefaultActions: [{ Type: 'forward', TargetGroupArn: tg.TargetGroups?.[0]?.TargetGroupArn }],
    }),
  );
  s.ebb.child.kill('SIGTERM');
  assert.equal(await s.ebb.exited, 0);
  const before = records(s.stateDir);

  await holdPort(c, apiPort, '0.0.0.0');
  await writeFileAtomic(s.configPath, configYaml({ listenerPort: s.listenerPort, targets: [A.port, B.port], delaySeconds: 7 }));
  const again = spawnEbb(c, ['--config', s.configPath, '--admin', '127.0.0.1:0', '--state-dir', s.stateDir, '--no-auth']);
  assert.match(await refused(t, again), new RegExp(`listener arn:aws:elasticloadbalancing:\\S+ .*0\\.0\\.0\\.0:${apiPort}.*EADDRINUSE`, 'i'));
  assert.deepEqual(records(s.stateDir), before, 'the changed file was not applied');
});
