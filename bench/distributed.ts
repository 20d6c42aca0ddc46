/**
 * Distributed execution in the benchmark, on a real Redis (test/support/provision/redis):
 *
 * 1. Dispatch overhead per executed step: a chain of {@link CHAIN_STEPS} tiny steps executed
 *    through the queue by a worker (in this process), minus the same chain executed in-process,
 *    per step: what enqueueing, starting on a worker and hearing the result back cost. Beside it,
 *    interleaved in the same run, BullMQ's own bare round trip of an empty job (Queue.add, a
 *    worker that returns, waitUntilFinished on QueueEvents). Goals: under
 *    {@link DISPATCH_GOAL_MS} ms and within {@link DISPATCH_RATIO_GOAL}x the bare round trip.
 * 2. Scheduling on workers: {@link WORKERS} workers (child processes, one step at a time each) on a
 *    grid of 4 layers of 3 CPU-bound steps of about a second each. The ideal for 3 workers is
 *    4 x 1 s; but this machine's cores bound it too: 12 s of CPU on N cores take at least 12/N s.
 *    Both ideals are printed, with the ratio to the feasible one (the larger).
 *
 * Runnable alone: `node --expose-gc --import tsx bench/distributed.ts`.
 *
 * @packageDocumentation
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { createFileArtifactStore, createRunner, createSqliteMetadataStore, silentLogger, type Runner } from '../src/index';
import { inProcessExecutor } from '../src/runner/in-process-executor';
import { queueServer } from '../src/distributed/connection';
import { pipelineModuleOf } from '../src/distributed/pipeline-module';
import { queueExecutor, type QueueExecutor } from '../src/distributed/queue-executor';
import { createWorker } from '../src/distributed/worker';
import { storeLayout } from '../src/store/layout';
import { provideRedisServer } from '../test/support/provision/redis';
import { CHAIN_STEPS, cpuGrid, GRID_LAYERS, GRID_WIDTH, burn, tinyChain } from './distributed-pipelines';
import { formatMs, interleave, median, renderTable, timeAsync, type Row } from './measure';

/** The goal: dispatching one executed step costs less than this. */
export const DISPATCH_GOAL_MS = 5;
/** The goal: dispatching one executed step costs at most this multiple of BullMQ's bare round trip. */
export const DISPATCH_RATIO_GOAL = 1.5;
/** Workers of the scheduling measure. */
export const WORKERS = 3;

const REPOSITORY = path.resolve(__dirname, '..');

// dispatch overhead

/** What the dispatch measure found, in milliseconds per step (or per job). */
export interface DispatchResult {
  /** Chain through the queue, per step. */
  readonly queued: number[];
  /** Chain in-process, per step. */
  readonly inProcess: number[];
  /** BullMQ's bare round trip, per job. */
  readonly bare: number[];
}

const executedRun = async (runner: Runner, seed: number): Promise<number> => {
  let executed = 0;
  const ms = await timeAsync(async () => {
    const run = await runner.run(tinyChain, { seed });
    executed = Object.values(run.steps).filter((s) => s.status === 'executed').length;
  });
  if (executed !== CHAIN_STEPS) throw new Error(`a run that should execute every step executed ${String(executed)} of ${String(CHAIN_STEPS)}`);
  return ms / CHAIN_STEPS;
};

/**
 * Measures the chain through the queue, in-process, and BullMQ's bare round trip, `reps` times interleaved.
 *
 * @example
 * const result = await measureDispatch('redis://127.0.0.1:6390', 9);
 */
export const measureDispatch = async (url: string, reps: number): Promise<DispatchResult> => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'stepcache-bench-dispatch-'));
  const layout = storeLayout(path.join(root, 'store'));
  fs.mkdirSync(layout.dir, { recursive: true });
  const workerMetadata = createSqliteMetadataStore(layout.metadataFile);
  const worker = await createWorker({ module: pipelineModuleOf('bench', { tinyChain }), url, queue: 'bench-dispatch', metadata: workerMetadata, artifacts: createFileArtifactStore(layout.artifactsDir), logger: silentLogger });
  const executor: QueueExecutor = queueExecutor({ url, queue: 'bench-dispatch' });
  // The client and the worker share one connection to the metadata file, as they would share a
  // server: two SQLite connections to one file would wait on each other's locks (in sleeps of
  // milliseconds), which is SQLite's cost, not dispatching's.
  const queued = createRunner({ dir: layout.dir, logger: silentLogger, executor, metadata: workerMetadata, artifacts: createFileArtifactStore(layout.artifactsDir) });
  const local = createRunner({ dir: path.join(root, 'local'), logger: silentLogger, executor: inProcessExecutor() });

  const { connection } = queueServer(url);
  const bareQueue = new Queue('bench-bare', { connection: { ...connection } });
  const bareEvents = new QueueEvents('bench-bare', { connection: { ...connection } });
  const bareWorker = new Worker('bench-bare', async () => 1, { connection: { ...connection } });
  await Promise.all([bareQueue.waitUntilReady(), bareEvents.waitUntilReady(), bareWorker.waitUntilReady()]);
  const bareRoundTrips = async (): Promise<number> =>
    (await timeAsync(async () => {
      for (let i = 0; i < CHAIN_STEPS; i++) {
        const job = await bareQueue.add('empty', {}, { removeOnComplete: true, removeOnFail: true });
        // A job that finished (and was removed) before the wait began is done too.
        await job.waitUntilFinished(bareEvents).catch((e: unknown) => {
          if (!/Missing key/.test(String(e))) throw e;
        });
      }
    })) / CHAIN_STEPS;

  let seed = 1;
  try {
    // Warm every path (connections, scripts, compiled code) before measuring.
    for (let i = 0; i < 3; i++) {
      await executedRun(queued, seed++);
      await executedRun(local, seed++);
      await bareRoundTrips();
    }
    const inProcess: number[] = [];
    const bare: number[] = [];
    const { a: queuedMs } = await interleave(reps, true, () => executedRun(queued, seed++), async () => {
      inProcess.push(await executedRun(local, seed++));
      bare.push(await bareRoundTrips());
      return 0;
    });
    return { queued: queuedMs, inProcess, bare };
  } finally {
    await queued.close();
    await local.close();
    await executor.close();
    await worker.close();
    await Promise.all([bareWorker.close(), bareEvents.close(), bareQueue.close()]);
    fs.rmSync(root, { recursive: true, force: true });
  }
};

/**
 * The report line of dispatching: the overhead per step (queued minus in-process) against the bare round trip.
 *
 * @example
 * console.log(renderTable([dispatchRow(result)]));
 */
export const dispatchRow = (result: DispatchResult): Row => {
  const overhead = median(result.queued) - median(result.inProcess);
  const bare = median(result.bare);
  return {
    measure: `dispatch overhead per executed step, ${String(CHAIN_STEPS)}-step chain (vs bare BullMQ round trip)`,
    stepcache: formatMs(overhead),
    baseline: formatMs(bare),
    ratio: overhead / bare,
    goal: `< ${String(DISPATCH_GOAL_MS)} ms and <= ${String(DISPATCH_RATIO_GOAL)}x`,
    pass: overhead < DISPATCH_GOAL_MS && overhead / bare <= DISPATCH_RATIO_GOAL,
  };
};

// scheduling on workers

/** What the scheduling measure found. */
export interface GridResult {
  readonly wallMs: number[];
  /** One step's CPU time, measured alone in this process. */
  readonly stepMs: number;
  readonly cores: number;
  /** Which worker executed how many steps, in the last run. */
  readonly perWorker: Record<string, number>;
}

/** Rounds of {@link burn} that take about `ms` on one core of this machine. */
const calibrate = (ms: number): number => {
  let work = 1_000_000;
  for (;;) {
    const took = performance.now();
    burn({ work, seed: 0 });
    const elapsed = performance.now() - took;
    if (elapsed > 200) return Math.round((work * ms) / elapsed);
    work *= 2;
  }
};

const startWorker = async (url: string, dir: string, queue: string, index: number): Promise<ChildProcess> => {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(REPOSITORY, 'src/cli/main.ts'), 'worker', '--module', './bench/distributed-pipelines.ts', '--dir', dir, '--url', url, '--queue', queue, '--concurrency', '1'],
    { cwd: REPOSITORY, env: { ...process.env, STEPCACHE_DIR: path.join(dir, `worker-${String(index)}`) }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (c: Buffer) => void (output += c.toString('utf8')));
  child.stderr?.on('data', (c: Buffer) => void (output += c.toString('utf8')));
  for (let waited = 0; !/is taking jobs/.test(output); waited += 100) {
    if (child.exitCode !== null || waited > 120_000) throw new Error(`a worker did not start: ${output}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return child;
};

/**
 * Runs the grid `reps` times (new keys each time) on {@link WORKERS} worker processes.
 *
 * @example
 * const result = await measureGrid('redis://127.0.0.1:6390', 3);
 */
export const measureGrid = async (url: string, reps: number): Promise<GridResult> => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stepcache-bench-grid-'));
  const layout = storeLayout(dir);
  const work = calibrate(1_000);
  const stepMs = await timeAsync(async () => burn({ work, seed: 1 }));
  const workers = await Promise.all(Array.from({ length: WORKERS }, (_, i) => startWorker(url, dir, 'bench-grid', i)));
  const executor = queueExecutor({ url, queue: 'bench-grid' });
  const perWorker: Record<string, number> = {};
  const runner = createRunner({
    dir,
    logger: silentLogger,
    executor,
    concurrency: GRID_WIDTH,
    metadata: createSqliteMetadataStore(layout.metadataFile),
    artifacts: createFileArtifactStore(layout.artifactsDir),
    onEvent: (e) => {
      if (e.type === 'step-executed' && e.worker !== undefined) perWorker[e.worker] = (perWorker[e.worker] ?? 0) + 1;
    },
  });
  try {
    const wallMs: number[] = [];
    for (let rep = 0; rep < reps; rep++) {
      for (const k of Object.keys(perWorker)) delete perWorker[k];
      wallMs.push(await timeAsync(() => runner.run(cpuGrid, { work, seed: rep + 1 })));
    }
    return { wallMs, stepMs, cores: os.cpus().length, perWorker: { ...perWorker } };
  } finally {
    await runner.close();
    await executor.close();
    for (const w of workers) w.kill('SIGTERM');
    await Promise.all(workers.map((w) => new Promise((resolve) => (w.exitCode === null ? w.once('exit', resolve) : resolve(undefined)))));
    fs.rmSync(dir, { recursive: true, force: true });
  }
};

/**
 * The report line of the grid: wall time against the schedule this machine can achieve.
 *
 * @example
 * console.log(renderTable([gridRow(result)]));
 */
export const gridRow = (result: GridResult): Row => {
  const steps = GRID_LAYERS * GRID_WIDTH;
  const ideal = GRID_LAYERS * result.stepMs;
  const feasible = Math.max(ideal, (steps * result.stepMs) / Math.min(result.cores, WORKERS));
  const wall = median(result.wallMs);
  return {
    measure: `${String(WORKERS)} workers, ${String(GRID_LAYERS)}x${String(GRID_WIDTH)} grid of ${formatMs(result.stepMs)} CPU steps: wall (vs feasible ideal)`,
    stepcache: formatMs(wall),
    baseline: formatMs(feasible),
    ratio: wall / feasible,
    goal: '<= 1.2x',
    pass: wall / feasible <= 1.2,
  };
};

const main = async (): Promise<void> => {
  const reps = Math.min(11, Math.max(5, Number(process.env['BENCH_REPS'] ?? 9) || 9));
  const redis = await provideRedisServer();
  try {
    console.log(`distributed execution: node ${process.version}, ${String(os.cpus().length)} CPUs (load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}), Redis at ${redis.url}\n`);
    console.log(`measuring dispatch: a ${String(CHAIN_STEPS)}-step chain through the queue, in-process, and bare BullMQ round trips, ${String(reps)} times interleaved ...`);
    const dispatch = await measureDispatch(redis.url, reps);
    if (process.env['BENCH_DISPATCH_ONLY'] === '1') return console.log(renderTable([dispatchRow(dispatch)]), `\nper step: queued ${formatMs(median(dispatch.queued))}, in-process ${formatMs(median(dispatch.inProcess))}`);
    console.log(`measuring ${String(WORKERS)} worker processes on a ${String(GRID_LAYERS)}x${String(GRID_WIDTH)} grid of CPU-bound steps ...\n`);
    const grid = await measureGrid(redis.url, 3);
    console.log(renderTable([dispatchRow(dispatch), gridRow(grid)]));
    const steps = GRID_LAYERS * GRID_WIDTH;
    console.log(
      `\ndispatch, per step (medians): through the queue ${formatMs(median(dispatch.queued))}, in-process ${formatMs(median(dispatch.inProcess))}, ` +
        `overhead ${formatMs(median(dispatch.queued) - median(dispatch.inProcess))}; bare BullMQ round trip ${formatMs(median(dispatch.bare))}`,
    );
    console.log(
      `grid: wall ${grid.wallMs.map(formatMs).join(', ')}; ideal for ${String(WORKERS)} workers ${formatMs(GRID_LAYERS * grid.stepMs)} (${String(GRID_LAYERS)} layers x one step); ` +
        `this machine's ${String(grid.cores)} cores give at most ${String(Math.min(grid.cores, WORKERS))} steps at once: ${formatMs((steps * grid.stepMs) / Math.min(grid.cores, WORKERS))} ` +
        `(ratio to the 3-worker ideal ${(median(grid.wallMs) / (GRID_LAYERS * grid.stepMs)).toFixed(2)}x); steps per worker in the last run: ${JSON.stringify(grid.perWorker)}`,
    );
  } finally {
    await redis.dispose();
  }
};

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
