import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TypedEmitter } from './typed-emitter.ts';

test('a listener that throws neither stops the others nor escapes: it becomes a warning', async () => {
  const emitter = new TypedEmitter<{ tick: number }>();
  const seen: number[] = [];
  emitter.on('tick', () => {
    throw new Error('subscriber bug');
  });
  const off = emitter.on('tick', (n) => seen.push(n));
  const warned = new Promise<Error>((resolve) => process.once('warning', resolve));
  emitter.emit('tick', 1);
  assert.deepEqual(seen, [1]);
  assert.equal((await warned).message, 'subscriber bug');
  off();
  emitter.emit('tick', 2);
  assert.deepEqual(seen, [1], 'an unsubscribed listener is not called');
});
