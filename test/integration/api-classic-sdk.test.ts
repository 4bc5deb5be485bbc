import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CreateLoadBalancerCommand, ElasticLoadBalancingClient } from '@aws-sdk/client-elastic-load-balancing';
import { type ApiHarness, freePort, startApiHarness } from './api-harness.ts';

/**
 * Classic ELB (2012-06-01) through the JS SDK v3 against an in-process ebb: what a Classic load
 * balancer may be made of, and where its settings live.
 */

let h: ApiHarness;
let classic: ElasticLoadBalancingClient;

before(async () => {
  h = await startApiHarness();
  classic = new ElasticLoadBalancingClient({
    endpoint: h.endpoint,
    region: h.region,
    credentials: { accessKeyId: h.accessKeyId, secretAccessKey: h.secretAccessKey },
    maxAttempts: 1,
  });
});
after(async () => {
  classic.destroy();
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
