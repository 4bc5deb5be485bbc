import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EbbError } from '../shared/errors.ts';
import { InMemoryStateStore } from './in-memory-state-store.ts';
import { stateStoreContract } from './state-store-contract.ts';

stateStoreContract('InMemoryStateStore', () => Promise.resolve(new InMemoryStateStore()));

test('InMemoryStateStore: failNextCommit fails exactly one commit and writes nothing', async () => {
  const store = new InMemoryStateStore();
  store.failNextCommit();
  await assert.rejects(
    store.commit([{ op: 'put', kind: 'meta', key: 'k', value: { n: 1 } }]),
    (error: unknown) => EbbError.is(error) && error.code === 'StoreUnavailable',
  );
  assert.equal((await store.load()).get('meta')?.size, 0);
  assert.equal(store.commits, 0);
  await store.commit([{ op: 'put', kind: 'meta', key: 'k', value: { n: 1 } }]);
  assert.equal(store.commits, 1);
  assert.deepEqual((await store.load()).get('meta')?.get('k'), { n: 1 });
});
