/**
 * Connecting to PostgreSQL, shared by the PostgreSQL metadata store and step lock: a pool from a
 * URL (with timeouts, so a server that is gone is reported quickly) or one the caller owns; the
 * server named by its redacted URL (never a password); driver errors turned into
 * `STORE_UNAVAILABLE`; advisory-lock keys; quoted identifiers.
 *
 * @packageDocumentation
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { StepcacheError, toError } from '../errors';

/**
 * @internal The PostgreSQL driver, loaded on first use (not when stepcache is imported: it takes
 * ~100 ms to load, which a run on the embedded store never needs).
 */
export const postgresDriver = (): typeof pg => require('pg') as typeof pg;

// model

/**
 * Where a PostgreSQL store connects: a node-postgres pool you own (and end), or a URL
 * (`postgres://user:password@host:5432/db`) from which the store makes, and later ends, its own pool.
 *
 * @example
 * const connection: PostgresConnection = { url: process.env.STEPCACHE_POSTGRES_URL! };
 */
export type PostgresConnection = { readonly pool: pg.Pool } | { readonly url: string };

/**
 * Timeouts of a pool made from a URL (a pool you pass keeps its own settings).
 *
 * @example
 * const options: PostgresTimeouts = { connectTimeoutMs: 5_000, queryTimeoutMs: 30_000 };
 */
export interface PostgresTimeouts {
  /**
   * How long to wait for a connection before reporting the server unavailable.
   * @default 10_000
   */
  readonly connectTimeoutMs?: number;
  /**
   * How long to wait for the answer to one query before reporting the server unavailable.
   * @default 30_000
   */
  readonly queryTimeoutMs?: number;
}

/** @internal A pool, whether the store owns it, and how to name the server in messages. */
export interface OpenedPool {
  readonly pool: pg.Pool;
  /** Whether the pool was made here (and is ended on close). */
  readonly owned: boolean;
  /** The server's URL without its password. */
  readonly where: string;
  /** Strings that must never appear in a message (the password). */
  readonly secrets: readonly string[];
}

// naming the server

/**
 * A PostgreSQL URL with its password replaced by `***` and its query string dropped.
 *
 * @example
 * redactPostgresUrl('postgres://ann:hunter2@db.team:5432/ml'); // 'postgres://ann:***@db.team:5432/ml'
 */
export const redactPostgresUrl = (url: string): string => {
  try {
    const parsed = new URL(url);
    const user = decodeURIComponent(parsed.username);
    const credentials = user === '' && parsed.password === '' ? '' : `${user}${parsed.password === '' ? '' : ':***'}@`;
    return `${parsed.protocol}//${credentials}${parsed.host}${parsed.pathname}`;
  } catch {
    // Not a URL the WHATWG parser accepts: hide everything between the scheme and the last '@'.
    return url.replace(/^([a-z]+:\/\/)[^@]*@/i, '$1***@').replace(/\?.*$/, '');
  }
};

const describeConfig = (options: pg.PoolConfig): string => {
  if (typeof options.connectionString === 'string') return redactPostgresUrl(options.connectionString);
  const user = options.user ?? process.env['PGUSER'] ?? '';
  const hasPassword = options.password !== undefined || process.env['PGPASSWORD'] !== undefined;
  const host = options.host ?? process.env['PGHOST'] ?? 'localhost';
  const port = options.port ?? process.env['PGPORT'] ?? 5432;
  const database = options.database ?? process.env['PGDATABASE'] ?? user;
  return `postgres://${user === '' ? '' : `${user}${hasPassword ? ':***' : ''}@`}${host}:${port}/${database}`;
};

const secretsOf = (options: pg.PoolConfig, url?: string): string[] => {
  const secrets: string[] = [];
  if (typeof options.password === 'string' && options.password !== '') secrets.push(options.password);
  for (const u of [url, options.connectionString]) {
    if (u === undefined) continue;
    try {
      const password = new URL(u).password;
      if (password !== '') secrets.push(password, decodeURIComponent(password));
    } catch {
      // nothing to learn from a URL that does not parse; it is never shown whole
    }
  }
  return secrets;
};

// opening

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_QUERY_TIMEOUT_MS = 30_000;

/** @internal How to name a server in messages (its redacted URL) and what never to show (its password). */
export const nameOf = (connection: PostgresConnection): Pick<OpenedPool, 'where' | 'secrets'> =>
  'pool' in connection
    ? { where: describeConfig(connection.pool.options), secrets: secretsOf(connection.pool.options) }
    : { where: redactPostgresUrl(connection.url), secrets: secretsOf({}, connection.url) };

/** @internal Opens (or adopts) a pool. Nothing connects until the first query. */
export const openPool = (connection: PostgresConnection, timeouts: PostgresTimeouts = {}): OpenedPool => {
  if ('pool' in connection) {
    const { pool } = connection;
    // An idle client whose server went away emits 'error' on the pool; without a listener it would crash the process.
    pool.on('error', ignore);
    return { pool, owned: false, ...nameOf(connection) };
  }
  const pool = new (postgresDriver().Pool)({
    connectionString: connection.url,
    connectionTimeoutMillis: timeouts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    query_timeout: timeouts.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS,
    keepAlive: true,
    allowExitOnIdle: true,
  });
  pool.on('error', ignore);
  return { pool, owned: true, ...nameOf(connection) };
};

/** Listener that keeps a connection's asynchronous 'error' event from crashing the process; the failing call reports it. */
export const ignore = (): void => undefined;

// errors

/** @internal Removes every secret from a message. */
export const scrub = (message: string, secrets: readonly string[]): string =>
  secrets.reduce((m, s) => (s === '' ? m : m.split(s).join('***')), message);

/**
 * @internal A `STORE_UNAVAILABLE` error naming the store by its redacted URL and what it could not do.
 * The driver's error is kept as `cause`, stripped of secrets.
 */
export const unavailable = (opened: Pick<OpenedPool, 'where' | 'secrets'>, what: string, thrown: unknown, subject = 'PostgreSQL metadata store'): StepcacheError => {
  if (thrown instanceof StepcacheError) return thrown;
  const error = toError(thrown);
  const message = scrub(error.message === '' ? error.name : error.message, opened.secrets);
  const cause = new Error(message);
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') Object.assign(cause, { code });
  return new StepcacheError(
    'STORE_UNAVAILABLE',
    `The ${subject} at ${opened.where} could not ${what}: ${message}. Check that the server is running and reachable from this machine, and the credentials.`,
    { cause },
  );
};

// utils

/**
 * @internal A signed 64-bit advisory-lock key (as a decimal string for `$1::bigint`) for a text:
 * the first 8 bytes of its SHA-256.
 */
export const advisoryKey = (text: string): string => createHash('sha256').update(text).digest().readBigInt64BE(0).toString();

/** @internal A quoted SQL identifier. */
export const quoteIdentifier = (name: string): string => `"${name.replace(/"/g, '""')}"`;
