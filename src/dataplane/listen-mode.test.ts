import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InheritedSockets, listenOptions, workerListenMode } from './listen-mode.ts';

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

/** A handle as the tests need one: it records each close. */
class FakeHandle {
  readonly name: string;
  closes = 0;
  constructor(name: string) {
    this.name = name;
  }
  close(): void {
    this.closes++;
  }
}

test('InheritedSockets keeps every handle of an address and gives them out once each, in the order added', () => {
  const sockets = new InheritedSockets();
  const [a, b, c] = [new FakeHandle('a'), new FakeHandle('b'), new FakeHandle('c')];
  sockets.add('127.0.0.1', 8080, a);
  sockets.add('127.0.0.1', 8080, b);
  sockets.add('127.0.0.1', 8081, c);
  assert.equal(sockets.has('127.0.0.1', 8080), true);
  assert.equal(sockets.has('127.0.0.1', 9999), false);
  assert.equal(sockets.has('0.0.0.0', 8080), false, 'by the address declared, not the port alone');
  assert.equal(sockets.take('127.0.0.1', 8080), a);
  assert.equal(sockets.has('127.0.0.1', 8080), true, 'one is left');
  assert.equal(sockets.take('127.0.0.1', 8080), b);
  assert.equal(sockets.has('127.0.0.1', 8080), false);
  assert.equal(sockets.take('127.0.0.1', 8080), null);
  assert.equal(sockets.take('127.0.0.1', 9999), null);
  assert.equal(sockets.take('127.0.0.1', 8081), c);
  assert.deepEqual([a.closes, b.closes, c.closes], [0, 0, 0], 'a second handle for an address is kept, not closed in place of the first');
});

test('InheritedSockets.takeAll: every address with its handles in order, IPv6 split at the last colon; it is empty after', () => {
  const sockets = new InheritedSockets();
  const handles = ['a', 'b', 'c', 'd', 'e'].map((n) => new FakeHandle(n));
  const [a, b, c, d, e] = handles as [FakeHandle, FakeHandle, FakeHandle, FakeHandle, FakeHandle];
  sockets.add('127.0.0.1', 8080, a);
  sockets.add('::1', 8443, b);
  sockets.add('127.0.0.1', 8080, c);
  sockets.add('::', 0, d);
  sockets.add('fe80::1:2', 65535, e);
  const all = sockets.takeAll();
  assert.deepEqual(
    all.map((g) => ({ address: g.address, port: g.port, handles: g.handles.map((h) => (h as FakeHandle).name) })),
    [
      { address: '127.0.0.1', port: 8080, handles: ['a', 'c'] },
      { address: '::1', port: 8443, handles: ['b'] },
      { address: '::', port: 0, handles: ['d'] },
      { address: 'fe80::1:2', port: 65535, handles: ['e'] },
    ],
  );
  assert.equal(all[1]?.handles[0], b, 'the handles themselves, not copies');
  assert.equal(sockets.has('127.0.0.1', 8080), false);
  assert.equal(sockets.take('::1', 8443), null);
  assert.deepEqual(sockets.takeAll(), []);
  assert.deepEqual(sockets.closeUnclaimed(), [], 'what was taken is the taker\'s to close');
  assert.deepEqual(
    handles.map((h) => h.closes),
    [0, 0, 0, 0, 0],
  );
});

test('InheritedSockets.closeUnclaimed closes every handle left, once, and says their addresses; taken ones are not touched', () => {
  const sockets = new InheritedSockets();
  const [taken, left1, left2, v6] = [new FakeHandle('taken'), new FakeHandle('left1'), new FakeHandle('left2'), new FakeHandle('v6')];
  sockets.add('127.0.0.1', 8080, taken);
  sockets.add('127.0.0.1', 8080, left1);
  sockets.add('127.0.0.1', 8080, left2);
  sockets.add('::1', 80, v6);
  assert.equal(sockets.take('127.0.0.1', 8080), taken);
  assert.deepEqual(sockets.closeUnclaimed(), ['127.0.0.1:8080', '::1:80']);
  assert.deepEqual(
    [taken, left1, left2, v6].map((h) => h.closes),
    [0, 1, 1, 1],
  );
  assert.equal(sockets.has('::1', 80), false);
  assert.deepEqual(sockets.closeUnclaimed(), [], 'a second call closes nothing again');
  assert.deepEqual(
    [taken, left1, left2, v6].map((h) => h.closes),
    [0, 1, 1, 1],
  );
});
