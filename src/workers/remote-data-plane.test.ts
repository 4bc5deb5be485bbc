import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { test } from 'node:test';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { CHANNEL_NAMES } from '../dataplane/channels.ts';
import type { RoutingSnapshot } from '../domain/routing-snapshot.ts';
import { memoryLinkPair, type Link } from './link.ts';
import { APPLY_RETRY_MS, RemoteDataPlane } from './remote-data-plane.ts';
import { LISTENER_SETTINGS, ScriptedWorker, setup, snapshot, turns, wire } from '../../test/support/remote-data-plane-harness.ts';

test('attach says hello, then sends the latest snapshot; apply resolves on its applied', async () => {
  const { plane, connect, logs } = setup();
  assert.deepEqual(await plane.apply(snapshot(1)), { listenerErrors: [] }, 'with no worker, an apply is done at once: the slot routes nothing');
  const worker = connect();
  await turns();
  assert.deepEqual(
    worker.received.map((m) => m.type),
    ['hello', 'apply'],
  );
  assert.deepEqual(worker.last('hello'), { type: 'hello', protocol: 1, dataPlaneId: 'dp-1', reportIntervalMs: 50 });
  const sent = worker.last('apply');
  assert.equal(sent.snapshot.version, 1);
  worker.applied(sent.seq, [], [{ arn: 'l-1', code: 'EADDRINUSE', message: 'in use' }]);
  await turns();
  const logged = logs.find((e) => e['event'] === 'worker:listener-errors');
  assert.deepEqual(logged?.['listenerErrors'], [{ arn: 'l-1', code: 'EADDRINUSE', message: 'in use' }], 'the bind errors of a resent snapshot are logged');

  const next = plane.apply(snapshot(2));
  await turns();
  worker.applied(worker.last('apply').seq, [], [{ arn: 'l-2', code: 'EACCES', message: 'denied' }]);
  assert.deepEqual(await next, { listenerErrors: [{ arn: 'l-2', code: 'EACCES', message: 'denied' }] });
});

test('activity is unsettled until the worker confirms the snapshot; then the keys asked about are told idle', async () => {
  const { plane, idle, connect } = setup();
  const worker = connect();
  worker.say({ type: 'activity', activity: [wire('t1', { requests: 2, completed: 5, connections: 1 })] });
  await turns();
  assert.deepEqual(plane.activity('t1'), { requests: 2, tunnels: 0, completed: 5, connections: 1 });

  const applying = plane.apply(snapshot(2));
  assert.equal(plane.activity('t1').unsettled, true);
  assert.equal(plane.activity('t2').unsettled, true);
  await turns();
  assert.deepEqual(idle, []);
  // The confirmation lists every key with work: t1 has none now.
  worker.applied(worker.last('apply').seq, [wire('t3', { tunnels: 1, completed: 1 })]);
  await applying;
  assert.deepEqual(idle.sort(), ['t1', 't2']);
  assert.deepEqual(plane.activity('t1'), { requests: 0, tunnels: 0, completed: 5, connections: 0 });
  assert.deepEqual(plane.activity('t3'), { requests: 0, tunnels: 1, completed: 1, connections: 0 });
});

test('one apply is unanswered at a time: meanwhile only the newest snapshot is held, and its applied answers the calls before it', async () => {
  const { plane, connect } = setup();
  const worker = connect();
  const first = plane.apply(snapshot(1));
  const second = plane.apply(snapshot(2));
  const third = plane.apply(snapshot(3));
  await turns();
  const sent = (): number[] => worker.received.flatMap((m) => (m.type === 'apply' ? [m.snapshot.version] : []));
  assert.deepEqual(sent(), [1], 'the others wait for its answer');
  assert.equal(plane.activity('t1').unsettled, true);
  worker.applied(worker.last('apply').seq, [wire('t1', { requests: 1 })]);
  assert.deepEqual(await first, { listenerErrors: [] });
  await turns();
  assert.deepEqual(sent(), [1, 3], 'snapshot 2 is skipped: 3 replaced it');
  assert.equal(plane.activity('t1').unsettled, true, 'still unsettled: 3 is unconfirmed');
  const newest = worker.last('apply').seq;
  worker.applied(newest, [wire('t1', { requests: 2 })]);
  assert.deepEqual(await Promise.all([second, third]), [{ listenerErrors: [] }, { listenerErrors: [] }]);
  worker.applied(newest - 1, []);
  await turns();
  assert.equal(plane.activity('t1').requests, 2, 'an older confirmation does not overwrite a newer one');
  assert.equal(plane.activity('t1').unsettled, undefined);
});

test('idle is passed on at once; activity updates only the keys it lists', async () => {
  const { plane, idle, connect } = setup();
  const worker = connect();
  worker.say({ type: 'activity', activity: [wire('a', { requests: 1 }), wire('b', { tunnels: 2 })] });
  worker.say({ type: 'idle', activity: wire('a', { completed: 1 }) });
  await turns();
  assert.deepEqual(idle, ['a']);
  assert.deepEqual(plane.activity('a'), { requests: 0, tunnels: 0, completed: 1, connections: 0 });
  assert.equal(plane.activity('b').tunnels, 2);
});

test('detach: work goes to zero, its keys are told idle, calls waiting end; completed never goes down across workers', async () => {
  const { plane, idle, connect, logs } = setup();
  const first = connect();
  first.say({ type: 'activity', activity: [wire('busy', { requests: 3, completed: 10, connections: 2 }), wire('quiet', { completed: 4, connections: 1 })] });
  await turns();
  const cut = plane.terminate('busy');
  const pendingApply = plane.apply(snapshot(7));
  await turns();
  assert.equal(plane.activity('busy').unsettled, true);

  // Client connections lost are what its connection messages said (remote-data-plane-connections.test.ts); it sent none.
  assert.deepEqual(plane.detach('the worker was killed by SIGKILL'), { connectionsLost: 0 });
  assert.equal(plane.attached, false);
  assert.deepEqual(await cut, { requestsCut: 0, tunnelsClosed: 0, connectionsClosed: 0 });
  assert.deepEqual(await pendingApply, { listenerErrors: [] }, 'the control plane does not wait for a replacement');
  assert.deepEqual(await plane.apply(snapshot(8)), { listenerErrors: [] }, 'nor does an apply made while no worker is there');
  assert.deepEqual(idle.sort(), ['busy', 'quiet']);
  assert.deepEqual(plane.activity('busy'), { requests: 0, tunnels: 0, completed: 10, connections: 0 }, 'no worker: settled and idle');
  assert.ok(logs.some((e) => e['event'] === 'worker:detached' && e['targetConnectionsLost'] === 3), 'its connections to targets, as last reported, are logged');
  assert.deepEqual(await plane.terminate('busy'), { requestsCut: 0, tunnelsClosed: 0, connectionsClosed: 0 }, 'nothing to cut without a worker');

  const second = connect();
  await turns();
  const resent = second.last('apply');
  assert.equal(resent.snapshot.version, 8, 'the new worker gets the latest snapshot');
  assert.equal(plane.activity('busy').unsettled, true);
  second.applied(resent.seq, [wire('busy', { requests: 1, completed: 2 })]);
  await turns();
  assert.equal(plane.activity('busy').unsettled, undefined);
  assert.equal(plane.activity('busy').completed, 12);
  assert.equal(plane.activity('quiet').completed, 4);
});

test('a worker counter that goes back (it forgot the key) does not make completed go down', async () => {
  const { plane, connect } = setup();
  const worker = connect();
  worker.say({ type: 'idle', activity: wire('k', { completed: 6 }) });
  worker.say({ type: 'activity', activity: [wire('k', { requests: 1, completed: 1 })] });
  await turns();
  assert.equal(plane.activity('k').completed, 7);
});

test('terminate and close are answered by seq', async () => {
  const { plane, connect } = setup();
  const worker = connect();
  const a = plane.terminate('a');
  const b = plane.terminate('b');
  await turns();
  const terminates = worker.received.filter((m) => m.type === 'terminate');
  assert.deepEqual(
    terminates.map((m) => m.key),
    ['a', 'b'],
  );
  const [ta, tb] = terminates;
  worker.say({ type: 'terminated', seq: tb?.seq, result: { requestsCut: 2, tunnelsClosed: 0, connectionsClosed: 2 } });
  worker.say({ type: 'terminated', seq: ta?.seq, result: { requestsCut: 0, tunnelsClosed: 1, connectionsClosed: 2 } });
  assert.deepEqual(await a, { requestsCut: 0, tunnelsClosed: 1, connectionsClosed: 2 });
  assert.deepEqual(await b, { requestsCut: 2, tunnelsClosed: 0, connectionsClosed: 2 });

  let closed = false;
  const closing = plane.close(1500.4).then(() => {
    closed = true;
  });
  await turns();
  const close = worker.last('close');
  assert.equal(close.deadlineMs, 1500);
  worker.say({ type: 'closed', seq: close.seq + 1 });
  await turns();
  assert.equal(closed, false, 'an answer to another seq does not end the close');
  worker.say({ type: 'closed', seq: close.seq });
  await closing;
  assert.deepEqual(await plane.apply(snapshot(9)), { listenerErrors: [] }, 'a closed data plane applies nothing');
});

test('close resolves at once when the worker is detached while closing', async () => {
  const { plane, connect } = setup();
  connect();
  const closing = plane.close(10_000);
  plane.detach('exited');
  await closing;
  assert.equal(plane.attached, false);
});

test('telemetry is published on this process\'s channels of the same names; dropped is counted, unknown names refused', async (t) => {
  const { plane, connect } = setup();
  const worker = connect();
  const seen: unknown[] = [];
  const subscriber = (message: unknown): void => {
    seen.push(message);
  };
  diagnosticsChannel.subscribe(CHANNEL_NAMES.requestEnd, subscriber);
  t.after(() => diagnosticsChannel.unsubscribe(CHANNEL_NAMES.requestEnd, subscriber));
  worker.say({
    type: 'telemetry',
    events: [
      [CHANNEL_NAMES.requestEnd, { status: 200, dataPlaneId: 'dp-1' }],
      ['someone:else', { x: 1 }],
      [CHANNEL_NAMES.requestEnd, { status: 502, dataPlaneId: 'dp-1' }],
    ],
    dropped: 4,
  });
  await turns();
  assert.deepEqual(seen, [
    { status: 200, dataPlaneId: 'dp-1' },
    { status: 502, dataPlaneId: 'dp-1' },
  ]);
  assert.equal(plane.telemetryDropped, 4);
  assert.equal(plane.telemetryRefused, 1);
});

test('telemetry events that are not plain objects are refused, not handed to subscribers', async (t) => {
  const uncaught: unknown[] = [];
  const onUncaught = (e: unknown): void => void uncaught.push(e);
  // node:test has its own handler; this one records what would otherwise end `ebb serve`.
  process.prependListener('uncaughtException', onUncaught);
  t.after(() => process.off('uncaughtException', onUncaught));
  const { plane, connect } = setup();
  const worker = connect();
  const seen: unknown[] = [];
  // Like ebb's own subscribers, it reads a field of the event.
  const subscriber = (message: unknown): void => void seen.push((message as { status: number }).status);
  diagnosticsChannel.subscribe(CHANNEL_NAMES.requestEnd, subscriber);
  t.after(() => diagnosticsChannel.unsubscribe(CHANNEL_NAMES.requestEnd, subscriber));
  const events = [null, [1], 'text', 7, { status: 200 }].map((e) => [CHANNEL_NAMES.requestEnd, e]);
  worker.say({ type: 'telemetry', events, dropped: 0 });
  await turns();
  assert.deepEqual(seen, [200]);
  assert.equal(plane.telemetryRefused, 4);
  assert.deepEqual(uncaught.map(String), []);
  assert.equal(plane.attached, true, 'the worker is kept');
});

test("the worker's log lines go into the log with its data plane's id", async () => {
  const { logs, connect } = setup();
  const worker = connect();
  worker.say({ type: 'log', line: { event: 'listener:open', port: 8080 } });
  await turns();
  assert.deepEqual(logs.at(-1), { event: 'listener:open', port: 8080, worker: 'dp-1' });
});

test('a message that does not decode is logged with what is wrong, and the link is closed', async () => {
  const { logs, connect } = setup();
  const worker = connect();
  worker.say({ type: 'terminated', seq: 1, result: { requestsCut: 'many' } });
  await turns();
  const entry = logs.find((e) => e['event'] === 'worker:protocol-error');
  assert.ok(entry !== undefined);
  assert.match(String(entry['error']), /'terminated': field 'result'/);
  assert.equal(worker.closedReason, 'the peer closed the link');
});

test('an apply left unanswered past the answer timeout closes the link (fake clock)', async () => {
  const { plane, clock, logs, connect } = setup({ answerTimeoutMs: 1000 });
  const worker = connect();
  void plane.apply(snapshot(1));
  await turns();
  clock.advance(999);
  await turns();
  assert.equal(worker.closedReason, null);
  clock.advance(1);
  await turns();
  assert.equal(worker.closedReason, 'the peer closed the link');
  assert.match(String(logs.find((e) => e['event'] === 'worker:unresponsive')?.['error']), /did not answer 'apply'/);
});

test('an answered apply leaves no timer behind', async () => {
  const { plane, clock, connect } = setup({ answerTimeoutMs: 1000 });
  const worker = connect();
  const applying = plane.apply(snapshot(1));
  await turns();
  worker.applied(worker.last('apply').seq);
  await applying;
  assert.equal(clock.pendingTimers(), 0);
});

test('a snapshot the link refuses is held and sent again; a worker whose link stays full is given up after the answer timeout', async () => {
  const { plane, clock, logs, connect } = setup({ maxUnsent: 1, answerTimeoutMs: 1000 });
  const worker = connect();
  // hello fills the link until it is delivered.
  const applying = plane.apply(snapshot(1));
  assert.equal(worker.closedReason, null);
  assert.equal(plane.activity('k').unsettled, true);
  await turns();
  clock.advance(APPLY_RETRY_MS);
  await turns();
  assert.equal(worker.last('apply').snapshot.version, 1, 'sent once the link took it');
  worker.applied(worker.last('apply').seq);
  assert.deepEqual(await applying, { listenerErrors: [] });
  assert.equal(clock.pendingTimers(), 0);

  // A link that takes hello and nothing more: the worker is stuck.
  let closed = false;
  let sends = 0;
  const stuck: Link = { send: () => ++sends === 1, sendHandle: () => Promise.resolve(false), onMessage: () => {}, onClose: () => {}, close: () => void (closed = true) };
  void plane.attach(stuck);
  assert.equal(closed, false);
  clock.advance(999);
  assert.equal(closed, false, 'a full link is not a reason by itself');
  clock.advance(1);
  assert.equal(closed, true);
  assert.match(String(logs.find((e) => e['event'] === 'worker:unresponsive')?.['error']), /refused a snapshot for 1000 ms/);
});

test('a snapshot resent to a new worker has its healthy targets aged by the time since it was given (fake clock)', async () => {
  const { plane, clock, connect } = setup();
  const group = { arn: 'tg-1', name: 'tg', protocol: 'HTTP', targetTls: null, proxyProtocolV2: false, connectionTermination: false, algorithm: 'round_robin', failOpen: false, slowStartMs: 60_000 } as const;
  const targets = [
    { key: 'a', host: '127.0.0.1', port: 1, healthyForMs: 5_000 },
    { key: 'b', host: '127.0.0.1', port: 2, healthyForMs: null },
  ];
  await plane.apply({ version: 4, listeners: [], targetGroups: new Map([['tg-1', { ...group, targets }]]) });
  clock.advance(90_000);
  const worker = connect();
  await turns();
  const resent = worker.last('apply').snapshot.targetGroups.find((g) => g.arn === 'tg-1')?.targets;
  assert.deepEqual(
    resent?.map((t) => [t.key, t.healthyForMs]),
    [
      ['a', 95_000],
      ['b', null],
    ],
  );
});

/** The plane a hot restart makes for the ebb it replaces (docs/restart.md), as `setup` makes a worker's. */
function setupPredecessor() {
  const clock = new FakeClock();
  const logs: Array<Record<string, unknown>> = [];
  const plane = new RemoteDataPlane({ id: 'dp-old', clock, log: (e) => logs.push(e), reportIntervalMs: 50, predecessor: true });
  const idle: string[] = [];
  plane.onIdle((key) => idle.push(key));
  const connect = (): ScriptedWorker => {
    const [control, worker] = memoryLinkPair();
    const scripted = new ScriptedWorker(worker);
    void plane.attach(control);
    return scripted;
  };
  return { clock, logs, plane, idle, connect };
}

function withListener(version: number): RoutingSnapshot {
  const group = { arn: 'tg-1', name: 'tg', protocol: 'HTTP', targetTls: null, proxyProtocolV2: false, connectionTermination: false, algorithm: 'round_robin', failOpen: false, slowStartMs: 0 } as const;
  return {
    version,
    listeners: [{ arn: 'listener-1', protocol: 'HTTP', address: '127.0.0.1', port: 8080, targetGroupArn: 'tg-1', settings: LISTENER_SETTINGS, tls: null }],
    targetGroups: new Map([['tg-1', { ...group, targets: [{ key: 'tg-1|127.0.0.1|3001', host: '127.0.0.1', port: 3001, healthyForMs: null }] }]]),
  };
}

test('a predecessor is unsettled before it attaches, with no link; a worker slot with no worker is not', () => {
  const { plane } = setupPredecessor();
  assert.equal(plane.attached, false);
  assert.deepEqual(plane.activity('k'), { requests: 0, tunnels: 0, completed: 0, connections: 0, unsettled: true }, 'its work is not known yet');
  const { plane: slot } = setup();
  assert.equal(slot.activity('k').unsettled, undefined);
});

test('stopExpecting settles a predecessor and tells the idle listeners of the keys asked meanwhile, once', () => {
  const { plane, idle } = setupPredecessor();
  plane.activity('a');
  plane.activity('b');
  plane.activity('a');
  assert.deepEqual(idle, [], 'nothing is idle while its work is unknown');
  plane.stopExpecting();
  assert.deepEqual(idle.sort(), ['a', 'b']);
  assert.equal(plane.activity('a').unsettled, undefined);
  plane.stopExpecting();
  assert.deepEqual(idle.sort(), ['a', 'b'], 'a second call tells nothing again');
});

test('a predecessor that attaches is settled by its answer to the snapshot, which lists its work', async () => {
  const { plane, idle, connect } = setupPredecessor();
  await plane.apply(snapshot(3));
  plane.activity('busy');
  plane.activity('done');
  const worker = connect();
  await turns();
  assert.equal(plane.activity('done').unsettled, true, 'attached, but the snapshot it was sent is unconfirmed');
  worker.applied(worker.last('apply').seq, [wire('busy', { requests: 1, completed: 4 })]);
  await turns();
  assert.deepEqual(idle.sort(), ['busy', 'done'], 'each drain that asked looks again');
  assert.deepEqual(plane.activity('busy'), { requests: 1, tunnels: 0, completed: 4, connections: 0 });
});

test('a predecessor is sent the routes of each snapshot but no listeners', async () => {
  const { plane, connect } = setupPredecessor();
  await plane.apply(withListener(1));
  const worker = connect();
  await turns();
  const first = worker.last('apply');
  assert.deepEqual(first.snapshot.listeners, [], 'the snapshot it attached to');
  assert.deepEqual(first.snapshot.targetGroups.map((g) => g.arn), ['tg-1'], 'its routes are kept: its in-flight requests still use them');
  worker.applied(first.seq);
  const next = plane.apply(withListener(2));
  await turns();
  const second = worker.last('apply');
  assert.equal(second.snapshot.version, 2);
  assert.deepEqual(second.snapshot.listeners, []);
  worker.applied(second.seq);
  await next;

  // The same snapshot to a worker's slot carries its listener: the difference is the predecessor's.
  const { plane: slot, connect: connectSlot } = setup();
  await slot.apply(withListener(1));
  const slotWorker = connectSlot();
  await turns();
  assert.deepEqual(slotWorker.last('apply').snapshot.listeners.map((l) => l.arn), ['listener-1']);
});

test('terminate reaches a predecessor after close(): a drain that ends at its deadline cuts what it has left', async () => {
  const { plane, connect } = setupPredecessor();
  const worker = connect();
  await turns();
  void plane.close(30_000);
  const cut = plane.terminate('k');
  await turns();
  const terminate = worker.last('terminate');
  assert.equal(terminate.key, 'k');
  worker.say({ type: 'terminated', seq: terminate.seq, result: { requestsCut: 2, tunnelsClosed: 0, connectionsClosed: 2 } });
  assert.deepEqual(await cut, { requestsCut: 2, tunnelsClosed: 0, connectionsClosed: 2 });

  // A worker's slot, once closed, cuts nothing: the pool ends its process.
  const { plane: slot, connect: connectSlot } = setup();
  const slotWorker = connectSlot();
  await turns();
  void slot.close(30_000);
  assert.deepEqual(await slot.terminate('k'), { requestsCut: 0, tunnelsClosed: 0, connectionsClosed: 0 });
  await turns();
  assert.equal(slotWorker.received.filter((m) => m.type === 'terminate').length, 0);
});

test("a predecessor's key whose counts go from busy to idle in an activity report is told idle", async () => {
  const { plane, idle, connect } = setupPredecessor();
  const worker = connect();
  worker.say({ type: 'activity', activity: [wire('req', { requests: 2, completed: 1 }), wire('tun', { tunnels: 1 }), wire('quiet', { completed: 3 })] });
  await turns();
  assert.deepEqual(idle, [], 'busy keys, and a key that never had work, are not idle');
  worker.say({ type: 'activity', activity: [wire('req', { requests: 1, completed: 2 })] });
  await turns();
  assert.deepEqual(idle, [], 'one request is still in flight');
  worker.say({ type: 'activity', activity: [wire('req', { completed: 3 }), wire('tun', { completed: 1 }), wire('quiet', { completed: 3 })] });
  await turns();
  assert.deepEqual(idle.sort(), ['req', 'tun']);
  assert.equal(plane.activity('req').completed, 3);

  // A worker says `idle` itself; its activity reports tell nothing.
  const { idle: slotIdle, connect: connectSlot } = setup();
  const slotWorker = connectSlot();
  slotWorker.say({ type: 'activity', activity: [wire('req', { requests: 2 })] });
  slotWorker.say({ type: 'activity', activity: [wire('req', { completed: 2 })] });
  await turns();
  assert.deepEqual(slotIdle, []);
});

test("requestEnds: told to the worker now, and after hello to each that replaces it; never to a predecessor", async () => {
  const { plane, connect } = setup();
  const first = connect();
  await turns();
  plane.requestEnds('digest');
  plane.requestEnds('digest');
  await turns();
  assert.deepEqual(
    first.received.filter((m) => m.type === 'telemetry'),
    [{ type: 'telemetry', requestEnds: 'digest' }],
    'said once',
  );
  const second = connect();
  plane.apply(snapshot(1)).catch(() => {});
  await turns();
  assert.deepEqual(
    second.received.map((m) => m.type),
    ['hello', 'telemetry', 'apply'],
    'a replacement is told before its first snapshot, so no request of it travels the other way',
  );
  plane.requestEnds('raw');
  await turns();
  assert.deepEqual(second.last('telemetry'), { type: 'telemetry', requestEnds: 'raw' });

  const old = setupPredecessor();
  old.plane.requestEnds('digest');
  const worker = old.connect();
  await turns();
  assert.equal(worker.received.filter((m) => m.type === 'telemetry').length, 0, 'an older ebb might not know the message');
});
