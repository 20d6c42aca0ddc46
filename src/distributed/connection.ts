/**
 * Where the queue lives: a `redis://` or `postgres://` URL (or `STEPCACHE_QUEUE_URL`) read into
 * the connection settings BullMQ's clients are made with, and the name of the server for error
 * messages (without its password).
 *
 * @packageDocumentation
 */
import type * as BullMQ from 'bullmq';
import type { PostgresPoolConfig, RedisOptions } from 'bullmq';
import { StepcacheError } from '../errors';

/**
 * @internal BullMQ, loaded on first use (not when stepcache is imported: with ioredis it takes
 * several hundred milliseconds to load, which a run without a queue never needs).
 */
export const bullmq = (): typeof BullMQ => require('bullmq') as typeof BullMQ;

// model

/**
 * A Redis queue server, as read from its URL.
 *
 * @example
 * const server: RedisQueueServer = { kind: 'redis', url: 'redis://127.0.0.1:6379', shown: 'redis://127.0.0.1:6379', connection: { host: '127.0.0.1', port: 6379 } };
 */
export interface RedisQueueServer {
  readonly kind: 'redis';
  readonly url: string;
  /** The URL without its password: what messages show. */
  readonly shown: string;
  /** Settings for the Redis clients that BullMQ makes (it needs its own connections for blocking reads). */
  readonly connection: RedisOptions;
}

/**
 * A PostgreSQL queue server (BullMQ's PostgreSQL backend), as read from its URL: the same server
 * can hold the team's metadata store.
 *
 * @example
 * const server: PostgresQueueServer = { kind: 'postgres', url, shown: 'postgres://team@db:5432/stepcache', connection: { connectionString: url, migrate: true } };
 */
export interface PostgresQueueServer {
  readonly kind: 'postgres';
  readonly url: string;
  /** The URL without its password: what messages show. */
  readonly shown: string;
  /** The pool settings each BullMQ client builds its pool from; `migrate: true` brings BullMQ's tables up to date on connecting. */
  readonly connection: PostgresPoolConfig;
}

/**
 * A queue server, as read from its URL: Redis or PostgreSQL.
 *
 * @example
 * const server: QueueServer = queueServer('postgres://team:secret@db:5432/stepcache');
 * server.kind; // 'postgres'
 */
export type QueueServer = RedisQueueServer | PostgresQueueServer;

// constants

/**
 * The environment variable naming the queue server; unset, steps execute in-process.
 *
 * @example
 * process.env[QUEUE_URL_VARIABLE] = 'redis://127.0.0.1:6379';
 */
export const QUEUE_URL_VARIABLE = 'STEPCACHE_QUEUE_URL';

/** Connections each BullMQ client of a PostgreSQL queue may hold (its blocking wait has one more of its own). */
const POSTGRES_POOL_SIZE = 4;

// reading

/** The URL without its password. */
const shownOf = (url: string): string => {
  const shown = new URL(url);
  shown.password = '';
  return shown.toString().replace(/\/$/, '');
};

/**
 * A queue server from its URL: `redis://[user:password@]host[:port][/db]`, `rediss://…` (TLS),
 * or `postgres://[user:password@]host[:port]/database` (`postgresql://` too). Anything else is an
 * `INVALID_OPTIONS` error naming `field`.
 *
 * @example
 * queueServer('redis://127.0.0.1:6390').connection; // { host: '127.0.0.1', port: 6390, db: 0, maxRetriesPerRequest: null, … }
 * queueServer('postgres://team:secret@db:5432/stepcache').shown; // 'postgres://team@db:5432/stepcache'
 */
export const queueServer = (url: string, field: string = QUEUE_URL_VARIABLE): QueueServer => {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new StepcacheError('INVALID_OPTIONS', `${field} must be a URL like redis://host:6379 or postgres://user:password@host:5432/database, got ${JSON.stringify(url)}.`, { field });
  }
  const scheme = parsed.protocol.replace(/:$/, '');
  if (scheme === 'postgres' || scheme === 'postgresql') {
    if (parsed.hostname === '') throw new StepcacheError('INVALID_OPTIONS', `${field}: a PostgreSQL URL names its host, like postgres://user:password@host:5432/database.`, { field });
    return {
      kind: 'postgres',
      url,
      shown: shownOf(url),
      // BullMQ builds and owns each pool; a dead server is noticed within the connection timeout.
      connection: { connectionString: url, migrate: true, max: POSTGRES_POOL_SIZE, connectionTimeoutMillis: 10_000, keepAlive: true },
    };
  }
  if (scheme !== 'redis' && scheme !== 'rediss') {
    throw new StepcacheError('INVALID_OPTIONS', `${field} must be a redis://, rediss:// or postgres:// URL, got ${JSON.stringify(`${scheme}://…`)}.`, { field });
  }
  const db = parsed.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) throw new StepcacheError('INVALID_OPTIONS', `${field}: the path of a Redis URL is a database number, got ${JSON.stringify(db)}.`, { field });
  return {
    kind: 'redis',
    url,
    shown: shownOf(url),
    connection: {
      host: parsed.hostname,
      port: parsed.port === '' ? 6379 : Number(parsed.port),
      db: db === '' ? 0 : Number(db),
      ...(parsed.username === '' ? {} : { username: decodeURIComponent(parsed.username) }),
      ...(parsed.password === '' ? {} : { password: decodeURIComponent(parsed.password) }),
      ...(scheme === 'rediss' ? { tls: {} } : {}),
      // BullMQ's blocking reads need commands that wait for a reconnection instead of failing.
      maxRetriesPerRequest: null,
    },
  };
};
