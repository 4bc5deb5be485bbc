import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EbbError } from '../shared/errors.ts';
import { currentVersion, MIGRATIONS, type Migration, upgradeRecord } from './migrations.ts';
import { STORE_KINDS } from './records.ts';

test('every kind has its migrations, from records without v (version 0) to the current version', () => {
  assert.deepEqual(Object.keys(MIGRATIONS).sort(), [...STORE_KINDS].sort());
  for (const kind of STORE_KINDS) {
    assert.ok(currentVersion(kind) >= 1, kind);
    assert.equal(currentVersion(kind), MIGRATIONS[kind].length, kind);
  }
});

// A made-up history of three formats: 0 had `name`, 1 renamed it `title`, 2 added `tags`.
const chain: readonly Migration[] = [
  ({ name, ...rest }) => ({ ...rest, title: name }),
  (record) => ({ ...record, tags: [] }),
];

test('a record is taken through each later migration in order, and ends with the current v', () => {
  assert.deepEqual(upgradeRecord('target', 'k', { name: 'a', n: 1 }, chain), { n: 1, title: 'a', tags: [], v: 2 });
  assert.deepEqual(upgradeRecord('target', 'k', { v: 0, name: 'a' }, chain), { title: 'a', tags: [], v: 2 }, 'v 0 is the same as no v');
  assert.deepEqual(upgradeRecord('target', 'k', { v: 1, title: 'a' }, chain), { title: 'a', tags: [], v: 2 }, 'from the previous version only the last step runs');
  assert.equal(upgradeRecord('target', 'k', { v: 2, title: 'a', tags: [] }, chain), null, 'a current record is left alone');
});

test('a record of a newer ebb, or one that is not a record, is refused with StoreUnavailable naming it', () => {
  const refused = (value: unknown, pattern: RegExp): void => {
    assert.throws(
      () => upgradeRecord('listener', 'arn:x', value, chain),
      (error: unknown) => EbbError.is(error) && error.code === 'StoreUnavailable' && pattern.test(error.message),
    );
  };
  refused({ v: 3 }, /listener record "arn:x" was written by a newer ebb \(format 3; this ebb reads up to 2\)/);
  refused('text', /listener record "arn:x" is not a JSON object/);
  refused([1], /not a JSON object/);
  refused({ v: '1' }, /format version "1", which is not a version number/);
  refused({ v: -1 }, /not a version number/);
});
