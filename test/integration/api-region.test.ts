import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DescribeLoadBalancersCommand, ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { aws, type ApiHarness, failsWith, missingClient, ok, startApiHarness } from './api-harness.ts';

/**
 * A SigV4 signature is scoped to one region. ebb has one (`admin.region`, the region in its ARNs) and,
 * as an AWS endpoint does, refuses a request signed for another with SignatureDoesNotMatch
 * "Credential should be scoped to a valid region" (IAM user guide, "Troubleshoot signed requests for
 * AWS APIs"), so a client set up for eu-west-1 is not answered with us-east-1 ARNs.
 */

const skipCli = missingClient('aws');
let east: ApiHarness;
let west: ApiHarness;

before(async () => {
  east = await startApiHarness();
  west = await startApiHarness({ region: 'eu-west-1' });
});
after(async () => {
  await east.close();
  await west.close();
});

const bothRegions = /Credential should be scoped to a valid region, not 'eu-west-1'.*'us-east-1'/;

test('the aws CLI with --region eu-west-1 against an ebb in us-east-1: SignatureDoesNotMatch naming both regions, nothing created', { skip: skipCli ?? false, timeout: 60_000 }, async () => {
  const r = await aws(east, ['elbv2', 'create-target-group', '--name', 'other-region', '--protocol', 'HTTP', '--port', '80', '--target-type', 'ip', '--region', 'eu-west-1']);
  failsWith(r, 'SignatureDoesNotMatch', bothRegions);
  assert.deepEqual(east.control.describeTargetGroups().map((tg) => tg.name), []);
});

test('the JS SDK with region eu-west-1 against an ebb in us-east-1: SignatureDoesNotMatch (403) naming both regions', async () => {
  const client = new ElasticLoadBalancingV2Client({
    endpoint: east.endpoint,
    region: 'eu-west-1',
    credentials: { accessKeyId: east.accessKeyId, secretAccessKey: east.secretAccessKey },
    maxAttempts: 1,
  });
  try {
    await assert.rejects(client.send(new DescribeLoadBalancersCommand({})), (error: unknown) => {
      const e = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
      assert.equal(e.name, 'SignatureDoesNotMatch');
      assert.equal(e.$metadata?.httpStatusCode, 403);
      assert.match(e.message ?? '', bothRegions);
      return true;
    });
  } finally {
    client.destroy();
  }
});

test('an ebb set to eu-west-1 serves clients signing for eu-west-1, with eu-west-1 ARNs, and refuses us-east-1', { skip: skipCli ?? false, timeout: 60_000 }, async () => {
  const created = ok(await aws(west, ['elbv2', 'create-target-group', '--name', 'in-west', '--protocol', 'HTTP', '--port', '80', '--target-type', 'ip']));
  assert.match(created.TargetGroups[0].TargetGroupArn, /^arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup\/in-west\//);
  const r = await aws(west, ['elbv2', 'describe-target-groups', '--region', 'us-east-1']);
  failsWith(r, 'SignatureDoesNotMatch', /not 'us-east-1'.*'eu-west-1'/);
});
