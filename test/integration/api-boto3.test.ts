import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { type ApiHarness, freePort, missingClient, python, startApiHarness } from './api-harness.ts';

/**
 * boto3 against an in-process ebb: one Python script (test/clients/boto3_flow.py) makes every call
 * and prints what boto3 returned, so the interpreter starts once.
 */

const skip = missingClient('boto3');
const SCRIPT = fileURLToPath(new URL('../clients/boto3_flow.py', import.meta.url));
let h: ApiHarness;

before(async () => {
  if (skip !== null) return;
  h = await startApiHarness();
  await h.control.putInstance({ id: 'i-boto', address: '127.0.0.1' });
});
after(async () => {
  if (skip !== null) return;
  await h.close();
});

test('boto3: ELBv2 and Classic calls, modelled errors, signature failures', { skip: skip ?? false, timeout: 30_000 }, async () => {
  const r = await python(h, SCRIPT, ['9', String(await freePort())]);
  assert.equal(r.code, 0, r.stderr);
  const out = r.json as any;
  assert.match(out.versions.boto3, /^\d+\.\d+\.\d+$/);

  assert.equal(out.create_target_group.TargetGroupName, 'boto-tg');
  assert.equal(out.create_target_group.HealthCheckIntervalSeconds, 5);
  assert.equal(out.create_target_group.HealthCheckEnabled, true);
  assert.match(out.create_request_id, /^[0-9a-f-]{36}$/);
  const delay = (attrs: any[]): string => attrs.find((a) => a.Key === 'deregistration_delay.timeout_seconds').Value;
  assert.equal(delay(out.modify_attributes), '120');
  assert.equal(delay(out.read_attributes), '120');
  assert.equal(out.register, 200);
  assert.deepEqual(out.health_after_register[0].Target, { Id: '127.0.0.1', Port: 9 });
  assert.equal(out.health_after_register[0].HealthCheckPort, '9');
  assert.equal(out.deregister, 200);
  assert.match(out.health_after_deregister[0].TargetHealth.State, /^(draining|unused)$/);
  assert.equal(out.describe_by_name[0].TargetGroupName, 'boto-tg');

  const e = out.errors;
  assert.deepEqual([e.delay_out_of_range.Error.Code, e.delay_out_of_range.Status], ['ValidationError', 400]);
  assert.equal(e.delay_out_of_range.Error.Type, 'Sender');
  assert.equal(e.unsupported_attribute.Error.Code, 'ValidationError');
  assert.equal(e.unknown_arn.Error.Code, 'TargetGroupNotFound');
  assert.equal(e.unknown_arn.Class, 'TargetGroupNotFoundException');
  assert.equal(out.modelled_exception, true);
  assert.equal(e.duplicate_name.Error.Code, 'DuplicateTargetGroupName');
  assert.equal(e.timeout_too_large.Error.Code, 'ValidationError');
  assert.deepEqual([e.bad_signature.Error.Code, e.bad_signature.Status], ['SignatureDoesNotMatch', 403]);
  assert.equal(e.old_date.Error.Code, 'RequestExpired');
  assert.match(e.bad_signature.RequestId, /^[0-9a-f-]{36}$/);

  assert.deepEqual(out.classic_modify, { LoadBalancerName: 'boto-classic', LoadBalancerAttributes: { ConnectionDraining: { Enabled: true, Timeout: 30 } } });
  assert.deepEqual(out.classic_describe_attributes.ConnectionDraining, { Enabled: true, Timeout: 30 });
  assert.deepEqual(out.classic_register, [{ InstanceId: 'i-boto' }]);
  assert.equal(out.classic_health[0].InstanceId, 'i-boto');
  assert.equal(out.classic_health[0].State, 'OutOfService');
  assert.deepEqual(out.classic_deregister, []);
  assert.equal(out.classic_health_after[0].InstanceId, 'i-boto');
  assert.deepEqual([e.classic_timeout.Error.Code, e.classic_timeout.Status], ['InvalidConfigurationRequest', 409]);
  assert.deepEqual([e.classic_not_found.Error.Code, e.classic_not_found.Class], ['LoadBalancerNotFound', 'AccessPointNotFoundException']);
  assert.equal(e.classic_invalid_instance.Error.Code, 'InvalidInstance');
  assert.equal(out.classic_delete, 200);

  assert.deepEqual(out.asg_groups, []);
  assert.equal(e.asg_unknown_group.Error.Code, 'ValidationError');
  assert.match(e.asg_unknown_group.Error.Message, /AutoScalingGroup name not found/);
});
