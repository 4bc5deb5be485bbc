import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import { AnswerTimers } from './answer-timers.ts';
import { CompletedBaselines } from './completed-baselines.ts';

test('answer timers: an unanswered call times out, an answered one does not, and no more than max run at once', () => {
  const clock = new FakeClock();
  const timers = new AnswerTimers(clock, 100, 2);
  const late: number[] = [];
  assert.equal(timers.start(1, () => late.push(1)), true);
  assert.equal(timers.start(2, () => late.push(2)), true);
  assert.equal(timers.start(3, () => late.push(3)), false, 'a third is refused');
  timers.answered(1);
  assert.deepEqual(timers.seqs(), [2]);
  clock.advance(100);
  assert.deepEqual(late, [2]);
  assert.deepEqual(timers.seqs(), [], 'a call that timed out is no longer waiting');
  timers.start(4, () => late.push(4));
  timers.cancelAll();
  clock.advance(1000);
  assert.deepEqual(late, [2]);
});

test('completed baselines: each is answered by the first applied of a later seq, with the count then', async () => {
  const baselines = new CompletedBaselines();
  let completed = 5;
  const first = baselines.wait('k', 3);
  const second = baselines.wait('k', 7);
  assert.equal(baselines.size, 2);
  baselines.resolve(3, () => completed);
  assert.equal(baselines.size, 2, 'an applied of seq 3 answers nothing asked after 3');
  baselines.resolve(4, () => completed);
  assert.equal(await first, 5);
  completed = 9;
  baselines.resolve(Infinity, () => completed);
  assert.equal(await second, 9);
  assert.equal(baselines.size, 0);
});
