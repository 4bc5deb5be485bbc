import assert from 'node:assert/strict';
import { test } from 'node:test';
import { listenOptions, workerListenMode } from './listen-mode.ts';

test('workers use a socket each (reuseport) where Node has it on Linux, else the one the primary shares', () => {
  assert.equal(workerListenMode('20.19.0', 'linux'), 'shared');
  assert.equal(workerListenMode('22.11.0', 'linux'), 'shared');
  assert.equal(workerListenMode('22.12.0', 'linux'), 'reuseport');
  assert.equal(workerListenMode('23.0.0', 'linux'), 'shared');
  assert.equal(workerListenMode('23.1.0', 'linux'), 'reuseport');
  assert.equal(workerListenMode('24.2.0', 'linux'), 'reuseport');
  assert.equal(workerListenMode('24.2.0', 'darwin'), 'shared', 'macOS has SO_REUSEPORT but does not spread connections with it');
});

test('listen options by mode; port 0 cannot be bound apart by each worker, so it is shared', () => {
  assert.deepEqual(listenOptions('exclusive', '127.0.0.1', 80), { host: '127.0.0.1', port: 80, exclusive: true });
  assert.deepEqual(listenOptions('shared', '127.0.0.1', 80), { host: '127.0.0.1', port: 80, exclusive: false });
  assert.deepEqual(listenOptions('reuseport', '::', 80), { host: '::', port: 80, exclusive: true, reusePort: true });
  assert.deepEqual(listenOptions('reuseport', '::', 0), { host: '::', port: 0, exclusive: false });
});
