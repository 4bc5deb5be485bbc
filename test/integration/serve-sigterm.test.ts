/**
 * ebb's own graceful shutdown (issue 2 §7, test 9): SIGTERM to a spawned `ebb serve` while a 2 s
 * request is in flight. The listener stops accepting at once, an idle kept-alive client connection
 * is closed, the in-flight request completes with 200 (and `Connection: close`), and ebb exits 0
 * once it has, not at the shutdown timeout. Health is irrelevant here (fail-open routes the request).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { after, Cleanup, connectionRefused, get, serveConfig, settle, sleep, startBackend, waitFor } from './harness.ts';

/** A raw client connection that made one keep-alive request and now sits idle; tells when ebb closes it. */
async function idleKeepAlive(port: number): Promise<{ closedAt: () => number }> {
  const socket = net.connect(port, '127.0.0.1');
  let closedAt = 0;
  let data = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (data += d));
  socket.on('error', () => undefined);
  socket.on('close', () => (closedAt = Date.now()));
  await new Promise<void>((r) => socket.once('connect', () => r()));
  socket.write('GET / HTTP/1.1\r\nHost: ebb\r\n\r\n');
  if (!(await waitFor(() => /\r\n\r\n[AB]$/.test(data), 2000))) throw new Error(`no keep-alive answer: ${JSON.stringify(data)}`);
  return { closedAt: () => closedAt };
}

test('SIGTERM: the in-flight request completes, new connections are refused, ebb exits 0', { timeout: 30_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startBackend('A', c);
  const B = await startBackend('B', c);
  const s = await serveConfig(c, { targets: [A.port, B.port], delaySeconds: 30, lbAttributes: { 'ebb.shutdown_timeout.seconds': 10 } });

  assert.equal((await get(s.listenerPort, '/')).status, 200);
  const idle = await idleKeepAlive(s.listenerPort);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  c.add(() => agent.destroy());
  const slow = settle(get(s.listenerPort, '/slow?ms=2000', agent));
  assert.ok(await waitFor(() => A.inFlight() + B.inFlight() === 1, 1000), 'the slow request should reach a backend');

  const termAt = Date.now();
  s.ebb.child.kill('SIGTERM');
  await sleep(300);
  assert.equal(A.inFlight() + B.inFlight(), 1, 'the request is still in flight');
  assert.ok(await connectionRefused(s.listenerPort), 'new connections should be refused once ebb is stopping');
  assert.ok(await waitFor(() => idle.closedAt() !== 0, 1000), 'an idle kept-alive client connection should be closed');

  const done = await slow;
  assert.equal(done.error, null, `the in-flight request should complete: ${done.error?.message ?? ''}`);
  assert.equal(done.reply?.status, 200);
  assert.equal(done.reply?.headers.connection, 'close', 'a kept-alive client should be told to close');
  const code = await Promise.race([s.ebb.exited, after(5000, 'still running')]);
  const exitedAfter = Date.now() - termAt;
  t.diagnostic(`request done ${done.at - termAt} ms after SIGTERM; idle connection closed after ${idle.closedAt() - termAt} ms; ebb exited (${String(code)}) after ${exitedAfter} ms`);
  assert.equal(code, 0, `ebb should exit 0: ${s.ebb.stderr()}`);
  assert.ok(exitedAfter < 4000, `ebb should exit once the work is done, not at the 10 s shutdown timeout (${exitedAfter} ms)`);
  assert.ok(s.ebb.logs.some((l) => l['event'] === 'ebb:stopped'));
});
