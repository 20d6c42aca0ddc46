/**
 * A store this process may not write (a read-only mount, a CI cache restored read-only), and the
 * `readOnly` option that asks for the same on a writable store: hits are served, misses are
 * computed and handed on but not stored, one `read-only-store` warning says so, and the run
 * succeeds. Nothing is written: no entries, no run records, no locks, no fingerprints.
 *
 * Root writes anywhere, whatever the modes say: as root, the runs on read-only folders are made
 * by a child process of an unprivileged user (uid 65534, `nobody`); if that child cannot start,
 * the test fails saying so.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import pg from 'pg';
import { createFileArtifactStore, createPostgresMetadataStore, createRunner, createSqliteMetadataStore, silentLogger, type MetadataStore, type RunEvent } from '../src';
import { contentHashing } from '../src/hash/hashers';
import { isWriteRefused, readOnlyArtifactStore, readOnlyMetadataStore, readOnlyMode } from '../src/store/read-only-store';
import { storeLayout } from '../src/store/layout';
import { readOnlyExpected, readOnlyPipeline } from './support/read-only-pipeline';
import { filesBelow, storePerTest } from './support/fixtures';
import { testPostgres, type TestPostgres } from './support/provision/postgres';

const ROOT = path.join(__dirname, '..');
const CHILD = path.join(__dirname, 'support', 'read-only-run.ts');
const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;

interface ChildOutcome {
  readonly outputs?: { readonly doubled: number; readonly result: string };
  readonly statuses?: Record<string, string>;
  readonly warnings?: ReadonlyArray<{ readonly kind: string; readonly message: string }>;
  readonly recorded?: boolean;
  readonly error?: string;
}

/** One run in a child process that may not write what the modes forbid (an unprivileged user when this is root). */
const runAsOrdinaryUser = (dir: string, x: number): Promise<ChildOutcome> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, String(x)], { cwd: ROOT, ...(asRoot ? { uid: NOBODY, gid: NOBODY } : {}), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => void (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => void (err += d.toString()));
    child.on('error', (e) => reject(new Error(`The read-only store test needs a child process of an unprivileged user (uid ${NOBODY}) when run as root, and it could not start: ${e.message}`)));
    child.on('exit', (code) => {
      const lines = out.trim().split('\n');
      try {
        resolve(JSON.parse(lines[lines.length - 1] ?? '') as ChildOutcome);
      } catch {
        reject(new Error(`The read-only run exited with ${String(code)} without an outcome:\n${out}\n${err}`));
      }
    });
  });

/** Every file and folder below `dir` with its size and modification time: what a run must leave as it is. */
const snapshot = (dir: string): Record<string, string> =>
  Object.fromEntries(
    (fs.readdirSync(dir, { recursive: true }) as string[]).sort().map((f) => {
      const s = fs.statSync(path.join(dir, f));
      return [f, s.isDirectory() ? 'folder' : `${s.size} ${s.mtimeMs}`];
    }),
  );

/** Removes the write permission of every file and folder below `dir`, and of `dir`. */
const makeReadOnly = (dir: string): void => {
  for (const f of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const file = path.join(dir, f);
    fs.chmodSync(file, fs.statSync(file).isDirectory() ? 0o555 : 0o444);
  }
  fs.chmodSync(dir, 0o555);
};

/** Gives the write permission back (so that the folder can be removed). */
const makeWritable = (dir: string): void => {
  fs.chmodSync(dir, 0o755);
  for (const f of fs.readdirSync(dir, { recursive: true }) as string[]) fs.chmodSync(path.join(dir, f), 0o755);
};

const store = storePerTest();

/** The store with a run of x = 1 recorded, made by a writable runner. */
const storeWithOneRun = async (): Promise<string> => {
  const dir = store.dir();
  fs.chmodSync(dir, 0o755);
  const runner = createRunner({ dir, logger: silentLogger });
  await runner.run(readOnlyPipeline, { x: 1 });
  await runner.close();
  return dir;
};

const readOnlyWarnings = (warnings: ChildOutcome['warnings']) => (warnings ?? []).filter((w) => w.kind === 'read-only-store');

describe('a store folder this process may not write', () => {
  afterEach(() => makeWritable(store.dir()));

  it('serves hits, computes misses without storing them, warns once naming the folder, and writes nothing', async () => {
    const dir = await storeWithOneRun();
    makeReadOnly(dir);
    const before = snapshot(dir);

    const cached = await runAsOrdinaryUser(dir, 1);
    expect(cached.error).toBeUndefined();
    expect(cached.outputs).toEqual(readOnlyExpected(1));
    expect(cached.statuses).toEqual({ ro_double: 'cached', ro_increment: 'cached', ro_label: 'cached' });

    const missed = await runAsOrdinaryUser(dir, 2);
    expect(missed.error).toBeUndefined();
    expect(missed.outputs).toEqual(readOnlyExpected(2));
    expect(missed.statuses).toEqual({ ro_double: 'executed', ro_increment: 'executed', ro_label: 'executed' });
    const [warning, ...more] = readOnlyWarnings(missed.warnings);
    expect(more).toEqual([]);
    expect(warning?.message).toContain(dir);
    expect(warning?.message).toMatch(/not stored/);
    expect(warning?.message).toMatch(/not recorded/);
    expect(missed.recorded).toBe(false);
    expect(snapshot(dir)).toEqual(before);
  });

  it('a metadata file this process may not write (its folder writable): the same', async () => {
    const dir = await storeWithOneRun();
    const file = storeLayout(dir).metadataFile;
    for (const f of fs.readdirSync(dir, { recursive: true }) as string[]) fs.chmodSync(path.join(dir, f), 0o777);
    fs.chmodSync(dir, 0o777);
    fs.chmodSync(file, 0o444);
    const before = fs.statSync(file).mtimeMs;

    const missed = await runAsOrdinaryUser(dir, 3);
    expect(missed.error).toBeUndefined();
    expect(missed.outputs).toEqual(readOnlyExpected(3));
    const [warning, ...more] = readOnlyWarnings(missed.warnings);
    expect(more).toEqual([]);
    expect(warning?.message).toContain(file);
    expect(fs.statSync(file).mtimeMs).toBe(before);
    // served again: nothing was stored
    expect((await runAsOrdinaryUser(dir, 3)).statuses).toEqual({ ro_double: 'executed', ro_increment: 'executed', ro_label: 'executed' });
  });
});

describe('the readOnly option on a writable store', () => {
  const runWith = async (options: { readonly readOnly?: boolean }, x: number, env?: Record<string, string>) => {
    const events: RunEvent[] = [];
    const saved = process.env['STEPCACHE_READ_ONLY'];
    if (env?.['STEPCACHE_READ_ONLY'] !== undefined) process.env['STEPCACHE_READ_ONLY'] = env['STEPCACHE_READ_ONLY'];
    try {
      const runner = createRunner({ dir: store.dir(), logger: silentLogger, onEvent: (e) => void events.push(e), ...options });
      const run = await runner.run(readOnlyPipeline, { x });
      const outputs = { doubled: await run.output('doubled'), result: await run.output('result') };
      const recorded = (await runner.getRun(run.id)) !== undefined;
      await runner.close();
      return { run, outputs, recorded, warnings: events.flatMap((e) => (e.type === 'warning' && e.kind === 'read-only-store' ? [e.message] : [])) };
    } finally {
      if (saved === undefined) delete process.env['STEPCACHE_READ_ONLY'];
      else process.env['STEPCACHE_READ_ONLY'] = saved;
    }
  };

  it('writes nothing: no entries, no run record, no locks, no fingerprints; hits are served and misses handed on', async () => {
    const dir = await storeWithOneRun();
    const before = snapshot(dir);
    const cached = await runWith({ readOnly: true }, 1);
    expect(cached.outputs).toEqual(readOnlyExpected(1));
    expect(Object.values(cached.run.steps).map((s) => s.status)).toEqual(['cached', 'cached', 'cached']);
    const missed = await runWith({ readOnly: true }, 2);
    expect(missed.outputs).toEqual(readOnlyExpected(2));
    expect(missed.warnings).toHaveLength(1);
    expect(missed.warnings[0]).toMatch(/readOnly/);
    expect(missed.recorded).toBe(false);
    expect(snapshot(dir)).toEqual(before);
    // a writable runner still finds x = 2 a miss: nothing was stored
    expect(Object.values((await runWith({}, 2)).run.steps).map((s) => s.status)).toEqual(['executed', 'executed', 'executed']);
  });

  it('STEPCACHE_READ_ONLY=true asks for the same', async () => {
    const dir = await storeWithOneRun();
    const before = snapshot(dir);
    const missed = await runWith({}, 4, { STEPCACHE_READ_ONLY: 'true' });
    expect(missed.outputs).toEqual(readOnlyExpected(4));
    expect(missed.warnings).toHaveLength(1);
    expect(missed.warnings[0]).toContain('STEPCACHE_READ_ONLY');
    expect(snapshot(dir)).toEqual(before);
  });
});

describe('a store that rejects writes as it goes (a database role without INSERT)', () => {
  it('turns read-only at the first rejected write: one warning, the run succeeds', async () => {
    const dir = store.dir();
    const real = createSqliteMetadataStore(storeLayout(dir).metadataFile);
    const denied = (): Promise<never> => Promise.reject(Object.assign(new Error('permission denied for table keyv'), { code: '42501' }));
    const metadata: MetadataStore = { ...real, putEntry: denied, putRun: denied };
    const events: RunEvent[] = [];
    const runner = store.keep(createRunner({ dir, metadata, logger: silentLogger, onEvent: (e) => void events.push(e) }));
    const run = await runner.run(readOnlyPipeline, { x: 5 });
    expect(await run.output('result')).toBe(readOnlyExpected(5).result);
    const warnings = events.filter((e) => e.type === 'warning' && e.kind === 'read-only-store');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ message: expect.stringContaining('permission denied') as string });
  });
});

describe('cache maintenance on a read-only store', () => {
  it('prune and clear fail saying the store is read-only, and remove nothing; list works', async () => {
    const dir = await storeWithOneRun();
    const artifacts = filesBelow(storeLayout(dir).artifactsDir);
    const runner = store.keep(createRunner({ dir, logger: silentLogger, readOnly: true }));
    expect((await runner.cache.list()).length).toBe(3);
    await expect(runner.cache.clear()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', message: expect.stringContaining('is read-only') as string });
    await expect(runner.cache.prune({ step: 'ro_double' })).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect((await runner.cache.list()).length).toBe(3);
    expect(filesBelow(storeLayout(dir).artifactsDir)).toEqual(artifacts);
  });
});

describe('a PostgreSQL metadata store through a role without INSERT', () => {
  let server: TestPostgres | undefined;
  afterAll(async () => {
    await server?.dispose();
  });

  it('serves hits, computes misses and warns once that the store refused a write', async () => {
    server = await testPostgres();
    const schema = `read_only_${process.pid}`;
    const owner = createRunner({ dir: store.dir(), logger: silentLogger, metadata: createPostgresMetadataStore({ url: server.url, schema }) });
    await owner.run(readOnlyPipeline, { x: 1 });
    await owner.close();
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    const role = `reader_${process.pid}`;
    try {
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'reader-password'`);
      await admin.query(`GRANT USAGE ON SCHEMA ${schema} TO ${role}`);
      await admin.query(`GRANT SELECT ON ALL TABLES IN SCHEMA ${schema} TO ${role}`);
    } finally {
      await admin.end();
    }
    const url = new URL(server.url);
    url.username = role;
    url.password = 'reader-password';
    const events: RunEvent[] = [];
    const reader = store.keep(createRunner({ dir: store.dir(), logger: silentLogger, onEvent: (e) => void events.push(e), metadata: createPostgresMetadataStore({ url: url.toString(), schema }) }));

    const cached = await reader.run(readOnlyPipeline, { x: 1 });
    expect(Object.values(cached.steps).map((s) => s.status)).toEqual(['cached', 'cached', 'cached']);
    events.length = 0;
    const missed = await reader.run(readOnlyPipeline, { x: 2 });
    expect({ doubled: await missed.output('doubled'), result: await missed.output('result') }).toEqual(readOnlyExpected(2));
    const warnings = events.filter((e) => e.type === 'warning' && e.kind === 'read-only-store');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ message: expect.stringContaining('permission denied') as string });
  }, 120_000);
});

// the parts

describe('readOnlyMode, isWriteRefused', () => {
  it('keeps the first reason', () => {
    const mode = readOnlyMode(undefined);
    expect(mode.why()).toBeUndefined();
    mode.enter('first');
    mode.enter('second');
    expect(mode.why()).toBe('first');
  });

  it('knows a refused write by its code, also as the cause of a typed error', () => {
    for (const code of ['EACCES', 'EPERM', 'EROFS', 'SQLITE_READONLY', '42501', '25006']) {
      expect(isWriteRefused(Object.assign(new Error('no'), { code }))).toBe(true);
      expect(isWriteRefused(new Error('wrapped', { cause: Object.assign(new Error('no'), { code }) }))).toBe(true);
    }
    for (const e of [Object.assign(new Error('disk'), { code: 'EIO' }), new Error('plain'), undefined, 'EACCES']) expect(isWriteRefused(e)).toBe(false);
  });
});

describe('readOnlyArtifactStore', () => {
  it('keeps what is put while read-only in memory, under the id the store would give it, and writes nothing', async () => {
    const dir = store.dir();
    const files = createFileArtifactStore(path.join(dir, 'artifacts'));
    const writable = readOnlyArtifactStore(files, contentHashing(undefined), readOnlyMode(undefined), () => undefined);
    const bytes = new Uint8Array([1, 2, 3, 4]);
    const stored = await writable.put(bytes);
    const noticed: string[] = [];
    const readOnly = readOnlyArtifactStore(createFileArtifactStore(path.join(dir, 'other')), contentHashing(undefined), readOnlyMode('asked'), (why) => void noticed.push(why));
    const kept = await readOnly.put(bytes);
    expect(kept).toBe(stored);
    expect(await readOnly.present([{ id: kept, size: 4 }, { id: kept, size: 5 }])).toEqual([true, false]);
    expect(await readOnly.get({ id: kept, size: 4 })).toEqual({ _tag: 'Right', right: Buffer.from(bytes) });
    expect(noticed).toEqual(['asked']);
    expect(fs.existsSync(path.join(dir, 'other'))).toBe(false);
  });
});

describe('readOnlyMetadataStore', () => {
  it('delegates reads to a store made as a class instance (its methods on the prototype)', async () => {
    class Wrapped {
      constructor(private readonly inner: MetadataStore) {}
      getLatestEntriesOfSteps(steps: readonly string[]) {
        return this.inner.getLatestEntriesOfSteps(steps);
      }
    }
    const real = createSqliteMetadataStore(storeLayout(store.dir()).metadataFile);
    const instance = Object.assign(Object.create(Wrapped.prototype) as object, { inner: real }) as unknown as MetadataStore;
    const wrapped = readOnlyMetadataStore(instance, readOnlyMode(undefined), () => undefined);
    expect(await wrapped.getLatestEntriesOfSteps(['a'])).toEqual([undefined]);
    await real.close();
  });
});
