/**
 * The SQLite connection that keeps its statements prepared: a statement runs again with new
 * parameters, one that failed is prepared anew, setup failures are reported, and it closes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openSqliteConnection, type SqliteConnection } from '../src/store/sqlite-connection';
import { removeDir, tempDir } from './support/fixtures';

const TABLE = 'CREATE TABLE IF NOT EXISTS t(key TEXT PRIMARY KEY, value TEXT)';
/** Writes a row, replacing the one of its key. */
const UPSERT = 'INSERT INTO t (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value';

describe('a SQLite connection that keeps statements prepared', () => {
  let dir: string;
  let open: SqliteConnection[];
  const connect = (setup: readonly string[] = [TABLE], pragmas: readonly string[] = ['PRAGMA journal_mode=WAL']): SqliteConnection => {
    const connection = openSqliteConnection(path.join(dir, 'db.sqlite'), { busyTimeoutMs: 5_000, pragmas, setup });
    open.push(connection);
    return connection;
  };
  beforeEach(() => {
    dir = tempDir('sqlite-connection-');
    open = [];
  });
  afterEach(async () => {
    for (const connection of open) await connection.close().catch(() => undefined);
    removeDir(dir);
  });

  it('runs the same statement again with other parameters, and sees what other connections wrote', async () => {
    const connection = connect();
    const other = connect();
    const insert = UPSERT;
    const select = 'SELECT value FROM t WHERE key IN (SELECT value FROM json_each(?)) ORDER BY key';
    await connection.query(insert, 'a', '1');
    await connection.query(insert, 'b', '2');
    expect(await connection.query(select, JSON.stringify(['a', 'b']))).toEqual([{ value: '1' }, { value: '2' }]);
    await other.query(insert, 'a', 'changed');
    expect(await connection.query(select, JSON.stringify(['a']))).toEqual([{ value: 'changed' }]);
    // Its read has ended: the other connection can write again, and this one too.
    await other.query(insert, 'c', '3');
    await connection.query(insert, 'd', '4');
    expect(await other.query(select, JSON.stringify(['c', 'd']))).toEqual([{ value: '3' }, { value: '4' }]);
  });

  it('a read does not wait behind a write of its connection that waits for the file, and sees it once written', async () => {
    const connection = connect();
    const other = connect();
    const select = 'SELECT value FROM t WHERE key = ?';
    const insert = 'INSERT INTO t (key, value) VALUES (?, ?)';
    await connection.query(insert, 'a', 'before');
    expect(await connection.query(select, 'a')).toEqual([{ value: 'before' }]);
    await other.query('BEGIN IMMEDIATE'); // the other connection holds the file's write lock
    const order: string[] = [];
    const writing = connection.query(insert, 'b', 'written').then(() => order.push('write'));
    // The write is under way (waiting for the lock) before the read is asked.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await connection.query(select, 'a')).toEqual([{ value: 'before' }]);
    order.push('read');
    await other.query('COMMIT');
    await writing;
    expect(order).toEqual(['read', 'write']);
    expect(await connection.query(select, 'b')).toEqual([{ value: 'written' }]);
  });

  it('a file that is not in write-ahead logging is read and written through one connection', async () => {
    const connection = connect([TABLE], ['PRAGMA journal_mode=DELETE']);
    await connection.query("INSERT INTO t VALUES ('a', 'here')");
    expect(await connection.query('SELECT value FROM t WHERE key = ?', 'a')).toEqual([{ value: 'here' }]);
  });

  it('a statement that fails is reported, and runs once what it needs is there', async () => {
    const connection = connect([]);
    const select = 'SELECT value FROM u WHERE key = ?';
    await expect(connection.query(select, 'a')).rejects.toThrow(/no such table: u/);
    await connection.query('CREATE TABLE u(key TEXT PRIMARY KEY, value TEXT)');
    await connection.query("INSERT INTO u VALUES ('a', 'here')");
    expect(await connection.query(select, 'a')).toEqual([{ value: 'here' }]);
  });

  it('a statement whose table is dropped and made again behind its back runs on the new one', async () => {
    const connection = connect();
    const other = connect();
    const select = 'SELECT value FROM t WHERE key = ?';
    await connection.query("INSERT INTO t VALUES ('a', 'old')");
    expect(await connection.query(select, 'a')).toEqual([{ value: 'old' }]);
    await other.query('DROP TABLE t');
    await other.query('CREATE TABLE t(key TEXT PRIMARY KEY, value TEXT)');
    await other.query("INSERT INTO t VALUES ('a', 'new')");
    expect(await connection.query(select, 'a')).toEqual([{ value: 'new' }]);
  });

  it('a pragma that fails is skipped; a setup statement that fails fails every query, naming the reason', async () => {
    const skipping = connect([TABLE], ['PRAGMA no_such_thing = (']);
    expect(await skipping.query('SELECT count(*) AS n FROM t')).toEqual([{ n: 0 }]);
    const failing = connect(['CREATE TABLE (']);
    await expect(failing.query('SELECT 1')).rejects.toThrow(/syntax error/);
    await expect(failing.query('SELECT 2')).rejects.toThrow(/syntax error/);
  });

  it('closes with its statements kept (they are finalized first)', async () => {
    const connection = connect();
    for (let i = 0; i < 3; i++) await connection.query('SELECT value FROM t WHERE key = ?', String(i));
    await expect(connection.close()).resolves.toBeUndefined();
    open = open.filter((c) => c !== connection);
  });

  it('closed, leaves the file alone in its folder: the write-ahead log is folded in and its files removed, each time', async () => {
    for (let i = 0; i < 24; i++) {
      const connection = connect();
      await connection.query(UPSERT, 'k', String(i));
      expect(await connection.query('SELECT value FROM t WHERE key = ?', 'k')).toEqual([{ value: String(i) }]);
      await connection.close();
      open = open.filter((c) => c !== connection);
      expect(fs.readdirSync(dir)).toEqual(['db.sqlite']);
    }
  });
});
