import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { XMLValidator } from 'fast-xml-parser';
import { type ApiHarness, startApiHarness } from './api-harness.ts';

/**
 * Request values that name properties every plain JavaScript object has (`__proto__`, `toString`, …)
 * must be looked up as data, never as object properties: as a Version, an Action or a header name
 * they are refused like any other unknown value, with a 400 and a well-formed AWS error, never a 500
 * or a 200 built from a function.
 */

const HOSTILE = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'prototype', '__defineGetter__', 'isPrototypeOf'];
const VERSIONS = ['2015-12-01', '2012-06-01', '2011-01-01'];

let signed: ApiHarness;
let open: ApiHarness;
before(async () => {
  signed = await startApiHarness();
  open = await startApiHarness({ authentication: false });
});
after(async () => {
  await signed.close();
  await open.close();
});

interface Answer {
  status: number;
  body: string;
}

/** POSTs a form body to the harness, signed with its access key when its authentication is on. */
async function post(h: ApiHarness, body: string, service = 'elasticloadbalancing'): Promise<Answer> {
  const url = new URL(h.endpoint);
  let headers: Record<string, string> = { host: url.host, 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)) };
  if (h === signed) {
    const signer = new SignatureV4({ credentials: { accessKeyId: h.accessKeyId, secretAccessKey: h.secretAccessKey }, region: h.region, service, sha256: Sha256 });
    const req = new HttpRequest({ method: 'POST', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: '/', headers, body });
    headers = (await signer.sign(req)).headers;
  }
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: Number(url.port), method: 'POST', path: '/', headers, agent: false, timeout: 5000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', reject);
    req.end(body);
  });
}

/** A 400 with a well-formed AWS XML error carrying `code`. */
function assertAwsError(r: Answer, code: string, what: string): void {
  assert.equal(r.status, 400, `${what}: ${r.body}`);
  assert.equal(XMLValidator.validate(r.body), true, `${what}: not well-formed XML: ${r.body}`);
  assert.match(r.body, /^<\?xml version="1\.0" encoding="UTF-8"\?>\s*<ErrorResponse xmlns="[^"]+">/, what);
  assert.match(r.body, new RegExp(`<Type>Sender</Type><Code>${code}</Code>`), `${what}: ${r.body}`);
  assert.match(r.body, /<RequestId>[0-9a-f-]{36}<\/RequestId>/, what);
}

for (const [name, h] of [
  ['authentication on', () => signed],
  ['authentication off', () => open],
] as const) {
  test(`${name}: a Version that names an Object property is InvalidAction`, async () => {
    for (const version of HOSTILE) {
      const r = await post(h(), `Action=DescribeTargetGroups&Version=${encodeURIComponent(version)}`);
      assertAwsError(r, 'InvalidAction', `Version=${version}`);
      assert.match(r.body, /is not one ebb serves/, `Version=${version}`);
    }
  });

  test(`${name}: an Action that names an Object property is InvalidAction for every Version`, async () => {
    for (const version of VERSIONS) {
      const service = version === '2011-01-01' ? 'autoscaling' : 'elasticloadbalancing';
      for (const action of HOSTILE) {
        const r = await post(h(), `Action=${encodeURIComponent(action)}&Version=${version}`, service);
        assertAwsError(r, 'InvalidAction', `Action=${action} Version=${version}`);
        assert.match(r.body, /is not valid for this web service/, `Action=${action} Version=${version}`);
      }
    }
  });
}

test('the known actions still answer once the tables are no longer plain objects', async () => {
  for (const [version, action, service] of [
    ['2015-12-01', 'DescribeTargetGroups', 'elasticloadbalancing'],
    ['2012-06-01', 'DescribeLoadBalancers', 'elasticloadbalancing'],
    ['2011-01-01', 'DescribeAutoScalingGroups', 'autoscaling'],
  ] as const) {
    const r = await post(signed, `Action=${action}&Version=${version}`, service);
    assert.equal(r.status, 200, `${action} ${version}: ${r.body}`);
    assert.match(r.body, new RegExp(`<${action}Response xmlns=`));
  }
});

test('a query-string parameter named __proto__ or toString does not break signature checking', async () => {
  // The signer is handed the query as an object; these names must stay ordinary keys of it.
  const url = new URL(signed.endpoint);
  for (const name of ['__proto__', 'toString', 'constructor']) {
    const body = 'Action=DescribeTargetGroups&Version=2015-12-01';
    const path = `/?${name}=1&${name}=2`;
    const signer = new SignatureV4({
      credentials: { accessKeyId: signed.accessKeyId, secretAccessKey: signed.secretAccessKey },
      region: signed.region,
      service: 'elasticloadbalancing',
      sha256: Sha256,
    });
    const query = Object.create(null) as Record<string, string[]>;
    query[name] = ['1', '2'];
    const headers = { host: url.host, 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length) };
    const s = await signer.sign(new HttpRequest({ method: 'POST', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: '/', query, headers, body }));
    const r = await new Promise<Answer>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: Number(url.port), method: 'POST', path, headers: s.headers, agent: false, timeout: 5000 }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
      req.on('error', reject);
      req.end(body);
    });
    assert.equal(r.status, 200, `?${name}=: ${r.body}`);
  }
});
