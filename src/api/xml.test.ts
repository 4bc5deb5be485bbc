import assert from 'node:assert/strict';
import { test } from 'node:test';
import { XMLParser } from 'fast-xml-parser';
import { element, errorXml, escapeXml, successXml } from './xml.ts';

test('scalars: escaping, booleans, integers, ISO 8601 timestamps', () => {
  assert.equal(element('Name', 'a<b>&"c\''), '<Name>a&lt;b&gt;&amp;&quot;c&apos;</Name>');
  assert.equal(element('On', true), '<On>true</On>');
  assert.equal(element('Off', false), '<Off>false</Off>');
  assert.equal(element('Port', 8080), '<Port>8080</Port>');
  assert.equal(element('At', new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6))), '<At>2026-01-02T03:04:05.006Z</At>');
  assert.equal(element('Gone', undefined), '');
  assert.equal(escapeXml('bad\u0000\u0007ok'), 'badok');
  assert.throws(() => element('N', Number.NaN), /non-finite/);
});

test('lists are member elements; an empty list is a self-closed element', () => {
  assert.equal(element('L', ['a', 'b']), '<L><member>a</member><member>b</member></L>');
  assert.equal(element('L', []), '<L/>');
  assert.equal(
    element('T', [{ Id: 'x', Port: 1 }]),
    '<T><member><Id>x</Id><Port>1</Port></member></T>',
  );
  assert.equal(element('S', { A: { B: 'c' }, D: undefined }), '<S><A><B>c</B></A></S>');
});

test('success envelope per service; empty output shape still has its Result element', () => {
  const xml = successXml('elbv2', 'RegisterTargets', {}, 'req-1');
  assert.match(xml, /<RegisterTargetsResponse xmlns="http:\/\/elasticloadbalancing\.amazonaws\.com\/doc\/2015-12-01\/">/);
  assert.match(xml, /<RegisterTargetsResult\/>/);
  assert.match(xml, /<ResponseMetadata><RequestId>req-1<\/RequestId><\/ResponseMetadata>/);
  const none = successXml('autoscaling', 'UpdateAutoScalingGroup', undefined, 'req-2');
  assert.doesNotMatch(none, /UpdateAutoScalingGroupResult/);
  assert.match(none, /xmlns="http:\/\/autoscaling\.amazonaws\.com\/doc\/2011-01-01\/"/);
  const classic = successXml('classic', 'CreateLoadBalancer', { DNSName: 'x' }, 'r');
  assert.match(classic, /doc\/2012-06-01\/.*<CreateLoadBalancerResult><DNSName>x<\/DNSName><\/CreateLoadBalancerResult>/s);
  const parsed = new XMLParser().parse(successXml('elbv2', 'DescribeTargetHealth', { TargetHealthDescriptions: [] }, 'r')) as Record<string, unknown>;
  assert.ok('DescribeTargetHealthResponse' in parsed);
});

test('error envelope carries Type, Code, Message and RequestId, escaped', () => {
  const xml = errorXml('classic', { type: 'Sender', code: 'LoadBalancerNotFound', message: "There is no <ACTIVE> 'x'" }, 'rid');
  const parsed = new XMLParser().parse(xml) as { ErrorResponse: { Error: Record<string, string>; RequestId: string } };
  assert.deepEqual(parsed.ErrorResponse.Error, { Type: 'Sender', Code: 'LoadBalancerNotFound', Message: "There is no <ACTIVE> 'x'" });
  assert.equal(parsed.ErrorResponse.RequestId, 'rid');
  assert.match(xml, /<ErrorResponse xmlns="http:\/\/elasticloadbalancing\.amazonaws\.com\/doc\/2012-06-01\/">/);
});

test('EC2 envelope: no Result element, requestId first, lists of item, lowerCamel members as the handler names them', () => {
  const xml = successXml('ec2', 'DescribeLaunchTemplates', { launchTemplates: [{ launchTemplateId: 'lt-1', tagSet: [{ key: 'k', value: 'v' }] }], nextToken: undefined }, 'req-9');
  assert.equal(
    xml,
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
      '<DescribeLaunchTemplatesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>req-9</requestId>' +
      '<launchTemplates><item><launchTemplateId>lt-1</launchTemplateId><tagSet><item><key>k</key><value>v</value></item></tagSet></item></launchTemplates>' +
      '</DescribeLaunchTemplatesResponse>\n',
  );
  assert.doesNotMatch(xml, /Result|member|ResponseMetadata/);
  assert.match(successXml('ec2', 'DescribeInstances', { reservationSet: [] }, 'r'), /<requestId>r<\/requestId><reservationSet\/><\/DescribeInstancesResponse>/);
  assert.match(successXml('ec2', 'X', undefined, 'r&1'), /<XResponse xmlns="[^"]+"><requestId>r&amp;1<\/requestId><\/XResponse>/);
  // The Query protocol keeps its member lists.
  assert.match(successXml('autoscaling', 'X', { L: ['a'] }, 'r'), /<L><member>a<\/member><\/L>/);
});

test('EC2 error envelope: Response/Errors/Error with Code and Message, and RequestID', () => {
  const xml = errorXml('ec2', { type: 'Sender', code: 'InvalidLaunchTemplateId.NotFound', message: 'no <lt-1>' }, 'rid');
  const parsed = new XMLParser().parse(xml) as { Response: { Errors: { Error: Record<string, string> }; RequestID: string } };
  assert.deepEqual(parsed.Response.Errors.Error, { Code: 'InvalidLaunchTemplateId.NotFound', Message: 'no <lt-1>' });
  assert.equal(parsed.Response.RequestID, 'rid');
  assert.doesNotMatch(xml, /ErrorResponse|<Type>|xmlns/);
});
