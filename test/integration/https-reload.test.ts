/**
 * Certificates and policies replaced through `apply` on a live HTTPS listener: a download over TLS that
 * started under the old certificate completes intact while new connections are shown the new one; a
 * certificate added or removed changes what its name gets; a stricter policy refuses new clients it does
 * not allow while a connection made before goes on.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import https from 'node:https';
import { after, before, test } from 'node:test';
import type tls from 'node:tls';
import type { HttpDataPlane } from '../../src/dataplane/http-data-plane.ts';
import type { ListenerCertificate } from '../../src/domain/routing-snapshot.ts';
import { leafCert, testCa } from '../support/certs.ts';
import { pinned, sleep, startBackend, startPlane } from './dataplane-helpers.ts';
import type { Backend } from './dataplane-helpers.ts';
import { ChannelRecorder, failedHandshake, handshake, httpsGet, httpsSnapshot, listenerCert, policy, serialOf } from './https-harness.ts';

const DEFAULT = leafCert(['default.example.test']);
const A1 = leafCert(['a.example.test'], 'v1');
const A2 = leafCert(['a.example.test'], 'v2');
const C = leafCert(['c.example.test']);

const ARN_A = 'arn:test:acm:certificate/a';
const defaultCert = listenerCert('arn:test:acm:certificate/default', DEFAULT, ['default.example.test']);

/** 24 chunks of 64 KiB, one every 25 ms: about 0.6 s. */
const CHUNKS = 24;
const CHUNK = Buffer.alloc(64 * 1024, 'x');
const expectedHash = createHash('sha256');
for (let i = 0; i < CHUNKS; i++) expectedHash.update(CHUNK);
const EXPECTED = expectedHash.digest('hex');

let backend: Backend;
let dp: HttpDataPlane;
let port: number;
const recorder = new ChannelRecorder();

function snapshotWith(certs: readonly ListenerCertificate[], policyName?: string, version = 2) {
  return pinned(httpsSnapshot([backend.port], certs, { version, ...(policyName === undefined ? {} : { policy: policy(policyName) }) }), port);
}

before(async () => {
  backend = await startBackend('web', (req, res) => {
    if (req.url !== '/download') return void res.end('ok');
    res.writeHead(200, { 'content-length': String(CHUNKS * CHUNK.length) });
    let sent = 0;
    const timer = setInterval(() => {
      res.write(CHUNK);
      if (++sent === CHUNKS) {
        clearInterval(timer);
        res.end();
      }
    }, 25);
    res.on('close', () => clearInterval(timer));
  });
  ({ dp, port } = await startPlane(httpsSnapshot([backend.port], [defaultCert, listenerCert(ARN_A, A1, ['a.example.test'])])));
});

after(async () => {
  recorder.close();
  dp.destroy();
  await backend.close();
});

/** Starts a download on a connection of its own; resolves at its first byte with the rest to come. */
function startDownload(opts: tls.ConnectionOptions = {}): Promise<{ serial: string; protocol: string | null; done: Promise<{ bytes: number; hash: string; complete: boolean }> }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/download', servername: 'a.example.test', ca: testCa().certPem, agent: false, ...opts }, (res) => {
      const socket = res.socket as tls.TLSSocket;
      const serial = socket.getPeerCertificate().serialNumber.toUpperCase();
      const protocol = socket.getProtocol();
      const hash = createHash('sha256');
      let bytes = 0;
      const done = new Promise<{ bytes: number; hash: string; complete: boolean }>((ok) => {
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          hash.update(c);
        });
        res.on('end', () => ok({ bytes, hash: hash.digest('hex'), complete: res.complete }));
        res.on('error', () => ok({ bytes, hash: '', complete: false }));
      });
      resolve({ serial, protocol, done });
    });
    req.on('error', reject);
  });
}

test('a certificate replaced while a download runs: the download completes intact, new connections get the new certificate', async () => {
  const download = await startDownload();
  assert.equal(download.serial, serialOf(A1));
  await sleep(100);
  // Re-imported under the same ARN: new content.
  const r = await dp.apply(snapshotWith([defaultCert, listenerCert(ARN_A, A2, ['a.example.test'])]));
  assert.deepEqual(r.listenerErrors, []);
  assert.equal((await handshake(port, { servername: 'a.example.test' })).serial, serialOf(A2), 'a new connection sees the new certificate');
  const fresh = await httpsGet(port, 'a.example.test');
  assert.equal(fresh.status, 200);
  assert.equal(fresh.serial, serialOf(A2));
  const result = await download.done;
  assert.equal(result.complete, true);
  assert.equal(result.bytes, CHUNKS * CHUNK.length);
  assert.equal(result.hash, EXPECTED);
});

test('a certificate added serves its name at once; one removed leaves its name to the default', async () => {
  const certC = listenerCert('arn:test:acm:certificate/c', C, ['c.example.test']);
  await dp.apply(snapshotWith([defaultCert, listenerCert(ARN_A, A2, ['a.example.test']), certC], undefined, 3));
  assert.equal((await handshake(port, { servername: 'c.example.test' })).serial, serialOf(C));
  await dp.apply(snapshotWith([defaultCert, certC], undefined, 4));
  assert.equal((await handshake(port, { servername: 'a.example.test' })).serial, serialOf(DEFAULT));
  assert.equal((await handshake(port, { servername: 'c.example.test' })).serial, serialOf(C));
});

test('a stricter policy refuses new clients it does not allow; a TLS 1.2 connection made before goes on', async () => {
  const certs = [defaultCert, listenerCert(ARN_A, A2, ['a.example.test'])];
  await dp.apply(snapshotWith(certs, 'ELBSecurityPolicy-TLS13-1-2-2021-06', 5));
  const download = await startDownload({ maxVersion: 'TLSv1.2' });
  assert.equal(download.protocol, 'TLSv1.2');
  await dp.apply(snapshotWith(certs, 'ELBSecurityPolicy-TLS13-1-3-2021-06', 6));
  const before = recorder.tlsErrors.length;
  const refused = await failedHandshake(port, { servername: 'a.example.test', maxVersion: 'TLSv1.2' });
  assert.match(refused.code, /PROTOCOL_VERSION/);
  assert.equal((await handshake(port, { servername: 'a.example.test' })).protocol, 'TLSv1.3');
  const result = await download.done;
  assert.equal(result.bytes, CHUNKS * CHUNK.length);
  assert.equal(result.hash, EXPECTED);
  assert.deepEqual(recorder.reasons().slice(before), ['protocol_version']);
});
