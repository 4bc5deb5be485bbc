import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'node:test';
import { FakeClock } from '../../../test/fakes/fake-clock.ts';
import { EbbError } from '../../shared/errors.ts';
import { EventStream } from './event-stream.ts';

/** A response whose client reads nothing while `reading` is false: what is written stays buffered. */
class FakeResponse extends EventEmitter {
  readonly chunks: string[] = [];
  status = 0;
  headers: Record<string, string> = {};
  writableLength = 0;
  reading = false;
  ended = false;
  destroyed = false;
  readonly socket = Object.assign(new EventEmitter(), { destroy: () => (this.destroyed = true) });

  writeHead(status: number, headers: Record<string, string>): this {
    this.status = status;
    this.headers = headers;
    return this;
  }
  write(text: string): boolean {
    this.chunks.push(text);
    if (!this.reading) this.writableLength += Buffer.byteLength(text);
    return true;
  }
  end(text: string): this {
    this.chunks.push(text);
    this.ended = true;
    return this;
  }
  /** Events written, by name. */
  events(): string[] {
    return this.chunks.flatMap((c) => [...c.matchAll(/^event: (.+)$/gm)].map((m) => m[1] ?? ''));
  }
}

const req = { socket: { setNoDelay: () => undefined } } as unknown as IncomingMessage;

function client(stream: EventStream): FakeResponse {
  const res = new FakeResponse();
  stream.accept(req, res as unknown as ServerResponse, 'rid');
  return res;
}

test('a client gets the stream headers, stream:ready, every event, and heartbeats', () => {
  const clock = new FakeClock();
  const stream = new EventStream({ clock, heartbeatMs: 1000 });
  const res = client(stream);
  res.reading = true;
  assert.equal(res.status, 200);
  assert.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
  stream.publish('drain:start', { target: 'a\nb' });
  assert.deepEqual(res.events(), ['stream:ready', 'drain:start']);
  const frame = res.chunks[1] ?? '';
  assert.match(frame, /^id: \d+\nevent: drain:start\ndata: \{"type":"drain:start","target":"a\\nb"\}\n\n$/, 'one data line, line breaks escaped');
  clock.advance(2500);
  assert.equal(res.chunks.filter((c) => c.startsWith(': heartbeat')).length, 2);
});

test('a client that does not read is sent stream:dropped and let go once its buffer is full; the others keep theirs', () => {
  const clock = new FakeClock();
  const stream = new EventStream({ clock, maxBufferedBytes: 1000 });
  const slow = client(stream);
  const fast = client(stream);
  fast.reading = true;
  let listening = true;
  stream.onListening = (l) => (listening = l);
  for (let i = 0; i < 20; i++) stream.publish('drain:progress', { padding: 'x'.repeat(100), i });
  assert.equal(slow.ended, true);
  assert.equal(slow.events().at(-1), 'stream:dropped');
  assert.match(slow.chunks.at(-1) ?? '', /more than 1000 bytes of events unread; reconnect/);
  assert.ok(slow.events().length < 12, 'dropped after about 1000 bytes');
  assert.equal(fast.events().filter((e) => e === 'drain:progress').length, 20);
  assert.equal(stream.clients, 1);
  assert.equal(listening, true);
  // Its connection is cut if it does not take the last event.
  clock.advance(2000);
  assert.equal(slow.destroyed, true);
  fast.emit('close');
  assert.equal(stream.clients, 0);
  assert.equal(listening, false);
});

test('close ends every stream with stream:closing; clients are bounded', () => {
  const clock = new FakeClock();
  const stream = new EventStream({ clock, maxClients: 2 });
  const a = client(stream);
  client(stream);
  assert.throws(() => client(stream), (e: unknown) => EbbError.is(e) && e.code === 'ServiceUnavailable');
  stream.close();
  assert.equal(a.events().at(-1), 'stream:closing');
  assert.equal(stream.clients, 0);
  assert.throws(() => client(stream), (e: unknown) => EbbError.is(e) && e.code === 'ServiceUnavailable');
});
