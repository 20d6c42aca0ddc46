/**
 * A connection to one SQLite file that keeps the statements it runs prepared: a statement run
 * again (a cache entry's lookup, a group commit) is bound and stepped, without being parsed,
 * planned and finalized each time (two round trips to the driver's threads less per query, and no
 * finalize on the main thread while another statement holds the connection).
 *
 * Reads (`SELECT`) run on a second connection to the same file when it is in write-ahead-logging
 * mode: a lookup never waits behind a commit being written (a reader does not block on the
 * writer), and it sees every commit that completed before it was asked. A file in another mode
 * (or in memory) is read and written through the one connection.
 *
 * The driver is the one `@keyv/sqlite` runs on (node-sqlite3), found where that package is.
 *
 * @packageDocumentation
 */
import * as path from 'node:path';
import type { Database, Statement } from 'sqlite3';

// model

/** @internal A query function: SQL and its parameters, the rows it returns. */
export type SqliteQuery = (sql: string, ...parameters: unknown[]) => Promise<unknown[]>;

/** @internal An open connection. */
export interface SqliteConnection {
  /** Runs a statement, prepared on its first run and kept. */
  readonly query: SqliteQuery;
  /** Finalizes the kept statements, then closes the connection. */
  readonly close: () => Promise<void>;
}

/** @internal How a connection opens. */
export interface SqliteConnectionOptions {
  readonly busyTimeoutMs: number;
  /** Run first, in order; one that fails is skipped. */
  readonly pragmas: readonly string[];
  /** Run next, in order; one that fails fails the connection (every query rejects with its error). */
  readonly setup: readonly string[];
}

/** Statements kept prepared, at most: SQL past them runs unprepared (each distinct SQL text is one). */
const STATEMENTS_KEPT = 64;

type Driver = typeof import('sqlite3');

let driver: Driver | undefined;
/** node-sqlite3, as `@keyv/sqlite` loads it (one copy of the native module in the process). */
const sqliteDriver = (): Driver =>
  (driver ??= require(require.resolve('sqlite3', { paths: [path.dirname(require.resolve('@keyv/sqlite'))] })) as Driver);

// constructors

/**
 * @internal Opens a SQLite file; its pragmas, then its `setup` statements (the table) run first, in
 * order, before any query. A connection that cannot open rejects every query with the reason.
 *
 * @example
 * const connection = openSqliteConnection('.stepcache/metadata.sqlite', { busyTimeoutMs: 10_000, pragmas: ['PRAGMA journal_mode=WAL'], setup: [] });
 * const rows = await connection.query('SELECT value FROM keyv WHERE key = ?', 'stepcache:entry:abc');
 */
export const openSqliteConnection = (file: string, options: SqliteConnectionOptions): SqliteConnection => {
  const writing = openDatabase(file, async (db) => {
    // A pragma that fails leaves the connection as it was; it works on, and says so where it fails.
    for (const sql of options.pragmas) await allOf(db, sql, []).catch(() => undefined);
    for (const sql of options.setup) await allOf(db, sql, []);
  }, options.busyTimeoutMs);
  // Opened once the writer has set the file up (its mode, its tables), and only for a file in
  // write-ahead logging: else reads share the writer.
  const reading = writing.opened
    .then((db) => allOf(db, 'PRAGMA journal_mode', []))
    .then((rows) => ((rows[0] as { journal_mode?: unknown } | undefined)?.journal_mode === 'wal' ? openDatabase(file, async () => undefined, options.busyTimeoutMs) : writing));
  reading.catch(() => undefined); // reported by each query
  const isRead = (sql: string): boolean => /^\s*select\b/i.test(sql);
  const query: SqliteQuery = async (sql, ...parameters) => (isRead(sql) ? (await reading).query(sql, parameters) : writing.query(sql, parameters));
  const close = async (): Promise<void> => {
    const reader = await reading.catch(() => undefined);
    // The reader first, then the writer: the last connection to close folds the write-ahead log
    // into the database and removes its files, which two closing at once may each leave to the other.
    if (reader !== undefined && reader !== writing) await reader.close();
    await writing.close();
  };
  return Object.freeze({ query, close });
};

/** One connection to the file, with its statements kept prepared. */
interface OpenDatabase {
  /** The connection, once `prepare` has run on it (rejects with why it could not open). */
  readonly opened: Promise<Database>;
  readonly query: (sql: string, parameters: readonly unknown[]) => Promise<unknown[]>;
  readonly close: () => Promise<void>;
}

const openDatabase = (file: string, prepare: (db: Database) => Promise<void>, busyTimeoutMs: number): OpenDatabase => {
  const opened = new Promise<Database>((resolve, reject) => {
    const db: Database = new (sqliteDriver().Database)(file, (e: Error | null) => (e === null ? resolve(db) : reject(e)));
  }).then(async (db) => {
    db.configure('busyTimeout', busyTimeoutMs);
    await prepare(db);
    return db;
  });
  opened.catch(() => undefined); // reported by each query
  const statements = new Map<string, Promise<Statement>>();
  const statementOf = (db: Database, sql: string): Promise<Statement> | undefined => {
    const known = statements.get(sql);
    if (known !== undefined || statements.size >= STATEMENTS_KEPT) return known;
    const preparing = new Promise<Statement>((resolve, reject) => {
      const statement = db.prepare(sql, (e: Error | null) => (e === null ? resolve(statement) : reject(e)));
    });
    statements.set(sql, preparing);
    preparing.catch(() => {
      if (statements.get(sql) === preparing) statements.delete(sql);
    });
    return preparing;
  };
  const query = async (sql: string, parameters: readonly unknown[]): Promise<unknown[]> => {
    const db = await opened;
    const preparing = statementOf(db, sql);
    if (preparing === undefined) return allOf(db, sql, parameters);
    const statement = await preparing;
    return new Promise<unknown[]>((resolve, reject) => {
      statement.all(...parameters, (e: Error | null, rows: unknown[]) => {
        if (e === null) return resolve(rows);
        // A statement that failed is prepared anew next time, in case it is left mid-way.
        if (statements.get(sql) === preparing) {
          statements.delete(sql);
          statement.finalize(() => undefined);
        }
        reject(e);
      });
    });
  };
  const close = async (): Promise<void> => {
    const db = await opened.catch(() => undefined);
    if (db === undefined) return;
    const kept = await Promise.all([...statements.values()].map((s) => s.catch(() => undefined)));
    statements.clear();
    await Promise.all(kept.map((s) => (s === undefined ? undefined : new Promise<void>((done) => s.finalize(() => done())))));
    await new Promise<void>((resolve, reject) => db.close((e: Error | null) => (e === null ? resolve() : reject(e))));
  };
  return { opened, query, close };
};

const allOf = (db: Database, sql: string, parameters: readonly unknown[]): Promise<unknown[]> =>
  new Promise((resolve, reject) => {
    db.all(sql, ...parameters, (e: Error | null, rows: unknown[]) => (e === null ? resolve(rows) : reject(e)));
  });
