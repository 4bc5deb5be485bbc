import assert from 'node:assert/strict';
import { test } from 'node:test';
import { servingExecArgv, YOUNG_GENERATION_OPTION } from './young-generation.ts';

test('a process ebb starts to serve traffic gets the young generation cap after its own options', () => {
  assert.deepEqual(servingExecArgv([], undefined), [YOUNG_GENERATION_OPTION]);
  assert.deepEqual(servingExecArgv(['--import', 'tsx'], ''), ['--import', 'tsx', YOUNG_GENERATION_OPTION]);
  assert.deepEqual(servingExecArgv(['--import', 'tsx'], '--enable-source-maps --max-old-space-size=512'), ['--import', 'tsx', YOUNG_GENERATION_OPTION]);
});

test('a size the operator chose, on the command line or in NODE_OPTIONS, is kept and not overridden', () => {
  assert.deepEqual(servingExecArgv(['--max-semi-space-size=4'], undefined), ['--max-semi-space-size=4']);
  assert.deepEqual(servingExecArgv(['--max_semi_space_size=2', '--import', 'tsx'], undefined), ['--max_semi_space_size=2', '--import', 'tsx']);
  assert.deepEqual(servingExecArgv(['--import', 'tsx'], '--trace-gc  --max-semi-space-size=8'), ['--import', 'tsx']);
  // A different option that starts the same way is not a size.
  assert.deepEqual(servingExecArgv(['--max-semi-space-size-x'], undefined), ['--max-semi-space-size-x', YOUNG_GENERATION_OPTION]);
});
