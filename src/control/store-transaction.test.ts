import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EbbError } from '../shared/errors.ts';
import { InMemoryGroupCommitStore, InMemoryStateStore } from '../store/in-memory-state-store.ts';
import { SerialQueue } from './serial-queue.ts';
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

describe('group commit', () => {
  function grouped() {
    const store = new InMemoryGroupCommitStore();
    const steps: string[] = [];
    const tx = new StoreTransaction(store, () => steps.push('publish'), { group: true });
    return { store, steps, tx };
  }
  const later = { publish: 'later' } as const;
  const nextHeldFlush = async (store: InMemoryGroupCommitStore): Promise<void> => {
    for (let i = 0; i < 100 && store.heldFlushes === 0; i++) await new Promise((r) => setImmediate(r));
    assert.equal(store.heldFlushes, 1, 'a flush is held');
  };
  const settledYet = async (p: Promise<unknown>): Promise<boolean> => {
    let done = false;
    p.then(
      () => (done = true),
      () => (done = true),
    );
    for (let i = 0; i < 10; i++) await Promise.resolve();
    return done;
  };

  test('only with a store that can, and when asked', () => {
    assert.equal(new StoreTransaction(new InMemoryStateStore(), () => undefined, { group: true }).grouped, false);
    assert.equal(new StoreTransaction(new InMemoryGroupCommitStore(), () => undefined).grouped, false);
    assert.equal(grouped().tx.grouped, true);
  });

  test('transact writes and applies without waiting for the disk; settled waits for the flush that covers it', async () => {
    const { store, steps, tx } = grouped();
    store.holdFlushes();
    await tx.transact([put('instance', 'i-1', {})], () => steps.push('apply 1'), later);
    assert.equal(store.flushes, 1, 'the first change starts a group at once');
    assert.deepEqual(steps, ['apply 1', 'publish'], 'published with its group, before the flush');
    const first = tx.settled();
    await tx.transact([put('instance', 'i-2', {})], () => steps.push('apply 2'), later);
    await tx.transact([put('instance', 'i-3', {})], () => steps.push('apply 3'), later);
    const second = tx.settled();
    const third = tx.settled();
    assert.equal(store.commits, 3, 'every change is written at once');
    assert.deepEqual(steps, ['apply 1', 'publish', 'apply 2', 'apply 3'], 'changes made while a flush runs wait to be published');
    assert.equal(await settledYet(first), false, 'not answered before its flush');
    store.releaseFlush();
    await first;
    assert.equal(store.flushes, 2, 'the changes made meanwhile share the next flush');
    assert.deepEqual(steps, ['apply 1', 'publish', 'apply 2', 'apply 3', 'publish'], 'and one publication');
    assert.equal(await settledYet(second), false);
    store.releaseFlush();
    await Promise.all([second, third]);
    await tx.settled();
    assert.equal(store.flushes, 2, 'nothing new: no flush');
  });

  test('publish true publishes at once, and takes what waited for later with it', async () => {
    const { store, steps, tx } = grouped();
    store.holdFlushes();
    await tx.transact([put('instance', 'i-1', {})], () => steps.push('apply 1'), later);
    await tx.transact([put('instance', 'i-2', {})], () => steps.push('apply 2'), later);
    await tx.transact([put('instance', 'i-3', {})], () => steps.push('apply 3'));
    await tx.transact([put('instance', 'i-4', {})], () => steps.push('apply 4'), { publish: false });
    assert.deepEqual(steps, ['apply 1', 'publish', 'apply 2', 'apply 3', 'publish', 'apply 4']);
    const done = tx.settled();
    store.releaseFlush();
    await nextHeldFlush(store);
    store.releaseFlush();
    await done;
    assert.deepEqual(steps, ['apply 1', 'publish', 'apply 2', 'apply 3', 'publish', 'apply 4'], 'nothing left to publish');
  });

  test('a refused change writes and applies nothing, and the changes around it go through', async () => {
    const { store, steps, tx } = grouped();
    await tx.transact([put('instance', 'i-1', {})], () => steps.push('apply 1'));
    store.failNextWrite(new Error('disk full'));
    await assert.rejects(
      tx.transact([put('instance', 'i-2', {})], () => steps.push('apply 2')),
      (e: unknown) => EbbError.is(e) && e.code === 'StoreUnavailable' && /disk full/.test(e.message),
    );
    await tx.transact([put('instance', 'i-3', {})], () => steps.push('apply 3'));
    await tx.settled();
    assert.deepEqual(steps, ['apply 1', 'publish', 'apply 3', 'publish']);
    assert.deepEqual([...((await store.load()).get('instance')?.keys() ?? [])], ['i-1', 'i-3']);
  });

  test('a failed flush fails everyone waiting on its group, and every later change', async () => {
    const { store, tx } = grouped();
    store.holdFlushes();
    await tx.transact([put('instance', 'i-1', {})], () => undefined);
    const first = tx.settled();
    await tx.transact([put('instance', 'i-2', {})], () => undefined);
    const second = tx.settled();
    store.releaseFlush(new EbbError('StoreUnavailable', 'A change could not be made durable (EIO)'));
    await assert.rejects(first, /could not be made durable/);
    await assert.rejects(second, /could not be made durable/, 'the group after it fails too');
    await assert.rejects(tx.transact([put('instance', 'i-3', {})], () => assert.fail('applied')), /could not be made durable/);
  });

  test('a publication that throws fails its group once durable, and the groups after it go on', async () => {
    const store = new InMemoryGroupCommitStore();
    let fail = true;
    const tx = new StoreTransaction(
      store,
      () => {
        if (fail) throw new Error('a data plane refused the snapshot');
      },
      { group: true },
    );
    store.holdFlushes();
    await tx.transact([put('instance', 'i-0', {})], () => undefined, later); // starts a group, whose publication throws
    const first = tx.settled();
    store.releaseFlush();
    await assert.rejects(first, /refused the snapshot/);
    assert.equal(store.flushes, 1, 'its flush ran all the same');
    fail = false;
    await tx.transact([put('instance', 'i-1', {})], () => undefined, later);
    const second = tx.settled();
    store.releaseFlush();
    await second;
    assert.equal(store.flushes, 2);
  });

  test('a change nobody waits for is flushed all the same', async () => {
    const { store, tx } = grouped();
    store.holdFlushes();
    await tx.transact([put('instance', 'i-1', {})], () => undefined);
    await tx.transact([put('instance', 'i-2', {})], () => undefined);
    store.releaseFlush();
    await nextHeldFlush(store);
    assert.equal(store.flushes, 2, 'the second change gets a flush of its own once the first ends');
    store.releaseFlush();
  });
});

describe('serial queue with a settle step', () => {
  test('the next task starts without waiting for the settle; each caller gets its result after it', async () => {
    const order: string[] = [];
    let release!: () => void;
    const settle = new Promise<void>((resolve) => (release = resolve));
    const queue = new SerialQueue(() => settle);
    const a = queue.run(() => {
      order.push('task a');
      return 'a';
    });
    const b = queue.run(() => {
      order.push('task b');
      throw new Error('b refused');
    });
    const answers: string[] = [];
    void a.then((v) => answers.push(v));
    void b.catch((e: Error) => answers.push(e.message));
    for (let i = 0; i < 10; i++) await Promise.resolve();
    assert.deepEqual(order, ['task a', 'task b']);
    assert.deepEqual(answers, [], 'no answer before the settle');
    release();
    await Promise.allSettled([a, b]);
    assert.deepEqual(answers.sort(), ['a', 'b refused']);
  });

  test('a failed settle replaces the result with its error', async () => {
    const queue = new SerialQueue(() => Promise.reject(new Error('flush failed')));
    await assert.rejects(
      queue.run(() => 1),
      /flush failed/,
    );
  });
});
