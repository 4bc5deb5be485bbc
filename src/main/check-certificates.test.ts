import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { leafCert, type TestCert } from '../../test/support/certs.ts';
import { runCheck, type CheckReport } from './check.ts';

/** `ebb check` reads a listener's certificate files as `ebb serve` does at a start or a reload. */

const FILE = `loadBalancers:
  - name: web
    listeners:
      - protocol: HTTPS
        port: 8443
        certificates:
          - { certificateFile: site.crt, privateKeyFile: site.key }
        defaultActions: [{ type: forward, targetGroup: app }]
targetGroups:
  - { name: app, protocol: HTTP, port: 80, targetType: ip }
`;

async function check(cert: TestCert, key: TestCert): Promise<{ code: number; report: CheckReport; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'ebb-check-certs-'));
  try {
    await writeFile(join(dir, 'ebb.yaml'), FILE);
    await copyFile(cert.certFile, join(dir, 'site.crt'));
    await copyFile(key.keyFile, join(dir, 'site.key'));
    let out = '';
    const io = { stdout: { write: (t: string) => (out += t) }, stderr: { write: () => true }, env: {}, cwd: dir };
    const code = await runCheck(['--config', 'ebb.yaml', '--state-dir', join(dir, 'state'), '--json'], io);
    return { code, report: JSON.parse(out) as CheckReport, dir };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('ebb check: a listener\'s certificate is read from its files and planned first; a key that does not match makes the file invalid, naming it', async () => {
  const site = leafCert(['check.example']);
  const ok = await check(site, site);
  assert.equal(ok.code, 0, JSON.stringify(ok.report));
  assert.match(ok.report.changes[0] ?? '', new RegExp(`^added certificate arn:aws:acm:us-east-1:123456789012:certificate/[0-9a-f-]{36} \\(${join(ok.dir, 'site.crt').replace(/[.]/g, '\\.')}\\)$`));
  assert.ok(ok.report.changes.some((c) => /listener web:8443/.test(c)), JSON.stringify(ok.report.changes));

  const bad = await check(site, leafCert(['other.example']));
  assert.equal(bad.code, 2);
  assert.equal(bad.report.valid, false);
  assert.match(bad.report.problems.join('\n'), new RegExp(`ebb\\.yaml:7:13: loadBalancers\\[0\\]\\.listeners\\[0\\]\\.certificates\\[0\\]: ${join(bad.dir, 'site.key').replace(/[.]/g, '\\.')}: does not match the certificate`));
});
