import assert from 'node:assert/strict';
import { test } from 'node:test';
import { adviseDelay, FEW_SAMPLES } from './recommendation.ts';
import { percentile, ResponseTimes } from './response-times.ts';

const G = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/1';

test('percentile is the nearest rank: an observed value, the maximum below 100 values', () => {
  assert.equal(percentile([], 99), null);
  assert.equal(percentile([5], 99), 5);
  assert.equal(percentile([3, 1, 2], 99), 3);
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(hundred, 99), 99);
  assert.equal(percentile(hundred, 50), 50);
  assert.equal(percentile([...hundred, 1000], 99), 100);
});

test('each group keeps its newest samples, at most capacity, and the window leaves out old ones', () => {
  const times = new ResponseTimes({ capacity: 10, maxAgeMs: 60_000 });
  for (let i = 1; i <= 25; i++) times.record(G, 1000 * i, i, i * 2);
  const s = times.summary(G, 25_000);
  assert.equal(s.sampleSize, 10, 'the ring holds the newest 10');
  assert.equal(s.oldestAt, 16_000);
  assert.equal(s.newestAt, 25_000);
  assert.equal(s.p99TargetResponseMs, 25);
  assert.equal(s.p99RequestDurationMs, 50);
  // 70 s later only the samples of the last minute count.
  const later = times.summary(G, 80_000);
  assert.equal(later.sampleSize, 6);
  assert.equal(later.oldestAt, 20_000);
  assert.deepEqual(times.summary('other', 0), { sampleSize: 0, oldestAt: null, newestAt: null, p99TargetResponseMs: null, p99RequestDurationMs: null });
});

test('groups are bounded: the one that reported longest ago goes first', () => {
  const times = new ResponseTimes({ capacity: 4, maxGroups: 2 });
  times.record('a', 1, 1, 1);
  times.record('b', 2, 1, 1);
  times.record('a', 3, 1, 1);
  times.record('c', 4, 1, 1);
  assert.equal(times.summary('b', 10).sampleSize, 0);
  assert.equal(times.summary('a', 10).sampleSize, 2);
  assert.equal(times.summary('c', 10).sampleSize, 1);
});

test('the recommendation is p99 plus 20-30 %, in whole seconds rounded up, with warnings', () => {
  const summary = { sampleSize: 500, oldestAt: 0, newestAt: 1, p99TargetResponseMs: 2400, p99RequestDurationMs: 2500 };
  const advice = adviseDelay(summary, 300, 'the window');
  // 2.4 s × 1.2 = 2.88 → 3; 2.4 s × 1.3 = 3.12 → 4.
  assert.deepEqual(advice, { recommendedDelaySeconds: 4, recommendedRangeSeconds: { low: 3, high: 4 }, warnings: [] });

  const low = adviseDelay(summary, 3, 'the window');
  assert.deepEqual(
    low.warnings.map((w) => w.kind),
    ['delay-below-recommendation'],
  );
  assert.match(low.warnings[0]?.message ?? '', /deregistration_delay\.timeout_seconds to at least 4/);

  const few = adviseDelay({ ...summary, sampleSize: FEW_SAMPLES - 1, p99RequestDurationMs: 60_000 }, 300, 'the window');
  assert.deepEqual(
    few.warnings.map((w) => w.kind),
    ['few-samples', 'requests-outlast-recommendation'],
  );

  const none = adviseDelay({ sampleSize: 0, oldestAt: null, newestAt: null, p99TargetResponseMs: null, p99RequestDurationMs: null }, 300, 'the window');
  assert.equal(none.recommendedDelaySeconds, null);
  assert.deepEqual(
    none.warnings.map((w) => w.kind),
    ['no-samples'],
  );
  // A fast group still gets at least one second.
  assert.equal(adviseDelay({ ...summary, p99TargetResponseMs: 3 }, 300, 'w').recommendedDelaySeconds, 1);
});
