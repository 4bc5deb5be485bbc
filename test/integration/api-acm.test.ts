import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { leafCert, testCa } from '../support/certs.ts';
import { aws, failsWith, freePort, missingClient, ok, python, startApiHarness, type ApiHarness } from './api-harness.ts';

/**
 * ACM on the admin endpoint, driven by the real clients: the `aws` CLI (`fileb://` blobs, as AWS
 * documents import-certificate) and boto3. ACM speaks AWS JSON 1.1 on the same URL as the Query APIs;
 * these calls prove the clients sign for `acm`, send their JSON, and read ebb's JSON answers and errors.
 */

const skipCli = missingClient('aws');
const skipBoto = missingClient('boto3');
const BOTO_SCRIPT = fileURLToPath(new URL('../clients/boto3_acm.py', import.meta.url));
let h: ApiHarness;

/** A timestamp as a client printed it (epoch seconds, or ISO 8601) in ms. */
const ms = (v: number | string): number => (typeof v === 'number' ? v * 1000 : Date.parse(v));

before(async () => {
  if (skipCli !== null && skipBoto !== null) return;
  h = await startApiHarness();
});
after(async () => {
  if (skipCli !== null && skipBoto !== null) return;
  await h.close();
});

test('aws acm: import-certificate from fileb://, describe, list (EC only when asked), get, tags, re-import to the same ARN, delete', { skip: skipCli ?? false, timeout: 60_000 }, async () => {
  const leaf = leafCert(['cli.example', 'www.cli.example']);
  const ca = testCa();
  const imported = ok(
    await aws(h, ['acm', 'import-certificate', '--certificate', `fileb://${leaf.certFile}`, '--private-key', `fileb://${leaf.keyFile}`,
      '--certificate-chain', `fileb://${ca.certFile}`, '--tags', 'Key=team,Value=edge']),
  );
  const arn: string = imported.CertificateArn;
  assert.match(arn, /^arn:aws:acm:us-east-1:123456789012:certificate\/[0-9a-f-]{36}$/);

  const d = ok(await aws(h, ['acm', 'describe-certificate', '--certificate-arn', arn])).Certificate;
  assert.equal(d.CertificateArn, arn);
  assert.equal(d.DomainName, 'cli.example');
  assert.deepEqual(d.SubjectAlternativeNames, ['cli.example', 'www.cli.example']);
  assert.equal(d.Type, 'IMPORTED');
  assert.equal(d.Status, 'ISSUED');
  assert.equal(d.KeyAlgorithm, 'EC_prime256v1');
  assert.equal(d.Subject, 'CN=cli.example');
  assert.equal(d.Issuer, 'ebb test CA');
  assert.match(d.Serial, /^[0-9a-f]{2}(:[0-9a-f]{2})*$/);
  assert.deepEqual(d.InUseBy, []);
  assert.deepEqual(d.ExtendedKeyUsages, [{ Name: 'TLS_WEB_SERVER_AUTHENTICATION', OID: '1.3.6.1.5.5.7.3.1' }]);
  // The CLI (v1) prints timestamps as it got them: epoch seconds.
  assert.ok(ms(d.NotAfter) - ms(d.NotBefore) > 800 * 86_400_000, `${d.NotBefore} .. ${d.NotAfter}`);
  assert.ok(Math.abs(ms(d.ImportedAt) - Date.now()) < 60_000, String(d.ImportedAt));

  // ACM's default filter lists RSA 1024 and 2048 certificates only: an EC certificate is listed when asked for.
  assert.deepEqual(ok(await aws(h, ['acm', 'list-certificates'])).CertificateSummaryList, []);
  const listed = ok(await aws(h, ['acm', 'list-certificates', '--includes', 'keyTypes=EC_prime256v1,RSA_2048'])).CertificateSummaryList;
  assert.deepEqual(listed.map((s: any) => [s.CertificateArn, s.DomainName, s.InUse, s.Status]), [[arn, 'cli.example', false, 'ISSUED']]);
  const got = ok(await aws(h, ['acm', 'get-certificate', '--certificate-arn', arn]));
  assert.match(got.Certificate, /^-----BEGIN CERTIFICATE-----\n/);
  assert.equal(got.CertificateChain, ca.certPem);

  ok(await aws(h, ['acm', 'add-tags-to-certificate', '--certificate-arn', arn, '--tags', 'Key=env,Value=test']));
  assert.deepEqual(ok(await aws(h, ['acm', 'list-tags-for-certificate', '--certificate-arn', arn])).Tags, [
    { Key: 'team', Value: 'edge' },
    { Key: 'env', Value: 'test' },
  ]);

  const renewed = leafCert(['cli.example', 'www.cli.example'], 'renewed');
  const again = ok(await aws(h, ['acm', 'import-certificate', '--certificate-arn', arn, '--certificate', `fileb://${renewed.certFile}`, '--private-key', `fileb://${renewed.keyFile}`]));
  assert.equal(again.CertificateArn, arn);
  assert.notEqual(ok(await aws(h, ['acm', 'describe-certificate', '--certificate-arn', arn])).Certificate.Serial, d.Serial);

  ok(await aws(h, ['acm', 'delete-certificate', '--certificate-arn', arn]));
  failsWith(await aws(h, ['acm', 'describe-certificate', '--certificate-arn', arn]), 'ResourceNotFoundException', /Could not find certificate/);
});

test('aws acm: modelled errors, an operation ebb does not serve, and a signature error, all as ACM\'s JSON', { skip: skipCli ?? false, timeout: 60_000 }, async () => {
  const a = leafCert(['err-a.example']);
  const b = leafCert(['err-b.example']);
  failsWith(
    await aws(h, ['acm', 'import-certificate', '--certificate', `fileb://${a.certFile}`, '--private-key', `fileb://${b.keyFile}`]),
    'ValidationException',
    /PrivateKey: does not match the certificate/,
  );
  failsWith(await aws(h, ['acm', 'delete-certificate', '--certificate-arn', 'arn:aws:elasticloadbalancing:us-east-1:123456789012:x']), 'InvalidArnException');
  failsWith(await aws(h, ['acm', 'request-certificate', '--domain-name', 'nope.example']), 'UnknownOperationException', /ebb issues no certificates/);
  // Signed with another secret: the signature error comes back as ACM's JSON, which the CLI reads.
  failsWith(
    await aws(h, ['acm', 'list-certificates'], { AWS_SECRET_ACCESS_KEY: 'not-the-secret' }),
    'SignatureDoesNotMatch',
  );
});

test('an unsigned ACM request is refused before its body is read, in ACM\'s JSON, not the Query API\'s XML', { skip: skipCli !== null && skipBoto !== null }, async () => {
  const res = await fetch(h.endpoint, {
    method: 'POST',
    headers: { 'x-amz-target': 'CertificateManager.ListCertificates', 'content-type': 'application/x-amz-json-1.1' },
    body: '{}',
  });
  assert.equal(res.status, 403);
  assert.equal(res.headers.get('content-type'), 'application/x-amz-json-1.1');
  assert.equal(res.headers.get('x-amzn-errortype'), 'MissingAuthenticationToken');
  const body = (await res.json()) as { __type: string; message: string };
  assert.equal(body.__type, 'MissingAuthenticationToken');
  assert.match(res.headers.get('x-amzn-requestid') ?? '', /^[0-9a-f-]{36}$/);
});

test('aws acm: a certificate an HTTPS listener serves is described with its load balancer and cannot be deleted until the listener lets it go', { skip: skipCli ?? false, timeout: 60_000 }, async () => {
  const leaf = leafCert(['in-use.example']);
  const arn: string = ok(await aws(h, ['acm', 'import-certificate', '--certificate', `fileb://${leaf.certFile}`, '--private-key', `fileb://${leaf.keyFile}`])).CertificateArn;
  const lb = await h.control.createLoadBalancer({ name: 'acm-in-use' });
  const tg = await h.control.createTargetGroup({ name: 'acm-in-use', protocol: 'HTTP', port: 80, targetType: 'ip' });
  const listener = await h.control.createListener({
    loadBalancerArn: lb.arn,
    protocol: 'HTTPS',
    port: await freePort(),
    address: '127.0.0.1',
    certificateArns: [arn],
    defaultActions: [{ type: 'forward', targetGroupArn: tg.arn }],
  });
  assert.deepEqual(ok(await aws(h, ['acm', 'describe-certificate', '--certificate-arn', arn])).Certificate.InUseBy, [lb.arn]);
  failsWith(await aws(h, ['acm', 'delete-certificate', '--certificate-arn', arn]), 'ResourceInUseException', new RegExp(`in use by listener ${listener.arn.replace(/[/.]/g, '\\$&')}`));
  await h.control.deleteListener(listener.arn);
  ok(await aws(h, ['acm', 'delete-certificate', '--certificate-arn', arn]));
});

test('boto3 acm: import bytes, describe, list with Includes and the paginator, get, tags, modelled exceptions, delete', { skip: skipBoto ?? false, timeout: 30_000 }, async () => {
  const leaf = leafCert(['boto.example']);
  const other = leafCert(['other.example']);
  const r = await python(h, BOTO_SCRIPT, [leaf.certFile, leaf.keyFile, testCa().certFile, other.keyFile]);
  assert.equal(r.code, 0, r.stderr);
  const out = r.json as any;
  assert.match(out.arn, /^arn:aws:acm:us-east-1:123456789012:certificate\//);
  assert.equal(out.describe.DomainName, 'boto.example');
  assert.equal(out.describe.Type, 'IMPORTED');
  assert.ok(!Number.isNaN(Date.parse(out.describe.NotAfter)));
  assert.ok(!out.list_default.some((s: any) => s.CertificateArn === out.arn), 'EC certificates are not in the default list');
  assert.ok(out.list_ec.includes(out.arn));
  assert.ok(out.paginated.includes(out.arn));
  assert.deepEqual(out.get, { certificate_starts: '-----BEGIN CERTIFICATE-----', has_chain: true });
  assert.deepEqual(out.tags, [{ Key: 'team', Value: 'edge' }]);
  assert.deepEqual([out.errors.mismatch.Code, out.errors.mismatch.Status], ['ValidationException', 400]);
  assert.equal(out.errors.not_found.Class, 'ResourceNotFoundException');
  assert.equal(out.errors.bad_arn.Code, 'InvalidArnException');
  assert.equal(out.errors.reserved_tag.Code, 'InvalidTagException');
  assert.equal(out.modelled_exception, true);
  assert.equal(out.after_delete.Code, 'ResourceNotFoundException');
});
