/**
 * What bad input gets on an HTTPS listener: plain HTTP, a client that stalls in the handshake, no
 * shared cipher, a client that connects and leaves; each is closed (quickly, or at the handshake
 * timeout), counted on the TLS error channel with its reason, and the listener goes on serving. A
 * listener with no certificate or one OpenSSL refuses does not open; a bad certificate in an update
 * leaves the old ones serving. A closing listener does not wait for handshakes.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { HttpDataPlane } from '../../src/dataplane/http-data-plane.ts';
import { leafCert, selfSignedCert } from '../support/certs.ts';
import { tls12Client } from '../support/tls-clients.ts';
import { LISTENER, pinned, rawRequest, sleep, startBackend, startPlane, waitFor, within } from './dataplane-helpers.ts';
import type { Backend } from './dataplane-helpers.ts';
import { ChannelRecorder, curlResolve, failedHandshake, handshake, httpsGet, httpsSnapshot, listenerCert, serialOf } from './https-harness.ts';

const A = leafCert(['a.example.test']);
const OTHER = leafCert(['other.example.test']);
/** A CA the listener's certificates are not signed by. */
const STRANGER = selfSignedCert(['stranger.test']);
const certA = listenerCert('arn:test:acm:certificate/a', A, ['a.example.test']);
/** The handshake timeout is the client header timeout when that is under 10 s. */
const HEADER_TIMEOUT_MS = 600;

let backend: Backend;
let dp: HttpDataPlane;
let port: number;
const logs: object[] = [];
const recorder = new ChannelRecorder();

before(async () => {
  backend = await startBackend('web');
  ({ dp, port } = await startPlane(httpsSnapshot([backend.port], [certA], { settings: { clientHeaderTimeoutMs: HEADER_TIMEOUT_MS } }), logs));
});

after(async () => {
  recorder.close();
  dp.destroy();
  await backend.close();
});

/** The reasons published since `from`, once `n` have come (or what came in 2 s). */
async function reasonsSince(from: number, n: number): Promise<string[]> {
  await waitFor(() => recorder.tlsErrors.length - from >= n);
  return recorder.reasons().slice(from);
}

/** Connects, writes `bytes` (if any) and resolves when ebb closes the connection, with how long that took. */
function closedAfter(bytes: Buffer | null, endAfterWrite = false): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      if (bytes !== null) s.write(bytes);
      if (endAfterWrite) s.end();
    });
    s.resume();
    s.on('error', () => {});
    s.on('close', () => resolve(performance.now() - t0));
  });
}

test('plain HTTP sent to the HTTPS port is closed at once and counted as not TLS', async () => {
  const from = recorder.tlsErrors.length;
  const t0 = performance.now();
  const answer = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: a.example.test\r\n\r\n', 3000);
  assert.notEqual(answer, '<timeout>');
  assert.ok(performance.now() - t0 < 1000, 'closed quickly, not at a timeout');
  assert.ok(!answer.startsWith('HTTP/'), 'no plain-text answer');
  assert.deepEqual(await reasonsSince(from, 1), ['not_tls']);
  assert.equal((await httpsGet(port, 'a.example.test')).status, 200, 'the listener goes on serving');
});

test('a client that never finishes its handshake is closed at the handshake timeout and counted', async () => {
  const from = recorder.tlsErrors.length;
  // One that says nothing, one that stops in the middle of its ClientHello.
  const [silent, partial] = await Promise.all([closedAfter(null), closedAfter(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xc8, 0x01]))]);
  for (const ms of [silent, partial]) assert.ok(ms >= HEADER_TIMEOUT_MS - 50 && ms < HEADER_TIMEOUT_MS + 1500, `closed after ${Math.round(ms)} ms`);
  assert.deepEqual(await reasonsSince(from, 2), ['timeout', 'timeout']);
  assert.equal((await httpsGet(port, 'a.example.test')).status, 200);
});

test('a client with no cipher in common is refused and counted', async () => {
  const from = recorder.tlsErrors.length;
  // The certificate's key is ECDSA; an RSA-only TLS 1.2 client shares no cipher with it.
  const r = await failedHandshake(port, { servername: 'a.example.test', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' });
  assert.match(r.code, /HANDSHAKE_FAILURE/);
  assert.deepEqual(await reasonsSince(from, 1), ['no_shared_cipher']);
});

test('a TLS 1.2 client that does not trust the certificate refuses it with an alert, counted', async () => {
  const from = recorder.tlsErrors.length;
  // curl trusting another CA: OpenSSL checks the chain inside the handshake and sends "unknown CA".
  const r = await curlResolve(port, 'a.example.test', '/', ['--tls-max', '1.2', '--cacert', STRANGER.certFile]);
  assert.equal(r.code, 60, r.stderr);
  assert.deepEqual(await reasonsSince(from, 1), ['certificate_rejected']);
});

test('a client that connects and leaves without a byte is closed at once and is no handshake error', async () => {
  const from = recorder.tlsErrors.length;
  const ms = await closedAfter(null, true);
  assert.ok(ms < 500, `closed after ${Math.round(ms)} ms`);
  // One that leaves in the middle of its ClientHello is a handshake cut short.
  await closedAfter(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xc8, 0x01]), true);
  assert.deepEqual(await reasonsSince(from, 1), ['client_closed']);
});

test('failures at once are each counted once, with their reasons', async () => {
  const from = recorder.tlsErrors.length;
  const plain = Array.from({ length: 15 }, () => rawRequest(port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', 3000));
  const cipherless = Array.from({ length: 15 }, () => failedHandshake(port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' }));
  const untrusting = Array.from({ length: 5 }, () => curlResolve(port, 'a.example.test', '/', ['--tls-max', '1.2', '--cacert', STRANGER.certFile]));
  const leaving = Array.from({ length: 10 }, () => closedAfter(null, true));
  await Promise.all([...plain, ...cipherless, ...untrusting, ...leaving]);
  await reasonsSince(from, 35);
  await sleep(100);
  const counts = new Map<string, number>();
  for (const r of recorder.reasons().slice(from)) counts.set(r, (counts.get(r) ?? 0) + 1);
  assert.deepEqual(Object.fromEntries(counts), { not_tls: 15, no_shared_cipher: 15, certificate_rejected: 5 });
  assert.equal((await httpsGet(port, 'a.example.test')).status, 200);
});

test('an update with a certificate OpenSSL refuses keeps the old one serving, and says so', async () => {
  // A's certificate with another certificate's key: the pair does not match.
  const broken = { ...certA, privateKeyPem: OTHER.keyPem };
  const r = await dp.apply(pinned(httpsSnapshot([backend.port], [broken], { version: 2, settings: { clientHeaderTimeoutMs: HEADER_TIMEOUT_MS } }), port));
  assert.deepEqual(r.listenerErrors, []);
  assert.equal((await handshake(port, { servername: 'a.example.test' })).serial, serialOf(A));
  assert.ok(logs.some((l) => (l as { msg?: string }).msg?.startsWith('listener TLS not updated') === true));
});

test('an HTTPS listener without a certificate, or with one that cannot be served, does not open', async () => {
  const plane = new HttpDataPlane({ id: 'no-cert' });
  try {
    const none = await plane.apply({ ...httpsSnapshot([backend.port], []), version: 1 });
    assert.equal(none.listenerErrors[0]?.code, 'CertificateNotFound');
    assert.match(none.listenerErrors[0]?.message ?? '', /no certificate/);
    const broken = await plane.apply(httpsSnapshot([backend.port], [{ ...certA, privateKeyPem: OTHER.keyPem }], { version: 2 }));
    assert.equal(broken.listenerErrors[0]?.code, 'InvalidConfigurationRequest');
    assert.match(broken.listenerErrors[0]?.message ?? '', /cannot be served/);
    assert.equal(plane.boundPort(LISTENER), null);
  } finally {
    plane.destroy();
  }
});

test('a closing listener gives a handshake under way a moment, then closes it instead of waiting for its timeout', async () => {
  const { dp: plane, port: p } = await startPlane(httpsSnapshot([backend.port], [certA]));
  const closed = new Promise<number>((resolve) => {
    const s = net.connect(p, '127.0.0.1');
    s.on('error', () => {});
    s.on('close', () => resolve(performance.now()));
  });
  await sleep(100);
  const t0 = performance.now();
  await plane.close(5000);
  assert.ok(performance.now() - t0 < 2500, 'the close did not wait for the handshake timeout (10 s)');
  const at = (await closed) - t0;
  assert.ok(at >= 900 && at < 2500, `the silent handshake was closed ${at.toFixed(0)} ms after the close began`);
});

test('an HTTPS client that renegotiates is closed at its first attempt, and the listener goes on serving', async () => {
  const client = await tls12Client(port, 'a.example.test');
  client.socket.write('GET / HTTP/1.1\r\nHost: a.example.test\r\n\r\n');
  assert.ok(await waitFor(() => client.received().startsWith('HTTP/1.1 200 ')), client.received());
  const t0 = performance.now();
  client.socket.renegotiate({ rejectUnauthorized: false }, () => {});
  assert.notEqual(await within(client.closed, 2000), 'timeout', 'ebb closes the connection');
  assert.ok(performance.now() - t0 < 1000, 'closed at the attempt, not at a timeout');
  assert.equal((await httpsGet(port, 'a.example.test')).status, 200);
});
