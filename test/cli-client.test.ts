/**
 * The `ebb` client (src/cli) in process, against ebb's JSON API on 127.0.0.1 (the in-process harness:
 * a control plane, a real data plane, the admin handler and its SigV4 verifier), with a fake terminal
 * or a pipe for stdout. What runs through a real `ebb serve` is in test/integration/cli.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { editDistance, nearest, unknownCommand } from '../src/cli/commands.ts';
import { resolveConnection } from '../src/cli/connection.ts';
import { EXIT } from '../src/cli/exit-codes.ts';
import type { CliIo } from '../src/cli/output.ts';
import { runClient } from '../src/cli/run.ts';
import { KEY, oneGroup, REGION, startEbbApiHarness } from './integration/ebb-api-harness.ts';
import { Cleanup, freePort, get, startBackend } from './integration/harness.ts';

/** Collects what a command writes; a terminal when `tty` (with the cursor moves cli-progress and log-update use). */
class Screen extends Writable {
  text = '';
  readonly isTTY: boolean;
  readonly columns = 120;
  readonly rows = 40;

  constructor(tty: boolean) {
    super();
    this.isTTY = tty;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString('utf8');
    done();
  }

  cursorTo(_x: number, _y?: number): boolean {
    return true;
  }

  moveCursor(_dx: number, _dy: number): boolean {
    return true;
  }

  clearLine(_dir: number): boolean {
    return true;
  }

  clearScreenDown(): boolean {
    return true;
  }

  getWindowSize(): [number, number] {
    return [this.columns, this.rows];
  }
}

function io(env: NodeJS.ProcessEnv, o: { tty?: boolean; cwd?: string } = {}): CliIo & { stdout: Screen; stderr: Screen } {
  return { stdout: new Screen(o.tty === true), stderr: new Screen(false), env: { TERM: 'xterm', ...env }, cwd: o.cwd ?? tmpdir() };
}

const signedEnv = (endpoint: string): NodeJS.ProcessEnv => ({ EBB_ENDPOINT: endpoint, EBB_ACCESS_KEY_ID: KEY.accessKeyId, EBB_SECRET_ACCESS_KEY: KEY.secretAccessKey, AWS_REGION: REGION });

async function setUp(t: { after: (fn: () => Promise<void>) => void }) {
  const c = new Cleanup();
  t.after(() => c.run());
  const h = await startEbbApiHarness();
  c.add(() => h.close());
  const A = await startBackend('A', c);
  const B = await startBackend('B', c);
  const g = await oneGroup(h.control, 'web', [A.port, B.port], { 'deregistration_delay.timeout_seconds': '30' });
  return { c, h, A, B, ...g };
}

test('a typo gets the nearest command or option; far-off words get none', () => {
  assert.equal(editDistance('stauts', 'status'), 1, 'a swap of neighbours is one step');
  assert.equal(nearest('stauts', ['status', 'drains']), 'status');
  assert.equal(nearest('deregistr', ['register', 'deregister']), 'deregister');
  assert.equal(nearest('wait-drain', ['wait-drained', 'wait-not-routed']), 'wait-drained');
  assert.equal(nearest('frobnicate', ['status', 'drains', 'register']), undefined);
  assert.match(unknownCommand('dashbord'), /Did you mean 'ebb dashboard'\?/);
  assert.doesNotMatch(unknownCommand('xyzzy'), /Did you mean/);
});

test('credentials: EBB_* first, then the state directory file (with its region), then the AWS variables', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ebb-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, '.ebb'));
  await writeFile(join(dir, '.ebb', 'credentials'), '# made by ebb\n[ebb]\naws_access_key_id = EBBFROMFILE\naws_secret_access_key = s3cret\nregion = eu-west-1\n');
  const aws = { AWS_ACCESS_KEY_ID: 'AKIAREAL', AWS_SECRET_ACCESS_KEY: 'real', AWS_REGION: 'us-west-2' };

  const fromEnv = resolveConnection({ env: { ...aws, EBB_ACCESS_KEY_ID: 'EBBENV', EBB_SECRET_ACCESS_KEY: 'x' }, cwd: dir });
  assert.equal(fromEnv.credentials?.accessKeyId, 'EBBENV');
  assert.equal(fromEnv.region, 'us-west-2');

  // Real AWS keys exported do not win over ebb's own file.
  const fromFile = resolveConnection({ env: aws, cwd: dir });
  assert.equal(fromFile.credentials?.accessKeyId, 'EBBFROMFILE');
  assert.equal(fromFile.credentials?.source, join(dir, '.ebb', 'credentials'));
  assert.equal(fromFile.region, 'eu-west-1', "the file's region is ebb's");
  assert.equal(fromFile.endpoint.origin, 'http://127.0.0.1:9900');

  const fromAws = resolveConnection({ env: aws, cwd: tmpdir(), stateDir: join(dir, 'none') });
  assert.equal(fromAws.credentials?.accessKeyId, 'AKIAREAL');
  assert.equal(resolveConnection({ env: {}, cwd: join(dir, 'none') }).credentials, null);

  assert.equal(resolveConnection({ env: { EBB_ENDPOINT: '127.0.0.1:9911' }, cwd: dir }).endpoint.origin, 'http://127.0.0.1:9911');
  assert.throws(() => resolveConnection({ env: { EBB_ACCESS_KEY_ID: 'only-the-id' }, cwd: dir }), /EBB_ACCESS_KEY_ID is set but EBB_SECRET_ACCESS_KEY is not/);
  assert.throws(() => resolveConnection({ endpoint: 'ftp://x', env: {}, cwd: dir }), /must be an http:\/\/ or https:\/\/ URL/);
});

test('endpoint: --endpoint, then EBB_ENDPOINT, then the admin-endpoint file a running ebb serve writes in its state directory, then the default', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ebb-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  assert.equal(resolveConnection({ env: {}, cwd: dir }).endpointSource, 'the default');
  await mkdir(join(dir, '.ebb'));
  await writeFile(join(dir, '.ebb', 'admin-endpoint'), 'http://127.0.0.1:41234\n');
  const fromFile = resolveConnection({ env: {}, cwd: dir });
  assert.equal(fromFile.endpoint.origin, 'http://127.0.0.1:41234');
  assert.equal(fromFile.endpointSource, join(dir, '.ebb', 'admin-endpoint'));
  assert.equal(resolveConnection({ env: { EBB_ENDPOINT: '127.0.0.1:9911' }, cwd: dir }).endpoint.origin, 'http://127.0.0.1:9911');
  assert.equal(resolveConnection({ endpoint: 'http://127.0.0.1:9922', env: {}, cwd: dir }).endpoint.origin, 'http://127.0.0.1:9922');
});

test('status: tables on a terminal, aligned plain lines in a pipe, the API answer with --json', async (t) => {
  const { h, A } = await setUp(t);
  const pipe = io(signedEnv(h.endpoint));
  assert.equal(await runClient(['status'], pipe), EXIT.ok, pipe.stderr.text);
  assert.match(pipe.stdout.text, new RegExp(`^web +127\\.0\\.0\\.1:${A.port} +\\w+`, 'm'));
  assert.doesNotMatch(pipe.stdout.text, /[│┌─]/);

  const tty = io(signedEnv(h.endpoint), { tty: true });
  assert.equal(await runClient(['status'], tty), EXIT.ok, tty.stderr.text);
  assert.match(tty.stdout.text, /┌─/, 'a bordered table on a terminal');
  assert.match(tty.stdout.text, /Targets\n/);

  const json = io(signedEnv(h.endpoint));
  assert.equal(await runClient(['status', '--json'], json), EXIT.ok);
  const s = JSON.parse(json.stdout.text);
  assert.equal(s.region, REGION);
  assert.equal(s.targetGroups[0].targets.length, 2);
});

test('deregister --wait on a terminal draws a bar per drain with cli-progress and prints how each ended', async (t) => {
  const { h, A, B, listenerPort } = await setUp(t);
  // Round robin: one of the two gets this request; it runs 1.5 s.
  const slow = get(listenerPort, '/slow?ms=1500');
  await new Promise((r) => setTimeout(r, 200));
  const term = io(signedEnv(h.endpoint), { tty: true });
  const code = await runClient(['deregister', 'web', `127.0.0.1:${A.port}`, `127.0.0.1:${B.port}`, '--wait'], term);
  assert.equal((await slow).status, 200);
  assert.equal(code, EXIT.ok, term.stderr.text);
  assert.match(term.stdout.text, /[█░]{5,}/, 'bars drawn');
  assert.match(term.stdout.text, /1 in flight · 0 tunnels · [\d.]+ s left/);
  for (const p of [A.port, B.port]) assert.match(term.stdout.text, new RegExp(`drained web 127\\.0\\.0\\.1:${p}: ended idle after`));
});

test('deregister --timeout cuts at its own deadline: exit 1 and the record says what was cut; --json has each wait', async (t) => {
  const { h, A, B, listenerPort } = await setUp(t);
  // Only A stays routed, so the slow request is A's.
  const web = h.control.describeTargetGroups({ names: ['web'] })[0]?.arn ?? '';
  await h.control.deregisterTargets(web, [{ id: '127.0.0.1', port: B.port }]);
  const slow = get(listenerPort, '/slow?ms=5000').catch((e: unknown) => e);
  await new Promise((r) => setTimeout(r, 200));
  const out = io(signedEnv(h.endpoint));
  const code = await runClient(['deregister', 'web', `127.0.0.1:${A.port}`, '--timeout', '1', '--wait', '--json'], out);
  await slow;
  assert.equal(code, EXIT.drainCut, out.stderr.text);
  const answer = JSON.parse(out.stdout.text);
  assert.equal(answer.timeoutSeconds, 1);
  assert.equal(answer.waits[0].drain.outcome, 'deadline');
  assert.equal(answer.waits[0].drain.requestsCut, 1);
});

test('errors say which part is wrong: the credentials (with where they came from), the region, the request, an endpoint that is not ebb', async (t) => {
  const { c, h } = await setUp(t);
  const wrongKey = io({ ...signedEnv(h.endpoint), EBB_ACCESS_KEY_ID: 'AKIDNOTKNOWN00000000' });
  assert.equal(await runClient(['status'], wrongKey), EXIT.credentials);
  assert.match(wrongKey.stderr.text, /did not accept the credentials from EBB_ACCESS_KEY_ID \(access key AKIDNOTK…\).*InvalidClientTokenId/);

  const wrongSecret = io({ ...signedEnv(h.endpoint), EBB_SECRET_ACCESS_KEY: 'not-the-secret' });
  assert.equal(await runClient(['drains'], wrongSecret), EXIT.credentials);
  assert.match(wrongSecret.stderr.text, /SignatureDoesNotMatch/);

  const wrongRegion = io(signedEnv(h.endpoint));
  assert.equal(await runClient(['status', '--region', 'eu-central-1', '--json'], wrongRegion), EXIT.credentials);
  assert.match(wrongRegion.stderr.text, /this ebb's region is 'us-east-1'.*The region came from --region/);
  assert.equal(JSON.parse(wrongRegion.stdout.text).error.exitCode, EXIT.credentials);

  const unknownTarget = io(signedEnv(h.endpoint));
  assert.equal(await runClient(['deregister', 'web', '10.9.9.9:80'], unknownTarget), EXIT.refused);
  assert.match(unknownTarget.stderr.text, /Not registered in target group 'web': 10\.9\.9\.9:80.*InvalidTarget/);

  const badOption = io(signedEnv(h.endpoint));
  assert.equal(await runClient(['deregister', 'web', '10.0.0.1:80', '--timout', '5'], badOption), EXIT.usage);
  assert.match(badOption.stderr.text, /no option '--timout'\. Did you mean '--timeout'\?/);

  // Something else answers at the endpoint.
  const other = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>hello</html>'));
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
  c.add(() => new Promise<void>((r) => other.close(() => r())));
  const notEbb = io(signedEnv(`http://127.0.0.1:${(other.address() as AddressInfo).port}`));
  assert.equal(await runClient(['status'], notEbb), EXIT.unreachable);
  assert.match(notEbb.stderr.text, /\(from EBB_ENDPOINT\) is not ebb's admin endpoint: GET \/ebb\/v1\/status got HTTP 200 with text\/html/);

  const nobody = io(signedEnv(`http://127.0.0.1:${await freePort()}`));
  assert.equal(await runClient(['status'], nobody), EXIT.unreachable);
  assert.match(nobody.stderr.text, /connection refused/);
});

test('standby and unstandby say plainly when this ebb runs no Auto Scaling (exit 8)', async (t) => {
  const { h } = await setUp(t);
  const out = io(signedEnv(h.endpoint));
  assert.equal(await runClient(['standby', 'i-0123456789abcdef0'], out), EXIT.unavailable);
  assert.match(out.stderr.text, /Auto Scaling is not running in this ebb.*ebb deregister GROUP i-0123456789abcdef0:PORT --wait/);
});

test('standby --wait: the instance drains out of its target group into Standby; unstandby --wait brings it back InService', async (t) => {
  const h = await startEbbApiHarness({ autoScaling: true });
  t.after(() => h.close());
  const as = h.autoscaling;
  assert.ok(as !== null);
  const lt = await as.createLaunchTemplate({ name: 'app', data: { userData: Buffer.from('#!/bin/sh\nexec sleep 60\n').toString('base64') } });
  await as.createAutoScalingGroup({ name: 'g', launchTemplate: { id: lt.id }, minSize: 0, maxSize: 2, desiredCapacity: 1 });
  let instanceId = '';
  for (let n = 0; n < 50 && instanceId === ''; n++) {
    instanceId = as.describeAutoScalingInstances().find((i) => i.lifecycleState === 'InService')?.instanceId ?? '';
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.match(instanceId, /^i-/);
  const enter = io(signedEnv(h.endpoint));
  assert.equal(await runClient(['standby', instanceId, '--wait', '--timeout', '5'], enter), EXIT.ok, enter.stderr.text);
  assert.match(enter.stdout.text, new RegExp(`Moving EC2 instance to Standby: ${instanceId}`));
  assert.match(enter.stdout.text, new RegExp(`${instanceId} Standby\\n$`));
  assert.equal(as.describeAutoScalingGroups(['g'])[0]?.group.desiredCapacity, 0, 'the desired capacity was lowered');
  const back = io(signedEnv(h.endpoint));
  assert.equal(await runClient(['unstandby', instanceId, '--wait', '--timeout', '5', '--json'], back), EXIT.ok, back.stderr.text);
  const answer = JSON.parse(back.stdout.text);
  assert.equal(answer.action, 'ExitStandby');
  assert.equal(answer.autoScalingGroupName, 'g');
  assert.equal(answer.outcome, 'reached');
  assert.equal(answer.lifecycleState, 'InService');
  assert.equal(as.describeAutoScalingGroups(['g'])[0]?.group.desiredCapacity, 1);
  const unknown = io(signedEnv(h.endpoint));
  assert.equal(await runClient(['standby', 'i-0000000000000000f'], unknown), EXIT.refused);
  assert.match(unknown.stderr.text, /in no Auto Scaling group of this ebb/);
});

test('wait-not-routed: 0 once no data plane routes to the target, 5 when --timeout passes first', async (t) => {
  const { h, A, B } = await setUp(t);
  const routed = io(signedEnv(h.endpoint));
  assert.equal(await runClient(['wait-not-routed', 'web', `127.0.0.1:${B.port}`, '--timeout', '0.3'], routed), EXIT.timeout, routed.stderr.text);
  assert.match(routed.stdout.text, new RegExp(`^timeout web 127\\.0\\.0\\.1:${B.port}: still routed after`));

  const web = h.control.describeTargetGroups({ names: ['web'] })[0]?.arn ?? '';
  await h.control.deregisterTargets(web, [{ id: '127.0.0.1', port: A.port }]);
  const gone = io(signedEnv(h.endpoint));
  assert.equal(await runClient(['wait-not-routed', web, `127.0.0.1:${A.port}`, '--json'], gone), EXIT.ok, gone.stderr.text);
  const answer = JSON.parse(gone.stdout.text);
  assert.equal(answer.outcome, 'not-routed');
  assert.equal(answer.target.routed, false);
});

test('status --watch prints a block (or with --json a line) every interval until interrupted, then exits 0', async (t) => {
  const { h } = await setUp(t);
  const stop = new AbortController();
  const out = { ...io(signedEnv(h.endpoint)), signal: stop.signal };
  setTimeout(() => stop.abort(), 1300).unref();
  assert.equal(await runClient(['status', '--watch', '--interval', '0.5', '--json'], out), EXIT.ok, out.stderr.text);
  const lines = out.stdout.text.trim().split('\n');
  assert.ok(lines.length >= 2, `a line per interval: ${lines.length}`);
  for (const line of lines) assert.equal(JSON.parse(line).targetGroups[0].name, 'web');

  const usage = io(signedEnv(h.endpoint));
  assert.equal(await runClient(['status', '--interval', '2'], usage), EXIT.usage);
  assert.match(usage.stderr.text, /--interval goes with --watch/);
});
