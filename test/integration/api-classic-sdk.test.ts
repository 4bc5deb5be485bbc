import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  CreateLoadBalancerCommand,
  DescribeLoadBalancerAttributesCommand,
  ElasticLoadBalancingClient,
  ModifyLoadBalancerAttributesCommand,
} from '@aws-sdk/client-elastic-load-balancing';
import {
  AddTagsCommand,
  DescribeTagsCommand,
  DescribeTargetGroupsCommand,
  ElasticLoadBalancingV2Client,
  RemoveTagsCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { type ApiHarness, freePort, startApiHarness } from './api-harness.ts';

/**
 * Classic ELB (2012-06-01) through the JS SDK v3 against an in-process ebb: what a Classic load
 * balancer may be made of, and where its settings live.
 */

let h: ApiHarness;
let classic: ElasticLoadBalancingClient;
let v2: ElasticLoadBalancingV2Client;

before(async () => {
  h = await startApiHarness();
  const config = {
    endpoint: h.endpoint,
    region: h.region,
    credentials: { accessKeyId: h.accessKeyId, secretAccessKey: h.secretAccessKey },
    maxAttempts: 1,
  };
  classic = new ElasticLoadBalancingClient(config);
  v2 = new ElasticLoadBalancingV2Client(config);
});
after(async () => {
  classic.destroy();
  v2.destroy();
  await h.close();
});

interface SdkError {
  name: string;
  Code?: string;
  message: string;
  $metadata: { httpStatusCode?: number };
}

async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    const err = e as SdkError;
    assert.equal(err.Code ?? err.name, code, `${err.name}: ${err.message}`);
    if (message !== undefined) assert.match(err.message, message);
    return;
  }
  assert.fail(`expected ${code}`);
}

test('InstanceProtocol HTTPS is refused until ebb speaks TLS to instances, and nothing is created', async () => {
  const port = await freePort();
  await rejectsWith(
    classic.send(
      new CreateLoadBalancerCommand({
        LoadBalancerName: 'tls-behind',
        Listeners: [{ Protocol: 'HTTP', LoadBalancerPort: port, InstanceProtocol: 'HTTPS', InstancePort: 443 }],
      }),
    ),
    'UnsupportedProtocol',
    /InstanceProtocol HTTPS is not supported by ebb yet.*unencrypted/,
  );
  assert.deepEqual(h.control.describeLoadBalancers({ type: 'classic' }), []);
  assert.deepEqual(h.control.describeTargetGroups(), []);
});

test('a Classic load balancer keeps its settings in itself: tag calls neither see nor change them', async () => {
  const [p1, p2] = [await freePort(), await freePort()];
  await classic.send(
    new CreateLoadBalancerCommand({
      LoadBalancerName: 'settled',
      Listeners: [
        { Protocol: 'HTTP', LoadBalancerPort: p1, InstanceProtocol: 'HTTP', InstancePort: 8080 },
        { Protocol: 'HTTP', LoadBalancerPort: p2, InstanceProtocol: 'HTTP', InstancePort: 8081 },
      ],
      Tags: [{ Key: 'team', Value: 'web' }],
    }),
  );
  await classic.send(
    new ModifyLoadBalancerAttributesCommand({
      LoadBalancerName: 'settled',
      LoadBalancerAttributes: { ConnectionDraining: { Enabled: false, Timeout: 120 }, CrossZoneLoadBalancing: { Enabled: true } },
    }),
  );
  const attributes = async () => (await classic.send(new DescribeLoadBalancerAttributesCommand({ LoadBalancerName: 'settled' }))).LoadBalancerAttributes;
  const before = await attributes();
  assert.deepEqual(before?.ConnectionDraining, { Enabled: false, Timeout: 120 });
  assert.deepEqual(before?.CrossZoneLoadBalancing, { Enabled: true });

  const lb = h.control.describeLoadBalancers({ type: 'classic' }).find((l) => l.name === 'settled');
  assert.ok(lb !== undefined);
  const groups = (await v2.send(new DescribeTargetGroupsCommand({ LoadBalancerArn: lb.arn }))).TargetGroups ?? [];
  assert.equal(groups.length, 2);
  const arns = [lb.arn, ...groups.map((g) => g.TargetGroupArn ?? '')];
  const tags = (await v2.send(new DescribeTagsCommand({ ResourceArns: arns }))).TagDescriptions ?? [];
  assert.deepEqual(
    tags.map((d) => (d.Tags ?? []).map((t) => t.Key)),
    [['team'], [], []],
    'only the user\'s own tags',
  );

  await rejectsWith(
    v2.send(new AddTagsCommand({ ResourceArns: [lb.arn], Tags: [{ Key: 'ebb:classic-draining-timeout', Value: '5' }] })),
    'ValidationError',
    /reserved/,
  );
  await v2.send(
    new RemoveTagsCommand({ ResourceArns: arns, TagKeys: ['ebb:classic-lb', 'ebb:classic-instance-port', 'ebb:classic-draining-timeout', 'ebb:classic-cross-zone'] }),
  );
  assert.deepEqual(await attributes(), before, 'settings unchanged by tag calls');
  const listed = (await v2.send(new DescribeTargetGroupsCommand({}))).TargetGroups ?? [];
  assert.ok(!listed.some((g) => arns.includes(g.TargetGroupArn ?? '')), 'its groups are still left out of the ELBv2 listing');
});
