import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HealthResponseReader, MAX_HEAD_BYTES, type ReadProgress } from './health-response.ts';

/** Feeds `raw` in pieces of `size` bytes (every split point is tried by the callers), then the close if asked. */
function read(raw: string | Buffer, size = Infinity, close = false, maxBody = 64 * 1024): ReadProgress {
  const bytes = typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw;
  const reader = new HealthResponseReader(maxBody);
  let progress: ReadProgress = { state: 'more' };
  for (let i = 0; i < bytes.length && progress.state === 'more'; i += Math.min(size, bytes.length)) {
    progress = reader.push(bytes.subarray(i, Math.min(bytes.length, i + size)));
  }
  return close ? reader.end() : progress;
}

/** The same answer read whole, a byte at a time, and split at every point in two. */
function everySplit(raw: string, close = false): ReadProgress[] {
  const out = [read(raw, Infinity, close), read(raw, 1, close)];
  for (let cut = 1; cut < raw.length; cut++) {
    const reader = new HealthResponseReader(64 * 1024);
    const first = reader.push(Buffer.from(raw.slice(0, cut), 'latin1'));
    const second = first.state === 'more' ? reader.push(Buffer.from(raw.slice(cut), 'latin1')) : first;
    out.push(close && second.state === 'more' ? reader.end() : second);
  }
  return out;
}

const done = (status: number): ReadProgress => ({ state: 'done', status });

describe('HealthResponseReader', () => {
  it('reads a Content-Length body to its end, however the bytes arrive', () => {
    for (const p of everySplit('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello')) assert.deepEqual(p, done(200));
    assert.deepEqual(read('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhell'), { state: 'more' }, 'not before the last byte');
    assert.deepEqual(read('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhell', Infinity, true), { state: 'bad', why: 'response cut short' });
  });

  it('reads a chunked body to its last chunk and trailers, however the bytes arrive', () => {
    const raw = 'HTTP/1.1 503 Down\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: 1\r\n\r\n';
    for (const p of everySplit(raw)) assert.deepEqual(p, done(503));
    assert.deepEqual(read(raw.slice(0, -2)), { state: 'more' }, 'not before the trailers end');
  });

  it('a body without a length ends with the connection; 204, 304 and Content-Length: 0 have none', () => {
    for (const p of everySplit('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nup to the close', true)) assert.deepEqual(p, done(200));
    assert.deepEqual(read('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n...', Infinity, true), done(200), 'a last coding other than chunked: to the close');
    assert.deepEqual(read('HTTP/1.1 204 No Content\r\n\r\n'), done(204));
    assert.deepEqual(read('HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n'), done(304));
    assert.deepEqual(read('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'), done(200));
  });

  it('skips informational answers and reads the final one; takes bare LF line ends', () => {
    for (const p of everySplit('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nX: y\r\n\r\nHTTP/1.1 301 Moved\r\nContent-Length: 2\r\n\r\nok')) {
      assert.deepEqual(p, done(301));
    }
    assert.deepEqual(read('HTTP/1.1 200 OK\nContent-Length: 2\n\nok'), done(200));
  });

  it('counts the body as read at the bound, without waiting for the rest', () => {
    const reader = new HealthResponseReader(10);
    assert.deepEqual(reader.push(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n0123')), { state: 'more' });
    assert.deepEqual(reader.push(Buffer.from('456789')), done(200));
  });

  it('refuses what is not HTTP/1.x or is framed ambiguously, as Node would', () => {
    const bad = (raw: string, why: RegExp, close = false): void => {
      const p = read(raw, Infinity, close);
      assert.equal(p.state, 'bad', raw);
      assert.match(p.state === 'bad' ? p.why : '', why, raw);
    };
    bad('this is not HTTP\r\n\r\n', /not an HTTP\/1\.x status line/);
    bad('HTTP/2 200\r\n\r\n', /not an HTTP\/1\.x status line/);
    bad('HTTP/1.1 20 OK\r\n\r\n', /status line/);
    bad('HTTP/1.1 200 OK\r\nno colon here\r\n\r\n', /without a valid name/);
    bad('HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n', /without a valid name/);
    bad('HTTP/1.1 200 OK\r\nBad Name: a\r\n\r\n', /without a valid name/);
    bad('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello', /bad Content-Length/);
    bad('HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', /bad Content-Length/);
    bad('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n', /both Content-Length and Transfer-Encoding/);
    bad('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', /bad chunk size/);
    bad('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n', /not followed by CRLF/);
    bad(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(MAX_HEAD_BYTES)}`, /over 16384 bytes/);
    bad(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(MAX_HEAD_BYTES)}\r\n\r\n`, /over 16384 bytes/);
    bad('HTTP/1.1 200 O', /without a complete response/, true);
  });

  it('keeps the status of an answer whose body is then cut, for the caller to judge', () => {
    const reader = new HealthResponseReader(1000);
    reader.push(Buffer.from('HTTP/1.1 503 Down\r\nContent-Length: 10\r\n\r\nab'));
    assert.equal(reader.status, 503);
    assert.deepEqual(reader.end(), { state: 'bad', why: 'response cut short' });
  });
});
