import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { QuietWatch } from './quiet-watch.ts';

/** A socket as the watch reads it: its byte counters, what libuv holds to write, its own timeout and whether it is destroyed. */
function fakeSocket(): { bytesRead: number; bytesWritten: number; _handle: { writeQueueSize: number }; timeout: number | undefined; destroyed: boolean } {
  return { bytesRead: 0, bytesWritten: 0, _handle: { writeQueueSize: 0 }, timeout: undefined, destroyed: false };
}

test('expires a socket quiet for the timeout, counted from its creation, once', () => {
  const s = fakeSocket();
  const w = new QuietWatch(1000);
  assert.equal(w.expired(s as unknown as Socket, 1999, 1000), false);
  assert.equal(w.expired(s as unknown as Socket, 2000, 1000), true);
  assert.equal(w.expired(s as unknown as Socket, 3000, 1000), false, 'not again while nothing moves');
  assert.equal(w.expired(s as unknown as Socket, 9000, 1000), false);
});

test('a read or a write restarts the quiet from the look that saw it; after a firing, so does the next byte', () => {
  const s = fakeSocket();
  const w = new QuietWatch(0);
  s.bytesRead = 10;
  assert.equal(w.expired(s as unknown as Socket, 900, 1000), false);
  assert.equal(w.expired(s as unknown as Socket, 1899, 1000), false, 'quiet counts from 900, when the read was seen');
  s.bytesWritten = 5;
  assert.equal(w.expired(s as unknown as Socket, 1899, 1000), false);
  assert.equal(w.expired(s as unknown as Socket, 2899, 1000), true);
  s.bytesWritten = 6;
  assert.equal(w.expired(s as unknown as Socket, 3000, 1000), false);
  assert.equal(w.expired(s as unknown as Socket, 4000, 1000), true, 'fires again after something moved and stopped');
});

test('the timeout in force is the one passed at each look (a listener whose idle timeout changed)', () => {
  const s = fakeSocket();
  const w = new QuietWatch(0);
  assert.equal(w.expired(s as unknown as Socket, 500, 60_000), false);
  assert.equal(w.expired(s as unknown as Socket, 500, 300), true);
});

test('a socket whose own timer runs (a closing grace) or that is destroyed is left alone', () => {
  const s = fakeSocket();
  const w = new QuietWatch(0);
  s.timeout = 1000;
  assert.equal(w.expired(s as unknown as Socket, 5000, 1000), false);
  s.timeout = 0;
  assert.equal(w.expired(s as unknown as Socket, 5000, 1000), true);
  const d = fakeSocket();
  d.destroyed = true;
  assert.equal(new QuietWatch(0).expired(d as unknown as Socket, 5000, 1000), false);
});

test('a write the kernel takes bit by bit is not quiet: what libuv holds for the socket shrinking counts', () => {
  const s = fakeSocket();
  const w = new QuietWatch(0);
  s.bytesWritten = 65_536;
  s._handle.writeQueueSize = 60_000;
  assert.equal(w.expired(s as unknown as Socket, 500, 1000), false);
  s._handle.writeQueueSize = 30_000;
  assert.equal(w.expired(s as unknown as Socket, 1400, 1000), false, 'progress at 1400');
  assert.equal(w.expired(s as unknown as Socket, 2399, 1000), false);
  assert.equal(w.expired(s as unknown as Socket, 2400, 1000), true, 'stuck since 1400');
});

test('under TLS, what the TCP socket beneath still holds shrinking counts (the TLS layer holds a write whole until it is done)', () => {
  const s = { ...fakeSocket(), _parent: { _handle: { writeQueueSize: 4_000_000 } } };
  const w = new QuietWatch(0);
  s.bytesWritten = 8_000_000;
  s._handle.writeQueueSize = 8_400_000;
  assert.equal(w.expired(s as unknown as Socket, 500, 1000), false);
  s._parent._handle.writeQueueSize = 1_500_000;
  assert.equal(w.expired(s as unknown as Socket, 1400, 1000), false, 'the TCP socket took more at 1400');
  assert.equal(w.expired(s as unknown as Socket, 2400, 1000), true, 'nothing since 1400');
});
