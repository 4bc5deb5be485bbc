import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { leafCert, testCa } from '../../test/support/certs.ts';
import { EbbError } from '../shared/errors.ts';
import { declaredCertificates, fileCertificateArn, readDeclaredCertificates, type CertificatesShape } from './certificates-declared.ts';
import { parseConfig } from './load-config.ts';
import { formatPath, type PathSegment } from './problems.ts';

const where = (p: readonly PathSegment[]): string => `ebb.yaml:1:1: ${formatPath(p)}`;

/** A directory with the configuration file's name in it and copies of a certificate's files under `tls/`. */
function configDir(): { dir: string; fileName: string; put: (name: string, from: string) => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'ebb-cert-config-'));
  const fileName = path.join(dir, 'ebb.yaml');
  writeFileSync(fileName, '');
  return { dir, fileName, put: (name, from) => copyFileSync(from, path.join(dir, name)) };
}

test('declarations: top-level ones under their ARN, a listener\'s files under an ARN derived from their paths (the same each time, shared), paths relative to the file', () => {
  const cfg: CertificatesShape = {
    certificates: [{ arn: 'arn:aws:acm:us-east-1:123456789012:certificate/site', certificateFile: 'tls/site.crt', privateKeyFile: '/etc/tls/site.key', chainFile: 'tls/chain.pem' }],
    loadBalancers: [
      {
        listeners: [
          { certificates: [{ certificateFile: 'a.crt', privateKeyFile: 'a.key' }, { certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/site' }] },
          {},
          { certificates: [{ certificateFile: './a.crt', privateKeyFile: 'a.key' }] },
        ],
      },
    ],
    admin: { region: 'eu-west-1', accountId: '111122223333' },
  };
  const d = declaredCertificates(cfg, '/srv/ebb/ebb.yaml', where);
  const derived = fileCertificateArn('eu-west-1', '111122223333', '/srv/ebb/a.crt', '/srv/ebb/a.key');
  assert.match(derived, /^arn:aws:acm:eu-west-1:111122223333:certificate\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.equal(derived, fileCertificateArn('eu-west-1', '111122223333', '/srv/ebb/a.crt', '/srv/ebb/a.key'));
  assert.notEqual(derived, fileCertificateArn('eu-west-1', '111122223333', '/srv/ebb/b.crt', '/srv/ebb/a.key'));
  assert.deepEqual(d.listenerArns, [[[derived, 'arn:aws:acm:us-east-1:123456789012:certificate/site'], [], [derived]]]);
  assert.deepEqual(d.certificates, [
    {
      arn: 'arn:aws:acm:us-east-1:123456789012:certificate/site',
      files: { certificateFile: '/srv/ebb/tls/site.crt', privateKeyFile: '/etc/tls/site.key', chainFile: '/srv/ebb/tls/chain.pem' },
      path: ['certificates', 0],
    },
    { arn: derived, files: { certificateFile: '/srv/ebb/a.crt', privateKeyFile: '/srv/ebb/a.key' }, path: ['loadBalancers', 0, 'listeners', 0, 'certificates', 0] },
  ]);
  // Without admin.region and admin.accountId, the control plane's defaults.
  assert.match(declaredCertificates({ loadBalancers: cfg.loadBalancers }, '/srv/ebb/ebb.yaml', where).listenerArns[0]?.[0]?.[0] ?? '', /^arn:aws:acm:us-east-1:123456789012:/);
});

test('reading: every certificate parsed from its files; a full chain in the certificate file is taken; an expired one is served with a warning', async () => {
  const leaf = leafCert(['files.example']);
  const { fileName, put } = configDir();
  put('site.crt', leaf.certFile);
  put('site.key', leaf.keyFile);
  writeFileSync(path.join(path.dirname(fileName), 'full.crt'), leaf.certPem + testCa().certPem);
  const d = declaredCertificates(
    { certificates: [{ arn: 'arn:aws:acm:us-east-1:123456789012:certificate/a', certificateFile: 'site.crt', privateKeyFile: 'site.key' }], loadBalancers: [{ listeners: [{ certificates: [{ certificateFile: 'full.crt', privateKeyFile: 'site.key' }] }] }] },
    fileName,
    where,
  );
  const read = await readDeclaredCertificates(d, Date.now() + 60_000);
  assert.equal(read.certificates.length, 2);
  assert.equal(read.certificates[0]?.parsed.domainName, 'files.example');
  assert.equal(read.certificates[1]?.parsed.chainPem, testCa().certPem.replace(/\r\n/g, '\n'));
  assert.deepEqual(read.warnings, []);
  const later = await readDeclaredCertificates(d, Date.now() + 3000 * 86_400_000);
  assert.equal(later.warnings.length, 2);
  assert.match(later.warnings[0]?.message ?? '', /site\.crt: the certificate is expired \(not after .*\); it is served, but clients will refuse it/);
});

test('a missing file, a key that does not match and garbage are ConfigInvalid, each naming where it is declared, the file and the reason', async () => {
  const a = leafCert(['a.example']);
  const b = leafCert(['b.example']);
  const { dir, fileName, put } = configDir();
  put('a.crt', a.certFile);
  put('b.key', b.keyFile);
  writeFileSync(path.join(dir, 'junk.crt'), 'not a certificate');
  const d = declaredCertificates(
    {
      loadBalancers: [
        {
          listeners: [
            {
              certificates: [
                { certificateFile: 'missing.crt', privateKeyFile: 'b.key' },
                { certificateFile: 'a.crt', privateKeyFile: 'b.key' },
                { certificateFile: 'junk.crt', privateKeyFile: 'b.key' },
              ],
            },
          ],
        },
      ],
    },
    fileName,
    where,
  );
  await assert.rejects(readDeclaredCertificates(d, Date.now() + 60_000), (error: unknown) => {
    assert.ok(EbbError.is(error) && error.code === 'ConfigInvalid');
    const lines = error.message.split('\n');
    assert.equal(lines[0], `ebb.yaml:1:1: loadBalancers[0].listeners[0].certificates[0]: ${path.join(dir, 'missing.crt')}: no such file`);
    assert.equal(lines[1], `ebb.yaml:1:1: loadBalancers[0].listeners[0].certificates[1]: ${path.join(dir, 'b.key')}: does not match the certificate ${path.join(dir, 'a.crt')} (its public key is another key's); give the key the certificate was made for`);
    assert.match(lines[2] ?? '', new RegExp(`certificates\\[2\\]: ${path.join(dir, 'junk.crt').replace(/[.]/g, '\\.')}: is not PEM`));
    assert.equal(lines[3], 'Fix the certificate files, or the paths to them in the configuration file.');
    return true;
  });
});

test('the file\'s certificate ARNs must be ACM\'s form, top level and on a listener, at their line', () => {
  const text = `
certificates:
  - arn: site
    certificateFile: site.crt
    privateKeyFile: site.key
loadBalancers:
  - name: web
    listeners:
      - protocol: HTTPS
        port: 8443
        certificates:
          - certificateArn: arn:aws:elasticloadbalancing:us-east-1:123456789012:certificate/x
        defaultActions: [{ type: forward, targetGroup: web }]
targetGroups:
  - { name: web, protocol: HTTP, port: 80 }
`;
  assert.throws(
    () => parseConfig(text, '/srv/ebb.yaml'),
    (error: unknown) =>
      EbbError.is(error) &&
      error.code === 'ConfigInvalid' &&
      error.message.includes('/srv/ebb.yaml:3:10: certificates[0].arn: must be a certificate ARN such as arn:aws:acm:us-east-1:123456789012:certificate/site; got "site"') &&
      /\/srv\/ebb\.yaml:12:29: loadBalancers\[0\]\.listeners\[0\]\.certificates\[0\]\.certificateArn: must be a certificate ARN/.test(error.message),
  );
});
