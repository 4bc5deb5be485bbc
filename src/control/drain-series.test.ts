import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { DrainSampler, DrainSeries, MAX_DRAIN_SAMPLES } from './drain-series.ts';

test('a series thins to every other sample and doubles its interval instead of growing past its bound', () => {
  const s = new DrainSeries(8, 100);
  for (let i = 0; i <= 8; i++) s.add({ elapsedMs: i * 100, requestsInFlight: 8 - i, tunnelsOpen: 0 });
  assert.deepEqual(
    s.samples().map((x) => x.elapsedMs),
    [0, 200, 400, 600, 800],
    'the first and the newest are kept',
  );
  assert.equal(s.intervalMs, 200);
  s.add({ elapsedMs: 750, requestsInFlight: 0, tunnelsOpen: 0 });
  assert.equal(s.samples().at(-1)?.elapsedMs, 800, 'time never runs back within a series');
});

test('a one-hour drain keeps at most 120 samples spread over the whole hour', () => {
  const clock = new FakeClock();
  const sampler = new DrainSampler(clock);
  let requests = 50;
  sampler.start('k', clock.wallTime(), () => ({ requests, tunnels: 1 }));
  for (let t = 0; t < 3600; t++) {
    clock.advance(1000);
    if (t % 60 === 0 && requests > 0) requests--;
  }
  const samples = sampler.samples('k');
  assert.ok(samples.length <= MAX_DRAIN_SAMPLES && samples.length >= MAX_DRAIN_SAMPLES / 2, `${samples.length} samples`);
  assert.equal(samples[0]?.elapsedMs, 0);
  assert.ok((samples.at(-1)?.elapsedMs ?? 0) > 3_500_000, 'the newest sample is recent');
  const end = sampler.final('k', { requests: 0, tunnels: 0 });
  assert.deepEqual(end.at(-1), { elapsedMs: 3_600_000, requestsInFlight: 0, tunnelsOpen: 0 }, 'the record ends with the work at its end');
  assert.ok(end.length <= MAX_DRAIN_SAMPLES);
  assert.equal(clock.pendingTimers(), 1);
  sampler.stop('k');
  assert.equal(clock.pendingTimers(), 0);
  assert.deepEqual(sampler.samples('k'), []);
});

test('a sampler stops by itself once its drain is over', () => {
  const clock = new FakeClock();
  const sampler = new DrainSampler(clock);
  let over = false;
  sampler.start('k', clock.wallTime(), () => (over ? null : { requests: 1, tunnels: 0 }));
  clock.advance(600);
  assert.equal(sampler.samples('k').length, 3, 'at 0, 250 and 500 ms');
  over = true;
  clock.advance(250);
  assert.equal(clock.pendingTimers(), 0);
});
