import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../../test/fakes/fake-clock.ts';
import { IdleSweep, type IdleWatched } from './idle-sweep.ts';

class Flow implements IdleWatched {
  moved = false;
  quietSince = 0;
  sweepSlot = -1;
  expiredAt: number | null = null;
  constructor(readonly clock: FakeClock) {}
  idleExpired(): void {
    assert.equal(this.expiredAt, null, 'expired twice');
    this.expiredAt = this.clock.now();
  }
}

test('a flow with no byte either way expires at the timeout, not a tick before', () => {
  const clock = new FakeClock();
  const sweep = new IdleSweep<Flow>(clock, 400);
  assert.equal(sweep.tickMs, 100);
  const f = new Flow(clock);
  sweep.add(f);
  clock.advance(399);
  assert.equal(f.expiredAt, null);
  clock.advance(1);
  assert.equal(f.expiredAt, 400);
  assert.equal(sweep.size, 0);
});

test('bytes moving keep a flow open; it expires a timeout after the tick that last saw them', () => {
  const clock = new FakeClock();
  const sweep = new IdleSweep<Flow>(clock, 400);
  const f = new Flow(clock);
  sweep.add(f);
  for (let t = 0; t < 20; t++) {
    f.moved = true; // a byte every 50 ms for a second
    clock.advance(50);
  }
  assert.equal(f.expiredAt, null);
  assert.equal(clock.now(), 1000);
  // The last byte came at 950; the tick at 1000 saw it, so the flow counts as quiet from 1000 on.
  clock.advance(399);
  assert.equal(f.expiredAt, null);
  clock.advance(1);
  assert.equal(f.expiredAt, 1400);
});

test('a byte just after a tick: never early, at most two ticks late', () => {
  const clock = new FakeClock();
  const sweep = new IdleSweep<Flow>(clock, 400);
  const f = new Flow(clock);
  sweep.add(f);
  clock.advance(101);
  f.moved = true; // at 101, seen by the tick at 200
  clock.advance(1000);
  assert.equal(f.expiredAt, 600);
  assert.ok(f.expiredAt - 101 >= 400 && f.expiredAt - 101 <= 400 + 2 * sweep.tickMs);
});

test('each flow on its own; the ticker runs only while there are flows', () => {
  const clock = new FakeClock();
  const sweep = new IdleSweep<Flow>(clock, 4000);
  assert.equal(sweep.tickMs, 1000, 'the tick is at most a second');
  assert.equal(clock.pendingTimers(), 0);
  const a = new Flow(clock);
  const b = new Flow(clock);
  sweep.add(a);
  clock.advance(2000);
  sweep.add(b);
  assert.equal(clock.pendingTimers(), 1, 'one ticker for every flow');
  clock.advance(2000);
  assert.equal(a.expiredAt, 4000);
  assert.equal(b.expiredAt, null);
  clock.advance(2000);
  assert.equal(b.expiredAt, 6000);
  assert.equal(clock.pendingTimers(), 0);
  const c = new Flow(clock);
  sweep.add(c);
  sweep.delete(c);
  assert.equal(clock.pendingTimers(), 0, 'the last flow closed stops the ticker');
  clock.advance(10_000);
  assert.equal(c.expiredAt, null);
});

test('a new timeout applies to the flows already open', () => {
  const clock = new FakeClock();
  const sweep = new IdleSweep<Flow>(clock, 60_000);
  const f = new Flow(clock);
  sweep.add(f);
  clock.advance(5000);
  sweep.setTimeoutMs(400);
  assert.equal(sweep.tickMs, 100);
  clock.advance(100);
  assert.equal(f.expiredAt, 5100, 'quiet since it was added, longer than the new timeout');
});

test('the tick is at least 20 ms however short the timeout', () => {
  assert.equal(new IdleSweep(new FakeClock(), 30).tickMs, 20);
});
