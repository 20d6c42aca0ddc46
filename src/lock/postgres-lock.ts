/**
 * A step lock on PostgreSQL, for machines that share a PostgreSQL metadata store: a session-level
 * advisory lock (`pg_advisory_lock`) on a 64-bit hash of the step key, held on a connection of its
 * own until release.
 *
 * Why advisory locks rather than a lease row with a heartbeat: the server itself releases them
 * when the holder's connection ends, so a holder that dies (crash, SIGKILL, lost machine) frees the
 * key without a timeout to tune, and a holder whose event loop is blocked by a long synchronous
 * step keeps the key (nothing has to be refreshed). Waiting is done by the server: waiters queue on
 * the lock and one is woken as soon as it is released, with no polling.
 *
 * An abandoned wait (`signal`) is cancelled on the server (`pg_cancel_backend`): a backend blocked
 * in a lock wait does not notice its client leaving, and would otherwise take the key for a moment.
 *
 * If the holder's connection is lost while it holds a key (a server restart, a network cut), the
 * key is free for others: at worst the step executes twice, and the metadata store keeps the first
 * entry committed (insert-if-absent). Session-level advisory locks need a session of their own: point
 * the lock at PostgreSQL directly, or at a pooler in session mode (not PgBouncer's transaction mode).
 *
 * Each held or awaited key uses one dedicated connection (not one from the store's pool, so
 * waiters can never starve the queries the holders need to finish); waiters in the same process
 * queue in memory first, so a process opens at most one connection per key.
 *
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { advisoryKey, ignore, nameOf, postgresDriver, unavailable, type PostgresConnection, type PostgresTimeouts } from '../store/postgres-connection';
import { createMemoryStepLock } from './memory-lock';
import type { AcquireOptions, ReleaseLock, StepLock } from './step-lock';

// model

/**
 * Options of {@link createPostgresStepLock}.
 *
 * @example
 * const options: PostgresStepLockOptions = { schema: 'ml_team' };
 */
export interface PostgresStepLockOptions extends Pick<PostgresTimeouts, 'connectTimeoutMs'> {
  /**
   * Keys are locked within this name, the schema of the metadata store they guard, so stores in
   * different schemas of one database do not wait for each other.
   * @default 'stepcache'
   */
  readonly schema?: string;
}

const isPool = (x: pg.Pool | PostgresConnection): x is pg.Pool => typeof (x as pg.Pool).connect === 'function' && typeof (x as pg.Pool).query === 'function';

// the lock

/**
 * A cross-machine step lock on a PostgreSQL server: pass the pool of your metadata store, or the
 * same `{ url }`. Waits have no timeout (a step may take hours); stop one with `options.signal`.
 *
 * @example
 * const pool = new pg.Pool({ connectionString: process.env.STEPCACHE_POSTGRES_URL });
 * const runner = createRunner({
 *   metadata: createPostgresMetadataStore({ pool }),
 *   lock: createPostgresStepLock(pool),
 *   artifacts: createFileArtifactStore('/mnt/team/artifacts'),
 * });
 */
export const createPostgresStepLock = (connection: pg.Pool | PostgresConnection, options: PostgresStepLockOptions = {}): StepLock => {
  const source: PostgresConnection = isPool(connection) ? { pool: connection } : connection;
  const named = nameOf(source);
  const base: pg.ClientConfig =
    'pool' in source ? { ...source.pool.options } : { connectionString: source.url, connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000 };
  // A wait may last as long as a step: no client-side query timeout, and no server-side statement or lock timeout.
  const config: pg.ClientConfig = {
    ...base,
    query_timeout: 0,
    keepAlive: true,
    options: [base.options, '-c statement_timeout=0 -c lock_timeout=0'].filter((o) => o !== undefined && o !== '').join(' '),
  };
  const namespace = options.schema ?? 'stepcache';
  const local = createMemoryStepLock();

  /** Cancels the wait of the connection named `application`: a backend blocked in a lock wait does not notice its client leaving. */
  const cancelWait = async (application: string): Promise<void> => {
    const canceller = new (postgresDriver().Client)({ ...config, query_timeout: 10_000 });
    canceller.on('error', ignore);
    try {
      await canceller.connect();
      await canceller.query('SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [application]);
    } finally {
      await canceller.end().catch(ignore);
    }
  };

  const acquire = async (key: string, acquireOptions: AcquireOptions = {}): Promise<ReleaseLock> => {
    const { signal } = acquireOptions;
    const releaseLocal = await local.acquire(key, acquireOptions);
    // A name of its own, so an abandoned wait can be found and cancelled (and operators see who waits).
    const application = `stepcache lock ${randomBytes(6).toString('hex')}`;
    const client = new (postgresDriver().Client)({ ...config, application_name: application });
    client.on('error', ignore);
    let aborted = false;
    const onAbort = (): void => {
      aborted = true;
      void cancelWait(application)
        .catch(ignore)
        .finally(() => client.end().catch(ignore));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const lockKey = advisoryKey(`stepcache:step:${namespace}:${key}`);
    try {
      if (signal?.aborted === true) throw signal.reason;
      await client.connect();
      await client.query('SELECT pg_advisory_lock($1::bigint)', [lockKey]);
      if (aborted) throw signal?.reason;
    } catch (e) {
      signal?.removeEventListener('abort', onAbort);
      if (!aborted) void client.end().catch(ignore); // an abort ends the connection itself, after cancelling
      await releaseLocal();
      if (aborted || signal?.aborted === true) throw signal?.reason;
      throw unavailable(named, `take the lock on step key ${key}`, e, 'PostgreSQL step lock');
    }
    signal?.removeEventListener('abort', onAbort);
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      // Unlock first, so the next waiter is woken before this resolves; closing the connection would free it anyway.
      await client.query('SELECT pg_advisory_unlock($1::bigint)', [lockKey]).catch(ignore);
      await client.end().catch(ignore);
      await releaseLocal();
    };
  };

  return Object.freeze({ acquire });
};
