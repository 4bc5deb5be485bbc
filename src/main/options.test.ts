import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EbbError } from '../shared/errors.ts';
import { defaultWorkers, MAX_WORKERS, parseArgs, usage, workerCount } from './options.ts';

test('--listen-internet-facing and --listen-internal take an IP address, with a space or =', () => {
  const { serve } = parseArgs(['serve', '--listen-internet-facing', '10.0.0.5', '--listen-internal=127.0.0.2']);
  assert.equal(serve.listenInternetFacing, '10.0.0.5');
  assert.equal(serve.listenInternal, '127.0.0.2');
  assert.deepEqual(parseArgs(['serve', '--listen-internal', '::1']).serve, { listenInternal: '::1' });
  assert.throws(
    () => parseArgs(['serve', '--listen-internal', 'localhost']),
    (e: unknown) => EbbError.is(e) && e.code === 'ValidationError' && /--listen-internal 'localhost' is not an IP address/.test(e.message),
  );
  assert.throws(() => parseArgs(['serve', '--listen-internet-facing']), (e: unknown) => EbbError.is(e) && /needs a value/.test(e.message));
});

test('--workers takes a count of processes, or auto (or 0) for one per core; anything else says what to give', () => {
  assert.equal(parseArgs(['serve', '--workers', '4']).serve.workers, 4);
  assert.equal(parseArgs(['serve', '--workers=1']).serve.workers, 1);
  assert.equal(parseArgs(['serve']).serve.workers, undefined, 'unset: `ebb serve` takes defaultWorkers(), startEbb its own process');
  assert.equal(workerCount('auto', 6), 6);
  assert.equal(workerCount('0', 3), 3);
  assert.equal(workerCount(String(MAX_WORKERS), 2), MAX_WORKERS);
  for (const bad of ['-1', 'two', '1.5', String(MAX_WORKERS + 1), '']) {
    assert.throws(
      () => workerCount(bad, 2),
      (e: unknown) => EbbError.is(e) && e.code === 'ValidationError' && /give 1 to 256, or auto for one per core \(2 here\)/.test(e.message),
      bad,
    );
  }
});

test('without --workers, ebb serve runs one data-plane process per core, and on one core its own', () => {
  assert.equal(defaultWorkers(8), 8);
  assert.equal(defaultWorkers(2), 2);
  assert.equal(defaultWorkers(1), 1, 'one core: traffic in ebb\'s own process, no worker');
  assert.equal(defaultWorkers(0), 1);
  assert.equal(defaultWorkers(MAX_WORKERS + 64), MAX_WORKERS, 'at most as many as --workers takes');
  assert.match(usage(), /--workers N .*\n.*default: one per core, here \d+; 1: traffic in ebb's own process/);
});
