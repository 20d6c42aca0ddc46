/**
 * Scheduled pipelines: a schedule is a BullMQ job scheduler on the team's queue whose jobs say
 * "run this pipeline with these parameters". The client computes nothing when it schedules: a
 * worker that takes a run job resolves the whole pipeline then, as a client would (keys, cache
 * lookups, executing the misses itself), with the code it has at that moment. So a change deployed
 * to the workers after the schedule was made is picked up by the next scheduled run, and only the
 * steps whose keys it changed execute.
 *
 * Schedules live on either queue backend (a redis:// or a postgres:// queue URL): both keep BullMQ's
 * job schedulers, each making one pending run job at a time.
 *
 * @packageDocumentation
 */
import * as E from 'fp-ts/Either';
import { StepcacheError } from '../errors';
import { parseDuration } from '../format/duration';
import { preview } from '../format/preview';
import { compilePipeline, type AnyPipeline, type Pipeline, type PipelineOutputs } from '../pipeline/pipeline';
import { findNonJson } from '../store/serialize';
import { queueBackend, type StepQueue } from './backend';
import { QUEUE_URL_VARIABLE } from './connection';
import { DEFAULT_QUEUE_NAME, isRunJobData, RUN_JOB_NAME, type RunJobData, type StepJobData } from './job';

// model

/**
 * When a schedule runs: a cron pattern (`'0 3 * * *'`, with an optional time zone), or every so
 * often (milliseconds, or a duration like `'90s'`, `'30m'`, `'12h'`).
 *
 * @example
 * const nightly: ScheduleTiming = { cron: '0 3 * * *', tz: 'Europe/Paris' };
 * const often: ScheduleTiming = { every: '15m' };
 */
export type ScheduleTiming = { readonly cron: string; readonly tz?: string } | { readonly every: number | string };

/**
 * Where a schedule lives, and its name.
 *
 * @example
 * const options: ScheduleOptions = { queueUrl: 'redis://queue.internal:6379', name: 'nightly-training' };
 */
export interface ScheduleOptions {
  /** The queue server. @default process.env.STEPCACHE_QUEUE_URL */
  readonly queueUrl?: string;
  /** The queue its workers take jobs from. @default 'stepcache' */
  readonly queue?: string;
  /** The schedule's id: making a schedule with an id that exists replaces it. @default the pipeline's name */
  readonly name?: string;
  /**
   * How long the queue server may take to answer before the call fails with `QUEUE_UNAVAILABLE`
   * (a Redis client otherwise waits for its server for ever). A call given up on may still reach
   * the server later; making the schedule again replaces it, so trying again is safe. @default 10_000
   */
  readonly unreachableAfterMs?: number;
}

/**
 * Where the schedules to list or remove live.
 *
 * @example
 * const where: ScheduleQueueOptions = { queueUrl: 'postgres://team:secret@db:5432/stepcache', queue: 'training' };
 */
export type ScheduleQueueOptions = Pick<ScheduleOptions, 'queueUrl' | 'queue' | 'unreachableAfterMs'>;

/**
 * A schedule as the queue server keeps it.
 *
 * @example
 * const s: ScheduleInfo = { id: 'nightly', pipeline: 'training_pipeline', cron: '0 3 * * *', next: new Date('2026-12-01T03:00:00Z'), parameters: { gamma: 0.002 } };
 */
export interface ScheduleInfo {
  readonly id: string;
  readonly pipeline: string;
  readonly cron?: string;
  readonly tz?: string;
  /** In milliseconds. */
  readonly everyMs?: number;
  /** When its next run job is due, if one is. */
  readonly next?: Date;
  readonly parameters: Readonly<Record<string, unknown>>;
}

const invalid = (field: string, message: string): StepcacheError => new StepcacheError('INVALID_OPTIONS', message, { field });

/** How long one call waits for the queue server by default. */
const UNREACHABLE_AFTER_MS = 10_000;

/**
 * The queue of `options`, opened for one call (schedules are made and read rarely); the call fails
 * with `QUEUE_UNAVAILABLE` when the server does not answer within `unreachableAfterMs`.
 */
const withQueue = async <A>(options: ScheduleQueueOptions, f: (queue: StepQueue) => Promise<A>): Promise<A> => {
  const url = options.queueUrl ?? process.env[QUEUE_URL_VARIABLE];
  if (url === undefined || url === '') throw invalid('queueUrl', `Schedules live on the queue server: pass queueUrl, or set ${QUEUE_URL_VARIABLE} (redis://host:6379 or postgres://user:password@host:5432/database).`);
  const waitMs = options.unreachableAfterMs ?? UNREACHABLE_AFTER_MS;
  if (!Number.isFinite(waitMs) || waitMs <= 0) throw invalid('unreachableAfterMs', `Invalid unreachableAfterMs: got ${preview(options.unreachableAfterMs)}, expected a number of milliseconds above 0.`);
  const { server, queue: openQueue } = queueBackend(url, options.queueUrl === undefined ? QUEUE_URL_VARIABLE : 'queueUrl');
  const name = options.queue ?? DEFAULT_QUEUE_NAME;
  const queue = openQueue(name);
  // A connection error is told in the failure below; unheard, it would be thrown.
  let lastError: Error | undefined;
  queue.on('error', (e: Error) => void (lastError = e));
  const unavailable = (what: string, cause: unknown) =>
    new StepcacheError('QUEUE_UNAVAILABLE', `The queue server ${server.shown} (queue ${name}) ${what}; check that it runs and that the URL names it.`, cause === undefined ? {} : { cause });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const gaveUp = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(unavailable(`did not answer within ${String(waitMs)} ms about its schedules${lastError === undefined ? '' : ` (${lastError.message})`}`, lastError)), waitMs);
  });
  const work = f(queue);
  try {
    return await Promise.race([work, gaveUp]);
  } catch (e) {
    if (e instanceof StepcacheError) throw e;
    throw unavailable(`could not be reached for its schedules: ${(e as Error).message}`, e);
  } finally {
    clearTimeout(timer);
    work.catch(() => undefined);
    await queue.close().catch(() => undefined);
  }
};

/** The repeat options of a timing, checked. */
const repeatOf = (timing: ScheduleTiming): { readonly pattern: string; readonly tz?: string } | { readonly every: number } => {
  if ('cron' in timing) {
    if (typeof timing.cron !== 'string' || timing.cron.trim().split(/\s+/).length < 5) throw invalid('cron', `Invalid schedule cron: got ${preview(timing.cron)}, expected a cron pattern like '0 3 * * *' (minute hour day month weekday).`);
    return { pattern: timing.cron, ...(timing.tz === undefined ? {} : { tz: timing.tz }) };
  }
  const every = parseDuration((timing as { every?: unknown }).every);
  if (every === undefined || every <= 0) throw invalid('every', `Invalid schedule every: got ${preview((timing as { every?: unknown }).every)}, expected a number of milliseconds above 0 or a duration like '90s', '30m', '12h'.`);
  return { every };
};

const infoOf = (json: { key: string; id?: string | null; pattern?: string; tz?: string; every?: number; next?: number; template?: { data?: unknown } }): ScheduleInfo => {
  const data = json.template?.data;
  const run = isRunJobData(data) ? data : undefined;
  return {
    id: json.id ?? json.key,
    pipeline: run?.pipeline ?? '(not a pipeline schedule)',
    ...(json.pattern === undefined || json.pattern === null ? {} : { cron: json.pattern }),
    ...(json.tz === undefined || json.tz === null ? {} : { tz: json.tz }),
    ...(json.every === undefined || json.every === null ? {} : { everyMs: Number(json.every) }),
    ...(json.next === undefined || json.next === null ? {} : { next: new Date(Number(json.next)) }),
    parameters: run?.parameters ?? {},
  };
};

// schedules

/**
 * Schedules a pipeline on the team's queue: every `timing`, a worker runs it with `params`,
 * computing its cache at that moment (so a change deployed to the workers since is picked up,
 * and only the steps it changed execute). The parameters must be JSON values and must compile
 * the pipeline now. A schedule with the same id (`name`, else the pipeline's name) is replaced.
 *
 * @example
 * await schedule(trainingPipeline, { cron: '0 3 * * *' }, { gamma: 0.002 }, { queueUrl: 'redis://queue.internal:6379', name: 'nightly' });
 */
export const schedule = async <P, O extends PipelineOutputs | void>(pipe: Pipeline<P, O>, timing: ScheduleTiming, params: P, options: ScheduleOptions = {}): Promise<ScheduleInfo> => {
  const name = (pipe as unknown as AnyPipeline).name;
  const repeat = repeatOf(timing);
  const parameters = (params ?? {}) as Record<string, unknown>;
  if (typeof parameters !== 'object' || Array.isArray(parameters)) throw invalid('params', `The parameters of scheduled pipeline ${name} must be an object, got ${preview(params)}.`);
  const unencodable = findNonJson(parameters);
  if (unencodable !== undefined) {
    throw invalid('params', `The parameters of scheduled pipeline ${name} travel to the workers as JSON, but ${unencodable.path === '' ? 'they are' : `params${unencodable.path} is`} ${unencodable.reason}.`);
  }
  const compiled = compilePipeline(pipe, parameters as P);
  if (E.isLeft(compiled)) throw new StepcacheError('INVALID_PIPELINE', `Pipeline ${name} cannot be scheduled with these parameters: ${compiled.left.message}`);
  const id = options.name ?? name;
  if (id === '') throw invalid('name', 'A schedule name cannot be empty.');
  const data: RunJobData = { kind: 'run', pipeline: name, parameters, schedule: id };
  return withQueue(options, async (queue) => {
    // The queue carries step jobs and run jobs; workers tell them apart by name (see `isRunJobData`).
    await queue.upsertJobScheduler(id, repeat, { name: RUN_JOB_NAME, data: data as unknown as StepJobData, opts: { removeOnComplete: 100, removeOnFail: 100 } });
    const made = await queue.getJobScheduler(id);
    return made === undefined ? infoOf({ key: id, id, ...repeatFields(repeat), template: { data } }) : infoOf(made);
  });
};

const repeatFields = (repeat: ReturnType<typeof repeatOf>) => ('every' in repeat ? { every: repeat.every } : { pattern: repeat.pattern, ...(repeat.tz === undefined ? {} : { tz: repeat.tz }) });

/**
 * The schedules on the team's queue, soonest first.
 *
 * @example
 * for (const s of await listSchedules({ queueUrl })) console.log(s.id, s.pipeline, s.next);
 */
export const listSchedules = (options: ScheduleQueueOptions = {}): Promise<ScheduleInfo[]> =>
  withQueue(options, async (queue) => (await queue.getJobSchedulers(0, -1, true)).map(infoOf));

/**
 * Removes a schedule: no more run jobs are made for it (a run in progress finishes). Resolves
 * whether there was one by that id.
 *
 * @example
 * await removeSchedule('nightly', { queueUrl });
 */
export const removeSchedule = (id: string, options: ScheduleQueueOptions = {}): Promise<boolean> =>
  withQueue(options, (queue) => queue.removeJobScheduler(id));
