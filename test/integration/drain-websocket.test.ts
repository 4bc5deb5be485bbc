/**
 * WebSocket tunnels while draining (issue 2 §7, test 4): a tunnel to a draining target stays open
 * and usable until the deadline, then is closed (politely: a 1001 close frame). Fail-open stands in
 * for health (the test ends inside the first 5 s, before any target can be healthy).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { Cleanup, get, sleep, startBackend, startInProcess, waitFor, type Backend } from './harness.ts';

function open(port: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** A tunnel through ebb that landed on `a` (round robin: at most one extra try with two targets). */
async function tunnelTo(port: number, a: Backend): Promise<WebSocket> {
  for (let i = 0; i < 4; i++) {
    const before = a.wsAccepted;
    const ws = await open(port);
    await sleep(50);
    if (a.wsAccepted > before) return ws;
    ws.terminate();
  }
  throw new Error(`no tunnel reached ${a.name}`);
}

test('a WebSocket to a draining target keeps working until the deadline, then is closed with 1001', { timeout: 30_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startBackend('A', c);
  const B = await startBackend('B', c);
  const e = await startInProcess(c, { backends: [A, B], delaySeconds: 30 });

  const ws = await tunnelTo(e.listenerPort, A);
  c.add(() => ws.terminate());
  const echoes: Array<{ at: number; text: string }> = [];
  ws.on('message', (data) => echoes.push({ at: Date.now(), text: String(data) }));
  let closed: { at: number; code: number; reason: string } | null = null;
  ws.on('close', (code, reason) => (closed = { at: Date.now(), code, reason: String(reason) }));
  ws.on('error', () => undefined);

  ws.send('before');
  assert.ok(await waitFor(() => echoes.length === 1, 1000));
  assert.equal(echoes[0]?.text, 'A:before');

  // A per-call delay of 2 s (the group's is 30 s).
  const deregisteredAt = Date.now();
  await e.ebb.control.deregisterTargets(e.tgArn, [{ id: '127.0.0.1', port: A.port }], { timeoutSeconds: 2 });
  const during = e.health(A.port);
  assert.equal(during.health.state, 'draining');
  assert.equal(during.drain?.tunnelsOpen, 1, 'the drain progress should count the open tunnel');

  const pinger = setInterval(() => {
    if (ws.readyState === WebSocket.OPEN) ws.send(`m${Date.now() - deregisteredAt}`);
  }, 100);
  c.add(() => clearInterval(pinger));
  const http = await get(e.listenerPort, '/');
  assert.equal(http.backend, 'B', 'new requests go to B while the tunnel to A lives on');

  // The close frame puts the client in CLOSING; the TCP close ('close' event) follows.
  assert.ok(await waitFor(() => ws.readyState !== WebSocket.OPEN, 4000), 'the tunnel should be closed at the deadline');
  const closeFrameAt = Date.now();
  assert.ok(await waitFor(() => closed !== null, 2000), 'the connection should be closed after the close frame');
  clearInterval(pinger);
  const end = closed as unknown as { at: number; code: number; reason: string };
  const after = echoes.filter((m) => m.at > deregisteredAt);
  const lastEcho = after.at(-1)?.at ?? deregisteredAt;
  t.diagnostic(
    `${after.length} echoes after the deregistration, the last at ${lastEcho - deregisteredAt} ms; close frame at ${closeFrameAt - deregisteredAt} ms, connection closed at ${end.at - deregisteredAt} ms with ${end.code} "${end.reason}"`,
  );
  assert.ok(after.length >= 12, `messages should keep flowing while A drains; got ${after.length} echoes`);
  assert.ok(lastEcho - deregisteredAt >= 1700, 'echoes should continue until close to the deadline');
  const frameAfter = closeFrameAt - deregisteredAt;
  assert.ok(frameAfter >= 1900 && frameAfter <= 2400, `the close frame should come at about 2 s; came at ${frameAfter} ms`);
  assert.ok(end.at - deregisteredAt <= 2900, `the connection should be closed soon after the close frame; was at ${end.at - deregisteredAt} ms`);
  assert.equal(end.code, 1001, 'the close should be a 1001 "going away" frame');

  assert.ok(await waitFor(() => e.health(A.port).health.state === 'unused', 1000));
  const record = e.ebb.control.drainRecords().find((r) => r.port === A.port);
  assert.equal(record?.outcome, 'deadline');
  assert.equal(record?.tunnelsClosed, 1);
  assert.ok(await waitFor(() => A.wsOpen === 0, 1000), 'the backend side of the tunnel should be closed too');
});
