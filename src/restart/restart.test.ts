/**
 * The running ebb's side of a hot restart (`Restart`, predecessor.ts) against a real child process that
 * speaks the successor's side by hand (successor.test-child.ts), one way of failing per mode; once it
 * serves, the child plays the control side of the data-plane protocol to the attached predecessor.
 * The step timeouts run on a FakeClock; everything else is real: the process, its IPC channel, the
 * sockets handed to it, the data plane and its listeners.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { test, type TestContext } from 'node:test';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { SETTINGS } from '../../test/integration/dataplane-helpers.ts';
import { Cleanup } from '../../test/support/cleanup.ts';
import { get } from '../../test/support/http-client.ts';
import { freePort } from '../../test/support/ports.ts';
import { waitUntil, within } from '../../test/support/timing.ts';
import type { HandOver } from '../control/hand-over.ts';
import { HttpDataPlane } from '../dataplane/http-data-plane.ts';
import type { ListenerRoute, RoutingSnapshot } from '../domain/routing-snapshot.ts';
import { Restart, type RestartOutcome, type RetiringEbb } from './predecessor.ts';
import { retiringLocal } from './retiring-data-plane.ts';

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

/** HTTP listeners on 127.0.0.1 at `ports`, each answering 503 (they forward to no group). */
function listenersAt(ports: readonly number[], version: number): RoutingSnapshot {
  const listeners: ListenerRoute[] = ports.map((port) => ({
    arn: `arn:test:listener/${port}`,
    protocol: 'HTTP',
    address: '127.0.0.1',
    port,
    targetGroupArn: null,
    settings: SETTINGS,
    tls: null,
  }));
  return { version, listeners, targetGroups: new Map() };
}

interface RestartSetup {
  /** The release of the state; default: resolves at once with HANDED_OVER and a deadline of 1,234 ms. */
  readonly release?: RetiringEbb['releaseState'];
  /** Ports the data plane listens on (HTTP, 503) before the restart starts. */
  readonly listenerPorts?: readonly number[];
}

/**
 * A running ebb reduced to what a restart asks of it (a real data plane, with the listeners asked for,
 * and an admin socket on 127.0.0.1), and a Restart to a child in `mode`.
 */
async function restartInto(t: TestContext, mode: string, setup: RestartSetup = {}) {
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const admin = net.createServer((socket) => socket.end('served by the predecessor'));
  await new Promise<void>((resolve) => admin.listen({ host: '127.0.0.1', port: 0 }, resolve));
  cleanup.add(() => new Promise((resolve) => admin.close(resolve)));
  const address = admin.address();
  assert.ok(typeof address === 'object' && address !== null);
  const dataPlane = new HttpDataPlane({ id: 'dp-old' });
  cleanup.add(() => dataPlane.close(0));
  if (setup.listenerPorts !== undefined) {
    const applied = await dataPlane.apply(listenersAt(setup.listenerPorts, 1));
    assert.deepEqual(applied.listenerErrors, []);
  }
  let released = 0;
  let telemetryStopped = 0;
  const ebb: RetiringEbb = {
    dataPlane: retiringLocal(dataPlane),
    admin: { address: '127.0.0.1', port: address.port, server: admin },
    releaseState: () => {
      released++;
      return setup.release?.() ?? Promise.resolve({ handOver: HANDED_OVER, deadlineMs: 1_234 });
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
      const child = spawn(process.execPath, ['--import', 'tsx', CHILD, mode], { stdio: ['pipe', 'pipe', 'inherit', 'ipc'] });
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
  /** A line to the child's stdin (successor.test-child.ts lists them). */
  const tell = (line: string): void => void child.stdin?.write(`${line}\n`);
  return {
    restart,
    child,
    exited,
    reports: reports as Reports,
    clock,
    logs,
    admin,
    dataPlane,
    tell,
    port: address.port,
    released: () => released,
    telemetryStopped: () => telemetryStopped,
  };
}

/** Matches the report of a message of `type` the child received. */
function receivedType(type: string): (r: Report) => boolean {
  return (l) => l['event'] === 'received' && (l['message'] as Report)['type'] === type;
}

/** The restart's outcome if it settled while a few real turns ran (the child's messages arrive meanwhile), else null. */
async function settledOutcome(restart: Restart, ms = 100): Promise<RestartOutcome | null> {
  return within(restart.outcome, ms, null);
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
  assert.deepEqual(r.reports.received(), ['handover:sockets'], 'the addresses only: no socket and no state');
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

/** Waits until the successor has said `hello` to this ebb's data plane over the link: the predecessor is attached. */
async function attached(r: Awaited<ReturnType<typeof restartInto>>): Promise<void> {
  await r.reports.next(receivedType('ready'));
  await waitUntil(() => r.telemetryStopped() === 1, "the successor's hello (this ebb's telemetry stops at it)");
  assert.equal(r.restart.phase, 'attached');
}

test("the listeners' handles go only once the state is released: one added after the start is among them, one removed is not", async (t) => {
  const [kept, removed, added] = [await freePort(), await freePort(), await freePort()];
  let releaseNow = (): void => {};
  const held = new Promise<void>((resolve) => (releaseNow = resolve));
  const r = await restartInto(t, 'ask-when-told', {
    listenerPorts: [kept, removed],
    release: () => held.then(() => ({ handOver: HANDED_OVER, deadlineMs: 1_234 })),
  });
  const sockets = await r.reports.next(receivedType('handover:sockets'));
  const at = (port: number) => ({ address: '127.0.0.1', port });
  assert.deepEqual(sockets['message'], { type: 'handover:sockets', v: 1, addresses: [at(kept), at(removed), at(r.port)], dataPlaneId: 'dp-old', socketsPerAddress: 1 });
  assert.equal(sockets['handle'], false, 'the addresses only, at the start');

  // Between the start and the successor asking for the state, the control plane changes the listeners.
  assert.deepEqual((await r.dataPlane.apply(listenersAt([kept, added], 2))).listenerErrors, []);
  r.tell('want-state');
  await waitUntil(() => r.released() === 1, 'the release of the state');
  const handles = () => r.reports.lines.filter(receivedType('handover:socket')).map((l) => ({ ...(l['message'] as Report), handle: l['handle'] }));
  const handle = (role: string, port: number) => ({ type: 'handover:socket', v: 1, role, ...at(port), handle: true });
  await r.reports.next(receivedType('handover:socket'));
  assert.equal(await settledOutcome(r.restart), null);
  assert.equal(r.restart.phase, 'releasing');
  assert.deepEqual(handles(), [handle('admin', r.port)], "the admin API's socket before its server closes; no listener's while the state is being released");

  releaseNow();
  await r.reports.next(receivedType('handover:state'));
  assert.deepEqual(handles(), [handle('admin', r.port), handle('listener', kept), handle('listener', added)]);
  assert.deepEqual(r.reports.received(), ['handover:sockets', 'handover:socket', 'handover:socket', 'handover:socket', 'handover:state'], "the listeners' handles just before the state");
});

test('a successor that serves: it gets the addresses at once, the admin socket when it asks for the state, and this ebb retires at its close', async (t) => {
  const r = await restartInto(t, 'serve');
  const sockets = await r.reports.next(receivedType('handover:sockets'));
  assert.deepEqual(sockets['message'], { type: 'handover:sockets', v: 1, addresses: [{ address: '127.0.0.1', port: r.port }], dataPlaneId: 'dp-old', socketsPerAddress: 1 });
  const state = await r.reports.next(receivedType('handover:state'));
  assert.deepEqual(state['message'], { type: 'handover:state', v: 1, handOver: HANDED_OVER });
  const socket = r.reports.lines.find(receivedType('handover:socket'));
  assert.deepEqual(socket, { event: 'received', message: { type: 'handover:socket', v: 1, role: 'admin', address: '127.0.0.1', port: r.port }, handle: true });
  await attached(r);
  assert.equal(r.released(), 1);
  assert.deepEqual(r.logs.map((e) => e['event']), ['restart:starting', 'restart:state-released'], 'attached: not handed over yet');

  r.tell('close 2500');
  const outcome = await r.restart.outcome;
  assert.deepEqual(outcome, { kind: 'retired', connectionsAtHandover: 0, requestsCompleted: 0, connectionsCut: 0, retiredInMs: 0, successorExited: null });
  assert.deepEqual((await r.reports.next(receivedType('closed')))['message'], { type: 'closed', seq: 1 });
  assert.deepEqual(r.logs.map((e) => e['event']), ['restart:starting', 'restart:state-released', 'restart:handed-over']);
  assert.equal(r.logs[2]?.['deadlineMs'], 2_500, "the deadline the successor's close gave");

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

test('attached, this data plane serves on with the successor routes and its own listeners until the successor says close', async (t) => {
  const port = await freePort();
  const r = await restartInto(t, 'serve', { listenerPorts: [port] });
  await attached(r);
  // The successor never listens on this socket: what answers is this data plane.
  assert.equal((await get(port, '/', undefined, 2_000)).status, 503);

  r.tell('apply-no-listeners');
  const applied = await r.reports.next(receivedType('applied'));
  assert.deepEqual(applied['message'], { type: 'applied', seq: 1, version: 2, listenerErrors: [], activity: [], completed: 0 });
  assert.deepEqual(r.dataPlane.listeningSockets().map((s) => s.port), [port], 'routes only: the listener stays open');
  assert.equal((await get(port, '/', undefined, 2_000)).status, 503, 'and still accepts');
  assert.equal(await settledOutcome(r.restart), null, 'attached, not retiring');
  assert.equal(r.restart.phase, 'attached');
  assert.equal(r.logs.some((e) => e['event'] === 'restart:handed-over'), false);

  r.tell('close 2500');
  const outcome = await r.restart.outcome;
  assert.ok(outcome.kind === 'retired');
  assert.equal(outcome.successorExited, null);
  assert.equal(outcome.connectionsCut, 0);
  assert.deepEqual((await r.reports.next(receivedType('closed')))['message'], { type: 'closed', seq: 2 });
  assert.deepEqual(r.dataPlane.listeningSockets(), [], 'closed once retired');
  assert.equal(r.child.exitCode, null, 'the successor goes on');
});

test('a successor that exits while attached: this ebb retires anyway, and the outcome says the successor ended', async (t) => {
  const port = await freePort();
  const r = await restartInto(t, 'serve', { listenerPorts: [port] });
  await attached(r);
  r.tell('exit 5');
  const outcome = await r.restart.outcome;
  assert.ok(outcome.kind === 'retired');
  // Its link closes first; the outcome waits for its exit, so it says how it ended.
  assert.match(String(outcome.successorExited), /it exited \(code 5\)$/);
  assert.deepEqual(await r.exited, { code: 5, signal: null });
  assert.deepEqual(r.dataPlane.listeningSockets(), [], 'this data plane closed too');
  assert.equal(r.reports.received().includes('closed'), false, 'no close was asked for');
  assert.equal(r.logs.find((e) => e['event'] === 'restart:handed-over')?.['deadlineMs'], 1_234, 'the deadline its release gave');
});

test('a successor that does not start within the step timeout while attached is killed, and this ebb retires (fake clock)', async (t) => {
  const r = await restartInto(t, 'serve');
  await attached(r);
  r.clock.advance(STEP_MS - 1);
  assert.equal(await settledOutcome(r.restart), null, 'not before the timeout');
  assert.equal(r.child.exitCode, null);
  assert.equal(r.child.signalCode, null);
  r.clock.advance(1);
  const outcome = await r.restart.outcome;
  assert.ok(outcome.kind === 'retired');
  // Why it was killed, and how it ended.
  assert.match(String(outcome.successorExited), new RegExp(`^the successor did not start within ${STEP_MS} ms; it exited \\(SIGKILL\\)$`));
  assert.ok(r.logs.some((e) => e['event'] === 'restart:failed' && e['stranded'] === true), 'the timeout is logged at level error');
  assert.deepEqual(await r.exited, { code: null, signal: 'SIGKILL' });
  assert.equal(r.logs.find((e) => e['event'] === 'restart:handed-over')?.['deadlineMs'], 1_234, 'it retires with the deadline its release gave');
});

test('a release of the state that fails: stranded with its error, no unhandled rejection, the successor killed', async (t) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  process.on('unhandledRejection', onUnhandled);
  t.after(() => process.off('unhandledRejection', onUnhandled));
  const r = await restartInto(t, 'mute-after-state', { release: () => Promise.reject(new Error('the store could not be closed: EIO')) });
  // Bounded by a real timer: a release whose failure is lost leaves the outcome pending for good.
  const outcome = await settledOutcome(r.restart, 5_000);
  assert.deepEqual(outcome, { kind: 'stranded', error: 'the state could not be released: the store could not be closed: EIO' });
  assert.equal(r.released(), 1);
  assert.equal(failedLog(r.logs)?.['stranded'], true);
  assert.equal(r.logs.some((e) => e['event'] === 'restart:state-released'), false);
  assert.deepEqual(await r.exited, { code: null, signal: 'SIGKILL' });
  assert.equal(r.reports.received().includes('handover:state'), false, 'no state was sent');
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(unhandled, []);
});
