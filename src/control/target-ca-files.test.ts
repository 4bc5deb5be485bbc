import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { FakeDataPlane } from '../../test/fakes/fake-data-plane.ts';
import { FakeHealthChecker } from '../../test/fakes/fake-health-checker.ts';
import { leafCert, testCa } from '../../test/support/certs.ts';
import { InMemoryStateStore } from '../store/in-memory-state-store.ts';
import { checkDeclared } from './apply-declared.ts';
import { ControlPlane } from './control-plane.ts';
import type { DeclaredTargetGroup } from './declared-state.ts';
import { readCaFile, TARGET_CA_FILE, TargetCaFiles } from './target-ca-files.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'ebb-ca-files-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const group = (attributes: Record<string, string>, protocol: 'HTTP' | 'HTTPS' | 'TCP' = 'HTTPS') => ({ arn: 'arn:tg/secure', protocol, attributes });

test('a CA file is read when the attribute is set; the publication reads what was kept, not the disk', () => {
  const file = path.join(dir, 'ca-set.pem');
  writeFileSync(file, testCa().certPem);
  const files = new TargetCaFiles();
  files.check({ [TARGET_CA_FILE]: file });
  writeFileSync(file, 'changed on disk');
  assert.equal(files.targetTls(group({ [TARGET_CA_FILE]: file }))?.caPem?.trim(), testCa().certPem.trim());
});

test('no CA: an HTTPS group does not verify; HTTP and TCP groups speak no TLS', () => {
  const files = new TargetCaFiles();
  assert.deepEqual(files.targetTls(group({})), { caPem: null });
  assert.equal(files.targetTls(group({}, 'HTTP')), null);
  assert.equal(files.targetTls(group({}, 'TCP')), null);
  files.check({ other: 'x', [TARGET_CA_FILE]: null });
});

test('a file that cannot be used is refused when set, naming the file and why', () => {
  const files = new TargetCaFiles();
  const garbage = path.join(dir, 'garbage.pem');
  writeFileSync(garbage, 'not a certificate\n');
  const broken = path.join(dir, 'broken.pem');
  writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
  const cases: Array<[string, RegExp]> = [
    ['relative/ca.pem', /names relative\/ca\.pem, which is not an absolute path/],
    [path.join(dir, 'missing.pem'), /missing\.pem, which cannot be read \(no such file\)/],
    [dir, /cannot be read \(it is a directory\)/],
    [garbage, /garbage\.pem, which holds no PEM certificate/],
    [broken, /broken\.pem, which holds a certificate \(number 1\) that cannot be parsed/],
  ];
  for (const [file, says] of cases) {
    assert.throws(
      () => files.check({ [TARGET_CA_FILE]: file }),
      (e: Error & { code?: string }) => e.code === 'ValidationError' && says.test(e.message) && /give the path of a PEM file/.test(e.message),
      file,
    );
  }
});

test('a bundle keeps every certificate, and only certificates', () => {
  const file = path.join(dir, 'bundle.pem');
  const leaf = leafCert(['bundle.test']);
  writeFileSync(file, `${testCa().certPem}${leaf.keyPem}${leaf.certPem}`);
  const pem = readCaFile(file);
  assert.equal(pem.match(/BEGIN CERTIFICATE/g)?.length, 2);
  assert.ok(!pem.includes('PRIVATE KEY'));
});

test('after a restart a file that cannot be read publishes an empty CA (trusts nothing) and is logged; a reload reads every file again and keeps the old PEM of one that fails', () => {
  const logs: Array<Record<string, unknown>> = [];
  const files = new TargetCaFiles((l) => logs.push(l));
  const gone = path.join(dir, 'gone.pem');
  assert.deepEqual(files.targetTls(group({ [TARGET_CA_FILE]: gone })), { caPem: '' });
  assert.equal(logs[0]?.event, 'target-tls:ca-file-unreadable');
  assert.equal(logs[0]?.file, gone);
  assert.equal(logs[0]?.targetGroupArn, 'arn:tg/secure');

  const renewed = path.join(dir, 'renewed.pem');
  writeFileSync(renewed, testCa().certPem);
  files.check({ [TARGET_CA_FILE]: renewed });
  const other = leafCert(['renewed.test']).certPem;
  writeFileSync(renewed, other);
  writeFileSync(gone, testCa().certPem);
  assert.deepEqual(files.reload(), []);
  assert.equal(files.targetTls(group({ [TARGET_CA_FILE]: renewed }))?.caPem?.trim(), other.trim());
  assert.equal(files.targetTls(group({ [TARGET_CA_FILE]: gone }))?.caPem?.trim(), testCa().certPem.trim());
  rmSync(renewed);
  assert.deepEqual(files.reload(), [renewed]);
  assert.equal(files.targetTls(group({ [TARGET_CA_FILE]: renewed }))?.caPem?.trim(), other.trim(), 'the PEM read before is kept');
});

test('through the control plane: the attribute is set on an HTTPS group only, a bad file is refused with nothing changed, the snapshot and the HTTPS checks carry the PEM, and a reload publishes a renewed file', async () => {
  const dp = new FakeDataPlane();
  const health = new FakeHealthChecker();
  const cp = new ControlPlane({ clock: new FakeClock(), store: new InMemoryStateStore(), dataPlanes: [dp], healthChecker: health });
  await cp.start();
  const ca = path.join(dir, 'cp-ca.pem');
  writeFileSync(ca, testCa().certPem);
  const missing = path.join(dir, 'cp-missing.pem');

  await assert.rejects(
    cp.createTargetGroup({ name: 'plain', protocol: 'HTTP', port: 80, targetType: 'ip', attributes: { [TARGET_CA_FILE]: ca } }),
    /Attribute key 'ebb.target_tls.ca_file' is not supported on a HTTP target group/,
  );
  await assert.rejects(
    cp.createTargetGroup({ name: 'secure', protocol: 'HTTPS', port: 443, targetType: 'ip', attributes: { [TARGET_CA_FILE]: missing } }),
    (e: Error & { code?: string }) => e.code === 'ValidationError' && e.message.includes(missing) && e.message.includes('no such file'),
  );
  assert.deepEqual(cp.describeTargetGroups(), [], 'nothing was created');

  const tg = await cp.createTargetGroup({ name: 'secure', protocol: 'HTTPS', port: 443, targetType: 'ip', attributes: { [TARGET_CA_FILE]: ca } });
  const lb = await cp.createLoadBalancer({ name: 'web' });
  await cp.createListener({ loadBalancerArn: lb.arn, protocol: 'HTTP', port: 8080, defaultActions: [{ type: 'forward', targetGroupArn: tg.arn }] });
  await cp.registerTargets(tg.arn, [{ id: '127.0.0.1', port: 8443 }]);
  assert.equal(dp.latest.targetGroups.get(tg.arn)?.targetTls?.caPem, readCaFile(ca));
  assert.equal(health.targets[0]?.config.protocol, 'HTTPS');
  assert.equal(health.targets[0]?.caPem, readCaFile(ca));

  await assert.rejects(cp.modifyTargetGroupAttributes(tg.arn, { [TARGET_CA_FILE]: missing }), /no such file/);
  assert.equal(cp.describeTargetGroupAttributes(tg.arn)[TARGET_CA_FILE], ca, 'the file set before stays');

  const renewed = leafCert(['renewed-ca.test']).certPem;
  writeFileSync(ca, renewed);
  assert.deepEqual(cp.reloadTargetCaFiles(), []);
  assert.equal(dp.latest.targetGroups.get(tg.arn)?.targetTls?.caPem?.trim(), renewed.trim());
  assert.equal(health.targets[0]?.caPem?.trim(), renewed.trim());

  await cp.modifyTargetGroupAttributes(tg.arn, { [TARGET_CA_FILE]: '' });
  assert.deepEqual(dp.latest.targetGroups.get(tg.arn)?.targetTls, { caPem: null }, 'empty: not verified');
  assert.equal(health.targets[0]?.caPem, undefined);
  await cp.close();
});

test('the configuration file: a CA file that cannot be read refuses the whole file before anything changes (ebb check, start, reload), naming the group, the file and why', async () => {
  const cp = new ControlPlane({ clock: new FakeClock(), store: new InMemoryStateStore(), dataPlanes: [new FakeDataPlane()] });
  await cp.start();
  const missing = path.join(dir, 'declared-missing.pem');
  const secure: DeclaredTargetGroup = { name: 'secure', protocol: 'HTTPS', port: 443, targetType: 'ip', healthCheck: {}, attributes: { [TARGET_CA_FILE]: missing }, targets: [] };
  await assert.rejects(
    checkDeclared(cp, { loadBalancers: [], targetGroups: [secure], instances: [] }),
    (e: Error & { code?: string }) => e.code === 'ConfigInvalid' && e.message.includes(`Target group 'secure'`) && e.message.includes(`${missing}, which cannot be read (no such file)`) && e.message.endsWith('Nothing was changed'),
  );
  const ca = path.join(dir, 'declared-ca.pem');
  writeFileSync(ca, testCa().certPem);
  await checkDeclared(cp, { loadBalancers: [], targetGroups: [{ ...secure, attributes: { [TARGET_CA_FILE]: ca } }], instances: [] });
  await cp.close();
});
