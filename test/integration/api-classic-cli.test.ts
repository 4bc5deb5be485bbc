import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  aws,
  type ApiHarness,
  failsWith,
  freePort,
  get,
  type HoldingBackend,
  missingClient,
  ok,
  startApiHarness,
  startHoldingBackend,
  waitFor,
} from './api-harness.ts';

/**
 * Classic ELB (2012-06-01) driven by `aws elb`: connection draining as the Classic documents show
 * it, instance health through a drain, the health check, and the modelled errors.
 */

const skip = missingClient('aws');
let h: ApiHarness;
let backend: HoldingBackend;

before(async () => {
  if (skip !== null) return;
  h = await startApiHarness();
  backend = await startHoldingBackend('i1');
  await h.control.putInstance({ id: 'i-0123456789abcdef0', address: '127.0.0.1' });
});
after(async () => {
  if (skip !== null) return;
  await backend.close();
  await h.close();
});

const INSTANCE = 'i-0123456789abcdef0';

test('Classic ELB with aws elb: the documented draining commands, instance health through a drain', { skip: skip ?? false, timeout: 120_000 }, async () => {
  const port = await freePort();
  const created = ok(
    await aws(h, ['elb', 'create-load-balancer', '--load-balancer-name', 'my-loadbalancer', '--availability-zones', 'us-east-1a',
      '--listeners', `Protocol=HTTP,LoadBalancerPort=${port},InstanceProtocol=HTTP,InstancePort=${backend.port}`]),
  );
  assert.match(created.DNSName, /my-loadbalancer/);

  const described = ok(await aws(h, ['elb', 'describe-load-balancers', '--load-balancer-names', 'my-loadbalancer']));
  const d = described.LoadBalancerDescriptions[0];
  assert.equal(d.LoadBalancerName, 'my-loadbalancer');
  assert.deepEqual(d.ListenerDescriptions[0].Listener, { Protocol: 'HTTP', LoadBalancerPort: port, InstanceProtocol: 'HTTP', InstancePort: backend.port });
  assert.deepEqual({ ...d.HealthCheck, Target: undefined }, { Target: undefined, Interval: 30, Timeout: 5, UnhealthyThreshold: 2, HealthyThreshold: 10 });
  // AWS defaults to TCP:port; ebb uses HTTP:port/ for HTTP listeners until the control plane accepts TCP checks there.
  assert.match(d.HealthCheck.Target, new RegExp(`^(TCP:${backend.port}|HTTP:${backend.port}/)$`));
  assert.deepEqual(d.Instances, []);

  // The command from the documents, verbatim, prints exactly the documented response.
  const enabled = ok(
    await aws(h, ['elb', 'modify-load-balancer-attributes', '--load-balancer-name', 'my-loadbalancer', '--load-balancer-attributes', '{"ConnectionDraining":{"Enabled":true,"Timeout":300}}']),
  );
  assert.deepEqual(enabled, { LoadBalancerAttributes: { ConnectionDraining: { Enabled: true, Timeout: 300 } }, LoadBalancerName: 'my-loadbalancer' });

  const hc = ok(
    await aws(h, ['elb', 'configure-health-check', '--load-balancer-name', 'my-loadbalancer', '--health-check',
      `Target=HTTP:${backend.port}/health,Interval=5,Timeout=2,UnhealthyThreshold=2,HealthyThreshold=2`]),
  );
  assert.deepEqual(hc.HealthCheck, { Target: `HTTP:${backend.port}/health`, Interval: 5, Timeout: 2, UnhealthyThreshold: 2, HealthyThreshold: 2 });

  const registered = ok(await aws(h, ['elb', 'register-instances-with-load-balancer', '--load-balancer-name', 'my-loadbalancer', '--instances', INSTANCE]));
  assert.deepEqual(registered.Instances, [{ InstanceId: INSTANCE }]);
  const lb = h.control.describeLoadBalancers({ type: 'classic' }).find((l) => l.name === 'my-loadbalancer');
  assert.ok(lb !== undefined);
  const [group] = h.control.describeTargetGroups({ loadBalancerArn: lb.arn });
  assert.ok(group !== undefined);
  await waitFor(() => h.control.describeTargetHealth(group.arn)[0]?.health.state === 'healthy', 15_000, 'instance healthy');
  const inService = ok(await aws(h, ['elb', 'describe-instance-health', '--load-balancer-name', 'my-loadbalancer']));
  assert.deepEqual(inService.InstanceStates, [{ InstanceId: INSTANCE, State: 'InService', ReasonCode: 'N/A', Description: 'N/A' }]);
  assert.deepEqual(await get(port, '/'), { status: 200, body: 'i1\n' });

  // Deregister during a request: InService "deregistration in progress" for as long as it lasts (until
  // the test releases it, so a slow CLI cannot outlast it), then OutOfService once it finishes.
  const slow = get(port, '/hold');
  await waitFor(() => backend.held() === 1, 5000, 'the request to reach the instance');
  const left = ok(await aws(h, ['elb', 'deregister-instances-from-load-balancer', '--load-balancer-name', 'my-loadbalancer', '--instances', INSTANCE]));
  assert.deepEqual(left.Instances, []);
  const drainingState = ok(await aws(h, ['elb', 'describe-instance-health', '--load-balancer-name', 'my-loadbalancer', '--instances', INSTANCE]));
  assert.equal(drainingState.InstanceStates[0].State, 'InService');
  assert.equal(drainingState.InstanceStates[0].Description, 'Instance deregistration currently in progress.');
  assert.equal(backend.held(), 1, 'the request is still in flight');
  backend.release();
  assert.deepEqual(await slow, { status: 200, body: 'i1 held done\n' });
  await waitFor(() => h.control.describeTargetHealth(group.arn).length === 0, 5000, 'drain ended');
  const after = ok(await aws(h, ['elb', 'describe-instance-health', '--load-balancer-name', 'my-loadbalancer', '--instances', INSTANCE]));
  assert.deepEqual(after.InstanceStates, [
    { InstanceId: INSTANCE, State: 'OutOfService', ReasonCode: 'N/A', Description: 'Instance is not currently registered with the LoadBalancer.' },
  ]);

  // Disabling keeps the Timeout, as the documents show; the group's delay becomes 0.
  const disabled = ok(
    await aws(h, ['elb', 'modify-load-balancer-attributes', '--load-balancer-name', 'my-loadbalancer', '--load-balancer-attributes', '{"ConnectionDraining":{"Enabled":false}}']),
  );
  assert.deepEqual(disabled, { LoadBalancerAttributes: { ConnectionDraining: { Enabled: false, Timeout: 300 } }, LoadBalancerName: 'my-loadbalancer' });
  assert.equal(h.control.describeTargetGroupAttributes(group.arn)['deregistration_delay.timeout_seconds'], '0');
  ok(await aws(h, ['elb', 'modify-load-balancer-attributes', '--load-balancer-name', 'my-loadbalancer', '--load-balancer-attributes', '{"ConnectionSettings":{"IdleTimeout":120}}']));
  const attrs = ok(await aws(h, ['elb', 'describe-load-balancer-attributes', '--load-balancer-name', 'my-loadbalancer']));
  assert.deepEqual(attrs.LoadBalancerAttributes.ConnectionDraining, { Enabled: false, Timeout: 300 });
  assert.deepEqual(attrs.LoadBalancerAttributes.ConnectionSettings, { IdleTimeout: 120 });
  assert.deepEqual(attrs.LoadBalancerAttributes.CrossZoneLoadBalancing, { Enabled: false });

  // Modelled errors.
  const [range, missingLb, badInstance, badTarget] = await Promise.all([
    aws(h, ['elb', 'modify-load-balancer-attributes', '--load-balancer-name', 'my-loadbalancer', '--load-balancer-attributes', '{"ConnectionDraining":{"Enabled":true,"Timeout":3601}}']),
    aws(h, ['elb', 'describe-instance-health', '--load-balancer-name', 'nope']),
    aws(h, ['elb', 'register-instances-with-load-balancer', '--load-balancer-name', 'my-loadbalancer', '--instances', 'i-unknown']),
    aws(h, ['elb', 'configure-health-check', '--load-balancer-name', 'my-loadbalancer', '--health-check', 'Target=HTTP:80,Interval=5,Timeout=2,UnhealthyThreshold=2,HealthyThreshold=2']),
  ]);
  failsWith(range, 'InvalidConfigurationRequest', /1 to 3600/);
  failsWith(missingLb , 'LoadBalancerNotFound', /nope/);
  failsWith(badInstance , 'InvalidInstance', /i-unknown/);
  failsWith(badTarget , 'ValidationError', /needs a path/);
  assert.equal(h.control.describeTargetGroupAttributes(group.arn)['deregistration_delay.timeout_seconds'], '0', 'the rejected change changed nothing');

  ok(await aws(h, ['elb', 'delete-load-balancer', '--load-balancer-name', 'my-loadbalancer']));
  assert.deepEqual(h.control.describeLoadBalancers({ type: 'classic' }), []);
  assert.ok(!h.control.describeTargetGroups().some((g) => g.arn === group.arn), 'its group is deleted with it');
});
