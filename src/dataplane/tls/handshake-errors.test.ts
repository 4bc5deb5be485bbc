import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classifyHandshakeError } from './handshake-errors.ts';

test('handshake failures are classified by the code Node reports', () => {
  assert.equal(classifyHandshakeError('ERR_SSL_HTTP_REQUEST', 18), 'not_tls');
  assert.equal(classifyHandshakeError('ERR_SSL_WRONG_VERSION_NUMBER', 18), 'not_tls');
  assert.equal(classifyHandshakeError('ERR_SSL_HTTPS_PROXY_REQUEST', 18), 'not_tls');
  assert.equal(classifyHandshakeError('ERR_SSL_UNSUPPORTED_PROTOCOL', 300), 'protocol_version');
  assert.equal(classifyHandshakeError('ERR_SSL_NO_SHARED_CIPHER', 300), 'no_shared_cipher');
  assert.equal(classifyHandshakeError('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 600), 'certificate_rejected');
  assert.equal(classifyHandshakeError('ERR_SSL_NO_APPLICATION_PROTOCOL', 300), 'no_application_protocol');
  assert.equal(classifyHandshakeError('ERR_TLS_HANDSHAKE_TIMEOUT', 0), 'timeout');
  assert.equal(classifyHandshakeError('ECONNRESET', 6), 'client_closed');
  assert.equal(classifyHandshakeError('ECONNRESET', -1), 'client_closed', 'bytes not known: counted');
  assert.equal(classifyHandshakeError('ERR_SSL_SOMETHING_NEW', 6), 'other');
  assert.equal(classifyHandshakeError(undefined, 6), 'other');
});

test('a connection closed before its first byte is no handshake (a TCP health check, a port scan)', () => {
  assert.equal(classifyHandshakeError('ECONNRESET', 0), null);
  assert.equal(classifyHandshakeError('EPIPE', 0), null);
});
