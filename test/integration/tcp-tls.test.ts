/**
 * TLS listeners of the TCP data plane (NLB's TLS listener to a TCP group): the TLS front's handshake,
 * then a flow that carries the decrypted bytes to the target in plain TCP, with the handshake's facts
 * in the flow's messages; half-close, the polite close at a drain deadline and the idle timeout's reset
 * over TLS; a listener without a certificate refuses to open.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import tls from 'node:tls';
import { HttpDataPlane } from '../../src/dataplane/http-data-plane.ts';
import { tlsPolicySettings } from '../../src/domain/tls-policies.ts';
import type { ListenerTls, RoutingSnapshot } from '../../src/domain/routing-snapshot.ts';
import { leafCert, testCa } from '../support/certs.ts';
import { Cleanup } from '../support/cleanup.ts';
import { waitFor, within } from '../support/timing.ts';
import { tls12Client } from '../support/tls-clients.ts';
import { recordFlows, startTcpBackend, startTcpPlane, tcpKey, tcpSnapshot, TCP_LISTENER } from './tcp-helpers.ts';

const CERT_ARN = 'arn:aws:acm:us-east-1:123456789012:certificate/tcp-tls-test';

function listenerTls(names: readonly string[]): ListenerTls {
  const leaf = leafCert(names);
  const policy = tlsPolicySettings('ELBSecurityPolicy-TLS13-1-2-2021-06');
  if (policy === undefined) throw new Error('no policy');
  return { certificates: [{ arn: CERT_ARN, certificatePem: leaf.certPem, privateKeyPem: leaf.keyPem, names }], policy };
}

/** The TCP test snapshot with its listener made TLS. */
function tlsSnapshot(backends: readonly number[], t: ListenerTls, settings: { tcpIdleTimeoutMs?: number } = {}): RoutingSnapshot {
  const snap = tcpSnapshot(backends, { settings });
  return { ...snap, listeners: snap.listeners.map((l) => ({ ...l, protocol: 'TLS', tls: t })) };
}

interface TlsClient {
  readonly socket: tls.TLSSocket;
  /** The cipher the handshake settled, as the client saw it. */
  readonly cipher: string;
  text(): string;
  readonly events: string[];
  readonly closed: Promise<void>;
}

async function tlsConnect(c: Cleanup, port: number, servername: string): Promise<TlsClient> {
  // allowHalfOpen is passed on to the client's TLSSocket by tls.connect, though its typings leave it out.
  const options: tls.ConnectionOptions & { allowHalfOpen: boolean } = { port, host: '127.0.0.1', servername, ca: testCa().certPem, allowHalfOpen: true };
  const socket = tls.connect(options);
  c.add(() => socket.destroy());
  let text = '';
  const events: string[] = [];
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (text += d));
  socket.on('end', () => events.push('end'));
  socket.on('error', (e: NodeJS.ErrnoException) => events.push(`error:${e.code ?? e.message}`));
  const closed = new Promise<void>((resolve) =>
    socket.on('close', () => {
      events.push('close');
      resolve();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  return { socket, cipher: socket.getCipher().name, text: () => text, events, closed };
}

test('a TLS listener: the handshake, then the flow carries the plain bytes to the target, both ways and half-closed', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const targetGot: string[] = [];
  // The target sees plain bytes and answers once the client has ended its side.
  const A = await startTcpBackend(c, 'A', (s) => {
    let got = '';
    s.on('data', (b: Buffer) => {
      got += b.toString('latin1');
      s.write(b);
    });
    s.on('end', () => {
      targetGot.push(got);
      s.end('bye');
    });
  });
  const { dp, port } = await startTcpPlane(c, tlsSnapshot([A.port], listenerTls(['flows.test'])));
  const flows = recordFlows(c, dp.id);
  const client = await tlsConnect(c, port, 'flows.test');
  client.socket.write('hello over TLS');
  assert.ok(await waitFor(() => client.text() === 'hello over TLS'));
  client.socket.end();
  await within(client.closed, 2000);
  assert.equal(client.text(), 'hello over TLSbye', 'the reply after the client ended its side arrived');
  assert.deepEqual(targetGot, ['hello over TLS']);
  assert.ok(await waitFor(() => flows.ended.length === 1));
  const m = flows.ended[0];
  assert.equal(m?.protocol, 'tls');
  assert.equal(m?.reason, 'closed');
  assert.equal(m?.targetKey, tcpKey(A.port));
  assert.equal(m?.listenerArn, TCP_LISTENER);
  assert.equal(m?.receivedBytes, 14, 'decrypted bytes from the client');
  assert.equal(m?.sentBytes, 17);
  assert.equal(m?.tls?.serverName, 'flows.test');
  assert.equal(m?.tls?.certificateArn, CERT_ARN);
  assert.equal(m?.tls?.protocol, 'TLSv1.3');
  assert.equal(m?.tls?.cipher, client.cipher);
});

test('TLS: terminate sends the client a FIN (after close_notify) and resets it after the grace; the idle timeout resets', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startTcpBackend(c, 'A', (s) => s.on('data', (b: Buffer) => s.write(b))); // ignores FIN
  const { dp, port } = await startTcpPlane(c, tlsSnapshot([A.port], listenerTls(['flows.test']), { tcpIdleTimeoutMs: 400 }), { tunnelCloseGraceMs: 200 });
  const flows = recordFlows(c, dp.id);

  const one = await tlsConnect(c, port, 'flows.test');
  one.socket.write('x');
  assert.ok(await waitFor(() => one.text() === 'x'));
  const started = Date.now();
  await within(dp.terminate(tcpKey(A.port)), 2000);
  assert.equal(one.events[0], 'end', `the client got the end of the stream first: ${JSON.stringify(one.events)}`);
  assert.ok(Date.now() - started >= 180, 'then the grace');
  assert.ok(await waitFor(() => flows.ended.length === 1));
  assert.deepEqual({ reason: flows.ended[0]?.reason, resetByEbb: flows.ended[0]?.resetByEbb }, { reason: 'terminated', resetByEbb: true });

  const two = await tlsConnect(c, port, 'flows.test');
  two.socket.write('y');
  assert.ok(await waitFor(() => two.text() === 'y'));
  await within(two.closed, 2000);
  assert.ok(two.events.includes('error:ECONNRESET'), `the idle client got a reset: ${JSON.stringify(two.events)}`);
  assert.ok(await waitFor(() => flows.ended.length === 2));
  assert.deepEqual({ reason: flows.ended[1]?.reason, resetByEbb: flows.ended[1]?.resetByEbb }, { reason: 'idle_timeout', resetByEbb: true });
});

test('a TLS listener without a certificate refuses to open, saying so', async () => {
  const dp = new HttpDataPlane({ id: 'tls-no-cert' });
  try {
    const none = listenerTls(['flows.test']);
    const r = await dp.apply(tlsSnapshot([], { ...none, certificates: [] }));
    assert.equal(r.listenerErrors.length, 1);
    assert.equal(r.listenerErrors[0]?.code, 'CertificateNotFound');
  } finally {
    dp.destroy();
  }
});

test('a client that renegotiates is closed at its first attempt (no renegotiation, as on AWS), and its flow ends', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startTcpBackend(c, 'A', (s) => s.on('data', (b: Buffer) => s.write(b)));
  const { dp, port } = await startTcpPlane(c, tlsSnapshot([A.port], listenerTls(['flows.test'])));
  const flows = recordFlows(c, dp.id);
  // TLS 1.3 has no renegotiation: the policy still allows 1.2, where a client can ask for it.
  const client = await tls12Client(port, 'flows.test');
  c.add(() => client.socket.destroy());
  client.socket.write('before');
  assert.ok(await waitFor(() => client.received() === 'before'), 'the flow works before the attempt');
  client.socket.renegotiate({ rejectUnauthorized: false }, () => {});
  assert.notEqual(await within(client.closed, 2000), 'timeout', 'ebb closes the connection');
  assert.ok(await waitFor(() => flows.ended.length === 1), 'the flow ends: no socket of it left open');
  assert.equal(flows.ended[0]?.reason, 'client_reset');
});
