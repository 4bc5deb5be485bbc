import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pruneEnded, RECORD_FILE } from './instance-files.ts';

test('the directories of ended instances are pruned to the newest few; recorded and in-use ones are never touched', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ebb-prune-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const id = (n: number) => `i-${n.toString(16).padStart(17, '0')}`;
  for (let n = 1; n <= 6; n++) {
    mkdirSync(join(dir, id(n)));
    writeFileSync(join(dir, id(n), 'output.log'), `run ${n}\n`);
    utimesSync(join(dir, id(n)), n * 1000, n * 1000);
  }
  writeFileSync(join(dir, id(1), RECORD_FILE), '{}'); // oldest, but recorded: still an instance
  mkdirSync(join(dir, 'not-an-instance'));
  const removed = pruneEnded(dir, 2, new Set([id(2)]));
  assert.deepEqual(removed.sort(), [id(3), id(4)]);
  assert.deepEqual(readdirSync(dir).sort(), [id(1), id(2), id(5), id(6), 'not-an-instance'].sort());
});
