/**
 * The executor seam: how one step is executed once the runner has decided that it must be. The
 * scheduler and the resolver only ask "execute this node with this key"; where and how that
 * happens (in this process now, on queue-backed remote workers later) is the executor's business.
 *
 * @packageDocumentation
 */
import type { KeyComponents } from '../cache/components';
import type * as E from 'fp-ts/Either';
import type { StepcacheError } from '../errors';
import type { GraphNode } from '../pipeline/pipeline';
import type { ArtifactStore } from '../store/artifact-store';
import type { ArtifactDescriptor } from '../store/serialize';

// model

/**
 * Which execution is asked for, as plain data that can cross a process boundary: the pipeline and
 * step names, the step key the result will be cached under, and what stands for the step's code
 * in the key (`fingerprint:<hash>` or `version:<version>`), so that a worker can refuse to run a
 * step whose code differs from the code it has.
 *
 * @example
 * const identity: StepIdentity = { pipeline: 'training_pipeline', step: 'svc_trainer', key: '3b9f…', code: 'fingerprint:a41c…' };
 */
export interface StepIdentity {
  readonly pipeline: string;
  readonly step: string;
  readonly key: string;
  readonly code: string;
}

/**
 * An input of the step, by reference: the upstream step and output that made it, and the
 * descriptor of its artifact (its content-addressed id, size and format) in the artifact store.
 *
 * @example
 * const input: InputArtifact = { step: 'training_data_loader', output: 'X_train', descriptor: { id: 'c0ff…', kind: 'json', size: 5120, format: 'json' } };
 */
export interface InputArtifact {
  readonly step: string;
  readonly output: string;
  readonly descriptor: ArtifactDescriptor;
}

/**
 * One execution to perform.
 *
 * A remote executor sends `identity`, `parameters` (JSON-encodable values) and `inputs`
 * (artifact references, never values) to a worker, which loads the inputs from the shared
 * artifact store, runs the step it knows by `identity.pipeline` and `identity.step`, stores the
 * outputs and answers with their descriptors. An in-process executor calls `node.step.fn` with
 * `argument()`: the parameters and the input values the runner has already loaded and verified.
 *
 * @example
 * const request: ExecutionRequest = { identity, node, parameters: { gamma: 0.002 }, inputs: { X_train }, argument: async () => E.right(args) };
 */
export interface ExecutionRequest {
  readonly identity: StepIdentity;
  /** The compiled node: its function, its output names and their formats. Meaningful in this process only. */
  readonly node: GraphNode;
  /** The plain values passed to the step, by input name. */
  readonly parameters: Readonly<Record<string, unknown>>;
  /** The artifacts passed to the step, by input name. */
  readonly inputs: Readonly<Record<string, InputArtifact>>;
  /** The step function's argument (parameters and input values), loaded in this process. */
  readonly argument: () => Promise<E.Either<StepcacheError, Readonly<Record<string, unknown>>>>;
  /**
   * Whether an executor that looks in the cache itself (a remote worker) may serve an intact
   * entry it finds under the key instead of executing, and how old that entry may be; absent,
   * it must execute (caching is off for the step, a refresh was asked for, the entry was rejected).
   */
  readonly reuse?: { readonly maxAgeMs?: number };
  /**
   * The cache entry the outputs make, but for them: an executor that runs elsewhere (a remote
   * worker) commits it (insert-if-absent) as soon as the outputs are stored, before it answers, so
   * that another request for the key finds it at once instead of executing again. The runner
   * commits the same entry too; the first commit stays.
   */
  readonly entry?: EntryTemplate;
  /**
   * How many more times a step function that throws is tried (the step's `retries` setting): a
   * queue makes them attempts of the job, on any worker; the in-process executor calls the
   * function again after a short pause. Absent, 0.
   */
  readonly retries?: number;
  /**
   * Hears what the executor learns while the step executes elsewhere: which worker (on which
   * host) started it, and which attempt that is. The runner raises a `step-remote-started` event.
   */
  readonly onProgress?: (progress: ExecutionProgress) => void;
}

/**
 * What a remote executor reports while a step executes: a worker started it (the `attempt`-th try,
 * from 1).
 *
 * @example
 * const progress: ExecutionProgress = { phase: 'started', worker: 'gpu-3:4121', host: 'gpu-3', attempt: 1 };
 */
export interface ExecutionProgress {
  readonly phase: 'started';
  readonly worker: string;
  readonly host: string;
  readonly attempt: number;
}

/**
 * A cache entry without its outputs, and how to write it: what a remote executor needs to commit
 * the entry of what it executed.
 *
 * @example
 * const template: EntryTemplate = { runId: 'k3x9…', components, ttlMs: undefined, replace: false };
 */
export interface EntryTemplate {
  readonly runId: string;
  readonly components: KeyComponents;
  readonly ttlMs?: number | undefined;
  readonly replace: boolean;
}

/**
 * Where an executor stores what it produces: the run's artifact store. (The runner commits the
 * cache entry itself, from the descriptors returned, so every executor gets the same entries.)
 *
 * @example
 * const store: ExecutionStore = { artifacts: createFileArtifactStore('.stepcache/artifacts') };
 */
export interface ExecutionStore {
  readonly artifacts: ArtifactStore;
}

/**
 * What an execution produced: a descriptor of every stored output, by output name, and how long
 * it took. An in-process executor also returns the output values, decoded from the bytes it
 * stored and shared with nothing else, which the run hands to the first consumer without reading
 * them back (every other consumer loads its own from the store).
 *
 * @example
 * const result: ExecutionResult = { descriptors: { model: { id: '9e1d…', kind: 'json', size: 812, format: 'json' } }, durationMs: 931 };
 */
export interface ExecutionResult {
  readonly descriptors: Readonly<Record<string, ArtifactDescriptor>>;
  readonly durationMs: number;
  readonly values?: Readonly<Record<string, unknown>>;
  /**
   * Set by an executor that found the key cached where it executes (a worker looking in the
   * cache for the client): the run that cached it. Nothing executed, and nothing is committed.
   */
  readonly cachedFrom?: string;
  /** The worker that executed the step, when it executed elsewhere. */
  readonly worker?: string;
  /** The executor committed the request's `entry` itself (a worker does, before answering): the runner does not write it again. */
  readonly committed?: boolean;
}

/**
 * Executes one step. Errors are values: a step that throws, returns outputs it did not declare,
 * or returns values that cannot be stored gives a `Left` with a `StepcacheError` naming the step
 * (and the output) at fault. An executor never writes cache entries and never raises run events:
 * the runner does both from the result, so scheduling, single-flight, locks and records work the
 * same whatever the executor.
 *
 * @example
 * const timed: Executor = {
 *   execute: async (request, store) => {
 *     console.time(request.identity.step);
 *     try { return await inProcessExecutor().execute(request, store); } finally { console.timeEnd(request.identity.step); }
 *   },
 * };
 */
export interface Executor {
  /** Executes the step of `request`, storing its outputs in `store`; resolves (never rejects) with the result or the error. */
  execute(request: ExecutionRequest, store: ExecutionStore): Promise<E.Either<StepcacheError, ExecutionResult>>;
  /** `true` for an executor that sends steps to other machines, whose workers load the inputs themselves. */
  readonly remote?: true;
}

/**
 * Whether an executor sends steps to other machines (whose workers load the inputs themselves).
 *
 * @example
 * isRemote(inProcessExecutor()); // false
 * isRemote(queueExecutor({ url })); // true
 */
export const isRemote = (executor: Executor): boolean => executor.remote === true;
