/**
 * A worker's client connections as ebb's own process sees them through its `RemoteDataPlane`: the
 * connection messages it relays, and `ebb:connection:lost` for their process when the worker is gone
 * (a worker cannot say that itself). The rest of RemoteDataPlane is in remote-data-plane.test.ts.
 */
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { test, type TestContext } from 'node:test';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { CHANNEL_NAMES } from '../dataplane/channels.ts';
import { memoryLinkPair, type Link } from './link.ts';
import { RemoteDataPlane } from './remote-data-plane.ts';
import { MAX_CONNECTION_PIDS } from './relayed-connections.ts';

const LISTENER = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/1111111111111111/aaaaaaaaaaaaaaaa';

/** Lets the memory link deliver what was sent (each hop is one turn of the event loop). */
async function turns(n = 3): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Records what is published on a channel of this process until the test ends. */
function listen(t: TestContext, name: string): unknown[] {
  const seen: unknown[] = [];
  const subscriber = (message: unknown): void => void seen.push(message);
  diagnosticsChannel.subscribe(name, subscriber);
  t.after(() => diagnosticsChannel.unsubscribe(name, subscriber));
  return seen;
}

function setup(): { plane: RemoteDataPlane; connect: () => Link } {
  const plane = new RemoteDataPlane({ id: 'dp-1', clock: new FakeClock(), log: () => {}, reportIntervalMs: 50 });
  const connect = (): Link => {
    const [control, worker] = memoryLinkPair();
    void plane.attach(control);
    return worker;
  };
  return { plane, connect };
}

const connection = (pid: number, open: number): object => ({ pid, listenerArn: LISTENER, listenerPort: 8080, open });

test("a detached worker's connections are said lost, by the pid its connection messages carried; a worker that relayed none gets none", async (t) => {
  const opened = listen(t, CHANNEL_NAMES.connectionOpen);
  const lost = listen(t, CHANNEL_NAMES.connectionLost);
  const { plane, connect } = setup();
  const worker = connect();
  const events = [
    [CHANNEL_NAMES.connectionOpen, connection(4242, 1)],
    [CHANNEL_NAMES.connectionOpen, connection(4242, 2)],
    [CHANNEL_NAMES.connectionClose, connection(4242, 1)],
    [CHANNEL_NAMES.connectionCount, connection(4242, 1)],
  ];
  assert.equal(worker.send({ type: 'telemetry', events, dropped: 0 }), true);
  await turns();
  assert.equal(opened.length, 2, 'relayed as they came');
  assert.deepEqual(lost, [], 'nothing is lost while the worker is there');

  const { connectionsLost } = plane.detach('the worker exited (SIGKILL)');
  assert.deepEqual(lost, [{ pid: 4242 }], 'once, whatever the number of its messages');
  assert.equal(connectionsLost, 1, 'the client connections its last message said were open are counted lost');

  // The slot's next worker relays no connection message: its detach says nothing lost, not the pid before it.
  connect();
  await turns();
  plane.detach('the worker exited (SIGKILL)');
  assert.deepEqual(lost, [{ pid: 4242 }]);
});

test("a worker's connection messages are relayed for at most a few pids, each a number; it cannot say a process is lost itself", async (t) => {
  const stated = listen(t, CHANNEL_NAMES.connectionCount);
  const lost = listen(t, CHANNEL_NAMES.connectionLost);
  const { plane, connect } = setup();
  const worker = connect();
  const pids = Array.from({ length: MAX_CONNECTION_PIDS + 1 }, (_, i) => 5000 + i);
  const events: Array<readonly [string, object]> = pids.map((pid) => [CHANNEL_NAMES.connectionCount, connection(pid, 1)]);
  events.push([CHANNEL_NAMES.connectionCount, { listenerArn: LISTENER, listenerPort: 8080, open: 1 }]);
  events.push([CHANNEL_NAMES.connectionLost, { pid: 5000 }]);
  // A refusal states no open count: it is relayed whatever its pid, and its pid is not kept.
  events.push([CHANNEL_NAMES.connectionRefused, { pid: 6000, listenerArn: LISTENER, listenerPort: 8080 }]);
  assert.equal(worker.send({ type: 'telemetry', events, dropped: 0 }), true);
  await turns();
  assert.deepEqual(
    stated.map((m) => (m as { pid: number }).pid),
    pids.slice(0, MAX_CONNECTION_PIDS),
    'past the bound, and without a pid, refused: no count reaches the metrics that a detach could not take back',
  );
  assert.equal(plane.telemetryRefused, 3);
  assert.deepEqual(lost, [], "the worker's own `lost` is not published");

  plane.detach('the worker exited (SIGKILL)');
  assert.deepEqual(lost, pids.slice(0, MAX_CONNECTION_PIDS).map((pid) => ({ pid })));
});
