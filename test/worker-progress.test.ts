/**
 * What workers report, as typed run events, and retries on the queue, on both queue backends (a
 * real Redis and a real PostgreSQL) with a worker in this process: each executed step's `step-remote-started` names its worker, host and
 * attempt, the run record keeps the worker, and a step's `retries` become attempts of its job.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { createFileArtifactStore, createRunner, createSqliteMetadataStore, pipeline, silentLogger, step, type RunEvent, type StepcacheError } from '../src';
import { pipelineModuleOf } from '../src/distributed/pipeline-module';
import { queueExecutor } from '../src/distributed/queue-executor';
import { createWorker, type StepWorker } from '../src/distributed/worker';
import { logLineOf } from '../src/runner/logger';
import { rejection, removeDir, tempDir } from './support/fixtures';
import { testPostgres } from './support/provision/postgres';
import { provideRedisServer } from './support/provision/redis';

jest.setTimeout(120_000);

let calls = 0;
let failures = 0;
const source = step(function source_rows() {
  return [1, 2, 3];
});
const flaky = step(function flaky_sum({ rows }: { rows: number[] }) {
  calls++;
  if (calls <= failures) throw new Error(`connection reset (call ${String(calls)})`);
  return rows.reduce((a, b) => a + b, 0);
});
const unstorable = step(function make_symbol() {
  calls++;
  return Symbol('x');
});
const chain = pipeline('progress_chain', (p) => ({ total: p.call(flaky, { rows: p.call(source, {}) }) }));
const broken = pipeline('unstorable_chain', (p) => ({ out: p.call(unstorable, {}) }));

/** The two queue backends every distributed test runs on: a real Redis and a real PostgreSQL. */
const BACKENDS = [
  { backend: 'Redis', start: async () => provideRedisServer() },
  { backend: 'PostgreSQL', start: async () => testPostgres() },
] as const;

let queueUrl: string;
let dir: string;
let worker: StepWorker;
let queue = 0;

/** How many artifacts the client read. */
let clientReads = 0;

/** A store folder, a queue and a worker of the test's own, and a runner sending steps to it. */
const setup = async () => {
  clientReads = 0;
  dir = tempDir('stepcache-progress-');
  const name = `progress-${String(++queue)}`;
  const metadata = () => createSqliteMetadataStore(path.join(dir, 'metadata.sqlite'));
  const artifacts = () => createFileArtifactStore(path.join(dir, 'artifacts'));
  worker = await createWorker({ module: pipelineModuleOf('inline', { chain, broken }), url: queueUrl, queue: name, metadata: metadata(), artifacts: artifacts(), logger: silentLogger, name: 'worker-a' });
  const executor = queueExecutor({ url: queueUrl, queue: name, backoffMs: 20 });
  const events: RunEvent[] = [];
  const files = artifacts();
  const counted: typeof files = { ...files, get: (ref) => (clientReads++, files.get(ref)) };
  const runner = createRunner({ dir, logger: silentLogger, executor, metadata: metadata(), artifacts: counted, onEvent: (e) => events.push(e) });
  return {
    runner,
    events,
    close: async () => {
      await runner.close();
      await executor.close();
      await worker.close();
      removeDir(dir);
    },
  };
};

beforeEach(() => {
  calls = 0;
  failures = 0;
});

describe.each(BACKENDS)('on $backend', ({ start }) => {
  let server: { readonly url: string; dispose(): Promise<void> } | undefined;
  beforeAll(async () => {
    server = await start();
    queueUrl = server.url;
  }, 180_000);
  afterAll(async () => {
    await server?.dispose();
  });

  describe('worker progress as run events', () => {
    it('each executed step has a step-remote-started naming the worker, its host and attempt 1; step-executed and the run record name the worker', async () => {
      const { runner, events, close } = await setup();
      try {
        const run = await runner.run(chain);
        const started = events.filter((e): e is Extract<RunEvent, { type: 'step-remote-started' }> => e.type === 'step-remote-started');
        expect(started.map((e) => [e.step, e.worker, e.host, e.attempt]).sort()).toEqual([
          ['flaky_sum', 'worker-a', os.hostname(), 1],
          ['source_rows', 'worker-a', os.hostname(), 1],
        ]);
        const executed = events.filter((e): e is Extract<RunEvent, { type: 'step-executed' }> => e.type === 'step-executed');
        expect(executed.map((e) => e.worker)).toEqual(['worker-a', 'worker-a']);
        // started before it finished
        expect(events.findIndex((e) => e.type === 'step-remote-started' && e.step === 'flaky_sum')).toBeLessThan(events.findIndex((e) => e.type === 'step-executed' && e.step === 'flaky_sum'));
        const record = await runner.getRun(run.id);
        expect(record?.steps['flaky_sum']?.worker).toBe('worker-a');
        expect(record?.steps['source_rows']?.worker).toBe('worker-a');
        expect(started.map((e) => logLineOf(e)?.text)).toContain('Step flaky_sum has started on worker worker-a.');
        expect(logLineOf(executed[0] as RunEvent)?.text).toMatch(/^Step source_rows has finished in .* on worker worker-a\.$/);
      } finally {
        await close();
      }
    });

    it('a cached step names no worker', async () => {
      const { runner, events, close } = await setup();
      try {
        await runner.run(chain);
        events.length = 0;
        const again = await runner.run(chain);
        expect(events.some((e) => e.type === 'step-remote-started')).toBe(false);
        expect((await runner.getRun(again.id))?.steps['flaky_sum']?.worker).toBeUndefined();
      } finally {
        await close();
      }
    });
  });

  describe('dispatching', () => {
    it('the client reads no input artifact of a step it sends to a worker (the worker reads them); a tiny output it asks for comes in the job\'s answer, inside its descriptor', async () => {
      const { runner, close } = await setup();
      try {
        const run = await runner.run(chain);
        expect(run.steps['flaky_sum']?.status).toBe('executed');
        expect(clientReads).toBe(0);
        expect(run.steps['flaky_sum']?.outputs?.['output']?.inline).toBe(Buffer.from('6').toString('base64'));
        expect(await run.output('total')).toBe(6);
        expect(clientReads).toBe(0); // read from the entry: no file, no object
      } finally {
        await close();
      }
    });
  });

  describe('retries on the queue', () => {
    it('retries: 2 makes three attempts of the job: a step failing twice executes, each attempt announced', async () => {
      failures = 2;
      const { runner, events, close } = await setup();
      try {
        const run = await runner.run(chain.withOptions({ steps: { flaky_sum: { retries: 2 } } }));
        expect(run.steps['flaky_sum']?.status).toBe('executed');
        expect(await run.output('total')).toBe(6);
        expect(calls).toBe(3);
        expect(events.filter((e) => e.type === 'step-remote-started' && e.step === 'flaky_sum').map((e) => (e as { attempt: number }).attempt)).toEqual([1, 2, 3]);
        expect(events.map(logLineOf).map((l) => l?.text)).toContain('Step flaky_sum has started on worker worker-a (attempt 3).');
      } finally {
        await close();
      }
    });

    it('fails once the attempts are used up, with the step error', async () => {
      failures = 10;
      const { runner, close } = await setup();
      try {
        const e: StepcacheError = await rejection(runner.run(chain.withOptions({ retries: 1 })));
        expect(e.code).toBe('STEP_FAILED');
        expect(e.message).toContain('connection reset (call 2)');
        expect(calls).toBe(2);
      } finally {
        await close();
      }
    });

    it('an error another try cannot fix (outputs that cannot be stored) fails at once, whatever the retries', async () => {
      const { runner, close } = await setup();
      try {
        const e = await rejection(runner.run(broken.withOptions({ retries: 3 })));
        expect(e.code).toBe('UNENCODABLE_VALUE');
        expect(calls).toBe(1);
      } finally {
        await close();
      }
    });
  });
});
