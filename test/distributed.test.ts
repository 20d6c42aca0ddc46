/**
 * Distributed execution on each of BullMQ's backends, a real Redis and a real PostgreSQL
 * (provisioned on 127.0.0.1): clients and workers are child processes (`stepcache worker`,
 * test/support/distributed/client.ts) sharing a store folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createFileArtifactStore, createPostgresMetadataStore, createRunner, createSqliteMetadataStore, createWorker, silentLogger, StepcacheError } from '../src';
import { runCli } from '../src/cli/cli';
import { queueServer } from '../src/distributed/connection';
import { decodeFailure, encodeFailure, jobIdOf, type StepJobData } from '../src/distributed/job';
import { findStep, pipelineModuleOf } from '../src/distributed/pipeline-module';
import { queueExecutor } from '../src/distributed/queue-executor';
import { removeDir, tempDir } from './support/fixtures';
import { LATEST_SCHEMA_VERSION } from 'bullmq';
import { Client } from 'pg';
import { addStepJob, queueBackend, stepJobFinished } from '../src/distributed/backend';
import { testPostgres, type TestPostgres } from './support/provision/postgres';
import { provideRedisServer } from './support/provision/redis';
import { REPOSITORY } from './support/provision/core';
import { diamond, source } from './support/distributed/pipeline';

jest.setTimeout(300_000);

// helpers

interface ClientReport {
  readonly status: string;
  readonly steps?: Record<string, string>;
  readonly total?: number;
  readonly enqueued: number;
  readonly progress?: string[];
  readonly code?: string;
  readonly message?: string;
  readonly failed?: Array<{ step: string; code: string; message: string }>;
  readonly ms: number;
}

interface WorkerProcess {
  readonly child: ChildProcess;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const live = new Set<WorkerProcess>();
const clients = new Set<ChildProcess>();

const startWorker = async (url: string, dir: string, env: Record<string, string>, concurrency = 2): Promise<WorkerProcess> => {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(REPOSITORY, 'src/cli/main.ts'), 'worker', '--module', './test/support/distributed/pipeline.ts', '--dir', dir, '--url', url, '--concurrency', String(concurrency), '--queue', env['STEPCACHE_TEST_QUEUE'] ?? 'stepcache'],
    { cwd: REPOSITORY, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => void (output += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => void (output += chunk.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const worker: WorkerProcess = {
    child,
    output: () => output,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
      live.delete(worker);
    },
  };
  live.add(worker);
  for (let waited = 0; !/is taking jobs/.test(output); waited += 50) {
    if (child.exitCode !== null || waited > 60_000) throw new Error(`the worker did not start: ${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return worker;
};

const runClient = (url: string, dir: string, env: Record<string, string>, size?: number): Promise<ClientReport> =>
  new Promise((resolve, reject) => {
    const args = ['--import', 'tsx', path.join(REPOSITORY, 'test/support/distributed/client.ts'), url, dir, ...(size === undefined ? [] : [String(size)])];
    const child = spawn(process.execPath, args, { cwd: REPOSITORY, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    clients.add(child);
    child.once('exit', () => clients.delete(child));
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => void (out += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => void (err += chunk.toString('utf8')));
    // The report is its first line of output; the client is not waited for beyond it.
    child.stdout.on('data', () => {
      const line = out.split('\n').slice(0, -1).find((l) => l.startsWith('{'));
      if (line !== undefined) resolve(JSON.parse(line) as ClientReport);
    });
    child.once('exit', () => reject(new Error(`the client printed no report: ${out}\n${err}`)));
  });

/** Polls until `found` gives a value; fails with the client's report if the client finished first. */
const waitFor = async <A>(found: () => A | undefined, finished: () => ClientReport | undefined): Promise<A> => {
  for (;;) {
    const value = found();
    if (value !== undefined) return value;
    const report = finished();
    if (report !== undefined) throw new Error(`the client finished first: ${JSON.stringify(report)}; workers said: ${[...live].map((w) => w.output()).join('\n---\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
};

/** Executions per step, from the shared log. */
const executions = (log: string): Record<string, number> => {
  const counts: Record<string, number> = {};
  if (!fs.existsSync(log)) return counts;
  for (const line of fs.readFileSync(log, 'utf8').split('\n').filter(Boolean)) {
    const name = line.split(' ')[0] as string;
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
};

const STEPS = ['source', ...Array.from({ length: 10 }, (_, i) => `branch_${String(i + 1)}`), 'merge'];
const once = Object.fromEntries(STEPS.map((s) => [s, 1]));

/** A queue server of one backend for the tests: a shared one, or one of a test's own that it may crash and start again. */
interface QueueServerUnderTest {
  readonly url: string;
  /** The URL as messages show it (no password). */
  readonly shown: string;
  /** A secret in the URL that no message may show, if any. */
  readonly password?: string;
  crash(): Promise<void>;
  start(): Promise<void>;
  dispose(): Promise<void>;
}

const redisServer = async (own: boolean): Promise<QueueServerUnderTest> => {
  const redis = await provideRedisServer({ own });
  return { url: redis.url, shown: redis.url, crash: () => redis.stop({ crash: true }), start: () => redis.start(), dispose: () => redis.dispose() };
};

const postgresServer = async (own: boolean): Promise<QueueServerUnderTest> => {
  const postgres = await testPostgres({ own });
  return { url: postgres.url, shown: queueServer(postgres.url).shown, password: postgres.password, crash: () => postgres.stop('immediate'), start: () => postgres.start(), dispose: () => postgres.dispose() };
};

const BACKENDS = [
  { backend: 'Redis', server: redisServer },
  { backend: 'PostgreSQL', server: postgresServer },
] as const;

let dir: string;
beforeAll(() => {
  dir = tempDir('stepcache-distributed-');
});
afterEach(async () => {
  await Promise.all([...live].map((w) => w.stop('SIGKILL')));
  for (const c of clients) c.kill('SIGKILL');
});
afterAll(() => {
  if (dir !== undefined) removeDir(dir);
});

/** A store folder, an executions log and a queue of a test's own. */
const setup = (name: string) => {
  const store = path.join(dir, name);
  fs.mkdirSync(store, { recursive: true });
  const log = path.join(dir, `${name}.executions`);
  return { store, log, env: { STEPCACHE_TEST_EXECUTIONS: log, STEPCACHE_TEST_QUEUE: name } };
};

/** The cache entries of a step in a test's store folder. */
const entriesOf = async (store: string, step: string) => {
  const metadata = createSqliteMetadataStore(path.join(store, 'metadata.sqlite'));
  try {
    return (await metadata.listEntries()).filter((e) => e.step === step);
  } finally {
    await metadata.close();
  }
};

/** The data of a job that tests of the queue's parts add (no worker of the pipeline takes it). */
const data = (key: string): StepJobData => ({ identity: { key, step: 's', pipeline: 'p', code: 'c' }, parameters: {}, inputs: {} });

/** A step's execution is slow, and workers give up a job whose lock is not renewed for 3 s (checked every second). */
const slowWithShortLocks = (step: string, ms: number) => ({ STEPCACHE_TEST_SLOW_STEP: `${step}:${String(ms)}`, STEPCACHE_WORKER_LOCK_MS: '3000', STEPCACHE_WORKER_STALLED_INTERVAL_MS: '1000' });

// the tests

describe.each(BACKENDS)('on $backend', ({ backend, server: serverOf }) => {
  let server: QueueServerUnderTest;
  let url: string;
  beforeAll(async () => {
    server = await serverOf(false);
    url = server.url;
  }, 180_000);
  afterAll(async () => {
    await server?.dispose();
  });
  /** A test's own store folder and queue, named after the backend too. */
  const own = (name: string) => setup(`${backend.toLowerCase()}_${name}`);

  describe('distributed execution', () => {
    it('clients and three workers execute every key of a 12-step diamond exactly once, two clients at once too; the second run enqueues nothing and needs no worker', async () => {
      const { store, log, env } = own('diamond');
      const workers = await Promise.all([1, 2, 3].map(() => startWorker(url, store, env)));
      // two clients starting the same pipeline at once share the jobs
      const [a, b] = await Promise.all([runClient(url, store, env, 40), runClient(url, store, env, 40)]);
      expect(a.status).toBe('completed');
      expect(b.status).toBe('completed');
      expect(a.total).toBe(b.total);
      expect(executions(log)).toEqual(once);
      fs.rmSync(log);

      const first = await runClient(url, store, env);
      expect(first.status).toBe('completed');
      expect(first.total).toBe(4950 * 55);
      expect(first.enqueued).toBe(12);
      expect(Object.values(first.steps ?? {}).every((s) => s === 'executed')).toBe(true);
      expect(executions(log)).toEqual(once);
      // progress came back from the workers: executing on which worker, then done
      expect(first.progress?.filter((p) => p.startsWith('merge:'))).toEqual([expect.stringMatching(/^merge:executing:/), expect.stringMatching(/^merge:done:/)]);

      await Promise.all(workers.map((w) => w.stop()));
      const second = await runClient(url, store, env);
      expect(second.status).toBe('completed');
      expect(second.enqueued).toBe(0);
      expect(Object.values(second.steps ?? {}).every((s) => s === 'cached')).toBe(true);
      expect(executions(log)).toEqual(once);

      // without client-side caching, every step goes to the workers, which answer from the cache
      const worker = await startWorker(url, store, env);
      const third = await runClient(url, store, { ...env, STEPCACHE_PREVENT_CLIENT_SIDE_CACHING: 'true' });
      expect(third.status).toBe('completed');
      expect(third.enqueued).toBe(12);
      expect(Object.values(third.steps ?? {}).every((s) => s === 'cached')).toBe(true);
      expect(executions(log)).toEqual(once);
      expect(worker.output()).toContain('Using cached version of merge.');
    });

    it('a worker killed in the middle of a step: the stalled job is finished by another worker, the entry written once', async () => {
      const { store, log, env } = own('stalled');
      const slow = { ...env, ...slowWithShortLocks('merge', 4000) };
      const workers = await Promise.all([1, 2].map(() => startWorker(url, store, slow, 1)));
      let reported: ClientReport | undefined;
      // The steps read these variables: they are part of their fingerprints, so clients and workers share them.
      const client = runClient(url, store, slow).then((r) => (reported = r));
      const holder = await waitFor(() => (executions(log)['merge'] === 1 ? workers.find((w) => /Step merge has started/.test(w.output())) : undefined), () => reported);
      await holder.stop('SIGKILL');
      const report = await client;
      expect(report).toMatchObject({ status: 'completed', total: 4950 * 55 });
      const other = workers.find((w) => w !== holder);
      expect(other?.output()).toMatch(/Step merge has finished/);
      expect(executions(log)['merge']).toBeGreaterThanOrEqual(2);
      expect(await entriesOf(store, 'merge')).toHaveLength(1);
    });

    it('a worker frozen (SIGSTOP) in the middle of a step loses its job to another worker and, resumed, loses the commit race without harm and goes on taking jobs', async () => {
      const { store, log, env } = own('frozen');
      const slow = { ...env, ...slowWithShortLocks('merge', 4000) };
      const workers = await Promise.all([1, 2].map(() => startWorker(url, store, slow, 1)));
      let reported: ClientReport | undefined;
      const client = runClient(url, store, slow).then((r) => (reported = r));
      const frozen = await waitFor(() => (executions(log)['merge'] === 1 ? workers.find((w) => /Step merge has started/.test(w.output())) : undefined), () => reported);
      const other = workers.find((w) => w !== frozen) as WorkerProcess;
      frozen.child.kill('SIGSTOP');
      let report: ClientReport;
      try {
        // the job stalls (its lock is not renewed) and the other worker executes it and commits first
        report = await client;
      } finally {
        frozen.child.kill('SIGCONT');
      }
      expect(report).toMatchObject({ status: 'completed', total: 4950 * 55 });
      expect(other.output()).toMatch(/Step merge has finished/);
      const [committed] = await entriesOf(store, 'merge');
      expect(committed).toBeDefined();

      // resumed, the frozen worker finishes its execution of the merge, and its commit finds the key taken
      await waitFor(() => (/Step merge has finished/.test(frozen.output()) ? true : undefined), () => undefined);
      expect(executions(log)['merge']).toBe(2);
      expect(await entriesOf(store, 'merge')).toEqual([committed]);
      expect(frozen.child.exitCode).toBeNull();

      // the resumed worker goes on taking jobs: alone now, it answers a run that leaves every lookup to
      // the workers, from the cache, with the value the step returned
      await other.stop();
      const again = await runClient(url, store, { ...slow, STEPCACHE_PREVENT_CLIENT_SIDE_CACHING: 'true' });
      expect(again).toMatchObject({ status: 'completed', total: 4950 * 55, enqueued: 12 });
      expect(Object.values(again.steps ?? {}).every((status) => status === 'cached')).toBe(true);
      expect(frozen.output()).toContain('Using cached version of merge.');
      expect(executions(log)['merge']).toBe(2);
    });

    it('a worker with edited step code never executes a job of the old code: the client gets CODE_MISMATCH naming both versions', async () => {
      const { store, log, env } = own('edited');
      const worker = await startWorker(url, store, { ...env, STEPCACHE_TEST_EDITED: '1' });
      const report = await runClient(url, store, { ...env, STEPCACHE_TEST_ATTEMPTS: '3' });
      expect(report.status).toBe('failed');
      expect(report.code).toBe('CODE_MISMATCH');
      const merge = report.failed?.find((f) => f.step === 'merge');
      expect(merge?.code).toBe('CODE_MISMATCH');
      expect(merge?.message).toMatch(/the client's code is fingerprint:[0-9a-f]+, worker .* has fingerprint:[0-9a-f]+/);
      expect(executions(log)['merge']).toBeUndefined();
      expect(executions(log)['source']).toBe(1);
      // refused once: a mismatch is never retried, whatever the attempts
      expect(worker.output().match(/the client's code is/g)).toHaveLength(1);
    });
  });

  describe('retries', () => {
    it('a step that fails once is tried again by the queue when attempts allow', async () => {
      const { store, log, env } = own('retries');
      const marker = path.join(dir, `${backend}.retries.failed-once`);
      const flaky = { ...env, STEPCACHE_TEST_FLAKY: `branch_5:${marker}` };
      await startWorker(url, store, flaky);
      const report = await runClient(url, store, { ...flaky, STEPCACHE_TEST_ATTEMPTS: '3' });
      expect(report.status).toBe('completed');
      expect(fs.existsSync(marker)).toBe(true);
      expect(executions(log)['branch_5']).toBe(2);
    });

    it('without attempts, a failure reaches the client as STEP_FAILED naming the step and what it threw', async () => {
      const { store, env } = own('no_retries');
      const marker = path.join(dir, `${backend}.no_retries.failed-once`);
      const flaky = { ...env, STEPCACHE_TEST_FLAKY: `branch_5:${marker}` };
      await startWorker(url, store, flaky);
      const report = await runClient(url, store, flaky);
      expect(report.status).toBe('failed');
      const failed = report.failed?.find((f) => f.step === 'branch_5');
      expect(failed?.code).toBe('STEP_FAILED');
      expect(failed?.message).toMatch(/Step branch_5 failed: branch_5 failed once/);
    });
  });

  describe('jobs', () => {
    it('a client hears of its job\'s end even when the event never reaches it (its state is read too), and a finished job of the same id is replaced', async () => {
      const backend = queueBackend(url);
      const queue = backend.queue('parts_missed_events');
      // events of another queue: this client hears nothing of its own jobs
      const deaf = backend.queueEvents('parts_nothing_heard');
      let executed = 0;
      const worker = backend.worker('parts_missed_events', async () => ({ descriptors: {}, durationMs: ++executed, worker: 'w' }), { concurrency: 1 });
      try {
        const first = await addStepJob(queue, data('a'), { jobId: jobIdOf('a') });
        expect(await stepJobFinished(first, deaf)).toEqual({ descriptors: {}, durationMs: 1, worker: 'w' });
        // asked for again, the key is looked at anew by a worker, as on Redis where finished jobs are removed
        const again = await addStepJob(queue, data('a'), { jobId: jobIdOf('a') });
        expect(await stepJobFinished(again, deaf)).toMatchObject({ durationMs: 2 });
      } finally {
        await Promise.all([worker.close(), deaf.close(), queue.close()]);
      }
    });
  });

  describe('a queue server that stops mid-run', () => {
    it('fails the client within a bounded time with QUEUE_UNAVAILABLE naming the server; started again, a new run completes from what was committed', async () => {
      const stopping = await serverOf(true);
      try {
        const { store, log, env } = own('server_stopped');
        const slow = { ...env, ...slowWithShortLocks('merge', 6000) };
        await startWorker(stopping.url, store, slow);
        const client = runClient(stopping.url, store, { ...slow, STEPCACHE_TEST_UNREACHABLE_MS: '2000' });
        let reported: ClientReport | undefined;
        void client.then((r) => (reported = r));
        // wait until the merge is running on the worker, then stop the server
        await waitFor(() => [...live].find((w) => /Step merge has started/.test(w.output())), () => reported);
        await stopping.crash();
        const report = await client;
        expect(report.status).toBe('failed');
        expect(report.code).toBe('QUEUE_UNAVAILABLE');
        expect(report.message).toContain(stopping.shown);
        if (stopping.password !== undefined) expect(report.message).not.toContain(stopping.password);
        expect(report.ms).toBeLessThan(60_000);

        // the server comes back; a new run completes, without executing again what was committed
        await stopping.start();
        await startWorker(stopping.url, store, slow);
        const after = await runClient(stopping.url, store, slow);
        expect(after).toMatchObject({ status: 'completed', total: 4950 * 55 });
        expect(Object.entries(after.steps ?? {}).filter(([step]) => step !== 'merge').every(([, status]) => status === 'cached')).toBe(true);
        expect(executions(log)['source']).toBe(1);
        expect(executions(log)['branch_1']).toBe(1);
        expect(await entriesOf(store, 'merge')).toHaveLength(1);
      } finally {
        await Promise.all([...live].map((w) => w.stop('SIGKILL')));
        await stopping.dispose();
      }
    });
  });
});

describe('the PostgreSQL backend', () => {
  let postgres: TestPostgres;
  beforeAll(async () => {
    postgres = await testPostgres();
  }, 180_000);
  afterAll(async () => {
    await postgres?.dispose();
  });

  it('one PostgreSQL server holds both the queue and the metadata: a run through a worker executes every step once, the next finds them all cached', async () => {
    const store = path.join(dir, 'one_server');
    fs.mkdirSync(store, { recursive: true });
    const artifacts = () => createFileArtifactStore(path.join(store, 'artifacts'));
    const workerMetadata = createPostgresMetadataStore({ url: postgres.url });
    const worker = await createWorker({ module: pipelineModuleOf('inline', { diamond, source }), url: postgres.url, metadata: workerMetadata, artifacts: artifacts(), logger: silentLogger });
    const runner = createRunner({ dir: store, logger: silentLogger, queueUrl: postgres.url, metadata: createPostgresMetadataStore({ url: postgres.url }), artifacts: artifacts() });
    try {
      const first = await runner.run(diamond, { size: 5 });
      expect(Object.values(first.steps).map((s) => s.status)).toEqual(STEPS.map(() => 'executed'));
      expect(await first.output('total')).toBe(10 * 55);
      expect(worker.executed()).toBe(12);
      const second = await runner.run(diamond, { size: 5 });
      expect(Object.values(second.steps).map((s) => s.status)).toEqual(STEPS.map(() => 'cached'));
      expect(worker.executed()).toBe(12);
    } finally {
      await runner.close();
      await worker.close();
      await workerMetadata.close();
    }
  });

  it('workers starting at once on a fresh database bring BullMQ\'s tables up to date once, and all take jobs', async () => {
    const admin = new Client({ connectionString: postgres.url });
    await admin.connect();
    const database = `fresh_${Math.random().toString(36).slice(2, 8)}`;
    await admin.query(`CREATE DATABASE ${database}`);
    const url = new URL(postgres.url);
    url.pathname = `/${database}`;
    const backend = queueBackend(url.toString());
    const workers = [1, 2, 3, 4].map((n) => backend.worker('parts_fresh', async () => ({ descriptors: {}, durationMs: n, worker: String(n) }), { concurrency: 1 }));
    const queue = backend.queue('parts_fresh');
    const events = backend.queueEvents('parts_fresh');
    try {
      await Promise.all([...workers.map((w) => w.waitUntilReady()), queue.waitUntilReady(), events.waitUntilReady()]);
      const jobs = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => addStepJob(queue, data(String(n)), { jobId: jobIdOf(String(n)) })));
      expect(await Promise.all(jobs.map((j) => stepJobFinished(j, events)))).toHaveLength(6);
      const fresh = new Client({ connectionString: url.toString() });
      await fresh.connect();
      try {
        // every migration applied, all in one transaction (one starting time): by one of the starters
        const { rows } = await fresh.query<{ versions: string; transactions: string }>('SELECT count(*) AS versions, count(DISTINCT applied_at) AS transactions FROM bullmq.migration');
        expect(rows[0]).toEqual({ versions: String(LATEST_SCHEMA_VERSION), transactions: '1' });
      } finally {
        await fresh.end();
      }
    } finally {
      await Promise.all([...workers.map((w) => w.close()), events.close(), queue.close()]);
      // left for the server's disposal when a client is still leaving
      await admin.query(`DROP DATABASE ${database}`).catch(() => undefined);
      await admin.end();
    }
  });
});

describe('the parts', () => {
  it('reads a Redis URL into connection settings, without the password in what is shown', () => {
    const server = queueServer('redis://user:s3cret@10.0.0.5:6390/2');
    expect(server.connection).toMatchObject({ host: '10.0.0.5', port: 6390, db: 2, username: 'user', password: 's3cret', maxRetriesPerRequest: null });
    expect(server.shown).not.toContain('s3cret');
    expect(() => queueServer('http://x')).toThrow(StepcacheError);
  });

  it('reads a PostgreSQL URL into pool settings that bring BullMQ\'s tables up to date, without the password in what is shown', () => {
    const server = queueServer('postgres://team:s3cret@db.internal:5433/stepcache');
    expect(server.kind).toBe('postgres');
    expect(server.connection).toMatchObject({ connectionString: 'postgres://team:s3cret@db.internal:5433/stepcache', migrate: true });
    expect(server.shown).toBe('postgres://team@db.internal:5433/stepcache');
    expect(queueServer('postgresql://db/stepcache').kind).toBe('postgres');
    expect(() => queueServer('postgres:///stepcache')).toThrow(/names its host/);
  });

  it('a typed failure survives the queue; any other reason is STEP_FAILED naming the step', () => {
    const error = decodeFailure(encodeFailure(new StepcacheError('CODE_MISMATCH', 'Step a: differs', { step: 'a', field: 'code' })), 'a');
    expect([error.code, error.message, error.step, error.field]).toEqual(['CODE_MISMATCH', 'Step a: differs', 'a', 'code']);
    const other = decodeFailure('job stalled more than allowable limit', 'b');
    expect([other.code, other.step]).toEqual(['STEP_FAILED', 'b']);
    expect(other.message).toContain('job stalled');
  });

  it('job ids are keys that BullMQ accepts', () => {
    expect(jobIdOf('123')).toBe('k123');
    expect(jobIdOf('a:b')).not.toContain(':');
  });

  it('a worker finds a step by pipeline and step name, in the pipeline compiled with its defaults or among exported steps', () => {
    const loaded = pipelineModuleOf('inline', { diamond, source });
    const merge = findStep(loaded, 'diamond', 'merge');
    expect(merge._tag === 'Right' && merge.right.node.name).toBe('merge');
    const branch = findStep(loaded, 'diamond', 'branch_3');
    expect(branch._tag === 'Right' && branch.right.node.name).toBe('branch_3');
    const missing = findStep(loaded, 'other', 'nope');
    expect(missing._tag === 'Left' && missing.left.code).toBe('CODE_MISMATCH');
    expect(missing._tag === 'Left' && missing.left.message).toMatch(/has no step nope in pipeline other/);
  });

  it('a queue executor needs a server URL', () => {
    const saved = process.env['STEPCACHE_QUEUE_URL'];
    delete process.env['STEPCACHE_QUEUE_URL'];
    try {
      expect(() => queueExecutor()).toThrow(/STEPCACHE_QUEUE_URL/);
    } finally {
      if (saved !== undefined) process.env['STEPCACHE_QUEUE_URL'] = saved;
    }
  });

  it('a runner sending steps to a queue is refused at start when workers cannot see its stores, naming the store to configure', () => {
    const refusal = (f: () => unknown): StepcacheError => {
      try {
        f();
      } catch (e) {
        if (e instanceof StepcacheError) return e;
      }
      throw new Error('not refused');
    };
    const local = refusal(() => createRunner({ dir, queueUrl: 'redis://127.0.0.1:1' }));
    expect([local.code, local.field]).toEqual(['INVALID_OPTIONS', 'metadata']);
    expect(local.message).toMatch(/local SQLite file .* createPostgresMetadataStore/);
    // a PostgreSQL queue is taken the same way, and shown without its password
    const postgres = refusal(() => createRunner({ dir, queueUrl: 'postgres://team:s3cret@127.0.0.1:1/stepcache' }));
    expect([postgres.code, postgres.field]).toEqual(['INVALID_OPTIONS', 'metadata']);
    expect(postgres.message).toContain('Steps are sent to the queue at postgres://team@127.0.0.1:1/stepcache');
    expect(postgres.message).not.toContain('s3cret');
    const metadata = createSqliteMetadataStore(path.join(dir, 'refused.sqlite'));
    try {
      const artifacts = refusal(() => createRunner({ dir, queueUrl: 'redis://127.0.0.1:1', metadata }));
      expect(artifacts.field).toBe('artifacts');
      expect(artifacts.message).toMatch(/createS3ArtifactStore/);
    } finally {
      void metadata.close();
    }
    const saved = process.env['STEPCACHE_QUEUE_URL'];
    process.env['STEPCACHE_QUEUE_URL'] = 'redis://127.0.0.1:1';
    try {
      expect(refusal(() => createRunner({ dir })).field).toBe('metadata');
    } finally {
      if (saved === undefined) delete process.env['STEPCACHE_QUEUE_URL'];
      else process.env['STEPCACHE_QUEUE_URL'] = saved;
    }
  });

  it('a fully cached pipeline dispatched through a queue enqueues nothing and needs no queue server', async () => {
    const store = path.join(dir, 'client_side');
    fs.mkdirSync(store, { recursive: true });
    const stores = () => ({ dir: store, logger: silentLogger, metadata: createSqliteMetadataStore(path.join(store, 'metadata.sqlite')), artifacts: createFileArtifactStore(path.join(store, 'artifacts')) });
    const local = createRunner(stores());
    await local.run(diamond, { size: 5 });
    await local.close();
    // nothing listens on port 1: any job would fail with QUEUE_UNAVAILABLE
    const remote = createRunner({ ...stores(), queueUrl: 'redis://127.0.0.1:1' });
    try {
      const run = await remote.run(diamond, { size: 5 });
      expect(Object.values(run.steps).map((s) => s.status)).toEqual(STEPS.map(() => 'cached'));
      expect(await run.output('total')).toBe(10 * 55);
    } finally {
      await remote.close();
    }
  });

  it('`stepcache worker` needs a module and a queue server, and says which is missing', async () => {
    const cli = async (argv: string[], env: Record<string, string | undefined> = {}) => {
      let out = '';
      const io = { stdout: { write: (t: string) => void (out += t) }, stderr: { write: (t: string) => void (out += t) }, cwd: REPOSITORY, env };
      return { code: await runCli(argv, io as never), out };
    };
    const noModule = await cli(['worker']);
    expect(noModule.code).toBe(2);
    expect(noModule.out).toMatch(/--module/);
    const noServer = await cli(['worker', '--module', './test/support/distributed/pipeline.ts', '--dir', path.join(dir, 'cli_store')]);
    expect(noServer.code).toBe(2);
    expect(noServer.out).toMatch(/STEPCACHE_QUEUE_URL/);
  });
});
