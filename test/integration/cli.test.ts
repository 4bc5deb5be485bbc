/**
 * Issue 9, test 3 (and the client half of test 6): the `ebb` command-line client against a real
 * `ebb serve` process and real backends on 127.0.0.1.
 *
 * ebb starts with no admin credentials configured, so it makes a key pair in `<dir>/.ebb/credentials`;
 * every client command below runs in `<dir>` with no credentials in its environment (no EBB_* and no
 * AWS_* keys), so it signs with the file it finds in ./.ebb by itself. Only the admin address is given
 * (--endpoint), because the test's ebb listens on a free port rather than the default 9900.
 *
 * - `ebb status --json` is valid JSON in the documented shape (docs/cli.md: the answer of
 *   GET /ebb/v1/status, held to ebb's own OpenAPI document).
 * - `ebb deregister --wait` on a target with a request in flight that ends 3 s after its drain began
 *   prints progress while it drains and returns when the drain ends (about 3 s, not the 30 s delay),
 *   exit 0. The backend holds the request until the test releases it, 3 s after ebb logged the target
 *   draining, so the client's start-up time (a second or more on a busy machine) cannot eat the 3 s.
 * - `ebb dashboard` prints a one-time sign-in link on ebb's endpoint that starts a session once.
 * - `ebb check --config FILE` validates (exit 2 with the problems and their lines) and lists what applying
 *   the file to the running ebb's state would change, leaving the running ebb as it was.
 * - `ebb wait-drained` likewise, then at once (exit 0) once the target is gone; exit 4 for a target that
 *   is registered and not draining; a drain cut at its own deadline (`deregister --timeout 1 --wait`)
 *   exits 1, and so does `wait-drained` on it afterwards.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { check, responseSchema, type Schema } from './openapi-check.ts';
import { Cleanup, CLI, configYaml, freePort, get, REPO_ROOT, settle, spawnEbb, tempDir, writeConfig, type Settled, type Spawned } from './harness.ts';

const DELAY_S = 30;
const HOLD_MS = 3000;

/**
 * A target: `/health` and everything else answered at once, except `/hold` on a holding backend,
 * which is answered only when the test calls `release()` (each held request is counted).
 */
interface Target {
  readonly port: number;
  held: number;
  release(): void;
}

async function startTarget(c: Cleanup, holds: boolean): Promise<Target> {
  const waiting: http.ServerResponse[] = [];
  const target: Target = {
    port: 0,
    held: 0,
    release() {
      for (const res of waiting.splice(0)) res.end('released\n');
    },
  };
  const server = http.createServer((req, res) => {
    if (holds && req.url === '/hold') {
      target.held++;
      waiting.push(res);
      return;
    }
    res.end('ok\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  (target as { port: number }).port = (server.address() as AddressInfo).port;
  c.add(
    () =>
      new Promise<void>((r) => {
        target.release();
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return target;
}

/**
 * A `/hold` request through the listener that reached A (round robin: a try or two); `done` settles
 * when A releases it (wrapped, so awaiting this does not wait for the request itself).
 */
async function holdOnA(w: World): Promise<{ done: Promise<Settled> }> {
  for (let i = 0; i < 20; i++) {
    const before = w.A.held;
    const done = settle(get(w.listenerPort, '/hold', undefined, 60_000));
    const landed = await Promise.race([done.then(() => false), waitUntil(() => w.A.held > before, 2000)]);
    if (landed) return { done };
  }
  throw new Error('no /hold request reached A');
}

async function waitUntil(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return cond();
}

/** Resolves when ebb logs `target` (`HOST:PORT`) moving to draining, with the time it was seen. */
async function drainStarted(w: World, target: string, from: number): Promise<number> {
  const line = await w.serve.waitForLog((l) => l['event'] === 'target:state' && l['target'] === target && l['to'] === 'draining' && Date.parse(String(l['time'])) >= from, 30_000);
  assert.ok(line !== null, `ebb did not log ${target} draining`);
  return Date.now();
}

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Each stdout line with when it arrived. */
  readonly lines: ReadonlyArray<{ readonly text: string; readonly at: number }>;
  readonly startedAt: number;
  readonly endedAt: number;
}

/** The environment without any admin or AWS credentials, so the client must find the state directory's file. */
function bareEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(EBB_|AWS_)/.test(k)) continue;
    env[k] = v;
  }
  return env;
}

/** Runs `ebb ...args` as a process in `cwd`, as a person would type it there. */
function ebb(cwd: string, args: readonly string[]): Promise<Run> {
  return ebbRunning(cwd, args).result;
}

/** The same, with its stdout lines readable while it runs. */
function ebbRunning(cwd: string, args: readonly string[]): { lines: ReadonlyArray<{ text: string; at: number }>; result: Promise<Run> } {
  const startedAt = Date.now();
  // tsx by absolute URL: the client runs in the test's directory, where `--import tsx` would not resolve.
  const tsx = import.meta.resolve('tsx', `file://${REPO_ROOT}`);
  const child = spawn(process.execPath, ['--import', tsx, CLI, ...args], { cwd, env: bareEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Array<{ text: string; at: number }> = [];
  let stdout = '';
  let stderr = '';
  let partial = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    stdout += chunk;
    partial += chunk;
    for (let nl = partial.indexOf('\n'); nl >= 0; nl = partial.indexOf('\n')) {
      lines.push({ text: partial.slice(0, nl), at: Date.now() });
      partial = partial.slice(nl + 1);
    }
  });
  child.stderr.on('data', (chunk: string) => (stderr += chunk));
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const result = new Promise<Run>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code: code ?? (signal === null ? -1 : 128), stdout, stderr, lines, startedAt, endedAt: Date.now() });
    });
  });
  return { lines, result };
}

function shown(r: Run): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

interface World {
  readonly dir: string;
  readonly endpoint: string;
  readonly listenerPort: number;
  readonly serve: Spawned;
  readonly A: Target;
  readonly B: Target;
}

async function start(c: Cleanup): Promise<World> {
  const A = await startTarget(c, true);
  const B = await startTarget(c, false);
  const dir = await tempDir(c);
  const listenerPort = await freePort();
  const config = await writeConfig(dir, { listenerPort, targets: [A.port, B.port], delaySeconds: DELAY_S });
  // No credentials in its environment either: the first start makes them in <dir>/.ebb.
  const serve = spawnEbb(c, ['--config', config, '--admin', '127.0.0.1:0', '--state-dir', join(dir, '.ebb')]);
  const started = await serve.waitForLog((l) => l['event'] === 'ebb:started', 20_000);
  assert.ok(started !== null, `ebb did not start: ${serve.stderr()} ${serve.stdout().slice(-2000)}`);
  const made = await serve.waitForLog((l) => l['event'] === 'admin:credentials-made', 5000);
  assert.ok(made !== null, 'a first start without credentials should make them in the state directory');
  // The listener answers (health checks have passed or fail-open routes to both).
  for (let i = 0; i < 100 && (await settle(get(listenerPort, '/'))).reply?.status !== 200; i++) await new Promise((r) => setTimeout(r, 100));
  return { dir, endpoint: `http://${String(started['admin'])}`, listenerPort, serve, A, B };
}

/*
 * The tests that only read ebb's state (status, the client's errors, check, dashboard) share one ebb
 * and its targets: each start is a process of its own, a few seconds on a busy machine. The tests
 * that deregister a target start their own.
 */
const sharedCleanup = new Cleanup();
after(() => sharedCleanup.run());
let shared: Promise<World> | undefined;
function sharedWorld(): Promise<World> {
  shared ??= start(sharedCleanup);
  return shared;
}

/** `ebb status --json` read back. */
async function statusJson(w: World): Promise<any> {
  const r = await ebb(w.dir, ['status', '--json', '--endpoint', w.endpoint]);
  assert.equal(r.code, 0, shown(r));
  return JSON.parse(r.stdout);
}

test('ebb status --json is valid JSON in the documented shape, signed with the credentials ebb made, with no setup', async () => {
  const w = await sharedWorld();
  const s = await statusJson(w);
  const doc = (await (await fetch(`${w.endpoint}/ebb/v1/openapi.json`)).json()) as Schema;
  assert.deepEqual(check(doc, responseSchema(doc, 'GET', '/ebb/v1/status', 200), s), [], 'status --json is the answer of GET /ebb/v1/status');
  assert.deepEqual(s.loadBalancers.map((lb: any) => lb.name), ['web']);
  const [group] = s.targetGroups;
  assert.equal(group.name, 'web');
  assert.equal(group.deregistrationDelaySeconds, DELAY_S);
  assert.deepEqual(group.targets.map((x: any) => x.target).sort(), [`127.0.0.1:${w.A.port}`, `127.0.0.1:${w.B.port}`].sort());
  assert.deepEqual(s.drains, []);

  // Not a terminal: plain lines, one per target, that a script can grep.
  const text = await ebb(w.dir, ['status', '--endpoint', w.endpoint]);
  assert.equal(text.code, 0, shown(text));
  assert.match(text.stdout, new RegExp(`^web +127\\.0\\.0\\.1:${w.A.port} +\\S+`, 'm'));
  assert.doesNotMatch(text.stdout, /[│┌└─]/, 'no table borders when stdout is not a terminal');
});

test('ebb deregister --wait shows a request draining and returns when the drain ends, about 3 s, not at the delay', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const w = await start(c);
  const target = `127.0.0.1:${w.A.port}`;
  const held = await holdOnA(w);
  const from = Date.now();
  const running = ebb(w.dir, ['deregister', 'web', target, '--wait', '--endpoint', w.endpoint]);
  const drainAt = await drainStarted(w, target, from - 1000);
  await new Promise((r) => setTimeout(r, HOLD_MS));
  w.A.release();
  const done = await held.done;
  const r = await running;
  assert.equal(done.reply?.status, 200, 'the request in flight completes');
  assert.equal(r.code, 0, shown(r));
  const name = `web ${target}`;
  const progress = r.lines.filter((l) => l.text.startsWith(`draining ${name}: 1 request in flight, 0 tunnels, `));
  assert.ok(progress.length >= 1, `progress while draining:\n${shown(r)}`);
  assert.ok((progress[0]?.at ?? Infinity) < done.at, 'progress is printed while the request is still in flight');
  assert.match(r.lines.at(-1)?.text ?? '', new RegExp(`^drained ${name.replaceAll('.', '\\.')}: ended idle after [\\d.]+ s: 1 request completed, nothing cut$`));
  // It returns when the drain ends: right after the request ended, about 3 s into the drain, not at the 30 s delay.
  assert.ok(r.endedAt - done.at < 1500, `the client returned ${r.endedAt - done.at} ms after the request ended`);
  assert.ok(r.endedAt - drainAt < HOLD_MS + 2000, `the client returned ${r.endedAt - drainAt} ms into the drain`);

  const after = await statusJson(w);
  assert.deepEqual(after.targetGroups[0].targets.map((x: any) => x.target), [`127.0.0.1:${w.B.port}`]);
  assert.deepEqual(after.drains, []);
});

test('ebb wait-drained follows a drain to its end, answers at once when there is nothing to wait for, and exits by how it ended', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const w = await start(c);
  const target = `127.0.0.1:${w.A.port}`;

  // Registered and not draining: no drain to wait for.
  const notDraining = await ebb(w.dir, ['wait-drained', 'web', target, '--endpoint', w.endpoint]);
  assert.equal(notDraining.code, 4, shown(notDraining));
  assert.match(notDraining.stderr, /registered \(\w+\) and not draining.*ebb deregister web/);

  const held = await holdOnA(w);
  const dereg = await ebb(w.dir, ['deregister', 'web', target, '--endpoint', w.endpoint]);
  assert.equal(dereg.code, 0, shown(dereg));
  assert.match(dereg.stdout, new RegExp(`^deregistered web ${target.replaceAll('.', '\\.')} \\(delay ${DELAY_S} s\\): draining \\(Target\\.DeregistrationInProgress\\), 1 request in flight`, 'm'));

  // status --json shows the drain with its time left while it runs.
  const during = await statusJson(w);
  assert.equal(during.drains.length, 1);
  assert.equal(during.drains[0].target, target);
  assert.equal(during.drains[0].requestsInFlight, 1);
  assert.ok(during.drains[0].timeLeftMs > (DELAY_S - 10) * 1000, `time left ${during.drains[0].timeLeftMs} ms`);

  // Released 3 s after wait-drained has said where the drain is.
  const waiting = ebbRunning(w.dir, ['wait-drained', 'web', target, '--endpoint', w.endpoint]);
  assert.ok(await waitUntil(() => waiting.lines.length > 0, 20_000), 'wait-drained prints where the drain is');
  await new Promise((r) => setTimeout(r, HOLD_MS));
  w.A.release();
  const done = await held.done;
  const waited = await waiting.result;
  assert.equal(done.reply?.status, 200);
  assert.equal(waited.code, 0, shown(waited));
  assert.ok(waited.lines.some((l) => l.text.startsWith(`draining web ${target}: 1 request in flight`) && l.at < done.at), `progress while draining:\n${shown(waited)}`);
  assert.match(waited.lines.at(-1)?.text ?? '', new RegExp(`^drained web ${target.replaceAll('.', '\\.')}: ended idle after`));
  assert.ok(waited.endedAt - done.at < 1500, `wait-drained returned ${waited.endedAt - done.at} ms after the request ended`);
  assert.ok(waited.endedAt - waited.startedAt > HOLD_MS, 'wait-drained waited for the drain');

  // Not registered any more: at once, 0, from the record of its last drain (idle).
  const again = await ebb(w.dir, ['wait-drained', 'web', target, '--json', '--endpoint', w.endpoint]);
  assert.equal(again.code, 0, shown(again));
  const answer = JSON.parse(again.stdout);
  assert.equal(answer.outcome, 'drained');
  assert.equal(answer.drain.outcome, 'idle');
  assert.equal(answer.target.reason, 'Target.NotRegistered');

  // A drain cut at its own deadline: register A again, then deregister it with a 1 s delay while a 3 s request runs.
  const reg = await ebb(w.dir, ['register', 'web', target, '--endpoint', w.endpoint]);
  assert.equal(reg.code, 0, shown(reg));
  assert.match(reg.stdout, new RegExp(`^registered web ${target.replaceAll('.', '\\.')}: `, 'm'));
  // A is routed again once its health checks pass (5 s apart, two in a row): waited for in ebb's
  // log rather than by running the client every half second, then read back through the client.
  const healthy = await w.serve.waitForLog((l) => l['event'] === 'target:state' && l['target'] === target && l['to'] === 'healthy' && Date.parse(String(l['time'])) >= reg.startedAt - 1000, 30_000);
  assert.ok(healthy !== null, 'ebb did not log A healthy again after registering');
  let routed = false;
  for (let i = 0; i < 10 && !routed; i++) {
    const s = await statusJson(w);
    routed = s.targetGroups[0].targets.some((x: any) => x.target === target && x.routed);
    if (!routed) await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(routed, 'A is routed again after registering');
  const cutHeld = await holdOnA(w);
  const cut = await ebb(w.dir, ['deregister', 'web', target, '--timeout', '1', '--wait', '--endpoint', w.endpoint]);
  assert.equal(cut.code, 1, shown(cut));
  assert.match(cut.lines.at(-1)?.text ?? '', new RegExp(`^deadline web ${target.replaceAll('.', '\\.')}: ended at its deadline after [\\d.]+ m?s: 1 request cut`));
  await cutHeld.done;
  const afterCut = await ebb(w.dir, ['wait-drained', 'web', target, '--endpoint', w.endpoint]);
  assert.equal(afterCut.code, 1, shown(afterCut));

  // The records, newest first.
  const records = await ebb(w.dir, ['drains', '--json', '--endpoint', w.endpoint]);
  assert.equal(records.code, 0, shown(records));
  assert.deepEqual(JSON.parse(records.stdout).records.map((r: any) => r.outcome), ['deadline', 'idle']);
});

test('the client says what is wrong: a typo, an endpoint where nothing listens, credentials ebb does not know', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const w = await sharedWorld();
  const typo = await ebb(w.dir, ['stauts']);
  assert.equal(typo.code, 2, shown(typo));
  assert.match(typo.stderr, /Unknown command 'stauts'\. Did you mean 'ebb status'\?/);

  const nobody = await ebb(w.dir, ['status', '--endpoint', `http://127.0.0.1:${await freePort()}`]);
  assert.equal(nobody.code, 6, shown(nobody));
  assert.match(nobody.stderr, /Cannot reach ebb at http:\/\/127\.0\.0\.1:\d+ \(from --endpoint\): connection refused/);

  // Another directory has no .ebb: no credentials found, and the message says where it looked.
  const elsewhere = await tempDir(c);
  const none = await ebb(elsewhere, ['status', '--endpoint', w.endpoint]);
  assert.equal(none.code, 7, shown(none));
  assert.match(none.stderr, /needs signed requests, and no credentials were found \(looked in EBB_ACCESS_KEY_ID/);

  const unknown = await ebb(w.dir, ['drains', '--group', 'nope', '--endpoint', w.endpoint]);
  assert.equal(unknown.code, 3, shown(unknown));
  assert.match(unknown.stderr, /Target group 'nope' not found.*TargetGroupNotFound/);
});

test('ebb check validates a file as nginx -t does and says what applying it to the running ebb would change, changing nothing', async () => {
  const w = await sharedWorld();
  const stateDir = join(w.dir, '.ebb');
  const same = await ebb(w.dir, ['check', '--config', 'ebb.yaml']);
  assert.equal(same.code, 0, shown(same));
  assert.match(same.stdout, /ebb\.yaml: the configuration is valid\nApplied to .*: nothing would change\.\n/);

  // The file now says a 45 s delay and drops B: a reload would set the one and deregister the other.
  const changed = configYaml({ listenerPort: w.listenerPort, targets: [w.A.port], delaySeconds: 45 });
  await writeFile(join(w.dir, 'next.yaml'), changed);
  const plan = await ebb(w.dir, ['check', '--config', 'next.yaml', '--json']);
  assert.equal(plan.code, 0, shown(plan));
  const report = JSON.parse(plan.stdout);
  assert.equal(report.valid, true);
  assert.equal(report.stateDir, stateDir);
  assert.deepEqual(report.changes, ['target group web: set deregistration_delay.timeout_seconds to 45', `deregistered 127.0.0.1:${w.B.port} from target group web`]);
  // Nothing changed in the running ebb.
  const s = await statusJson(w);
  assert.equal(s.targetGroups[0].deregistrationDelaySeconds, DELAY_S);
  assert.equal(s.targetGroups[0].targets.length, 2);

  await writeFile(join(w.dir, 'bad.yaml'), 'targetGroups:\n  - name: web\n    port: 99999\n');
  const bad = await ebb(w.dir, ['check', '--config', 'bad.yaml']);
  assert.equal(bad.code, 2, shown(bad));
  assert.match(bad.stdout, /bad\.yaml:3:11: targetGroups\[0\]\.port: .*99999/);
  assert.match(bad.stdout, /bad\.yaml: test failed\n$/);
});

test('ebb dashboard prints a one-time sign-in link that signs in once', async () => {
  const w = await sharedWorld();
  const r = await ebb(w.dir, ['dashboard', '--endpoint', w.endpoint]);
  assert.equal(r.code, 0, shown(r));
  const url = /(http:\/\/\S+\/dashboard\/sign-in\?token=\S+)/.exec(r.stdout)?.[1];
  assert.ok(url !== undefined && url.startsWith(`${w.endpoint}/`), `a link on ebb's endpoint:\n${r.stdout}`);
  const first = await fetch(url, { redirect: 'manual' });
  assert.equal(first.status, 200);
  assert.match(first.headers.get('set-cookie') ?? '', /HttpOnly/i, 'the link starts a session');
  assert.equal((await fetch(url, { redirect: 'manual' })).status, 401, 'a link works once');
});
