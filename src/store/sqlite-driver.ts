import { createRequire } from 'node:module';

/**
 * The SQLite binding under the embedded store, chosen per Node version:
 *
 * - Node 24 and later: Node's own `node:sqlite`. better-sqlite3 12 must not be loaded there: Node
 *   24.19 changed `node::ObjectWrap` (compiled into the addon from Node's headers) so that a
 *   better-sqlite3 Statement or Database collected by the GC at the wrong moment aborts the whole
 *   process (`Assertion failed: (env) != nullptr` in RemoveEnvironmentCleanupHook). better-sqlite3 13
 *   avoids it but needs Node-API 10, which Node 20 lacks.
 * - Node 20 and 22: better-sqlite3 12 (Node 20 has no `node:sqlite`; on 22 it is experimental).
 *
 * `EBB_SQLITE_DRIVER=node:sqlite|better-sqlite3` overrides the choice (for tests and diagnosis).
 * Both bindings are synchronous and expose the same small surface, used here through one interface.
 */
export type SqliteDriverName = 'node:sqlite' | 'better-sqlite3';

export interface SqliteStatement {
  run(...params: (string | number | null)[]): unknown;
  get(...params: (string | number | null)[]): unknown;
  all(...params: (string | number | null)[]): unknown[];
}

export interface SqliteConnection {
  readonly driver: SqliteDriverName;
  exec(sql: string): void;
  prepare(sql: string): SqliteStatement;
  /** The first column of the first row, for `PRAGMA x` and one-value queries. */
  value(sql: string): unknown;
  close(): void;
}

interface NodeSqliteModule {
  DatabaseSync: new (path: string) => {
    exec(sql: string): void;
    prepare(sql: string): SqliteStatement;
    close(): void;
  };
}

type BetterSqlite3 = typeof import('better-sqlite3');

const require = createRequire(import.meta.url);

function nodeSqlite(): NodeSqliteModule | undefined {
  const getBuiltin = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  return getBuiltin?.call(process, 'node:sqlite') as NodeSqliteModule | undefined;
}

/** The binding this process uses, by the rules above. */
export function sqliteDriverName(env: NodeJS.ProcessEnv = process.env): SqliteDriverName {
  const forced = env['EBB_SQLITE_DRIVER'];
  if (forced === 'node:sqlite' || forced === 'better-sqlite3') return forced;
  if (forced !== undefined && forced !== '') {
    throw new Error(`EBB_SQLITE_DRIVER must be node:sqlite or better-sqlite3, not "${forced}"`);
  }
  const major = Number(process.versions.node.split('.')[0]);
  return major >= 24 && nodeSqlite() !== undefined ? 'node:sqlite' : 'better-sqlite3';
}

/** Opens (creating if needed) the database file with the chosen binding. Throws the binding's error. */
export function openSqlite(file: string, driver: SqliteDriverName = sqliteDriverName()): SqliteConnection {
  if (driver === 'node:sqlite') {
    const mod = nodeSqlite();
    if (mod === undefined) throw new Error(`node:sqlite is not available in Node ${process.version}; use better-sqlite3`);
    const db = new mod.DatabaseSync(file);
    return {
      driver,
      exec: (sql) => db.exec(sql),
      prepare: (sql) => db.prepare(sql),
      value: (sql) => firstColumn(db.prepare(sql).get()),
      close: () => db.close(),
    };
  }
  let Database: BetterSqlite3;
  try {
    Database = require('better-sqlite3') as BetterSqlite3;
  } catch (error) {
    throw new Error(
      `The SQLite binding better-sqlite3 could not be loaded on Node ${process.version} (${(error as Error).message.split('\n')[0] ?? ''}). ` +
        'On Node 20 and 22 ebb needs it: run npm install where a C++ compiler and Python are available, or run ebb on Node 24, which has SQLite built in.',
      { cause: error },
    );
  }
  const db = new Database(file);
  return {
    driver,
    exec: (sql) => {
      db.exec(sql);
    },
    prepare: (sql) => db.prepare<(string | number | null)[]>(sql),
    value: (sql) => firstColumn(db.prepare(sql).get()),
    close: () => {
      db.close();
    },
  };
}

function firstColumn(row: unknown): unknown {
  if (row === undefined || row === null) return undefined;
  return Object.values(row as Record<string, unknown>)[0];
}

/** True for SQLITE_BUSY / SQLITE_LOCKED (and their extended codes) from either binding. */
export function isSqliteBusy(error: unknown): boolean {
  const e = error as { code?: unknown; errcode?: unknown } | null;
  if (typeof e?.code === 'string' && /^SQLITE_(BUSY|LOCKED)/.test(e.code)) return true;
  return typeof e?.errcode === 'number' && [5, 6].includes(e.errcode & 0xff);
}
