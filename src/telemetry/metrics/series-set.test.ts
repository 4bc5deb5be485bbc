/**
 * The counter and histogram families against prom-client's own Counter and Histogram: the same
 * observations give the same exposition text, byte for byte, and the same `get()` samples.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import { CounterFamily, HistogramFamily } from './series-set.ts';

const LABELS = ['load_balancer', 'target_group'] as const;
const A = { load_balancer: 'app/web/1111', target_group: 'targetgroup/web/2222' };
const B = { load_balancer: 'app/web/1111', target_group: 'targetgroup/api/3333' };
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

test("a counter family writes what prom-client's Counter writes", async () => {
  const theirs = new Registry();
  const ours = new Registry();
  const counter = new Counter({ name: 'ebb_request_count', help: 'RequestCount: requests', labelNames: LABELS, registers: [theirs] });
  const family = new CounterFamily({ name: 'ebb_request_count', help: 'RequestCount: requests', labelNames: LABELS, registers: [ours] });
  counter.labels(A).inc();
  counter.labels(A).inc(41);
  counter.labels(B).inc(0);
  counter.labels(A).inc(0.5);
  const a = family.series(A);
  a.inc();
  a.inc(41);
  family.series(B).inc(0);
  a.inc(0.5);
  assert.equal(await ours.metrics(), await theirs.metrics());
  assert.deepEqual(await ours.getMetricsAsJSON(), await theirs.getMetricsAsJSON());
  assert.throws(() => a.inc(-1), TypeError, 'a counter never goes down');
  assert.throws(() => a.inc(Number.NaN), TypeError);
  assert.equal(a.value, 42.5, 'a refused increment adds nothing');
});

test("a histogram family writes what prom-client's Histogram writes, bucket by bucket", async () => {
  const theirs = new Registry();
  const ours = new Registry();
  const help = "TargetResponseTime: seconds until the target's response head";
  const histogram = new Histogram({ name: 'ebb_target_response_time_seconds', help, labelNames: LABELS, buckets: BUCKETS, registers: [theirs] });
  const family = new HistogramFamily({ name: 'ebb_target_response_time_seconds', help, labelNames: LABELS, buckets: BUCKETS, registers: [ours] });
  const values = [0, 0.005, 0.0051, 0.03, 0.7, 1, 59.9, 60, 61, 3600, 0.1 + 0.2];
  for (const [i, v] of values.entries()) {
    const labels = i % 3 === 2 ? B : A;
    histogram.labels(labels).observe(v);
    family.series(labels).observe(v);
  }
  assert.equal(await ours.metrics(), await theirs.metrics());
  const samples = async (r: Registry): Promise<unknown> =>
    (await r.getMetricsAsJSON()).map((m) => (m.values as Array<{ value: number; labels: object; metricName?: string }>).map(({ value, labels, metricName }) => ({ value, labels, metricName })));
  assert.deepEqual(await samples(ours), await samples(theirs));
  assert.throws(() => family.series(A).observe(Number.POSITIVE_INFINITY), TypeError);
});

test('a series exists from its first use until pruned; collect runs before each read', async () => {
  const registry = new Registry();
  let collected = 0;
  const family = new CounterFamily({ name: 'ebb_x', help: 'x', labelNames: LABELS, registers: [registry], collect: () => collected++ });
  assert.equal(await registry.metrics(), '# HELP ebb_x x\n# TYPE ebb_x counter\n');
  family.series(A);
  family.series(B).inc(2);
  assert.match(await registry.metrics(), /ebb_x\{load_balancer="app\/web\/1111",target_group="targetgroup\/web\/2222"\} 0\n/);
  assert.equal(family.prune((l) => l.target_group !== A.target_group), 1);
  const text = await registry.metrics();
  assert.doesNotMatch(text, /targetgroup\/web\/2222/);
  assert.match(text, /targetgroup\/api\/3333"\} 2\n/);
  assert.equal(collected, 3);
  // A series asked for again after its pruning starts anew.
  assert.equal(family.series(A).value, 0);
  // Label values are kept in the family's order, whatever the order they were given in.
  family.series({ target_group: 'tg', load_balancer: 'lb' }).inc();
  assert.match(await registry.metrics(), /ebb_x\{load_balancer="lb",target_group="tg"\} 1\n/);
});
