/**
 * One run of a pipeline, from its first event to its last: check the steps' required inputs,
 * record the run's start, schedule every node, record the end, and give typed access to outputs.
 *
 * @packageDocumentation
 */
import * as E from 'fp-ts/Either';
import { StepcacheError, toError } from '../errors';
import type { GraphNode } from '../pipeline/pipeline';
import type { RunRecord, StepStatus } from '../store/records';
import type { RunContext } from './context';
import { countStatuses } from './events';
import { stepFailure } from './in-process-executor';
import { loadOutput } from './load';
import type { Run } from './model';
import { runRecord, type RunTiming } from './record';
import { resolveNode } from './resolve';
import { schedule } from './schedule';
import { codeFingerprintOf } from './step-key';
import type { StoreAccess } from './stores';

/**
 * The first step called without one of its required inputs, as its typed parameter declares them
 * (read from its source with its code fingerprint; steps whose inputs cannot be read are not checked).
 */
const missingInputs = (ctx: RunContext): StepcacheError | undefined => {
  for (const node of ctx.graph.nodes) {
    const required = codeFingerprintOf(ctx.keys, node).inputs?.required ?? [];
    const absent = required.filter((name) => !Object.hasOwn(node.parameters, name) && !Object.hasOwn(node.inputs, name));
    if (absent.length > 0) {
      const names = absent.join(', ');
      const them = absent.length > 1 ? 'them' : 'it';
      return new StepcacheError(
        'INVALID_PIPELINE',
        `Step ${node.name} in pipeline ${ctx.graph.pipeline} is called without its required input${absent.length > 1 ? 's' : ''} ${names}; pass ${them} in p.call(${node.name}, { ..., ${names} }).`,
        { step: node.name, field: absent[0] as string },
      );
    }
  }
  return undefined;
};

/** Whether a value is a Promise or another thenable. */
const isThenable = (value: unknown): boolean =>
  (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';

/**
 * The first step given a Promise as a parameter: a pipeline definition is synchronous, so the value
 * was never awaited (plain JavaScript has no type to say so).
 */
const promisedParameters = (ctx: RunContext): StepcacheError | undefined => {
  for (const node of ctx.graph.nodes) {
    const field = Object.keys(node.parameters).find((name) => isThenable(node.parameters[name]));
    if (field !== undefined) {
      return new StepcacheError(
        'INVALID_PIPELINE',
        `Step ${node.name} in pipeline ${ctx.graph.pipeline} is given a Promise as its input ${field}; await the value before the run and pass it as a parameter, or make it the output of a step.`,
        { step: node.name, field },
      );
    }
  }
  return undefined;
};

/**
 * Waits for the writes the steps left behind them; a step whose entry could not be recorded
 * (or whose lock could not be released) failed after all.
 */
const recordCommits = async (ctx: RunContext): Promise<StepcacheError | undefined> => {
  let first: StepcacheError | undefined;
  for (const { step, error } of await ctx.commits.settle()) {
    const failure = error instanceof StepcacheError && error.step === step ? error : stepFailure('STORE_UNAVAILABLE', `The cache entry of step ${step} could not be recorded: ${error.message}`, step, error);
    const index = ctx.graph.nodes.findIndex((n) => n.name === step);
    ctx.emit({ type: 'step-failed', step, error: failure, durationMs: ctx.states[index]?.durationMs ?? 0 });
    first ??= failure;
  }
  return first;
};

/** The error a failed run rejects with: the first failure's, carrying the run's record. */
const runFailure = (error: StepcacheError, record: RunRecord): StepcacheError =>
  new StepcacheError(error.code, error.message, {
    ...(error.step === undefined ? {} : { step: error.step }),
    ...(error.field === undefined ? {} : { field: error.field }),
    cause: error.cause ?? error,
    run: record,
  });

/**
 * Loads one of the pipeline's outputs by name. A step repaired while its output was loaded
 * executed in this run after all: the run's record in the store is written again to say so.
 */
const outputLoader = (ctx: RunContext, stores: StoreAccess, final: RunRecord, params: unknown, timing: RunTiming) => {
  let recorded = final;
  return async (name: string): Promise<unknown> => {
    const ref = Object.hasOwn(ctx.graph.outputs, name) ? ctx.graph.outputs[name] : undefined;
    if (ref === undefined) {
      const known = Object.keys(ctx.graph.outputs).join(', ') || '(none)';
      throw new StepcacheError('UNKNOWN_OUTPUT', `Pipeline ${ctx.graph.pipeline} has no output ${JSON.stringify(name)}; its outputs are: ${known}.`, { field: name });
    }
    const loaded = await loadOutput(ctx, ref.node, ref.output).catch((e: unknown) =>
      E.left(new StepcacheError('ARTIFACT_UNAVAILABLE', `Output ${name} of pipeline ${ctx.graph.pipeline} (step ${ref.step}) could not be loaded: ${toError(e).message}`, { step: ref.step, field: name, cause: e })),
    );
    // A repair's entry is written behind it: durable before the value is given.
    const unrecorded = await recordCommits(ctx);
    const value = unrecorded === undefined ? loaded : E.left(unrecorded);
    if (ctx.graph.nodes.some((n) => ctx.states[n.index]?.status !== recorded.steps[n.name]?.status)) {
      const now = runRecord(ctx, params, timing, final.status);
      recorded = { ...now, ...(final.endedAt === undefined ? {} : { endedAt: final.endedAt }), ...(final.durationMs === undefined ? {} : { durationMs: final.durationMs }) };
      const updated = recorded;
      await stores.call('record the run', () => ctx.metadata.putRun(updated));
    }
    if (E.isLeft(value)) throw value.left;
    return value.right;
  };
};

/**
 * How often a run says it is still running, by default: a run shorter than this never writes a
 * heartbeat; a longer one rewrites its start record this often (its status stays `running`),
 * so that readers elsewhere can tell it from one whose process is gone.
 */
export const DEFAULT_HEARTBEAT_MS = 30_000;

/**
 * How long a run that executes nothing goes without a start record: one that ends sooner (a
 * cached run, typically) writes its final record alone, one write instead of two. A run records
 * its start as soon as a step starts executing, or once this time has passed, whichever comes
 * first; killed before then, it had changed nothing in the store and leaves no record.
 */
export const START_RECORD_AFTER_MS = 500;

/** @internal How a run is carried out: how many steps at once, how often it beats. */
export interface RunSettings {
  readonly concurrency: number;
  /** @default DEFAULT_HEARTBEAT_MS */
  readonly heartbeatEveryMs?: number | undefined;
}

/** @internal The writes that say a run is running: see {@link runningRecords}. */
export interface RunningRecords {
  /** Writes the start record now, unless it is written already or the run has ended. */
  readonly start: () => void;
  /** Stops the writes, then waits until those made have landed; rejects if the start record failed. */
  readonly end: () => Promise<void>;
}

/**
 * @internal The start record of a run and its heartbeats: `write` writes the record saying the run
 * is running. It is written once, on `start` or after {@link START_RECORD_AFTER_MS} (or one
 * heartbeat, if sooner), and never after `end`; each heartbeat after it writes it again, one write
 * after another. The start record's failure is the run's (`end` rejects), a heartbeat's is not.
 *
 * @example
 * const running = runningRecords(() => metadata.putRun(runningRecord), 30_000);
 * running.start(); // a step starts executing
 * await running.end(); // the start record has landed
 */
export const runningRecords = (write: () => Promise<void>, heartbeatEveryMs: number): RunningRecords => {
  let startRecorded: Promise<void> | undefined;
  let heartbeats: Promise<unknown> = Promise.resolve();
  let ended = false;
  const start = (): void => {
    if (startRecorded !== undefined || ended) return;
    startRecorded = write();
    heartbeats = startRecorded.catch(() => undefined);
  };
  const startLater = setTimeout(start, Math.min(START_RECORD_AFTER_MS, heartbeatEveryMs));
  startLater.unref();
  const heartbeat = setInterval(() => {
    if (startRecorded === undefined) return start();
    heartbeats = heartbeats.then(write).catch(() => undefined);
  }, heartbeatEveryMs);
  heartbeat.unref();
  const end = async (): Promise<void> => {
    ended = true;
    clearTimeout(startLater);
    clearInterval(heartbeat);
    await startRecorded;
    await heartbeats;
  };
  return { start, end };
};

/**
 * @internal Runs a pipeline in its context: resolves with the run, or rejects with the first
 * failure (its `run` holds the record).
 */
export const runInContext = async <V>(ctx: RunContext, stores: StoreAccess, params: unknown, settings: RunSettings): Promise<Run<V>> => {
  const invalid = missingInputs(ctx) ?? promisedParameters(ctx);
  if (invalid !== undefined) throw invalid;
  const { nodes } = ctx.graph;
  const timing = { startedAt: new Date(), started: performance.now(), heartbeatEveryMs: settings.heartbeatEveryMs ?? DEFAULT_HEARTBEAT_MS };
  ctx.emit({ type: 'run-started', pipeline: ctx.pipeline.name, steps: nodes.map((n) => n.name) });
  // The start record lands before the final one, and so does every heartbeat.
  const running = runningRecords(() => stores.call('record the run', () => ctx.metadata.putRun(runRecord(ctx, params, timing, 'running'))), timing.heartbeatEveryMs);
  void ctx.executing.then(running.start);
  try {
    await schedule(ctx, settings.concurrency, resolveNode);
  } catch (e: unknown) {
    running.end().catch(() => undefined); // the schedule's own failure is the run's
    throw e;
  }
  await running.end();
  await recordCommits(ctx);
  await ctx.fingerprints.flush();
  const failed = nodes.filter((n) => ctx.states[n.index]?.status === 'failed');
  const final = runRecord(ctx, params, timing, failed.length > 0 ? 'failed' : 'completed');
  await stores.call('record the run', () => ctx.metadata.putRun(final));
  const counts = countStatuses(Object.values(final.steps).map((s): StepStatus => s.status));
  const failedNames = failed.map((n) => n.name);
  ctx.emit({ type: 'run-finished', pipeline: final.pipeline, status: failed.length > 0 ? 'failed' : 'completed', counts, failed: failedNames, durationMs: final.durationMs ?? 0 });
  const firstFailure = failed[0] === undefined ? undefined : ctx.states[(failed[0] as GraphNode).index]?.error;
  if (firstFailure !== undefined) throw runFailure(firstFailure, final);
  return Object.freeze({ ...final, output: outputLoader(ctx, stores, final, params, timing) }) as Run<V>;
};
