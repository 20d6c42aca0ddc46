/**
 * The records stepcache keeps in its metadata store (cache entries and runs), as io-ts codecs:
 * every record read back is validated, so a damaged row is treated as absent, never trusted.
 *
 * @packageDocumentation
 */
import * as t from 'io-ts';

// codecs

/** @internal */
export const ArtifactDescriptorCodec = t.intersection([
  t.type({ id: t.string, kind: t.keyof({ json: null, bytes: null, none: null }), size: t.number, format: t.string }),
  t.partial({ dtype: t.string }),
]);

/**
 * A cache entry: a step key and the artifacts its execution produced.
 * @internal
 */
export const CacheEntryCodec = t.intersection([
  t.type({
    key: t.string,
    pipeline: t.string,
    step: t.string,
    /** The run whose execution produced the outputs. */
    runId: t.string,
    /** Milliseconds since the epoch. */
    createdAt: t.number,
    durationMs: t.number,
    outputs: t.record(t.string, ArtifactDescriptorCodec),
  }),
  /** What the key was made of (see `KeyComponents`); read defensively, only to explain misses. */
  t.partial({
    components: t.unknown,
    /** HMAC-SHA256 of the rest of the entry, when the store is shared under a secret. */
    signature: t.string,
  }),
]);

/**
 * What happened to a step in a run.
 *
 * @example
 * const s: StepStatus = 'cached';
 */
export type StepStatus = 'executed' | 'cached' | 'failed' | 'skipped';

/** @internal */
export const StepRunRecordCodec = t.intersection([
  t.type({
    name: t.string,
    status: t.keyof({ executed: null, cached: null, failed: null, skipped: null }),
    durationMs: t.number,
  }),
  t.partial({
    key: t.string,
    startedAt: t.string,
    cachedFrom: t.string,
    outputs: t.record(t.string, ArtifactDescriptorCodec),
    reason: t.string,
    /** Why the step executed, as an `ExecutionReason`. */
    why: t.unknown,
    error: t.string,
  }),
]);

/** @internal */
export const RunRecordCodec = t.intersection([
  t.type({
    id: t.string,
    pipeline: t.string,
    parameters: t.record(t.string, t.unknown),
    status: t.keyof({ running: null, completed: null, failed: null }),
    startedAt: t.string,
    steps: t.record(t.string, StepRunRecordCodec),
    outputs: t.record(t.string, t.type({ step: t.string, output: t.string })),
  }),
  t.partial({
    endedAt: t.string,
    durationMs: t.number,
    /** The DAG: which step's output feeds which step's input, in pipeline order. */
    edges: t.array(t.type({ from: t.string, output: t.string, to: t.string, input: t.string })),
  }),
]);

// model

/**
 * A stored cache entry.
 *
 * @example
 * const e: CacheEntry = { key: 'ab', pipeline: 'p', step: 's', runId: 'r1', createdAt: Date.now(), durationMs: 3, outputs: {} };
 */
export type CacheEntry = t.TypeOf<typeof CacheEntryCodec>;

/**
 * One step's part in a run: status, duration, key, where cached outputs came from, why it ran.
 *
 * @example
 * run.steps.svc_trainer; // { name: 'svc_trainer', status: 'executed', durationMs: 932, ... }
 */
export type StepRunRecord = t.TypeOf<typeof StepRunRecordCodec>;

/**
 * The record of one pipeline run.
 *
 * @example
 * const record: RunRecord = await runner.getRun(run.id);
 */
export type RunRecord = t.TypeOf<typeof RunRecordCodec>;
