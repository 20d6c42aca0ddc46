/**
 * A metadata store on PostgreSQL, for teams: one server shared by every machine and CI, so a
 * step that anyone computed is a hit everywhere. Real tables (`runs`, `step_runs`,
 * `cache_entries`), created by numbered migrations when the store first connects.
 *
 * - Committing an entry is insert-if-absent: concurrent writers of a key never overwrite each
 *   other, the first one wins (an expired, withdrawn or unreadable row counts as absent; a caller
 *   that rejected the stored entry says `replace`).
 * - The latest entry of a step is a query (newest `created_at`), never a pointer that can go stale.
 * - Batched reads are one query each (`= ANY($1)`).
 * - Rows that do not decode are skipped and reported, never trusted and never a crash.
 * - Every driver failure becomes a `StepcacheError` with code `STORE_UNAVAILABLE` naming the
 *   server by its URL without the password.
 *
 * @packageDocumentation
 */
import * as E from 'fp-ts/Either';
import type pg from 'pg';
import { createPostgresStepLock } from '../lock/postgres-lock';
import type { DamagedRow, MetadataStore, MetadataStoreOptions, PutEntryOptions, RunQuery } from './metadata-store';
import { openPool, quoteIdentifier, unavailable, type PostgresConnection, type PostgresTimeouts } from './postgres-connection';
import { migrate } from './postgres-schema';
import { decodeCacheEntry, decodeRunRecord, reportingDamage, runSummary, type CacheEntry, type DamagedRecord, type RunRecord, type RunSummary } from './records';
import { withLiveStatus } from './run-liveness';

// model

/**
 * Options of {@link createPostgresMetadataStore}, besides where to connect.
 *
 * @example
 * const options: PostgresMetadataStoreOptions = { schema: 'ml_team', onDamaged: (damage) => log.warn(damage.message) };
 */
export interface PostgresMetadataStoreOptions extends PostgresTimeouts, MetadataStoreOptions {
  /**
   * The schema that holds the tables (created when missing), so that several teams or tests share a database.
   * @default 'stepcache'
   */
  readonly schema?: string;
}

// decoding

// rows

interface EntryRow {
  readonly key: string;
  readonly pipeline: string;
  readonly step: string;
  readonly run_id: string;
  readonly created_at_ms: number;
  readonly duration_ms: number;
  readonly outputs: unknown;
  /** `{ v: components }`, or null when the entry has none (so a JSON null stays a value). */
  readonly components: { readonly v: unknown } | null;
  readonly signature: string | null;
}

/** The columns of an {@link EntryRow}, of the table aliased `e`. */
const ENTRY_COLUMNS = `e.key, e.pipeline, e.step, e.run_id, (extract(epoch FROM e.created_at) * 1000)::float8 AS created_at_ms, e.duration_ms, e.outputs,
  CASE WHEN e.components IS NULL THEN NULL ELSE json_build_object('v', e.components) END AS components, e.signature`;

/** The columns of an {@link EntryRow} read for its head (`EntryHead`): no components, no signature. */
const HEAD_COLUMNS = `e.key, e.pipeline, e.step, e.run_id, (extract(epoch FROM e.created_at) * 1000)::float8 AS created_at_ms, e.duration_ms, e.outputs,
  NULL::json AS components, NULL::text AS signature`;

/**
 * The row aliased `e` is present: not expired at the parameter `now` (milliseconds, this machine's
 * clock, like the runner's own expiry) and not withdrawn.
 */
const present = (now: string): string => `(e.expires_at IS NULL OR e.expires_at > to_timestamp(${now}::float8 / 1000)) AND e.invalidated_at IS NULL`;

const rowToCandidate = (row: EntryRow): unknown => ({
  key: row.key,
  pipeline: row.pipeline,
  step: row.step,
  runId: row.run_id,
  createdAt: row.created_at_ms,
  durationMs: row.duration_ms,
  outputs: row.outputs,
  ...(row.components === null ? {} : { components: row.components.v }),
  ...(row.signature === null ? {} : { signature: row.signature }),
});

/**
 * PostgreSQL's text and jsonb cannot hold NUL characters (nor, in jsonb, lone surrogates): the
 * columns kept for queries get U+FFFD instead (the run's record, in a json column, keeps the exact text).
 */
const withoutNul = (s: string): string => s.toWellFormed().replace(/\0/g, '\uFFFD');
const cleanJson = (value: unknown): unknown => {
  if (typeof value === 'string') return withoutNul(value);
  if (Array.isArray(value)) return value.map(cleanJson);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [withoutNul(k), cleanJson(v)]));
};
const jsonWithoutNul = (value: unknown): string => JSON.stringify(cleanJson(value));
const textWithoutNul = (s: string | undefined): string | null => (s === undefined ? null : withoutNul(s));

/** ISO text PostgreSQL reads as a timestamp; an unreadable one sorts as the epoch (the record keeps the original). */
const timestampOf = (iso: string | undefined): string | null => {
  if (iso === undefined) return null;
  const ms = Date.parse(iso);
  return new Date(Number.isNaN(ms) ? 0 : ms).toISOString();
};

// the store

/**
 * A metadata store on a PostgreSQL server shared by a team. Give it a URL (it makes and later ends
 * its own pool, with connection and query timeouts) or a node-postgres pool you own. Nothing
 * connects until the first call; the first call creates or upgrades the tables.
 *
 * @example
 * import { createRunner, createPostgresMetadataStore, createPostgresStepLock } from 'stepcache';
 * const url = process.env.STEPCACHE_POSTGRES_URL!;
 * const runner = createRunner({
 *   metadata: createPostgresMetadataStore({ url }),
 *   lock: createPostgresStepLock({ url }),
 *   artifacts: createFileArtifactStore('/mnt/team/artifacts'),
 * });
 */
export const createPostgresMetadataStore = (options: PostgresConnection & PostgresMetadataStoreOptions): MetadataStore => {
  const schema = options.schema ?? 'stepcache';
  const opened = openPool(options, options);
  const { pool } = opened;
  const table = (name: string): string => `${quoteIdentifier(schema)}.${name}`;
  const usable = reportingDamage(options.onDamaged ?? ((damage) => console.warn(`stepcache: skipping ${damage.message}`)));

  let ready: Promise<void> | undefined;
  const migrated = (): Promise<void> =>
    (ready ??= migrate(pool, schema).catch((e: unknown) => {
      ready = undefined; // try again on the next call
      throw e;
    }));

  /** Runs `f` once the schema is ready; any failure becomes STORE_UNAVAILABLE naming the server. */
  const call = async <A>(what: string, f: (db: pg.Pool) => Promise<A>): Promise<A> => {
    try {
      await migrated();
      return await f(pool);
    } catch (e) {
      throw unavailable(opened, what, e);
    }
  };

  const decodeEntry = (row: EntryRow): CacheEntry | undefined => usable(decodeCacheEntry(rowToCandidate(row), row.key));
  const readRun = (id: string): Promise<E.Either<DamagedRecord, RunRecord | undefined>> =>
    call(`read run ${id}`, async (db) => {
      const { rows } = await db.query<{ id: string; record: unknown }>(`SELECT id, record FROM ${table('runs')} WHERE id = $1`, [id]);
      const row = rows[0];
      return row === undefined ? E.right(undefined) : E.map((run: RunRecord) => withLiveStatus(run))(decodeRunRecord(row.record, row.id));
    });

  const putEntry = (entry: CacheEntry, putOptions: PutEntryOptions = {}): Promise<void> =>
    call(`record the cache entry of step ${entry.step}`, async (db) => {
      const now = Date.now();
      const values = [
        entry.key,
        entry.pipeline,
        entry.step,
        entry.runId,
        entry.createdAt,
        putOptions.ttlMs === undefined ? null : entry.createdAt + putOptions.ttlMs,
        entry.durationMs,
        JSON.stringify(entry.outputs),
        entry.components === undefined ? null : JSON.stringify(entry.components),
        entry.signature ?? null,
      ];
      /** Inserts the entry, or overwrites the row of its key when `condition` (on the row `e`) holds. */
      const insertOrOverwriteIf = (condition: string): string =>
        `INSERT INTO ${table('cache_entries')} AS e (key, pipeline, step, run_id, created_at, expires_at, duration_ms, outputs, components, signature)
         VALUES ($1, $2, $3, $4, to_timestamp($5::float8 / 1000), to_timestamp($6::float8 / 1000), $7, $8::jsonb, $9::json, $10)
         ON CONFLICT (key) DO UPDATE SET pipeline = EXCLUDED.pipeline, step = EXCLUDED.step, run_id = EXCLUDED.run_id,
           created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, invalidated_at = NULL, duration_ms = EXCLUDED.duration_ms,
           outputs = EXCLUDED.outputs, components = EXCLUDED.components, signature = EXCLUDED.signature
         WHERE ${condition}`;
      const written = await db.query(insertOrOverwriteIf(`$11::boolean OR NOT (${present('$12')})`), [...values, putOptions.replace === true, now]);
      if (written.rowCount !== 0) return;
      // A present row kept its place. Unless it is unreadable: then it would shadow the key forever.
      const kept = await db.query<EntryRow>(`SELECT ${ENTRY_COLUMNS} FROM ${table('cache_entries')} e WHERE e.key = $1`, [entry.key]);
      const row = kept.rows[0];
      if (row !== undefined && E.isLeft(decodeCacheEntry(rowToCandidate(row), row.key))) {
        // Overwrite that very row only (not one a concurrent writer has just put in its place).
        await db.query(insertOrOverwriteIf('e.run_id = $11 AND e.outputs = $12::jsonb'), [...values, row.run_id, JSON.stringify(row.outputs)]);
      }
    });

  /** A page of runs on the (started_at, id) index; `interrupted` is derived, so read among the running ones. */
  const listRuns = (query: RunQuery = {}): Promise<RunRecord[]> =>
    call('list runs', async (db) => {
      const stored = query.status === 'interrupted' ? 'running' : query.status;
      const limit = query.limit ?? null;
      const runs: RunRecord[] = [];
      let before = query.before ?? null;
      for (;;) {
        const { rows } = await db.query<{ id: string; started_at_iso: string; record: unknown }>(
          `SELECT id, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS started_at_iso, record FROM ${table('runs')}
           WHERE ($1::timestamptz IS NULL OR (started_at, id COLLATE "C") < ($1::timestamptz, $2::text COLLATE "C"))
             AND ($3::text IS NULL OR pipeline = $3) AND ($4::text IS NULL OR status = $4)
           ORDER BY started_at DESC, id COLLATE "C" DESC LIMIT $5`,
          [before === null ? null : timestampOf(before.startedAt), before?.id ?? null, query.pipeline ?? null, stored ?? null, limit ?? 1000],
        );
        for (const row of rows) {
          const run = usable(decodeRunRecord(row.record, row.id));
          if (run === undefined) continue;
          const live = withLiveStatus(run);
          if (query.status === undefined || live.status === query.status) runs.push(live);
          if (limit !== null && runs.length >= limit) return runs;
        }
        const last = rows[rows.length - 1];
        if (last === undefined || rows.length < (limit ?? 1000)) return runs;
        before = { startedAt: last.started_at_iso, id: last.id };
      }
    });

  /** The latest entry of each step, whichever pipeline made it, read with `columns` (whole, or heads). */
  const latestOfSteps = (steps: readonly string[], columns: string): Promise<Array<CacheEntry | undefined>> =>
      call('read the latest entries of steps', async (db) => {
        if (steps.length === 0) return [];
        // One probe per step of the index on (step, created_at DESC), whichever pipeline made the entry.
        const { rows } = await db.query<EntryRow>(
          `SELECT ${columns}
           FROM unnest($1::text[]) AS wanted(step)
           CROSS JOIN LATERAL (
             SELECT * FROM ${table('cache_entries')} latest
             WHERE latest.step = wanted.step AND latest.invalidated_at IS NULL
             ORDER BY latest.created_at DESC, latest.key DESC LIMIT 1
           ) AS e`,
          [[...new Set(steps)]],
        );
        const byStep = new Map(rows.map((row) => [row.step, decodeEntry(row)]));
        return steps.map((s) => byStep.get(s));
      });

  return Object.freeze({
    getEntries: (keys: readonly string[]) =>
      call('read cache entries', async (db) => {
        if (keys.length === 0) return [];
        const { rows } = await db.query<EntryRow>(`SELECT ${ENTRY_COLUMNS} FROM ${table('cache_entries')} e WHERE e.key = ANY($1::text[]) AND ${present('$2')}`, [
          [...new Set(keys)],
          Date.now(),
        ]);
        const byKey = new Map(rows.map((row) => [row.key, decodeEntry(row)]));
        return keys.map((key) => byKey.get(key));
      }),
    getLatestEntries: (pipeline: string, steps: readonly string[]) =>
      call(`read the latest entries of pipeline ${pipeline}`, async (db) => {
        if (steps.length === 0) return [];
        // One index probe per step (pipeline, step, created_at DESC). Expired entries count: the latest
        // entry explains a later miss (what changed), and the runner applies its own expiry.
        const { rows } = await db.query<EntryRow>(
          `SELECT ${ENTRY_COLUMNS}
           FROM unnest($2::text[]) AS wanted(step)
           CROSS JOIN LATERAL (
             SELECT * FROM ${table('cache_entries')} latest
             WHERE latest.pipeline = $1 AND latest.step = wanted.step AND latest.invalidated_at IS NULL
             ORDER BY latest.created_at DESC, latest.key DESC LIMIT 1
           ) AS e`,
          [pipeline, [...new Set(steps)]],
        );
        const byStep = new Map(rows.map((row) => [row.step, decodeEntry(row)]));
        return steps.map((s) => byStep.get(s));
      }),
    getLatestEntriesOfSteps: (steps: readonly string[]) => latestOfSteps(steps, ENTRY_COLUMNS),
    getLatestHeadsOfSteps: (steps: readonly string[]) => latestOfSteps(steps, HEAD_COLUMNS),
    putEntry,
    listEntries: () =>
      call('list cache entries', async (db) => {
        const { rows } = await db.query<EntryRow>(`SELECT ${ENTRY_COLUMNS} FROM ${table('cache_entries')} e WHERE ${present('$1')} ORDER BY e.created_at DESC, e.key DESC`, [
          Date.now(),
        ]);
        return rows.map(decodeEntry).filter((e): e is CacheEntry => e !== undefined);
      }),
    deleteEntries: (entries: readonly CacheEntry[]) =>
      call('delete cache entries', async (db) => {
        if (entries.length === 0) return;
        await db.query(`DELETE FROM ${table('cache_entries')} WHERE key = ANY($1::text[])`, [entries.map((e) => e.key)]);
      }),
    putRun: (run: RunRecord) =>
      call(`record run ${run.id}`, async (db) => {
        const steps = Object.values(run.steps).map((s) => ({
          step: withoutNul(s.name),
          status: s.status,
          key: textWithoutNul(s.key),
          duration_ms: s.durationMs,
          cached_from: textWithoutNul(s.cachedFrom),
          reason: textWithoutNul(s.reason),
          error: textWithoutNul(s.error),
        }));
        // One statement: the run and its steps are written together or not at all.
        await db.query(
          `WITH run AS (
             INSERT INTO ${table('runs')} (id, pipeline, status, started_at, ended_at, duration_ms, parameters, record)
             VALUES ($1, $2, $3, $4::timestamptz, $5::timestamptz, $6, $7::jsonb, $8::json)
             ON CONFLICT (id) DO UPDATE SET pipeline = EXCLUDED.pipeline, status = EXCLUDED.status, started_at = EXCLUDED.started_at,
               ended_at = EXCLUDED.ended_at, duration_ms = EXCLUDED.duration_ms, parameters = EXCLUDED.parameters, record = EXCLUDED.record
             RETURNING id
           ), gone AS (
             DELETE FROM ${table('step_runs')} WHERE run_id = $1 AND NOT (step = ANY($9::text[]))
           )
           INSERT INTO ${table('step_runs')} (run_id, step, status, key, duration_ms, cached_from, reason, error)
           SELECT run.id, s.step, s.status, s.key, s.duration_ms, s.cached_from, s.reason, s.error
           FROM run, jsonb_to_recordset($10::jsonb) AS s(step text, status text, key text, duration_ms float8, cached_from text, reason text, error text)
           ON CONFLICT (run_id, step) DO UPDATE SET status = EXCLUDED.status, key = EXCLUDED.key, duration_ms = EXCLUDED.duration_ms,
             cached_from = EXCLUDED.cached_from, reason = EXCLUDED.reason, error = EXCLUDED.error`,
          [
            run.id,
            withoutNul(run.pipeline),
            run.status,
            timestampOf(run.startedAt),
            timestampOf(run.endedAt),
            run.durationMs ?? null,
            jsonWithoutNul(run.parameters),
            JSON.stringify(run),
            steps.map((s) => s.step),
            JSON.stringify(steps),
          ],
        );
      }),
    readRun,
    getRun: async (id: string) => usable(await readRun(id)),
    stepLock: () => createPostgresStepLock('pool' in options ? options.pool : { url: options.url }, { schema, ...(options.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: options.connectTimeoutMs }) }),
    listRuns,
    listRunSummaries: async (query: RunQuery = {}): Promise<RunSummary[]> => (await listRuns(query)).map(runSummary),
    lastUsed: (keys: readonly string[]) =>
      call('read when cache entries were last used', async (db) => {
        if (keys.length === 0) return new Map<string, number>();
        const { rows } = await db.query<{ key: string; used_ms: number }>(
          `SELECT s.key, (extract(epoch FROM max(r.started_at)) * 1000)::float8 AS used_ms FROM ${table('step_runs')} s JOIN ${table('runs')} r ON r.id = s.run_id
           WHERE s.key = ANY($1::text[]) AND s.status IN ('executed', 'cached') AND r.status <> 'running' GROUP BY s.key`,
          [[...new Set(keys)]],
        );
        return new Map(rows.map((row) => [row.key, row.used_ms]));
      }),
    findDamaged: () =>
      call('look for damaged rows', async (db) => {
        const damaged: DamagedRow[] = [];
        const entries = await db.query<EntryRow>(`SELECT ${ENTRY_COLUMNS} FROM ${table('cache_entries')} e`);
        for (const row of entries.rows) {
          const decoded = decodeCacheEntry(rowToCandidate(row), row.key);
          if (E.isLeft(decoded)) damaged.push({ ...decoded.left, row: `cache_entries:${row.key}` });
        }
        const runs = await db.query<{ id: string; record: unknown }>(`SELECT id, record FROM ${table('runs')}`);
        for (const row of runs.rows) {
          const decoded = decodeRunRecord(row.record, row.id);
          if (E.isLeft(decoded)) damaged.push({ ...decoded.left, row: `runs:${row.id}` });
        }
        return damaged;
      }),
    dropDamaged: (rows: readonly DamagedRow[]) =>
      call('drop damaged rows', async (db) => {
        const named = (prefix: string) => rows.filter((r) => r.row.startsWith(prefix)).map((r) => r.row.slice(prefix.length));
        await db.query(`DELETE FROM ${table('cache_entries')} WHERE key = ANY($1::text[])`, [named('cache_entries:')]);
        await db.query(`WITH gone AS (DELETE FROM ${table('step_runs')} WHERE run_id = ANY($1::text[])) DELETE FROM ${table('runs')} WHERE id = ANY($1::text[])`, [named('runs:')]);
      }),
    findRunIds: (prefix: string, limit: number) =>
      call('find runs', async (db) => {
        const pattern = `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
        const { rows } = await db.query<{ id: string }>(`SELECT id FROM ${table('runs')} WHERE id LIKE $1 ORDER BY id COLLATE "C" LIMIT $2`, [pattern, limit]);
        return rows.map((row) => row.id);
      }),
    deleteRuns: (ids: readonly string[]) =>
      call('delete runs', async (db) => {
        if (ids.length === 0) return;
        await db.query(`WITH gone AS (DELETE FROM ${table('step_runs')} WHERE run_id = ANY($1::text[])) DELETE FROM ${table('runs')} WHERE id = ANY($1::text[])`, [[...ids]]);
      }),
    close: async () => {
      if (!opened.owned || pool.ended) return;
      try {
        await pool.end();
      } catch (e) {
        throw unavailable(opened, 'close its connections', e);
      }
    },
  });
};
