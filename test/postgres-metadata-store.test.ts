/**
 * The PostgreSQL metadata store on a real server: the metadata store contract, then what only a
 * shared server has (real tables, migrations once under concurrency, one query per batch,
 * reports of damaged rows, errors that name the server without its password).
 */
import pg from 'pg';
import { createFileArtifactStore, createPostgresMetadataStore, createRunner, pipeline, step, StepcacheError, type MetadataStore } from '../src';
import { redactPostgresUrl } from '../src/store/postgres-connection';
import { migrate, MIGRATIONS } from '../src/store/postgres-schema';
import type { DamagedRecord } from '../src/store/records';
import { entryOf, metadataStoreContract } from './contract/metadata-store.contract';
import { testPostgres, type TestPostgres } from './support/provision/postgres';
import { collectingLogger, rejection, removeDir, tempDir } from './support/fixtures';

let server: TestPostgres;
let admin: pg.Pool;
beforeAll(async () => {
  server = await testPostgres();
  admin = new pg.Pool({ connectionString: server.url });
}, 120_000);
afterAll(async () => {
  await admin?.end();
  await server?.dispose();
});

let schemas = 0;
const freshSchema = (): string => `test_${process.pid}_${++schemas}_${Math.random().toString(36).slice(2, 8)}`;
const dropSchema = (schema: string): Promise<unknown> => admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);

metadataStoreContract('PostgreSQL', async () => {
  const schema = freshSchema();
  const store = createPostgresMetadataStore({ url: server.url, schema, onDamaged: () => undefined });
  return {
    store,
    damageEntry: async (key) => {
      await admin.query(`UPDATE "${schema}".cache_entries SET outputs = '{"model": {"id": 5}}' WHERE key = $1`, [key]);
    },
    damageRun: async (id) => {
      await admin.query(`UPDATE "${schema}".runs SET record = '{"id": "x", "steps": 42}' WHERE id = $1`, [id]);
    },
    dispose: async () => {
      await store.close();
      await dropSchema(schema);
    },
  };
});

describe('the PostgreSQL metadata store', () => {
  const opened: Array<{ store: MetadataStore; schema: string }> = [];
  const open = (options: { schema?: string; onDamaged?: (damage: DamagedRecord) => void; pool?: pg.Pool } = {}) => {
    const schema = options.schema ?? freshSchema();
    const store =
      options.pool === undefined
        ? createPostgresMetadataStore({ url: server.url, schema, ...(options.onDamaged ? { onDamaged: options.onDamaged } : {}) })
        : createPostgresMetadataStore({ pool: options.pool, schema });
    opened.push({ store, schema });
    return { store, schema };
  };
  afterEach(async () => {
    for (const { store, schema } of opened.splice(0)) {
      await store.close();
      await dropSchema(schema);
    }
  });

  it('keeps real tables with the indexes that listing, explaining and pruning need', async () => {
    const { store, schema } = open();
    await store.listRuns();
    const tables = await admin.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`, [schema]);
    expect(tables.rows.map((r) => r.table_name)).toEqual(['cache_entries', 'runs', 'schema_migrations', 'step_runs']);
    const indexes = await admin.query(`SELECT indexdef FROM pg_indexes WHERE schemaname = $1`, [schema]);
    const defs = indexes.rows.map((r) => String(r.indexdef).replace(/^.* USING btree /, ''));
    expect(defs).toEqual(
      expect.arrayContaining(['(started_at DESC, id DESC)', '(pipeline, started_at DESC)', '(pipeline, step, created_at DESC)', '(step, created_at DESC)', '(created_at)']),
    );
  });

  it('stores runs with one row per step, queryable', async () => {
    const { store, schema } = open();
    await store.putRun({
      id: 'r1',
      pipeline: 'training',
      parameters: { gamma: 0.1 },
      status: 'completed',
      startedAt: '2026-01-01T00:00:00.000Z',
      endedAt: '2026-01-01T00:00:01.500Z',
      durationMs: 1500,
      steps: {
        loader: { name: 'loader', status: 'cached', durationMs: 1, key: 'k1', cachedFrom: 'r0' },
        trainer: { name: 'trainer', status: 'executed', durationMs: 1400, key: 'k2', reason: 'its code changed' },
      },
      outputs: {},
    });
    const steps = await admin.query(`SELECT step, status, key, cached_from, reason FROM "${schema}".step_runs WHERE run_id = 'r1' ORDER BY step`);
    expect(steps.rows).toEqual([
      { step: 'loader', status: 'cached', key: 'k1', cached_from: 'r0', reason: null },
      { step: 'trainer', status: 'executed', key: 'k2', cached_from: null, reason: 'its code changed' },
    ]);
    const run = await admin.query(`SELECT status, duration_ms, parameters->>'gamma' AS gamma, ended_at - started_at AS took FROM "${schema}".runs`);
    expect(run.rows[0]).toMatchObject({ status: 'completed', duration_ms: 1500, gamma: '0.1' });
  });

  it('processes connecting at once to a new schema migrate it once', async () => {
    const schema = freshSchema();
    const stores = Array.from({ length: 6 }, () => open({ schema }).store);
    await Promise.all(stores.map((s) => s.listEntries()));
    const applied = await admin.query(`SELECT version FROM "${schema}".schema_migrations ORDER BY version`);
    expect(applied.rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
  });

  it('a later migration is applied once to an existing schema, by one of the processes connecting at once', async () => {
    const schema = freshSchema();
    const { store } = open({ schema });
    await store.putEntry(entryOf({ runId: 'before' }));
    const next = { version: MIGRATIONS.length + 1, name: 'a column for a test', sql: 'ALTER TABLE cache_entries ADD COLUMN note text' };
    const pools = Array.from({ length: 4 }, () => new pg.Pool({ connectionString: server.url }));
    try {
      await Promise.all(pools.map((pool) => migrate(pool, schema, [...MIGRATIONS, next])));
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
    }
    const applied = await admin.query(`SELECT version, name FROM "${schema}".schema_migrations ORDER BY version`);
    expect(applied.rows.map((r) => r.version)).toEqual([...MIGRATIONS.map((m) => m.version), next.version]);
    const rows = await admin.query(`SELECT run_id, note FROM "${schema}".cache_entries`);
    expect(rows.rows).toEqual([{ run_id: 'before', note: null }]);
    expect((await store.listEntries()).map((e) => e.runId)).toEqual(['before']);
  });

  it('a migration that fails leaves nothing half-applied and frees the migration lock', async () => {
    const schema = freshSchema();
    const broken = { version: MIGRATIONS.length + 1, name: 'broken', sql: 'ALTER TABLE cache_entries ADD COLUMN half text; SELECT no_such_function()' };
    const pool = new pg.Pool({ connectionString: server.url });
    try {
      await expect(migrate(pool, schema, [...MIGRATIONS, broken])).rejects.toThrow(/no_such_function/);
      const columns = await admin.query(`SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND column_name = 'half'`, [schema]);
      expect(columns.rows).toEqual([]);
      const applied = await admin.query(`SELECT version FROM "${schema}".schema_migrations ORDER BY version`);
      expect(applied.rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
      await migrate(pool, schema); // the advisory lock was freed with the failed connection
    } finally {
      await pool.end();
      await dropSchema(schema);
    }
  });

  it('the latest entry is the newest by creation time, whatever the order of the writes', async () => {
    const { store } = open();
    const newer = entryOf({ step: 'trainer' }, 1_000);
    const older = entryOf({ step: 'trainer' }, 5_000);
    await store.putEntry(newer);
    await store.putEntry(older);
    expect(await store.getLatestEntries('training', ['trainer'])).toEqual([newer]);
  });

  it('stores in two processes (two pools) writing one key at once keep one row, the first', async () => {
    const schema = freshSchema();
    const a = open({ schema }).store;
    const b = open({ schema }).store;
    const base = entryOf();
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).putEntry({ ...base, runId: `w${i}` })));
    const rows = await admin.query(`SELECT run_id FROM "${schema}".cache_entries WHERE key = $1`, [base.key]);
    expect(rows.rows).toHaveLength(1);
    expect(await a.getEntries([base.key])).toEqual(await b.getEntries([base.key]));
  });

  it('reads a batch of keys, and the latest entries of many steps, in one query each', async () => {
    const pool = new pg.Pool({ connectionString: server.url });
    try {
      const { store } = open({ pool });
      const entries = Array.from({ length: 500 }, (_, i) => entryOf({ step: `s${i % 50}` }, i));
      for (const e of entries) await store.putEntry(e);
      const queries: string[] = [];
      const query = pool.query.bind(pool);
      (pool as { query: unknown }).query = (...args: Parameters<typeof query>) => {
        queries.push(String(args[0]));
        return query(...args);
      };
      expect(await store.getEntries(entries.map((e) => e.key))).toEqual(entries);
      const latest = await store.getLatestEntries('training', Array.from({ length: 50 }, (_, i) => `s${i}`));
      expect(latest.map((e) => e?.key)).toEqual(entries.slice(0, 50).map((e) => e.key));
      expect(queries).toHaveLength(2);
    } finally {
      await pool.end();
    }
  });

  it('reports a damaged row with its table, key and field, and skips it', async () => {
    const reports: DamagedRecord[] = [];
    const { store, schema } = open({ onDamaged: (r) => reports.push(r) });
    const entry = entryOf();
    await store.putEntry(entry);
    await admin.query(`UPDATE "${schema}".cache_entries SET outputs = '{"model": {"id": "a", "kind": "bytes", "size": "big", "format": "auto"}}' WHERE key = $1`, [entry.key]);
    expect(await store.getEntries([entry.key])).toEqual([undefined]);
    expect(reports).toEqual([expect.objectContaining({ _tag: 'DamagedRecord', record: 'cache entry', id: entry.key })]);
    expect(reports[0]?.message).toContain('outputs.model.size');
    expect(reports[0]?.message).toContain('"big"');
  });

  it('an entry withdrawn by an operator (invalidated_at) is absent, and the next write replaces it', async () => {
    const { store, schema } = open();
    const entry = entryOf();
    await store.putEntry(entry);
    await admin.query(`UPDATE "${schema}".cache_entries SET invalidated_at = now() WHERE key = $1`, [entry.key]);
    expect(await store.getEntries([entry.key])).toEqual([undefined]);
    expect(await store.getLatestEntries('training', ['svc_trainer'])).toEqual([undefined]);
    const again = { ...entry, runId: 'again' };
    await store.putEntry(again);
    expect(await store.getEntries([entry.key])).toEqual([again]);
  });

  it('a colleague\'s runner (another store on the same server) is served every step, signed entries verifying', async () => {
    const schema = freshSchema();
    const dir = tempDir();
    let executions = 0;
    const train = step(function train_model({ lr }: { lr: number }) {
      executions++;
      return { weights: [lr * 2, lr * 3], note: 'model' };
    });
    const p = pipeline('team', (p, { lr = 0.1 }: { lr?: number }) => ({ model: p.call(train, { lr }) }));
    const machine = () => {
      const logger = collectingLogger();
      const runner = createRunner({ dir, logger, secret: 'team-secret', metadata: open({ schema }).store, artifacts: createFileArtifactStore(`${dir}/artifacts`) });
      return { runner, logger };
    };
    try {
      const mine = machine();
      await mine.runner.run(p);
      const theirs = machine();
      const run = await theirs.runner.run(p);
      expect(run.steps.train_model?.status).toBe('cached');
      expect(theirs.logger.warnings).toEqual([]);
      expect(theirs.logger.lines).toContain('Using cached version of train_model.');
      expect(executions).toBe(1);
      const changed = await theirs.runner.run(p, { lr: 0.2 });
      expect(changed.steps.train_model?.reason).toContain('lr');
      const listed = await mine.runner.listRuns();
      expect(listed).toHaveLength(3);
      expect(listed.slice(0, 2).map((r) => r.id)).toEqual([changed.id, run.id]);
    } finally {
      removeDir(dir);
    }
  });

  describe('errors', () => {
    it('a server that refuses connections: STORE_UNAVAILABLE naming the server by its URL without the password', async () => {
      const url = new URL(server.url);
      url.port = '1';
      const store = createPostgresMetadataStore({ url: url.toString(), connectTimeoutMs: 2_000 });
      const error = await rejection(store.getEntries(['ab']));
      expect(error).toBeInstanceOf(StepcacheError);
      expect(error).toMatchObject({ code: 'STORE_UNAVAILABLE' });
      const { message } = error;
      expect(message).toContain(`postgres://stepcache:***@127.0.0.1:1/postgres`);
      expect(message).toContain('could not read cache entries');
      expect(message).not.toContain(server.password);
      expect(String(error.cause)).not.toContain(server.password);
      await expect(store.close()).resolves.toBeUndefined();
    });

    it('a wrong password: STORE_UNAVAILABLE, and neither password is shown', async () => {
      const url = new URL(server.url);
      url.password = 'wrong-password-1234';
      const store = createPostgresMetadataStore({ url: url.toString() });
      const error = await rejection(store.putRun({ id: 'r', pipeline: 'p', parameters: {}, status: 'running', startedAt: new Date().toISOString(), steps: {}, outputs: {} }));
      expect(error).toMatchObject({ code: 'STORE_UNAVAILABLE' });
      expect(error.message).toMatch(/could not record run r: .*password authentication failed/);
      expect(error.message).not.toContain('wrong-password-1234');
      expect(error.message).not.toContain(server.password);
      await store.close();
    });

    it('a store given a pool names the server from the pool, and leaves the pool to its owner', async () => {
      const pool = new pg.Pool({ host: '127.0.0.1', port: 1, user: 'ann', password: 'hunter2-secret', database: 'ml', connectionTimeoutMillis: 2_000 });
      const store = createPostgresMetadataStore({ pool });
      const error = await rejection(store.listRuns());
      expect(error.message).toContain('postgres://ann:***@127.0.0.1:1/ml');
      expect(error.message).not.toContain('hunter2-secret');
      await store.close();
      expect(pool.ended).toBe(false);
      await pool.end();
    });

    it('close never rejects with a driver error, and a closed store reports STORE_UNAVAILABLE', async () => {
      const { store } = open();
      await store.listRuns();
      await store.close();
      await expect(store.close()).resolves.toBeUndefined();
      await expect(store.listRuns()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    });
  });

  it('redacts passwords in URLs it cannot parse as well as in those it can', () => {
    expect(redactPostgresUrl('postgres://ann:hunter2@db.team:5432/ml?sslmode=require&password=x')).toBe('postgres://ann:***@db.team:5432/ml');
    expect(redactPostgresUrl('postgres://ann@db.team/ml')).toBe('postgres://ann@db.team/ml');
    expect(redactPostgresUrl('postgres://ann:hun ter2@[bad/ml')).not.toContain('hun ter2');
  });
});
