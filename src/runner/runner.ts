/**
 * The runner: the one part of stepcache with effects. It compiles a pipeline into its DAG,
 * decides for each step whether to serve it from the cache or execute it, stores what executes,
 * and records the run. This module wires the parts: stores, events and their subscribers (the
 * logger is one), the executor, runs, plans and explanations.
 *
 * @packageDocumentation
 */
import * as E from 'fp-ts/Either';
import * as TE from 'fp-ts/TaskEither';
import { createCacheAdmin, validatePruneOptions, type CacheAdmin, type PruneOptions } from '../cache/maintenance';
import { StepcacheError, toError } from '../errors';
import { compilePipeline, type AnyPipeline, type Pipeline, type PipelineGraph, type PipelineOutputs, type PipelineOutputValues } from '../pipeline/pipeline';
import { preview } from '../format/preview';
import type { MetadataStore, RunQuery } from '../store/metadata-store';
import type { RunRecord } from '../store/records';
import { fingerprintsIn, openContext, type ContextDependencies } from './context';
import { dispatcher, type RunSubscriber } from './events';
import { explainStep } from './explain';
import { closeExecutor, executorFor, leavesLookupsToWorkers } from '../distributed/dispatch';
import { consoleLogger, loggingSubscriber, silentLogger, type Logger } from './logger';
import type { Plan, Run, Runner, RunnerOptions, RunParams } from './model';
import { readOnlyArtifactStore, readOnlyMetadataStore } from '../store/read-only-store';
import { pruneRuns } from '../store/run-retention';
import { planSteps } from './plan';
import { newRunId } from './record';
import { runInContext } from './run';
import { storeAccess } from './stores';

export type { Plan, PlannedStep, Run, Runner, RunnerOptions, RunParams } from './model';

// wiring

const validConcurrency = (concurrency: number): number => {
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new StepcacheError('INVALID_OPTIONS', `Invalid option concurrency: got ${preview(concurrency)}, expected a whole number of at least 1.`, { field: 'concurrency' });
  }
  return concurrency;
};

/** The logger's subscriber (the logger itself when it takes events; none for the silent logger), then the options' own. */
const subscribersOf = (logger: Logger, onEvent: RunSubscriber | undefined): RunSubscriber => {
  const logging = logger === silentLogger ? [] : [logger.onEvent ?? loggingSubscriber(logger)];
  return dispatcher([...logging, ...(onEvent === undefined ? [] : [onEvent])], (message) => logger.warn(message));
};

const compileOrThrow = (p: unknown, params: unknown): PipelineGraph => {
  if (typeof p !== 'object' || p === null || (p as { _tag?: unknown })._tag !== 'Pipeline') {
    throw new StepcacheError('INVALID_PIPELINE', `runner.run takes a pipeline made with pipeline(name, definition), got ${typeof p}.`);
  }
  const pipe = p as AnyPipeline;
  if (params !== undefined && (typeof params !== 'object' || params === null || Array.isArray(params))) {
    throw new StepcacheError('INVALID_OPTIONS', `The parameters of pipeline ${pipe.name} must be an object, got ${preview(params)}.`, { field: 'params' });
  }
  const graph = compilePipeline(pipe, (params ?? {}) as never);
  if (E.isLeft(graph)) {
    const e = graph.left;
    throw new StepcacheError('INVALID_PIPELINE', e.message, { ...('step' in e ? { step: e.step } : {}), ...('field' in e ? { field: e.field } : {}), ...(e._tag === 'DefinitionThrew' ? { cause: e.cause } : {}) });
  }
  return graph.right;
};

/**
 * The Promise edge: whatever a run or a plan throws that is not yet a `StepcacheError` (a store
 * driver's own error, a failure of the file system) becomes one, naming the pipeline.
 */
const typedFailures = <A>(p: unknown, f: () => Promise<A>): Promise<A> =>
  Promise.resolve()
    .then(f)
    .catch((e: unknown) => {
      if (e instanceof StepcacheError) throw e;
      const name = typeof p === 'object' && p !== null && typeof (p as { name?: unknown }).name === 'string' ? ` of pipeline ${(p as { name: string }).name}` : '';
      throw new StepcacheError('STORE_UNAVAILABLE', `The run${name} failed outside any step: ${toError(e).message}`, { cause: e });
    });

const cacheAdminOf = (admin: CacheAdmin): CacheAdmin =>
  Object.freeze({
    list: admin.list,
    clear: admin.clear,
    prune: async (prune: PruneOptions = {}) => {
      const invalid = typeof prune === 'object' && prune !== null ? validatePruneOptions(prune) : { field: 'options' as const, message: 'Prune options must be an object.' };
      if (invalid !== undefined) throw new StepcacheError('INVALID_OPTIONS', invalid.message, { field: invalid.field });
      return admin.prune(prune);
    },
  });

/**
 * Creates a runner over a store: the embedded default (`./.stepcache`, or `$STEPCACHE_DIR`),
 * or the stores given in the options. Nothing is opened until the first run.
 *
 * @example
 * const runner = createRunner();
 * const first = await runner.run(trainingPipeline);   // executes every step
 * const second = await runner.run(trainingPipeline);  // every step cached
 * second.steps.svc_trainer?.status; // 'cached'
 */
export const createRunner = (options: RunnerOptions = {}): Runner => {
  const logger = options.logger ?? consoleLogger;
  const concurrency = validConcurrency(options.concurrency ?? 1);
  const stores = storeAccess(options);
  const executor = executorFor({
    ...options,
    dir: stores.dir,
    onProgress: (step, progress) => {
      if (progress.phase === 'executing') logger.info(`Step ${step} is executing on worker ${progress.worker}.`);
    },
  });
  const deps: ContextDependencies = {
    stores,
    executor,
    lookupsOnWorkers: leavesLookupsToWorkers(executor, options.preventClientSideCaching),
    subscriber: subscribersOf(logger, options.onEvent),
    fingerprints: fingerprintsIn(stores.dir, stores.readOnly, { secret: options.secret, onIgnored: (message) => logger.warn(message) }),
  };
  /** The metadata store outside runs: entries ignored for their signature are logged. */
  const metadata = async (): Promise<MetadataStore> => (await stores.open()).metadataFor((message) => logger.warn(message));
  const read = <A>(f: (m: MetadataStore) => Promise<A>) => stores.call('be read', async () => f(await metadata()));

  const run = <P, O extends PipelineOutputs | void>(p: Pipeline<P, O>, ...params: RunParams<P>): Promise<Run<PipelineOutputValues<Pipeline<P, O>>>> =>
    typedFailures(p, async () => {
      const graph = compileOrThrow(p, params[0]);
      const ctx = await openContext(deps, p as unknown as AnyPipeline, graph, newRunId());
      const settings = { concurrency, heartbeatEveryMs: options.heartbeatEveryMs };
      const keepRuns = options.keepRuns;
      if (keepRuns === undefined) return runInContext<PipelineOutputValues<Pipeline<P, O>>>(ctx, stores, params[0], settings);
      // Retention after the run, whatever its outcome; a failure to prune does not fail the run.
      const retain = () => pruneRuns(ctx.metadata, keepRuns).catch((e: unknown) => logger.warn(`Old runs could not be pruned (keepRuns): ${toError(e).message}`));
      return runInContext<PipelineOutputValues<Pipeline<P, O>>>(ctx, stores, params[0], settings).then(
        async (done) => (await retain(), done),
        async (e: unknown) => {
          await retain();
          throw e;
        },
      );
    });

  const plan = <P, O extends PipelineOutputs | void>(p: Pipeline<P, O>, ...params: RunParams<P>): Promise<Plan> =>
    typedFailures(p, async () => {
      const graph = compileOrThrow(p, params[0]);
      return planSteps(await openContext(deps, p as unknown as AnyPipeline, graph, 'plan'));
    });

  return Object.freeze({
    run,
    runTask: <P, O extends PipelineOutputs | void>(p: Pipeline<P, O>, ...params: RunParams<P>) =>
      TE.tryCatch(
        () => run(p, ...params),
        (e) => (e instanceof StepcacheError ? e : new StepcacheError('STORE_UNAVAILABLE', toError(e).message, { cause: e })),
      ),
    explain: async (run: RunRecord | string, step: string) => {
      const record = typeof run === 'string' ? await read((m) => m.getRun(run)) : run;
      if (record === undefined) throw new StepcacheError('UNKNOWN_RUN', `There is no run ${JSON.stringify(run)} in the store in ${stores.dir}.`, { field: 'run' });
      return explainStep(record, step);
    },
    cache: cacheAdminOf(
      createCacheAdmin(async () => {
        // On a read-only store, what would remove something fails, saying why.
        const refuse = (why: string): never => {
          throw new StepcacheError('STORE_UNAVAILABLE', `The store in ${stores.dir} is read-only (${why}): nothing can be pruned or cleared.`);
        };
        const opened = await stores.open();
        return { metadata: readOnlyMetadataStore(await metadata(), stores.readOnly, refuse), artifacts: readOnlyArtifactStore(opened.artifacts, opened.hashing, stores.readOnly, refuse) };
      }),
    ),
    plan,
    getRun: (id: string) => read((m) => m.getRun(id)),
    listRuns: (query?: RunQuery) => read((m) => m.listRuns(query)),
    close: async () => {
      // An executor the runner made (from the queue URL) is the runner's to close.
      if (options.executor === undefined) await closeExecutor(executor);
      await stores.close();
    },
  });
};
