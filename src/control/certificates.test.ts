import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { FakeDataPlane } from '../../test/fakes/fake-data-plane.ts';
import { leafCert, testCa } from '../../test/support/certs.ts';
import { parseCertificate } from '../domain/certificates.ts';
import type { ListenerRecord, LoadBalancerRecord } from '../domain/resources.ts';
import { EbbError } from '../shared/errors.ts';
import { InMemoryStateStore } from '../store/in-memory-state-store.ts';
import { isCertificateArn, type DeclaredCertificateInput } from './certificates.ts';
import { ControlPlane } from './control-plane.ts';
import { put } from './store-transaction.ts';

const LB_ARN = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/0123456789abcdef';
const LISTENER_ARN = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/0123456789abcdef/fedcba9876543210';

/** A control plane on the given store, with a clock an hour past the real wall time (the test certificates are valid from the second they are made). */
async function start(store = new InMemoryStateStore(), clock = new FakeClock(Date.now() + 3_600_000)) {
  const dp = new FakeDataPlane();
  const cp = new ControlPlane({ clock, store, dataPlanes: [dp] });
  await cp.start();
  return { cp, dp, store, clock };
}

/** Writes an HTTPS listener serving `arns` (the default first) straight into the store, as a restart would find it. */
async function plantHttpsListener(store: InMemoryStateStore, arns: readonly string[], sslPolicy?: string): Promise<void> {
  const lb: LoadBalancerRecord = { arn: LB_ARN, name: 'web', type: 'application', scheme: 'internet-facing', createdAt: 0, attributes: {}, tags: [], source: 'api' };
  const listener: ListenerRecord = {
    arn: LISTENER_ARN,
    loadBalancerArn: LB_ARN,
    protocol: 'HTTPS',
    port: 8443,
    address: '127.0.0.1',
    defaultActions: [],
    tags: [],
    source: 'api',
    certificateArns: arns,
    ...(sslPolicy !== undefined && { sslPolicy }),
  };
  await store.commit([put('loadBalancer', lb.arn, lb), put('listener', listener.arn, listener)]);
}

async function refused(promise: Promise<unknown> | (() => unknown), code: string, pattern?: RegExp): Promise<void> {
  await assert.rejects(
    async () => (typeof promise === 'function' ? promise() : promise),
    (error: unknown) => EbbError.is(error) && error.code === code && (pattern === undefined || pattern.test(error.message)),
  );
}

test('import: a new ARN in ACM\'s form, described and listed, kept in the store across a restart', async () => {
  const { cp, store } = await start();
  const leaf = leafCert(['import.example', 'www.import.example']);
  const r = await cp.certificates.importCertificate({ certificatePem: leaf.certPem, privateKeyPem: leaf.keyPem, chainPem: testCa().certPem, tags: [{ key: 'team', value: 'web' }] });
  assert.match(r.arn, /^arn:aws:acm:us-east-1:123456789012:certificate\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.ok(isCertificateArn(r.arn));
  assert.equal(r.domainName, 'import.example');
  assert.deepEqual(r.subjectAlternativeNames, ['import.example', 'www.import.example']);
  assert.equal(r.source, 'api');
  assert.deepEqual(r.tags, [{ key: 'team', value: 'web' }]);
  assert.deepEqual(cp.certificates.describeCertificate(r.arn), { record: r, listeners: [], inUseBy: [] });
  assert.deepEqual(cp.certificates.listCertificates().map((v) => v.record.arn), [r.arn]);
  assert.ok(cp.certificates.hasCertificate(r.arn));

  const again = await start(store);
  assert.deepEqual(again.cp.certificates.describeCertificate(r.arn).record, r);
});

test('re-import to an existing ARN replaces the certificate and keeps the ARN and tags; tags on re-import, unknown and malformed ARNs are refused', async () => {
  const { cp } = await start();
  const first = leafCert(['re.example']);
  const r = await cp.certificates.importCertificate({ certificatePem: first.certPem, privateKeyPem: first.keyPem, tags: [{ key: 'k', value: 'v' }] });
  const renewed = leafCert(['re.example'], 'renewed');
  const r2 = await cp.certificates.importCertificate({ certificateArn: r.arn, certificatePem: renewed.certPem, privateKeyPem: renewed.keyPem });
  assert.equal(r2.arn, r.arn);
  assert.notEqual(r2.serial, r.serial);
  assert.deepEqual(r2.tags, [{ key: 'k', value: 'v' }]);
  assert.equal(cp.certificates.listCertificates().length, 1);

  await refused(cp.certificates.importCertificate({ certificateArn: r.arn, certificatePem: renewed.certPem, privateKeyPem: renewed.keyPem, tags: [{ key: 'a', value: 'b' }] }), 'InvalidParameterException');
  await refused(
    cp.certificates.importCertificate({ certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/nope', certificatePem: renewed.certPem, privateKeyPem: renewed.keyPem }),
    'ResourceNotFoundException',
  );
  await refused(cp.certificates.importCertificate({ certificateArn: 'not-an-arn', certificatePem: renewed.certPem, privateKeyPem: renewed.keyPem }), 'InvalidArnException');
  await refused(() => cp.certificates.describeCertificate('arn:aws:acm:us-east-1:123456789012:certificate/missing'), 'ResourceNotFoundException');
});

test('a key that does not match, garbage, and a certificate not valid now are ValidationException naming the member', async () => {
  const { cp } = await start();
  const a = leafCert(['a.example']);
  const b = leafCert(['b.example']);
  await refused(cp.certificates.importCertificate({ certificatePem: a.certPem, privateKeyPem: b.keyPem }), 'ValidationException', /^PrivateKey: does not match the certificate Certificate/);
  await refused(cp.certificates.importCertificate({ certificatePem: 'junk', privateKeyPem: a.keyPem }), 'ValidationException', /^Certificate: is not PEM/);
  await refused(cp.certificates.importCertificate({ certificatePem: a.certPem + testCa().certPem, privateKeyPem: a.keyPem }), 'ValidationException', /holds 2 certificates/);
  const past = await start(new InMemoryStateStore(), new FakeClock(Date.UTC(2001, 0, 1)));
  await refused(past.cp.certificates.importCertificate({ certificatePem: a.certPem, privateKeyPem: a.keyPem }), 'ValidationException', /not valid yet/);
  assert.equal(cp.certificates.listCertificates().length, 0);
});

test('a listener\'s certificates reach the snapshot (default first, with its chain, the policy as Node settings); re-import republishes; delete is refused while in use', async () => {
  const store = new InMemoryStateStore();
  const seed = await start(store);
  const one = leafCert(['one.example']);
  const two = leafCert(['two.example', '*.two.example']);
  const c1 = await seed.cp.certificates.importCertificate({ certificatePem: one.certPem, privateKeyPem: one.keyPem, chainPem: testCa().certPem });
  const c2 = await seed.cp.certificates.importCertificate({ certificatePem: two.certPem, privateKeyPem: two.keyPem });
  await plantHttpsListener(store, [c1.arn, c2.arn]);

  const { cp, dp } = await start(store);
  const tls = dp.latest.listeners.find((l) => l.arn === LISTENER_ARN)?.tls;
  assert.ok(tls !== undefined && tls !== null);
  assert.deepEqual(tls.certificates.map((c) => c.arn), [c1.arn, c2.arn]);
  assert.equal(tls.certificates[0]?.certificatePem, c1.certificatePem + testCa().certPem.replace(/\r\n/g, '\n'));
  assert.deepEqual(tls.certificates[1]?.names, ['two.example', '*.two.example']);
  assert.equal(tls.policy.name, 'ELBSecurityPolicy-TLS13-1-2-2021-06');
  assert.equal(tls.policy.minVersion, 'TLSv1.2');

  assert.deepEqual(cp.certificates.describeCertificate(c2.arn).inUseBy, [LB_ARN]);
  await refused(cp.certificates.deleteCertificate(c2.arn), 'ResourceInUseException', new RegExp(`in use by listener ${LISTENER_ARN.replace(/[/.]/g, '\\$&')}`));

  const before = dp.snapshots.length;
  const renewed = leafCert(['two.example', '*.two.example'], 'renewed');
  await cp.certificates.importCertificate({ certificateArn: c2.arn, certificatePem: renewed.certPem, privateKeyPem: renewed.keyPem });
  assert.equal(dp.snapshots.length, before + 1, 're-importing a served certificate publishes a snapshot');
  assert.equal(dp.latest.listeners[0]?.tls?.certificates[1]?.certificatePem, parseCertificate({ certificatePem: renewed.certPem, privateKeyPem: renewed.keyPem }).certificatePem);

  const unused = await cp.certificates.importCertificate({ certificatePem: one.certPem, privateKeyPem: one.keyPem });
  await cp.certificates.deleteCertificate(unused.arn);
  assert.ok(!cp.certificates.hasCertificate(unused.arn));
  assert.equal(dp.snapshots.length, before + 1, 'an unused certificate changes no snapshot');
});

test('a listener naming another policy gets it; an HTTP listener publishes no TLS', async () => {
  const store = new InMemoryStateStore();
  const seed = await start(store);
  const leaf = leafCert(['p.example']);
  const c = await seed.cp.certificates.importCertificate({ certificatePem: leaf.certPem, privateKeyPem: leaf.keyPem });
  await plantHttpsListener(store, [c.arn], 'ELBSecurityPolicy-2016-08');
  const { cp, dp } = await start(store);
  const policy = dp.latest.listeners[0]?.tls?.policy;
  assert.equal(policy?.name, 'ELBSecurityPolicy-2016-08');
  assert.equal(policy?.minVersion, 'TLSv1');
  assert.match(policy?.ciphers ?? '', /:@SECLEVEL=0$/);
  const lb = await cp.createLoadBalancer({ name: 'plain' });
  const tg = await cp.createTargetGroup({ name: 'plain', protocol: 'HTTP', port: 80, targetType: 'ip' });
  await cp.createListener({ loadBalancerArn: lb.arn, protocol: 'HTTP', port: 8081, defaultActions: [{ type: 'forward', targetGroupArn: tg.arn }] });
  assert.equal(dp.latest.listeners.find((l) => l.port === 8081)?.tls, null);
});

test('tags: added, replaced, removed by key or by key and value; ACM\'s rules refuse reserved keys and too many', async () => {
  const { cp } = await start();
  const leaf = leafCert(['tags.example']);
  const r = await cp.certificates.importCertificate({ certificatePem: leaf.certPem, privateKeyPem: leaf.keyPem });
  await cp.certificates.addCertificateTags(r.arn, [{ key: 'a', value: '1' }, { key: 'b', value: '2' }, { key: 'c', value: '3' }]);
  await cp.certificates.addCertificateTags(r.arn, [{ key: 'a', value: 'one' }]);
  await cp.certificates.removeCertificateTags(r.arn, [{ key: 'b' }, { key: 'c', value: 'not 3' }]);
  assert.deepEqual(cp.certificates.describeCertificate(r.arn).record.tags, [{ key: 'a', value: 'one' }, { key: 'c', value: '3' }]);
  await refused(cp.certificates.addCertificateTags(r.arn, [{ key: 'aws:x', value: '' }]), 'InvalidTagException');
  const many = Array.from({ length: 49 }, (_, i) => ({ key: `k${i}`, value: '' }));
  await refused(cp.certificates.addCertificateTags(r.arn, many), 'TooManyTagsException');
});

test('the file\'s certificates: put when new or changed, nothing when unchanged, removed once undeclared and unused; an API certificate\'s ARN is refused', async () => {
  const { cp, dp } = await start();
  const arn = 'arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-4333-8444-555555555555';
  const declared = (leaf: ReturnType<typeof leafCert>): DeclaredCertificateInput => ({
    arn,
    parsed: parseCertificate({ certificatePem: leaf.certPem, privateKeyPem: leaf.keyPem }),
    files: { certificateFile: leaf.certFile, privateKeyFile: leaf.keyFile },
  });
  const v1 = leafCert(['file.example']);
  assert.deepEqual(await cp.certificates.applyDeclared([declared(v1)]), [`added certificate ${arn} (${v1.certFile})`]);
  assert.equal(cp.certificates.describeCertificate(arn).record.source, 'config');
  assert.deepEqual(await cp.certificates.applyDeclared([declared(v1)]), []);
  const v2 = leafCert(['file.example'], 'v2');
  assert.deepEqual(await cp.certificates.applyDeclared([declared(v2)]), [`reloaded certificate ${arn} (${v2.certFile})`]);
  await refused(
    cp.certificates.importCertificate({ certificateArn: arn, certificatePem: v2.certPem, privateKeyPem: v2.keyPem }),
    'ValidationException',
    /declared in the configuration file/,
  );
  const snapshots = dp.snapshots.length;
  assert.deepEqual(await cp.certificates.removeUndeclared([]), [`removed certificate ${arn}`]);
  assert.ok(!cp.certificates.hasCertificate(arn));
  assert.equal(dp.snapshots.length, snapshots);

  const api = await cp.certificates.importCertificate({ certificatePem: v1.certPem, privateKeyPem: v1.keyPem });
  await refused(cp.certificates.applyDeclared([{ ...declared(v1), arn: api.arn }]), 'ConfigInvalid', /was imported through the API/);
});
