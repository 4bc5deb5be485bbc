import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SlotSet, slotField } from './slot-set.ts';

class Member {
  slot = -1;
  other = -1;
  constructor(readonly name: string) {}
}
const SLOT = slotField('slot');
const OTHER = slotField('other');
const names = (s: Iterable<Member>): string[] => [...s].map((m) => m.name).sort();

test('add, has, delete and size as a Set has them; adding twice keeps one', () => {
  const set = new SlotSet<Member>(SLOT);
  const [a, b, c] = [new Member('a'), new Member('b'), new Member('c')];
  set.add(a);
  set.add(b);
  set.add(a);
  set.add(c);
  assert.equal(set.size, 3);
  assert.deepEqual(names(set), ['a', 'b', 'c']);
  assert.equal(set.delete(a), true, 'the first member: the last takes its index');
  assert.equal(set.delete(a), false, 'not in the set any more');
  assert.equal(set.has(a), false);
  assert.equal(a.slot, -1);
  assert.equal(set.has(c), true);
  assert.equal(set.has(b), true);
  assert.equal(set.size, 2);
  assert.equal(set.delete(c), true);
  assert.equal(set.delete(b), true);
  assert.equal(set.size, 0);
  assert.deepEqual([...set], []);
});

test('a member whose slot names another member of the set is not taken for a member', () => {
  const set = new SlotSet<Member>(SLOT);
  const a = new Member('a');
  const stranger = new Member('stranger');
  set.add(a);
  stranger.slot = 0;
  assert.equal(set.has(stranger), false);
  assert.equal(set.delete(stranger), false);
  assert.equal(set.has(a), true, 'the member at that index is left alone');
});

test('one object in two sets, each through its own slot', () => {
  const first = new SlotSet<Member>(SLOT);
  const second = new SlotSet<Member>(OTHER);
  const [a, b] = [new Member('a'), new Member('b')];
  first.add(b);
  first.add(a);
  second.add(a);
  assert.equal(first.delete(b), true);
  assert.equal(second.has(a), true);
  assert.equal(first.has(a), true);
  assert.deepEqual([a.slot, a.other], [0, 0]);
});

test('a walk sees the members as they were when it began, whatever is added or deleted meanwhile', () => {
  const set = new SlotSet<Member>(SLOT);
  const members = Array.from({ length: 6 }, (_, i) => new Member(`m${i}`));
  for (const m of members) set.add(m);
  const seen: string[] = [];
  for (const m of set) {
    seen.push(m.name);
    set.delete(m);
    if (m.name === 'm1') set.delete(members[4] as Member);
    if (m.name === 'm2') set.add(new Member('late'));
  }
  assert.deepEqual(seen, ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'], 'every member of the start, none skipped by a deletion');
  assert.deepEqual(names(set), ['late']);
});

test('many members in and out in any order: the set always holds exactly those added and not deleted', () => {
  const set = new SlotSet<Member>(SLOT);
  const model = new Set<Member>();
  const pool = Array.from({ length: 40 }, (_, i) => new Member(`p${i}`));
  let seed = 7;
  const next = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  for (let step = 0; step < 2000; step++) {
    const m = pool[next(pool.length)] as Member;
    if (next(2) === 0) {
      set.add(m);
      model.add(m);
    } else assert.equal(set.delete(m), model.delete(m));
    assert.equal(set.size, model.size);
  }
  assert.deepEqual(names(set), names(model));
  for (const m of pool) assert.equal(set.has(m), model.has(m));
});
