/**
 * The TCP data plane with real sockets: bytes both ways with back-pressure, half-close both ways,
 * resets passed on, the idle timeout, no target and an unreachable one, the PROXY v2 header, and
 * what each flow publishes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { test } from 'node:test';
import { Cleanup } from '../support/cleanup.ts';
import { sleep, waitFor, within } from '../support/timing.ts';
import { recordFlows, startTcpBackend, startTcpPlane, tcpConnect, tcpKey, tcpSnapshot, TCP_GROUP, TCP_LISTENER } from './tcp-helpers.ts';

test('bytes go both ways and the flow closes when both sides have ended; its messages carry every field', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startTcpBackend(c, 'A');
  const { dp, port } = await startTcpPlane(c, tcpSnapshot([A.port]));
  const flows = recordFlows(c, dp.id);
  const before = Date.now();
  const client = await tcpConnect(c, port);
  client.socket.write('hello ');
  assert.ok(await waitFor(() => client.text() === 'hello '));
  client.socket.write('world');
  assert.ok(await waitFor(() => client.text() === 'hello world'));
  client.socket.end();
  await within(client.closed, 2000);
  assert.deepEqual(
    client.events.map((e) => e.what),
    ['end', 'close'],
  );
  assert.ok(await waitFor(() => flows.ended.length === 1));
  assert.deepEqual(flows.opened, [{ dataPlaneId: dp.id, listenerArn: TCP_LISTENER, targetGroupArn: TCP_GROUP, targetKey: tcpKey(A.port) }]);
  const m = flows.ended[0];
  assert.ok(m !== undefined);
  assert.equal(m.dataPlaneId, dp.id);
  assert.equal(m.listenerArn, TCP_LISTENER);
  assert.equal(m.listenerPort, port);
  assert.equal(m.protocol, 'tcp');
  assert.equal(m.targetGroupArn, TCP_GROUP);
  assert.equal(m.targetKey, tcpKey(A.port));
  assert.equal(m.target, `127.0.0.1:${A.port}`);
  assert.equal(m.clientAddress, '127.0.0.1');
  assert.equal(m.clientPort, client.localPort);
  assert.ok(m.startTime >= before - 5 && m.startTime <= Date.now(), 'startTime is the wall clock at accept');
  assert.ok(m.connectMs >= 0 && m.connectMs < 1000);
  assert.ok(m.durationMs >= m.connectMs);
  assert.equal(m.receivedBytes, 11);
  assert.equal(m.sentBytes, 11);
  assert.equal(m.reason, 'closed');
  assert.equal(m.resetByEbb, false);
  assert.equal(m.tls, null);
});

test('half-close: the client ends its side and still gets the reply the target sends after it', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  // The target answers only once the client has ended: with how many bytes it got.
  const A = await startTcpBackend(c, 'A', (s) => {
    let n = 0;
    s.on('data', (b: Buffer) => (n += b.length));
    s.on('end', () => setTimeout(() => s.end(`got ${n} bytes`), 100));
  });
  const { port } = await startTcpPlane(c, tcpSnapshot([A.port]));
  const client = await tcpConnect(c, port);
  client.socket.end('x'.repeat(1000));
  await within(client.closed, 2000);
  assert.equal(client.text(), 'got 1000 bytes');
  assert.deepEqual(
    client.events.map((e) => e.what),
    ['end', 'close'],
  );
});

test('half-close the other way: the target ends first and still gets what the client sends after', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const targetSaw: string[] = [];
  const A = await startTcpBackend(c, 'A', (s) => {
    s.end('bye');
    let got = '';
    s.on('data', (b: Buffer) => (got += b.toString('latin1')));
    s.on('end', () => targetSaw.push(got));
  });
  const { port } = await startTcpPlane(c, tcpSnapshot([A.port]));
  const client = await tcpConnect(c, port);
  assert.ok(await waitFor(() => client.saw('end')));
  assert.equal(client.text(), 'bye');
  await sleep(50);
  assert.ok(!client.saw('close'), 'the client side is still open');
  client.socket.end('after the target ended');
  await within(client.closed, 2000);
  assert.ok(await waitFor(() => targetSaw.length === 1));
  assert.deepEqual(targetSaw, ['after the target ended']);
});

test('a large transfer each way with a slow reader: back-pressure holds the writer, every byte arrives', { timeout: 30_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  // Several times what the socket buffers on the way hold (about 7 MiB here), so a writer that is not
  // held back would be done long before the reader starts.
  const TOTAL = 48 * 1024 * 1024;
  const CHUNK = Buffer.alloc(64 * 1024);
  for (let i = 0; i < CHUNK.length; i++) CHUNK[i] = (i * 7 + 3) & 0xff;
  const expected = createHash('sha256');
  for (let n = 0; n < TOTAL; n += CHUNK.length) expected.update(CHUNK);
  const digest = expected.digest('hex');

  // Down: the target writes 48 MiB as fast as the flow lets it; the client does not read for 300 ms.
  let written = 0;
  const down = await startTcpBackend(c, 'down', (s) => {
    const pump = (): void => {
      while (written < TOTAL) {
        written += CHUNK.length;
        if (!s.write(CHUNK)) {
          s.once('drain', pump);
          return;
        }
      }
      s.end();
    };
    pump();
  });
  const { dp, port } = await startTcpPlane(c, tcpSnapshot([down.port]));
  const client = net.connect({ port, host: '127.0.0.1' });
  c.add(() => client.destroy());
  client.pause();
  await sleep(300);
  const whilePaused = written;
  assert.ok(whilePaused < TOTAL / 2, `the target could hand over only what the buffers hold while the client did not read (${whilePaused} bytes)`);
  const hash = createHash('sha256');
  let got = 0;
  const done = new Promise<void>((resolve) => client.on('end', resolve));
  client.on('data', (b: Buffer) => {
    hash.update(b);
    got += b.length;
  });
  client.resume();
  assert.notEqual(await within(done, 20_000), 'timeout');
  assert.equal(got, TOTAL);
  assert.equal(hash.digest('hex'), digest);
  client.end();

  // Up: the client writes 48 MiB to a target that does not read for 400 ms.
  let targetGot = 0;
  const upHash = createHash('sha256');
  let upDone: () => void = () => {};
  const upEnded = new Promise<void>((resolve) => (upDone = resolve));
  const up = await startTcpBackend(c, 'up', (s) => {
    s.pause();
    setTimeout(() => {
      s.on('data', (b: Buffer) => {
        upHash.update(b);
        targetGot += b.length;
      });
      s.on('end', () => {
        s.end();
        upDone();
      });
      s.resume();
    }, 400);
  });
  await dp.apply(tcpSnapshot([up.port], { port, version: 2 }));
  const writer = net.connect({ port, host: '127.0.0.1' });
  c.add(() => writer.destroy());
  writer.on('data', () => {});
  let sent = 0;
  const pump = (): void => {
    while (sent < TOTAL) {
      sent += CHUNK.length;
      if (!writer.write(CHUNK)) {
        writer.once('drain', pump);
        return;
      }
    }
    writer.end();
  };
  writer.once('connect', pump);
  await sleep(300);
  assert.ok(sent < TOTAL / 2, `the client could hand over only what the buffers hold while the target did not read (${sent} bytes)`);
  assert.notEqual(await within(upEnded, 20_000), 'timeout');
  assert.equal(targetGot, TOTAL);
  assert.equal(upHash.digest('hex'), digest);
});

test('a client reset resets the target, and a target reset resets the client', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const targetErrors: string[] = [];
  const A = await startTcpBackend(c, 'A', (s) => {
    s.on('error', (e: NodeJS.ErrnoException) => targetErrors.push(e.code ?? ''));
    s.on('data', (b: Buffer) => {
      if (b.toString() === 'reset me') s.resetAndDestroy();
      else s.write(b);
    });
  });
  const { dp, port } = await startTcpPlane(c, tcpSnapshot([A.port]));
  const flows = recordFlows(c, dp.id);

  const c1 = await tcpConnect(c, port);
  c1.socket.write('one');
  assert.ok(await waitFor(() => c1.text() === 'one'));
  c1.socket.resetAndDestroy();
  assert.ok(await waitFor(() => targetErrors.includes('ECONNRESET')), 'the target saw a reset');
  assert.ok(await waitFor(() => flows.ended.length === 1));
  assert.equal(flows.ended[0]?.reason, 'client_reset');
  assert.equal(flows.ended[0]?.resetByEbb, false);

  const c2 = await tcpConnect(c, port);
  c2.socket.write('reset me');
  await within(c2.closed, 2000);
  assert.ok(c2.saw('error:ECONNRESET'), `the client saw a reset: ${JSON.stringify(c2.events)}`);
  assert.ok(!c2.saw('end'), 'no FIN before it');
  assert.ok(await waitFor(() => flows.ended.length === 2));
  assert.equal(flows.ended[1]?.reason, 'target_reset');
  assert.equal(flows.ended[1]?.resetByEbb, false);
});

test('the idle timeout resets both sides when no byte moved either way', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const targetErrors: string[] = [];
  const A = await startTcpBackend(c, 'A', (s) => {
    s.on('error', (e: NodeJS.ErrnoException) => targetErrors.push(e.code ?? ''));
    s.on('data', (b: Buffer) => s.write(b));
  });
  const { dp, port } = await startTcpPlane(c, tcpSnapshot([A.port], { settings: { tcpIdleTimeoutMs: 300 } }));
  const flows = recordFlows(c, dp.id);
  const client = await tcpConnect(c, port);
  // Bytes every 100 ms for 600 ms keep it open past the timeout.
  const start = Date.now();
  let quietFrom = 0;
  for (let i = 0; i < 6; i++) {
    await sleep(100);
    quietFrom = Date.now();
    client.socket.write('.');
  }
  assert.ok(!client.saw('close'), 'a flow that moves stays open');
  await within(client.closed, 2000);
  const closedAt = client.events.find((e) => e.what === 'close')?.at ?? 0;
  assert.ok(closedAt - quietFrom >= 250 && closedAt - quietFrom < 800, `closed ${closedAt - quietFrom} ms after the last byte`);
  assert.equal(client.text(), '......');
  assert.ok(client.saw('error:ECONNRESET'), `the client got a reset: ${JSON.stringify(client.events)}`);
  assert.ok(await waitFor(() => targetErrors.includes('ECONNRESET')), 'the target got a reset');
  assert.ok(await waitFor(() => flows.ended.length === 1));
  const m = flows.ended[0];
  assert.equal(m?.reason, 'idle_timeout');
  assert.equal(m?.resetByEbb, true);
  assert.ok((m?.durationMs ?? 0) >= Date.now() - start - 1000);
});

test('no target: the client is reset; an unreachable target: the client is reset and ebb says why', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const logs: object[] = [];
  const { dp, port } = await startTcpPlane(c, tcpSnapshot([]), {}, logs);
  const flows = recordFlows(c, dp.id);
  const c1 = await tcpConnect(c, port);
  await within(c1.closed, 2000);
  assert.ok(c1.saw('error:ECONNRESET'), JSON.stringify(c1.events));
  assert.ok(await waitFor(() => flows.ended.length === 1));
  assert.equal(flows.opened.length, 0, 'no flow was given a target');
  assert.deepEqual(
    { reason: flows.ended[0]?.reason, resetByEbb: flows.ended[0]?.resetByEbb, target: flows.ended[0]?.target, targetKey: flows.ended[0]?.targetKey, connectMs: flows.ended[0]?.connectMs },
    { reason: 'no_target', resetByEbb: true, target: null, targetKey: null, connectMs: -1 },
  );

  // A port nobody listens on.
  const gone = net.createServer();
  await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
  const deadPort = (gone.address() as net.AddressInfo).port;
  await new Promise<void>((r) => gone.close(() => r()));
  await dp.apply(tcpSnapshot([deadPort], { port, version: 2 }));
  const c2 = await tcpConnect(c, port);
  await within(c2.closed, 2000);
  assert.ok(c2.saw('error:ECONNRESET'), JSON.stringify(c2.events));
  assert.ok(await waitFor(() => flows.ended.length === 2));
  assert.equal(flows.ended[1]?.reason, 'connect_failed');
  assert.equal(flows.ended[1]?.targetKey, tcpKey(deadPort));
  assert.equal(flows.ended[1]?.connectMs, -1);
  assert.ok(logs.some((l) => (l as { msg?: string; error?: string }).msg === 'flow could not reach its target' && (l as { error?: string }).error === 'ECONNREFUSED'));
  assert.equal(dp.activity(tcpKey(deadPort)).tunnels, 0, 'the failed flow is no longer counted');
});

test('PROXY v2: the target reads the client address and port, and the listener address, before the client bytes', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const seen: Array<{ family: number; src: string; srcPort: number; dst: string; dstPort: number; rest: string }> = [];
  const A = await startTcpBackend(c, 'A', (s) => {
    let buf = Buffer.alloc(0);
    s.on('data', (b: Buffer) => {
      buf = Buffer.concat([buf, b]);
      // proxy-protocol.txt §2.2: 12-byte signature, version/command, family, length, then the addresses.
      if (buf.length < 16 + 12 + 5) return;
      const signature = buf.subarray(0, 12).toString('hex');
      assert.equal(signature, '0d0a0d0a000d0a515549540a');
      assert.equal(buf[12], 0x21, 'version 2, PROXY');
      assert.equal(buf.readUInt16BE(14), 12);
      seen.push({
        family: buf[13] as number,
        src: [...buf.subarray(16, 20)].join('.'),
        dst: [...buf.subarray(20, 24)].join('.'),
        srcPort: buf.readUInt16BE(24),
        dstPort: buf.readUInt16BE(26),
        rest: buf.subarray(28).toString(),
      });
      s.end('ok');
    });
  });
  const { port } = await startTcpPlane(c, tcpSnapshot([A.port], { proxyProtocolV2: true }));
  const client = await tcpConnect(c, port);
  client.socket.write('hello');
  assert.ok(await waitFor(() => client.saw('end')));
  assert.equal(client.text(), 'ok');
  assert.deepEqual(seen, [{ family: 0x11, src: '127.0.0.1', srcPort: client.localPort, dst: '127.0.0.1', dstPort: port, rest: 'hello' }]);
});
