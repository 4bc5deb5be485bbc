import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../../test/fakes/fake-clock.ts';
import { FakeDataPlane } from '../../../test/fakes/fake-data-plane.ts';
import { leafCert } from '../../../test/support/certs.ts';
import { ControlPlane } from '../../control/control-plane.ts';
import { EbbError } from '../../shared/errors.ts';
import { InMemoryStateStore } from '../../store/in-memory-state-store.ts';
import { acmOperation, serveAcm } from './acm-endpoint.ts';

/** ACM's JSON 1.1 handling, in process: what the real clients cannot easily send (wrong types, bad tokens, filters). */

async function setup() {
  const clock = new FakeClock(Date.now() + 3_600_000);
  const cp = new ControlPlane({ clock, store: new InMemoryStateStore(), dataPlanes: [new FakeDataPlane()] });
  await cp.start();
  const internal: unknown[] = [];
  const call = async (operation: string, body: unknown, options: { contentType?: string; verify?: () => Promise<unknown> } = {}) => {
    const r = await serveAcm({
      operation,
      contentType: options.contentType ?? 'application/x-amz-json-1.1',
      body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
      requestId: 'req-1',
      control: cp,
      now: clock.wallTime(),
      verify: options.verify ?? (() => Promise.resolve()),
      onInternal: (e) => internal.push(e),
    });
    assert.equal(r.headers['content-type'], 'application/x-amz-json-1.1');
    assert.equal(r.headers['x-amzn-requestid'], 'req-1');
    return { status: r.status, json: JSON.parse(r.body) as any, errorType: r.headers['x-amzn-errortype'] };
  };
  const b64 = (text: string): string => Buffer.from(text).toString('base64');
  const importLeaf = async (names: string[], tag = ''): Promise<string> => {
    const leaf = leafCert(names, tag);
    const r = await call('ImportCertificate', { Certificate: b64(leaf.certPem), PrivateKey: b64(leaf.keyPem) });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    return r.json.CertificateArn as string;
  };
  return { cp, call, b64, importLeaf, internal, clock };
}

test('the target header: only CertificateManager.* is ACM', () => {
  assert.equal(acmOperation('CertificateManager.ListCertificates'), 'ListCertificates');
  assert.equal(acmOperation('DynamoDB_20120810.ListTables'), undefined);
  assert.equal(acmOperation(undefined), undefined);
  assert.equal(acmOperation(['CertificateManager.ListCertificates']), undefined);
});

test('errors are JSON with __type and message; the signature is checked first; content type, body and members are checked', async () => {
  const { call, b64 } = await setup();
  const unsigned = await call('ListCertificates', {}, { verify: () => Promise.reject(new EbbError('MissingAuthenticationToken', 'Request is missing Authentication Token')) });
  assert.deepEqual([unsigned.status, unsigned.json.__type, unsigned.errorType], [403, 'MissingAuthenticationToken', 'MissingAuthenticationToken']);
  assert.equal(unsigned.json.message, 'Request is missing Authentication Token');

  const form = await call('ListCertificates', {}, { contentType: 'application/x-www-form-urlencoded' });
  assert.deepEqual([form.status, form.json.__type], [400, 'ValidationException']);
  assert.equal((await call('ListCertificates', '{not json')).json.__type, 'ValidationException');
  assert.equal((await call('ListCertificates', '[]')).json.__type, 'ValidationException');
  assert.deepEqual((await call('ListCertificates', '')).json, { CertificateSummaryList: [] });

  const unknown = await call('ListTables', {});
  assert.deepEqual([unknown.status, unknown.json.__type], [400, 'UnknownOperationException']);
  assert.match(unknown.json.message, /serves ImportCertificate, DescribeCertificate, ListCertificates/);
  assert.match((await call('ExportCertificate', {})).json.message, /ebb exports no private keys/);

  assert.equal((await call('DescribeCertificate', {})).json.message, 'CertificateArn is required');
  assert.equal((await call('DescribeCertificate', { CertificateArn: 7 })).json.message, 'CertificateArn must be a string');
  assert.equal((await call('DescribeCertificate', JSON.parse('{"__proto__": {"CertificateArn": "x"}}'))).json.message, 'CertificateArn is required');
  const notBase64 = await call('ImportCertificate', { Certificate: '%%%', PrivateKey: b64('k') });
  assert.equal(notBase64.json.message, 'Certificate must be base64 (a blob)');
  const bigKey = await call('ImportCertificate', { Certificate: b64('c'), PrivateKey: b64('k'.repeat(5121)) });
  assert.equal(bigKey.json.message, 'PrivateKey must be 1 to 5120 bytes; got 5121');
  assert.equal((await call('ListCertificates', { MaxItems: 0 })).json.message, 'MaxItems must be an integer from 1 to 1000');
  assert.match((await call('ListCertificates', { CertificateStatuses: ['FINE'] })).json.message, /holds 'FINE', which is not one of PENDING_VALIDATION/);
  assert.equal((await call('ListCertificates', { Includes: { keyTypes: 'EC_prime256v1' } })).json.message, 'Includes.keyTypes must be a list of strings');
});

test('ListCertificates: key types (RSA 1024/2048 by default), statuses, extended key usage, sort by import time, pages by MaxItems and NextToken', async () => {
  const { call, importLeaf, clock } = await setup();
  const first = await importLeaf(['first.example']);
  clock.advance(1000);
  const second = await importLeaf(['second.example']);
  const ec = { keyTypes: ['EC_prime256v1'] };
  assert.deepEqual((await call('ListCertificates', {})).json.CertificateSummaryList, []);
  const all = (await call('ListCertificates', { Includes: ec })).json.CertificateSummaryList;
  assert.deepEqual(all.map((s: any) => s.CertificateArn), [first, second]);
  assert.deepEqual(Object.keys(all[0]).sort(), [
    'CertificateArn', 'DomainName', 'ExtendedKeyUsages', 'HasAdditionalSubjectAlternativeNames', 'ImportedAt', 'InUse', 'KeyAlgorithm', 'KeyUsages',
    'NotAfter', 'NotBefore', 'RenewalEligibility', 'Status', 'SubjectAlternativeNameSummaries', 'Type',
  ]);
  assert.equal(typeof all[0].NotAfter, 'number', 'timestamps are epoch seconds');
  assert.deepEqual(all[0].ExtendedKeyUsages, ['TLS_WEB_SERVER_AUTHENTICATION']);

  const desc = await call('ListCertificates', { Includes: ec, SortBy: 'CREATED_AT', SortOrder: 'DESCENDING' });
  assert.deepEqual(desc.json.CertificateSummaryList.map((s: any) => s.CertificateArn), [second, first]);
  assert.deepEqual((await call('ListCertificates', { Includes: ec, CertificateStatuses: ['EXPIRED'] })).json.CertificateSummaryList, []);
  assert.equal((await call('ListCertificates', { Includes: { ...ec, extendedKeyUsage: ['CODE_SIGNING'] } })).json.CertificateSummaryList.length, 0);
  assert.equal((await call('ListCertificates', { Includes: { ...ec, extendedKeyUsage: ['TLS_WEB_SERVER_AUTHENTICATION'] } })).json.CertificateSummaryList.length, 2);
  assert.equal((await call('ListCertificates', { Includes: { keyUsage: ['DIGITAL_SIGNATURE'] } })).json.__type, 'InvalidArgsException');

  const page1 = (await call('ListCertificates', { Includes: ec, MaxItems: 1 })).json;
  assert.deepEqual(page1.CertificateSummaryList.map((s: any) => s.CertificateArn), [first]);
  const page2 = (await call('ListCertificates', { Includes: ec, MaxItems: 1, NextToken: page1.NextToken })).json;
  assert.deepEqual(page2.CertificateSummaryList.map((s: any) => s.CertificateArn), [second]);
  assert.equal(page2.NextToken, undefined);
  assert.equal((await call('ListCertificates', { NextToken: 'made-up' })).json.__type, 'InvalidArgsException');

  // Expired: after its NotAfter the certificate lists as EXPIRED.
  clock.advance(900 * 86_400_000);
  assert.deepEqual((await call('ListCertificates', { Includes: ec, CertificateStatuses: ['EXPIRED'] })).json.CertificateSummaryList.length, 2);
  assert.equal((await call('DescribeCertificate', { CertificateArn: first })).json.Certificate.Status, 'EXPIRED');
});

test('tags: removed by key, or by key and value; ListTagsForCertificate; Tags must hold one', async () => {
  const { call, importLeaf } = await setup();
  const arn = await importLeaf(['tags.example']);
  await call('AddTagsToCertificate', { CertificateArn: arn, Tags: [{ Key: 'a', Value: '1' }, { Key: 'b', Value: '2' }, { Key: 'c' }] });
  await call('RemoveTagsFromCertificate', { CertificateArn: arn, Tags: [{ Key: 'a' }, { Key: 'b', Value: 'not 2' }] });
  assert.deepEqual((await call('ListTagsForCertificate', { CertificateArn: arn })).json, { Tags: [{ Key: 'b', Value: '2' }, { Key: 'c', Value: '' }] });
  assert.equal((await call('AddTagsToCertificate', { CertificateArn: arn, Tags: [] })).json.message, 'Tags must hold at least 1 tag');
  assert.equal((await call('AddTagsToCertificate', { CertificateArn: arn, Tags: [{ Value: 'x' }] })).json.message, 'Tags[0].Key is required');
  const deleted = await call('DeleteCertificate', { CertificateArn: arn });
  assert.deepEqual([deleted.status, deleted.json], [200, {}]);
});
