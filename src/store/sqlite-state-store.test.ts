import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, fdatasync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { prng } from '../../test/support/random.ts';
import { sleep } from '../../test/support/timing.ts';
import type { StoreKind, StoreOp } from '../domain/store-port.ts';
import { EbbError } from '../shared/errors.ts';
import { currentVersion } from './migrations.ts';
import { openStateStore } from './open-state-store.ts';
import { openSqlite, sqliteDriverName } from './sqlite-driver.ts';
import { DB_FILE, PID_FILE, SCHEMA_VERSION, SqliteStateStore } from './sqlite-state-store.ts';
import type { SyncFile } from './wal-sync.ts';
import { stateStoreContract } from './state-store-contract.ts';

const root = mkdtempSync(join(tmpdir(), 'ebb-store-test-'));
let dirs = 0;
const freshDir = (): string => join(root, `s${++dirs}`);
const children = new Set<ChildProcess>();
after(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

const fixture = fileURLToPath(new URL('./crash-writer.fixture.ts', import.meta.url));

const isUnavailable = (pattern: RegExp) => (error: unknown) => {
  assert.ok(EbbError.is(error), `expected an EbbError, got ${String(error)}`);
  assert.equal(error.code, 'StoreUnavailable');
  assert.match(error.message, pattern);
  return true;
};

/** Starts the writer fixture; `lines` collects what it printed, `exited` settles when it is gone. */
function startWriter(dir: string, start: number, count: number | 'hold', writers = 1) {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, dir, String(start), String(count), String(writers)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  const waiters: { matches: (line: string) => boolean; resolve: () => void }[] = [];
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      for (const w of waiters.filter((x) => x.matches(line))) w.resolve();
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    if (stderr.length < 10_000) stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    // 'close' comes after stdout has been read to its end, so `lines` is then complete.
    child.on('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  const waitForMatch = (matches: (line: string) => boolean): Promise<void> =>
    lines.some(matches) ? Promise.resolve() : new Promise((resolve) => waiters.push({ matches, resolve }));
  const waitFor = (line: string): Promise<void> => waitForMatch((l) => l === line);
  /** Until the writer has acknowledged its first commit (it is writing). */
  const firstAck = (): Promise<void> => waitForMatch((l) => l.startsWith('ack '));
  return { child, lines, exited, waitFor, firstAck, stderr: () => stderr };
}

stateStoreContract(`SqliteStateStore (${sqliteDriverName()})`, () => SqliteStateStore.open(freshDir()));
if (sqliteDriverName() !== 'node:sqlite' && process.getBuiltinModule?.('node:sqlite') !== undefined) {
  // Node 22: node:sqlite exists but is not the default; it must keep the same contract.
  stateStoreContract('SqliteStateStore (node:sqlite)', () => SqliteStateStore.open(freshDir(), { driver: 'node:sqlite' }));
}

describe('SqliteStateStore', () => {
  test('creates the directory, and a reopen after close sees every committed change', async () => {
    const dir = join(freshDir(), 'nested', 'state');
    const store = await openStateStore(dir);
    assert.ok(existsSync(join(dir, DB_FILE)));
    const ops = Array.from({ length: 50 }, (_, i) => ({ op: 'put' as const, kind: 'target' as const, key: `t${i}`, value: { i } }));
    await store.commit(ops.slice(0, 25));
    await store.commit(ops.slice(25));
    await store.commit([{ op: 'delete', kind: 'target', key: 't0' }, { op: 'put', kind: 'meta', key: 'version', value: { s: 'x' } }]);
    await store.close();
    assert.equal(existsSync(join(dir, PID_FILE)), false, 'close removes the pid file');

    const again = await openStateStore(dir);
    const state = await again.load();
    assert.equal(state.get('target')?.size, 49);
    assert.deepEqual(state.get('target')?.get('t49'), { i: 49 });
    assert.equal(state.get('target')?.has('t0'), false);
    assert.deepEqual(state.get('meta')?.get('version'), { s: 'x' });
    await again.close();
  });

  test('picks node:sqlite on Node 24 and later, better-sqlite3 before (it aborts the process on Node 24.19+)', async () => {
    const major = Number(process.versions.node.split('.')[0]);
    const expected = major >= 24 ? 'node:sqlite' : 'better-sqlite3';
    assert.equal(sqliteDriverName({}), expected);
    assert.equal(sqliteDriverName({ EBB_SQLITE_DRIVER: 'better-sqlite3' }), 'better-sqlite3');
    assert.throws(() => sqliteDriverName({ EBB_SQLITE_DRIVER: 'postgres' }), /EBB_SQLITE_DRIVER must be/);
    const store = await SqliteStateStore.open(freshDir());
    if (process.env['EBB_SQLITE_DRIVER'] === undefined) assert.equal(store.driver, expected);
    await store.close();
  });

  test('uses WAL and records its layout version', async () => {
    const dir = freshDir();
    const store = await SqliteStateStore.open(dir);
    await store.commit([{ op: 'put', kind: 'meta', key: 'k', value: { n: 1 } }]);
    assert.ok(existsSync(join(dir, `${DB_FILE}-wal`)), 'a WAL file exists while open');
    await store.close();
    const db = openSqlite(join(dir, DB_FILE));
    try {
      assert.equal(db.value('PRAGMA journal_mode'), 'wal');
      assert.equal(db.value('PRAGMA user_version'), SCHEMA_VERSION);
    } finally {
      db.close();
    }
  });

  test('a second open of the same dir in this process is refused while the first is open', async () => {
    const dir = freshDir();
    const first = await SqliteStateStore.open(dir);
    await first.commit([{ op: 'put', kind: 'meta', key: 'k', value: { n: 1 } }]);
    await assert.rejects(SqliteStateStore.open(dir, { lockTimeoutMs: 50 }), isUnavailable(/in use by another ebb \(pid \d+\).*another --state-dir/));
    // The refused open did not disturb the holder.
    await first.commit([{ op: 'put', kind: 'meta', key: 'k2', value: { n: 2 } }]);
    await first.close();
    const second = await SqliteStateStore.open(dir);
    assert.equal((await second.load()).get('meta')?.size, 2);
    await second.close();
  });

  test('another process holding the dir is named; once it is SIGKILLed the dir opens at once', async () => {
    const dir = freshDir();
    const holder = startWriter(dir, 0, 'hold');
    await holder.waitFor('ready');
    await assert.rejects(
      SqliteStateStore.open(dir, { lockTimeoutMs: 50 }),
      isUnavailable(new RegExp(`in use by another ebb \\(pid ${String(holder.child.pid)}\\)`)),
    );
    holder.child.kill('SIGKILL');
    assert.equal((await holder.exited).signal, 'SIGKILL');
    const store = await SqliteStateStore.open(dir, { lockTimeoutMs: 50 });
    await store.load();
    await store.close();
  });

  test('a stale pid file from a killed process does not block or confuse an open', async () => {
    const dir = freshDir();
    await (await SqliteStateStore.open(dir)).close();
    writeFileSync(join(dir, PID_FILE), '999999999\n');
    const store = await SqliteStateStore.open(dir);
    assert.equal(readFileSync(join(dir, PID_FILE), 'utf8').trim(), String(process.pid));
    await store.close();
  });

  test('a state written by a newer layout is refused, and left untouched', async () => {
    const dir = freshDir();
    await (await SqliteStateStore.open(dir)).close();
    const db = openSqlite(join(dir, DB_FILE));
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    await assert.rejects(SqliteStateStore.open(dir), isUnavailable(/newer ebb/));
    const check = openSqlite(join(dir, DB_FILE));
    assert.equal(check.value('PRAGMA user_version'), SCHEMA_VERSION + 1);
    check.close();
  });

  /**
   * A state directory as the release before record versions left it, built with SQL: the same table
   * and layout version, records as JSON objects without `v` (targets with `v: 1`, as they had it then).
   */
  function previousReleaseDir(rows: ReadonlyArray<readonly [string, string, unknown]>): string {
    const dir = freshDir();
    mkdirSync(dir, { recursive: true });
    const db = openSqlite(join(dir, DB_FILE));
    try {
      db.exec('PRAGMA journal_mode = WAL');
      db.exec(
        'CREATE TABLE records (kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL CHECK (json_valid(value)), PRIMARY KEY (kind, key)) WITHOUT ROWID',
      );
      db.exec('PRAGMA user_version = 1');
      const insert = db.prepare('INSERT INTO records (kind, key, value) VALUES (?, ?, ?)');
      for (const [kind, key, value] of rows) insert.run(kind, key, JSON.stringify(value));
    } finally {
      db.close();
    }
    return dir;
  }

  /** kind, key and the parsed value of every row, read with SQL after the store closed. */
  function rawRows(dir: string): Array<[string, string, Record<string, unknown>]> {
    const db = openSqlite(join(dir, DB_FILE));
    try {
      return (db.prepare('SELECT kind, key, value FROM records ORDER BY kind, key').all() as { kind: string; key: string; value: string }[]).map((r) => [
        r.kind,
        r.key,
        JSON.parse(r.value) as Record<string, unknown>,
      ]);
    } finally {
      db.close();
    }
  }

  const lbArn = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/0123456789abcdef';
  const tgArn = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef';
  const previousRelease: ReadonlyArray<readonly [string, string, Record<string, unknown>]> = [
    ['loadBalancer', lbArn, { arn: lbArn, name: 'web', type: 'application', scheme: 'internet-facing', createdAt: 1, attributes: {}, tags: [], source: 'config' }],
    ['listener', `${lbArn}/l1`, { arn: `${lbArn}/l1`, loadBalancerArn: lbArn, protocol: 'HTTP', port: 8080, address: '0.0.0.0', defaultActions: [{ type: 'forward', targetGroupArn: tgArn }], tags: [], source: 'config' }],
    ['targetGroup', tgArn, { arn: tgArn, name: 'web', protocol: 'HTTP', port: 80, targetType: 'ip', healthCheck: { path: '/' }, attributes: {}, tags: [], createdAt: 1, source: 'config' }],
    ['target', `${tgArn}|10.0.0.1|80`, { v: 1, reg: { targetGroupArn: tgArn, id: '10.0.0.1', port: 80, source: 'config' } }],
    ['instance', 'i-0123456789abcdef0', { id: 'i-0123456789abcdef0', address: '10.0.0.2' }],
    ['drainRecord', 'd1', { id: 'd1', targetGroupArn: tgArn, targetGroupName: 'web', targetId: '10.0.0.3', port: 80, startedAt: 1, endedAt: 2, timeoutSeconds: 300, outcome: 'idle', requestsCompleted: 0, requestsCut: 0, tunnelsClosed: 0, connectionsClosed: 0 }],
    ['meta', 'm', { note: 'kept' }],
  ];

  test("a state directory of the previous release opens with every record readable and upgraded to its kind's current format", async () => {
    const dir = previousReleaseDir([...previousRelease, ['futureKind', 'x', { left: 'alone' }]]);
    const store = await SqliteStateStore.open(dir);
    const state = await store.load();
    for (const [kind, key, value] of previousRelease) {
      const { v: _v, ...fields } = value;
      assert.deepEqual(state.get(kind as StoreKind)?.get(key), fields, `${kind} ${key} reads as it was written, without v`);
    }
    await store.close();

    const rows = rawRows(dir);
    for (const [kind, key, value] of rows) {
      if (kind === 'futureKind') assert.deepEqual(value, { left: 'alone' }, 'a kind this ebb does not know is not touched');
      else assert.equal(value['v'], currentVersion(kind as StoreKind), `${kind} ${key} is stored in the current format`);
    }
    assert.equal(rows.length, previousRelease.length + 1);
    // Opening again finds nothing to upgrade and reads the same.
    const again = await SqliteStateStore.open(dir);
    assert.deepEqual(await again.load(), state);
    await again.close();
  });

  test('a record of a newer format is refused at open, naming it, and no record is upgraded', async () => {
    const newer = currentVersion('targetGroup') + 1;
    const dir = previousReleaseDir([...previousRelease, ['targetGroup', 'from-the-future', { v: newer, name: 'x' }]]);
    await assert.rejects(SqliteStateStore.open(dir), isUnavailable(new RegExp(`targetGroup record "from-the-future" was written by a newer ebb \\(format ${newer}.*another --state-dir`)));
    for (const [kind, key, value] of rawRows(dir)) {
      const before = previousRelease.find(([k, ky]) => k === kind && ky === key)?.[2];
      assert.deepEqual(value, before ?? { v: newer, name: 'x' }, `${kind} ${key} is as it was`);
    }
  });

  test('a file that is not a database is refused with a message naming it', async () => {
    const dir = freshDir();
    await (await SqliteStateStore.open(dir)).close();
    writeFileSync(join(dir, DB_FILE), 'this is not sqlite, just some text that is long enough '.repeat(100));
    await assert.rejects(SqliteStateStore.open(dir), isUnavailable(new RegExp(`${DB_FILE}.*(not a database|malformed)`)));
  });

  test('a state dir that cannot be created is refused with a message naming it', async (t) => {
    // A path under a regular file cannot be created, even by root.
    const file = `${freshDir()}-file`;
    writeFileSync(file, 'x');
    chmodSync(file, 0o600);
    t.after(() => rmSync(file, { force: true }));
    await assert.rejects(SqliteStateStore.open(join(file, 'state')), isUnavailable(/Cannot create the state directory .*--state-dir/));
  });

  test('crash safety: SIGKILL at random moments never loses an acknowledged commit or half a commit, one writer or several', { timeout: 60_000 }, async (t) => {
    const dir = freshDir();
    const rounds = 32;
    // Odd rounds: 8 writers at once, whose commits share syncs (group commit).
    const writersOf = (round: number): number => (round % 2 === 1 ? 8 : 1);
    const firstSeed = (Number(process.env['EBB_CRASH_SEED']) || Math.floor(Math.random() * 2 ** 31)) >>> 0;
    // Reproducible from the seed printed on failure.
    const random = prng(firstSeed);
    const acked = new Set<number>();
    let killedMidWrite = 0;
    for (let round = 0; round < rounds; round++) {
      const context = `round ${round}, seed ${firstSeed} (rerun with EBB_CRASH_SEED=${firstSeed})`;
      const writer = startWriter(dir, round * 1_000_000, 1_000_000, writersOf(round));
      const when = random();
      if (when < 0.15) {
        // anywhere from start-up through open to the first commits
        await sleep(random() * 300);
      } else if (when < 0.3) {
        // from the open on: the first commits of a fresh process
        await Promise.race([writer.waitFor('ready'), writer.exited]);
        await sleep(random() * 40);
      } else {
        // among the commits, from the first acknowledged one on: a writer slow to get going on a busy
        // machine is still killed while it writes, not before (most rounds must be)
        await Promise.race([writer.firstAck(), writer.exited]);
        await sleep(random() * 40);
      }
      writer.child.kill('SIGKILL');
      const { signal, code } = await writer.exited;
      assert.equal(signal, 'SIGKILL', `${context}: the writer ended by itself (code ${String(code)}): ${writer.stderr()}`);
      let roundAcks = 0;
      for (const line of writer.lines) {
        const match = /^ack (\d+)$/.exec(line);
        if (match?.[1] !== undefined) {
          acked.add(Number(match[1]));
          roundAcks++;
        }
      }
      if (roundAcks > 0) killedMidWrite++;

      const store = await SqliteStateStore.open(dir, { lockTimeoutMs: 2000 });
      const targets = (await store.load()).get('target') ?? new Map<string, unknown>();
      await store.close();
      for (const n of acked) {
        assert.ok(targets.has(`a-${n}`) && targets.has(`b-${n}`), `${context}: acknowledged commit ${n} is missing`);
      }
      for (const key of targets.keys()) {
        const n = Number(key.slice(2));
        // Every commit is whole: a-n and b-n together, c-n until the next-but-one commit of its writer deleted it.
        const later = n + 2 * writersOf(Math.floor(n / 1_000_000));
        assert.equal(targets.has(`b-${n}`), targets.has(`a-${n}`), `${context}: commit ${n} is half there (${key})`);
        if (key.startsWith('a-')) {
          assert.equal(targets.has(`c-${n}`), !targets.has(`a-${later}`), `${context}: commit ${n} or ${later} is half there`);
        }
      }
    }
    t.diagnostic(`${rounds} rounds, ${killedMidWrite} killed mid-write, ${acked.size} acknowledged commits all present, seed ${firstSeed}`);
    assert.ok(acked.size > 0, 'the writers acknowledged some commits');
    assert.ok(killedMidWrite >= rounds / 2, `most rounds were killed while writing (${killedMidWrite} of ${rounds})`);
  });
});

describe('SqliteStateStore group commit', () => {
  /** A sync that waits until the test releases it, or fails it. */
  function heldSyncs() {
    const held: Array<(error: NodeJS.ErrnoException | null) => void> = [];
    const syncFile: SyncFile = (fd, done) => held.push((error) => fdatasync(fd, (e) => done(error ?? e)));
    return { syncFile, held, release: (error: NodeJS.ErrnoException | null = null) => held.shift()?.(error) };
  }
  const put = (key: string): StoreOp => ({ op: 'put', kind: 'target', key, value: { key } });
  const pending = (p: Promise<unknown>): Promise<boolean> => Promise.race([p.then(() => false, () => false), sleep(20).then(() => true)]);

  test('writes made while a sync runs share the next one; each flush resolves once its own writes are synced', async () => {
    const syncs = heldSyncs();
    const store = await SqliteStateStore.open(freshDir(), { syncFile: syncs.syncFile });
    try {
      await store.flush(); // nothing written: nothing to sync
      assert.equal(store.syncs, 0);
      store.write([put('a')]);
      const first = store.flush();
      store.write([put('b')]);
      store.write([put('c')]);
      const second = store.flush();
      const third = store.flush();
      assert.equal(store.syncs, 1, 'one sync at a time');
      assert.ok(await pending(first), 'not durable before its sync ends');
      syncs.release();
      await first;
      assert.equal(store.syncs, 2, 'the writes made meanwhile share the next sync');
      assert.ok(await pending(second));
      syncs.release();
      await Promise.all([second, third]);
      assert.equal(store.syncs, 2);
      await store.flush();
      assert.equal(store.syncs, 2, 'nothing new: no sync');
      assert.deepEqual([...((await store.load()).get('target')?.keys() ?? [])].sort(), ['a', 'b', 'c']);
    } finally {
      syncs.release();
      await store.close();
    }
  });

  test('commits of many callers at once are all durable when answered, in fewer syncs than commits', async () => {
    const dir = freshDir();
    const store = await SqliteStateStore.open(dir);
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.commit([put(`k${i}`)])));
    assert.ok(store.syncs < 50, `${store.syncs} syncs for 50 commits`);
    await store.close();
    const again = await SqliteStateStore.open(dir);
    assert.equal((await again.load()).get('target')?.size, 50);
    await again.close();
  });

  test('a write that cannot be made writes nothing and leaves the writes around it', async () => {
    const store = await SqliteStateStore.open(freshDir());
    try {
      store.write([put('before')]);
      assert.throws(() => store.write([put('half'), { op: 'put', kind: 'target', key: 'bad', value: { n: 1n } }]), EbbError);
      store.write([put('after')]);
      await store.flush();
      assert.deepEqual([...((await store.load()).get('target')?.keys() ?? [])].sort(), ['after', 'before']);
    } finally {
      await store.close();
    }
  });

  test('a failed sync fails every flush waiting on it, and the store refuses every later change', async () => {
    const syncs = heldSyncs();
    const store = await SqliteStateStore.open(freshDir(), { syncFile: syncs.syncFile });
    try {
      store.write([put('a')]);
      const first = store.flush();
      store.write([put('b')]);
      const second = store.flush();
      syncs.release(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
      await assert.rejects(first, isUnavailable(/could not be made durable \(EIO.*restart ebb/));
      await assert.rejects(second, isUnavailable(/could not be made durable/), 'the writes that waited for the next sync are not acknowledged either');
      assert.equal(store.syncs, 1, 'no sync after a failed one');
      assert.throws(() => store.write([put('c')]), isUnavailable(/could not be made durable/));
      await assert.rejects(store.commit([put('d')]), isUnavailable(/could not be made durable/));
      await assert.rejects(store.flush(), isUnavailable(/could not be made durable/));
    } finally {
      await store.close();
    }
  });

  test('close waits for a sync still running', async () => {
    const syncs = heldSyncs();
    const store = await SqliteStateStore.open(freshDir(), { syncFile: syncs.syncFile });
    store.write([put('a')]);
    const flushed = store.flush();
    const closed = store.close();
    assert.ok(await pending(closed), 'close waits');
    syncs.release();
    await flushed;
    await closed;
    await assert.rejects(store.flush(), isUnavailable(/closed/));
  });
});

