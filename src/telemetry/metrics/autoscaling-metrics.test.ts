import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { FakeClock } from '../../../test/fakes/fake-clock.ts';
import { FakeDataPlane } from '../../../test/fakes/fake-data-plane.ts';
import { FakeInstanceRunner } from '../../../test/fakes/fake-instance-runner.ts';
import { AutoScaling } from '../../autoscaling/auto-scaling.ts';
import { ControlPlane } from '../../control/control-plane.ts';
import { InMemoryStateStore } from '../../store/in-memory-state-store.ts';
import { registerAutoScalingMetrics } from './autoscaling-metrics.ts';

async function settle(rounds = 30): Promise<void> {
  for (let n = 0; n < rounds; n++) await new Promise<void>((resolve) => setImmediate(resolve));
}

test("Auto Scaling's group metrics under CloudWatch's names, and finished activities by status; a deleted group's series go", async (t) => {
  const clock = new FakeClock();
  const store = new InMemoryStateStore();
  const control = new ControlPlane({ clock, store, dataPlanes: [new FakeDataPlane()] });
  await control.start();
  const runner = new FakeInstanceRunner(clock);
  const as = new AutoScaling({ clock, store, control, runner });
  await as.start();
  t.after(async () => {
    await as.close();
    await control.close();
  });
  const registry = new Registry();
  const off = registerAutoScalingMetrics(registry, as);
  t.after(off);
  const scrape = async () => {
    const families = parsePrometheusTextFormat(await registry.metrics()) as unknown as Array<{ name: string; metrics: Array<{ labels?: Record<string, string>; value?: string }> }>;
    return (name: string, labels: Record<string, string>) =>
      families
        .find((f) => f.name === name)
        ?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value;
  };
  const lt = await as.createLaunchTemplate({ name: 'app', data: { userData: Buffer.from('#!/bin/sh\nsleep 60\n').toString('base64') } });
  await as.createAutoScalingGroup({ name: 'web', launchTemplate: { id: lt.id }, minSize: 1, maxSize: 4, desiredCapacity: 3 });
  await settle();
  let value = await scrape();
  const web = { auto_scaling_group_name: 'web' };
  assert.equal(value('ebb_group_desired_capacity', web), '3');
  assert.equal(value('ebb_group_min_size', web), '1');
  assert.equal(value('ebb_group_max_size', web), '4');
  assert.equal(value('ebb_group_in_service_instances', web), '3');
  assert.equal(value('ebb_group_total_instances', web), '3');
  assert.equal(value('ebb_autoscaling_activities_total', { ...web, status: 'Successful' }), '3');
  assert.equal(value('ebb_autoscaling_activities_total', { ...web, status: 'Failed' }), '0');

  const [first] = as.describeAutoScalingInstances();
  assert.ok(first !== undefined);
  await as.enterStandby('web', [first.instanceId], true);
  await settle();
  value = await scrape();
  assert.equal(value('ebb_group_standby_instances', web), '1');
  assert.equal(value('ebb_group_in_service_instances', web), '2');
  assert.equal(value('ebb_group_desired_capacity', web), '2');

  await as.deleteAutoScalingGroup('web', true);
  for (let n = 0; n < 10; n++) {
    clock.advance(1000);
    await settle();
  }
  value = await scrape();
  assert.equal(value('ebb_group_desired_capacity', web), undefined);
  assert.equal(value('ebb_autoscaling_activities_total', { ...web, status: 'Successful' }), undefined);
  assert.deepEqual(runner.running(), []);
});
