import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  aws,
  type ApiHarness,
  type CliResult,
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
 * The ELBv2 API driven by the `aws` CLI (v1, botocore) against an in-process ebb: the whole target
 * lifecycle through a real listener, the command from the documents verbatim, and the modelled
 * errors for bad input.
 */

const skip = missingClient('aws');
let h: ApiHarness;
let backend: HoldingBackend;

before(async () => {
  if (skip !== null) return;
  h = await startApiHarness();
  backend = await startHoldingBackend('b1');
});
after(async () => {
  if (skip !== null) return;
  await backend.close();
  await h.close();
});

test('ELBv2 lifecycle with the aws CLI: create, register, healthy, drain a slow request, unused', { skip: skip ?? false, timeout: 120_000 }, async () => {
  const lb = ok(await aws(h, ['elbv2', 'create-load-balancer', '--name', 'cli-lb', '--type', 'application', '--subnets', 'subnet-1']));
  const lbArn: string = lb.LoadBalancers[0].LoadBalancerArn;
  assert.match(lbArn, /^arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer\/app\/cli-lb\/[0-9a-f]+$/);
  assert.equal(lb.LoadBalancers[0].State.Code, 'active');
  assert.equal(lb.LoadBalancers[0].Type, 'application');
  assert.deepEqual(lb.LoadBalancers[0].AvailabilityZones, []);
  assert.ok(!Number.isNaN(Date.parse(lb.LoadBalancers[0].CreatedTime)));

  const tg = ok(
    await aws(h, [
      'elbv2', 'create-target-group', '--name', 'cli-tg', '--protocol', 'HTTP', '--port', String(backend.port), '--target-type', 'ip',
      '--health-check-path', '/health', '--health-check-interval-seconds', '5', '--health-check-timeout-seconds', '2',
      '--healthy-threshold-count', '2', '--matcher', 'HttpCode=200-299',
    ]),
  );
  const tgArn: string = tg.TargetGroups[0].TargetGroupArn;
  assert.equal(tg.TargetGroups[0].HealthCheckPath, '/health');
  assert.equal(tg.TargetGroups[0].Matcher.HttpCode, '200-299');

  const port = await freePort();
  const listener = ok(
    await aws(h, ['elbv2', 'create-listener', '--load-balancer-arn', lbArn, '--protocol', 'HTTP', '--port', String(port),
      '--default-actions', `Type=forward,TargetGroupArn=${tgArn}`]),
  );
  assert.equal(listener.Listeners[0].DefaultActions[0].TargetGroupArn, tgArn);

  // The command from the documents, verbatim but for the ARN; it prints the attribute list.
  const attrs = ok(await aws(h, ['elbv2', 'modify-target-group-attributes', '--target-group-arn', tgArn, '--attributes', 'Key=deregistration_delay.timeout_seconds,Value=120']));
  assert.deepEqual(attrs.Attributes.find((a: any) => a.Key === 'deregistration_delay.timeout_seconds'), { Key: 'deregistration_delay.timeout_seconds', Value: '120' });
  assert.ok(attrs.Attributes.some((a: any) => a.Key === 'stickiness.enabled'));

  ok(await aws(h, ['elbv2', 'register-targets', '--target-group-arn', tgArn, '--targets', `Id=127.0.0.1,Port=${backend.port}`]));
  const initial = ok(await aws(h, ['elbv2', 'describe-target-health', '--target-group-arn', tgArn]));
  assert.equal(initial.TargetHealthDescriptions[0].Target.Id, '127.0.0.1');
  assert.equal(initial.TargetHealthDescriptions[0].Target.Port, backend.port);
  assert.match(initial.TargetHealthDescriptions[0].TargetHealth.State, /^(initial|healthy)$/);

  await waitFor(() => h.control.describeTargetHealth(tgArn)[0]?.health.state === 'healthy', 15_000, 'target healthy');
  const healthy = ok(await aws(h, ['elbv2', 'describe-target-health', '--target-group-arn', tgArn]));
  assert.deepEqual(healthy.TargetHealthDescriptions[0].TargetHealth, { State: 'healthy' });
  assert.equal((await get(port, '/')).body, 'b1\n');

  // Deregister while a request is in flight: draining for as long as it lasts (here until the test
  // releases it, so a slow CLI cannot outlast it), then unused as soon as it finishes.
  const slow = get(port, '/hold');
  await waitFor(() => backend.held() === 1, 5000, 'the request to reach the target');
  ok(await aws(h, ['elbv2', 'deregister-targets', '--target-group-arn', tgArn, '--targets', `Id=127.0.0.1,Port=${backend.port}`]));
  const draining = ok(await aws(h, ['elbv2', 'describe-target-health', '--target-group-arn', tgArn]));
  assert.equal(draining.TargetHealthDescriptions[0].TargetHealth.State, 'draining');
  assert.equal(draining.TargetHealthDescriptions[0].TargetHealth.Reason, 'Target.DeregistrationInProgress');
  assert.equal(backend.held(), 1, 'the request is still in flight');
  backend.release();
  const done = await slow;
  assert.equal(done.status, 200);
  assert.equal(done.body, 'b1 held done\n');
  await waitFor(() => h.control.describeTargetHealth(tgArn).length === 0, 5000, 'drain ended early');
  const gone = ok(await aws(h, ['elbv2', 'describe-target-health', '--target-group-arn', tgArn]));
  assert.deepEqual(gone.TargetHealthDescriptions, []);
  const named = ok(await aws(h, ['elbv2', 'describe-target-health', '--target-group-arn', tgArn, '--targets', `Id=127.0.0.1,Port=${backend.port}`]));
  assert.equal(named.TargetHealthDescriptions[0].TargetHealth.State, 'unused');
  assert.equal(named.TargetHealthDescriptions[0].TargetHealth.Reason, 'Target.NotRegistered');

  // Describe calls and tags.
  const [lbs, tgs, listeners, lbAttrs] = await Promise.all([
    aws(h, ['elbv2', 'describe-load-balancers', '--names', 'cli-lb']),
    aws(h, ['elbv2', 'describe-target-groups', '--load-balancer-arn', lbArn]),
    aws(h, ['elbv2', 'describe-listeners', '--load-balancer-arn', lbArn]),
    aws(h, ['elbv2', 'modify-load-balancer-attributes', '--load-balancer-arn', lbArn, '--attributes', 'Key=idle_timeout.timeout_seconds,Value=120']),
  ]);
  assert.equal(ok(lbs).LoadBalancers[0].LoadBalancerArn, lbArn);
  assert.deepEqual(ok(tgs).TargetGroups[0].LoadBalancerArns, [lbArn]);
  assert.equal(ok(listeners).Listeners[0].Port, port);
  assert.ok(ok(lbAttrs).Attributes.some((a: any) => a.Key === 'idle_timeout.timeout_seconds' && a.Value === '120'));

  ok(await aws(h, ['elbv2', 'add-tags', '--resource-arns', tgArn, '--tags', 'Key=team,Value=web']));
  const tags = ok(await aws(h, ['elbv2', 'describe-tags', '--resource-arns', tgArn]));
  assert.deepEqual(tags.TagDescriptions[0].Tags, [{ Key: 'team', Value: 'web' }]);
  ok(await aws(h, ['elbv2', 'remove-tags', '--resource-arns', tgArn, '--tag-keys', 'team']));
  assert.deepEqual(ok(await aws(h, ['elbv2', 'describe-tags', '--resource-arns', tgArn])).TagDescriptions[0].Tags, []);

  const modified = ok(await aws(h, ['elbv2', 'modify-target-group', '--target-group-arn', tgArn, '--health-check-interval-seconds', '10', '--unhealthy-threshold-count', '3']));
  assert.equal(modified.TargetGroups[0].HealthCheckIntervalSeconds, 10);
  assert.equal(modified.TargetGroups[0].UnhealthyThresholdCount, 3);

  // A group a listener forwards to cannot be deleted; after the listener goes, it can.
  failsWith(await aws(h, ['elbv2', 'delete-target-group', '--target-group-arn', tgArn]), 'ResourceInUse');
  ok(await aws(h, ['elbv2', 'delete-listener', '--listener-arn', listener.Listeners[0].ListenerArn]));
  ok(await aws(h, ['elbv2', 'delete-load-balancer', '--load-balancer-arn', lbArn]));
  ok(await aws(h, ['elbv2', 'delete-target-group', '--target-group-arn', tgArn]));
  failsWith(await aws(h, ['elbv2', 'describe-load-balancers', '--names', 'cli-lb']), 'LoadBalancerNotFound');
});

test('ELBv2 modelled errors for bad input reach the aws CLI', { skip: skip ?? false, timeout: 60_000 }, async () => {
  const tg = ok(await aws(h, ['elbv2', 'create-target-group', '--name', 'err-tg', '--protocol', 'HTTP', '--port', '8080', '--target-type', 'ip']));
  const tgArn: string = tg.TargetGroups[0].TargetGroupArn;
  const unknownArn = tgArn.replace(/\/[0-9a-f]+$/, '/0000000000000000');
  // (More bad-input cases run through the JS SDK, which is quicker to start: api-sdk.test.ts.)
  const results = await Promise.all([
    aws(h, ['elbv2', 'modify-target-group-attributes', '--target-group-arn', tgArn, '--attributes', 'Key=deregistration_delay.timeout_seconds,Value=4000']),
    aws(h, ['elbv2', 'modify-target-group-attributes', '--target-group-arn', tgArn, '--attributes', 'Key=deregistration_delay.connection_termination.enabled,Value=true']),
    aws(h, ['elbv2', 'describe-target-health', '--target-group-arn', unknownArn]),
    aws(h, ['elbv2', 'create-target-group', '--name', 'err-tg', '--protocol', 'HTTP', '--port', '8080', '--target-type', 'ip']),
    aws(h, ['elbv2', 'describe-target-groups'], { AWS_SECRET_ACCESS_KEY: 'wrong-secret' }),
    aws(h, ['elbv2', 'describe-target-groups'], { AWS_ACCESS_KEY_ID: 'AKIDNOTCONFIGURED' }),
  ]);
  const [delay, unsupported, unknownTg, duplicate, badSecret, unknownKeyId] = results as [CliResult, CliResult, CliResult, CliResult, CliResult, CliResult];
  failsWith(delay, 'ValidationError', /0 to 3600/);
  failsWith(unsupported, 'ValidationError', /connection_termination/);
  failsWith(unknownTg, 'TargetGroupNotFound');
  failsWith(duplicate, 'DuplicateTargetGroupName');
  failsWith(badSecret, 'SignatureDoesNotMatch');
  failsWith(unknownKeyId, 'InvalidClientTokenId');
  // Nothing the rejected calls touched changed.
  const attrs = ok(await aws(h, ['elbv2', 'describe-target-group-attributes', '--target-group-arn', tgArn]));
  assert.equal(attrs.Attributes.find((a: any) => a.Key === 'deregistration_delay.timeout_seconds').Value, '300');
  ok(await aws(h, ['elbv2', 'delete-target-group', '--target-group-arn', tgArn]));
});

test('Auto Scaling: Describe* answer empty lists, and an unknown group is refused as AWS refuses it', { skip: skip ?? false, timeout: 30_000 }, async () => {
  const [groups, desired] = await Promise.all([
    aws(h, ['autoscaling', 'describe-auto-scaling-groups']),
    aws(h, ['autoscaling', 'set-desired-capacity', '--auto-scaling-group-name', 'g', '--desired-capacity', '2']),
  ]);
  assert.deepEqual(ok(groups), { AutoScalingGroups: [] });
  failsWith(desired, 'ValidationError', /AutoScalingGroup name not found/);
});
