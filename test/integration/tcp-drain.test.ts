/**
 * TCP flows while their target drains and while ebb closes: a flow outlives its target's removal from
 * the snapshot and the drain ends when it closes; a drain deadline closes it politely (FIN, then RST
 * after the grace); a removed listener and ebb's own close let flows run to their deadline.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Cleanup } from '../support/cleanup.ts';
import { connectOutcome } from '../support/ports.ts';
import { sleep, waitFor, within } from '../support/timing.ts';
import { pinnedTcp, recordFlows, startTcpBackend, startTcpPlane, tcpConnect, tcpKey, tcpSnapshot, type TcpClient } from './tcp-helpers.ts';

/** Writes `text` and waits for its echo; returns whether it came back. */
async function echoes(client: TcpClient, text: string): Promise<boolean> {
  const before = client.text();
  client.socket.write(text);
  return waitFor(() => client.text() === before + text, 1000);
}

test('a flow to A outlives A leaving the snapshot and keeps exchanging bytes; new flows go to B; A is idle when it closes', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startTcpBackend(c, 'A');
  const B = await startTcpBackend(c, 'B');
  const snap = tcpSnapshot([A.port, B.port]);
  const { dp, port } = await startTcpPlane(c, snap);
  const idle: string[] = [];
  dp.onIdle((key) => idle.push(key));

  const toA = await tcpConnect(c, port);
  assert.ok(await echoes(toA, 'first'));
  assert.equal(A.sockets.length, 1, 'round robin starts with A');
  assert.equal(dp.activity(tcpKey(A.port)).tunnels, 1, 'the flow counts as open work on A');

  await dp.apply(pinnedTcp(tcpSnapshot([B.port], { version: 2 }), port));
  assert.equal(idle.length, 0, 'A is not idle while its flow is open');
  for (let i = 0; i < 5; i++) {
    assert.ok(await echoes(toA, `after removal ${i}`), 'the flow to A still carries bytes both ways');
    const toB = await tcpConnect(c, port);
    assert.ok(await echoes(toB, `new ${i}`));
    toB.socket.end();
  }
  assert.equal(A.sockets.length, 1, 'no new flow reached A');
  assert.equal(B.sockets.length, 5, 'every new flow went to B');
  assert.equal(dp.activity(tcpKey(A.port)).tunnels, 1);

  toA.socket.end();
  assert.notEqual(await within(toA.closed, 2000), 'timeout');
  assert.ok(await waitFor(() => idle.includes(tcpKey(A.port))), 'A was reported idle when its last flow closed');
  assert.equal(dp.activity(tcpKey(A.port)).tunnels, 0);
  assert.ok(!idle.includes(tcpKey(B.port)));
});

test('terminate(A): FIN to both sides first; a client that does not answer is reset after the grace', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const targetSaw: string[] = [];
  // A target that answers ebb's FIN with its own, and one that does nothing.
  const A = await startTcpBackend(c, 'A', (s) => {
    s.on('data', (b: Buffer) => s.write(b));
    s.on('end', () => {
      targetSaw.push('end');
      s.end();
    });
  });
  const B = await startTcpBackend(c, 'B');
  const { dp, port } = await startTcpPlane(c, tcpSnapshot([A.port, B.port]), { tunnelCloseGraceMs: 300 });
  const flows = recordFlows(c, dp.id);
  const toA = await tcpConnect(c, port);
  assert.ok(await echoes(toA, 'x'));
  const toB = await tcpConnect(c, port);
  assert.ok(await echoes(toB, 'y'));
  await dp.apply(pinnedTcp(tcpSnapshot([B.port], { version: 2 }), port));

  const started = Date.now();
  const result = dp.terminate(tcpKey(A.port));
  assert.ok(await waitFor(() => toA.saw('end'), 500), 'the client got a FIN');
  assert.ok(await waitFor(() => targetSaw.includes('end'), 500), 'the target got a FIN');
  const finAt = toA.events.find((e) => e.what === 'end')?.at ?? 0;
  assert.ok(finAt - started < 150, `the FIN came at once (${finAt - started} ms)`);
  assert.ok(!toA.saw('close'), 'the client is not cut while the grace runs');
  assert.deepEqual(await within(result, 2000), { requestsCut: 0, tunnelsClosed: 1, connectionsClosed: 2 });
  const resetAt = Date.now() - started;
  assert.ok(resetAt >= 280, `reset after the grace (${resetAt} ms)`);
  // The client's read side had ended, so it learns of the reset when it next writes: the kernel
  // refuses the write of a reset connection (EPIPE) or the reset comes back (ECONNRESET).
  toA.socket.write('anyone there?');
  await within(toA.closed, 1000);
  const seen = toA.events.map((e) => e.what);
  assert.equal(seen[0], 'end', `FIN first: ${JSON.stringify(seen)}`);
  assert.ok(seen[1] === 'error:EPIPE' || seen[1] === 'error:ECONNRESET', `then the reset: ${JSON.stringify(seen)}`);
  assert.ok(await waitFor(() => flows.ended.length === 1));
  assert.equal(flows.ended[0]?.reason, 'terminated');
  assert.equal(flows.ended[0]?.resetByEbb, true, 'ebb sent the reset');
  assert.ok(await echoes(toB, 'B untouched'));
});

test('terminate(A): a client that answers the FIN closes cleanly before the grace, not reset', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startTcpBackend(c, 'A');
  const { dp, port } = await startTcpPlane(c, tcpSnapshot([A.port]), { tunnelCloseGraceMs: 1000 });
  const flows = recordFlows(c, dp.id);
  const toA = await tcpConnect(c, port);
  assert.ok(await echoes(toA, 'x'));
  toA.socket.on('end', () => toA.socket.end());
  const started = Date.now();
  await within(dp.terminate(tcpKey(A.port)), 2000);
  assert.ok(Date.now() - started < 500, 'the flow ended as soon as both sides had closed');
  await within(toA.closed, 500);
  assert.deepEqual(
    toA.events.map((e) => e.what),
    ['end', 'close'],
  );
  assert.ok(await waitFor(() => flows.ended.length === 1));
  assert.equal(flows.ended[0]?.reason, 'terminated');
  assert.equal(flows.ended[0]?.resetByEbb, false);
});

test('close(deadline): no new flow, open ones run to the deadline, then FIN and RST as shutdown', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startTcpBackend(c, 'A', (s) => s.on('data', (b: Buffer) => s.write(b))); // ignores FIN
  const { dp, port } = await startTcpPlane(c, tcpSnapshot([A.port]), { tunnelCloseGraceMs: 200 });
  const flows = recordFlows(c, dp.id);
  const client = await tcpConnect(c, port);
  assert.ok(await echoes(client, 'before'));
  const started = Date.now();
  const closing = dp.close(500);
  assert.equal(await connectOutcome(port), 'ECONNREFUSED', 'the listener stopped accepting');
  await sleep(200);
  assert.ok(await echoes(client, 'during the close'), 'the open flow still works');
  assert.notEqual(await within(closing, 3000), 'timeout');
  const took = Date.now() - started;
  assert.ok(took >= 450 && took < 1500, `closed after the deadline and the grace (${took} ms)`);
  await within(client.closed, 500);
  assert.equal(client.events[0]?.what, 'end', `FIN first: ${JSON.stringify(client.events)}`);
  assert.ok(await waitFor(() => flows.ended.length === 1));
  assert.equal(flows.ended[0]?.reason, 'shutdown');
  assert.equal(flows.ended[0]?.resetByEbb, true);
});

test('a listener removed from the snapshot: no new flow, open ones live until its close timeout', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startTcpBackend(c, 'A');
  const { dp, port } = await startTcpPlane(c, tcpSnapshot([A.port]), { listenerCloseTimeoutMs: 400, tunnelCloseGraceMs: 200 });
  const flows = recordFlows(c, dp.id);
  const client = await tcpConnect(c, port);
  assert.ok(await echoes(client, 'before'));
  client.socket.on('end', () => client.socket.end()); // this client answers a FIN
  const started = Date.now();
  await dp.apply(tcpSnapshot([A.port], { noListener: true, version: 2 }));
  assert.equal(await connectOutcome(port), 'ECONNREFUSED');
  assert.ok(await echoes(client, 'still open'));
  await within(client.closed, 2000);
  const took = Date.now() - started;
  assert.ok(took >= 380 && took < 700, `closed at the listener's close timeout (${took} ms)`);
  assert.deepEqual(
    client.events.map((e) => e.what),
    ['end', 'close'],
  );
  assert.ok(await waitFor(() => flows.ended.length === 1));
  assert.equal(flows.ended[0]?.reason, 'shutdown');
  assert.equal(flows.ended[0]?.resetByEbb, false, 'the client answered the FIN: no reset');
});
