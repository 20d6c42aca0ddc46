/**
 * The PostgreSQL step lock on a real server: mutual exclusion across connections, abandoned waits,
 * a holder that dies (SIGKILL) frees the key, and four processes racing on one pipeline execute
 * each step once.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import pg from 'pg';
import { createPostgresStepLock, type ReleaseLock } from '../src';
import { advisoryKey } from '../src/store/postgres-connection';
import { rejection, removeDir, tempDir } from './support/fixtures';
import { testPostgres, waitUntil, type TestPostgres } from './support/provision/postgres';

const root = path.resolve(__dirname, '..');

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

const KEY = 'ab'.repeat(32);
let namespaces = 0;
/** A lock namespace of its own per test, so tests sharing a server never wait for each other. */
const freshSchema = (): string => `lock_${process.pid}_${++namespaces}_${Math.random().toString(36).slice(2, 8)}`;

/** How many connections wait on the server for the lock of `key` in `schema` right now. */
const waitingFor = async (schema: string, key = KEY): Promise<number> => {
  const { rows } = await admin.query(
    `SELECT count(*) AS n FROM pg_locks
     WHERE locktype = 'advisory' AND NOT granted AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = $1::bigint`,
    [advisoryKey(`stepcache:step:${schema}:${key}`)],
  );
  return Number(rows[0].n);
};

const settled = <A>(p: Promise<A>): { readonly done: () => boolean } => {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  return { done: () => done };
};

describe('the PostgreSQL step lock', () => {
  it('holders on separate connections take turns on one key; other keys are free', async () => {
    const schema = freshSchema();
    const a = createPostgresStepLock({ url: server.url }, { schema });
    const b = createPostgresStepLock({ url: server.url }, { schema });
    const events: string[] = [];
    const releaseA = await a.acquire(KEY);
    events.push('a holds');
    const waiting = b.acquire(KEY).then((release) => {
      events.push('b holds');
      return release;
    });
    await waitUntil('b waits on the server', async () => (await waitingFor(schema)) === 1);
    const other = await b.acquire('cd'.repeat(32)); // another key: no wait
    await other();
    events.push('a releases');
    await releaseA();
    const releaseB = await waiting;
    await releaseB();
    await releaseB(); // harmless
    expect(events).toEqual(['a holds', 'a releases', 'b holds']);
  });

  it('waiters in one process queue in memory and use one connection per key', async () => {
    const schema = freshSchema();
    const lock = createPostgresStepLock({ url: server.url }, { schema });
    const order: number[] = [];
    const first = await lock.acquire(KEY);
    const rest = [1, 2, 3].map((i) =>
      lock.acquire(KEY).then(async (release) => {
        order.push(i);
        await release();
      }),
    );
    expect(await waitingFor(schema)).toBe(0); // the others wait in memory, not on the server
    await first();
    await Promise.all(rest);
    expect(order).toEqual([1, 2, 3]);
  });

  it('an aborted wait rejects with the signal reason, holds nothing, and leaves the key usable', async () => {
    const schema = freshSchema();
    const holder = createPostgresStepLock({ url: server.url }, { schema });
    const waiter = createPostgresStepLock({ url: server.url }, { schema });
    const release = await holder.acquire(KEY);
    const controller = new AbortController();
    const waiting = waiter.acquire(KEY, { signal: controller.signal });
    const observed = waiting.catch((e: unknown) => e);
    await waitUntil('the waiter waits on the server', async () => (await waitingFor(schema)) === 1);
    controller.abort(new Error('gave up'));
    expect(await observed).toEqual(new Error('gave up'));
    await waitUntil('the abandoned wait is gone from the server', async () => (await waitingFor(schema)) === 0);
    await release();
    await (await waiter.acquire(KEY))();
    await expect(waiter.acquire(KEY, { signal: AbortSignal.abort(new Error('already')) })).rejects.toEqual(new Error('already'));
  });

  it('a holder process killed with SIGKILL frees the key', async () => {
    const schema = freshSchema();
    const child: ChildProcessWithoutNullStreams = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'test/support/postgres-lock-child.ts'), server.url, schema, KEY], { cwd: root });
    try {
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      await waitUntil('the child holds the key', async () => stdout.includes('held'), 60_000);
      const lock = createPostgresStepLock({ url: server.url }, { schema });
      const waiting = lock.acquire(KEY);
      const state = settled(waiting);
      await waitUntil('this process waits on the server', async () => (await waitingFor(schema)) === 1);
      expect(state.done()).toBe(false);
      child.kill('SIGKILL');
      const release: ReleaseLock = await waiting;
      await release();
    } finally {
      child.kill('SIGKILL');
    }
  }, 90_000);

  it('a server it cannot reach: STORE_UNAVAILABLE naming the lock and the server, without the password', async () => {
    const url = new URL(server.url);
    url.port = '1';
    const error = await rejection(createPostgresStepLock({ url: url.toString() }).acquire(KEY));
    expect(error.code).toBe('STORE_UNAVAILABLE');
    expect(error.message).toContain(`PostgreSQL step lock at postgres://stepcache:***@127.0.0.1:1/postgres could not take the lock on step key ${KEY}`);
    expect(error.message).not.toContain(server.password);
  });

  it('accepts the pool of a metadata store, and its waits outlive the pool\'s query timeout', async () => {
    const pool = new pg.Pool({ connectionString: server.url, query_timeout: 200 });
    try {
      const schema = freshSchema();
      const a = createPostgresStepLock(pool, { schema });
      const release = await a.acquire(KEY);
      const waiting = createPostgresStepLock(pool, { schema }).acquire(KEY);
      await waitUntil('the second waits', async () => (await waitingFor(schema)) === 1);
      // the wait is longer than the pool's query timeout: it must still be waiting, not failed
      await (await admin.query('SELECT pg_sleep(0.4)'));
      expect(await waitingFor(schema)).toBe(1);
      await release();
      await (await waiting)();
    } finally {
      await pool.end();
    }
  });
});

describe('four processes sharing a PostgreSQL store and lock', () => {
  const runChild = (schema: string, artifacts: string, log: string): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'test/support/postgres-run.ts'), server.url, schema, artifacts, log], { cwd: root });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });

  it('race for the same steps: each executes once, the others are served its entry', async () => {
    const dir = tempDir();
    const log = path.join(dir, 'executions.log');
    const schema = freshSchema();
    try {
      const results = await Promise.all(Array.from({ length: 4 }, () => runChild(schema, path.join(dir, 'shared'), log)));
      for (const r of results) {
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
      }
      const executions = fs.readFileSync(log, 'utf8').trim().split('\n').map((line) => line.split(' ')[0]);
      expect(executions.sort()).toEqual(['load_rows', 'train_model']);
      const outputs = results.map((r) => JSON.parse(r.stdout.trim()) as { statuses: Record<string, string>; model: unknown });
      expect(new Set(outputs.map((o) => JSON.stringify(o.model))).size).toBe(1);
      for (const name of ['load_rows', 'train_model']) {
        expect(outputs.filter((o) => o.statuses[name] === 'executed')).toHaveLength(1);
        expect(outputs.filter((o) => o.statuses[name] === 'cached')).toHaveLength(3);
      }
      const rows = await admin.query(`SELECT step FROM "${schema}".cache_entries ORDER BY step`);
      expect(rows.rows.map((r) => r.step)).toEqual(['load_rows', 'train_model']);
      const runs = await admin.query(`SELECT count(*) AS n FROM "${schema}".runs WHERE status = 'completed'`);
      expect(Number(runs.rows[0].n)).toBe(4);
    } finally {
      removeDir(dir);
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    }
  }, 120_000);
});
