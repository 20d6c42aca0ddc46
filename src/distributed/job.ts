/**
 * What travels through the queue: a job asks a worker to execute one step (its identity, its
 * parameters and its inputs as artifact references, never values); its return value describes
 * the stored outputs; its failure carries a typed error. The job id is the step's cache key, so
 * clients asking for the same key share one job.
 *
 * @packageDocumentation
 */
import { StepcacheError, type StepcacheErrorCode } from '../errors';
import type { EntryTemplate, InputArtifact, StepIdentity } from '../runner/executor';
import type { ArtifactDescriptor } from '../store/serialize';

// model

/**
 * The data of a step job.
 *
 * @example
 * const data: StepJobData = { identity, parameters: { gamma: 0.002 }, inputs: { X_train }, reuse: {} };
 */
export interface StepJobData {
  readonly identity: StepIdentity;
  readonly parameters: Readonly<Record<string, unknown>>;
  readonly inputs: Readonly<Record<string, InputArtifact>>;
  /** Whether the worker may answer with an intact cache entry it finds under the key instead of executing (and how old it may be); absent, it executes. */
  readonly reuse?: { readonly maxAgeMs?: number };
  /** The cache entry the worker commits once the outputs are stored (see `ExecutionRequest.entry`). */
  readonly entry?: EntryTemplate;
}

/**
 * The return value of a step job: the stored outputs, how long the step took, which worker did
 * it, and, when the worker found the key already cached, the run that cached it.
 *
 * @example
 * const result: StepJobResult = { descriptors: { model }, durationMs: 931, worker: 'host-a:4121' };
 */
export interface StepJobResult {
  readonly descriptors: Readonly<Record<string, ArtifactDescriptor>>;
  readonly durationMs: number;
  readonly worker: string;
  readonly cachedFrom?: string;
  /** The worker committed the cache entry of the job's `entry` before answering. */
  readonly committed?: boolean;
  /** The host and attempt of the execution that answered, so a client that missed its progress report still hears of its start. */
  readonly host?: string;
  readonly attempt?: number;
}

/**
 * What a worker reports while it holds a job (BullMQ job progress).
 *
 * @example
 * const progress: StepJobProgress = { phase: 'executing', worker: 'host-a:4121', host: 'host-a', attempt: 1 };
 */
export type StepJobProgress =
  | { readonly phase: 'executing'; readonly worker: string; readonly host: string; readonly attempt: number }
  | { readonly phase: 'cached'; readonly worker: string; readonly cachedFrom: string }
  | { readonly phase: 'done'; readonly worker: string; readonly durationMs: number };

// constants

/**
 * The queue used when none is named.
 *
 * @example
 * createWorker({ module: './pipelines.js', queue: DEFAULT_QUEUE_NAME, connection, metadata, artifacts });
 */
export const DEFAULT_QUEUE_NAME = 'stepcache';

/** The job name of a step job (BullMQ names jobs; ids are what matter here). */
export const STEP_JOB_NAME = 'step';

const FAILURE_PREFIX = 'stepcache-error:';

// ids

/**
 * The job id of a step: its cache key (BullMQ refuses ids with `:` and whole numbers; keys are hex
 * hashes, prefixed so that they never read as numbers).
 *
 * @example
 * jobIdOf('3b9f…'); // 'k3b9f…'
 */
export const jobIdOf = (key: string): string => `k${key.replace(/:/g, '_')}`;

// failures

/**
 * The failure reason a worker gives a job: the typed error, encoded so that the client rebuilds it.
 *
 * @example
 * throw new Error(encodeFailure(new StepcacheError('STEP_FAILED', 'Step a failed: boom', { step: 'a' })));
 */
export const encodeFailure = (error: StepcacheError): string =>
  `${FAILURE_PREFIX}${JSON.stringify({ code: error.code, message: error.message, step: error.step, field: error.field })}`;

const isCode = (x: unknown): x is StepcacheErrorCode => typeof x === 'string' && /^[A-Z_]+$/.test(x);

/**
 * The typed error of a failed job, from its failure reason; a reason that is not one of ours (the
 * job was stalled too often, the worker ran out of memory) becomes a `STEP_FAILED` naming the step.
 *
 * @example
 * decodeFailure(job.failedReason, 'svc_trainer').code; // 'CODE_MISMATCH'
 */
export const decodeFailure = (reason: string, step: string): StepcacheError => {
  const at = reason.indexOf(FAILURE_PREFIX);
  if (at >= 0) {
    try {
      const parsed = JSON.parse(reason.slice(at + FAILURE_PREFIX.length)) as { code?: unknown; message?: unknown; step?: unknown; field?: unknown };
      if (isCode(parsed.code) && typeof parsed.message === 'string') {
        return new StepcacheError(parsed.code, parsed.message, {
          step: typeof parsed.step === 'string' ? parsed.step : step,
          ...(typeof parsed.field === 'string' ? { field: parsed.field } : {}),
        });
      }
    } catch {
      // not ours after all: reported as it is below
    }
  }
  return new StepcacheError('STEP_FAILED', `Step ${step} failed on a worker: ${reason}`, { step });
};

/**
 * The data of a run job: which pipeline of the workers' module to run, with which parameters,
 * for which schedule.
 *
 * @example
 * const data: RunJobData = { kind: 'run', pipeline: 'training_pipeline', parameters: { gamma: 0.002 }, schedule: 'nightly' };
 */
export interface RunJobData {
  readonly kind: 'run';
  readonly pipeline: string;
  readonly parameters: Readonly<Record<string, unknown>>;
  readonly schedule: string;
}

/**
 * What a run job answers: the run it made and how it ended.
 *
 * @example
 * const result: RunJobResult = { runId: 'k3x9…', status: 'completed', executed: ['svc_trainer'] };
 */
export interface RunJobResult {
  readonly runId: string;
  readonly status: 'completed' | 'failed';
  readonly executed: readonly string[];
}

// constants

/**
 * The job name of a run job (step jobs are named `step`).
 *
 * @example
 * job.name === RUN_JOB_NAME; // a scheduled run
 */
export const RUN_JOB_NAME = 'run';

// utils

/**
 * Whether job data is a run job's.
 *
 * @example
 * if (isRunJobData(job.data)) runScheduled(job.data);
 */
export const isRunJobData = (x: unknown): x is RunJobData => {
  const d = x as Partial<RunJobData> | null;
  return typeof d === 'object' && d !== null && d.kind === 'run' && typeof d.pipeline === 'string' && typeof d.schedule === 'string' && typeof d.parameters === 'object' && d.parameters !== null;
};
