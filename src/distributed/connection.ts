/**
 * Where the queue lives: a `redis://` URL (or `STEPCACHE_QUEUE_URL`) read into the connection
 * settings BullMQ's clients are made with, and the name of the server for error messages
 * (without its password).
 *
 * @packageDocumentation
 */
import type * as BullMQ from 'bullmq';
import type { RedisOptions } from 'bullmq';
import { StepcacheError } from '../errors';

/**
 * @internal BullMQ, loaded on first use (not when stepcache is imported: with ioredis it takes
 * several hundred milliseconds to load, which a run without a queue never needs).
 */
export const bullmq = (): typeof BullMQ => require('bullmq') as typeof BullMQ;

// model

/**
 * A queue server, as read from its URL.
 *
 * @example
 * const server: QueueServer = { url: 'redis://127.0.0.1:6379', shown: 'redis://127.0.0.1:6379', connection: { host: '127.0.0.1', port: 6379 } };
 */
export interface QueueServer {
  readonly url: string;
  /** The URL without its password: what messages show. */
  readonly shown: string;
  /** Settings for the Redis clients that BullMQ makes (it needs its own connections for blocking reads). */
  readonly connection: RedisOptions;
}

// constants

/**
 * The environment variable naming the queue server; unset, steps execute in-process.
 *
 * @example
 * process.env[QUEUE_URL_VARIABLE] = 'redis://127.0.0.1:6379';
 */
export const QUEUE_URL_VARIABLE = 'STEPCACHE_QUEUE_URL';

// reading

/**
 * A queue server from its URL: `redis://[user:password@]host[:port][/db]` or `rediss://…` (TLS).
 * A PostgreSQL URL is refused for now with an error that says so; anything else is an
 * `INVALID_OPTIONS` error naming `field`.
 *
 * @example
 * queueServer('redis://127.0.0.1:6390').connection; // { host: '127.0.0.1', port: 6390, db: 0, maxRetriesPerRequest: null, … }
 */
export const queueServer = (url: string, field: string = QUEUE_URL_VARIABLE): QueueServer => {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new StepcacheError('INVALID_OPTIONS', `${field} must be a URL like redis://host:6379, got ${JSON.stringify(url)}.`, { field });
  }
  const scheme = parsed.protocol.replace(/:$/, '');
  if (scheme === 'postgres' || scheme === 'postgresql') {
    throw new StepcacheError('INVALID_OPTIONS', `${field}: a PostgreSQL queue is not supported yet; use a Redis server (redis://host:6379).`, { field });
  }
  if (scheme !== 'redis' && scheme !== 'rediss') {
    throw new StepcacheError('INVALID_OPTIONS', `${field} must be a redis:// or rediss:// URL, got ${JSON.stringify(`${scheme}://…`)}.`, { field });
  }
  const db = parsed.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) throw new StepcacheError('INVALID_OPTIONS', `${field}: the path of a Redis URL is a database number, got ${JSON.stringify(db)}.`, { field });
  const shownUrl = new URL(url);
  shownUrl.password = '';
  return {
    url,
    shown: shownUrl.toString().replace(/\/$/, ''),
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
