import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  CreateLoadBalancerCommand as ClassicCreateLoadBalancerCommand,
  DescribeLoadBalancerAttributesCommand as ClassicDescribeAttributesCommand,
  ElasticLoadBalancingClient,
  ModifyLoadBalancerAttributesCommand as ClassicModifyAttributesCommand,
} from '@aws-sdk/client-elastic-load-balancing';
import {
  CreateLoadBalancerCommand,
  DescribeLoadBalancerAttributesCommand,
  ElasticLoadBalancingV2Client,
  ModifyLoadBalancerAttributesCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { type ApiHarness, freePort, startApiHarness } from './api-harness.ts';

/**
 * Access logs turned on through the API, as the AWS clients do it: an ALB's access_logs.s3.*
 * attributes (botocore elbv2 LoadBalancerAttribute.Key) and Classic's AccessLog (botocore elb
 * AccessLog), both kept as the load balancer's attributes. docs/access-logs.md.
 */

let h: ApiHarness;
let classic: ElasticLoadBalancingClient;
let v2: ElasticLoadBalancingV2Client;

before(async () => {
  h = await startApiHarness();
  const config = { endpoint: h.endpoint, region: h.region, credentials: { accessKeyId: h.accessKeyId, secretAccessKey: h.secretAccessKey }, maxAttempts: 1 };
  classic = new ElasticLoadBalancingClient(config);
  v2 = new ElasticLoadBalancingV2Client(config);
});
after(async () => {
  classic.destroy();
  v2.destroy();
  await h.close();
});

async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    const err = e as { name: string; Code?: string; message: string };
    assert.equal(err.Code ?? err.name, code, `${err.name}: ${err.message}`);
    if (message !== undefined) assert.match(err.message, message);
    return;
  }
  assert.fail(`expected ${code}`);
}

test('ALB: access_logs.s3.* with AWS defaults, set and described; a prefix with AWSLogs is refused', async () => {
  const lb = await v2.send(new CreateLoadBalancerCommand({ Name: 'logged' }));
  const arn = lb.LoadBalancers?.[0]?.LoadBalancerArn ?? '';
  const read = async (): Promise<Record<string, string>> =>
    Object.fromEntries(((await v2.send(new DescribeLoadBalancerAttributesCommand({ LoadBalancerArn: arn }))).Attributes ?? []).map((a) => [a.Key, a.Value]));
  const defaults = await read();
  assert.deepEqual(
    [defaults['access_logs.s3.enabled'], defaults['access_logs.s3.bucket'], defaults['access_logs.s3.prefix'], defaults['ebb.access_logs.s3.emit_interval.minutes']],
    ['false', '', '', '5'],
  );
  await v2.send(
    new ModifyLoadBalancerAttributesCommand({
      LoadBalancerArn: arn,
      Attributes: [
        { Key: 'access_logs.s3.enabled', Value: 'true' },
        { Key: 'access_logs.s3.bucket', Value: 'alb-logs' },
        { Key: 'access_logs.s3.prefix', Value: 'prod/web' },
      ],
    }),
  );
  const set = await read();
  assert.deepEqual([set['access_logs.s3.enabled'], set['access_logs.s3.bucket'], set['access_logs.s3.prefix']], ['true', 'alb-logs', 'prod/web']);
  await rejectsWith(
    v2.send(new ModifyLoadBalancerAttributesCommand({ LoadBalancerArn: arn, Attributes: [{ Key: 'access_logs.s3.prefix', Value: 'x/AWSLogs' }] })),
    'ValidationError',
    /must not include the string AWSLogs/,
  );
  await rejectsWith(
    v2.send(new ModifyLoadBalancerAttributesCommand({ LoadBalancerArn: arn, Attributes: [{ Key: 'access_logs.s3.enabled', Value: 'yes' }] })),
    'ValidationError',
    /true or false/,
  );
  await rejectsWith(
    v2.send(new ModifyLoadBalancerAttributesCommand({ LoadBalancerArn: arn, Attributes: [{ Key: 'ebb.access_logs.s3.emit_interval.minutes', Value: '15' }] })),
    'ValidationError',
    /one of 5, 60/,
  );
  assert.equal((await read())['access_logs.s3.prefix'], 'prod/web', 'refused changes change nothing');
});

test('Classic: AccessLog {Enabled, S3BucketName, EmitInterval, S3BucketPrefix} through Modify and Describe', async () => {
  await classic.send(
    new ClassicCreateLoadBalancerCommand({
      LoadBalancerName: 'classic-logged',
      Listeners: [{ Protocol: 'HTTP', LoadBalancerPort: await freePort(), InstanceProtocol: 'HTTP', InstancePort: 8080 }],
    }),
  );
  const describe = async () => (await classic.send(new ClassicDescribeAttributesCommand({ LoadBalancerName: 'classic-logged' }))).LoadBalancerAttributes?.AccessLog;
  assert.deepEqual(await describe(), { Enabled: false });

  await rejectsWith(
    classic.send(new ClassicModifyAttributesCommand({ LoadBalancerName: 'classic-logged', LoadBalancerAttributes: { AccessLog: { Enabled: true } } })),
    'InvalidConfigurationRequest',
    /S3BucketName is required/,
  );
  await rejectsWith(
    classic.send(
      new ClassicModifyAttributesCommand({ LoadBalancerName: 'classic-logged', LoadBalancerAttributes: { AccessLog: { Enabled: true, S3BucketName: '/var/log/x', EmitInterval: 15 } } }),
    ),
    'InvalidConfigurationRequest',
    /EmitInterval must be 5 or 60/,
  );
  await rejectsWith(
    classic.send(
      new ClassicModifyAttributesCommand({ LoadBalancerName: 'classic-logged', LoadBalancerAttributes: { AccessLog: { Enabled: true, S3BucketName: 'b', S3BucketPrefix: 'AWSLogs' } } }),
    ),
    'ValidationError',
    /S3BucketPrefix must not include the string AWSLogs/,
  );
  assert.deepEqual(await describe(), { Enabled: false }, 'refused changes change nothing');

  const modified = await classic.send(
    new ClassicModifyAttributesCommand({ LoadBalancerName: 'classic-logged', LoadBalancerAttributes: { AccessLog: { Enabled: true, S3BucketName: 'classic-logs', S3BucketPrefix: 'edge' } } }),
  );
  // EmitInterval not given: Classic's default, 60 minutes.
  const expected = { Enabled: true, S3BucketName: 'classic-logs', EmitInterval: 60, S3BucketPrefix: 'edge' };
  assert.deepEqual(modified.LoadBalancerAttributes?.AccessLog, expected);
  assert.deepEqual(await describe(), expected);

  await classic.send(new ClassicModifyAttributesCommand({ LoadBalancerName: 'classic-logged', LoadBalancerAttributes: { AccessLog: { Enabled: false, EmitInterval: 5 } } }));
  assert.deepEqual(await describe(), { ...expected, Enabled: false, EmitInterval: 5 }, 'members not given are kept');

  const lb = h.control.describeLoadBalancers({ type: 'classic' }).find((l) => l.name === 'classic-logged');
  assert.ok(lb !== undefined);
  assert.deepEqual(
    Object.fromEntries(Object.entries(lb.attributes).filter(([k]) => k.includes('access_logs'))),
    { 'access_logs.s3.enabled': 'false', 'access_logs.s3.bucket': 'classic-logs', 'access_logs.s3.prefix': 'edge', 'ebb.access_logs.s3.emit_interval.minutes': '5' },
  );
});
