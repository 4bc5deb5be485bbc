import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { EbbError } from '../shared/errors.ts';
import { type SignedRequest, SigV4Verifier } from './sigv4.ts';

const NOW = Date.UTC(2026, 5, 1, 12, 0, 0);
const KEY = { accessKeyId: 'AKIDEBBTEST', secretAccessKey: 'secret/with+chars' };
const BODY = 'Action=DescribeTargetGroups&Version=2015-12-01';

interface SignOptions {
  readonly secret?: string;
  readonly accessKeyId?: string;
  readonly at?: number;
  /** The JS SDK adds x-amz-content-sha256 and its own headers; botocore signs content-type;host;x-amz-date only. */
  readonly style: 'sdk' | 'botocore';
  readonly region?: string;
  readonly body?: string;
}

async function signed(o: SignOptions): Promise<SignedRequest> {
  const headers: Record<string, string> = {
    host: '127.0.0.1:9900',
    'content-type': o.style === 'botocore' ? 'application/x-www-form-urlencoded; charset=utf-8' : 'application/x-www-form-urlencoded',
  };
  if (o.style === 'sdk') {
    headers['amz-sdk-invocation-id'] = '4b1c9e3e-0000-4000-8000-000000000000';
    headers['amz-sdk-request'] = 'attempt=1; max=1';
    headers['content-length'] = String(Buffer.byteLength(o.body ?? BODY));
    headers['x-amz-user-agent'] = 'aws-sdk-js/3.0.0';
  }
  const signer = new SignatureV4({
    credentials: { accessKeyId: o.accessKeyId ?? KEY.accessKeyId, secretAccessKey: o.secret ?? KEY.secretAccessKey },
    region: o.region ?? 'us-east-1',
    service: 'elasticloadbalancing',
    sha256: Sha256,
    applyChecksum: o.style === 'sdk',
  });
  const req = await signer.sign(
    new HttpRequest({ method: 'POST', protocol: 'http:', hostname: '127.0.0.1', port: 9900, path: '/', headers, body: o.body ?? BODY }),
    { signingDate: new Date(o.at ?? NOW) },
  );
  const lower: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) lower[k.toLowerCase()] = v;
  return { method: 'POST', path: '/', rawQuery: '', headers: lower, body: Buffer.from(o.body ?? BODY) };
}

function verifier(): SigV4Verifier {
  return new SigV4Verifier([KEY, { accessKeyId: 'OTHER', secretAccessKey: 'x' }], () => NOW);
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(EbbError.is(err), String(err));
    return err.code;
  }
  return 'OK';
}

test('accepts the JS SDK style (eight signed headers, x-amz-content-sha256)', async () => {
  const req = await signed({ style: 'sdk' });
  assert.match(String(req.headers['authorization']), /SignedHeaders=amz-sdk-invocation-id;amz-sdk-request;content-length;content-type;host;x-amz-content-sha256;x-amz-date;x-amz-user-agent/);
  const who = await verifier().verify(req);
  assert.deepEqual(who, { accessKeyId: KEY.accessKeyId, region: 'us-east-1', service: 'elasticloadbalancing' });
});

test('accepts the botocore style (content-type;host;x-amz-date, no body hash header), any region', async () => {
  const req = await signed({ style: 'botocore', region: 'eu-west-3' });
  assert.match(String(req.headers['authorization']), /SignedHeaders=content-type;host;x-amz-date,/);
  assert.equal(req.headers['x-amz-content-sha256'], undefined);
  assert.equal((await verifier().verify(req)).region, 'eu-west-3');
});

test('a wrong secret is SignatureDoesNotMatch', async () => {
  assert.equal(await codeOf(verifier().verify(await signed({ style: 'botocore', secret: 'wrong' }))), 'SignatureDoesNotMatch');
});

test('a changed body is SignatureDoesNotMatch, with and without the body hash header', async () => {
  for (const style of ['sdk', 'botocore'] as const) {
    const req = await signed({ style });
    const tampered = { ...req, body: Buffer.from(BODY.replace('DescribeTargetGroups', 'DeleteTargetGroup')) };
    assert.equal(await codeOf(verifier().verify(tampered)), 'SignatureDoesNotMatch', style);
  }
});

test('a changed signed header is SignatureDoesNotMatch', async () => {
  const req = await signed({ style: 'botocore' });
  assert.equal(await codeOf(verifier().verify({ ...req, headers: { ...req.headers, host: 'evil:9900' } })), 'SignatureDoesNotMatch');
});

test('an unknown access key is InvalidClientTokenId', async () => {
  assert.equal(await codeOf(verifier().verify(await signed({ style: 'sdk', accessKeyId: 'AKIDUNKNOWN' }))), 'InvalidClientTokenId');
});

test('a date more than 15 minutes off either way is RequestExpired; 14 minutes is fine', async () => {
  assert.equal(await codeOf(verifier().verify(await signed({ style: 'botocore', at: NOW - 16 * 60_000 }))), 'RequestExpired');
  assert.equal(await codeOf(verifier().verify(await signed({ style: 'botocore', at: NOW + 16 * 60_000 }))), 'RequestExpired');
  assert.equal(await codeOf(verifier().verify(await signed({ style: 'botocore', at: NOW - 14 * 60_000 }))), 'OK');
});

test('no Authorization header is MissingAuthenticationToken; a malformed one IncompleteSignature', async () => {
  const req = await signed({ style: 'botocore' });
  const { authorization, ...rest } = req.headers;
  assert.ok(authorization !== undefined);
  assert.equal(await codeOf(verifier().verify({ ...req, headers: rest })), 'MissingAuthenticationToken');
  assert.equal(await codeOf(verifier().verify({ ...req, headers: { ...rest, authorization: 'AWS4-HMAC-SHA256 Credential=x' } })), 'IncompleteSignature');
  assert.equal(await codeOf(verifier().verify({ ...req, headers: { ...rest, authorization: 'Basic dXNlcjpwYXNz' } })), 'IncompleteSignature');
  const noDate = { ...req.headers };
  delete noDate['x-amz-date'];
  assert.equal(await codeOf(verifier().verify({ ...req, headers: noDate })), 'IncompleteSignature');
});

test('the signature must cover host and x-amz-date', async () => {
  const req = await signed({ style: 'botocore' });
  const auth = String(req.headers['authorization']).replace('SignedHeaders=content-type;host;x-amz-date', 'SignedHeaders=content-type;x-amz-date');
  assert.equal(await codeOf(verifier().verify({ ...req, headers: { ...req.headers, authorization: auth } })), 'IncompleteSignature');
});
