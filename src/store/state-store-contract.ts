import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StateStore, StoreOp } from '../domain/store-port.ts';
import { EbbError } from '../shared/errors.ts';
import { currentVersion } from './migrations.ts';
import { STORE_KINDS } from './records.ts';

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
      for (const kind of STORE_KINDS) {
        assert.equal(state.get(kind)?.size, 0, kind);
      }
    }));

  test(`${name}: put, overwrite and delete round-trip as JSON`, () =>
    withStore(async (store) => {
      const value = { arn: 'arn:aws:x', n: 3, nested: { list: [1, 'two', null], ok: true }, gone: undefined };
      await store.commit([
        { op: 'put', kind: 'targetGroup', key: 'a', value },
        { op: 'put', kind: 'targetGroup', key: 'b', value: { s: 'plain string' } },
        { op: 'put', kind: 'target', key: 'a', value: { n: 42 } },
      ]);
      let state = await store.load();
      assert.deepEqual(state.get('targetGroup')?.get('a'), { arn: 'arn:aws:x', n: 3, nested: { list: [1, 'two', null], ok: true } });
      assert.deepEqual(state.get('targetGroup')?.get('b'), { s: 'plain string' });
      assert.deepEqual(state.get('target')?.get('a'), { n: 42 }, 'same key, other kind, is another record');

      await store.commit([
        { op: 'put', kind: 'targetGroup', key: 'a', value: { n: 2 } },
        { op: 'delete', kind: 'targetGroup', key: 'b' },
        { op: 'delete', kind: 'listener', key: 'never-existed' },
      ]);
      state = await store.load();
      assert.deepEqual(state.get('targetGroup')?.get('a'), { n: 2 });
      assert.equal(state.get('targetGroup')?.has('b'), false);
      assert.deepEqual(state.get('target')?.get('a'), { n: 42 });
    }));

  test(`${name}: the store keeps each record's format version; a value may name the current one, and loads without it`, () =>
    withStore(async (store) => {
      for (const kind of STORE_KINDS) {
        await store.commit([
          { op: 'put', kind, key: 'plain', value: { n: 1 } },
          { op: 'put', kind, key: 'versioned', value: { v: currentVersion(kind), n: 2 } },
        ]);
      }
      const state = await store.load();
      for (const kind of STORE_KINDS) {
        assert.deepEqual(state.get(kind)?.get('plain'), { n: 1 }, kind);
        assert.deepEqual(state.get(kind)?.get('versioned'), { n: 2 }, kind);
      }
      await assert.rejects(
        store.commit([{ op: 'put', kind: 'target', key: 'other', value: { v: currentVersion('target') + 1 } }]),
        (error: unknown) => EbbError.is(error) && /format version/.test(error.message),
      );
    }));

  test(`${name}: later ops in one commit win over earlier ones`, () =>
    withStore(async (store) => {
      await store.commit([
        { op: 'put', kind: 'meta', key: 'k', value: { n: 1 } },
        { op: 'put', kind: 'meta', key: 'k', value: { n: 2 } },
        { op: 'put', kind: 'meta', key: 'gone', value: { n: 1 } },
        { op: 'delete', kind: 'meta', key: 'gone' },
      ]);
      const meta = (await store.load()).get('meta');
      assert.deepEqual(meta?.get('k'), { n: 2 });
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
    ['a value JSON cannot hold', { op: 'put', kind: 'target', key: 'bad', value: { n: 10n } }],
    ['a value with no JSON form', { op: 'put', kind: 'target', key: 'bad', value: undefined }],
    ['a value that is not a JSON object', { op: 'put', kind: 'target', key: 'bad', value: 'text' }],
    ['an array', { op: 'put', kind: 'target', key: 'bad', value: [1] }],
    ['a value naming another format version', { op: 'put', kind: 'target', key: 'bad', value: { v: 0 } }],
    ['an unknown kind', { op: 'put', kind: 'nope' as 'target', key: 'bad', value: { n: 1 } }],
    ['an empty key', { op: 'put', kind: 'target', key: '', value: { n: 1 } }],
  ];
  for (const [what, bad] of badOps) {
    test(`${name}: a commit with ${what} changes nothing`, () =>
      withStore(async (store) => {
        await store.commit([{ op: 'put', kind: 'target', key: 'kept', value: { s: 'before' } }]);
        const circular: Record<string, unknown> = {};
        circular['self'] = circular;
        await assert.rejects(
          store.commit([
            { op: 'put', kind: 'target', key: 'kept', value: { s: 'after' } },
            { op: 'put', kind: 'target', key: 'new', value: { n: 1 } },
            { op: 'delete', kind: 'target', key: 'kept' },
            bad,
          ]),
          (error: unknown) => EbbError.is(error),
        );
        await assert.rejects(store.commit([{ op: 'put', kind: 'target', key: 'new', value: circular }]), (error: unknown) => EbbError.is(error));
        const targets = (await store.load()).get('target');
        assert.deepEqual([...(targets ?? [])], [['kept', { s: 'before' }]]);
      }));
  }

  test(`${name}: a closed store refuses work with StoreUnavailable, and close is idempotent`, async () => {
    const store = await make();
    await store.close();
    await store.close();
    await assert.rejects(store.load(), (error: unknown) => EbbError.is(error) && error.code === 'StoreUnavailable');
    await assert.rejects(
      store.commit([{ op: 'put', kind: 'meta', key: 'k', value: { n: 1 } }]),
      (error: unknown) => EbbError.is(error) && error.code === 'StoreUnavailable',
    );
  });
}
