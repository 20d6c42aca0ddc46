/**
 * The tables of the PostgreSQL metadata store, as numbered migrations. Each is applied once, in
 * its own transaction, and recorded in `schema_migrations`; a session-level advisory lock makes
 * processes that connect at the same time migrate one after the other (the first applies, the
 * others find the work done).
 *
 * @packageDocumentation
 */
import type pg from 'pg';
import { advisoryKey, quoteIdentifier } from './postgres-connection';

// model

/** @internal One step of the schema's history. Never edit a published migration: add the next one. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  /** The SQL, with unqualified table names: it runs with `search_path` set to the store's schema. */
  readonly sql: string;
}

// migrations

/** @internal */
export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    name: 'runs, step runs and cache entries',
    sql: `
      CREATE TABLE runs (
        id          text PRIMARY KEY,
        pipeline    text NOT NULL,
        status      text NOT NULL,
        started_at  timestamptz NOT NULL,
        ended_at    timestamptz,
        duration_ms double precision,
        -- for queries (NUL characters replaced); the record holds the exact values
        parameters  jsonb NOT NULL,
        -- the record exactly as written (json keeps the order of its steps)
        record      json NOT NULL
      );
      CREATE INDEX runs_by_started_at ON runs (started_at DESC, id DESC);
      CREATE INDEX runs_by_pipeline ON runs (pipeline, started_at DESC);

      CREATE TABLE step_runs (
        run_id      text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        step        text NOT NULL,
        status      text NOT NULL,
        key         text,
        duration_ms double precision NOT NULL,
        cached_from text,
        reason      text,
        error       text,
        PRIMARY KEY (run_id, step)
      );
      CREATE INDEX step_runs_by_key ON step_runs (key) WHERE key IS NOT NULL;

      CREATE TABLE cache_entries (
        key            text PRIMARY KEY,
        pipeline       text NOT NULL,
        step           text NOT NULL,
        run_id         text NOT NULL,
        created_at     timestamptz NOT NULL,
        -- past this instant the entry is absent (and the next write of its key replaces it)
        expires_at     timestamptz,
        -- set by an operator to withdraw an entry without deleting it; it is then absent
        invalidated_at timestamptz,
        duration_ms    double precision NOT NULL,
        -- artifact descriptors by output name
        outputs        jsonb NOT NULL,
        -- json, not jsonb: kept exactly, even strings with NUL characters (parameter previews)
        components     json,
        signature      text
      );
      CREATE INDEX cache_entries_latest ON cache_entries (pipeline, step, created_at DESC);
      CREATE INDEX cache_entries_by_step ON cache_entries (step, created_at DESC);
      CREATE INDEX cache_entries_by_created_at ON cache_entries (created_at);
      CREATE INDEX cache_entries_expiring ON cache_entries (expires_at) WHERE expires_at IS NOT NULL;
    `,
  },
]);

// applying

/**
 * @internal Brings `schema` up to the latest migration. Holds an advisory lock (on a dedicated
 * connection) for the whole check-and-apply, so concurrent callers migrate once; a failure
 * destroys the connection, which aborts its transaction and frees the lock.
 */
export const migrate = async (pool: pg.Pool, schema: string, migrations: readonly Migration[] = MIGRATIONS): Promise<void> => {
  const q = quoteIdentifier(schema);
  const lockKey = advisoryKey(`stepcache:migrate:${schema}`);
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1::bigint)', [lockKey]);
    // A schema already there is only read: a role that may read it but create nothing (no CREATE
    // on the database) can use a store that is up to date.
    const exists = ((await client.query<{ found: string | null }>('SELECT to_regclass($1) AS found', [`${q}.schema_migrations`])).rows[0]?.found ?? null) !== null;
    if (!exists) {
      await client.query(
        `CREATE SCHEMA IF NOT EXISTS ${q};
         CREATE TABLE IF NOT EXISTS ${q}.schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
      );
    }
    const applied = new Set((await client.query<{ version: number }>(`SELECT version FROM ${q}.schema_migrations`)).rows.map((r) => r.version));
    for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
      if (applied.has(migration.version)) continue;
      await client.query('BEGIN');
      await client.query(`SET LOCAL search_path TO ${q}`);
      await client.query(migration.sql);
      await client.query(`INSERT INTO ${q}.schema_migrations (version, name) VALUES ($1, $2)`, [migration.version, migration.name]);
      await client.query('COMMIT');
    }
    await client.query('SELECT pg_advisory_unlock($1::bigint)', [lockKey]);
  } catch (e) {
    client.release(true);
    throw e;
  }
  client.release();
};
