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
 * Each held or awaited key uses one dedicated connection (not one from the store's pool, so
 * waiters can never starve the queries the holders need to finish); waiters in the same process
 * queue in memory first, so a process opens at most one connection per key.
 *
 * @packageDocumentation
 */
import pg from 'pg';
import { advisoryKey, ignore, nameOf, unavailable, type PostgresConnection, type PostgresTimeouts } from '../store/postgres-connection';
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

  const acquire = async (key: string, acquireOptions: AcquireOptions = {}): Promise<ReleaseLock> => {
    const { signal } = acquireOptions;
    const releaseLocal = await local.acquire(key, acquireOptions);
    const client = new pg.Client(config);
    client.on('error', ignore);
    let aborted = false;
    const onAbort = (): void => {
      aborted = true;
      // Ending the connection abandons the wait on the server; the pending query rejects.
      void client.end().catch(ignore);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const lockKey = advisoryKey(`stepcache:step:${namespace}:${key}`);
    try {
      if (signal?.aborted === true) throw signal.reason;
      await client.connect();
      await client.query('SELECT pg_advisory_lock($1::bigint)', [lockKey]);
    } catch (e) {
      signal?.removeEventListener('abort', onAbort);
      void client.end().catch(ignore);
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
