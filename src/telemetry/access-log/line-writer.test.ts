import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { FakeClock } from '../../../test/fakes/fake-clock.ts';
import { ACCESS_LOG_COUNTERS, newCounters } from './counters.ts';
import { FdDestination, RotatingFileDestination } from './file-destinations.ts';
import { LineWriter, type Destination } from './line-writer.ts';
import { S3LayoutDestination, s3LogFileName, s3LogFolder } from './s3-layout.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'ebb-access-log-'));
  dirs.push(d);
  return d;
}

/** A destination that records writes; `stall` makes every write wait until released (a slow disk). */
class MemoryDestination implements Destination {
  readonly writes: string[] = [];
  stall = false;
  #release: Array<() => void> = [];
  async write(data: string): Promise<void> {
    if (this.stall) await new Promise<void>((r) => this.#release.push(r));
    this.writes.push(data);
  }
  release(): void {
    this.stall = false;
    for (const r of this.#release.splice(0)) r();
  }
  nextDeadline(): null {
    return null;
  }
  async tick(): Promise<void> {}
  async reopen(): Promise<void> {}
  async close(): Promise<void> {}
}

const noError = (what: string, error: unknown): void => assert.fail(`${what}: ${String(error)}`);

test('lines wait at most flushMs, then go out in one batch', async () => {
  const clock = new FakeClock();
  const dest = new MemoryDestination();
  const w = new LineWriter(dest, { clock, maxBufferBytes: 1 << 20, flushMs: 200, onError: noError });
  assert.equal(w.write('one'), true);
  assert.equal(w.write('two'), true);
  clock.advance(199);
  await Promise.resolve();
  assert.deepEqual(dest.writes, []);
  clock.advance(1);
  await w.flush();
  assert.deepEqual(dest.writes, ['one\ntwo\n']);
  assert.equal(w.counters.linesWritten, 2);
});

test('the buffer is bounded: a stalled destination costs dropped lines, counted, and write never waits', async () => {
  const clock = new FakeClock();
  const dest = new MemoryDestination();
  dest.stall = true;
  const before = ACCESS_LOG_COUNTERS.linesDropped;
  const w = new LineWriter(dest, { clock, maxBufferBytes: 100, flushMs: 200, onError: noError });
  const line = 'x'.repeat(9); // 10 with its newline
  // The first batch goes to the stalled destination; then the buffer fills while it hangs.
  for (let i = 0; i < 3; i++) assert.equal(w.write(line), true);
  clock.advance(0);
  await new Promise((r) => setImmediate(r));
  let accepted = 0;
  let dropped = 0;
  for (let i = 0; i < 50; i++) {
    if (w.write(line)) accepted++;
    else dropped++;
  }
  assert.equal(accepted, 10);
  assert.equal(dropped, 40);
  assert.equal(w.queuedLines, 10);
  assert.equal(w.counters.linesDropped, 40);
  assert.equal(ACCESS_LOG_COUNTERS.linesDropped - before, 40);
  dest.release();
  clock.advance(200);
  await w.flush();
  assert.equal(dest.writes.join('').split('\n').filter((l) => l !== '').length, 13);
  assert.equal(w.counters.linesWritten, 13);
});

test('a write that fails loses its batch: counted as dropped and as a write error, and the writer goes on', async () => {
  const clock = new FakeClock();
  let fail = true;
  const errors: string[] = [];
  const written: string[] = [];
  const dest: Destination = {
    write: async (d) => {
      if (fail) throw new Error('ENOSPC');
      written.push(d);
    },
    nextDeadline: () => null,
    tick: async () => undefined,
    reopen: async () => undefined,
    close: async () => undefined,
  };
  const w = new LineWriter(dest, { clock, maxBufferBytes: 1000, onError: (what, e) => errors.push(`${what}: ${(e as Error).message}`) });
  w.write('a');
  w.write('b');
  await w.flush();
  fail = false;
  w.write('c');
  await w.flush();
  assert.deepEqual(errors, ['write: ENOSPC']);
  assert.deepEqual(written, ['c\n']);
  assert.deepEqual([w.counters.linesDropped, w.counters.writeErrors, w.counters.linesWritten], [2, 1, 1]);
});

test('size rotation: no line is lost or split, each file stays under the size, the oldest beyond keep are deleted', async () => {
  const dir = await tempDir();
  const clock = new FakeClock(Date.UTC(2026, 0, 1, 12, 0, 0));
  const counters = newCounters();
  const path = join(dir, 'access.log');
  const w = new LineWriter(new RotatingFileDestination(path, { clock, maxBytes: 100, intervalMs: 0, keep: 3, counters }), {
    clock,
    maxBufferBytes: 1 << 20,
    onError: noError,
  });
  const lines = Array.from({ length: 40 }, (_, i) => `line-${String(i).padStart(3, '0')}-${'y'.repeat(10)}`);
  for (const l of lines) {
    w.write(l);
    clock.advance(1000); // one flush per line, one second apart
    await w.flush();
  }
  await w.close();
  const files = (await readdir(dir)).sort();
  assert.equal(files.length, 4, files.join(' '));
  const rotated = files.filter((f) => f !== 'access.log');
  for (const f of rotated) assert.match(f, /^access\.log\.\d{8}T\d{6}Z$/);
  const contents = await Promise.all([...rotated, 'access.log'].map((f) => readFile(join(dir, f), 'utf8')));
  for (const c of contents) assert.ok(Buffer.byteLength(c) <= 100);
  // What the kept files hold is the tail of what was written, whole and in order.
  const kept = contents.join('').split('\n').filter((l) => l !== '');
  assert.deepEqual(kept, lines.slice(lines.length - kept.length));
  assert.equal(counters.filesRotated, 7); // 40 lines of 20 bytes, 5 to a file
});

test('time rotation on the hour with a fake clock, even when no line comes after the hour', async () => {
  const dir = await tempDir();
  const clock = new FakeClock(Date.UTC(2026, 0, 1, 12, 59, 0));
  const path = join(dir, 'access.log');
  const w = new LineWriter(new RotatingFileDestination(path, { clock, maxBytes: 0, intervalMs: 3_600_000, keep: 0, counters: newCounters() }), {
    clock,
    maxBufferBytes: 1 << 20,
    onError: noError,
  });
  w.write('before the hour');
  clock.advance(200);
  await w.flush();
  clock.advance(60_000); // 13:00:00.200: the deadline timer fires, the file rotates
  await w.flush();
  assert.deepEqual((await readdir(dir)).sort(), ['access.log', 'access.log.20260101T130000Z']);
  assert.equal(await readFile(join(dir, 'access.log.20260101T130000Z'), 'utf8'), 'before the hour\n');
  w.write('after the hour');
  clock.advance(200);
  await w.close();
  assert.equal(await readFile(path, 'utf8'), 'after the hour\n');
});

test('reopen (SIGUSR1) after logrotate moved the file: earlier lines in the moved file, later ones in a new file', async () => {
  const dir = await tempDir();
  const clock = new FakeClock();
  const path = join(dir, 'access.log');
  const w = new LineWriter(new RotatingFileDestination(path, { clock, maxBytes: 0, intervalMs: 0, keep: 0, counters: newCounters() }), {
    clock,
    maxBufferBytes: 1 << 20,
    onError: noError,
  });
  w.write('first');
  await w.flush();
  await rename(path, `${path}.1`); // logrotate
  w.write('still to the open file');
  await w.reopen();
  w.write('after reopen');
  await w.close();
  assert.equal(await readFile(`${path}.1`, 'utf8'), 'first\nstill to the open file\n');
  assert.equal(await readFile(path, 'utf8'), 'after reopen\n');
});

test('S3 layout: ALB folders and names; the open interval is .log, replaced by .log.gz when it ends', async () => {
  const bucket = await tempDir();
  const clock = new FakeClock(Date.UTC(2026, 1, 28, 23, 57, 30));
  const counters = newCounters();
  const o = {
    clock,
    bucketDir: bucket,
    prefix: 'team/prod',
    accountId: '123456789012',
    region: 'eu-west-1',
    elb: 'app/web/89abcdef01234567',
    classic: false,
    intervalMinutes: 5,
    nodeAddress: '10.0.0.5',
    counters,
    random: () => 'abcd1234',
  };
  const dest = new S3LayoutDestination(o);
  const w = new LineWriter(dest, { clock, maxBufferBytes: 1 << 20, onError: noError });
  // The interval 23:55-00:00 ends on March 1st: its file is delivered into that day's folder.
  const end = Date.UTC(2026, 2, 1, 0, 0, 0);
  const folder = join(bucket, 'team/prod/AWSLogs/123456789012/elasticloadbalancing/eu-west-1/2026/03/01');
  assert.equal(s3LogFolder(o, end), folder);
  const name = '123456789012_elasticloadbalancing_eu-west-1_app.web.89abcdef01234567_20260301T0000Z_10.0.0.5_abcd1234.log';
  assert.equal(s3LogFileName(o, end, 'abcd1234'), name);

  w.write('line 1');
  w.write('line 2');
  clock.advance(200);
  await w.flush();
  assert.deepEqual(await readdir(folder), [name]);
  assert.equal(await readFile(join(folder, name), 'utf8'), 'line 1\nline 2\n');

  w.write('line 3');
  clock.advance(200);
  await w.flush();
  clock.advance(2 * 60_000 + 29_800); // 00:00:00.200: the interval has ended
  await w.flush();
  assert.deepEqual(await readdir(folder), [`${name}.gz`]);
  assert.equal(gunzipSync(await readFile(join(folder, `${name}.gz`))).toString('utf8'), 'line 1\nline 2\nline 3\n');
  assert.equal(counters.filesRotated, 1);

  // The next line opens the next interval's file (ending 00:05).
  w.write('line 4');
  clock.advance(200);
  await w.flush();
  assert.equal(dest.openFile, join(folder, name.replace('20260301T0000Z', '20260301T0005Z')));
  await w.close(); // shutdown finishes the open interval too
  assert.deepEqual((await readdir(folder)).sort(), [`${name}.gz`, `${name.replace('20260301T0000Z', '20260301T0005Z')}.gz`]);
});

test('S3 layout, Classic: uncompressed .log files named by the load balancer, every EmitInterval', async () => {
  const bucket = await tempDir();
  const clock = new FakeClock(Date.UTC(2026, 0, 1, 10, 20, 0));
  const w = new LineWriter(
    new S3LayoutDestination({
      clock,
      bucketDir: bucket,
      prefix: '',
      accountId: '123456789012',
      region: 'us-east-1',
      elb: 'my-classic',
      classic: true,
      intervalMinutes: 60,
      nodeAddress: '10.0.0.5',
      counters: newCounters(),
      random: () => 'r4nd0m00',
    }),
    { clock, maxBufferBytes: 1 << 20, onError: noError },
  );
  w.write('classic line');
  clock.advance(200);
  await w.flush();
  clock.advance(40 * 60_000); // 11:00:00.200: the hour's interval has ended
  await w.flush();
  const folder = join(bucket, 'AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/01/01');
  assert.deepEqual(await readdir(folder), ['123456789012_elasticloadbalancing_us-east-1_my-classic_20260101T1100Z_10.0.0.5_r4nd0m00.log']);
  await w.close();
});

test('S3 layout: a .log an earlier run left open is compressed at the first write, a half-written .gz.tmp removed', async () => {
  const bucket = await tempDir();
  const clock = new FakeClock(Date.UTC(2026, 0, 1, 10, 2, 0));
  const o = {
    clock,
    bucketDir: bucket,
    prefix: '',
    accountId: '123456789012',
    region: 'us-east-1',
    elb: 'app/web/0123',
    classic: false,
    intervalMinutes: 5,
    nodeAddress: '10.0.0.5',
    counters: newCounters(),
    random: () => 'newrun00',
  };
  const folder = s3LogFolder(o, Date.UTC(2026, 0, 1, 10, 0, 0));
  const { mkdir } = await import('node:fs/promises');
  await mkdir(folder, { recursive: true });
  const left = s3LogFileName(o, Date.UTC(2026, 0, 1, 10, 0, 0), 'oldrun00');
  await writeFile(join(folder, left), 'from the last run\n');
  await writeFile(join(folder, `${s3LogFileName(o, Date.UTC(2026, 0, 1, 9, 55, 0), 'oldrun01')}.gz.tmp`), 'half');
  await writeFile(join(folder, 'someone-elses.log'), 'not ours\n');
  const w = new LineWriter(new S3LayoutDestination(o), { clock, maxBufferBytes: 1 << 20, onError: noError });
  w.write('new run');
  await w.flush();
  const names = (await readdir(folder)).sort();
  assert.deepEqual(names, [`${left}.gz`, s3LogFileName(o, Date.UTC(2026, 0, 1, 10, 5, 0), 'newrun00'), 'someone-elses.log'].sort());
  assert.equal(gunzipSync(await readFile(join(folder, `${left}.gz`))).toString(), 'from the last run\n');
  await w.close();
});

test('stdout-style destination: lines written to a file descriptor from the thread pool, whole and in order', async () => {
  const dir = await tempDir();
  const path = join(dir, 'fd.log');
  const { open } = await import('node:fs/promises');
  const handle = await open(path, 'w');
  try {
    const clock = new FakeClock();
    const w = new LineWriter(new FdDestination(handle.fd), { clock, maxBufferBytes: 1 << 20, onError: noError });
    const lines = Array.from({ length: 1000 }, (_, i) => `line ${i} ${'z'.repeat(i % 50)}`);
    for (const l of lines) w.write(l);
    await w.close();
    assert.deepEqual((await readFile(path, 'utf8')).split('\n').slice(0, -1), lines);
  } finally {
    await handle.close();
  }
});
