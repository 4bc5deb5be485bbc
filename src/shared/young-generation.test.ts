import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CAP_FROM_HEAP_LIMIT_BYTES, servingExecArgv, takesCap, YOUNG_GENERATION_OPTION } from './young-generation.ts';

const BIG = 4 * 1024 ** 3;

test('a process ebb starts to serve traffic gets the young generation cap after its own options', () => {
  assert.deepEqual(servingExecArgv([], undefined, BIG), [YOUNG_GENERATION_OPTION]);
  assert.deepEqual(servingExecArgv(['--import', 'tsx'], '', BIG), ['--import', 'tsx', YOUNG_GENERATION_OPTION]);
  assert.deepEqual(servingExecArgv(['--import', 'tsx'], '--enable-source-maps --max-old-space-size=512', BIG), ['--import', 'tsx', YOUNG_GENERATION_OPTION]);
  assert.deepEqual(servingExecArgv(['--import', 'tsx'], undefined, CAP_FROM_HEAP_LIMIT_BYTES), ['--import', 'tsx', YOUNG_GENERATION_OPTION]);
});

test('below a 2 GiB heap limit, where Node chooses a smaller young generation itself, nothing is added', () => {
  assert.deepEqual(servingExecArgv(['--import', 'tsx'], undefined, CAP_FROM_HEAP_LIMIT_BYTES - 1), ['--import', 'tsx']);
  assert.equal(takesCap([], undefined, 512 * 1024 ** 2), false);
});

test('a size the operator chose, on the command line or in NODE_OPTIONS, is kept and not overridden', () => {
  assert.deepEqual(servingExecArgv(['--max-semi-space-size=4'], undefined, BIG), ['--max-semi-space-size=4']);
  assert.deepEqual(servingExecArgv(['--max_semi_space_size=2', '--import', 'tsx'], undefined, BIG), ['--max_semi_space_size=2', '--import', 'tsx']);
  assert.deepEqual(servingExecArgv(['--import', 'tsx'], '--trace-gc  --max-semi-space-size=8', BIG), ['--import', 'tsx']);
  assert.equal(takesCap([YOUNG_GENERATION_OPTION], undefined, BIG), false, 'a process started with the cap is not started again');
  // A different option that starts the same way is not a size.
  assert.deepEqual(servingExecArgv(['--max-semi-space-size-x'], undefined, BIG), ['--max-semi-space-size-x', YOUNG_GENERATION_OPTION]);
});
