/**
 * Errors that reach users. Inside the library, failures are tagged values;
 * at the Promise edge they become one {@link StepcacheError} with a closed `code`.
 *
 * @packageDocumentation
 */
import type { RunRecord } from './store/records';

// model

/**
 * Every reason a stepcache call can fail, as a closed union.
 *
 * - `INVALID_STEP`: a step value is malformed (no name, bad name, bad outputs).
 * - `INVALID_OPTIONS`: options or settings failed validation (the message names the field).
 * - `INVALID_PIPELINE`: the pipeline definition is wrong (duplicate names, foreign handles, ...).
 * - `UNENCODABLE_VALUE`: a parameter or output cannot be stored or hashed faithfully.
 * - `STEP_FAILED`: a step function threw or rejected; `run` holds the recorded run.
 * - `ARTIFACT_UNAVAILABLE`: an artifact could not be loaded and could not be recomputed.
 * - `STORE_UNAVAILABLE`: the metadata or artifact store (or its lock folder) could not be opened or written.
 * - `LOCK_TIMEOUT`: a step's lock stayed held by another process for longer than the wait bound
 *   (`maxWaitMs`); the message names the lock and its holder.
 * - `STEP_TIMEOUT`: a step ran longer than its `timeout` setting; the message names the step and
 *   the limit. The step's promise was abandoned (a synchronous step cannot be interrupted).
 * - `UNKNOWN_OUTPUT`: `run.output(name)` was asked for an output the pipeline does not return.
 * - `UNKNOWN_RUN`: no run with that id is recorded.
 * - `UNKNOWN_STEP`: the run has no step of that name.
 * - `CODE_MISMATCH`: a worker was asked to execute a step whose code differs from the code it
 *   loaded; the message names both versions (deploy the same code to clients and workers).
 * - `QUEUE_UNAVAILABLE`: the job queue (its Redis or PostgreSQL server) could not be reached, or
 *   stopped answering while steps were waiting on it; the message names the server.
 *
 * @example
 * import type { StepcacheErrorCode } from 'stepcache';
 * const code: StepcacheErrorCode = 'STEP_FAILED';
 */
export type StepcacheErrorCode =
  | 'INVALID_STEP'
  | 'INVALID_OPTIONS'
  | 'INVALID_PIPELINE'
  | 'UNENCODABLE_VALUE'
  | 'STEP_FAILED'
  | 'ARTIFACT_UNAVAILABLE'
  | 'STORE_UNAVAILABLE'
  | 'LOCK_TIMEOUT'
  | 'STEP_TIMEOUT'
  | 'UNKNOWN_OUTPUT'
  | 'UNKNOWN_RUN'
  | 'UNKNOWN_STEP'
  | 'CODE_MISMATCH'
  | 'QUEUE_UNAVAILABLE';

/**
 * Extra, optional context of a {@link StepcacheError}.
 *
 * @example
 * new StepcacheError('INVALID_OPTIONS', 'Invalid option concurrency: ...', { field: 'concurrency' } satisfies StepcacheErrorDetails);
 */
export interface StepcacheErrorDetails {
  /** The step at fault, when there is one. */
  readonly step?: string;
  /** The field (option, parameter, output) at fault, when there is one. */
  readonly field?: string;
  /** The underlying error (what a step threw, what the store reported). */
  readonly cause?: unknown;
  /** The recorded run, for failures that happen during a run. */
  readonly run?: RunRecord;
}

/**
 * The one error class the Promise API rejects with.
 *
 * @example
 * import { StepcacheError } from 'stepcache';
 * try {
 *   await runner.run(trainingPipeline, {});
 * } catch (e) {
 *   if (e instanceof StepcacheError && e.code === 'STEP_FAILED') console.error(e.step, e.message);
 * }
 */
export class StepcacheError extends Error {
  override readonly name = 'StepcacheError';
  /** What kind of failure this is. */
  readonly code: StepcacheErrorCode;
  /** The step at fault, if any. */
  readonly step: string | undefined;
  /** The field at fault, if any. */
  readonly field: string | undefined;
  /** The recorded run (statuses of every step), when the failure happened during a run. */
  readonly run: RunRecord | undefined;

  constructor(code: StepcacheErrorCode, message: string, details: StepcacheErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.step = details.step;
    this.field = details.field;
    this.run = details.run;
  }
}

/**
 * Normalises anything thrown into an `Error`, keeping `Error`s as they are.
 *
 * @example
 * toError('boom').message === 'boom';
 */
export const toError = (thrown: unknown): Error =>
  thrown instanceof Error || isErrorLike(thrown) ? (thrown as Error) : new Error(typeof thrown === 'string' ? thrown : String(thrown));

/** Errors from another realm (a VM context, a test sandbox) fail `instanceof Error` but are errors all the same. */
const isErrorLike = (x: unknown): boolean =>
  typeof x === 'object' && x !== null && typeof (x as { message?: unknown }).message === 'string' && typeof (x as { name?: unknown }).name === 'string';
