import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RoutingSnapshot, TargetGroupRoute } from '../domain/routing-snapshot.ts';
import { memoryLinkPair } from './link.ts';
import {
  ProtocolError,
  decodeFromWorker,
  decodeSnapshot,
  decodeToWorker,
  encodeSnapshot,
  toActivity,
  type FromWorker,
  type ToWorker,
} from './protocol.ts';

/** A message as the other side reads it: through JSON, as IPC carries it. */
function overTheWire(message: object): unknown {
  return JSON.parse(JSON.stringify(message));
}

const group = { arn: 'arn:tg/a', targets: [{ key: 'k1', healthyForMs: 1500 }] } as unknown as TargetGroupRoute;
const snapshot: RoutingSnapshot = { version: 42, listeners: [], targetGroups: new Map([[group.arn, group]]) };
const activity = { key: 'k1', requests: 1, tunnels: 2, completed: 3, connections: 4 };

test('a snapshot survives encoding, JSON and decoding, its groups still a map in order', () => {
  const wire = overTheWire(encodeSnapshot(snapshot));
  const decoded = decodeToWorker({ type: 'apply', seq: 1, snapshot: wire });
  assert.equal(decoded.type, 'apply');
  const back = decodeSnapshot((decoded as Extract<ToWorker, { type: 'apply' }>).snapshot);
  assert.equal(back.version, 42);
  assert.deepEqual([...back.targetGroups.keys()], ['arn:tg/a']);
  assert.deepEqual(back.targetGroups.get('arn:tg/a'), group);
});

test('every message each side makes is read back as it was', () => {
  const toWorker: ToWorker[] = [
    { type: 'hello', protocol: 1, dataPlaneId: 'worker-1', reportIntervalMs: 100 },
    { type: 'apply', seq: 1, snapshot: encodeSnapshot(snapshot) },
    { type: 'terminate', seq: 2, key: 'k1' },
    { type: 'close', seq: 3, deadlineMs: 5000 },
    { type: 'destroy' },
    { type: 'telemetry', requestEnds: 'digest' },
    { type: 'telemetry', requestEnds: 'raw' },
  ];
  for (const m of toWorker) assert.deepEqual(decodeToWorker(overTheWire(m)), overTheWire(m));
  const fromWorker: FromWorker[] = [
    { type: 'ready', protocols: [1], pid: 123 },
    { type: 'applied', seq: 1, version: 42, listenerErrors: [{ arn: 'l', code: 'EADDRINUSE', message: 'in use' }], activity: [activity] },
    { type: 'activity', activity: [activity] },
    { type: 'idle', activity },
    { type: 'terminated', seq: 2, result: { requestsCut: 1, tunnelsClosed: 0, connectionsClosed: 1 } },
    { type: 'closed', seq: 3 },
    { type: 'telemetry', events: [['ebb:request:end', { status: 200 }]], dropped: 0 },
    { type: 'telemetry', events: [], dropped: 0, digest: { requests: 1, listeners: [{ listenerArn: 'l', bytes: 9, elb: [[503, 1]], groups: [] }], samples: [] } },
    { type: 'log', line: { event: 'x' } },
  ];
  for (const m of fromWorker) assert.deepEqual(decodeFromWorker(overTheWire(m)), overTheWire(m));
  assert.deepEqual(toActivity(activity), { requests: 1, tunnels: 2, completed: 3, connections: 4 });
});

test('a message that is not an object, or of no known type, is refused saying what was expected', () => {
  assert.throws(() => decodeFromWorker('ready'), (e: unknown) => e instanceof ProtocolError && /must be a JSON object; got "ready"/.test(e.message));
  assert.throws(() => decodeFromWorker([1]), /must be a JSON object/);
  assert.throws(() => decodeFromWorker(null), /must be a JSON object; got null/);
  assert.throws(() => decodeFromWorker({ type: 'hello' }), /unknown message type "hello"; expected one of ready, applied/);
  assert.throws(() => decodeToWorker({ type: 'ready' }), /unknown message type "ready"; expected one of hello, apply/);
  assert.throws(() => decodeToWorker({}), /unknown message type undefined/);
});

test('each malformed field is refused with the message and the field named', () => {
  const cases: Array<[unknown, RegExp, 'to' | 'from']> = [
    [{ type: 'hello', protocol: -1, dataPlaneId: 'w', reportIntervalMs: 1 }, /'hello': field 'protocol' must be a non-negative integer; got -1/, 'to'],
    [{ type: 'hello', protocol: 1, dataPlaneId: 7, reportIntervalMs: 1 }, /'hello': field 'dataPlaneId' must be a string; got 7/, 'to'],
    [{ type: 'hello', protocol: 1, dataPlaneId: 'w' }, /'hello': field 'reportIntervalMs' must be a non-negative integer; got nothing/, 'to'],
    [{ type: 'apply', seq: 1.5, snapshot: encodeSnapshot(snapshot) }, /'apply': field 'seq' must be a non-negative integer; got 1.5/, 'to'],
    [{ type: 'apply', seq: 1, snapshot: [] }, /'apply': field 'snapshot' must be an object/, 'to'],
    [{ type: 'apply', seq: 1, snapshot: { version: 'x', listeners: [], targetGroups: [] } }, /'apply': field 'snapshot' has no integer version/, 'to'],
    [{ type: 'apply', seq: 1, snapshot: { version: 1, listeners: [] } }, /'apply': field 'snapshot' must have the lists listeners and targetGroups/, 'to'],
    [{ type: 'apply', seq: 1, snapshot: { version: 1, listeners: [], targetGroups: [{ targets: [] }] } }, /'apply': field 'snapshot' has a target group without an arn/, 'to'],
    [{ type: 'close', seq: 1, deadlineMs: '5s' }, /'close': field 'deadlineMs'/, 'to'],
    [{ type: 'telemetry', requestEnds: 'sampled' }, /'telemetry': field 'requestEnds' must be 'raw' or 'digest'; got "sampled"/, 'to'],
    [{ type: 'ready', protocols: ['1'], pid: 1 }, /'ready': field 'protocols' must be a list of integers/, 'from'],
    [{ type: 'applied', seq: 1, version: 1, listenerErrors: {}, activity: [] }, /'applied': field 'listenerErrors' must be a list/, 'from'],
    [{ type: 'applied', seq: 1, version: 1, listenerErrors: [null], activity: [] }, /'applied': field 'listenerErrors' has an entry that is not \{arn, code, message\} strings; got null/, 'from'],
    [{ type: 'applied', seq: 1, version: 1, listenerErrors: [{ arn: 'l', code: 'EADDRINUSE' }], activity: [] }, /'applied': field 'listenerErrors' has an entry that is not \{arn, code, message\} strings/, 'from'],
    [{ type: 'applied', seq: 1, version: 1, listenerErrors: [{ arn: 'l', code: 98, message: 'in use' }], activity: [] }, /'applied': field 'listenerErrors' has an entry that is not/, 'from'],
    [{ type: 'applied', seq: 1, version: 1, listenerErrors: [], activity: [{ ...activity, requests: -1 }] }, /'applied': field 'activity' has an entry that must have a non-negative integer requests; got -1/, 'from'],
    [{ type: 'activity', activity: [{ requests: 0 }] }, /'activity': field 'activity' has an entry that must be an object with a string key/, 'from'],
    [{ type: 'idle', activity: { ...activity, completed: null } }, /'idle': field 'activity' must have a non-negative integer completed; got null/, 'from'],
    [{ type: 'terminated', seq: 1, result: { requestsCut: 1 } }, /'terminated': field 'result' must have the integer counts requestsCut, tunnelsClosed and connectionsClosed/, 'from'],
    [{ type: 'telemetry', events: [['ebb:x']], dropped: 0 }, /'telemetry': field 'events' must be a list of \[channel, message\] pairs/, 'from'],
    [{ type: 'telemetry', events: [], dropped: -2 }, /'telemetry': field 'dropped'/, 'from'],
    [{ type: 'log', line: 'text' }, /'log': field 'line' must be an object; got "text"/, 'from'],
  ];
  for (const [message, expected, side] of cases) {
    const decode = side === 'to' ? decodeToWorker : decodeFromWorker;
    assert.throws(() => decode(message), (e: unknown) => e instanceof ProtocolError && expected.test(e.message), `${JSON.stringify(message)} should be refused with ${expected}`);
  }
});

test('a long value is shortened in the error', () => {
  assert.throws(() => decodeFromWorker({ type: 'log', line: 'x'.repeat(500) }), (e: unknown) => e instanceof Error && e.message.length < 200 && e.message.includes('...'));
});

test('a memory link delivers copies in order on a later turn, bounds what is in flight, and closes both ends once', async () => {
  const [a, b] = memoryLinkPair({ maxUnsent: 2 });
  const got: unknown[] = [];
  b.onMessage((m) => got.push(m));
  const closes: string[] = [];
  a.onClose((r) => closes.push(`a: ${r}`));
  b.onClose((r) => closes.push(`b: ${r}`));
  const sent = { n: 1, nested: { deep: true } };
  assert.equal(a.send(sent), true);
  assert.equal(a.send({ n: 2 }), true);
  assert.equal(a.send({ n: 3 }), false, 'a peer that has not read two messages yet refuses a third');
  assert.deepEqual(got, [], 'nothing is delivered in the same turn');
  sent.nested.deep = false;
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(got, [{ n: 1, nested: { deep: true } }, { n: 2 }], 'a copy, in order');
  assert.equal(a.send({ n: 4 }), true, 'room again once read');
  a.close();
  a.close();
  assert.equal(a.send({ n: 5 }), false, 'a closed link sends nothing');
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(got.at(-1), { n: 4 }, 'what was sent before the close arrives');
  assert.deepEqual(closes, ['a: closed by this side', 'b: the peer closed the link']);
  const late = await new Promise<string>((resolve) => b.onClose(resolve));
  assert.equal(late, 'the peer closed the link', 'a listener added after the close hears of it');
});
