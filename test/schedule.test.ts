/**
 * Schedules on each of BullMQ's backends, a real Redis and a real PostgreSQL (provisioned on
 * 127.0.0.1, one server per backend shared by its tests, a queue per test): a schedule makes run
 * jobs, a worker runs the whole pipeline for each with the code it has then (a step edited between
 * two scheduled runs, the worker restarted with the new code, is the only step that executes
 * again), and the command line lists and removes schedules.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createFileArtifactStore, createRunner, createSqliteMetadataStore, pipeline, silentLogger, step, type RunRecord } from '../src';
import { runCli } from '../src/cli/cli';
import { pipelineModuleOf } from '../src/distributed/pipeline-module';
import { queueBackend } from '../src/distributed/backend';
import { listSchedules, removeSchedule, schedule } from '../src/distributed/schedule';
import { createWorker } from '../src/distributed/worker';
import { storeLayout } from '../src/store/layout';
import { removeDir, tempDir } from './support/fixtures';
import { REPOSITORY } from './support/provision/core';
import { testPostgres } from './support/provision/postgres';
import { provideRedisServer } from './support/provision/redis';

jest.setTimeout(240_000);

/** A queue server of one backend, shared by that backend's tests. */
interface QueueServerUnderTest {
  readonly url: string;
  dispose(): Promise<void>;
}

const BACKENDS = [
  { backend: 'Redis', server: async (): Promise<QueueServerUnderTest> => provideRedisServer() },
  { backend: 'PostgreSQL', server: async (): Promise<QueueServerUnderTest> => testPostgres() },
] as const;

let root: string;
let queues = 0;
const children = new Set<ChildProcess>();
beforeAll(() => {
  root = tempDir('stepcache-schedule-');
});
afterEach(() => {
  for (const c of children) c.kill('SIGKILL');
});
afterAll(() => {
  if (root !== undefined) removeDir(root);
});

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `ready` is true, polling; fails after `ms` with `what`. */
const until = async (ready: () => Promise<boolean>, what: () => string, ms = 90_000): Promise<void> => {
  for (const started = Date.now(); !(await ready()); await pause(100)) {
    if (Date.now() - started > ms) throw new Error(`timed out waiting: ${what()}`);
  }
};

/** The finished runs of the store (with those still running, when asked), oldest first. */
const runsOf = async (dir: string, { running = false }: { readonly running?: boolean } = {}): Promise<RunRecord[]> => {
  const runner = createRunner({ dir, logger: silentLogger });
  try {
    return (await runner.listRuns()).filter((r) => running || r.status !== 'running').reverse();
  } finally {
    await runner.close();
  }
};
const statuses = (r: RunRecord) => Object.fromEntries(Object.entries(r.steps).map(([n, s]) => [n, s.status]));

const loadNumbers = step(function load_numbers({ n }: { n: number }) {
  return Array.from({ length: n }, (_, i) => i);
});
const sumNumbers = step(function sum_numbers({ numbers }: { numbers: number[] }) {
  return numbers.reduce((a, b) => a + b, 0);
});
const summed = pipeline('scheduled_sum', (p, { n = 10 }: { n?: number }) => ({ total: p.call(sumNumbers, { numbers: p.call(loadNumbers, { n }) }) }));

/** Runs the command line, with no environment, and what it printed. */
const cli = async (args: string[]) => {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: {} });
  return { code, stdout, stderr };
};

// First: after a refused connection, a Redis client keeps a timer (ioredis' disconnectTimeout,
// 2 s) that the tests below outlast.
describe('stepcache schedules without a queue server', () => {
  it('without a queue server named, says how to name one', async () => {
    const r = await cli(['schedules', 'list']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('pass --url redis://host:6379 (or postgres://user:password@host:5432/database), or set STEPCACHE_QUEUE_URL');
    await expect(listSchedules({ queueUrl: '' })).rejects.toMatchObject({ code: 'INVALID_OPTIONS', field: 'queueUrl', message: expect.stringContaining('postgres://user:password@host:5432/database') as string });
  });

  it.each([
    ['Redis', 'redis://:sekret-pw@127.0.0.1:1'],
    ['PostgreSQL', 'postgres://team:sekret-pw@127.0.0.1:1/stepcache'],
  ])('a %s queue server that does not answer is QUEUE_UNAVAILABLE, naming the server without its password', async (_backend, url) => {
    const calls = [
      listSchedules({ queueUrl: url, queue: 'nowhere', unreachableAfterMs: 500 }),
      removeSchedule('nightly', { queueUrl: url, queue: 'nowhere', unreachableAfterMs: 500 }),
      schedule(summed, { every: '1h' }, {}, { queueUrl: url, queue: 'nowhere', unreachableAfterMs: 500 }),
    ];
    for (const call of calls) {
      const error = (await call.then(() => undefined, (e: unknown) => e)) as { code?: string; message?: string } | undefined;
      expect(error).toMatchObject({ code: 'QUEUE_UNAVAILABLE', message: expect.stringContaining('127.0.0.1:1') as string });
      expect(error?.message).toContain('(queue nowhere)');
      expect(error?.message).not.toContain('sekret-pw');
    }
  });

  it('schedules list on a queue server that does not answer fails naming it, without its password', async () => {
    const listed = await cli(['schedules', 'list', '--url', 'postgres://team:sekret-pw@127.0.0.1:1/stepcache', '--queue', 'nowhere']);
    expect(listed.code).toBe(1);
    expect(listed.stderr).toContain('The queue server postgres://team@127.0.0.1:1/stepcache (queue nowhere)');
    expect(listed.stderr).not.toContain('sekret-pw');
  });

  it('refuses a wait for the server that is not a positive number, naming the field', async () => {
    await expect(listSchedules({ queueUrl: 'redis://127.0.0.1:1', unreachableAfterMs: 0 })).rejects.toMatchObject({ code: 'INVALID_OPTIONS', field: 'unreachableAfterMs' });
  });
});

describe.each(BACKENDS)('on $backend', ({ backend, server: serverOf }) => {
  let server: QueueServerUnderTest;
  let url: string;
  beforeAll(async () => {
    server = await serverOf();
    url = server.url;
  }, 180_000);
  afterAll(async () => {
    await server?.dispose();
  });
  /** A queue of the test's own, named after the backend too. */
  const ownQueue = () => `schedule-${backend.toLowerCase()}-${String(++queues)}`;

  describe('schedule', () => {
    it('an every-400ms schedule makes runs on a worker: the first executes, the next are cached; removed, it makes no more', async () => {
      const dir = path.join(root, `${backend.toLowerCase()}-every`);
      const queue = ownQueue();
      const layout = storeLayout(dir);
      fs.mkdirSync(dir, { recursive: true });
      const metadata = createSqliteMetadataStore(layout.metadataFile);
      const worker = await createWorker({ module: pipelineModuleOf('inline', { summed }), url: url, queue, metadata, artifacts: createFileArtifactStore(layout.artifactsDir), logger: silentLogger, dir });
      try {
        const made = await schedule(summed, { every: 400 }, { n: 5 }, { queueUrl: url, queue, name: 'sum-often' });
        expect(made).toMatchObject({ id: 'sum-often', pipeline: 'scheduled_sum', everyMs: 400, parameters: { n: 5 } });
        await until(async () => (await runsOf(dir)).length >= 3, () => 'three scheduled runs');
        const runs = await runsOf(dir);
        expect(runs.every((r) => r.pipeline === 'scheduled_sum' && r.status === 'completed' && r.parameters['n'] === 5)).toBe(true);
        expect(statuses(runs[0] as RunRecord)).toEqual({ load_numbers: 'executed', sum_numbers: 'executed' });
        expect(runs.slice(1).map(statuses)).toEqual(runs.slice(1).map(() => ({ load_numbers: 'cached', sum_numbers: 'cached' })));

        expect(await removeSchedule('sum-often', { queueUrl: url, queue })).toBe(true);
        expect(await listSchedules({ queueUrl: url, queue })).toEqual([]);
        await pause(600);
        // Runs started before the removal count, finished or not: one finishing later is no new run.
        const after = (await runsOf(dir, { running: true })).length;
        await pause(1_200);
        expect((await runsOf(dir, { running: true })).length).toBe(after);
      } finally {
        await worker.close();
        await metadata.close();
      }
    });

    it('refuses what cannot be scheduled, naming the field', async () => {
      await expect(schedule(summed, { every: 0 }, {}, { queueUrl: url })).rejects.toMatchObject({ code: 'INVALID_OPTIONS', field: 'every' });
      await expect(schedule(summed, { cron: 'daily' }, {}, { queueUrl: url })).rejects.toMatchObject({ code: 'INVALID_OPTIONS', field: 'cron' });
      await expect(schedule(summed, { every: '1m' }, { n: () => 3 } as never, { queueUrl: url })).rejects.toMatchObject({ code: 'INVALID_OPTIONS', field: 'params', message: expect.stringContaining('params.n') as string });
    });

    it('a step edited between two scheduled runs (the worker restarted with the new code) is the only one that executes again', async () => {
      const dir = path.join(root, `${backend.toLowerCase()}-edited`);
      const queue = ownQueue();
      fs.mkdirSync(dir, { recursive: true });
      const module = path.join(root, `${backend.toLowerCase()}-scheduled-module.ts`);
      const src = JSON.stringify(path.join(REPOSITORY, 'src'));
      const writeModule = (finish: string) =>
        fs.writeFileSync(
          module,
          `import { pipeline, step } from ${src};\n` +
            `export const loadNumbers = step(function load_numbers({ n }: { n: number }) { return Array.from({ length: n }, (_, i) => i); });\n` +
            `export const finish = step(function finish_numbers({ numbers }: { numbers: number[] }) { return ${finish}; });\n` +
            `export const edited = pipeline('scheduled_edit', (p, { n = 10 }: { n?: number }) => ({ total: p.call(finish, { numbers: p.call(loadNumbers, { n }) }) }));\n`,
        );
      const startWorker = async () => {
        const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPOSITORY, 'src/cli/main.ts'), 'worker', '--module', module, '--dir', dir, '--url', url, '--queue', queue], {
          cwd: REPOSITORY,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        children.add(child);
        let output = '';
        child.stdout.on('data', (c: Buffer) => void (output += c.toString('utf8')));
        child.stderr.on('data', (c: Buffer) => void (output += c.toString('utf8')));
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        await until(async () => /is taking jobs/.test(output) || child.exitCode !== null, () => output);
        if (child.exitCode !== null) throw new Error(`the worker did not start: ${output}`);
        return {
          output: () => output,
          stop: async () => {
            child.kill('SIGTERM');
            await exited;
            children.delete(child);
          },
        };
      };
      // The pipeline as the client knows it: schedules carry its name and parameters only.
      const edited = pipeline('scheduled_edit', (p, { n = 10 }: { n?: number }) => ({ total: p.call(sumNumbers.named('finish_numbers'), { numbers: p.call(loadNumbers, { n }) }) }));

      writeModule('numbers.reduce((a, b) => a + b, 0)');
      const first = await startWorker();
      await schedule(edited, { every: 500 }, { n: 4 }, { queueUrl: url, queue, name: 'edit' });
      await until(async () => (await runsOf(dir)).length >= 2, () => first.output());
      await first.stop();
      const before = (await runsOf(dir)).length;

      writeModule('numbers.reduce((a, b) => a + b, 100)');
      const second = await startWorker();
      await until(async () => (await runsOf(dir)).length >= before + 2, () => second.output());
      await removeSchedule('edit', { queueUrl: url, queue });
      await second.stop();

      const runs = await runsOf(dir);
      expect(runs.every((r) => r.status === 'completed')).toBe(true);
      expect(statuses(runs[0] as RunRecord)).toEqual({ load_numbers: 'executed', finish_numbers: 'executed' });
      expect(runs.slice(1, before).map(statuses)).toEqual(runs.slice(1, before).map(() => ({ load_numbers: 'cached', finish_numbers: 'cached' })));
      // the first run with the new code: only the edited step executes
      expect(statuses(runs[before] as RunRecord)).toEqual({ load_numbers: 'cached', finish_numbers: 'executed' });
      expect(runs.slice(before + 1).map(statuses)).toEqual(runs.slice(before + 1).map(() => ({ load_numbers: 'cached', finish_numbers: 'cached' })));
      const metadata = createSqliteMetadataStore(storeLayout(dir).metadataFile);
      try {
        const key = runs[before]?.steps['finish_numbers']?.key as string;
        const [entry] = await metadata.getEntries([key]);
        expect(entry?.runId).toBe(runs[before]?.id);
      } finally {
        await metadata.close();
      }
    });

    it('a schedule made again with the same id replaces it: its timing and parameters change, and its one pending run job follows the new timing', async () => {
      const queue = ownQueue();
      await schedule(summed, { every: '1h' }, { n: 1 }, { queueUrl: url, queue, name: 'nightly' });
      const replaced = await schedule(summed, { cron: '0 3 * * *', tz: 'Europe/Paris' }, { n: 2 }, { queueUrl: url, queue, name: 'nightly' });
      expect(replaced).toMatchObject({ id: 'nightly', cron: '0 3 * * *', tz: 'Europe/Paris', parameters: { n: 2 } });
      expect(replaced).not.toHaveProperty('everyMs');
      // 03:00 in Paris is 01:00 or 02:00 UTC, within the next day
      const next = replaced.next?.getTime() ?? 0;
      expect(next).toBeGreaterThan(Date.now());
      expect(next - Date.now()).toBeLessThanOrEqual(25 * 3_600_000);
      expect([1, 2]).toContain(replaced.next?.getUTCHours());
      await schedule(summed, { every: '10m' }, {}, { queueUrl: url, queue, name: 'often' });

      const listed = await listSchedules({ queueUrl: url, queue });
      expect(listed.map((s) => s.id)).toEqual(['often', 'nightly']);
      expect(listed[1]).toEqual(replaced);
      const table = await cli(['schedules', 'list', '--url', url, '--queue', queue]);
      expect(table.stdout).toMatch(/^nightly\s+scheduled_sum\s+cron 0 3 \* \* \* \(Europe\/Paris\)\s.*\{"n":2\}$/m);

      // one pending run job per schedule: the replaced timing left none behind
      const q = queueBackend(url).queue(queue);
      try {
        const pending = await q.getJobs(['delayed', 'waiting']);
        const scheduleOf = (data: unknown) => (data as { schedule?: string }).schedule;
        expect(pending.map((j) => scheduleOf(j.data)).sort()).toEqual(['nightly', 'often']);
        expect(pending.find((j) => scheduleOf(j.data) === 'nightly')?.data).toMatchObject({ parameters: { n: 2 } });
      } finally {
        await q.close();
      }
      expect(await removeSchedule('nightly', { queueUrl: url, queue })).toBe(true);
      expect(await removeSchedule('often', { queueUrl: url, queue })).toBe(true);
      expect(await removeSchedule('often', { queueUrl: url, queue })).toBe(false);
    });
  });

  describe('stepcache schedules', () => {
    it('list shows id, pipeline, interval or cron, next run and parameters; remove removes one, and names one that is not there', async () => {
      const queue = ownQueue();
      await schedule(summed, { every: '1h' }, { n: 7 }, { queueUrl: url, queue, name: 'hourly-sum' });
      await schedule(summed, { cron: '0 3 * * *' }, {}, { queueUrl: url, queue });

      const listed = await cli(['schedules', 'list', '--url', url, '--queue', queue]);
      expect(listed.code).toBe(0);
      const lines = listed.stdout.trim().split('\n');
      expect(lines[0]).toMatch(/^ID\s+PIPELINE\s+WHEN\s+NEXT RUN\s+PARAMETERS$/);
      expect(lines.find((l) => l.startsWith('hourly-sum'))).toMatch(/^hourly-sum\s+scheduled_sum\s+every 1h.*\{"n":7\}$/);
      expect(lines.find((l) => l.startsWith('scheduled_sum'))).toMatch(/^scheduled_sum\s+scheduled_sum\s+cron 0 3 \* \* \*.*\{\}$/);

      const json = await cli(['schedules', 'list', '--json', '--url', url, '--queue', queue]);
      const parsed = JSON.parse(json.stdout) as Array<{ id: string; everyMs?: number; cron?: string; next?: string; parameters: unknown }>;
      expect(parsed.map((s) => s.id).sort()).toEqual(['hourly-sum', 'scheduled_sum']);
      expect(parsed.find((s) => s.id === 'hourly-sum')).toMatchObject({ everyMs: 3_600_000, parameters: { n: 7 } });
      expect(Date.parse(parsed.find((s) => s.id === 'scheduled_sum')?.next ?? '')).toBeGreaterThan(Date.now());

      expect(await cli(['schedules', 'remove', 'hourly-sum', '--url', url, '--queue', queue])).toMatchObject({ code: 0, stdout: 'Removed schedule hourly-sum.\n' });
      expect((await listSchedules({ queueUrl: url, queue })).map((s) => s.id)).toEqual(['scheduled_sum']);
      const missing = await cli(['schedules', 'remove', 'hourly-sum', '--url', url, '--queue', queue]);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain('There is no schedule "hourly-sum" on queue');
      await removeSchedule('scheduled_sum', { queueUrl: url, queue });
    });
  });
});
