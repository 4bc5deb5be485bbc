import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ERROR_CODES, EbbError, ebbError } from './errors.ts';

test('every error code is documented in docs/errors.md', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const missing = Object.keys(ERROR_CODES).filter((code) => !doc.includes(`\`${code}\``));
  assert.deepEqual(missing, []);
});

test('statuses and fault types are coherent', () => {
  for (const [code, spec] of Object.entries(ERROR_CODES)) {
    assert.ok(spec.status >= 400 && spec.status < 600, code);
    assert.equal(spec.fault, spec.status >= 500 ? 'Receiver' : 'Sender', code);
  }
});

test('EbbError carries code, status and fault, and is recognised by brand', () => {
  const e = ebbError('TargetGroupNotFound', 'Target group x not found');
  assert.equal(e.code, 'TargetGroupNotFound');
  assert.equal(e.status, 400);
  assert.equal(e.fault, 'Sender');
  assert.ok(EbbError.is(e));
  assert.ok(!EbbError.is(new Error('plain')));
  assert.ok(!EbbError.is({ code: 'TargetGroupNotFound' }));
});
