/**
 * The runner's public model: how to make a runner, what it offers, and what a run and a plan are.
 *
 * @packageDocumentation
 */
import type * as TE from 'fp-ts/TaskEither';
import type Keyv from 'keyv';
import type { ExecutionReason, StepExplanation } from '../cache/reasons';
import type { CacheAdmin } from '../cache/maintenance';
import type { StepcacheError } from '../errors';
import type { StepLock } from '../lock';
import type { Pipeline, PipelineOutputs, PipelineOutputValues } from '../pipeline/pipeline';
import type { ArtifactStore } from '../store/artifact-store';
import type { MetadataStore, RunQuery } from '../store/metadata-store';
import type { RunRecord } from '../store/records';
import type { RunRetention } from '../store/run-retention';
import type { RunSubscriber } from './events';
import type { Executor } from './executor';
import type { Logger } from './logger';

// model

/**
 * How to make a runner. Everything is optional: by default the embedded store lives in
 * `./.stepcache` (or `$STEPCACHE_DIR`), with metadata in SQLite and artifacts as files.
 *
 * @example
 * const runner = createRunner({ dir: '/tmp/my-cache', logger: silentLogger, concurrency: 2, onEvent: (e) => events.push(e) });
 */
export interface RunnerOptions {
  /** The store directory. @default process.env.STEPCACHE_DIR ?? './.stepcache' */
  readonly dir?: string;
  /** A keyv instance of any backend, or a metadata store, instead of `<dir>/metadata.sqlite`. */
  readonly metadata?: Keyv | MetadataStore;
  /** An artifact store instead of `<dir>/artifacts`. */
  readonly artifacts?: ArtifactStore;
  /**
   * The metadata store shared by a team, by URL: `postgres://user:password@host:5432/db?schema=name`
   * (the password may instead come from `PGPASSWORD`). Its step lock (PostgreSQL advisory locks) comes with it.
   * Ignored when `metadata` is given.
   * @default process.env.STEPCACHE_METADATA_URL, else the embedded store
   * @example
   * createRunner({ metadataUrl: 'postgres://ann@db.team:5432/ml?schema=vision' });
   */
  readonly metadataUrl?: string;
  /**
   * The artifact store shared by a team, by URL: `s3://bucket/prefix?endpoint=...&region=...&forcePathStyle=true`
   * (credentials from the AWS SDK's chain: environment, profile, role) or `file:///shared/folder`.
   * Ignored when `artifacts` is given.
   * @default process.env.STEPCACHE_ARTIFACTS_URL, else `<dir>/artifacts`
   * @example
   * createRunner({ artifactsUrl: 's3://ml-team-cache/stepcache?region=eu-west-1' });
   */
  readonly artifactsUrl?: string;
  /** Where log lines go. @default consoleLogger */
  readonly logger?: Logger;
  /** How many steps may run at once. @default 1 */
  readonly concurrency?: number;
  /**
   * How often a run longer than this rewrites its record to say it is still running; a run whose
   * heartbeat is three beats old (and a minute), or whose process is gone from this host, reads as `interrupted`.
   * A run first records that it is running when a step starts executing, or after half a second
   * (one beat, if that is shorter): a run that serves every step from the cache sooner writes only its final record.
   * @default 30_000
   */
  readonly heartbeatEveryMs?: number;
  /**
   * Runs to keep: after each run, older runs beyond the most recent `last`, or started longer
   * than `olderThanMs` ago, are deleted (runs still running are kept).
   * @default keep every run
   * @example
   * createRunner({ keepRuns: { last: 1000 } });
   */
  readonly keepRuns?: RunRetention;
  /**
   * Reads the store and writes nothing to it: cached steps are served, steps that miss are
   * executed and their values handed on, but no entry, run record, lock or fingerprint is written
   * (one `read-only-store` warning per run says so). A store this process may not write is read
   * this way without being asked, as is one that refuses a write as not permitted.
   * @default process.env.STEPCACHE_READ_ONLY === 'true'
   * @example
   * createRunner({ dir: '/mnt/team-cache', readOnly: true });
   */
  readonly readOnly?: boolean;
  /**
   * A secret shared by a team: entries are signed with it (HMAC-SHA256), and entries that do not
   * verify, or were signed for another key, are ignored and reported, so nobody without it can
   * poison a shared cache. The embedded artifact store then names contents by a hash keyed with
   * it (HMAC-SHA256); give a custom artifact store the same secret (`createS3ArtifactStore({
   * secret })`, `createFileArtifactStore(dir, { secret })`) so its ids cannot be forged either.
   */
  readonly secret?: string | Uint8Array;
  /**
   * The cross-process lock on step keys, so that processes sharing a store execute each key once.
   * @default lock files under `<dir>/locks` for the embedded store; the store's own lock for a
   * store shared by machines (PostgreSQL: advisory locks); an in-process lock for another custom store.
   */
  readonly lock?: StepLock;
  /**
   * Hears every run event (a `RunEvent`): steps started, cached, executing and why,
   * executed, repaired, failed, skipped; artifacts written; warnings; the run's summary. What it
   * throws is reported once through the logger and never breaks the run.
   */
  readonly onEvent?: RunSubscriber;
  /**
   * Executes steps whose cached results cannot be used.
   * @default a queue executor when `queueUrl` or `STEPCACHE_QUEUE_URL` names a queue, else inProcessExecutor()
   */
  readonly executor?: Executor;
  /**
   * The queue server (`redis://host:6379`) whose workers execute the steps that miss the cache
   * (run `stepcache worker` on the machines that should). The stores must then be ones every
   * machine reaches (a PostgreSQL metadata store, S3 or a shared folder for artifacts): a runner
   * with the local defaults is refused at start. @default process.env.STEPCACHE_QUEUE_URL (unset: in-process)
   */
  readonly queueUrl?: string;
  /**
   * With a queue: send every step to the workers and leave cache lookups to them (they log
   * `Using cached version of <step>.`), instead of serving cached steps here without a job.
   * @default process.env.STEPCACHE_PREVENT_CLIENT_SIDE_CACHING === 'true'
   */
  readonly preventClientSideCaching?: boolean;
}

/**
 * A finished run: its record, plus typed access to the pipeline's outputs.
 * Outputs are loaded (and verified) only when asked for.
 *
 * @example
 * const run = await runner.run(trainingPipeline, { gamma: 0.002 });
 * run.steps.svc_trainer?.status; // 'executed' | 'cached' | 'failed' | 'skipped'
 * const model = await run.output('model');
 */
export type Run<V> = RunRecord & {
  /** Loads one of the pipeline's outputs. */
  output<K extends keyof V & string>(name: K): Promise<V[K]>;
};

/**
 * The parameters argument of `runner.run`: optional when every parameter is.
 *
 * @example
 * const args: RunParams<{ gamma?: number }> = []; // `runner.run(p)` without parameters compiles
 */
export type RunParams<P> = {} extends P ? [params?: P] : [params: P];

/**
 * Runs pipelines against one store.
 *
 * @example
 * const runner = createRunner();
 * const run = await runner.run(trainingPipeline, { gamma: 0.002 });
 * await runner.close();
 */
export interface Runner {
  /** Runs a pipeline; rejects with a {@link StepcacheError} (with `.run` when a step failed). */
  run<P, O extends PipelineOutputs | void>(p: Pipeline<P, O>, ...params: RunParams<P>): Promise<Run<PipelineOutputValues<Pipeline<P, O>>>>;
  /** `run` as an fp-ts TaskEither. */
  runTask<P, O extends PipelineOutputs | void>(p: Pipeline<P, O>, ...params: RunParams<P>): TE.TaskEither<StepcacheError, Run<PipelineOutputValues<Pipeline<P, O>>>>;
  /** Why a step of a run executed, was cached, failed or was skipped. */
  explain(run: RunRecord | string, step: string): Promise<StepExplanation>;
  /**
   * A dry run: which steps would be served from cache and which would execute, and why, as far as
   * can be known before any step runs (a step whose upstream executes may or may not be cached,
   * depending on whether its input's content changes). Executes nothing; writes nothing.
   */
  plan<P, O extends PipelineOutputs | void>(p: Pipeline<P, O>, ...params: RunParams<P>): Promise<Plan>;
  /** Cache maintenance: list entries, prune them (least recently used first), clear everything. */
  readonly cache: CacheAdmin;
  /** A recorded run by id. */
  getRun(id: string): Promise<RunRecord | undefined>;
  /** Recorded runs, most recent first: all of them, or a page (`{ limit: 20, before: lastOfPreviousPage, pipeline, status }`). */
  listRuns(query?: RunQuery): Promise<RunRecord[]>;
  /** Closes the stores. */
  close(): Promise<void>;
}

/**
 * What a dry run expects of one step.
 *
 * @example
 * const planned: PlannedStep = { name: 'svc_trainer', expected: 'execute', reason: { _tag: 'NeverCached' }, message: 'it was never cached before' };
 */
export type PlannedStep =
  | { readonly name: string; readonly expected: 'cached'; readonly cachedFrom: string; readonly message: string }
  | { readonly name: string; readonly expected: 'execute'; readonly reason: ExecutionReason; readonly message: string }
  | { readonly name: string; readonly expected: 'depends'; readonly upstream: readonly string[]; readonly message: string };

/**
 * The result of `runner.plan`: the expectation for every step, in pipeline order.
 *
 * @example
 * const plan = await runner.plan(trainingPipeline, { gamma: 0.01 });
 * plan.steps.svc_trainer?.expected; // 'execute'
 */
export interface Plan {
  readonly pipeline: string;
  readonly steps: Readonly<Record<string, PlannedStep>>;
}
