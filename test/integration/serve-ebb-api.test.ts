/**
 * ebb's own API as `startEbb` mounts it on the admin endpoint: the recommended delay fed by the real data
 * plane's requests, config reloads on the event stream (applied and refused), and streams ended with a
 * last event when ebb stops.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { test } from 'node:test';
import { openEvents } from './ebb-api-harness.ts';
import { Cleanup, configYaml, get, startBackend, startInProcess } from './harness.ts';

function getJson(endpoint: string, path: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, endpoint), { agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (ch: string) => (text += ch));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('ebb serve mounts /ebb/v1/: the delay recommendation follows real traffic; reloads and the stop are on the event stream', { timeout: 60_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startBackend('A', c);
  const e = await startInProcess(c, { backends: [A], delaySeconds: 10, healthCheck: false });
  const endpoint = `http://${e.ebb.admin.host}:${e.ebb.admin.port}`;
  assert.equal(e.ebb.credentialsFile, null, 'authentication is off: no credentials are made');

  for (let i = 0; i < 3; i++) assert.equal((await get(e.listenerPort, '/slow?ms=30')).status, 200);
  const rec = await getJson(endpoint, '/ebb/v1/recommended-delay?targetGroup=web');
  assert.equal(rec.status, 200);
  assert.equal(rec.body.targetGroups[0].sampleSize, 3);
  assert.ok(rec.body.targetGroups[0].p99TargetResponseMs >= 30);
  assert.equal(rec.body.targetGroups[0].recommendedDelaySeconds, 1);
  assert.equal(rec.body.targetGroups[0].configuredDelaySeconds, 10);

  const s = await openEvents(endpoint, '/ebb/v1/events', {});
  await s.next((ev) => ev.event === 'stream:ready');
  await writeFile(e.configPath, configYaml({ listenerPort: e.listenerPort, targets: [A.port], delaySeconds: 20, healthCheck: false }));
  await e.ebb.reload();
  const applied = await s.next((ev) => ev.event === 'config:reload');
  assert.equal(applied.data.outcome, 'applied');
  assert.equal(applied.data.file, e.configPath);
  assert.ok(
    (applied.data.applied as string[]).some((line) => line.includes('deregistration_delay.timeout_seconds')),
    JSON.stringify(applied.data.applied),
  );
  assert.equal(applied.data.error, null);
  assert.equal((await getJson(endpoint, '/ebb/v1/status')).body.targetGroups[0].deregistrationDelaySeconds, 20);

  await writeFile(e.configPath, 'targetGroups: [ {');
  await e.ebb.reload();
  const refused = await s.next((ev) => ev.event === 'config:reload' && ev.data.outcome === 'refused');
  assert.match(refused.data.error, /ConfigInvalid/);

  await e.ebb.shutdown();
  await s.ended;
  assert.equal(s.events.at(-1)?.event, 'stream:closing');
});
