/**
 * Issue 9, test 6: a first start without credentials makes them once, not again at the next start, and
 * clients work with no setup: the line ebb prints is run as printed (the aws CLI with the state
 * directory's credentials file, its [ebb] profile's region, and AWS_ENDPOINT_URL), and a request signed
 * with the keys read from `<state-dir>/credentials` (as the ebb CLI reads them) is let in.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, stat, writeFile, mkdir } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseCredentialsFile } from '../../src/shared/credentials-file.ts';
import { missingClient } from './api-harness.ts';
import { sign } from './ebb-api-harness.ts';
import { Cleanup, spawnEbb, tempDir, type Spawned } from './harness.ts';

/** `ebb serve` on a free admin port with no credentials configured; resolves once started. */
async function serve(c: Cleanup, stateDir: string, extra: readonly string[] = [], env?: NodeJS.ProcessEnv): Promise<{ ebb: Spawned; endpoint: string }> {
  const ebb = spawnEbb(c, ['--admin', '127.0.0.1:0', '--state-dir', stateDir, ...extra], env);
  const started = await ebb.waitForLog((l) => l['event'] === 'ebb:started', 20_000);
  assert.ok(started !== null, `ebb did not start: ${ebb.stderr()} ${ebb.stdout().slice(-2000)}`);
  return { ebb, endpoint: `http://${String(started['admin'])}` };
}

async function stop(ebb: Spawned): Promise<void> {
  ebb.child.kill('SIGTERM');
  // 0 after a graceful stop; a signal that arrives before `ebb serve` has set its handlers ends it as the signal.
  assert.ok([0, 'SIGTERM'].includes(await ebb.exited));
}

/** Runs a printed `K=V … command args` line (no shell), with only PATH and HOME besides. */
function runPrinted(line: string, extra: readonly string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  const words = line.split(' ');
  const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'], HOME: process.env['HOME'], AWS_CONFIG_FILE: '/dev/null', AWS_EC2_METADATA_DISABLED: 'true', AWS_PAGER: '' };
  for (const k of ['PYENV_ROOT', 'PYENV_VERSION']) if (process.env[k] !== undefined) env[k] = process.env[k];
  while (/^[A-Z_]+=/.test(words[0] ?? '')) {
    const w = words.shift() ?? '';
    env[w.slice(0, w.indexOf('='))] = w.slice(w.indexOf('=') + 1);
  }
  const [cmd = '', ...args] = words;
  return new Promise((resolve) => {
    execFile(cmd, [...args, ...extra], { env, timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }),
    );
  });
}

/** GET /ebb/v1/status signed with `key`. */
async function status(endpoint: string, key: { accessKeyId: string; secretAccessKey: string }, region: string): Promise<{ status: number; body: any }> {
  const headers = await sign(endpoint, 'GET', '/ebb/v1/status', '', {}, key, region);
  return new Promise((resolve, reject) => {
    const url = new URL('/ebb/v1/status', endpoint);
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (ch: string) => (text += ch));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('a first start without credentials makes them once, prints how to use them, and clients work with no setup', { timeout: 120_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const dir = await tempDir(c);
  const stateDir = join(dir, 'state');
  const awsMissing = missingClient('aws');

  const first = await serve(c, stateDir);
  const made = await first.ebb.waitForLog((l) => l['event'] === 'admin:credentials-made', 5000);
  assert.ok(made !== null, 'the first start says it made credentials');
  const file = join(stateDir, 'credentials');
  assert.equal(made['file'], file);
  const use = String(made['use']);
  assert.equal(use, `AWS_SHARED_CREDENTIALS_FILE=${file} AWS_PROFILE=ebb AWS_ENDPOINT_URL=${first.endpoint} aws elbv2 describe-target-groups`);
  assert.match(String(made['message']), /made a key pair/);

  assert.equal((await stat(file)).mode & 0o777, 0o600, 'the file is private');
  const text = await readFile(file, 'utf8');
  const creds = parseCredentialsFile(text);
  assert.ok(creds !== null, text);
  assert.match(creds.accessKeyId, /^EBB[A-Z2-7]{17}$/);
  assert.equal(creds.secretAccessKey.length, 40);
  assert.equal(creds.region, 'us-east-1');

  // What the ebb CLI does: read the state directory's file and sign with it.
  assert.equal((await status(first.endpoint, creds, 'us-east-1')).status, 200);
  const wrong = await status(first.endpoint, { accessKeyId: creds.accessKeyId, secretAccessKey: 'not-it' }, 'us-east-1');
  assert.equal(wrong.body.code, 'SignatureDoesNotMatch');

  if (awsMissing === null) {
    const created = await runPrinted(use.replace('describe-target-groups', 'create-target-group'), ['--name', 'web', '--protocol', 'HTTP', '--port', '80', '--target-type', 'ip', '--output', 'json']);
    assert.equal(created.code, 0, created.stderr);
    const described = await runPrinted(use, ['--output', 'json']);
    assert.equal(described.code, 0, described.stderr);
    assert.deepEqual(
      (JSON.parse(described.stdout) as { TargetGroups: Array<{ TargetGroupName: string }> }).TargetGroups.map((g) => g.TargetGroupName),
      ['web'],
    );
  } else {
    t.diagnostic(`the printed aws command is not run: ${awsMissing}`);
  }
  await stop(first.ebb);

  // The next start uses the same pair: nothing is made again, the file is untouched.
  const mtime = (await stat(file)).mtimeMs;
  const second = await serve(c, stateDir);
  const kept = await second.ebb.waitForLog((l) => l['event'] === 'admin:credentials', 5000);
  assert.ok(kept !== null, 'the second start says which credentials it uses');
  assert.equal(second.ebb.logs.some((l) => l['event'] === 'admin:credentials-made'), false, 'nothing is made again');
  assert.equal(await readFile(file, 'utf8'), text);
  assert.equal((await stat(file)).mtimeMs, mtime);
  assert.equal((await status(second.endpoint, creds, 'us-east-1')).status, 200);
  if (awsMissing === null) {
    const again = await runPrinted(String(kept['use']), ['--output', 'json']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as { TargetGroups: unknown[] }).TargetGroups.length, 1, 'the group made through the first start is there');
  }
  await stop(second.ebb);
  assert.deepEqual(
    [...first.ebb.logs, ...second.ebb.logs].filter((l) => l['level'] === 'error'),
    [],
  );
});

test('configured credentials, or --no-auth, make no file; a file without a key pair refuses the start and says what to do', { timeout: 60_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const dir = await tempDir(c);

  const configured = join(dir, 'configured');
  const withEnv = await serve(c, configured, [], { EBB_ACCESS_KEY_ID: 'AKIDCONFIGURED000001', EBB_SECRET_ACCESS_KEY: 'configured-secret' });
  assert.equal((await status(withEnv.endpoint, { accessKeyId: 'AKIDCONFIGURED000001', secretAccessKey: 'configured-secret' }, 'us-east-1')).status, 200);
  await stop(withEnv.ebb);
  await assert.rejects(stat(join(configured, 'credentials')), /ENOENT/);

  const open = join(dir, 'open');
  const noAuth = await serve(c, open, ['--no-auth']);
  await stop(noAuth.ebb);
  await assert.rejects(stat(join(open, 'credentials')), /ENOENT/);

  const broken = join(dir, 'broken');
  await mkdir(broken, { recursive: true });
  await writeFile(join(broken, 'credentials'), '[default]\naws_access_key_id = X\n', { mode: 0o600 });
  const refused = spawnEbb(c, ['--admin', '127.0.0.1:0', '--state-dir', broken]);
  assert.equal(await refused.exited, 2);
  assert.match(refused.stderr(), /ConfigInvalid: .*credentials has no \[ebb\] profile .* delete it to have ebb make a new pair/);
});
