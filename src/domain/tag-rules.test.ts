import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EbbError } from '../shared/errors.ts';
import { mergeTags, removeTagKeys, validateTags } from './tag-rules.ts';

const code = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    if (EbbError.is(e)) return e.code;
    throw e;
  }
  return 'ok';
};

test('keys and values: letters of any script, digits, spaces and _.:/=+-@, within their lengths', () => {
  assert.equal(code(() => validateTags([{ key: 'Team name', value: 'Zürich/платежи:v1=+-@_' }])), 'ok');
  assert.equal(code(() => validateTags([{ key: 'k', value: '' }])), 'ok', 'an empty value is allowed');
  assert.equal(code(() => validateTags([{ key: '', value: 'v' }])), 'ValidationError');
  assert.equal(code(() => validateTags([{ key: 'a'.repeat(129), value: 'v' }])), 'ValidationError');
  assert.equal(code(() => validateTags([{ key: 'k', value: 'v'.repeat(257) }])), 'ValidationError');
  assert.equal(code(() => validateTags([{ key: 'k*', value: 'v' }])), 'ValidationError');
  assert.equal(code(() => validateTags([{ key: 'k', value: 'v' }, { key: 'k', value: 'w' }])), 'DuplicateTagKeys');
  assert.equal(code(() => validateTags(Array.from({ length: 51 }, (_, i) => ({ key: `k${i}`, value: '' })))), 'TooManyTags');
});

test("keys starting with 'ebb:' are ebb's own and refused, as AWS keeps 'aws:' for itself", () => {
  assert.equal(code(() => validateTags([{ key: 'ebb:classic-cross-zone', value: 'true' }])), 'ValidationError');
  assert.equal(code(() => validateTags([{ key: 'EBB:x', value: '' }])), 'ValidationError');
  assert.equal(code(() => validateTags([{ key: 'team:ebb', value: 'ebb:' }])), 'ok');
});

test('merge replaces the value of a key given again and keeps the limit; remove ignores unknown keys', () => {
  const current = [{ key: 'a', value: '1' }, { key: 'b', value: '2' }];
  assert.deepEqual(mergeTags(current, [{ key: 'b', value: '3' }, { key: 'c', value: '4' }]), [
    { key: 'a', value: '1' },
    { key: 'b', value: '3' },
    { key: 'c', value: '4' },
  ]);
  const full = Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: '' }));
  assert.equal(code(() => mergeTags(full, [{ key: 'k0', value: 'x' }])), 'ok');
  assert.equal(code(() => mergeTags(full, [{ key: 'new', value: '' }])), 'TooManyTags');
  assert.deepEqual(removeTagKeys(current, ['b', 'zz']), [{ key: 'a', value: '1' }]);
});
