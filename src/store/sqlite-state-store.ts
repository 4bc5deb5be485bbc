import { fdatasync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { GroupCommitStore, StoreKind, StoreOp } from '../domain/store-port.ts';
import { EbbError } from '../shared/errors.ts';
import { currentVersion, upgradeRecord } from './migrations.ts';
import { closedError, decodeRecord, emptyState, encodeOp, isStoreKind, STORE_KINDS } from './records.ts';
import { isSqliteBusy, openSqlite, sqliteDriverName, type SqliteConnection, type SqliteDriverName, type SqliteStatement } from './sqlite-driver.ts';
import { WalSync, type SyncFile } from './wal-sync.ts';

/** The layout this code writes; kept in SQLite's `user_version` header field. */
export const SCHEMA_VERSION = 1;
export const DB_FILE = 'ebb.db';
/** Names the process holding the state dir, for the message a second ebb gets. Informational only. */
export const PID_FILE = 'ebb.pid';

export interface SqliteStateStoreOptions {
  /**
   * How long to wait for the state dir while another process holds it (a restart can overlap the
   * old process's last moments) before refusing. Default 1000 ms.
   */
  readonly lockTimeoutMs?: number;
  /** The SQLite binding; by default the one sqlite-driver.ts picks for this Node version. */
  readonly driver?: SqliteDriverName;
  /** How the WAL file is synced: `fs.fdatasync`, unless a test replaces it (to hold a sync, or fail one). */
  readonly syncFile?: SyncFile;
}


/**
 * The embedded store: one SQLite file `<dir>/ebb.db` in WAL mode. A commit is on disk when its
 * promise resolves and survives a crash of the process or the machine.
 *
 * One table holds every record as JSON under (kind, key). Each commit is one transaction.
 *
 * Group commit (`write` + `flush`, see GroupCommitStore): SQLite runs with `synchronous=NORMAL`, so a
 * transaction's COMMIT appends its frames to the WAL file without waiting for the disk (a crash of
 * the process loses nothing: the frames are in the kernel's page cache). Durability against a crash
 * of the machine is this store's own `fdatasync` of the WAL file, run off the event loop in libuv's
 * thread pool: one at a time, and one for everyone who wrote while the previous one ran. The WAL is
 * written in order and its frames are checksummed in a chain, so after a crash SQLite recovers a
 * prefix of the commits; a flush that covers a commit covers every commit before it. This is the
 * sync SQLite makes at each COMMIT with `synchronous=FULL`, made once for many commits. With
 * `locking_mode=EXCLUSIVE` the WAL file exists from the open until the close and is never replaced
 * (a checkpoint rewinds it in place, and syncs it and the database first), so one descriptor serves.
 * Its directory entry is synced once at open.
 *
 * Exclusion: the database is opened with `locking_mode=EXCLUSIVE` and the lock is taken at open. It is
 * an OS file lock, so the kernel drops it when the holder dies, even by SIGKILL: a second ebb on the
 * same dir is refused while the first lives, and a restart after a crash opens at once.
 *
 * The SQLite bindings (sqlite-driver.ts) are synchronous: a commit blocks the event loop for the time
 * of one fsync. The methods still return promises, as the StateStore interface does, so a networked store fits behind it.
 */
export class SqliteStateStore implements GroupCommitStore {
  readonly #dir: string;
  readonly #db: SqliteConnection;
  // Prepared once and kept for the life of the store.
  readonly #put: SqliteStatement;
  readonly #delete: SqliteStatement;
  readonly #all: SqliteStatement;
  readonly #begin: SqliteStatement;
  readonly #commitTransaction: SqliteStatement;
  readonly #wal: WalSync;
  #closed = false;

  private constructor(dir: string, db: SqliteConnection, wal: WalSync) {
    this.#dir = dir;
    this.#db = db;
    this.#wal = wal;
    this.#put = db.prepare('INSERT INTO records (kind, key, value) VALUES (?, ?, ?) ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value');
    this.#delete = db.prepare('DELETE FROM records WHERE kind = ? AND key = ?');
    this.#all = db.prepare('SELECT kind, key, value FROM records');
    this.#begin = db.prepare('BEGIN');
    this.#commitTransaction = db.prepare('COMMIT');
  }

  /** Opens (creating if needed) the store in `dir`. Rejects with StoreUnavailable if it cannot, or if another process holds it. */
  static open(dir: string, options: SqliteStateStoreOptions = {}): Promise<SqliteStateStore> {
    try {
      return Promise.resolve(SqliteStateStore.#openSync(resolve(dir), options));
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  static #openSync(dir: string, options: SqliteStateStoreOptions): SqliteStateStore {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (error) {
      throw unavailable(`Cannot create the state directory ${dir}: ${(error as Error).message}. Check --state-dir and its permissions.`, error);
    }
    const file = join(dir, DB_FILE);
    let db: SqliteConnection;
    try {
      db = openSqlite(file, options.driver ?? sqliteDriverName());
    } catch (error) {
      throw unavailable(`Cannot open the state database ${file}: ${(error as Error).message}. Check --state-dir and its permissions.`, error);
    }
    try {
      // Order matters: exclusive locking before WAL, so SQLite never uses shared memory for the WAL index.
      db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.round(options.lockTimeoutMs ?? 1000))}`);
      db.exec('PRAGMA locking_mode = EXCLUSIVE');
      const mode = db.value('PRAGMA journal_mode = WAL');
      if (mode !== 'wal') throw new Error(`SQLite refused WAL mode (journal_mode is ${String(mode)})`);
      db.exec('PRAGMA synchronous = FULL');
      // Takes the exclusive lock now (held until close), creates the table, checks the layout version.
      db.exec('BEGIN EXCLUSIVE');
      try {
        const version = Number(db.value('PRAGMA user_version'));
        if (version > SCHEMA_VERSION) {
          throw new EbbError(
            'StoreUnavailable',
            `The state in ${dir} was written by a newer ebb (layout ${version}; this ebb reads up to ${SCHEMA_VERSION}). Run the newer ebb, or start with another --state-dir.`,
          );
        }
        db.exec(
          'CREATE TABLE IF NOT EXISTS records (kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL CHECK (json_valid(value)), PRIMARY KEY (kind, key)) WITHOUT ROWID',
        );
        if (version < SCHEMA_VERSION) db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
        upgradeRecords(db, dir);
        db.exec('COMMIT');
      } catch (error) {
        rollback(db);
        throw error;
      }
      // From here commits reach the disk through WalSync (see the class comment).
      db.exec('PRAGMA synchronous = NORMAL');
    } catch (error) {
      db.close();
      if (EbbError.is(error)) throw error;
      if (isSqliteBusy(error)) {
        const holder = readHolder(dir);
        throw unavailable(
          `The state directory ${dir} is in use by another ebb${holder === null ? '' : ` (pid ${holder})`}. Stop that ebb, or start this one with another --state-dir.`,
          error,
        );
      }
      throw unavailable(`Cannot open the state database ${file}: ${(error as Error).message}. Move the file aside or use another --state-dir.`, error);
    }
    let wal: WalSync;
    try {
      wal = WalSync.open(dir, `${file}-wal`, options.syncFile ?? fdatasync);
    } catch (error) {
      db.close();
      throw unavailable(`Cannot open the write-ahead log of ${file}: ${(error as Error).message}. Check --state-dir and its permissions.`, error);
    }
    try {
      writeFileSync(join(dir, PID_FILE), `${process.pid}\n`);
    } catch {
      // Only used to name the holder in another process's error message.
    }
    return new SqliteStateStore(dir, db, wal);
  }

  /** The directory this store lives in. */
  get dir(): string {
    return this.#dir;
  }

  /** The SQLite binding in use. */
  get driver(): SqliteDriverName {
    return this.#db.driver;
  }

  load(): Promise<Map<StoreKind, Map<string, unknown>>> {
    if (this.#closed) return Promise.reject(closedError());
    const state = emptyState();
    try {
      for (const row of this.#all.all() as { kind: string; key: string; value: string }[]) {
        if (!isStoreKind(row.kind)) continue; // a kind this version does not know; left untouched
        state.get(row.kind)?.set(row.key, decodeRecord(row.kind, row.key, row.value));
      }
    } catch (error) {
      return Promise.reject(EbbError.is(error) ? error : unavailable(`Cannot read the state in ${this.#dir}: ${(error as Error).message}`, error));
    }
    return Promise.resolve(state);
  }

  commit(ops: readonly StoreOp[]): Promise<void> {
    if (ops.length === 0) return this.#closed ? Promise.reject(closedError()) : Promise.resolve();
    try {
      this.write(ops);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return this.flush();
  }

  /** One transaction, in the WAL but not yet durable (see the class comment). Throws StoreUnavailable, having written nothing. */
  write(ops: readonly StoreOp[]): void {
    if (this.#closed) throw closedError();
    const broken = this.#wal.broken;
    if (broken !== null) throw broken;
    if (ops.length === 0) return;
    try {
      // Encode inside the same try: a bad op anywhere in the list means nothing is written.
      const rows = ops.map((op) => ({ op, json: encodeOp(op) }));
      this.#begin.run();
      try {
        for (const { op, json } of rows) {
          if (json === null) this.#delete.run(op.kind, op.key);
          else this.#put.run(op.kind, op.key, json);
        }
        this.#commitTransaction.run();
      } catch (error) {
        rollback(this.#db);
        throw error;
      }
    } catch (error) {
      throw EbbError.is(error) ? error : unavailable(`Cannot save to the state in ${this.#dir}: ${(error as Error).message}`, error);
    }
    this.#wal.written();
  }

  /** How many syncs of the WAL file have run (one per group of writes). */
  get syncs(): number {
    return this.#wal.syncs;
  }

  /** Resolves once every write made before this call is on disk; rejects with StoreUnavailable if it cannot be. */
  flush(): Promise<void> {
    if (this.#closed) return Promise.reject(closedError());
    return this.#wal.flush();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // A sync still running uses the WAL's descriptor: it ends first.
    await this.#wal.settled();
    try {
      this.#db.close();
    } finally {
      this.#wal.close();
      rmSync(join(this.#dir, PID_FILE), { force: true });
    }
  }
}

/**
 * Brings every record below its kind's current format up to it (migrations.ts), inside the
 * transaction that opens the store: either every record is upgraded or, if one cannot be (a newer
 * ebb's record, a damaged one), none is and the open is refused. Only records that need it are read:
 * SQLite picks them by their `v`. Kinds this ebb does not know are left as they are.
 */
function upgradeRecords(db: SqliteConnection, dir: string): void {
  const stale = db.prepare("SELECT key, value FROM records WHERE kind = ? AND json_extract(value, '$.v') IS NOT ?");
  const update = db.prepare('UPDATE records SET value = ? WHERE kind = ? AND key = ?');
  for (const kind of STORE_KINDS) {
    for (const row of stale.all(kind, currentVersion(kind)) as { key: string; value: string }[]) {
      let value: unknown;
      try {
        value = JSON.parse(row.value);
      } catch (error) {
        throw unavailable(`The ${kind} record "${row.key}" in ${dir} is not valid JSON: ${(error as Error).message}`, error);
      }
      let upgraded;
      try {
        upgraded = upgradeRecord(kind, row.key, value);
      } catch (error) {
        throw EbbError.is(error) ? new EbbError(error.code, `${error.message} (in ${dir})`, { cause: error }) : error;
      }
      if (upgraded !== null) update.run(JSON.stringify(upgraded), kind, row.key);
    }
  }
}

function rollback(db: SqliteConnection): void {
  try {
    db.exec('ROLLBACK');
  } catch {
    // No transaction was open (BEGIN itself failed), or SQLite already rolled it back.
  }
}

/** The pid named in the pid file, if that process is alive. */
function readHolder(dir: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(join(dir, PID_FILE), 'utf8').trim(), 10);
    if (!Number.isSafeInteger(pid) || pid <= 0) return null;
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}

function unavailable(message: string, cause: unknown): EbbError {
  return new EbbError('StoreUnavailable', message, { cause });
}
