/**
 * A listener whose protocol changes on the same address and port (ModifyListener --protocol, or the
 * file) becomes the new kind of listener: HTTP → HTTPS serves TLS, and back. The old listener closes
 * as a removed one does and the new one binds the port it freed.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { HttpDataPlane } from '../../src/dataplane/http-data-plane.ts';
import { leafCert } from '../support/certs.ts';
import { pinned, rawRequest, snapshot, startBackend, startPlane } from './dataplane-helpers.ts';
import type { Backend } from './dataplane-helpers.ts';
import { httpsGet, httpsSnapshot, listenerCert } from './https-harness.ts';

const CERT = leafCert(['change.example.test']);
const certs = [listenerCert('arn:test:acm:certificate/change', CERT, ['change.example.test'])];

let backend: Backend;
let dp: HttpDataPlane;
let port: number;

before(async () => {
  backend = await startBackend('web', (req, res) => res.end(`proto=${String(req.headers['x-forwarded-proto'])}`));
  ({ dp, port } = await startPlane(snapshot([backend.port])));
});

after(async () => {
  dp.destroy();
  await backend.close();
});

test('HTTP → HTTPS on the same port serves TLS, and HTTPS → HTTP serves plain HTTP again', async () => {
  const plain = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.match(plain, /^HTTP\/1\.1 200 [\s\S]*proto=http$/);

  const toHttps = await dp.apply(pinned(httpsSnapshot([backend.port], certs, { version: 2 }), port));
  assert.deepEqual(toHttps.listenerErrors, []);
  assert.equal(dp.boundPort('arn:test:listener/web'), port);
  const secure = await httpsGet(port, 'change.example.test');
  assert.equal(secure.status, 200);
  assert.equal(secure.body.toString(), 'proto=https');
  const refused = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 1000);
  assert.doesNotMatch(refused, /^HTTP\/1\.1 200/, 'plain HTTP is no longer served');

  const back = await dp.apply(pinned(snapshot([backend.port], { version: 3 }), port));
  assert.deepEqual(back.listenerErrors, []);
  assert.match(await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /proto=http$/);
});
