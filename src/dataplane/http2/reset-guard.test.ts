import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ResetGuard } from './reset-guard.ts';

test('the reset one past the limit within the window trips the guard', () => {
  const g = new ResetGuard(100, 10_000);
  for (let i = 0; i < 100; i++) assert.equal(g.record(i * 10), false, `reset ${i + 1} is within the limit`);
  assert.equal(g.record(1_000), true, 'the 101st reset within 10 s is one too many');
  assert.equal(g.total, 101);
});

test('resets spread wider than the window never trip it', () => {
  const g = new ResetGuard(100, 10_000);
  // 101 resets every 100 ms: the 101st comes 10 s after the first, which has left the window.
  for (let i = 0; i <= 1_000; i++) assert.equal(g.record(i * 100), false, `reset at ${i * 100} ms`);
});

test('a burst after a quiet spell is measured from the burst, not from the first reset ever', () => {
  const g = new ResetGuard(3, 1_000);
  assert.equal(g.record(0), false);
  assert.equal(g.record(10), false);
  assert.equal(g.record(20), false);
  // 5 s of nothing, then three more: the window holds only these three.
  assert.equal(g.record(5_000), false);
  assert.equal(g.record(5_001), false);
  assert.equal(g.record(5_002), false);
  assert.equal(g.record(5_003), true, 'a fourth within 1 s of the burst trips it');
});

test('a window boundary is exclusive: a reset exactly windowMs after the oldest is allowed', () => {
  const g = new ResetGuard(2, 1_000);
  g.record(0);
  g.record(500);
  assert.equal(g.record(1_000), false, 'the oldest (0) is 1000 ms old: out of the window');
  assert.equal(g.record(1_499), true, 'the two kept (500, 1000) are both within 1000 ms of 1499');
});

test('a limit that is not a positive integer is refused', () => {
  assert.throws(() => new ResetGuard(0, 1_000), RangeError);
  assert.throws(() => new ResetGuard(1.5, 1_000), RangeError);
});
