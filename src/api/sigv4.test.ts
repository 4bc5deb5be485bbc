import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { EbbError } from '../shared/errors.ts';
import { parseAuthorization, type SignedRequest, SigV4Verifier } from './sigv4.ts';

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
  readonly service?: string;
  readonly body?: string;
  /** Extra headers to send (and sign), e.g. an x-amz-content-sha256 the signer then takes as the payload hash. */
  readonly extra?: Readonly<Record<string, string>>;
  readonly method?: 'GET' | 'POST';
  readonly query?: Readonly<Record<string, string>>;
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
  Object.assign(headers, o.extra ?? {});
  const signer = new SignatureV4({
    credentials: { accessKeyId: o.accessKeyId ?? KEY.accessKeyId, secretAccessKey: o.secret ?? KEY.secretAccessKey },
    region: o.region ?? 'us-east-1',
    service: o.service ?? 'elasticloadbalancing',
    sha256: Sha256,
    applyChecksum: o.style === 'sdk',
  });
  const method = o.method ?? 'POST';
  const body = method === 'GET' ? '' : (o.body ?? BODY);
  const query = o.query ?? {};
  const req = await signer.sign(
    new HttpRequest({ method, protocol: 'http:', hostname: '127.0.0.1', port: 9900, path: '/', query: { ...query }, headers, body }),
    { signingDate: new Date(o.at ?? NOW) },
  );
  const lower: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) lower[k.toLowerCase()] = v;
  const rawQuery = Object.entries(query)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
  return { method, path: '/', rawQuery, headers: lower, body: Buffer.from(body) };
}

function verifier(region = 'us-east-1'): SigV4Verifier {
  return new SigV4Verifier([KEY, { accessKeyId: 'OTHER', secretAccessKey: 'x' }], () => NOW, region);
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

test('accepts the botocore style (content-type;host;x-amz-date, no body hash header) in the region ebb is set to', async () => {
  const req = await signed({ style: 'botocore', region: 'eu-west-3' });
  assert.match(String(req.headers['authorization']), /SignedHeaders=content-type;host;x-amz-date,/);
  assert.equal(req.headers['x-amz-content-sha256'], undefined);
  assert.equal((await verifier('eu-west-3').verify(req)).region, 'eu-west-3');
});

test('a credential scoped to another region than ebb\'s is SignatureDoesNotMatch, naming both regions', async () => {
  for (const style of ['sdk', 'botocore'] as const) {
    const req = await signed({ style, region: 'eu-west-1' });
    await assert.rejects(verifier('us-east-1').verify(req), (error: unknown) => {
      assert.ok(EbbError.is(error), String(error));
      assert.equal(error.code, 'SignatureDoesNotMatch');
      assert.equal(error.status, 403);
      assert.match(error.message, /^Credential should be scoped to a valid region, not 'eu-west-1'/);
      assert.match(error.message, /'us-east-1'/);
      return true;
    });
  }
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

test('the signature must cover x-amz-date; SignedHeaders must be sorted and unique', async () => {
  const req = await signed({ style: 'botocore' });
  const withAuth = (from: string, to: string): SignedRequest => ({
    ...req,
    headers: { ...req.headers, authorization: String(req.headers['authorization']).replace(from, to) },
  });
  const noDate = withAuth('SignedHeaders=content-type;host;x-amz-date', 'SignedHeaders=content-type;host');
  assert.equal(await codeOf(verifier().verify(noDate)), 'IncompleteSignature');
  await assert.rejects(verifier().verify(noDate), /must cover the 'x-amz-date' header/);
  assert.equal(await codeOf(verifier().verify(withAuth('content-type;host;x-amz-date', 'content-type;host;host;x-amz-date'))), 'IncompleteSignature');
  assert.equal(await codeOf(verifier().verify(withAuth('content-type;host;x-amz-date', 'host;content-type;x-amz-date'))), 'IncompleteSignature');
});

test('UNSIGNED-PAYLOAD is refused, so a captured request cannot have its body (the Action) swapped', async () => {
  // A signer that finds x-amz-content-sha256 takes its value as the payload hash: this signature covers no body.
  const req = await signed({ style: 'sdk', extra: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } });
  assert.match(String(req.headers['authorization']), /x-amz-content-sha256/);
  const forged: SignedRequest = { ...req, body: Buffer.from('Action=DeleteTargetGroup&Version=2015-12-01&TargetGroupArn=arn%3Aaws%3Ax') };
  assert.equal(await codeOf(verifier().verify(forged)), 'SignatureDoesNotMatch');
  await assert.rejects(verifier().verify(forged), /UNSIGNED-PAYLOAD' is not accepted/);
  // Not even the untouched request passes: ebb cannot tell it from a forged one.
  assert.equal(await codeOf(verifier().verify(req)), 'SignatureDoesNotMatch');
});

test('streaming payload signatures and a wrong or duplicated x-amz-content-sha256 are refused', async () => {
  const streaming = await signed({ style: 'sdk', extra: { 'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD' } });
  await assert.rejects(verifier().verify(streaming), (err) => EbbError.is(err) && err.code === 'SignatureDoesNotMatch' && /STREAMING/.test(err.message));
  const wrong = await signed({ style: 'sdk', extra: { 'x-amz-content-sha256': '0'.repeat(64) } });
  await assert.rejects(verifier().verify(wrong), /does not match the SHA-256 of the request body/);
  const req = await signed({ style: 'sdk' });
  const hash = String(req.headers['x-amz-content-sha256']);
  assert.equal(await codeOf(verifier().verify({ ...req, headers: { ...req.headers, 'x-amz-content-sha256': [hash, hash] } })), 'SignatureDoesNotMatch');
});

test('an unsigned x-amz-content-sha256 that matches the body is fine; one that does not is refused', async () => {
  const req = await signed({ style: 'botocore' });
  const good = createHash('sha256').update(BODY).digest('hex');
  assert.equal(await codeOf(verifier().verify({ ...req, headers: { ...req.headers, 'x-amz-content-sha256': good } })), 'OK');
  assert.equal(await codeOf(verifier().verify({ ...req, headers: { ...req.headers, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } })), 'SignatureDoesNotMatch');
});

test('headers as node gives them in headersDistinct are accepted; a signed header sent twice is refused', async () => {
  const req = await signed({ style: 'sdk' });
  const distinct: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') distinct[k] = [v];
  assert.equal(await codeOf(verifier().verify({ ...req, headers: distinct })), 'OK');
  // node's req.headers would keep the first Host only; the signature must not be judged on one copy.
  const twoHosts = { ...distinct, host: ['127.0.0.1:9900', 'evil.example:80'] };
  await assert.rejects(verifier().verify({ ...req, headers: twoHosts }), /'host' appears 2 times/);
  const twoTypes = { ...distinct, 'content-type': ['application/x-www-form-urlencoded', 'application/json'] };
  assert.equal(await codeOf(verifier().verify({ ...req, headers: twoTypes })), 'SignatureDoesNotMatch');
  const twoAuth = { ...distinct, authorization: [String(req.headers['authorization']), String(req.headers['authorization'])] };
  assert.equal(await codeOf(verifier().verify({ ...req, headers: twoAuth })), 'IncompleteSignature');
  const twoDates = { ...distinct, 'x-amz-date': [String(req.headers['x-amz-date']), String(req.headers['x-amz-date'])] };
  assert.equal(await codeOf(verifier().verify({ ...req, headers: twoDates })), 'IncompleteSignature');
});

test('the credential scope date must be the X-Amz-Date day', async () => {
  const req = await signed({ style: 'botocore' });
  const auth = String(req.headers['authorization']).replace('/20260601/', '/20260602/');
  const err = await verifier()
    .verify({ ...req, headers: { ...req.headers, authorization: auth } })
    .then(() => undefined, (e: unknown) => e);
  assert.ok(EbbError.is(err));
  assert.equal(err.code, 'SignatureDoesNotMatch');
  assert.match(err.message, /credential scope \(20260602\) does not match the day of X-Amz-Date \(20260601T120000Z\)/);
  const badDate = { ...req.headers, 'x-amz-date': '20260631T120000Z' };
  assert.equal(await codeOf(verifier().verify({ ...req, headers: badDate })), 'IncompleteSignature');
});

test("the credential scope's service must be the one the Version belongs to", async () => {
  const elb = await signed({ style: 'botocore' });
  const asg = await signed({ style: 'sdk', service: 'autoscaling' });
  assert.equal(await codeOf(verifier().verify({ ...elb, expectedService: 'elasticloadbalancing' })), 'OK');
  assert.equal((await verifier().verify({ ...asg, expectedService: 'autoscaling' })).service, 'autoscaling');
  await assert.rejects(verifier().verify({ ...asg, expectedService: 'elasticloadbalancing' }), /scoped to correct service: 'elasticloadbalancing'.*not 'autoscaling'/);
  assert.equal(await codeOf(verifier().verify({ ...elb, expectedService: 'autoscaling' })), 'SignatureDoesNotMatch');
});

test('GET with a query string: the canonical query is rebuilt sorted; a changed parameter is refused', async () => {
  const query = { Version: '2015-12-01', Action: 'DescribeTargetGroups', 'Names.member.1': 'a b/c*' };
  const req = await signed({ style: 'botocore', method: 'GET', query });
  assert.equal(await codeOf(verifier().verify(req)), 'OK');
  const tampered = { ...req, rawQuery: req.rawQuery.replace('DescribeTargetGroups', 'DeleteTargetGroup') };
  assert.equal(await codeOf(verifier().verify(tampered)), 'SignatureDoesNotMatch');
});

test('parseAuthorization checks form without a body or a secret', () => {
  const headers = {
    authorization: `AWS4-HMAC-SHA256 Credential=AKID/20260601/us-east-1/elasticloadbalancing/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'a'.repeat(64)}`,
    'x-amz-date': '20260601T120000Z',
  };
  const p = parseAuthorization(headers, '');
  assert.deepEqual([p.accessKeyId, p.region, p.service, p.signedHeaders], ['AKID', 'us-east-1', 'elasticloadbalancing', ['host', 'x-amz-date']]);
  assert.throws(() => parseAuthorization({}, ''), (e) => EbbError.is(e) && e.code === 'MissingAuthenticationToken');
  assert.throws(() => parseAuthorization({}, 'X-Amz-Signature=abc'), (e) => EbbError.is(e) && e.code === 'IncompleteSignature');
  assert.throws(() => parseAuthorization({ ...headers, authorization: 'Bearer x' }, ''), (e) => EbbError.is(e) && e.code === 'IncompleteSignature');
});
