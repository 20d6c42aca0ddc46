/**
 * The PostgreSQL server stopped in the middle of a run (`pg_ctl stop -m immediate`, a crash): the
 * run fails with a typed STORE_UNAVAILABLE naming the server without its password, nothing
 * half-written is served afterwards, and once the server is back the same runner works again.
 * This file starts a server of its own, since it stops it.
 */
import pg from 'pg';
import { createFileArtifactStore, createPostgresMetadataStore, createPostgresStepLock, createRunner, pipeline, step, type Runner } from '../src';
import { collectingLogger, rejection, removeDir, tempDir } from './support/fixtures';
import { testPostgres, waitUntil, type TestPostgres } from './support/provision/postgres';

let server: TestPostgres;
let dir: string;
beforeAll(async () => {
  server = await testPostgres({ own: true });
  dir = tempDir();
}, 120_000);
afterAll(async () => {
  await server?.dispose();
  removeDir(dir);
});

const executions: string[] = [];
let crashDuring: string | undefined;
const crashIfAsked = async (name: string): Promise<void> => {
  executions.push(name);
  if (crashDuring === name) {
    crashDuring = undefined;
    await server.stop('immediate');
  }
};
const load = step(async function load_rows() {
  await crashIfAsked('load_rows');
  return [1, 2, 3];
});
const train = step(async function train_model({ rows }: { rows: number[] }) {
  await crashIfAsked('train_model');
  return { sum: rows.reduce((a, b) => a + b, 0) };
});
const p = pipeline('crashing', (p) => ({ model: p.call(train, { rows: p.call(load) }) }));

const teamRunner = (): Runner =>
  createRunner({
    dir,
    logger: collectingLogger(),
    metadata: createPostgresMetadataStore({ url: server.url, connectTimeoutMs: 2_000, queryTimeoutMs: 5_000 }),
    artifacts: createFileArtifactStore(`${dir}/artifacts`),
    lock: createPostgresStepLock({ url: server.url }, { connectTimeoutMs: 2_000 }),
  });

const entriesOf = async (): Promise<Array<{ step: string; run_id: string }>> => {
  const client = new pg.Client({ connectionString: server.url });
  await client.connect();
  try {
    return (await client.query<{ step: string; run_id: string }>('SELECT step, run_id FROM stepcache.cache_entries ORDER BY step')).rows;
  } finally {
    await client.end();
  }
};

describe('the PostgreSQL server stopped mid-run', () => {
  it('fails the run with STORE_UNAVAILABLE, serves nothing half-written, and works again after a restart', async () => {
    const runner = teamRunner();
    try {
      executions.length = 0;
      crashDuring = 'train_model';
      const error = await rejection(runner.run(p));
      expect(error.code).toBe('STORE_UNAVAILABLE');
      expect(error.message).toContain('postgres://stepcache:***@127.0.0.1:');
      expect(error.message).not.toContain(server.password);
      expect(executions).toEqual(['load_rows', 'train_model']);

      // While it is down: every call is a typed error too, never a raw driver error.
      await expect(runner.listRuns()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
      await expect(runner.run(p)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });

      await server.start();
      // Only what was committed before the crash is there: the first step's entry, not the second's.
      expect((await entriesOf()).map((e) => e.step)).toEqual(['load_rows']);

      executions.length = 0;
      const again = await runner.run(p);
      expect(again.steps.load_rows?.status).toBe('cached');
      expect(again.steps.train_model?.status).toBe('executed');
      expect(await again.output('model')).toEqual({ sum: 6 });
      expect(executions).toEqual(['train_model']);
      const third = await runner.run(p);
      expect(Object.values(third.steps).map((s) => s.status)).toEqual(['cached', 'cached']);
      expect((await runner.getRun(again.id))?.status).toBe('completed');
    } finally {
      await runner.close();
    }
  }, 120_000);

  it('a crash while a store call is in flight: the call fails typed, the store recovers after a restart', async () => {
    const store = createPostgresMetadataStore({ url: server.url, schema: 'in_flight', connectTimeoutMs: 2_000, queryTimeoutMs: 5_000 });
    try {
      await store.listRuns(); // connected and migrated
      const admin = new pg.Client({ connectionString: server.url });
      await admin.connect();
      // Hold the runs table, so the next write is in flight (waiting on the server) when the server dies.
      await admin.query('BEGIN; LOCK TABLE in_flight.runs IN ACCESS EXCLUSIVE MODE');
      admin.on('error', () => undefined);
      const writing = store.putRun({ id: 'r1', pipeline: 'p', parameters: {}, status: 'running', startedAt: new Date().toISOString(), steps: {}, outputs: {} });
      const observed = writing.catch((e: unknown) => e);
      const waitingClient = new pg.Client({ connectionString: server.url });
      await waitingClient.connect();
      await waitUntil('the write waits on the server', async () => {
        const { rows } = await waitingClient.query(`SELECT count(*) AS n FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'runs' AND NOT l.granted`);
        return Number(rows[0].n) > 0;
      }, 30_000, 20);
      waitingClient.on('error', () => undefined);
      await server.stop('immediate');
      expect(await observed).toMatchObject({ code: 'STORE_UNAVAILABLE' });
      await server.start();
      expect(await store.getRun('r1')).toBeUndefined(); // never committed
      await store.putRun({ id: 'r2', pipeline: 'p', parameters: {}, status: 'completed', startedAt: new Date().toISOString(), steps: {}, outputs: {} });
      expect((await store.listRuns()).map((r) => r.id)).toEqual(['r2']);
    } finally {
      await store.close();
    }
  }, 120_000);
});
