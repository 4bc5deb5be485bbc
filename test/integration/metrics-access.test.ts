/**
 * Who may read /metrics, as `ebb serve` wires it: the bearer token file (read at start; a missing one
 * refuses the start and writes nothing), `public: true`, authentication off, or nobody (403 saying how
 * to open it). The token checks themselves are unit-tested (src/telemetry/metrics/metrics-access.test.ts).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { startEbb, type Ebb } from '../../src/main/ebb.ts';
import { EbbError } from '../../src/shared/errors.ts';
import { Cleanup, tempDir } from './harness.ts';
import { Scrape } from './metrics-scrape.ts';

const ENV = { EBB_ACCESS_KEY_ID: 'AKIDMETRICSACCESS', EBB_SECRET_ACCESS_KEY: 'metrics-access-secret' };

async function start(c: Cleanup, admin: string, authentication?: boolean): Promise<{ ebb: Ebb; dir: string }> {
  const dir = await tempDir(c);
  await writeFile(join(dir, 'ebb.yaml'), admin === '' ? '' : `admin:\n${admin}`);
  const ebb = await startEbb({
    configPath: join(dir, 'ebb.yaml'),
    stateDir: join(dir, 'state'),
    adminAddress: '127.0.0.1:0',
    env: ENV,
    log: () => undefined,
    ...(authentication === undefined ? {} : { authentication }),
  });
  c.add(() => ebb.shutdown());
  return { ebb, dir };
}

function metrics(ebb: Ebb, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`http://127.0.0.1:${ebb.admin.port}/metrics`, { headers });
}

test('nothing configured: 403 MetricsNotEnabled naming both ways to open it', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const { ebb } = await start(c, '');
  const res = await metrics(ebb, { authorization: 'Bearer anything' });
  assert.equal(res.status, 403);
  const body = await res.text();
  assert.match(body, /^MetricsNotEnabled: /);
  assert.match(body, /admin\.metrics\.bearerTokenFile/);
  assert.match(body, /admin\.metrics\.public: true/);
});

test('public: true serves the metrics without a token; so does an admin API without authentication', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  for (const { ebb } of [await start(c, '  metrics:\n    public: true\n'), await start(c, '', false)]) {
    const res = await metrics(ebb);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const s = new Scrape(await res.text());
    assert.equal(s.type('ebb_request_count'), 'COUNTER');
    assert.equal(s.value('ebb_config_reloads_total', { result: 'applied' }), 0);
  }
});

test("a token file, relative to the config file: its token (trimmed) lets Prometheus in, SigV4 does not", async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const dir = await tempDir(c);
  await writeFile(join(dir, 'token'), 'tok-123\n');
  await writeFile(join(dir, 'ebb.yaml'), 'admin:\n  metrics:\n    bearerTokenFile: token\n');
  const ebb = await startEbb({ configPath: join(dir, 'ebb.yaml'), stateDir: join(dir, 'state'), adminAddress: '127.0.0.1:0', env: ENV, log: () => undefined });
  c.add(() => ebb.shutdown());
  assert.equal((await metrics(ebb, { authorization: 'Bearer tok-123' })).status, 200);
  const signed = await metrics(ebb, { authorization: `AWS4-HMAC-SHA256 Credential=${ENV.EBB_ACCESS_KEY_ID}/20260101/us-east-1/elasticloadbalancing/aws4_request` });
  assert.equal(signed.status, 401);
  assert.equal((await metrics(ebb, { authorization: 'Bearer tok-1234' })).status, 401);
});

test('a token file that is missing refuses the start (ConfigInvalid) before the state directory is written', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const dir = await tempDir(c);
  await writeFile(join(dir, 'ebb.yaml'), 'admin:\n  metrics:\n    bearerTokenFile: no-such-token\n');
  await assert.rejects(
    startEbb({ configPath: join(dir, 'ebb.yaml'), stateDir: join(dir, 'state'), adminAddress: '127.0.0.1:0', env: ENV, log: () => undefined }),
    (e: unknown) => EbbError.is(e) && e.code === 'ConfigInvalid' && e.message.includes(join(dir, 'no-such-token')),
  );
  assert.equal(existsSync(join(dir, 'state')), false);
});
