/**
 * An HTTPS listener with several certificates: each SNI name gets its own (curl --resolve verifying it
 * against the test CA, and Node's TLS client), a wildcard covers one label, no SNI gets the default, and
 * the request reaches the target with X-Forwarded-Proto https and the listener's port, its request-end
 * message carrying the handshake's facts.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { HttpDataPlane } from '../../src/dataplane/http-data-plane.ts';
import { leafCert } from '../support/certs.ts';
import { pinned, startBackend, startPlane, waitFor } from './dataplane-helpers.ts';
import type { Backend } from './dataplane-helpers.ts';
import { ChannelRecorder, curlResolve, failedHandshake, handshake, httpsGet, httpsSnapshot, listenerCert, serialOf } from './https-harness.ts';

const DEFAULT = leafCert(['default.example.test']);
const A = leafCert(['a.example.test']);
const B = leafCert(['b.example.test', 'b2.example.test']);
const WILD = leafCert(['*.wild.example.test']);

const certs = [
  listenerCert('arn:test:acm:certificate/default', DEFAULT, ['default.example.test']),
  listenerCert('arn:test:acm:certificate/a', A, ['a.example.test']),
  listenerCert('arn:test:acm:certificate/b', B, ['b.example.test', 'b2.example.test']),
  listenerCert('arn:test:acm:certificate/wild', WILD, ['*.wild.example.test']),
];

let backend: Backend;
let dp: HttpDataPlane;
let port: number;
const recorder = new ChannelRecorder();

before(async () => {
  backend = await startBackend('web', (req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ proto: req.headers['x-forwarded-proto'], port: req.headers['x-forwarded-port'], host: req.headers.host }));
  });
  ({ dp, port } = await startPlane(httpsSnapshot([backend.port], certs)));
});

after(async () => {
  recorder.close();
  dp.destroy();
  await backend.close();
});

test('curl --resolve with each SNI name verifies and gets its own certificate', async () => {
  for (const [name, cn] of [
    ['a.example.test', 'a.example.test'],
    ['b.example.test', 'b.example.test'],
    ['b2.example.test', 'b.example.test'],
    ['x.wild.example.test', '*.wild.example.test'],
  ] as const) {
    const r = await curlResolve(port, name);
    assert.equal(r.code, 0, `curl ${name}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`subject: CN=${cn.replace(/[.*]/g, '\\$&')}`), name);
    assert.deepEqual(JSON.parse(r.stdout), { proto: 'https', port: String(port), host: `${name}:${port}` });
  }
});

test('each name is shown its certificate, by serial; no SNI and unknown names get the default', async () => {
  assert.equal((await handshake(port, { servername: 'a.example.test' })).serial, serialOf(A));
  assert.equal((await handshake(port, { servername: 'B.Example.Test' })).serial, serialOf(B));
  assert.equal((await handshake(port, { servername: 'deep.x.wild.example.test' })).serial, serialOf(DEFAULT), 'a wildcard covers one label only');
  assert.equal((await handshake(port, { servername: 'nobody.example.test' })).serial, serialOf(DEFAULT));
  assert.equal((await handshake(port)).serial, serialOf(DEFAULT), 'no SNI');
  const curl = await curlResolve(port, '127.0.0.1', '/', ['-k']);
  assert.equal(curl.code, 0, curl.stderr);
  assert.match(curl.stderr, /subject: CN=default\.example\.test/);
});

test('ALPN offers h2 then http/1.1 while routing.http2.enabled; h2 is served by HTTP/2, a client without ALPN by HTTP/1.1', async () => {
  assert.equal((await handshake(port, { servername: 'a.example.test', ALPNProtocols: ['h2', 'http/1.1'] })).alpn, 'h2');
  assert.equal((await handshake(port, { servername: 'a.example.test', ALPNProtocols: ['http/1.1', 'h2'] })).alpn, 'h2', "the server's preference");
  assert.equal((await handshake(port, { servername: 'a.example.test', ALPNProtocols: ['http/1.1'] })).alpn, 'http/1.1');
  const h2 = await curlResolve(port, 'a.example.test', '/', ['--http2']);
  assert.equal(h2.code, 0, h2.stderr);
  assert.match(h2.stderr, /< HTTP\/2 200/);
  assert.deepEqual(JSON.parse(h2.stdout), { proto: 'https', port: String(port), host: `a.example.test:${port}` });
  const r = await httpsGet(port, 'a.example.test');
  assert.equal(r.status, 200);
});

test('with routing.http2.enabled off, h2 is not offered: new handshakes agree http/1.1', async () => {
  await dp.apply(pinned(httpsSnapshot([backend.port], certs, { version: 2, settings: { http2: false } }), port));
  try {
    assert.equal((await handshake(port, { servername: 'a.example.test', ALPNProtocols: ['h2', 'http/1.1'] })).alpn, 'http/1.1');
    const r = await curlResolve(port, 'a.example.test', '/', ['--http2']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /< HTTP\/1.1 200/);
    const from = recorder.tlsErrors.length;
    const h2only = await failedHandshake(port, { servername: 'a.example.test', ALPNProtocols: ['h2'] });
    assert.match(h2only.code, /NO_APPLICATION_PROTOCOL/, 'an h2-only client is refused');
    assert.ok(await waitFor(() => recorder.tlsErrors.length > from));
    assert.deepEqual(recorder.reasons().slice(from), ['no_application_protocol']);
  } finally {
    await dp.apply(pinned(httpsSnapshot([backend.port], certs, { version: 3 }), port));
  }
});

test('the request reaches the target with X-Forwarded-Proto https, and its request-end message carries the handshake', async () => {
  const before = recorder.requestEnds.length;
  const r = await httpsGet(port, 'b.example.test', '/facts');
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body.toString()), { proto: 'https', port: String(port), host: 'b.example.test' });
  assert.equal(r.serial, serialOf(B));
  assert.ok(await waitFor(() => recorder.requestEnds.slice(before).some((m) => m.url === '/facts')));
  const end = recorder.requestEnds.slice(before).find((m) => m.url === '/facts');
  assert.equal(end?.status, 200);
  assert.equal(end?.tls?.serverName, 'b.example.test');
  assert.equal(end?.tls?.certificateArn, 'arn:test:acm:certificate/b');
  assert.equal(end?.tls?.protocol, 'TLSv1.3');
  assert.equal(end?.tls?.cipher, 'TLS_AES_128_GCM_SHA256', 'the policy\'s first TLS 1.3 suite (server order)');
  assert.deepEqual(
    recorder.reasons().filter((r) => r !== 'no_application_protocol'),
    [],
    'no other handshake failed',
  );
});
