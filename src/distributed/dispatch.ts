/**
 * How a runner dispatches steps: in this process, or through the queue that `queueUrl` (or
 * `STEPCACHE_QUEUE_URL`) names. Remote workers must see the same stores as the client, so a
 * runner whose steps go to a queue is refused at start when its metadata store is a local SQLite
 * file or its artifacts are in the local store folder. BullMQ is loaded only once a step is sent.
 *
 * @packageDocumentation
 */
import type * as E from 'fp-ts/Either';
import { StepcacheError } from '../errors';
import { isRemote, type ExecutionRequest, type ExecutionResult, type ExecutionStore, type Executor } from '../runner/executor';
import { inProcessExecutor } from '../runner/in-process-executor';
import { queueServer, QUEUE_URL_VARIABLE } from './connection';
import { resolveStoreUrls } from '../store/urls';
import type { QueueExecutor, QueueExecutorOptions } from './queue-executor';

// model

/**
 * What choosing an executor needs of the runner's options.
 *
 * @example
 * const choice: DispatchOptions = { queueUrl: 'redis://127.0.0.1:6379', metadata, artifacts };
 */
export interface DispatchOptions {
  readonly executor?: Executor;
  readonly queueUrl?: string;
  readonly metadata?: unknown;
  readonly artifacts?: unknown;
  /** Store URLs (else `STEPCACHE_METADATA_URL` and `STEPCACHE_ARTIFACTS_URL`): a PostgreSQL metadata URL and any artifacts URL are shared stores. */
  readonly metadataUrl?: string | undefined;
  readonly artifactsUrl?: string | undefined;
  /** The store directory, for messages. */
  readonly dir: string;
  /** Hears what workers report. */
  readonly onProgress?: QueueExecutorOptions['onProgress'];
}

// utils


/** A keyv instance over SQLite (a local file), whatever wraps it. */
const isLocalKeyv = (metadata: unknown): boolean => {
  const store = (metadata as { opts?: { store?: { constructor?: { name?: string } } } } | null)?.opts?.store;
  return store?.constructor?.name === 'KeyvSqlite';
};

// choosing

/**
 * Why a runner that sends steps to remote workers cannot work with its stores, if it cannot:
 * which store to configure instead.
 *
 * @example
 * remoteStoreProblem({ dir: '.stepcache', queueUrl: 'redis://q:6379' }); // 'Steps are sent to the queue at redis://q:6379, but the metadata store is …'
 */
export const remoteStoreProblem = (options: DispatchOptions, queue: string, env: Readonly<Record<string, string | undefined>> = process.env): string | undefined => {
  const urls = resolveStoreUrls(options, env);
  const sharedMetadata = options.metadata === undefined && urls.metadata !== undefined && /^postgres(ql)?:\/\//.test(urls.metadata.url);
  if (!sharedMetadata && (options.metadata === undefined || isLocalKeyv(options.metadata))) {
    const where = options.metadata === undefined ? `the local SQLite file in ${options.dir}` : 'a local SQLite file';
    return `Steps are sent to the queue at ${queue}, but the metadata store is ${where}, which workers on other machines cannot see: pass metadata: createPostgresMetadataStore({ url }) (a PostgreSQL server every machine reaches).`;
  }
  if (options.artifacts === undefined && urls.artifacts === undefined) {
    return `Steps are sent to the queue at ${queue}, but the artifacts are in the local folder ${options.dir}/artifacts, which workers on other machines cannot see: pass artifacts: createS3ArtifactStore({ bucket, … }), or createFileArtifactStore(dir) on a folder every machine mounts.`;
  }
  return undefined;
};

/**
 * A queue executor that loads BullMQ only when its first step is sent.
 *
 * @example
 * const executor = deferredQueueExecutor({ url: 'redis://127.0.0.1:6379' });
 */
export const deferredQueueExecutor = (options: QueueExecutorOptions & { readonly url: string }): QueueExecutor => {
  const server = queueServer(options.url);
  let loaded: Promise<QueueExecutor> | undefined;
  let made: QueueExecutor | undefined;
  const load = () => (loaded ??= import('./queue-executor').then((m) => (made = m.queueExecutor(options))));
  return Object.freeze({
    remote: true as const,
    server: server.shown,
    enqueued: () => made?.enqueued() ?? 0,
    execute: async (request: ExecutionRequest, store: ExecutionStore): Promise<E.Either<StepcacheError, ExecutionResult>> => (await load()).execute(request, store),
    close: async () => {
      if (loaded !== undefined) await (await loaded).close();
    },
  });
};

/**
 * The executor of a runner: the one given; else the queue that `queueUrl` or
 * `STEPCACHE_QUEUE_URL` names; else in-process. Throws `INVALID_OPTIONS` when steps would go to
 * remote workers that cannot see the runner's stores.
 *
 * @example
 * const executor = executorFor({ dir: '.stepcache', queueUrl: 'redis://q:6379', metadata, artifacts });
 */
export const executorFor = (options: DispatchOptions): Executor => {
  const url = options.queueUrl ?? process.env[QUEUE_URL_VARIABLE];
  const fromQueue = options.executor === undefined && url !== undefined && url !== '';
  const executor =
    options.executor ??
    (fromQueue ? deferredQueueExecutor({ url, ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }) }) : inProcessExecutor());
  if (isRemote(executor)) {
    const problem = remoteStoreProblem(options, (executor as QueueExecutor).server);
    if (problem !== undefined) throw new StepcacheError('INVALID_OPTIONS', problem, { field: /metadata store/.test(problem) ? 'metadata' : 'artifacts' });
  }
  return executor;
};

/**
 * The environment variable that, set to `true`, leaves cache lookups to the workers: the client
 * sends every step to the queue, and workers answer from the cache where they can.
 *
 * @example
 * process.env[PREVENT_CLIENT_SIDE_CACHING_VARIABLE] = 'true';
 */
export const PREVENT_CLIENT_SIDE_CACHING_VARIABLE = 'STEPCACHE_PREVENT_CLIENT_SIDE_CACHING';

/**
 * Whether a runner leaves cache lookups to its executor's workers: only a remote executor can,
 * when asked to by the option, else by `STEPCACHE_PREVENT_CLIENT_SIDE_CACHING=true`.
 *
 * @example
 * leavesLookupsToWorkers(queueExecutor({ url }), true); // true
 * leavesLookupsToWorkers(inProcessExecutor(), true); // false
 */
export const leavesLookupsToWorkers = (executor: Executor, option: boolean | undefined): boolean =>
  isRemote(executor) && (option ?? /^(true|1|yes)$/i.test(process.env[PREVENT_CLIENT_SIDE_CACHING_VARIABLE] ?? ''));

/**
 * Closes an executor that holds connections (a queue executor); nothing for others.
 *
 * @example
 * await closeExecutor(executor);
 */
export const closeExecutor = async (executor: Executor): Promise<void> => {
  const close = (executor as Partial<QueueExecutor>).close;
  if (typeof close === 'function') await close.call(executor);
};
