/**
 * The running ebb's side of a hot restart (`Restart`, predecessor.ts) against a real child process that
 * speaks the successor's side by hand (successor.test-child.ts), one way of failing per mode. The
 * step timeouts run on a FakeClock; everything else is real: the process, its IPC channel, the admin
 * socket handed to it.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { test, type TestContext } from 'node:test';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { Cleanup } from '../../test/support/cleanup.ts';
import type { HandOver } from '../control/hand-over.ts';
import { HttpDataPlane } from '../dataplane/http-data-plane.ts';
import { Restart, type RestartOutcome, type RetiringEbb } from './predecessor.ts';

const CHILD = new URL('./successor.test-child.ts', import.meta.url).pathname;
const STEP_MS = 5_000;

const HANDED_OVER: HandOver = {
  drains: [{ key: 'tg|10.0.0.1|80', completedAtStart: [['dp-old', 3]] }],
  health: [{ key: 'tg|10.0.0.1|80', health: 'healthy', failure: null, healthyForMs: 4_000 }],
};

type Report = Record<string, unknown>;

/** What the child printed, line by line, and a way to wait for a line. */
class Reports {
  readonly lines: Report[] = [];
  readonly #waiters: Array<{ match: (r: Report) => boolean; resolve: (r: Report) => void }> = [];

  constructor(child: ChildProcess) {
    if (child.stdout === null) throw new Error('the child has no stdout pipe');
    createInterface({ input: child.stdout }).on('line', (text) => {
      const line = JSON.parse(text) as Report;
      this.lines.push(line);
      for (const w of [...this.#waiters]) {
        if (!w.match(line)) continue;
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve(line);
      }
    });
  }

  next(match: (r: Report) => boolean): Promise<Report> {
    const seen = this.lines.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => this.#waiters.push({ match, resolve }));
  }

  received(): string[] {
    return this.lines.filter((l) => l['event'] === 'received').map((l) => String((l['message'] as Report)['type']));
  }
}

/** A running ebb reduced to what a restart asks of it, with an admin socket on 127.0.0.1, and a Restart to a child in `mode`. */
async function restartInto(t: TestContext, mode: string, release?: RetiringEbb['releaseState']) {
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const admin = net.createServer((socket) => socket.end('served by the predecessor'));
  await new Promise<void>((resolve) => admin.listen({ host: '127.0.0.1', port: 0 }, resolve));
  cleanup.add(() => new Promise((resolve) => admin.close(resolve)));
  const address = admin.address();
  assert.ok(typeof address === 'object' && address !== null);
  const dataPlane = new HttpDataPlane({ id: 'dp-old' });
  cleanup.add(() => dataPlane.close(0));
  let released = 0;
  let telemetryStopped = 0;
  const ebb: RetiringEbb = {
    dataPlane,
    admin: { address: '127.0.0.1', port: address.port, server: admin },
    releaseState: () => {
      released++;
      return release?.() ?? Promise.resolve({ handOver: HANDED_OVER, deadlineMs: 1_234 });
    },
    stopTelemetry: () => {
      telemetryStopped++;
      return Promise.resolve();
    },
  };
  const clock = new FakeClock();
  const logs: Report[] = [];
  let reports: Reports | null = null;
  const restart = new Restart({
    ebb,
    clock,
    log: (e) => logs.push(e),
    stepTimeoutMs: STEP_MS,
    spawn: () => {
      const child = spawn(process.execPath, ['--import', 'tsx', CHILD, mode], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
      reports = new Reports(child);
      return child;
    },
  });
  const child = restart.successor;
  const pid = child.pid;
  assert.ok(pid !== undefined, 'the successor was started');
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  cleanup.add(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL');
    return exited;
  });
  assert.ok(reports !== null);
  return { restart, child, exited, reports: reports as Reports, clock, logs, admin, port: address.port, released: () => released, telemetryStopped: () => telemetryStopped };
}

function failedLog(logs: readonly Report[]): Report | undefined {
  return logs.find((e) => e['event'] === 'restart:failed');
}

test('a successor that exits before it asks for the state: failed, nothing released', async (t) => {
  const r = await restartInto(t, 'exit-at-once');
  const outcome = await r.restart.outcome;
  assert.equal(outcome.kind, 'failed');
  assert.match((outcome as Extract<RestartOutcome, { kind: 'failed' }>).error, /the successor exited \(code 3\) before it served/);
  assert.equal(r.released(), 0);
  assert.deepEqual(await r.exited, { code: 3, signal: null });
  assert.equal(failedLog(r.logs)?.['level'], 'error');
  assert.equal(failedLog(r.logs)?.['stranded'], undefined);
});

test('a successor that says it failed before asking for the state: failed with its error, nothing released, it is killed', async (t) => {
  const r = await restartInto(t, 'fail-before-state');
  const outcome = await r.restart.outcome;
  assert.deepEqual(outcome, { kind: 'failed', error: 'ebb.yaml: the certificate file site.crt cannot be read' });
  assert.equal(r.released(), 0, 'the state stays here: this ebb serves on');
  assert.deepEqual(await r.exited, { code: null, signal: 'SIGKILL' });
  assert.deepEqual(r.reports.received(), ['handover:socket', 'handover:sockets'], 'the admin socket, then the count; no state');
  assert.deepEqual(r.logs.map((e) => e['event']), ['restart:starting', 'restart:failed']);
  assert.equal(r.logs[0]?.['successor'], r.child.pid);
  assert.equal(r.restart.abort('too late'), false, 'nothing to call off once it has failed');
});

test('a successor that fails after it took the state: stranded, the state released once', async (t) => {
  const r = await restartInto(t, 'fail-after-state');
  const outcome = await r.restart.outcome;
  assert.deepEqual(outcome, { kind: 'stranded', error: 'the state directory could not be opened' });
  assert.equal(r.released(), 1);
  assert.equal(failedLog(r.logs)?.['stranded'], true);
  assert.ok(r.logs.some((e) => e['event'] === 'restart:state-released' && e['drains'] === 1 && e['health'] === 1));
  await r.exited;
});

test('a successor that exits after it took the state: stranded', async (t) => {
  const r = await restartInto(t, 'exit-after-state');
  const outcome = await r.restart.outcome;
  assert.equal(outcome.kind, 'stranded');
  assert.match((outcome as Extract<RestartOutcome, { kind: 'stranded' }>).error, /exited \(code 4\) before it served/);
  assert.equal(r.released(), 1);
  assert.deepEqual(await r.exited, { code: 4, signal: null });
});

test('a silent successor is killed at the step timeout: failed, nothing released (fake clock)', async (t) => {
  const r = await restartInto(t, 'silent');
  await r.reports.next((l) => l['event'] === 'up');
  let settled: RestartOutcome | null = null;
  void r.restart.outcome.then((o) => (settled = o));
  r.clock.advance(STEP_MS - 1);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(settled, null, 'not before the timeout');
  assert.equal(r.child.exitCode, null);
  r.clock.advance(1);
  assert.deepEqual(await r.restart.outcome, { kind: 'failed', error: `the successor did not ask for the state within ${STEP_MS} ms` });
  assert.deepEqual(await r.exited, { code: null, signal: 'SIGKILL' });
  assert.equal(r.released(), 0);
});

test('a successor that took the state and never serves is killed at the next step timeout: stranded (fake clock)', async (t) => {
  const r = await restartInto(t, 'mute-after-state');
  await r.reports.next((l) => l['event'] === 'received' && (l['message'] as Report)['type'] === 'handover:state');
  assert.equal(r.restart.phase, 'released');
  r.clock.advance(STEP_MS);
  assert.deepEqual(await r.restart.outcome, { kind: 'stranded', error: `the successor did not serve within ${STEP_MS} ms` });
  assert.deepEqual(await r.exited, { code: null, signal: 'SIGKILL' });
});

test('abort while the state is still here calls the restart off: the successor is told, then killed', async (t) => {
  const r = await restartInto(t, 'silent');
  assert.equal(r.restart.abort('a stop signal came'), true);
  assert.deepEqual(await r.restart.outcome, { kind: 'failed', error: 'called off: a stop signal came' });
  assert.deepEqual(await r.exited, { code: null, signal: 'SIGKILL' });
  assert.equal(r.released(), 0);
});

test('a successor that serves: it gets the admin socket and the state, and this ebb retires', async (t) => {
  const r = await restartInto(t, 'serve');
  assert.equal((await r.restart.outcome).kind, 'retired');
  assert.equal(r.released(), 1);
  const state = await r.reports.next((l) => l['event'] === 'received' && (l['message'] as Report)['type'] === 'handover:state');
  assert.deepEqual(state['message'], { type: 'handover:state', v: 1, handOver: HANDED_OVER });
  const sockets = await r.reports.next((l) => l['event'] === 'received' && (l['message'] as Report)['type'] === 'handover:sockets');
  assert.deepEqual(sockets['message'], { type: 'handover:sockets', v: 1, count: 1, dataPlaneId: 'dp-old' });
  const socket = r.reports.lines.find((l) => (l['message'] as Report | undefined)?.['type'] === 'handover:socket');
  assert.deepEqual(socket, { event: 'received', message: { type: 'handover:socket', v: 1, role: 'admin', address: '127.0.0.1', port: r.port }, handle: true });
  assert.deepEqual(
    r.logs.map((e) => e['event']),
    ['restart:starting', 'restart:state-released', 'restart:handed-over'],
  );
  assert.equal(r.logs[2]?.['deadlineMs'], 1_234);

  // The admin socket was handed over: closed here, it is still served, by the successor.
  await r.reports.next((l) => l['event'] === 'listening');
  await new Promise((resolve) => r.admin.close(resolve));
  const text = await new Promise<string>((resolve, reject) => {
    let body = '';
    net
      .connect(r.port, '127.0.0.1')
      .setEncoding('utf8')
      .on('data', (chunk: string) => (body += chunk))
      .on('end', () => resolve(body))
      .on('error', reject);
  });
  assert.equal(text, `served by ${r.child.pid ?? 0}`);
});

test('a release of the state that fails: stranded with its error, no unhandled rejection, the successor killed', async (t) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  process.on('unhandledRejection', onUnhandled);
  t.after(() => process.off('unhandledRejection', onUnhandled));
  const r = await restartInto(t, 'mute-after-state', () => Promise.reject(new Error('the store could not be closed: EIO')));
  // Bounded by a real timer: a release whose failure is lost leaves the outcome pending for good.
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([r.restart.outcome, new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), 5_000)))]);
  clearTimeout(timer);
  assert.deepEqual(outcome, { kind: 'stranded', error: 'the state could not be released: the store could not be closed: EIO' });
  assert.equal(r.released(), 1);
  assert.equal(failedLog(r.logs)?.['stranded'], true);
  assert.equal(r.logs.some((e) => e['event'] === 'restart:state-released'), false);
  assert.deepEqual(await r.exited, { code: null, signal: 'SIGKILL' });
  assert.equal(r.reports.received().includes('handover:state'), false, 'no state was sent');
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(unhandled, []);
});
