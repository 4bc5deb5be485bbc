import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ArnFactory } from '../../control/arn.ts';
import { targetKey } from '../../domain/resources.ts';
import { listenerLoadBalancerDimension, loadBalancerDimension, parseTargetKey, targetDimension, targetGroupDimension } from './dimensions.ts';

// The examples of AWS documentation, "CloudWatch metrics for your Application Load Balancer" (metric
// dimensions) and the ELBv2 API reference (ARNs).
const LB = 'arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/my-load-balancer/50dc6c495c0c9188';
const LISTENER = 'arn:aws:elasticloadbalancing:us-west-2:123456789012:listener/app/my-load-balancer/50dc6c495c0c9188/f2f7dc8efc522ab2';
const TG = 'arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067';

test('load balancer and target group labels are the final portion of the ARN, as CloudWatch dimensions are', () => {
  assert.equal(loadBalancerDimension(LB), 'app/my-load-balancer/50dc6c495c0c9188');
  assert.equal(targetGroupDimension(TG), 'targetgroup/my-targets/73e2d6bc24d8a067');
  assert.equal(listenerLoadBalancerDimension(LISTENER), 'app/my-load-balancer/50dc6c495c0c9188');
  assert.equal(loadBalancerDimension('arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/db/0123456789abcdef'), 'net/db/0123456789abcdef');
});

test("a Classic load balancer's label is its name (CloudWatch's LoadBalancerName)", () => {
  const arns = new ArnFactory('eu-west-1', '000000000000');
  const classic = arns.loadBalancer('legacy', 'classic');
  assert.equal(loadBalancerDimension(classic), 'legacy');
  assert.equal(listenerLoadBalancerDimension(arns.listener(classic)), 'legacy');
});

test("a listener's load balancer label is the load balancer's own, for every kind ebb makes", () => {
  const arns = new ArnFactory('us-east-1', '123456789012');
  for (const type of ['application', 'network', 'classic'] as const) {
    const lb = arns.loadBalancer('web', type);
    assert.equal(listenerLoadBalancerDimension(arns.listener(lb)), loadBalancerDimension(lb), type);
  }
  const tg = arns.targetGroup('web');
  assert.match(targetGroupDimension(tg), /^targetgroup\/web\/[0-9a-f]{16}$/);
});

test('a registration key splits into group, id and port; the target label is id:port', () => {
  assert.deepEqual(parseTargetKey(targetKey(TG, '10.0.0.5', 8080)), { targetGroupArn: TG, id: '10.0.0.5', port: 8080 });
  assert.deepEqual(parseTargetKey(targetKey(TG, 'i-0abc123', 80)), { targetGroupArn: TG, id: 'i-0abc123', port: 80 });
  assert.deepEqual(parseTargetKey(targetKey(TG, '2001:db8::1', 443)), { targetGroupArn: TG, id: '2001:db8::1', port: 443 });
  assert.equal(parseTargetKey('not a key'), null);
  assert.equal(parseTargetKey(`${TG}|10.0.0.5|http`), null);
  assert.equal(targetDimension('10.0.0.5', 8080), '10.0.0.5:8080');
  assert.equal(targetDimension('i-0abc123', 80), 'i-0abc123:80');
  assert.equal(targetDimension('2001:db8::1', 443), '[2001:db8::1]:443');
});
