import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { leafCert, selfSignedCert, testCa } from '../../test/support/certs.ts';
import { CertificateProblem, certificateServes, parseCertificate, validityAt } from './certificates.ts';

function problemOf(fn: () => unknown): CertificateProblem {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof CertificateProblem, `expected a CertificateProblem, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a CertificateProblem');
}

test('a certificate signed by the CA: names from its SANs, common name, serial as ACM writes it, EC key, issuer, validity', () => {
  const leaf = leafCert(['Site.Example', 'www.site.example', '*.api.site.example']);
  const c = parseCertificate({ certificatePem: leaf.certPem, privateKeyPem: leaf.keyPem, chainPem: testCa().certPem });
  assert.equal(c.domainName, 'Site.Example');
  assert.deepEqual(c.subjectAlternativeNames, ['site.example', 'www.site.example', '*.api.site.example']);
  assert.equal(c.subject, 'CN=Site.Example');
  assert.equal(c.issuer, 'ebb test CA');
  assert.equal(c.keyAlgorithm, 'EC_prime256v1');
  assert.match(c.serial, /^([0-9a-f]{2}:)*[0-9a-f]{2}$/);
  assert.ok(c.notAfter > c.notBefore && c.notAfter - c.notBefore > 800 * 86_400_000);
  assert.deepEqual(c.extendedKeyUsageOids, ['1.3.6.1.5.5.7.3.1']);
  assert.equal(c.selfSigned, false);
  assert.match(c.certificatePem, /^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n$/);
  assert.equal(c.chainPem, testCa().certPem.replace(/\r\n/g, '\n'));
  assert.match(c.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
});

test('a key that is not the certificate\'s is refused, naming both inputs', () => {
  const a = leafCert(['a.example']);
  const b = leafCert(['b.example']);
  const p = problemOf(() =>
    parseCertificate({ certificatePem: a.certPem, privateKeyPem: b.keyPem }, { labels: { certificate: a.certFile, privateKey: b.keyFile } }),
  );
  assert.equal(p.part, 'privateKey');
  assert.ok(p.message.startsWith(`${b.keyFile}: does not match the certificate ${a.certFile}`), p.message);
});

test('garbage, an empty input, a key where a certificate belongs, and DER-like bytes are refused with what PEM was expected', () => {
  const leaf = leafCert(['g.example']);
  assert.equal(problemOf(() => parseCertificate({ certificatePem: 'hello', privateKeyPem: leaf.keyPem })).part, 'certificate');
  assert.match(problemOf(() => parseCertificate({ certificatePem: 'hello', privateKeyPem: leaf.keyPem })).reason, /is not PEM/);
  assert.match(problemOf(() => parseCertificate({ certificatePem: '', privateKeyPem: leaf.keyPem })).reason, /is empty/);
  assert.match(problemOf(() => parseCertificate({ certificatePem: leaf.keyPem, privateKeyPem: leaf.keyPem })).reason, /holds a EC PRIVATE KEY block, not a certificate/);
  const broken = leaf.certPem.replace(/\n[A-Za-z0-9+/]{20}/, '\n!!!!!!!!!!!!!!!!!!!!');
  assert.match(problemOf(() => parseCertificate({ certificatePem: broken, privateKeyPem: leaf.keyPem })).reason, /not a valid X\.509 certificate/);
  const p = problemOf(() => parseCertificate({ certificatePem: leaf.certPem, privateKeyPem: leaf.certPem }, { labels: { privateKey: 'PrivateKey' } }));
  assert.equal(p.part, 'privateKey');
  assert.equal(p.message, 'PrivateKey: holds a CERTIFICATE block, not a private key');
});

test('an encrypted key is refused with how to decrypt it; an RSA key in the traditional form is read as RSA_2048', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ebb-cert-unit-'));
  const key = path.join(dir, 'rsa.key');
  const crt = path.join(dir, 'rsa.crt');
  const enc = path.join(dir, 'enc.key');
  const trad = path.join(dir, 'trad.key');
  const run = (args: string[]): void => void execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  run(['genrsa', '-out', key, '2048']);
  run(['req', '-x509', '-new', '-key', key, '-days', '2', '-subj', '/O=Example Org/CN=rsa.example', '-out', crt]);
  run(['pkey', '-in', key, '-aes256', '-passout', 'pass:secret', '-out', enc]);
  run(['rsa', '-in', key, '-traditional', '-out', trad]);
  const certificatePem = readFileSync(crt, 'utf8');
  const p = problemOf(() => parseCertificate({ certificatePem, privateKeyPem: readFileSync(enc, 'utf8') }));
  assert.match(p.reason, /is encrypted with a passphrase; give it unencrypted/);
  const c = parseCertificate({ certificatePem, privateKeyPem: readFileSync(trad, 'utf8') });
  assert.equal(c.keyAlgorithm, 'RSA_2048');
  assert.equal(c.issuer, 'Example Org');
  assert.equal(c.subject, 'O=Example Org,CN=rsa.example');
  // No DNS names: the common name is the one it serves.
  assert.deepEqual(c.subjectAlternativeNames, ['rsa.example']);
  assert.equal(c.selfSigned, true);
});

test('a chain: one that issued the certificate is kept; one that did not is refused; a full chain in the certificate input only where allowed', () => {
  const leaf = leafCert(['chain.example']);
  const stranger = selfSignedCert(['stranger.example']);
  const p = problemOf(() => parseCertificate({ certificatePem: leaf.certPem, privateKeyPem: leaf.keyPem, chainPem: stranger.certPem }));
  assert.equal(p.part, 'chain');
  assert.match(p.reason, /no certificate in the chain issued the certificate \(its issuer is CN=ebb test CA\)/);
  assert.match(problemOf(() => parseCertificate({ certificatePem: leaf.certPem, privateKeyPem: leaf.keyPem, chainPem: 'junk' })).reason, /is not PEM/);

  const fullchain = leaf.certPem + testCa().certPem;
  const refused = problemOf(() => parseCertificate({ certificatePem: fullchain, privateKeyPem: leaf.keyPem }));
  assert.match(refused.reason, /holds 2 certificates/);
  const c = parseCertificate({ certificatePem: fullchain, privateKeyPem: leaf.keyPem }, { chainInCertificate: true });
  assert.equal(c.chainPem, testCa().certPem.replace(/\r\n/g, '\n'));
  assert.ok(!c.certificatePem.includes(c.chainPem));
  // Without a chain a CA-signed certificate is taken as it is: a client that has the CA still verifies it.
  assert.equal(parseCertificate({ certificatePem: leaf.certPem, privateKeyPem: leaf.keyPem }).chainPem, '');
});

test('validity and SNI names: exact and one-label wildcards, case-insensitive, a trailing dot ignored', () => {
  assert.equal(validityAt({ notBefore: 10, notAfter: 20 }, 15), 'valid');
  assert.equal(validityAt({ notBefore: 10, notAfter: 20 }, 21), 'expired');
  assert.equal(validityAt({ notBefore: 10, notAfter: 20 }, 9), 'not-yet-valid');
  const names = ['site.example', '*.api.example'];
  assert.ok(certificateServes(names, 'Site.Example.'));
  assert.ok(certificateServes(names, 'v1.api.example'));
  assert.ok(!certificateServes(names, 'api.example'));
  assert.ok(!certificateServes(names, 'a.v1.api.example'));
  assert.ok(!certificateServes(names, 'other.example'));
});
