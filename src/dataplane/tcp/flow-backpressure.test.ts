/**
 * Back-pressure through a real TCP listener, with flows reading and writing their sockets' handles
 * past net.Socket (native-streams.ts): a client or a target that reads slowly gets every byte whole
 * and in order, ebb stops reading the other side while it reads nothing (ebb's memory stays flat) and
 * reading resumes each time it reads again; a FIN, a reset, the idle timeout and terminate while a
 * write is held; a TLS client, whose side goes through net.Socket. Then a held write (DirectWriter)
 * on its own: what net.Socket sends after it, and its chunk's memory. Flows whose socket cannot be
 * reset run in a child process (flow-backpressure.test-child.ts).
 */
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { after, test } from 'node:test';
import tls from 'node:tls';
import v8 from 'node:v8';
import vm from 'node:vm';
import { tlsPolicySettings } from '../../domain/tls-policies.ts';
import type { RoutingSnapshot } from '../../domain/routing-snapshot.ts';
import { leafCert, testCa } from '../../../test/support/certs.ts';
import { Cleanup } from '../../../test/support/cleanup.ts';
import { sleep, waitFor, within } from '../../../test/support/timing.ts';
import { recordFlows, startTcpBackend, startTcpPlane, tcpConnect, tcpKey, tcpSnapshot } from '../../../test/integration/tcp-helpers.ts';
import { DirectWriter } from './direct-reads.ts';
import type { ClosedFlow, Scenario } from './flow-backpressure.test-child.ts';

const MiB = 1024 * 1024;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Bytes in ArrayBuffers still reachable: what ebb (and the test) hold outside the kernel. */
function heldBuffers(): number {
  gc();
  return process.memoryUsage().arrayBuffers;
}

/** `size` bytes, each 4-byte word its own offset: a byte lost, repeated or moved shows where. */
function stamped(size: number): Buffer {
  const b = Buffer.allocUnsafeSlow(size);
  for (let i = 0; i + 4 <= size; i += 4) b.writeUInt32BE(i, i);
  return b;
}

/** A stream's bytes checked against `expected` as they come, without keeping them. */
class InOrder {
  received = 0;
  firstWrongAt = -1;
  constructor(readonly expected: Buffer) {}
  take(b: Buffer): void {
    if (this.firstWrongAt === -1 && !b.equals(this.expected.subarray(this.received, this.received + b.length))) this.firstWrongAt = this.received;
    this.received += b.length;
  }
}

/** Writes `data` to `s` in 64 KiB pieces as fast as `s` takes them; `progress.written` says how far; `then` once all is handed over. */
function pump(s: net.Socket, data: Buffer, progress: { written: number }, then: () => void = () => {}): void {
  const go = (): void => {
    while (progress.written < data.length) {
      const piece = data.subarray(progress.written, progress.written + 64 * 1024);
      progress.written += piece.length;
      if (!s.write(piece)) {
        s.once('drain', go);
        return;
      }
    }
    then();
  };
  go();
}

/** Resolves once `progress.written` has not moved for 100 ms (the buffers on the way are full); false if it keeps moving. */
function heldBack(progress: { written: number }, ms = 4000): Promise<boolean> {
  return waitFor(async () => {
    const before = progress.written;
    await sleep(100);
    return before > 0 && progress.written === before;
  }, ms);
}

/** Reads `s` in bursts, giving each read to `take`: a pause of a few ms after each `every` bytes, so ebb's writer is held and released again and again. */
function readInBursts(s: net.Socket, take: (b: Buffer) => void, every = MiB): void {
  let received = 0;
  let nextPause = every;
  s.on('data', (b: Buffer) => {
    take(b);
    received += b.length;
    if (received >= nextPause) {
      nextPause = received + every;
      s.pause();
      setTimeout(() => s.resume(), 3);
    }
  });
  s.resume();
}

/** A target on 127.0.0.1 that reads nothing until told (its connections start paused); resolves with its port. */
async function startQuietTarget(c: Cleanup, onConnection: (s: net.Socket) => void): Promise<number> {
  const sockets: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => {
    sockets.push(s);
    onConnection(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  c.add(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as net.AddressInfo).port;
}

/** Resolves when `s` has closed (from now on: call it as the socket is made). */
function closeOf(s: net.Socket): Promise<void> {
  return new Promise((resolve) => s.once('close', () => resolve()));
}

/**
 * Whether `s` closes with a reset once it reads and writes again. A client that was reading nothing
 * (its window closed) may not see ebb's RST when it comes; the kernel answers its next segment with
 * one, as the drain tests find.
 */
async function learnsOfReset(s: net.Socket, closed: Promise<void>, errors: readonly string[]): Promise<boolean> {
  s.resume();
  await sleep(50);
  if (!s.destroyed) s.write('anyone there?');
  await within(closed, 2000);
  return errors.length === 1 && ['ECONNRESET', 'EPIPE'].includes(errors[0] ?? '');
}

// More than the kernel's buffers on the way hold (two sockets each way, about 8 MiB here), so a stalled reader stalls the writer.
const TOTAL = 48 * MiB;
const DATA = stamped(TOTAL);

test('a client that reads slowly: the target is held back while it reads nothing, ebb holds no more than a few reads, every byte arrives in order, then the half-close passes back', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const progress = { written: 0 };
  const A = await startTcpBackend(c, 'A', (s) => pump(s, DATA, progress, () => s.end()));
  const { dp, port } = await startTcpPlane(c, tcpSnapshot([A.port]));
  const flows = recordFlows(c, dp.id);
  const baseline = heldBuffers();
  const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  c.add(() => client.destroy());
  client.pause();
  assert.ok(await heldBack(progress), `the target was held back (${progress.written} bytes handed over)`);
  const stalledAt = progress.written;
  assert.ok(stalledAt < TOTAL, `stalled at ${stalledAt} of ${TOTAL}`);
  const held = heldBuffers() - baseline;
  assert.ok(held < MiB, `ebb holds ${held} bytes while the client reads nothing`);
  await sleep(150);
  assert.equal(progress.written, stalledAt, 'nothing more is read from the target while the client reads nothing');

  const check = new InOrder(DATA);
  const ended = once(client, 'end');
  readInBursts(client, (b) => check.take(b));
  assert.notEqual(await within(ended, 8000), 'timeout', `the whole stream and its FIN arrived (${check.received} bytes)`);
  assert.equal(check.firstWrongAt, -1, `bytes out of order from ${check.firstWrongAt}`);
  assert.equal(check.received, TOTAL);

  // The target's FIN came after its last byte; the client's side is still open, and what it sends now reaches the target.
  client.end('after the target ended');
  assert.ok(await waitFor(() => Buffer.concat(A.received[0] ?? []).toString() === 'after the target ended'));
  assert.ok(await waitFor(() => flows.ended.length === 1));
  assert.deepEqual({ reason: flows.ended[0]?.reason, sentBytes: flows.ended[0]?.sentBytes }, { reason: 'closed', sentBytes: TOTAL });
});

test('a target that reads slowly, behind a PROXY v2 header: the client is held back, ebb holds no more than a few reads, the header then every byte arrives in order, the client\'s FIN after its last byte, and the answer comes back', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  let target: net.Socket | null = null;
  const targetPort = await startQuietTarget(c, (s) => (target = s));
  const { dp, port } = await startTcpPlane(c, tcpSnapshot([targetPort], { proxyProtocolV2: true }));
  const flows = recordFlows(c, dp.id);
  const baseline = heldBuffers();
  const client = await tcpConnect(c, port);
  const progress = { written: 0 };
  pump(client.socket, DATA, progress, () => client.socket.end());
  assert.ok(await heldBack(progress), `the client was held back (${progress.written} bytes handed over)`);
  const stalledAt = progress.written;
  assert.ok(stalledAt < TOTAL, `stalled at ${stalledAt} of ${TOTAL}`);
  const held = heldBuffers() - baseline;
  assert.ok(held < MiB, `ebb holds ${held} bytes while the target reads nothing`);
  await sleep(150);
  assert.equal(progress.written, stalledAt, 'nothing more is read from the client while the target reads nothing');

  const s = target as net.Socket | null;
  assert.ok(s !== null);
  // proxy-protocol.txt §2.2: 16 bytes, then 12 of IPv4 addresses and ports.
  let header = Buffer.alloc(0);
  const check = new InOrder(DATA);
  readInBursts(s, (b) => {
    if (header.length < 28) {
      const need = 28 - header.length;
      header = Buffer.concat([header, b.subarray(0, need)]);
      b = b.subarray(need);
    }
    if (b.length > 0) check.take(b);
  });
  s.on('end', () => s.end(`got ${check.received}`));
  await within(client.closed, 8000);
  assert.equal(header.subarray(0, 13).toString('hex'), '0d0a0d0a000d0a515549540a21', 'the PROXY v2 header came first');
  assert.deepEqual([header.readUInt16BE(24), header.readUInt16BE(26)], [client.localPort, port]);
  assert.equal(check.firstWrongAt, -1, `bytes out of order from ${check.firstWrongAt}`);
  assert.equal(check.received, TOTAL);
  assert.equal(client.text(), `got ${TOTAL}`, 'the answer the target sent after the client\'s FIN');
  assert.deepEqual(
    client.events.map((e) => e.what),
    ['end', 'close'],
  );
  assert.ok(await waitFor(() => flows.ended.length === 1));
  assert.deepEqual({ reason: flows.ended[0]?.reason, receivedBytes: flows.ended[0]?.receivedBytes }, { reason: 'closed', receivedBytes: TOTAL });
});

test('a peer that resets while ebb\'s write to it is held: the write fails, and the other side is reset at once', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  // The client resets while the target's bytes wait for it.
  const targetErrors: string[] = [];
  const progress = { written: 0 };
  const sender = await startQuietTarget(c, (s) => {
    s.on('error', (e: NodeJS.ErrnoException) => targetErrors.push(e.code ?? e.message));
    pump(s, DATA, progress);
  });
  const { dp, port } = await startTcpPlane(c, tcpSnapshot([sender]));
  const flows = recordFlows(c, dp.id);
  const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  c.add(() => client.destroy());
  client.on('error', () => {});
  client.pause();
  assert.ok(await heldBack(progress));
  client.resetAndDestroy();
  assert.ok(await waitFor(() => flows.ended.length === 1, 1000), 'the flow ended without anything read again');
  assert.deepEqual({ reason: flows.ended[0]?.reason, resetByEbb: flows.ended[0]?.resetByEbb }, { reason: 'client_reset', resetByEbb: false });
  assert.ok(await waitFor(() => targetErrors.includes('ECONNRESET'), 1000), `the target was reset: ${JSON.stringify(targetErrors)}`);

  // The target resets while the client's bytes wait for it.
  let target: net.Socket | null = null;
  const receiver = await startQuietTarget(c, (s) => {
    s.on('error', () => {});
    target = s;
  });
  await dp.apply(tcpSnapshot([receiver], { port, version: 2 }));
  const writer = await tcpConnect(c, port);
  const sent = { written: 0 };
  pump(writer.socket, DATA, sent);
  assert.ok(await heldBack(sent));
  (target as net.Socket | null)?.resetAndDestroy();
  await within(writer.closed, 1000);
  assert.ok(writer.saw('error:ECONNRESET') || writer.saw('error:EPIPE'), `the client was reset: ${JSON.stringify(writer.events)}`);
  assert.ok(!writer.saw('end'), 'no FIN before the reset');
  assert.ok(await waitFor(() => flows.ended.length === 2, 1000));
  assert.deepEqual({ reason: flows.ended[1]?.reason, resetByEbb: flows.ended[1]?.resetByEbb }, { reason: 'target_reset', resetByEbb: false });
});

test('the idle timeout while a write is held: nothing moves, both sides are reset, and the flow ends', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const targetErrors: string[] = [];
  const progress = { written: 0 };
  const targetPort = await startQuietTarget(c, (s) => {
    s.on('error', (e: NodeJS.ErrnoException) => targetErrors.push(e.code ?? e.message));
    pump(s, DATA, progress);
  });
  const { dp, port } = await startTcpPlane(c, tcpSnapshot([targetPort], { settings: { tcpIdleTimeoutMs: 300 } }));
  const flows = recordFlows(c, dp.id);
  const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  c.add(() => client.destroy());
  const closed = closeOf(client);
  const errors: string[] = [];
  client.on('error', (e: NodeJS.ErrnoException) => errors.push(e.code ?? e.message));
  client.pause();
  assert.ok(await waitFor(() => flows.ended.length === 1, 2000), 'the flow ended');
  assert.deepEqual({ reason: flows.ended[0]?.reason, resetByEbb: flows.ended[0]?.resetByEbb }, { reason: 'idle_timeout', resetByEbb: true });
  assert.ok(await waitFor(() => targetErrors.includes('ECONNRESET'), 1000), `the target was reset: ${JSON.stringify(targetErrors)}`);
  assert.ok(await learnsOfReset(client, closed, errors), `the client was reset: ${JSON.stringify(errors)}`);
});

test('terminate while ebb\'s write to a slow client is held: the client, reading during the grace, gets its bytes in order, then the FIN; answering it closes the flow cleanly', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const progress = { written: 0 };
  const targetPort = await startQuietTarget(c, (s) => {
    s.on('error', () => {});
    s.on('end', () => s.end());
    s.resume();
    pump(s, DATA, progress);
  });
  const { dp, port } = await startTcpPlane(c, tcpSnapshot([targetPort]), { tunnelCloseGraceMs: 2000 });
  const flows = recordFlows(c, dp.id);
  const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  c.add(() => client.destroy());
  client.pause();
  assert.ok(await heldBack(progress));
  const started = Date.now();
  const result = dp.terminate(tcpKey(targetPort));
  await sleep(50);
  const check = new InOrder(DATA);
  let endAfter = -1;
  client.on('end', () => {
    endAfter = check.received;
    client.end();
  });
  readInBursts(client, (b) => check.take(b));
  assert.deepEqual(await within(result, 3000), { requestsCut: 0, tunnelsClosed: 1, connectionsClosed: 2 });
  assert.ok(Date.now() - started < 1500, 'closed by the peers, before the grace');
  assert.equal(check.firstWrongAt, -1, `bytes out of order from ${check.firstWrongAt}`);
  assert.ok(check.received > 0 && check.received <= progress.written);
  assert.equal(endAfter, check.received, 'the FIN came after the last byte');
  assert.ok(await waitFor(() => flows.ended.length === 1));
  assert.deepEqual({ reason: flows.ended[0]?.reason, resetByEbb: flows.ended[0]?.resetByEbb }, { reason: 'terminated', resetByEbb: false });
});

/** A connected pair on 127.0.0.1: `near` is ours, `far` the peer's accepted socket, reading nothing until told. */
async function pair(c: Cleanup): Promise<{ near: net.Socket; far: net.Socket }> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const near = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  const [far] = await accepted;
  await once(near, 'connect').catch(() => {});
  c.add(() => {
    near.destroy();
    far.destroy();
    server.close();
  });
  return { near, far };
}

/** Everything `s` reads until its end, checked against `expected`. */
function readAll(s: net.Socket, expected: Buffer): Promise<InOrder> {
  const check = new InOrder(expected);
  s.on('data', (b: Buffer) => check.take(b));
  s.resume();
  return new Promise((resolve) => s.once('end', () => resolve(check)));
}

test('a held write, then a write and an end through net.Socket: the peer reads them in that order, the FIN last', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const { near, far } = await pair(c);
  let writable = 0;
  const writer = new DirectWriter(near, () => writable++);
  const held = DATA.subarray(0, 8 * MiB);
  assert.equal(writer.write(held), 'held-full');
  // The writer sends what comes while its write is held through net.Socket, behind it.
  const tail = DATA.subarray(8 * MiB, 8 * MiB + 100_000);
  assert.notEqual(writer.write(tail), 'free');
  near.end();
  const check = await within(readAll(far, DATA), 5000);
  assert.ok(check !== 'timeout', 'the FIN came');
  assert.equal(check.firstWrongAt, -1, `bytes out of order from ${check.firstWrongAt}`);
  assert.equal(check.received, held.length + tail.length);
  assert.equal(writable, 1);
});

test('a held chunk stays alive while libuv writes it: dropped by its writer and collected around, it still arrives whole', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const { near, far } = await pair(c);
  const writer = new DirectWriter(near, () => {});
  const size = 8 * MiB;
  // Its only reference is the write's. V8 frees a collected buffer's memory a little after the
  // collection; a write from freed memory fails (EFAULT) or sends what was put there since.
  assert.equal(writer.write(stamped(size)), 'held-full');
  const since: Buffer[] = [];
  for (let i = 0; i < 6; i++) {
    gc();
    await sleep(10);
    since.push(Buffer.allocUnsafeSlow(size).fill(0xee));
  }
  near.end();
  const check = await within(readAll(far, DATA), 5000);
  assert.ok(check !== 'timeout', 'the FIN came');
  assert.equal(check.firstWrongAt, -1, `bytes wrong from ${check.firstWrongAt}`);
  assert.equal(check.received, size);
});

/** The TCP test snapshot with its listener made TLS, for `flows.test`. */
function tlsSnapshot(backends: readonly number[]): RoutingSnapshot {
  const leaf = leafCert(['flows.test']);
  const policy = tlsPolicySettings('ELBSecurityPolicy-TLS13-1-2-2021-06');
  if (policy === undefined) throw new Error('no policy');
  const certificates = [{ arn: 'arn:aws:acm:us-east-1:123456789012:certificate/backpressure', certificatePem: leaf.certPem, privateKeyPem: leaf.keyPem, names: ['flows.test'] }];
  const snap = tcpSnapshot(backends);
  return { ...snap, listeners: snap.listeners.map((l) => ({ ...l, protocol: 'TLS', tls: { certificates, policy } })) };
}

async function tlsConnect(c: Cleanup, port: number): Promise<tls.TLSSocket> {
  // allowHalfOpen is passed on to the client's TLSSocket by tls.connect, though its typings leave it out.
  const options: tls.ConnectionOptions & { allowHalfOpen: boolean } = { port, host: '127.0.0.1', servername: 'flows.test', ca: testCa().certPem, allowHalfOpen: true };
  const socket = tls.connect(options);
  c.add(() => socket.destroy());
  await once(socket, 'secureConnect');
  return socket;
}

// A TLS client is read as a stream and written through net.Socket; its target still takes the fast path.
test('a TLS client: a slow target holds the client back, a slow client holds the target back, every byte arrives in order, and the FINs pass after the last byte', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const SIZE = 32 * MiB;
  let target: net.Socket | null = null;
  const targetPort = await startQuietTarget(c, (s) => (target = s));
  const { dp, port } = await startTcpPlane(c, tlsSnapshot([targetPort]));
  const flows = recordFlows(c, dp.id);

  // Up: the target reads nothing at first.
  const client = await tlsConnect(c, port);
  const up = { written: 0 };
  pump(client, DATA.subarray(0, SIZE), up, () => client.end());
  assert.ok(await heldBack(up), `the client was held back (${up.written} bytes handed over)`);
  assert.ok(up.written < SIZE);
  const s = target as net.Socket | null;
  assert.ok(s !== null);
  const atTarget = new InOrder(DATA);
  let targetEndAfter = -1;
  const targetEnded = new Promise<void>((resolve) =>
    s.on('end', () => {
      targetEndAfter = atTarget.received;
      resolve();
    }),
  );
  readInBursts(s, (b) => atTarget.take(b));
  assert.notEqual(await within(targetEnded, 5000), 'timeout', `the target got the client's bytes and FIN (${atTarget.received})`);
  assert.equal(atTarget.firstWrongAt, -1, `bytes out of order from ${atTarget.firstWrongAt}`);
  assert.equal(targetEndAfter, SIZE);

  // Down: the client reads nothing at first.
  client.pause();
  const down = { written: 0 };
  pump(s, DATA.subarray(0, SIZE), down, () => s.end());
  assert.ok(await heldBack(down), `the target was held back (${down.written} bytes handed over)`);
  assert.ok(down.written < SIZE);
  const atClient = new InOrder(DATA);
  const clientEnded = once(client, 'end');
  readInBursts(client, (b) => atClient.take(b));
  assert.notEqual(await within(clientEnded, 5000), 'timeout', `the client got the target's bytes and FIN (${atClient.received})`);
  assert.equal(atClient.firstWrongAt, -1, `bytes out of order from ${atClient.firstWrongAt}`);
  assert.equal(atClient.received, SIZE);
  // Both sides have ended: the flow closes by itself (not reset by the cleanup).
  assert.ok(await waitFor(() => flows.ended.length === 1));
  assert.deepEqual(
    { reason: flows.ended[0]?.reason, receivedBytes: flows.ended[0]?.receivedBytes, sentBytes: flows.ended[0]?.sentBytes },
    { reason: 'closed', receivedBytes: SIZE, sentBytes: SIZE },
  );
});

// ebb ending a socket (FIN) while its own write to it is held: sent at once, the FIN would wait in
// libuv behind that write, and libuv refuses to reset a socket whose FIN is queued
// (uv_tcp_close_reset: EINVAL). net.Socket then emits 'error' (reset EINVAL) and drops the handle
// without closing it: no 'close', the flow never ends, terminate and close never resolve, and the
// process, leaving, spins waiting for that handle. DirectWriter.end keeps the FIN back until the write
// is done. The flows run in a process of their own (flow-backpressure.test-child.ts), started with the
// file so it runs beside the tests above: should this come back, this file still ends.
const CHILD = new URL('./flow-backpressure.test-child.ts', import.meta.url).pathname;
let child: ChildProcess | null = null;
const closedFlows = new Promise<Partial<Record<Scenario, ClosedFlow>> | string>((resolve) => {
  child = execFile(process.execPath, ['--import', 'tsx', CHILD], { timeout: 8000 }, (err, stdout, stderr) => {
    try {
      resolve(JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as Partial<Record<Scenario, ClosedFlow>>);
    } catch {
      resolve(`no result from the child: ${err?.message ?? ''} ${stderr}`);
    }
  });
});
after(() => {
  if (child !== null && child.exitCode === null) child.kill();
});

async function closedFlow(scenario: Scenario): Promise<ClosedFlow | undefined> {
  const results = await closedFlows;
  if (typeof results === 'string') assert.fail(results);
  return results[scenario];
}

test('terminate while ebb\'s write to a client that reads nothing is held: after the grace both sides are reset and the flow ends', async () => {
  assert.deepEqual(await closedFlow('terminate-slow-client'), { resolved: true, end: { reason: 'terminated', resetByEbb: true } });
});

test('terminate while ebb\'s write to a target that reads nothing is held: after the grace both sides are reset and the flow ends', async () => {
  assert.deepEqual(await closedFlow('terminate-slow-target'), { resolved: true, end: { reason: 'terminated', resetByEbb: true } });
});

test('ebb closing at its deadline while its write to a client that reads nothing is held: the flow is closed and the close resolves', async () => {
  assert.deepEqual(await closedFlow('close-slow-client'), { resolved: true, end: { reason: 'shutdown', resetByEbb: true } });
});
