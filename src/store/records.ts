/**
 * The records stepcache keeps in its metadata store (cache entries and runs), as io-ts codecs:
 * every record read back is decoded, and a damaged one is a {@link DamagedRecord} naming the
 * field at fault, never trusted.
 *
 * @packageDocumentation
 */
import * as E from 'fp-ts/Either';
import * as t from 'io-ts';
import { preview } from '../format/preview';

// codecs

/** @internal */
export const ArtifactDescriptorCodec = t.intersection([
  t.type({ id: t.string, kind: t.keyof({ json: null, bytes: null, none: null }), size: t.number, format: t.string }),
  t.partial({ dtype: t.string, inline: t.string }),
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
    /** The worker that executed the step, when it ran on one (`stepcache worker`). */
    worker: t.string,
  }),
]);

/** @internal The process that runs a run: what tells, when the run stays `running`, whether it is still going. */
export const RunOwnerCodec = t.type({ pid: t.number, host: t.string });

/** @internal */
export const RunStatusCodec = t.keyof({ running: null, completed: null, failed: null, interrupted: null });

/** @internal */
export const RunRecordCodec = t.intersection([
  t.type({
    id: t.string,
    pipeline: t.string,
    parameters: t.record(t.string, t.unknown),
    /** `interrupted` is never written by a run: readers derive it for a `running` run whose owner is gone. */
    status: RunStatusCodec,
    startedAt: t.string,
    steps: t.record(t.string, StepRunRecordCodec),
    outputs: t.record(t.string, t.type({ step: t.string, output: t.string })),
  }),
  t.partial({
    endedAt: t.string,
    durationMs: t.number,
    /** The DAG: which step's output feeds which step's input, in pipeline order. */
    edges: t.array(t.type({ from: t.string, output: t.string, to: t.string, input: t.string })),
    /** The process running the run (records written before owners were recorded have none). */
    owner: RunOwnerCodec,
    /** When the owner last said it was still running the run (ISO), and how often it says so. */
    heartbeatAt: t.string,
    heartbeatEveryMs: t.number,
  }),
]);

/** @internal How many steps of a run had each status. */
export const StepCountsCodec = t.type({ executed: t.number, cached: t.number, failed: t.number, skipped: t.number });

/**
 * A run in a few hundred bytes, for listings: kept in an index next to the record, so a page of
 * runs is one read whatever the records hold.
 * @internal
 */
export const RunSummaryCodec = t.intersection([
  t.type({
    id: t.string,
    pipeline: t.string,
    status: RunStatusCodec,
    startedAt: t.string,
    /** The parameters as short text (`gamma=0.1 kernel="rbf"`), for a listing. */
    parameters: t.string,
    steps: StepCountsCodec,
  }),
  t.partial({ endedAt: t.string, durationMs: t.number, owner: RunOwnerCodec, heartbeatAt: t.string, heartbeatEveryMs: t.number }),
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
 * What serving a hit reads of a cache entry: its key, where and when it was made, and its outputs;
 * not what its key was made of (components: read only to explain a miss) nor its signature.
 *
 * @example
 * const head: EntryHead = { key: 'ab', pipeline: 'p', step: 's', runId: 'r1', createdAt: Date.now(), durationMs: 3, outputs: {} };
 */
export type EntryHead = Omit<CacheEntry, 'components' | 'signature'>;

/**
 * @internal The head of an entry, frozen (its outputs shared with the entry).
 */
export const entryHead = (entry: CacheEntry): EntryHead =>
  Object.freeze({ key: entry.key, pipeline: entry.pipeline, step: entry.step, runId: entry.runId, createdAt: entry.createdAt, durationMs: entry.durationMs, outputs: entry.outputs });

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

/**
 * The process running a run: its pid and host name.
 *
 * @example
 * const owner: RunOwner = { pid: process.pid, host: os.hostname() };
 */
export type RunOwner = t.TypeOf<typeof RunOwnerCodec>;

/**
 * A run as listings show it: id, pipeline, status, times, parameters as short text, step counts.
 *
 * @example
 * const page: RunSummary[] = await metadata.listRunSummaries({ limit: 20 });
 * page[0]?.steps.cached; // 998
 */
export type RunSummary = t.TypeOf<typeof RunSummaryCodec>;

/**
 * A stored record that does not decode: which record, and the field at fault.
 *
 * @example
 * const d: DamagedRecord = { _tag: 'DamagedRecord', record: 'run', id: 'r1', message: 'run r1 field steps.train.status: expected "executed" | "cached" | "failed" | "skipped", got "x"' };
 */
export interface DamagedRecord {
  readonly _tag: 'DamagedRecord';
  readonly record: 'cache entry' | 'run' | 'run summary';
  /** The entry's key or the run's id. */
  readonly id: string;
  readonly message: string;
}

// decoding

/** A codec's name cut for a message (the names of object codecs spell out every field). */
const expectedOf = (type: t.Decoder<unknown, unknown>): string => (type.name.length > 80 ? `${type.name.slice(0, 79)}…` : type.name);

/** The first error as `field <path>: expected <type>, got <value>`; the members of an intersection add nothing to the path. */
const describeErrors = (errors: t.Errors): string => {
  const first = errors[0];
  if (first === undefined) return 'it does not decode';
  const path = first.context
    .filter((_, i) => i > 0 && !((first.context[i - 1]?.type as { _tag?: unknown } | undefined)?._tag === 'IntersectionType'))
    .map((entry) => entry.key)
    .join('.');
  const last = first.context[first.context.length - 1];
  const expected = last === undefined ? 'a record' : expectedOf(last.type);
  if (path === '') return `is not a record: got ${preview(first.value, 40)}`;
  const problem = first.value === undefined ? `field ${path} is missing (expected ${expected})` : `field ${path}: expected ${expected}, got ${preview(first.value, 40)}`;
  return errors.length > 1 ? `${problem} (and ${errors.length - 1} more)` : problem;
};

/**
 * Decodes a stored record with a codec. These codecs transform nothing, so a value their guard
 * accepts is its own decoding: the guard, which builds nothing, keeps the hot path (a cache
 * entry per step per run) cheap, and only a value it refuses is decoded again for the report.
 */
const decodeWith =
  <A>(codec: t.Type<A, unknown, unknown>, record: DamagedRecord['record']) =>
  (value: unknown, id: string): E.Either<DamagedRecord, A> => {
    if (codec.is(value)) return E.right(value);
    const decoded = codec.decode(value);
    return E.isRight(decoded) ? decoded : E.left({ _tag: 'DamagedRecord', record, id, message: `${record} ${id} ${describeErrors(decoded.left)}` });
  };

/**
 * A stored cache entry, decoded; the field at fault when it is damaged.
 *
 * @example
 * decodeCacheEntry({ key: 'ab' }, 'ab'); // Left({ _tag: 'DamagedRecord', message: 'cache entry ab field pipeline is missing (expected string)', ... })
 */
export const decodeCacheEntry: (value: unknown, key: string) => E.Either<DamagedRecord, CacheEntry> = decodeWith(CacheEntryCodec, 'cache entry');

/**
 * A stored run summary (a row of the run index), decoded; the field at fault when it is damaged.
 *
 * @example
 * decodeRunSummary({ id: 'r1' }, 'r1'); // Left({ _tag: 'DamagedRecord', record: 'run summary', ... })
 */
export const decodeRunSummary: (value: unknown, id: string) => E.Either<DamagedRecord, RunSummary> = decodeWith(RunSummaryCodec, 'run summary');

/**
 * A stored run record, decoded; the field at fault when it is damaged.
 *
 * @example
 * decodeRunRecord(stored, 'r1'); // Left({ _tag: 'DamagedRecord', message: 'run r1 field steps.train.status: expected "executed" | "cached" | "failed" | "skipped", got "x"', ... })
 */
export const decodeRunRecord: (value: unknown, id: string) => E.Either<DamagedRecord, RunRecord> = decodeWith(RunRecordCodec, 'run');

/**
 * What a store reads back: the decoded record, or `undefined` for a damaged one, which is reported
 * to `report` once per record (a listing that meets it again says nothing new).
 *
 * @example
 * const usable = reportingDamage((damage) => console.warn(damage.message));
 * const run = usable(decodeRunRecord(row, 'r1')); // RunRecord | undefined
 */
export const reportingDamage = (report: ((damage: DamagedRecord) => void) | undefined): (<A>(decoded: E.Either<DamagedRecord, A>) => A | undefined) => {
  const reported = new Set<string>();
  return (decoded) => {
    if (E.isRight(decoded)) return decoded.right;
    const damage = decoded.left;
    if (!reported.has(`${damage.record}\0${damage.id}`)) {
      reported.add(`${damage.record}\0${damage.id}`);
      report?.(damage);
    }
    return undefined;
  };
};

// summaries

/**
 * A run's parameters as one short line: `name=value` pairs, each value previewed in 24 characters
 * (any value, a bigint or a cycle included), the whole cut to 80.
 *
 * @example
 * parametersLine({ gamma: 0.1, kernel: 'rbf' }); // 'gamma=0.1 kernel="rbf"'
 */
export const parametersLine = (parameters: Readonly<Record<string, unknown>>): string => {
  const text = Object.entries(parameters)
    .map(([k, v]) => `${k}=${preview(v, 24)}`)
    .join(' ');
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
};

/**
 * How many steps of a run ended in each status.
 *
 * @example
 * stepCounts(run); // { executed: 1, cached: 3, failed: 0, skipped: 0 }
 */
export const stepCounts = (run: Pick<RunRecord, 'steps'>): Record<StepStatus, number> => {
  const counts: Record<StepStatus, number> = { executed: 0, cached: 0, failed: 0, skipped: 0 };
  for (const s of Object.values(run.steps)) counts[s.status]++;
  return counts;
};

/**
 * The summary of a run record, as the run index keeps it.
 *
 * @example
 * runSummary(record).steps; // { executed: 2, cached: 998, failed: 0, skipped: 0 }
 */
export const runSummary = (run: RunRecord): RunSummary => {
  const steps = stepCounts(run);
  return {
    id: run.id,
    pipeline: run.pipeline,
    status: run.status,
    startedAt: run.startedAt,
    parameters: parametersLine(run.parameters),
    steps,
    ...(run.endedAt === undefined ? {} : { endedAt: run.endedAt }),
    ...(run.durationMs === undefined ? {} : { durationMs: run.durationMs }),
    ...(run.owner === undefined ? {} : { owner: run.owner }),
    ...(run.heartbeatAt === undefined ? {} : { heartbeatAt: run.heartbeatAt }),
    ...(run.heartbeatEveryMs === undefined ? {} : { heartbeatEveryMs: run.heartbeatEveryMs }),
  };
};
