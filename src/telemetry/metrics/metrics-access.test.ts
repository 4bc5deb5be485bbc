import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { EbbError } from '../../shared/errors.ts';
import { checkMetricsAccess, readBearerTokenFile, type MetricsAccess } from './metrics-access.ts';

const TOKEN: MetricsAccess = { kind: 'token', token: 's3cr3t-token' };

test('the right bearer token is let in; the scheme is case-insensitive', () => {
  assert.equal(checkMetricsAccess(TOKEN, 'Bearer s3cr3t-token'), null);
  assert.equal(checkMetricsAccess(TOKEN, 'bearer s3cr3t-token'), null);
  assert.equal(checkMetricsAccess(TOKEN, 'BEARER  s3cr3t-token '), null);
});

test('no header, another scheme, or a wrong token: 401 MetricsUnauthorized with a Bearer challenge', () => {
  for (const header of [undefined, '', 'Basic czNjcjN0LXRva2Vu', 'Bearer', 'Bearer s3cr3t-token extra', 'AWS4-HMAC-SHA256 Credential=x']) {
    const r = checkMetricsAccess(TOKEN, header);
    assert.ok(r !== null, String(header));
    assert.equal(r.error.code, 'MetricsUnauthorized');
    assert.equal(r.error.status, 401);
    assert.equal(r.challenge, 'Bearer realm="ebb metrics"');
    assert.match(r.error.message, /admin\.metrics\.bearerTokenFile/);
  }
  for (const wrong of ['s3cr3t-tokem', 's3cr3t-token-longer', 's', 'S3CR3T-TOKEN']) {
    const r = checkMetricsAccess(TOKEN, `Bearer ${wrong}`);
    assert.equal(r?.error.code, 'MetricsUnauthorized', wrong);
    assert.equal(r.challenge, 'Bearer realm="ebb metrics", error="invalid_token"');
    assert.ok(!r.error.message.includes('s3cr3t'), 'the message never repeats the token');
  }
});

test('public lets everyone in, whatever they send', () => {
  assert.equal(checkMetricsAccess({ kind: 'public' }, undefined), null);
  assert.equal(checkMetricsAccess({ kind: 'public' }, 'Bearer anything'), null);
});

test('closed: 403 MetricsNotEnabled naming both ways to open it', () => {
  const r = checkMetricsAccess({ kind: 'closed' }, 'Bearer anything');
  assert.equal(r?.error.code, 'MetricsNotEnabled');
  assert.equal(r.error.status, 403);
  assert.equal(r.challenge, null);
  assert.match(r.error.message, /admin\.metrics\.bearerTokenFile/);
  assert.match(r.error.message, /admin\.metrics\.public: true/);
});

test('the token file: trimmed as Prometheus trims it; empty or missing refuses the start (ConfigInvalid)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ebb-metrics-token-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'token'), '  s3cr3t-token\n');
  assert.equal(await readBearerTokenFile(join(dir, 'token')), 's3cr3t-token');
  await writeFile(join(dir, 'empty'), '\n\n');
  await assert.rejects(readBearerTokenFile(join(dir, 'empty')), (e: unknown) => EbbError.is(e) && e.code === 'ConfigInvalid' && /is empty/.test(e.message));
  await assert.rejects(
    readBearerTokenFile(join(dir, 'missing')),
    (e: unknown) => EbbError.is(e) && e.code === 'ConfigInvalid' && /admin\.metrics\.bearerTokenFile: cannot read .*missing: no such file/.test(e.message),
  );
  await assert.rejects(readBearerTokenFile(dir), (e: unknown) => EbbError.is(e) && /it is a directory/.test(e.message));
});
