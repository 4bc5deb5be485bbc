import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EbbError } from '../shared/errors.ts';
import { parseArgs } from './options.ts';

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
