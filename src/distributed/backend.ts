/**
 * The queue's backend: BullMQ on Redis or on PostgreSQL, chosen by the queue server's URL. A
 * `QueueBackend` makes the three BullMQ clients (Queue, Worker, QueueEvents) for either, and
 * probes the server while a client waits; the rest of the distributed code does not know which.
 *
 * PostgreSQL: each client builds its own pool from the URL and brings BullMQ's tables up to date
 * on connecting (`migrate: true`); BullMQ serializes concurrent migrators with a transaction-scoped
 * advisory lock, so workers starting at once migrate once.
 *
 * On both, a client that waits for a job does not rely on its events alone: on PostgreSQL they are
 * rows read after a cursor (a sequence number), and two workers finishing at once can commit theirs
 * out of order, so a reader between the two commits never sees the first; on Redis, a job that
 * finishes before a new events reader has read once is not heard of either. So a waiting client
 * also reads its job's state every so often, and finished jobs stay a while so that it can; a job
 * that finished before a client asks for its key again is replaced, so that a worker looks at the
 * key anew.
 *
 * @packageDocumentation
 */
import type { IQueueBackend, Job, JobProgress, JobsOptions, Queue, QueueEvents, Worker, WorkerOptions as BullWorkerOptions } from 'bullmq';
import { bullmq, queueServer, QUEUE_URL_VARIABLE, type QueueServer } from './connection';
import { STEP_JOB_NAME, type RunJobResult, type StepJobData, type StepJobResult } from './job';

// model

/**
 * The queue of step jobs, on either backend.
 *
 * @example
 * const queue: StepQueue = queueBackend('postgres://db/stepcache').queue('training');
 */
export type StepQueue = Queue<StepJobData, StepJobResult, string, StepJobData, StepJobResult, string, IQueueBackend, unknown>;

/**
 * A step job, on either backend.
 *
 * @example
 * const process = async (job: StepJob) => job.data.identity.step;
 */
export type StepJob = Job<StepJobData, StepJobResult>;

/**
 * The job events of a queue (completion, failure, progress), on either backend.
 *
 * @example
 * const events: StepQueueEvents = queueBackend(url).queueEvents('training');
 */
export type StepQueueEvents = QueueEvents<StepJobResult, IQueueBackend, unknown>;

/**
 * A worker taking step jobs, on either backend.
 *
 * @example
 * const worker: StepQueueWorker = queueBackend(url).worker('training', process, { concurrency: 2 });
 */
export type StepQueueWorker = Worker<StepJobData, StepJobResult, string, IQueueBackend, JobProgress, unknown>;

/**
 * How a worker takes jobs (BullMQ's worker options, without the connection, which the backend gives).
 *
 * @example
 * const timings: StepWorkerSettings = { concurrency: 2, lockDuration: 3_000, stalledInterval: 1_000 };
 */
export type StepWorkerSettings = Pick<BullWorkerOptions, 'concurrency' | 'lockDuration' | 'stalledInterval' | 'maxStalledCount'>;

/**
 * What a step job is added with (its id, tries and pauses), without how long it is kept once
 * finished, which the backend decides.
 *
 * @example
 * const options: StepJobOptions = { jobId: 'k3b9f…', attempts: 3, backoff: { type: 'exponential', delay: 1_000 } };
 */
export type StepJobOptions = Omit<JobsOptions, 'removeOnComplete' | 'removeOnFail'> & { readonly jobId: string };

/**
 * Something that answers when the queue server does (a Redis PING, a PostgreSQL `SELECT 1`).
 *
 * @example
 * const alive = await probe.ping().then(() => true, () => false);
 */
export interface ServerProbe {
  ping(): Promise<unknown>;
}

/**
 * The clients of one queue server.
 *
 * @example
 * const backend = queueBackend(process.env.STEPCACHE_QUEUE_URL ?? 'redis://127.0.0.1:6379');
 * const queue = backend.queue('stepcache');
 * const events = backend.queueEvents('stepcache');
 */
export interface QueueBackend {
  /** The server, as read from its URL (`shown` hides the password). */
  readonly server: QueueServer;
  /** A client that adds jobs to the queue `name`. */
  queue(name: string): StepQueue;
  /** A client that hears the jobs of the queue `name` finish, fail and progress. */
  queueEvents(name: string): StepQueueEvents;
  /** A worker executing the jobs of the queue `name` with `process`. */
  worker(name: string, process: (job: StepJob) => Promise<StepJobResult | RunJobResult>, settings: StepWorkerSettings): StepQueueWorker;
  /** What to ask whether the server still answers, over the connection of `queue`. */
  probe(queue: StepQueue): Promise<ServerProbe>;
}

// utils

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** How often a waiting client reads its job's state. */
const POLL_MS = 1_000;

/** Finished jobs stay for an hour (a thousand at most) so that a waiting client can read how they ended. */
const FINISHED_JOBS = { removeOnComplete: { age: 3_600, count: 1_000 }, removeOnFail: { age: 3_600, count: 1_000 } } as const;

// jobs

/**
 * Adds a step job, or joins the unfinished job of its id. A job of that id that finished before
 * (kept a while, see above) is removed and the job added again, so that a worker looks at the key
 * anew.
 *
 * @example
 * const job = await addStepJob(queue, data, { jobId: jobIdOf(identity.key), attempts: 3 });
 */
export const addStepJob = async (queue: StepQueue, data: StepJobData, options: StepJobOptions): Promise<StepJob> => {
  for (let attempt = 0; ; attempt++) {
    const job = await queue.add(STEP_JOB_NAME, data, { ...options, ...FINISHED_JOBS });
    if (attempt > 0) return job;
    const stored = await queue.getJob(options.jobId);
    // Added by this call: the stored job carries the time this client gave it.
    if (stored === undefined || stored.timestamp === job.timestamp) return job;
    const state = await stored.getState();
    if (state !== 'completed' && state !== 'failed') return job;
    await stored.remove().catch(() => undefined);
  }
};

/**
 * The job's return value once it completes, from its events or its state, read every so often,
 * whichever tells first; rejects with its failure reason, or with `Missing key for job …` when the
 * job is gone.
 *
 * @example
 * const result = await stepJobFinished(job, events);
 */
export const stepJobFinished = async (job: StepJob, events: StepQueueEvents): Promise<StepJobResult> => {
  let settled = false;
  const polled = (async (): Promise<StepJobResult> => {
    for (;;) {
      await pause(POLL_MS);
      if (settled) return new Promise<never>(() => undefined);
      const state = await job.getState().catch(() => undefined);
      // Finished, or gone: the job's own wait reads how it ended from its stored state.
      if (state === 'completed' || state === 'failed' || state === 'unknown') return job.waitUntilFinished(events);
    }
  })();
  try {
    return await Promise.race([job.waitUntilFinished(events), polled]);
  } finally {
    settled = true;
    polled.catch(() => undefined);
  }
};

// constructors

/**
 * The backend of the queue server `url` names (see `queueServer` for the URLs taken); a bad URL
 * is an `INVALID_OPTIONS` error naming `field`.
 *
 * @example
 * queueBackend('redis://127.0.0.1:6379').server.kind; // 'redis'
 * queueBackend('postgres://team:secret@db:5432/stepcache').server.shown; // 'postgres://team@db:5432/stepcache'
 */
export const queueBackend = (url: string, field: string = QUEUE_URL_VARIABLE): QueueBackend => {
  const server = queueServer(url, field);
  const { createPostgresBackend, Queue, QueueEvents, Worker } = bullmq();
  // BullMQ types each client by its backend's connection settings (invariantly); here the clients
  // of both backends are used alike, through the methods every backend has.
  if (server.kind === 'postgres') {
    // Each client owns its pool (built from a copy of the settings).
    const connection = () => ({ connection: { ...server.connection } });
    return Object.freeze({
      server,
      queue: (name: string): StepQueue => new Queue(name, connection(), createPostgresBackend) as unknown as StepQueue,
      queueEvents: (name: string): StepQueueEvents => new QueueEvents(name, connection(), createPostgresBackend) as unknown as StepQueueEvents,
      worker: (name: string, process: (job: StepJob) => Promise<StepJobResult | RunJobResult>, settings: StepWorkerSettings): StepQueueWorker =>
        new Worker(name, process as never, { ...connection(), ...settings }, createPostgresBackend) as unknown as StepQueueWorker,
      probe: async (queue: StepQueue): Promise<ServerProbe> => {
        const { pool } = (queue.getBackend() as unknown as { connection: { pool: { query(sql: string): Promise<unknown> } } }).connection;
        return { ping: () => pool.query('SELECT 1') };
      },
    });
  }
  const connection = () => ({ connection: { ...server.connection } });
  return Object.freeze({
    server,
    queue: (name: string): StepQueue => new Queue(name, connection()) as unknown as StepQueue,
    queueEvents: (name: string): StepQueueEvents => new QueueEvents(name, connection()) as unknown as StepQueueEvents,
    worker: (name: string, process: (job: StepJob) => Promise<StepJobResult | RunJobResult>, settings: StepWorkerSettings): StepQueueWorker =>
      new Worker(name, process as never, { ...connection(), ...settings }) as unknown as StepQueueWorker,
    probe: async (queue: StepQueue): Promise<ServerProbe> => (await (queue.getBackend() as unknown as { client: Promise<ServerProbe> }).client),
  });
};
