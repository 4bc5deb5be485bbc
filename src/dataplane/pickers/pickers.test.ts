import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RoutableTarget, TargetGroupRoute } from '../../domain/routing-snapshot.ts';
import { pickTarget } from './index.ts';
import { pickLeastOutstanding } from './least-outstanding.ts';
import { pickRoundRobin, pickRoundRobinSlowStart } from './round-robin.ts';
import { pickWeightedRandom, slowStartWeight } from './weighted-random.ts';

/** The tests' snapshot was built at 10 000 ms; a target is given by when it became healthy, and carries how long before that was. */
const BUILT_AT = 10_000;
const t = (key: string, healthySince: number | null = 0): RoutableTarget => ({ key, host: '127.0.0.1', port: 1, healthyForMs: healthySince === null ? null : BUILT_AT - healthySince });
const ABC = [t('a'), t('b'), t('c')];

test('round robin: exact pick sequences', () => {
  const cases: Array<{ targets: RoutableTarget[]; start: number; picks: number; want: string[] }> = [
    { targets: ABC, start: 0, picks: 7, want: ['a', 'b', 'c', 'a', 'b', 'c', 'a'] },
    { targets: ABC, start: 5, picks: 3, want: ['c', 'a', 'b'] },
    { targets: [t('x')], start: 0, picks: 3, want: ['x', 'x', 'x'] },
  ];
  for (const c of cases) {
    const state = { next: c.start };
    const got = Array.from({ length: c.picks }, () => pickRoundRobin(c.targets, state)?.key);
    assert.deepEqual(got, c.want);
  }
  assert.equal(pickRoundRobin([], { next: 0 }), null);
});

test('round robin: a shrinking target list keeps the cursor in range', () => {
  const state = { next: 0 };
  pickRoundRobin(ABC, state);
  pickRoundRobin(ABC, state);
  assert.equal(pickRoundRobin([t('a'), t('b')], state)?.key, 'a');
});

test('least outstanding: fewest in flight, ties in rotation', () => {
  const cases: Array<{ counts: Record<string, number>; start: number; want: string }> = [
    { counts: { a: 3, b: 1, c: 2 }, start: 0, want: 'b' },
    { counts: { a: 0, b: 0, c: 0 }, start: 0, want: 'a' },
    { counts: { a: 0, b: 0, c: 0 }, start: 1, want: 'b' },
    { counts: { a: 1, b: 2, c: 1 }, start: 1, want: 'c' },
    { counts: { a: 5, b: 5, c: 4 }, start: 2, want: 'c' },
  ];
  for (const c of cases) {
    const got = pickLeastOutstanding(ABC, (k) => c.counts[k] ?? 0, { next: c.start });
    assert.equal(got?.key, c.want, JSON.stringify(c));
  }
  assert.equal(pickLeastOutstanding([], () => 0, { next: 0 }), null);
});

test('least outstanding: equal loads spread evenly', () => {
  const state = { next: 0 };
  const got = Array.from({ length: 6 }, () => pickLeastOutstanding(ABC, () => 0, state)?.key);
  assert.deepEqual(got, ['a', 'b', 'c', 'a', 'b', 'c']);
});

test('weighted random: uniform without slow start, by the random value', () => {
  const cases: Array<{ r: number; want: string }> = [
    { r: 0, want: 'a' },
    { r: 0.34, want: 'b' },
    { r: 0.99, want: 'c' },
  ];
  for (const c of cases) assert.equal(pickWeightedRandom(ABC, () => c.r, 0, 0)?.key, c.want);
  assert.equal(pickWeightedRandom([], () => 0.5, 0, 0), null);
});

test('weighted random: a target in slow start gets a smaller share', () => {
  // a healthy long ago (weight 1), b healthy for 10 % of a 1000 ms slow start (weight 0.1).
  const targets = [t('a', 0), t('b', 9_900)];
  assert.equal(slowStartWeight(targets[1] as RoutableTarget, 1000, 0), 0.1);
  assert.equal(slowStartWeight(targets[0] as RoutableTarget, 1000, 0), 1);
  assert.equal(slowStartWeight(t('n', null), 1000, 0), 1);
  const cases: Array<{ r: number; want: string }> = [
    { r: 0, want: 'a' },
    { r: 0.9, want: 'a' },
    { r: 0.95, want: 'b' },
  ];
  for (const c of cases) assert.equal(pickWeightedRandom(targets, () => c.r, 1000, 0)?.key, c.want);
});

test('pickTarget dispatches on the group algorithm', () => {
  const group = (algorithm: TargetGroupRoute['algorithm']): TargetGroupRoute => ({
    arn: 'g',
    name: 'g',
    protocol: 'HTTP', targetTls: null, proxyProtocolV2: false, connectionTermination: false,
    algorithm,
    targets: ABC,
    failOpen: false,
    slowStartMs: 0,
  });
  const inputs = { outstanding: (k: string) => (k === 'a' ? 9 : k === 'b' ? 0 : 5), random: () => 0.99, now: () => 0 };
  assert.equal(pickTarget(group('round_robin'), { next: 0 }, inputs)?.key, 'a');
  assert.equal(pickTarget(group('least_outstanding_requests'), { next: 0 }, inputs)?.key, 'b');
  assert.equal(pickTarget(group('weighted_random'), { next: 0 }, inputs)?.key, 'c');
});

test('round robin with slow start: a ramping target gets its share of picks, evenly spread', () => {
  // a and b healthy long ago (weight 1); c healthy 10 % into a 1000 ms slow start (weight 0.1).
  const targets = [t('a', -100_000), t('b', -100_000), t('c', 9_900)];
  const state = { next: 0 };
  const picks = Array.from({ length: 42 }, () => pickRoundRobinSlowStart(targets, state, 1000, 0)?.key);
  const count = (k: string) => picks.filter((p) => p === k).length;
  assert.deepEqual([count('a'), count('b'), count('c')], [20, 20, 2], 'shares follow weights 1 : 1 : 0.1');
  const firstC = picks.indexOf('c');
  assert.ok(firstC > 0 && picks.indexOf('c', firstC + 1) - firstC >= 15, 'the ramping target is not picked in bursts');
});

test('round robin with slow start: plain rotation once nobody ramps, and exactly as before without slow start', () => {
  const state = { next: 0 };
  const got = Array.from({ length: 4 }, () => pickRoundRobinSlowStart(ABC, state, 1000, 0)?.key);
  assert.deepEqual(got, ['a', 'b', 'c', 'a']);
  const group = (slowStartMs: number): TargetGroupRoute => ({
    arn: 'g', name: 'g', protocol: 'HTTP', targetTls: null, proxyProtocolV2: false, connectionTermination: false, algorithm: 'round_robin', targets: [t('a', -100_000), t('n', 9_999)], failOpen: false, slowStartMs,
  });
  const inputs = { outstanding: () => 0, random: () => 0.5, now: () => 0 };
  const plain = { next: 0 };
  assert.deepEqual([pickTarget(group(0), plain, inputs)?.key, pickTarget(group(0), plain, inputs)?.key], ['a', 'n']);
  const ramp = { next: 0 };
  const ramped = Array.from({ length: 11 }, () => pickTarget(group(1000), ramp, inputs)?.key);
  assert.equal(ramped.filter((k) => k === 'n').length, 1, 'the new target gets about 10 % while it starts');
});
