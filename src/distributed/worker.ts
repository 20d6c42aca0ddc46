/**
 * Workers: processes that take step jobs from the queue and execute them with the same pipeline
 * code as the clients. A worker refuses a job whose code differs from its own (the job fails at
 * once, without retries), looks in the cache again before executing (another client may have
 * produced the entry meanwhile), executes, stores the outputs in the team's artifact store and
 * answers with their descriptors, reporting to the client as it goes. A worker also takes the run
 * jobs of schedules (see `schedule`): it runs the whole pipeline then, with a runner of its own
 * over the team's stores that executes the misses in this process.
 *
 * @packageDocumentation
 */
import * as os from 'node:os';
import * as E from 'fp-ts/Either';
import { StepcacheError, toError } from '../errors';
import { fingerprintFunction } from '../fingerprint';
import { formatDuration } from '../format/duration';
import { contentHasherNowReady, keyHashFunction } from '../hash/hashers';
import type { GraphNode } from '../pipeline/pipeline';
import type { ExecutionRequest } from '../runner/executor';
import { formatOf, inProcessExecutor, stepFailure } from '../runner/in-process-executor';
import { consoleLogger, type Logger } from '../runner/logger';
import { createRunner, type Runner } from '../runner/runner';
import type { ArtifactStore } from '../store/artifact-store';
import { artifactsPresent, loadArtifact } from '../store/inline';
import type { MetadataStore } from '../store/metadata-store';
import type { CacheEntry } from '../store/records';
import { deserializeOutput } from '../store/serialize';
import { queueBackend, type StepJob } from './backend';
import { bullmq, QUEUE_URL_VARIABLE } from './connection';
import { DEFAULT_QUEUE_NAME, encodeFailure, type StepJobData, type StepJobProgress, type StepJobResult } from './job';
import { findStep, loadPipelineModule, stepNames, type FoundStep, type PipelineModule } from './pipeline-module';
import { isRunJobData, RUN_JOB_NAME, type RunJobData, type RunJobResult } from './job';

// model

/**
 * How to make a worker.
 *
 * @example
 * const worker = await createWorker({ module: './dist/pipelines.js', url: 'redis://queue.internal:6379', concurrency: 2, metadata, artifacts });
 */
export interface WorkerOptions {
  /** The pipeline module (a file or a package name) whose exported pipelines the worker executes; or the module already loaded. */
  readonly module: string | PipelineModule;
  /** The queue server. @default process.env.STEPCACHE_QUEUE_URL */
  readonly url?: string;
  /** The queue's name. @default 'stepcache' */
  readonly queue?: string;
  /** How many jobs this worker executes at once. @default 1 */
  readonly concurrency?: number;
  /** The team's metadata store: where the worker looks for an entry before executing. */
  readonly metadata: MetadataStore;
  /** The team's artifact store: where inputs are read and outputs written. */
  readonly artifacts: ArtifactStore;
  /** Where log lines go. @default consoleLogger */
  readonly logger?: Logger;
  /** How this worker names itself in progress reports. @default `<hostname>:<pid>` */
  readonly name?: string;
  /**
   * How long a job stays locked to this worker without a renewal (a worker that dies loses its
   * jobs to the others after about this long). @default 30_000
   */
  readonly lockDurationMs?: number;
  /** How often stalled jobs (of workers that died) are looked for. @default 30_000 */
  readonly stalledIntervalMs?: number;
  /** How many times a job may stall before it fails. @default 1 */
  readonly maxStalledCount?: number;
  /** The store folder of the runner that runs scheduled pipelines (it keeps its fingerprint cache there). @default $STEPCACHE_DIR or ./.stepcache */
  readonly dir?: string;
}

/**
 * A running worker.
 *
 * @example
 * const worker = await createWorker(options);
 * process.once('SIGTERM', () => void worker.close());
 */
export interface StepWorker {
  /** How it names itself. */
  readonly name: string;
  /** How many jobs it executed (not counting those served from the cache). */
  executed(): number;
  /** Waits for the jobs in hand to finish, then disconnects. */
  close(): Promise<void>;
}

// executing one job

const fingerprints = new WeakMap<object, string>();

/** What stands for the step's code in keys, on this worker: its version, or its fingerprint (computed once per function). */
const localCode = (found: FoundStep, hashKey: (bytes: Uint8Array) => string): string => {
  if (found.version !== undefined) return `version:${found.version}`;
  const { fn, site } = found.node.step;
  let hash = fingerprints.get(fn);
  if (hash === undefined) {
    hash = fingerprintFunction(fn, site, hashKey).hash;
    fingerprints.set(fn, hash);
  }
  return `fingerprint:${hash}`;
};

/**
 * Fingerprints every step of the module's pipelines before the first job: fingerprinting reads
 * and parses source, which would otherwise hold the first job of each step (and its lock renewals).
 */
const fingerprintAll = (loaded: PipelineModule, hashKey: (bytes: Uint8Array) => string): void => {
  for (const pipe of loaded.pipelines.values()) {
    for (const name of stepNames(loaded, pipe.name)) {
      const found = findStep(loaded, pipe.name, name);
      if (E.isRight(found)) localCode(found.right, hashKey);
    }
  }
};

const loadInputs = (data: StepJobData, found: FoundStep, artifacts: ArtifactStore) => async (): Promise<E.Either<StepcacheError, Readonly<Record<string, unknown>>>> => {
  const argument: Record<string, unknown> = { ...data.parameters };
  for (const [field, input] of Object.entries(data.inputs)) {
    const upstream = found.graph?.nodes.find((n) => n.name === input.step);
    const format = upstream === undefined ? 'auto' : formatOf(upstream, input.output);
    const bytes = await loadArtifact(artifacts, input.descriptor);
    if (E.isLeft(bytes)) return E.left(stepFailure('ARTIFACT_UNAVAILABLE', `Input ${field} of step ${data.identity.step} (artifact ${bytes.left.location}) ${bytes.left.message}`, data.identity.step, undefined, field));
    const value = deserializeOutput(bytes.right, input.descriptor, format);
    if (E.isLeft(value)) return E.left(stepFailure('ARTIFACT_UNAVAILABLE', `Input ${field} of step ${data.identity.step} cannot be decoded: ${value.left.message}`, data.identity.step, undefined, field));
    argument[field] = value.right;
  }
  return E.right(argument);
};

/** Errors another try cannot fix: the job fails at once. */
const RETRYABLE: ReadonlySet<StepcacheError['code']> = new Set(['STEP_FAILED', 'STORE_UNAVAILABLE', 'ARTIFACT_UNAVAILABLE']);
const failure = (error: StepcacheError): Error => (RETRYABLE.has(error.code) ? new Error(encodeFailure(error)) : new (bullmq().UnrecoverableError)(encodeFailure(error)));

const isJobData = (x: unknown): x is StepJobData => {
  const d = x as Partial<StepJobData> | null;
  return (
    typeof d === 'object' && d !== null && typeof d.identity === 'object' && d.identity !== null && typeof d.identity.key === 'string' && typeof d.identity.step === 'string' &&
    typeof d.identity.pipeline === 'string' && typeof d.identity.code === 'string' && typeof d.parameters === 'object' && typeof d.inputs === 'object'
  );
};

/** The metadata store, but for `close`: a runner closes its stores, and these are the worker's caller's. */
const unclosed = (metadata: MetadataStore): MetadataStore => new Proxy(metadata, { get: (target, p, receiver) => (p === 'close' ? () => Promise.resolve() : Reflect.get(target, p, receiver) as unknown) });

// the worker

/**
 * Starts a worker on the queue: it loads the pipeline module, then executes step jobs until
 * closed. On SIGTERM call `close()`: the jobs in hand finish first.
 *
 * @example
 * const worker = await createWorker({ module: './dist/pipelines.js', concurrency: 2, metadata: createPostgresMetadataStore({ url }), artifacts: createS3ArtifactStore(s3) });
 * process.once('SIGTERM', () => void worker.close());
 */
export const createWorker = async (options: WorkerOptions): Promise<StepWorker> => {
  const url = options.url ?? process.env[QUEUE_URL_VARIABLE];
  if (url === undefined || url === '') {
    throw new StepcacheError('INVALID_OPTIONS', `A worker needs the queue server: pass url, or set ${QUEUE_URL_VARIABLE} (redis://host:6379 or postgres://user:password@host:5432/database).`, { field: 'url' });
  }
  const concurrency = options.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new StepcacheError('INVALID_OPTIONS', `Invalid option concurrency: got ${String(concurrency)}, expected a whole number of at least 1.`, { field: 'concurrency' });
  }
  const backend = queueBackend(url, options.url === undefined ? QUEUE_URL_VARIABLE : 'url');
  const { server } = backend;
  const loaded = typeof options.module === 'string' ? await loadPipelineModule(options.module) : options.module;
  const logger = options.logger ?? consoleLogger;
  const name = options.name ?? `${os.hostname()}:${String(process.pid)}`;
  const hashKey = await keyHashFunction();
  await contentHasherNowReady(); // a step's output is then stored at once when it returns (a keyed store needs no loading)
  fingerprintAll(loaded, hashKey);
  const executor = inProcessExecutor();
  let executed = 0;

  /** The runner of scheduled runs: made at the first, over the worker's stores (which it never closes: they are the caller's). */
  let runner: Runner | undefined;
  const runScheduled = async (data: RunJobData): Promise<RunJobResult> => {
    const pipe = loaded.pipelines.get(data.pipeline);
    if (pipe === undefined) {
      throw failure(
        new StepcacheError('CODE_MISMATCH', `Schedule ${data.schedule} runs pipeline ${data.pipeline}, which this worker's module ${loaded.specifier} does not export (it has ${[...loaded.pipelines.keys()].join(', ') || 'none'}); deploy the pipeline to the workers or remove the schedule.`),
      );
    }
    // The misses execute here (the worker's executor), never through the queue, where they would wait for this very worker.
    runner ??= createRunner({ ...(options.dir === undefined ? {} : { dir: options.dir }), metadata: unclosed(options.metadata), artifacts: options.artifacts, logger, executor });
    logger.info(`Worker ${name} runs pipeline ${data.pipeline} for schedule ${data.schedule}.`);
    try {
      const run = await runner.run(pipe, data.parameters as never);
      executed += Object.values(run.steps).filter((s) => s.status === 'executed').length;
      return { runId: run.id, status: run.status === 'completed' ? 'completed' : 'failed', executed: Object.entries(run.steps).filter(([, s]) => s.status === 'executed').map(([n]) => n) };
    } catch (e) {
      const error = e instanceof StepcacheError ? e : new StepcacheError('STEP_FAILED', `The scheduled run of ${data.pipeline} failed: ${toError(e).message}`, { cause: e });
      // A scheduled run is not tried again: the next one comes with the schedule.
      throw new (bullmq().UnrecoverableError)(encodeFailure(error));
    }
  };

  const process_ = async (job: StepJob): Promise<StepJobResult | RunJobResult> => {
    const data: unknown = job.data;
    if (job.name === RUN_JOB_NAME && isRunJobData(data)) return runScheduled(data);
    if (!isJobData(data)) throw new (bullmq().UnrecoverableError)(encodeFailure(new StepcacheError('INVALID_OPTIONS', `Job ${String(job.id)} is not a step job of this version of stepcache.`)));
    const { identity } = data;
    // Progress is not waited for: it goes out on the worker's connection ahead of the job's completion, so clients
    // hear it first, and a step does not wait a round trip to the queue server to start, or to answer.
    const report = (progress: StepJobProgress): void => void job.updateProgress(progress).catch(() => undefined);
    const found = findStep(loaded, identity.pipeline, identity.step);
    if (E.isLeft(found)) throw failure(found.left);
    const code = localCode(found.right, hashKey);
    if (code !== identity.code) {
      const mismatch = new StepcacheError(
        'CODE_MISMATCH',
        `Step ${identity.step} of pipeline ${identity.pipeline}: the client's code is ${identity.code}, worker ${name} has ${code}; deploy the same code to clients and workers (the job was not executed).`,
        { step: identity.step },
      );
      logger.error(mismatch.message);
      throw failure(mismatch);
    }
    if (data.reuse !== undefined) {
      const [entry] = await options.metadata.getEntries([identity.key]);
      const outputs = entry === undefined ? [] : found.right.node.outputNames.map((o) => entry.outputs[o]);
      const fresh = entry !== undefined && (data.reuse.maxAgeMs === undefined || Date.now() - entry.createdAt <= data.reuse.maxAgeMs);
      if (entry !== undefined && fresh && outputs.every((d) => d !== undefined) && (await artifactsPresent(options.artifacts, Object.values(entry.outputs))).every(Boolean)) {
        logger.info(`Using cached version of ${identity.step}.`);
        report({ phase: 'cached', worker: name, cachedFrom: entry.runId });
        return { descriptors: entry.outputs, durationMs: entry.durationMs, worker: name, cachedFrom: entry.runId };
      }
    }
    const attempt = job.attemptsMade + 1;
    logger.info(`Step ${identity.step} has started on worker ${name}${attempt > 1 ? ` (attempt ${String(attempt)})` : ''}.`);
    report({ phase: 'executing', worker: name, host: os.hostname(), attempt });
    const node: GraphNode = found.right.node;
    const request: ExecutionRequest = { identity, node, parameters: data.parameters, inputs: data.inputs, argument: loadInputs(data, found.right, options.artifacts) };
    const result = await executor.execute(request, { artifacts: options.artifacts });
    if (E.isLeft(result)) {
      logger.error(result.left.message);
      throw failure(result.left);
    }
    executed++;
    const { descriptors, durationMs } = result.right;
    if (data.entry !== undefined) {
      // Committed before the job answers: a request for this key that comes after finds it.
      const { runId, components, ttlMs, replace } = data.entry;
      const entry: CacheEntry = { key: identity.key, pipeline: identity.pipeline, step: identity.step, runId, createdAt: Date.now(), durationMs, outputs: descriptors, components };
      await options.metadata.putEntry(entry, { ttlMs, replace }).catch((e: unknown) => {
        throw failure(new StepcacheError('STORE_UNAVAILABLE', `Worker ${name} could not record the cache entry of step ${identity.step}: ${toError(e).message}`, { step: identity.step, cause: e }));
      });
    }
    logger.info(`Step ${identity.step} has finished in ${formatDuration(durationMs, 'log')} on worker ${name}.`);
    report({ phase: 'done', worker: name, durationMs });
    return { descriptors, durationMs, worker: name, host: os.hostname(), attempt, ...(data.entry === undefined ? {} : { committed: true }) };
  };

  const worker = backend.worker(options.queue ?? DEFAULT_QUEUE_NAME, process_, {
    concurrency,
    ...(options.lockDurationMs === undefined ? {} : { lockDuration: options.lockDurationMs }),
    ...(options.stalledIntervalMs === undefined ? {} : { stalledInterval: options.stalledIntervalMs }),
    ...(options.maxStalledCount === undefined ? {} : { maxStalledCount: options.maxStalledCount }),
  });
  worker.on('error', (e) => logger.warn(`Worker ${name}: the queue server ${server.shown} failed: ${e.message}`));
  await worker.waitUntilReady();
  return {
    name,
    executed: () => executed,
    close: () => worker.close(),
  };
};
