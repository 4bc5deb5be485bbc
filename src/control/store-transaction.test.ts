import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EbbError } from '../shared/errors.ts';
import { InMemoryStateStore } from '../store/in-memory-state-store.ts';
import { put, StoreTransaction } from './store-transaction.ts';

function setup() {
  const store = new InMemoryStateStore();
  const steps: string[] = [];
  const tx = new StoreTransaction(store, () => steps.push('publish'));
  return { store, steps, tx };
}

test('commit, then apply, then publish; resolves with what apply returns', async () => {
  const { store, steps, tx } = setup();
  const result = await tx.transact([put('instance', 'i-1', { id: 'i-1', address: '10.0.0.1' })], () => {
    steps.push(`apply after ${store.commits} commit`);
    return 42;
  });
  assert.equal(result, 42);
  assert.deepEqual(steps, ['apply after 1 commit', 'publish']);
});

test('a change nothing routed depends on is not published; no operations write nothing', async () => {
  const { store, steps, tx } = setup();
  await tx.transact([put('instance', 'i-1', { id: 'i-1', address: '10.0.0.1' })], () => steps.push('apply'), { publish: false });
  await tx.transact([], () => steps.push('apply nothing'));
  assert.deepEqual(steps, ['apply', 'apply nothing', 'publish']);
  assert.equal(store.commits, 1);
});

test('a failed commit moves nothing: apply and publish do not run, and the error says StoreUnavailable', async () => {
  const { store, steps, tx } = setup();
  store.failNextCommit(new Error('disk full'));
  await assert.rejects(
    tx.transact([put('instance', 'i-1', {})], () => steps.push('apply')),
    (e: unknown) => EbbError.is(e) && e.code === 'StoreUnavailable' && /disk full/.test(e.message),
  );
  assert.deepEqual(steps, []);
});
