/**
 * The queue-backed executor: a step that must execute becomes a BullMQ job whose id is its cache
 * key (two clients asking for one key share one job); a worker executes it and stores its outputs
 * in the team's artifact store; the client hears of the result through BullMQ's job events and
 * goes on with the DAG. Values never travel through the queue: inputs go as artifact references,
 * outputs come back as descriptors.
 *
 * @packageDocumentation
 */
import * as E from 'fp-ts/Either';
import { StepcacheError, toError } from '../errors';
import type { ExecutionRequest, ExecutionResult, ExecutionStore, Executor } from '../runner/executor';
import { addStepJob, queueBackend, stepJobFinished, type StepJob, type StepQueue, type StepQueueEvents } from './backend';
import { QUEUE_URL_VARIABLE } from './connection';
import { decodeFailure, DEFAULT_QUEUE_NAME, jobIdOf, type StepJobData, type StepJobProgress, type StepJobResult } from './job';

// model

/**
 * How to make a queue executor.
 *
 * @example
 * const executor = queueExecutor({ url: 'redis://127.0.0.1:6379', queue: 'training', onProgress: (step, p) => console.log(step, p.phase, p.worker) });
 */
export interface QueueExecutorOptions {
  /** The queue server. @default process.env.STEPCACHE_QUEUE_URL */
  readonly url?: string;
  /** The queue's name: clients and workers of one team use the same. @default 'stepcache' */
  readonly queue?: string;
  /**
   * How long the queue server may stay unreachable while steps wait on it before they fail with
   * `QUEUE_UNAVAILABLE`. @default 30_000
   */
  readonly unreachableAfterMs?: number;
  /**
   * How many times a job is tried when its worker fails with an error that another try may fix,
   * for a step without a `retries` setting (a step's `retries: n` makes it `n + 1`). @default 1
   */
  readonly attempts?: number;
  /** The first pause between tries (doubling each time). @default 1_000 */
  readonly backoffMs?: number;
  /** Hears what workers report, per step job: each attempt's start (executing on which worker), then how it ended (served from their cache, or done in how long), each once and in that order. */
  readonly onProgress?: (step: string, progress: StepJobProgress) => void;
}

/**
 * An executor that dispatches through a queue; `close` ends its connections.
 *
 * @example
 * const executor = queueExecutor({ url: process.env.STEPCACHE_QUEUE_URL });
 * const runner = createRunner({ executor, metadata, artifacts });
 * await runner.run(trainingPipeline);
 * executor.enqueued(); // how many jobs this client asked for
 * await executor.close();
 */
export interface QueueExecutor extends Executor {
  /** Steps run elsewhere: the stores must be reachable from other machines. */
  readonly remote: true;
  /** The queue server, as messages show it (no password). */
  readonly server: string;
  /** How many jobs this executor has asked the queue for. */
  enqueued(): number;
  /** Ends its connections to the queue server (waiting a moment at most for one that is gone). */
  close(): Promise<void>;
}

// utils

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** How many times a job that vanished before the client saw it finish is asked for again (its worker then finds the entry). */
const MAX_RESUBMISSIONS = 3;

const isProgress = (x: unknown): x is StepJobProgress => typeof x === 'object' && x !== null && typeof (x as { phase?: unknown }).phase === 'string';

const positive = (value: number | undefined, fallback: number, field: string): number => {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new StepcacheError('INVALID_OPTIONS', `Invalid option ${field}: got ${String(value)}, expected a positive number.`, { field });
  return value;
};

// the executor

/**
 * An executor that sends each step to the workers of a BullMQ queue on Redis or PostgreSQL (see
 * `createWorker`). Connections are opened on the first step that executes, so a fully cached
 * run needs neither the queue server nor a worker.
 *
 * @example
 * const runner = createRunner({ executor: queueExecutor({ url: 'redis://queue.internal:6379' }), metadata: createPostgresMetadataStore({ url }), artifacts: createS3ArtifactStore(s3) });
 */
export const queueExecutor = (options: QueueExecutorOptions = {}): QueueExecutor => {
  const url = options.url ?? process.env[QUEUE_URL_VARIABLE];
  if (url === undefined || url === '') {
    throw new StepcacheError('INVALID_OPTIONS', `A queue executor needs the queue server: pass url, or set ${QUEUE_URL_VARIABLE} (redis://host:6379 or postgres://user:password@host:5432/database).`, { field: 'url' });
  }
  const backend = queueBackend(url, options.url === undefined ? QUEUE_URL_VARIABLE : 'url');
  const { server } = backend;
  const name = options.queue ?? DEFAULT_QUEUE_NAME;
  const unreachableAfterMs = positive(options.unreachableAfterMs, 30_000, 'unreachableAfterMs');
  const attempts = positive(options.attempts, 1, 'attempts');
  const backoffMs = positive(options.backoffMs, 1_000, 'backoffMs');
  let enqueued = 0;
  let opened: { readonly queue: StepQueue; readonly events: StepQueueEvents } | undefined;

  const unavailable = (what: string, cause?: unknown): StepcacheError =>
    new StepcacheError('QUEUE_UNAVAILABLE', `The queue server ${server.shown} (queue ${name}) ${what}; check that it runs and that ${QUEUE_URL_VARIABLE} names it.`, cause === undefined ? {} : { cause });

  const open = () => {
    if (opened !== undefined) return opened;
    const queue = backend.queue(name);
    const events = backend.queueEvents(name);
    // Connection errors are seen by the watchdog below; unheard, they would be thrown.
    queue.on('error', () => undefined);
    events.on('error', () => undefined);
    events.on('progress', ({ jobId, data }) => {
      if (!isProgress(data)) return;
      // Each attempt's start is told once, in order: a report of an attempt told already (late, or
      // repeated) is not. How the job ended is told from its answer (see `execute`), after its start.
      if (data.phase !== 'executing') return;
      for (const listener of listening.get(jobId) ?? []) announceStart(listener, data);
    });
    opened = { queue, events };
    return opened;
  };
  /**
   * The last attempt of its job each request was told of (a progress report can be missed, or come
   * late: BullMQ's PostgreSQL events are read after a cursor, and a job's end is seen by polling).
   */
  const heardAttempt = new WeakMap<ExecutionRequest, number>();
  /** Tells a request, and the client's `onProgress`, that an attempt of its job started, unless it was told so already. */
  const announceStart = (request: ExecutionRequest, started: Extract<StepJobProgress, { phase: 'executing' }>): void => {
    if (started.attempt <= (heardAttempt.get(request) ?? 0)) return;
    heardAttempt.set(request, started.attempt);
    options.onProgress?.(request.identity.step, started);
    request.onProgress?.({ phase: 'started', worker: started.worker, host: started.host, attempt: started.attempt });
  };
  /** Jobs this client waits on, by id: the requests waiting on each (two runs may share a job). */
  const listening = new Map<string, Set<ExecutionRequest>>();

  /**
   * Settles with `work`, unless the queue server stays unreachable for `unreachableAfterMs`
   * meanwhile (probed while waiting: PING on Redis, SELECT 1 on PostgreSQL).
   */
  const watched = async <A>(queue: StepQueue, work: Promise<A>, what: string): Promise<A> => {
    let settled = false;
    let lastAnswer = Date.now();
    const probeEvery = Math.max(50, Math.min(1_000, unreachableAfterMs / 5));
    const watchdog = (async (): Promise<never> => {
      const client = await Promise.race([backend.probe(queue), pause(unreachableAfterMs).then(() => undefined)]);
      if (client === undefined) throw unavailable(`could not be reached within ${String(unreachableAfterMs)} ms while ${what}`);
      for (;;) {
        await pause(probeEvery);
        if (settled) return new Promise<never>(() => undefined);
        const answered = await Promise.race([client.ping().then(() => true, () => false), pause(probeEvery).then(() => false)]);
        if (answered) lastAnswer = Date.now();
        else if (Date.now() - lastAnswer > unreachableAfterMs) throw unavailable(`stopped answering for ${String(unreachableAfterMs)} ms while ${what}`);
      }
    })();
    try {
      return await Promise.race([work, watchdog]);
    } finally {
      settled = true;
      watchdog.catch(() => undefined);
    }
  };

  const submit = async (request: ExecutionRequest): Promise<E.Either<StepcacheError, StepJobResult>> => {
    const { queue, events } = open();
    const { identity } = request;
    const data: StepJobData = { identity, parameters: request.parameters, inputs: request.inputs, ...(request.reuse === undefined ? {} : { reuse: request.reuse }), ...(request.entry === undefined ? {} : { entry: request.entry }) };
    // A shared miss is one job per key; an execution of its own (refresh, caching off) is a job of its own.
    const jobId = request.reuse === undefined ? `${jobIdOf(identity.key)}-${Math.random().toString(36).slice(2)}` : jobIdOf(identity.key);
    const waiting = listening.get(jobId) ?? new Set<ExecutionRequest>();
    waiting.add(request);
    listening.set(jobId, waiting);
    try {
      for (let submission = 0; ; submission++) {
        let job: StepJob;
        try {
          job = await watched(
            queue,
            addStepJob(queue, data, { jobId, attempts: request.retries === undefined ? attempts : request.retries + 1, backoff: { type: 'exponential', delay: backoffMs } }),
            `step ${identity.step} was enqueued`,
          );
        } catch (e) {
          return E.left(e instanceof StepcacheError ? e : unavailable(`refused step ${identity.step}: ${toError(e).message}`, e));
        }
        // Asking again for a job that vanished is not another job.
        if (submission === 0) enqueued++;
        try {
          const result = (await watched(queue, stepJobFinished(job, events), `step ${identity.step} was waited for`)) as StepJobResult;
          return E.right(result);
        } catch (e) {
          if (e instanceof StepcacheError) return E.left(e);
          const reason = toError(e).message;
          // The job finished and was removed before this client listened: ask again; its worker finds the entry.
          if (/Missing key for job/.test(reason) && submission < MAX_RESUBMISSIONS) continue;
          return E.left(decodeFailure(reason, identity.step));
        }
      }
    } finally {
      waiting.delete(request);
      if (waiting.size === 0 && listening.get(jobId) === waiting) listening.delete(jobId);
    }
  };

  return Object.freeze({
    remote: true as const,
    server: server.shown,
    enqueued: () => enqueued,
    execute: async (request: ExecutionRequest, _store: ExecutionStore): Promise<E.Either<StepcacheError, ExecutionResult>> => {
      const result = await submit(request);
      if (E.isLeft(result)) return result;
      const { descriptors, durationMs, cachedFrom, worker, committed, host, attempt } = result.right;
      // Every execution is announced, late rather than never (from the answer when the progress report
      // of its attempt was missed), and then how it ended: each once, in this order.
      if (cachedFrom === undefined && host !== undefined && attempt !== undefined) announceStart(request, { phase: 'executing', worker, host, attempt });
      options.onProgress?.(request.identity.step, cachedFrom === undefined ? { phase: 'done', worker, durationMs } : { phase: 'cached', worker, cachedFrom });
      return E.right({ descriptors, durationMs, ...(cachedFrom === undefined ? { worker } : { cachedFrom }), ...(committed === true ? { committed } : {}) });
    },
    close: async () => {
      const current = opened;
      opened = undefined;
      if (current === undefined) return;
      // A server that is gone cannot be said goodbye to: give up after a moment.
      await Promise.race([Promise.allSettled([current.events.close(), current.queue.close()]), pause(2_000)]);
      await Promise.race([Promise.allSettled([current.events.disconnect(), current.queue.disconnect()]), pause(1_000)]);
    },
  });
};
