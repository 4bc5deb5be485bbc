import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import tls from 'node:tls';
import { leafCert, testCa } from '../../test/support/certs.ts';
import { DEFAULT_SSL_POLICY, describeSslPolicy, isSslPolicy, secureContextOptions, SSL_POLICY_NAMES, tlsPolicySettings } from './tls-policies.ts';

const REQUIRED = ['ELBSecurityPolicy-TLS13-1-2-2021-06', 'ELBSecurityPolicy-TLS13-1-3-2021-06', 'ELBSecurityPolicy-FS-1-2-Res-2020-10', 'ELBSecurityPolicy-2016-08'];

test('the recommended policies are served, the default is TLS13-1-2-2021-06, and an unknown name is not', () => {
  for (const name of REQUIRED) assert.ok(isSslPolicy(name), name);
  assert.equal(DEFAULT_SSL_POLICY, 'ELBSecurityPolicy-TLS13-1-2-2021-06');
  assert.ok(!isSslPolicy('ELBSecurityPolicy-Nope'));
  assert.equal(tlsPolicySettings('ELBSecurityPolicy-Nope'), undefined);
  assert.equal(describeSslPolicy('__proto__'), undefined);
});

test('every policy becomes settings Node accepts: createSecureContext with them does not throw', () => {
  for (const name of SSL_POLICY_NAMES) {
    const settings = tlsPolicySettings(name);
    assert.ok(settings !== undefined, name);
    assert.doesNotThrow(() => tls.createSecureContext(secureContextOptions(settings)), name);
    // Every cipher named is one OpenSSL knows (a typo would be dropped silently from a longer list).
    for (const cipher of settings.ciphers.split(':').filter((c) => c !== '' && !c.startsWith('@'))) {
      assert.doesNotThrow(() => tls.createSecureContext({ ciphers: `${cipher}:@SECLEVEL=0`, maxVersion: 'TLSv1.2' }), `${name}: ${cipher}`);
    }
  }
});

test('the mapping: versions, TLS 1.3 suites apart, @SECLEVEL=0 exactly where TLS 1.0 or 1.1 is allowed', () => {
  assert.deepEqual(tlsPolicySettings('ELBSecurityPolicy-TLS13-1-2-2021-06'), {
    name: 'ELBSecurityPolicy-TLS13-1-2-2021-06',
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.3',
    ciphers:
      'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:' +
      'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384',
    ciphersuites: 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256',
  });
  const onlyTls13 = tlsPolicySettings('ELBSecurityPolicy-TLS13-1-3-2021-06');
  assert.equal(onlyTls13?.minVersion, 'TLSv1.3');
  assert.equal(onlyTls13?.ciphers, '');
  const fs = tlsPolicySettings('ELBSecurityPolicy-FS-1-2-Res-2020-10');
  assert.deepEqual([fs?.minVersion, fs?.maxVersion, fs?.ciphersuites], ['TLSv1.2', 'TLSv1.2', '']);
  assert.equal(fs?.ciphers, 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384');
  const old = tlsPolicySettings('ELBSecurityPolicy-2016-08');
  assert.equal(old?.minVersion, 'TLSv1');
  assert.ok(old?.ciphers.endsWith(':@SECLEVEL=0'));
  for (const name of SSL_POLICY_NAMES) {
    const s = tlsPolicySettings(name);
    assert.equal(s?.ciphers.includes('@SECLEVEL=0'), s?.minVersion === 'TLSv1' || s?.minVersion === 'TLSv1.1', name);
  }
});

test('DescribeSSLPolicies data: protocols newest first, ciphers by priority from 1, both load balancer types', () => {
  const d = describeSslPolicy('ELBSecurityPolicy-2016-08');
  assert.deepEqual(d?.sslProtocols, ['TLSv1.2', 'TLSv1.1', 'TLSv1']);
  assert.equal(d?.ciphers.length, 18);
  assert.deepEqual(d?.ciphers[0], { name: 'ECDHE-ECDSA-AES128-GCM-SHA256', priority: 1 });
  assert.deepEqual(d?.ciphers.at(-1), { name: 'AES256-SHA', priority: 18 });
  assert.deepEqual(d?.supportedLoadBalancerTypes, ['application', 'network']);
  assert.deepEqual(describeSslPolicy('ELBSecurityPolicy-TLS13-1-3-2021-06')?.ciphers.map((c) => c.name), [
    'TLS_AES_128_GCM_SHA256',
    'TLS_AES_256_GCM_SHA384',
    'TLS_CHACHA20_POLY1305_SHA256',
  ]);
});

/** Handshakes with a server using `policy`; resolves with the protocol agreed, or the client's error code. */
async function handshake(policy: string, client: tls.ConnectionOptions): Promise<string> {
  const leaf = leafCert(['policy.example']);
  const settings = tlsPolicySettings(policy);
  assert.ok(settings !== undefined);
  const server = tls.createServer({ cert: leaf.certPem, key: leaf.keyPem, ...secureContextOptions(settings) }, (s) => s.end());
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const port = (server.address() as AddressInfo).port;
    return await new Promise<string>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port, servername: 'policy.example', ca: testCa().certPem, ...client }, () => {
        resolve(s.getProtocol() ?? 'none');
        s.destroy();
      });
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      s.setTimeout(2000, () => s.destroy(new Error('timeout')));
    });
  } finally {
    server.close();
  }
}

test('the policies hold on a real handshake: TLS 1.3 by default, TLS 1.2 refused by TLS13-1-3, TLS 1.0 only where allowed, SHA-1 ciphers refused by FS-1-2-Res', async () => {
  assert.equal(await handshake('ELBSecurityPolicy-TLS13-1-2-2021-06', {}), 'TLSv1.3');
  assert.equal(await handshake('ELBSecurityPolicy-TLS13-1-2-2021-06', { maxVersion: 'TLSv1.2' }), 'TLSv1.2');
  assert.notEqual(await handshake('ELBSecurityPolicy-TLS13-1-3-2021-06', { maxVersion: 'TLSv1.2' }), 'TLSv1.2');
  const tls10 = { minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: 'ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0' } as const;
  assert.equal(await handshake('ELBSecurityPolicy-2016-08', tls10), 'TLSv1');
  assert.notEqual(await handshake('ELBSecurityPolicy-TLS13-1-2-2021-06', tls10), 'TLSv1');
  const sha1 = { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA' } as const;
  assert.equal(await handshake('ELBSecurityPolicy-2016-08', sha1), 'TLSv1.2');
  assert.notEqual(await handshake('ELBSecurityPolicy-FS-1-2-Res-2020-10', sha1), 'TLSv1.2');
});
