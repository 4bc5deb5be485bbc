import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeToPredecessor, decodeToSuccessor, HANDOVER_VERSION, HandoverProtocolError } from './handover-protocol.ts';

const v = HANDOVER_VERSION;

/** A `handover:state` whose handOver is `handOver`, the rest valid. */
function state(handOver: unknown): Record<string, unknown> {
  return { type: 'handover:state', v, handOver };
}

const healthy = { key: 'tg|10.0.0.1|80', health: 'healthy', healthyForMs: 12_500, failure: null };
const unhealthy = { key: 'tg|10.0.0.2|80', health: 'unhealthy', healthyForMs: null, failure: { reason: 'Target.ResponseCodeMismatch', statusCode: 503 } };

/** Asserts that `decode(value)` throws a HandoverProtocolError whose message matches `message`. */
function refused(decode: (value: unknown) => unknown, value: unknown, message: RegExp): void {
  assert.throws(
    () => decode(value),
    (e: unknown) => {
      assert.ok(e instanceof HandoverProtocolError, `a HandoverProtocolError, not ${String(e)}`);
      assert.match(e.message, message);
      return true;
    },
    JSON.stringify(value),
  );
}

test('every message to the successor decodes to what was sent', () => {
  const messages = [
    { type: 'handover:socket', v, role: 'listener', address: '0.0.0.0', port: 8080 },
    { type: 'handover:socket', v, role: 'admin', address: '127.0.0.1', port: 0 },
    { type: 'handover:sockets', v, addresses: [{ address: '0.0.0.0', port: 8080 }, { address: '127.0.0.1', port: 9000 }], dataPlaneId: 'dp-1234' },
    { type: 'handover:sockets', v, addresses: [], dataPlaneId: 'dp-1234' },
    // An ebb whose 2 workers each hand over a socket of their own per address (SO_REUSEPORT).
    { type: 'handover:sockets', v, addresses: [{ address: '0.0.0.0', port: 8080 }], dataPlaneId: 'ebb-4242', socketsPerAddress: 2 },
    state({ drains: [], health: [] }),
    state({
      drains: [{ key: 'tg|10.0.0.1|80', completedAtStart: [['dp-1234', 17], ['dp-old', 0]] }],
      health: [healthy, unhealthy, { key: 'k3', health: 'unhealthy', healthyForMs: null, failure: { reason: 'Target.Timeout' } }],
    }),
    { type: 'handover:abort', v, reason: 'a stop signal came' },
  ];
  for (const m of messages) assert.deepEqual(decodeToSuccessor(structuredClone(m)), m);
});

test('every message to the predecessor decodes to what was sent', () => {
  const messages = [
    { type: 'handover:want-state', v },
    { type: 'handover:serving', v },
    { type: 'handover:failed', v, error: 'ebb.yaml: listeners[0].port is not a port' },
  ];
  for (const m of messages) assert.deepEqual(decodeToPredecessor(structuredClone(m)), m);
});

test('fields a message does not define are left out of what it decodes to', () => {
  assert.deepEqual(decodeToPredecessor({ type: 'handover:serving', v, extra: 'x' }), { type: 'handover:serving', v });
  assert.deepEqual(
    decodeToSuccessor({ type: 'handover:sockets', v, count: 1, addresses: [{ address: '::', port: 443, role: 'listener' }], dataPlaneId: 'dp' }),
    { type: 'handover:sockets', v, addresses: [{ address: '::', port: 443 }], dataPlaneId: 'dp' },
  );
  const decoded = decodeToSuccessor(state({ drains: [{ key: 'k', completedAtStart: [], other: 1 }], health: [{ ...healthy, extra: true }] }));
  assert.deepEqual(decoded, state({ drains: [{ key: 'k', completedAtStart: [] }], health: [healthy] }));
});

test('a status code that is not a number is dropped from a failure; the failure stays', () => {
  const decoded = decodeToSuccessor(state({ drains: [], health: [{ ...unhealthy, failure: { reason: 'Target.ResponseCodeMismatch', statusCode: '503' } }] }));
  assert.ok(decoded.type === 'handover:state');
  assert.deepEqual(decoded.handOver.health[0]?.failure, { reason: 'Target.ResponseCodeMismatch' });
});

test('another version, or none, is refused by both sides and names the version this ebb speaks', () => {
  for (const decode of [decodeToSuccessor, decodeToPredecessor]) {
    refused(decode, { type: 'handover:serving', v: 2 }, /version 2; this ebb speaks 1/);
    refused(decode, { type: 'handover:serving', v: '1' }, /version 1; this ebb speaks 1/);
    refused(decode, { type: 'handover:serving' }, /version undefined; this ebb speaks 1/);
    refused(decode, { type: 'handover:abort', v: 0, reason: 'x' }, /version 0/);
  }
});

test('what is not an object is refused', () => {
  for (const decode of [decodeToSuccessor, decodeToPredecessor]) {
    for (const value of [null, undefined, 'handover:serving', 1, [{ type: 'handover:serving', v }]]) refused(decode, value, /not an object/);
  }
});

test('an unknown type is refused, and so is a message meant for the other side', () => {
  refused(decodeToSuccessor, { type: 'handover:nonsense', v }, /unknown handover message handover:nonsense/);
  refused(decodeToSuccessor, { v }, /unknown handover message undefined/);
  refused(decodeToSuccessor, { type: 'handover:want-state', v }, /unknown handover message handover:want-state/);
  refused(decodeToPredecessor, { type: 'handover:state', v, handOver: { drains: [], health: [] } }, /unknown handover message handover:state/);
  refused(decodeToPredecessor, { type: 'apply', v, seq: 1 }, /unknown handover message apply/);
});

test('socket and sockets messages with bad fields are refused, naming the field', () => {
  const socket = { type: 'handover:socket', v, role: 'listener', address: '0.0.0.0', port: 80 };
  refused(decodeToSuccessor, { ...socket, role: 'dataplane' }, /handover:socket: unknown role dataplane/);
  refused(decodeToSuccessor, { ...socket, role: undefined }, /unknown role undefined/);
  refused(decodeToSuccessor, { ...socket, address: 80 }, /handover:socket: address is not a string/);
  refused(decodeToSuccessor, { ...socket, port: -1 }, /handover:socket: port is not a count/);
  refused(decodeToSuccessor, { ...socket, port: 80.5 }, /port is not a count/);
  refused(decodeToSuccessor, { ...socket, port: '80' }, /port is not a count/);
  const sockets = { type: 'handover:sockets', v, addresses: [{ address: '0.0.0.0', port: 80 }], dataPlaneId: 'dp' };
  refused(decodeToSuccessor, { ...sockets, addresses: undefined }, /handover:sockets: addresses is not a list/);
  refused(decodeToSuccessor, { ...sockets, addresses: { address: '0.0.0.0', port: 80 } }, /addresses is not a list/);
  refused(decodeToSuccessor, { ...sockets, count: 1, addresses: undefined }, /addresses is not a list/);
  for (const entry of [null, '0.0.0.0:80', 80]) refused(decodeToSuccessor, { ...sockets, addresses: [entry] }, /handover:sockets: an address is not an object/);
  refused(decodeToSuccessor, { ...sockets, addresses: [{ address: '0.0.0.0', port: 80 }, { port: 81 }] }, /handover:sockets: address is not a string/);
  refused(decodeToSuccessor, { ...sockets, addresses: [{ address: '0.0.0.0', port: -1 }] }, /handover:sockets: port is not a count/);
  refused(decodeToSuccessor, { ...sockets, addresses: [{ address: '0.0.0.0', port: '80' }] }, /handover:sockets: port is not a count/);
  refused(decodeToSuccessor, { ...sockets, dataPlaneId: null }, /handover:sockets: dataPlaneId is not a string/);
  refused(decodeToSuccessor, { type: 'handover:abort', v }, /handover:abort: reason is not a string/);
  refused(decodeToPredecessor, { type: 'handover:failed', v, error: { message: 'x' } }, /handover:failed: error is not a string/);
});

test('a state without handOver, or with drains that are not [key, [id, count] pairs], is refused', () => {
  refused(decodeToSuccessor, { type: 'handover:state', v }, /handover:state: no handOver/);
  refused(decodeToSuccessor, state(null), /no handOver/);
  refused(decodeToSuccessor, state('drains'), /no handOver/);
  refused(decodeToSuccessor, state({ health: [] }), /drains is not a list/);
  refused(decodeToSuccessor, state({ drains: {}, health: [] }), /drains is not a list/);
  refused(decodeToSuccessor, state({ drains: [{ completedAtStart: [] }], health: [] }), /a drain without key and completedAtStart/);
  refused(decodeToSuccessor, state({ drains: [{ key: 'k' }], health: [] }), /a drain without key and completedAtStart/);
  refused(decodeToSuccessor, state({ drains: [{ key: 'k', completedAtStart: {} }], health: [] }), /a drain without key and completedAtStart/);
  for (const pair of [['dp', '3'], [1, 3], 'dp', null, []]) {
    refused(decodeToSuccessor, state({ drains: [{ key: 'k', completedAtStart: [pair] }], health: [] }), /completedAtStart is not \[id, count\] pairs/);
  }
});

test('health entries with an unknown state or failure reason, or a healthyForMs that is no duration, are refused', () => {
  refused(decodeToSuccessor, state({ drains: [] }), /health is not a list/);
  refused(decodeToSuccessor, state({ drains: [], health: 'healthy' }), /health is not a list/);
  const entry = (fields: Record<string, unknown>) => state({ drains: [], health: [{ ...healthy, ...fields }] });
  refused(decodeToSuccessor, entry({ key: undefined }), /a health entry without key and health/);
  refused(decodeToSuccessor, entry({ health: 'initial' }), /a health entry without key and health/);
  refused(decodeToSuccessor, entry({ health: 'draining' }), /a health entry without key and health/);
  refused(decodeToSuccessor, entry({ healthyForMs: -1 }), /healthyForMs is not a duration/);
  refused(decodeToSuccessor, entry({ healthyForMs: Number.NaN }), /healthyForMs is not a duration/);
  refused(decodeToSuccessor, entry({ healthyForMs: '100' }), /healthyForMs is not a duration/);
  refused(decodeToSuccessor, entry({ healthyForMs: undefined }), /healthyForMs is not a duration/);
  const failing = (failure: unknown) => state({ drains: [], health: [{ ...unhealthy, failure }] });
  refused(decodeToSuccessor, failing({ reason: 'Elb.InternalError' }), /an unknown failure reason/);
  refused(decodeToSuccessor, failing({ reason: 'Target.NotRegistered' }), /an unknown failure reason/);
  refused(decodeToSuccessor, failing({}), /an unknown failure reason/);
  refused(decodeToSuccessor, failing('Target.Timeout'), /an unknown failure reason/);
  refused(decodeToSuccessor, failing(undefined), /an unknown failure reason/);
  // One bad entry refuses the whole state, not just itself.
  refused(decodeToSuccessor, state({ drains: [], health: [healthy, { ...unhealthy, failure: { reason: 'Target.Bogus' } }] }), /an unknown failure reason/);
});

test('a drain or health entry that is null, or not an object, is refused as a protocol error', () => {
  for (const entry of [null, 'k', 3]) {
    refused(decodeToSuccessor, state({ drains: [entry], health: [] }), /handover:state: a drain is not an object/);
    refused(decodeToSuccessor, state({ drains: [], health: [entry] }), /handover:state: a health entry is not an object/);
  }
  refused(decodeToSuccessor, state({ drains: [{ key: 'k', completedAtStart: [] }, null], health: [healthy] }), /a drain is not an object/);
});

test('health that no check settles is refused: unhealthy with an age or without a failure, healthy with a failure or without an age', () => {
  const entry = (fields: Record<string, unknown>) => state({ drains: [], health: [{ ...healthy, ...fields }] });
  refused(decodeToSuccessor, entry({ ...unhealthy, healthyForMs: 1_000 }), /tg\|10\.0\.0\.2\|80 is unhealthy with a healthyForMs and a failure/);
  refused(decodeToSuccessor, entry({ ...unhealthy, failure: null }), /tg\|10\.0\.0\.2\|80 is unhealthy with no healthyForMs and no failure/);
  refused(decodeToSuccessor, entry({ failure: { reason: 'Target.Timeout' } }), /tg\|10\.0\.0\.1\|80 is healthy with a healthyForMs and a failure/);
  refused(decodeToSuccessor, entry({ healthyForMs: null }), /tg\|10\.0\.0\.1\|80 is healthy with no healthyForMs and no failure/);
  // Settled health passes, an age of 0 included.
  assert.equal(decodeToSuccessor(entry({ healthyForMs: 0 })).type, 'handover:state');
});

test('socketsPerAddress, when said, is a count of 1 or more (0 reads as 1); anything else is refused', () => {
  const sockets = (socketsPerAddress: unknown): Record<string, unknown> => ({ type: 'handover:sockets', v, addresses: [], dataPlaneId: 'dp', socketsPerAddress });
  assert.equal((decodeToSuccessor(sockets(0)) as { socketsPerAddress?: number }).socketsPerAddress, 1);
  refused(decodeToSuccessor, sockets(-1), /socketsPerAddress is not a count/);
  refused(decodeToSuccessor, sockets(1.5), /socketsPerAddress is not a count/);
  refused(decodeToSuccessor, sockets('2'), /socketsPerAddress is not a count/);
});
