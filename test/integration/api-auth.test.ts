import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { type ApiHarness, startApiHarness } from './api-harness.ts';

/**
 * SigV4 on the wire: requests signed with the JS SDK's signer and then sent raw, so the test can do
 * what no honest client does (sign UNSIGNED-PAYLOAD and swap the body, scope a signature to another
 * service, send Host twice) and check that ebb refuses it and changes nothing.
 */

let h: ApiHarness;
before(async () => {
  h = await startApiHarness();
});
after(async () => {
  await h.close();
});

interface Answer {
  status: number;
  head: string;
  body: string;
}

/** Sends one HTTP/1.1 request exactly as given (header lines in order) and reads the whole answer. */
function sendRaw(headerLines: readonly string[], body: string): Promise<Answer> {
  const port = Number(new URL(h.endpoint).port);
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => socket.destroy(new Error('no answer within 5 s')), 5000);
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (data += c));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      const i = data.indexOf('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0), head: data.slice(0, i), body: data.slice(i + 4) });
    });
    socket.write(`POST / HTTP/1.1\r\n${headerLines.join('\r\n')}\r\nconnection: close\r\n\r\n${body}`);
  });
}

/** Signs a form POST the way the JS SDK does; `extra` headers are signed too. */
async function sign(body: string, o: { service?: string; extra?: Record<string, string> } = {}): Promise<Record<string, string>> {
  const url = new URL(h.endpoint);
  const signer = new SignatureV4({
    credentials: { accessKeyId: h.accessKeyId, secretAccessKey: h.secretAccessKey },
    region: h.region,
    service: o.service ?? 'elasticloadbalancing',
    sha256: Sha256,
  });
  const headers = { host: url.host, 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)), ...o.extra };
  const signed = await signer.sign(new HttpRequest({ method: 'POST', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: '/', headers, body }));
  return signed.headers;
}

function lines(headers: Record<string, string>, replace: Record<string, string> = {}): string[] {
  return Object.entries({ ...headers, ...replace }).map(([k, v]) => `${k}: ${v}`);
}

test('a signed request sent raw is accepted (the baseline for the refusals below)', async () => {
  const body = 'Action=DescribeTargetGroups&Version=2015-12-01';
  const r = await sendRaw(lines(await sign(body)), body);
  assert.equal(r.status, 200, r.body);
  assert.match(r.body, /<DescribeTargetGroupsResponse/);
});

test('a request signed with UNSIGNED-PAYLOAD cannot have its Action swapped; nothing is deleted', async () => {
  const tg = await h.control.createTargetGroup({ name: 'keep-me', protocol: 'HTTP', port: 80, targetType: 'ip' });
  const captured = await sign('Action=DescribeTargetGroups&Version=2015-12-01', { extra: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } });
  const forged = `Action=DeleteTargetGroup&Version=2015-12-01&TargetGroupArn=${encodeURIComponent(tg.arn)}`;
  const r = await sendRaw(lines(captured, { 'content-length': String(Buffer.byteLength(forged)) }), forged);
  assert.equal(r.status, 403);
  assert.match(r.body, /<Code>SignatureDoesNotMatch<\/Code>/);
  assert.match(r.body, /UNSIGNED-PAYLOAD/);
  assert.equal(h.control.describeTargetGroups({ arns: [tg.arn] }).length, 1, 'the target group is still there');
  await h.control.deleteTargetGroup(tg.arn);
});

test('a signature scoped to autoscaling does not authorise an ELBv2 Version (and the other way round)', async () => {
  const elb = 'Action=DescribeTargetGroups&Version=2015-12-01';
  const r = await sendRaw(lines(await sign(elb, { service: 'autoscaling' })), elb);
  assert.equal(r.status, 403);
  assert.match(r.body, /<Code>SignatureDoesNotMatch<\/Code><Message>Credential should be scoped to correct service: &apos;elasticloadbalancing&apos;/);
  const asg = 'Action=DescribeAutoScalingGroups&Version=2011-01-01';
  const a = await sendRaw(lines(await sign(asg)), asg);
  assert.equal(a.status, 403);
  assert.match(a.body, /scoped to correct service: &apos;autoscaling&apos;/);
  const ok = await sendRaw(lines(await sign(asg, { service: 'autoscaling' })), asg);
  assert.equal(ok.status, 200, ok.body);
});

test('a second Host header is refused, not ignored', async () => {
  const body = 'Action=DescribeTargetGroups&Version=2015-12-01';
  const r = await sendRaw([...lines(await sign(body)), 'host: other.example'], body);
  assert.equal(r.status, 403);
  assert.match(r.body, /<Code>SignatureDoesNotMatch<\/Code>.*&apos;host&apos; appears 2 times/s);
});
