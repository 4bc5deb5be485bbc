import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StateStore, StoreOp } from '../domain/store-port.ts';
import { EbbError } from '../shared/errors.ts';

/**
 * What every StateStore must do, as one suite each implementation runs (the SQLite store, the
 * in-memory one, and later the etcd one). `make` returns a fresh, empty, open store.
 */
export function stateStoreContract(name: string, make: () => Promise<StateStore>): void {
  const withStore = async (fn: (store: StateStore) => Promise<void>): Promise<void> => {
    const store = await make();
    try {
      await fn(store);
    } finally {
      await store.close();
    }
  };

  test(`${name}: an empty store loads an empty map for every kind`, () =>
    withStore(async (store) => {
      const state = await store.load();
      for (const kind of ['loadBalancer', 'listener', 'targetGroup', 'target', 'instance', 'drainRecord', 'meta'] as const) {
        assert.equal(state.get(kind)?.size, 0, kind);
      }
    }));

  test(`${name}: put, overwrite and delete round-trip as JSON`, () =>
    withStore(async (store) => {
      const value = { arn: 'arn:aws:x', n: 3, nested: { list: [1, 'two', null], ok: true }, gone: undefined };
      await store.commit([
        { op: 'put', kind: 'targetGroup', key: 'a', value },
        { op: 'put', kind: 'targetGroup', key: 'b', value: 'plain string' },
        { op: 'put', kind: 'target', key: 'a', value: 42 },
      ]);
      let state = await store.load();
      assert.deepEqual(state.get('targetGroup')?.get('a'), { arn: 'arn:aws:x', n: 3, nested: { list: [1, 'two', null], ok: true } });
      assert.equal(state.get('targetGroup')?.get('b'), 'plain string');
      assert.equal(state.get('target')?.get('a'), 42, 'same key, other kind, is another record');

      await store.commit([
        { op: 'put', kind: 'targetGroup', key: 'a', value: { v: 2 } },
        { op: 'delete', kind: 'targetGroup', key: 'b' },
        { op: 'delete', kind: 'listener', key: 'never-existed' },
      ]);
      state = await store.load();
      assert.deepEqual(state.get('targetGroup')?.get('a'), { v: 2 });
      assert.equal(state.get('targetGroup')?.has('b'), false);
      assert.equal(state.get('target')?.get('a'), 42);
    }));

  test(`${name}: later ops in one commit win over earlier ones`, () =>
    withStore(async (store) => {
      await store.commit([
        { op: 'put', kind: 'meta', key: 'k', value: 1 },
        { op: 'put', kind: 'meta', key: 'k', value: 2 },
        { op: 'put', kind: 'meta', key: 'gone', value: 1 },
        { op: 'delete', kind: 'meta', key: 'gone' },
      ]);
      const meta = (await store.load()).get('meta');
      assert.equal(meta?.get('k'), 2);
      assert.equal(meta?.has('gone'), false);
    }));

  test(`${name}: a value changed after commit does not change what is stored`, () =>
    withStore(async (store) => {
      const value = { list: [1] };
      await store.commit([{ op: 'put', kind: 'meta', key: 'k', value }]);
      value.list.push(2);
      assert.deepEqual((await store.load()).get('meta')?.get('k'), { list: [1] });
    }));

  const badOps: [string, StoreOp][] = [
    ['a value JSON cannot hold', { op: 'put', kind: 'target', key: 'bad', value: 10n }],
    ['a value with no JSON form', { op: 'put', kind: 'target', key: 'bad', value: undefined }],
    ['an unknown kind', { op: 'put', kind: 'nope' as 'target', key: 'bad', value: 1 }],
    ['an empty key', { op: 'put', kind: 'target', key: '', value: 1 }],
  ];
  for (const [what, bad] of badOps) {
    test(`${name}: a commit with ${what} changes nothing`, () =>
      withStore(async (store) => {
        await store.commit([{ op: 'put', kind: 'target', key: 'kept', value: 'before' }]);
        const circular: Record<string, unknown> = {};
        circular['self'] = circular;
        await assert.rejects(
          store.commit([
            { op: 'put', kind: 'target', key: 'kept', value: 'after' },
            { op: 'put', kind: 'target', key: 'new', value: 1 },
            { op: 'delete', kind: 'target', key: 'kept' },
            bad,
          ]),
          (error: unknown) => EbbError.is(error),
        );
        await assert.rejects(store.commit([{ op: 'put', kind: 'target', key: 'new', value: circular }]), (error: unknown) => EbbError.is(error));
        const targets = (await store.load()).get('target');
        assert.deepEqual([...(targets ?? [])], [['kept', 'before']]);
      }));
  }

  test(`${name}: a closed store refuses work with StoreUnavailable, and close is idempotent`, async () => {
    const store = await make();
    await store.close();
    await store.close();
    await assert.rejects(store.load(), (error: unknown) => EbbError.is(error) && error.code === 'StoreUnavailable');
    await assert.rejects(
      store.commit([{ op: 'put', kind: 'meta', key: 'k', value: 1 }]),
      (error: unknown) => EbbError.is(error) && error.code === 'StoreUnavailable',
    );
  });
}
