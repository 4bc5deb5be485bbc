import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CAP_FROM_HEAP_LIMIT_BYTES, servingExecArgv, takesCap, YOUNG_GENERATION_OPTION } from './young-generation.ts';

const MIB = 1024 ** 2;
const BIG = 4096 * MIB;

test('a process ebb starts to serve traffic gets the young generation cap after its own options', () => {
  assert.deepEqual(servingExecArgv([], undefined, BIG), [YOUNG_GENERATION_OPTION]);
  assert.deepEqual(servingExecArgv(['--import', 'tsx'], '', BIG), ['--import', 'tsx', YOUNG_GENERATION_OPTION]);
  assert.deepEqual(servingExecArgv(['--import', 'tsx'], '--enable-source-maps --trace-gc', BIG), ['--import', 'tsx', YOUNG_GENERATION_OPTION]);
  assert.deepEqual(servingExecArgv(['--import', 'tsx'], undefined, CAP_FROM_HEAP_LIMIT_BYTES), ['--import', 'tsx', YOUNG_GENERATION_OPTION]);
  assert.equal(takesCap(['--max-heap-size=4096'], undefined, BIG), true);
});

test('below a 2 GiB heap limit, where Node may choose a smaller young generation itself, nothing is added', () => {
  assert.deepEqual(servingExecArgv(['--import', 'tsx'], undefined, CAP_FROM_HEAP_LIMIT_BYTES - 1), ['--import', 'tsx']);
  assert.equal(takesCap([], undefined, 512 * MIB), false);
  assert.equal(takesCap(['--max-heap-size=1024'], undefined, 1024 * MIB), false);
});

test('with --max-old-space-size the semi-space is read from the heap limit: capped only when over 16 MiB', () => {
  // Node 24 with --max-old-space-size=1536 on a large machine: 1728 MiB = 1536 + 3 × 64.
  assert.equal(takesCap(['--max-old-space-size=1536'], undefined, 1728 * MIB), true);
  // Node 20 the same: 1584 = 1536 + 3 × 16, already the cap's size.
  assert.equal(takesCap(['--max-old-space-size=1536'], undefined, 1584 * MIB), false);
  // A small machine told to allow a large old space: 4096 + 3 × 4; the cap would raise it.
  assert.equal(takesCap([], '--max-old-space-size=4096', 4108 * MIB), false);
  assert.equal(takesCap(['--max_old_space_size=4096'], undefined, 4288 * MIB), true);
  // The command line's value wins over NODE_OPTIONS', as in node.
  assert.equal(takesCap(['--max-old-space-size=1536'], '--max-old-space-size=8192', 1728 * MIB), true);
  // With --max-heap-size too, V8 derives both from it again.
  assert.equal(takesCap(['--max-heap-size=1024', '--max-old-space-size=512'], undefined, 1024 * MIB), false);
});

test('a size the operator chose, on the command line or in NODE_OPTIONS, is kept and not overridden', () => {
  assert.deepEqual(servingExecArgv(['--max-semi-space-size=4'], undefined, BIG), ['--max-semi-space-size=4']);
  assert.deepEqual(servingExecArgv(['--max_semi_space_size=2', '--import', 'tsx'], undefined, BIG), ['--max_semi_space_size=2', '--import', 'tsx']);
  assert.deepEqual(servingExecArgv(['--import', 'tsx'], '--trace-gc  --max-semi-space-size=8', BIG), ['--import', 'tsx']);
  assert.deepEqual(servingExecArgv([], '"--max-semi-space-size=8"', BIG), [], 'quoted in NODE_OPTIONS');
  assert.equal(takesCap([YOUNG_GENERATION_OPTION], undefined, BIG), false, 'a process started with the cap is not started again');
  // A different option that starts the same way is not a size.
  assert.deepEqual(servingExecArgv(['--max-semi-space-size-x'], undefined, BIG), ['--max-semi-space-size-x', YOUNG_GENERATION_OPTION]);
});
