/**
 * The runner: the one part of stepcache with effects. It compiles a pipeline into its DAG,
 * decides for each step whether to serve it from the cache or execute it, stores what executes,
 * and records the run.
 *
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import * as TE from 'fp-ts/TaskEither';
import type Keyv from 'keyv';
import { StepcacheError, toError, type StepcacheErrorCode } from '../errors';
import { diffComponents } from '../cache/components';
import { describeReason, type ExecutionReason, type StepExplanation } from '../cache/reasons';
import { keyHashFunction } from '../hash/hashers';
import { compilePipeline, type AnyPipeline, type GraphNode, type Pipeline, type PipelineGraph, type PipelineOutputs, type PipelineOutputValues } from '../pipeline/pipeline';
import { decideCache, mergeSettings, settingsForStep, preview, resolveSettings, type CacheDecision, type CacheLookup, type ResolvedCacheSettings, type SettingsLayer } from '../settings/settings';
import { DEFAULT_OUTPUT } from '../step/step';
import { createFileArtifactStore, type ArtifactStore } from '../store/artifact-store';
import { createKeyvMetadataStore, createSqliteMetadataStore, type MetadataStore } from '../store/metadata-store';
import { signedMetadataStore } from '../store/signed-metadata-store';
import { createFileStepLock, createMemoryStepLock, type StepLock } from '../lock';
import type { CacheEntry, RunRecord, StepRunRecord, StepStatus } from '../store/records';
import { artifactDigest, deserializeOutput, findNonJson, serializeOutput, type ArtifactDescriptor } from '../store/serialize';
import { consoleLogger, type Logger } from './logger';
import { codeFingerprintOf, stepKeyOf, type StepKey } from './step-key';
import { openFingerprintDiskCache, type FingerprintDiskCache } from '../fingerprint';
import { createCacheAdmin, validatePruneOptions, type CacheAdmin, type PruneOptions } from '../cache/maintenance';

// model

/**
 * How to make a runner. Everything is optional: by default the embedded store lives in
 * `./.stepcache` (or `$STEPCACHE_DIR`), with metadata in SQLite and artifacts as files.
 *
 * @example
 * const runner = createRunner({ dir: '/tmp/my-cache', logger: silentLogger, concurrency: 2 });
 */
export interface RunnerOptions {
  /** The store directory. @default process.env.STEPCACHE_DIR ?? './.stepcache' */
  readonly dir?: string;
  /** A keyv instance of any backend, or a metadata store, instead of `<dir>/metadata.sqlite`. */
  readonly metadata?: Keyv | MetadataStore;
  /** An artifact store instead of `<dir>/artifacts`. */
  readonly artifacts?: ArtifactStore;
  /** Where log lines go. @default consoleLogger */
  readonly logger?: Logger;
  /** How many steps may run at once. @default 1 */
  readonly concurrency?: number;
  /**
   * A secret shared by a team: entries are signed with it (HMAC-SHA256), and entries that do not
   * verify are ignored and reported, so nobody without it can poison a shared cache.
   */
  readonly secret?: string | Uint8Array;
  /**
   * The cross-process lock on step keys, so that processes sharing a store execute each key once.
   * @default lock files under `<dir>/locks` for the embedded store; an in-process lock when a
   * custom metadata store is given without a lock (shared stores bring their own, e.g. on Redis).
   */
  readonly lock?: StepLock;
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

/** The parameters argument of `runner.run`: optional when every parameter is. */
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
  /** Every recorded run, most recent first. */
  listRuns(): Promise<RunRecord[]>;
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

// run state

interface NodeState {
  status: StepStatus | 'pending';
  key?: string;
  descriptors?: Readonly<Record<string, ArtifactDescriptor>>;
  /** Loaded or produced output values, shared by every consumer. */
  readonly values: Map<string, Promise<E.Either<StepcacheError, unknown>>>;
  startedAt?: string;
  durationMs: number;
  cachedFrom?: string;
  why?: ExecutionReason;
  reason?: string;
  error?: StepcacheError;
  repair?: Promise<E.Either<StepcacheError, void>>;
}

interface Context {
  readonly graph: PipelineGraph;
  readonly pipeline: AnyPipeline;
  readonly runId: string;
  readonly states: NodeState[];
  readonly hashKey: (bytes: Uint8Array) => string;
  readonly metadata: MetadataStore;
  readonly artifacts: ArtifactStore;
  readonly logger: Logger;
  /** Entries fetched in one batch at the start: the latest entry of every step, by key. */
  readonly prefetched: ReadonlyMap<string, CacheEntry>;
  /** The same entries by step name: what a miss is compared with. */
  readonly latestByStep: ReadonlyMap<string, CacheEntry>;
  /** Code fingerprints kept on disk between processes. */
  readonly fingerprints: FingerprintDiskCache;
  /** Identifies the store within this process (runs on one store share executions in flight). */
  readonly storeId: string;
  /** The cross-process lock on step keys. */
  readonly lock: StepLock;
  /** Each node's settings layers, and what they resolve to: fixed for a run, so computed once. */
  readonly layers: readonly (readonly SettingsLayer[])[];
  readonly settings: readonly ResolvedCacheSettings[];
}

const failure = (code: StepcacheErrorCode, message: string, step: string, cause?: unknown, field?: string): StepcacheError =>
  new StepcacheError(code, message, { step, ...(cause === undefined ? {} : { cause }), ...(field === undefined ? {} : { field }) });

const seconds = (ms: number): string => `${(ms / 1000).toFixed(3)}s`;

const layersOf = (pipe: AnyPipeline, node: GraphNode): SettingsLayer[] => [
  { layer: 'pipeline', settings: mergeSettings(pipe.defaults, settingsForStep(pipe.defaults.steps, node.name)) },
  { layer: 'step', settings: node.step.settings },
  { layer: 'runtime', settings: pipe.runtime },
  { layer: 'runtimeStep', settings: settingsForStep(pipe.runtime.steps, node.name) },
];

const formatOf = (node: GraphNode, output: string) => node.step.outputSpec?.[output] ?? 'auto';

const whyExecuting = (ctx: Context, node: GraphNode, decision: Exclude<CacheDecision, { _tag: 'UseCache' }>, key: StepKey, sameKeyEntry: CacheEntry | undefined): ExecutionReason => {
  switch (decision.reason) {
    case 'cache-disabled':
      return { _tag: 'CacheDisabled', decidedBy: decision.decidedBy };
    case 'refresh':
      return { _tag: 'Refresh', decidedBy: decision.decidedBy };
    case 'expired':
      return { _tag: 'Expired', decidedBy: decision.decidedBy, ageMs: decision.ageMs, expiresAfterMs: decision.expiresAfterMs };
    case 'no-entry': {
      if (sameKeyEntry !== undefined) return { _tag: 'ArtifactsMissing' };
      const latest = ctx.latestByStep.get(node.name);
      if (latest === undefined) return { _tag: 'NeverCached' };
      const changes = diffComponents(latest.components, key.components());
      return { _tag: 'KeyChanged', changes: changes.length > 0 ? changes : [{ _tag: 'KeyFormat' }] };
    }
  }
};

// keys

const keyOf = (ctx: Context, node: GraphNode): Promise<E.Either<StepcacheError, StepKey>> =>
  stepKeyOf(
    { hashKey: ctx.hashKey, logger: ctx.logger, fingerprint: ctx.fingerprints.fingerprint, descriptorOf: (index, output) => ctx.states[index]?.descriptors?.[output] },
    node,
    ctx.settings[node.index] as ResolvedCacheSettings,
  );

const currentDigests = (ctx: Context, node: GraphNode): string[] =>
  Object.values(node.inputs).map((ref) => {
    const d = ctx.states[ref.node]?.descriptors?.[ref.output];
    return d === undefined ? '' : artifactDigest(d);
  });

// loading values

const loadOutput = (ctx: Context, index: number, output: string): Promise<E.Either<StepcacheError, unknown>> => {
  const state = ctx.states[index] as NodeState;
  const node = ctx.graph.nodes[index] as GraphNode;
  const known = state.values.get(output);
  if (known) return known;
  const loading = (async (): Promise<E.Either<StepcacheError, unknown>> => {
    const descriptor = state.descriptors?.[output];
    if (descriptor === undefined) return E.left(failure('ARTIFACT_UNAVAILABLE', `Step ${node.name} has no output ${output}.`, node.name));
    const bytes = await ctx.artifacts.get({ id: descriptor.id, size: descriptor.size });
    const value = E.isLeft(bytes) ? bytes : deserializeOutput(bytes.right, descriptor, formatOf(node, output));
    if (E.isRight(value)) return value;
    const what = E.isLeft(bytes) ? `Artifact ${bytes.left.location} (output ${output} of step ${node.name}) ${bytes.left.message}` : `Artifact ${ctx.artifacts.locate(descriptor.id)} (output ${output} of step ${node.name}) cannot be decoded: ${value.left.message}`;
    ctx.logger.warn(`${what}; re-running ${node.name} to repair it.`);
    state.values.delete(output);
    const repaired = await repair(ctx, index, what);
    if (E.isLeft(repaired)) return repaired;
    return (state.values.get(output) ?? Promise.resolve(E.left(failure('ARTIFACT_UNAVAILABLE', `Step ${node.name} did not produce output ${output}.`, node.name))));
  })();
  state.values.set(output, loading);
  return loading;
};

const loadInputs = async (ctx: Context, node: GraphNode): Promise<E.Either<StepcacheError, Record<string, unknown>>> => {
  const entries = Object.entries(node.inputs);
  const values = await Promise.all(entries.map(([, ref]) => loadOutput(ctx, ref.node, ref.output)));
  const args: Record<string, unknown> = { ...node.parameters };
  for (let i = 0; i < entries.length; i++) {
    const value = values[i] as E.Either<StepcacheError, unknown>;
    if (E.isLeft(value)) return value;
    args[(entries[i] as [string, unknown])[0]] = value.right;
  }
  return E.right(args);
};

const repair = (ctx: Context, index: number, detail?: string): Promise<E.Either<StepcacheError, void>> => {
  const state = ctx.states[index] as NodeState;
  const node = ctx.graph.nodes[index] as GraphNode;
  state.repair ??= (async () => {
    const inputs = await loadInputs(ctx, node);
    if (E.isLeft(inputs)) return inputs;
    const key = await keyOf(ctx, node);
    if (E.isLeft(key)) return key;
    const executed = await execute(ctx, node, key.right, inputs.right, true);
    if (E.isLeft(executed)) return executed;
    state.why = { _tag: 'Repaired', detail: detail ?? 'an artifact could not be loaded' };
    state.reason = describeReason(state.why);
    return E.right(undefined);
  })();
  return state.repair;
};

// executing

const splitOutputs = (node: GraphNode, result: unknown): E.Either<StepcacheError, Record<string, unknown>> => {
  if (node.step.outputSpec === undefined) return E.right({ [DEFAULT_OUTPUT]: result });
  if (typeof result !== 'object' || result === null) {
    return E.left(failure('STEP_FAILED', `Step ${node.name} declares outputs ${node.outputNames.join(', ')} but returned ${result === null ? 'null' : typeof result}.`, node.name));
  }
  const missing = node.outputNames.filter((o) => !(o in result));
  if (missing.length > 0) {
    return E.left(failure('STEP_FAILED', `Step ${node.name} declares output${missing.length > 1 ? 's' : ''} ${missing.join(', ')} but did not return ${missing.length > 1 ? 'them' : 'it'}.`, node.name, undefined, missing[0]));
  }
  return E.right(Object.fromEntries(node.outputNames.map((o) => [o, (result as Record<string, unknown>)[o]])));
};

/** `replace`: the entry stored under the key was seen and rejected (refresh, expired, artifacts missing or broken), so the new one overwrites it. */
const execute = async (ctx: Context, node: GraphNode, stepKey: StepKey, args: Record<string, unknown>, replace: boolean): Promise<E.Either<StepcacheError, void>> => {
  const key = stepKey.key;
  const state = ctx.states[node.index] as NodeState;
  const started = performance.now();
  const result = await TE.tryCatch(async () => node.step.fn(args as never), toError)();
  if (E.isLeft(result)) {
    return E.left(failure('STEP_FAILED', `Step ${node.name} failed: ${result.left.message}`, node.name, result.left));
  }
  const outputs = splitOutputs(node, result.right);
  if (E.isLeft(outputs)) return outputs;
  const descriptors: Record<string, ArtifactDescriptor> = {};
  for (const [name, value] of Object.entries(outputs.right)) {
    const serialized = serializeOutput(value, formatOf(node, name));
    if (E.isLeft(serialized)) {
      const where = node.outputNames.length === 1 && name === DEFAULT_OUTPUT ? `The output of step ${node.name}` : `Output ${name} of step ${node.name}`;
      return E.left(failure('UNENCODABLE_VALUE', `${where}${serialized.left.path === '' ? '' : ` at ${serialized.left.path}`} cannot be stored: it is ${serialized.left.reason}.`, node.name, undefined, name));
    }
    const stored = await TE.tryCatch(() => ctx.artifacts.put(serialized.right.bytes), toError)();
    if (E.isLeft(stored)) return E.left(failure('STORE_UNAVAILABLE', `Output ${name} of step ${node.name} could not be stored: ${stored.left.message}`, node.name, stored.left, name));
    const { kind, dtype, format } = serialized.right;
    descriptors[name] = Object.freeze({ id: stored.right, kind, ...(dtype === undefined ? {} : { dtype }), size: serialized.right.bytes.byteLength, format });
    state.values.set(name, Promise.resolve(E.right(value)));
  }
  const durationMs = performance.now() - started;
  const entry: CacheEntry = { key, pipeline: ctx.graph.pipeline, step: node.name, runId: ctx.runId, createdAt: Date.now(), durationMs, outputs: descriptors, components: stepKey.components() };
  const ttlMs = ctx.settings[node.index]?.expiresAfter;
  const recorded = await TE.tryCatch(() => ctx.metadata.putEntry(entry, { ttlMs, replace }), toError)();
  if (E.isLeft(recorded)) return E.left(failure('STORE_UNAVAILABLE', `The cache entry of step ${node.name} could not be recorded: ${recorded.left.message}`, node.name, recorded.left));
  state.key = key;
  state.descriptors = descriptors;
  state.durationMs = durationMs;
  delete state.cachedFrom;
  return E.right(undefined);
};

const lookup = async (ctx: Context, key: string): Promise<CacheEntry | undefined> =>
  ctx.prefetched.get(key) ?? (await ctx.metadata.getEntries([key]))[0];

/** What the cache says about a node, from its key: the decision, and the entry it would be served from. */
interface Assessment {
  readonly key: StepKey;
  readonly entry: CacheEntry | undefined;
  readonly decision: CacheDecision;
}

/** What the cache holds for a node's key: a hit only when the entry has every output and all its artifacts are present. */
const lookupFor = async (ctx: Context, node: GraphNode, entry: CacheEntry | undefined): Promise<CacheLookup> => {
  const intact =
    entry !== undefined && node.outputNames.every((o) => entry.outputs[o] !== undefined) && (await ctx.artifacts.present(Object.values(entry.outputs))).every(Boolean);
  return intact ? { _tag: 'Hit', ageMs: Math.max(0, Date.now() - entry.createdAt) } : { _tag: 'Miss' };
};

const assess = async (ctx: Context, node: GraphNode): Promise<E.Either<StepcacheError, Assessment>> => {
  const key = await keyOf(ctx, node);
  if (E.isLeft(key)) return key;
  const entry = await lookup(ctx, key.right.key);
  const decision = decideCache(ctx.layers[node.index] as SettingsLayer[], await lookupFor(ctx, node, entry));
  return E.right({ key: key.right, entry, decision });
};

const resolveNode = async (ctx: Context, node: GraphNode): Promise<void> => {
  const state = ctx.states[node.index] as NodeState;
  const began = performance.now();
  state.startedAt = new Date().toISOString();
  ctx.logger.info(`Step ${node.name} has started.`);
  const fail = (error: StepcacheError): void => {
    state.durationMs = performance.now() - began;
    state.status = 'failed';
    state.error = error;
    ctx.logger.error(error.message);
  };
  const useEntry = (key: StepKey, entry: CacheEntry): void => {
    state.status = 'cached';
    state.key = key.key;
    state.descriptors = entry.outputs;
    state.cachedFrom = entry.runId;
    state.durationMs = performance.now() - began;
    ctx.logger.info(`Using cached version of ${node.name}.`);
  };
  for (let attempt = 0; ; attempt++) {
    const assessed = await assess(ctx, node);
    if (E.isLeft(assessed)) return fail(assessed.left);
    const { key, entry, decision } = assessed.right;
    if (decision._tag === 'UseCache' && entry !== undefined) return useEntry(key, entry);
    // A miss is shared: while one run executes a key, other runs in this process wait and then
    // find its entry. (Disabled caching and refresh ask for an execution of one's own.)
    const shared = decision._tag === 'Execute' && (decision.reason === 'no-entry' || decision.reason === 'expired');
    const flightKey = `${ctx.storeId}\0${key.key}`;
    const running = shared ? inFlight.get(flightKey) : undefined;
    if (running !== undefined) {
      await running;
      attempt--;
      continue;
    }
    let landed!: () => void;
    if (shared) inFlight.set(flightKey, new Promise<void>((resolve) => (landed = resolve)));
    try {
      const inputs = await loadInputs(ctx, node);
      if (E.isLeft(inputs)) return fail(inputs.left);
      const changed = currentDigests(ctx, node).some((d, i) => d !== key.inputDigests[i]);
      if (changed && attempt < 3) continue; // an upstream artifact was repaired with new content: the key changed
      // Across processes: hold the key's lock, then look again: another process may have just made it.
      const release = shared ? await ctx.lock.acquire(key.key) : undefined;
      try {
        if (release !== undefined) {
          const made = await freshEntry(ctx, node, key.key);
          if (made !== undefined) return useEntry(key, made);
        }
        if (decision._tag === 'Execute') {
          state.why = whyExecuting(ctx, node, decision, key, entry);
          state.reason = describeReason(state.why);
          ctx.logger.info(`${node.name}: ${state.why._tag === 'NeverCached' ? 'running' : 're-running'} because ${state.reason}`);
        }
        const executed = await execute(ctx, node, key, inputs.right, entry !== undefined);
        if (E.isLeft(executed)) return fail(executed.left);
      } finally {
        await release?.();
      }
      state.status = 'executed';
      state.durationMs = performance.now() - began;
      ctx.logger.info(`Step ${node.name} has finished in ${seconds(state.durationMs)}.`);
      return;
    } finally {
      if (shared) {
        inFlight.delete(flightKey);
        landed();
      }
    }
  }
};

/**
 * The first step called without one of its required inputs, as its typed parameter declares them
 * (read from its source with its code fingerprint; steps whose inputs cannot be read are not checked).
 */
const missingInputs = (ctx: Context): StepcacheError | undefined => {
  const env = { hashKey: ctx.hashKey, logger: ctx.logger, fingerprint: ctx.fingerprints.fingerprint, descriptorOf: () => undefined };
  for (const node of ctx.graph.nodes) {
    const required = codeFingerprintOf(env, node).inputs?.required ?? [];
    const absent = required.filter((name) => !Object.hasOwn(node.parameters, name) && !Object.hasOwn(node.inputs, name));
    if (absent.length > 0) {
      const names = absent.join(', ');
      return new StepcacheError(
        'INVALID_PIPELINE',
        `Step ${node.name} in pipeline ${ctx.graph.pipeline} is called without its required input${absent.length > 1 ? 's' : ''} ${names}; pass ${absent.length > 1 ? 'them' : 'it'} in p.call(${node.name}, { ..., ${names} }).`,
        { step: node.name, field: absent[0] as string },
      );
    }
  }
  return undefined;
};

/** An intact, usable entry for a key written since the run started (by another process), if any. */
const freshEntry = async (ctx: Context, node: GraphNode, key: string): Promise<CacheEntry | undefined> => {
  const [entry] = await ctx.metadata.getEntries([key]);
  const decision = decideCache(ctx.layers[node.index] as SettingsLayer[], await lookupFor(ctx, node, entry));
  return decision._tag === 'UseCache' ? entry : undefined;
};

/** Executions in flight in this process, by store and key. */
const inFlight = new Map<string, Promise<void>>();

// scheduling

const schedule = (ctx: Context, concurrency: number): Promise<void> => {
  const { nodes } = ctx.graph;
  const waiting = nodes.map((n) => n.upstream.length);
  const dependents: number[][] = nodes.map(() => []);
  for (const n of nodes) for (const u of n.upstream) (dependents[u] as number[]).push(n.index);
  const ready = nodes.filter((n) => n.upstream.length === 0).map((n) => n.index);
  let active = 0;
  let finished = 0;
  return new Promise((resolve) => {
    const skip = (index: number, because: string): void => {
      const state = ctx.states[index] as NodeState;
      if (state.status !== 'pending') return;
      state.status = 'skipped';
      state.reason = `upstream step ${because} did not complete`;
      finished++;
      ctx.logger.info(`Step ${(nodes[index] as GraphNode).name} was skipped because ${because} did not complete.`);
      for (const d of dependents[index] as number[]) skip(d, because);
    };
    const settle = (index: number): void => {
      const state = ctx.states[index] as NodeState;
      for (const d of dependents[index] as number[]) {
        if (state.status === 'failed') skip(d, (nodes[index] as GraphNode).name);
        else if (--(waiting[d] as number) === 0 && (ctx.states[d] as NodeState).status === 'pending') {
          const at = ready.findIndex((r) => r > d);
          ready.splice(at === -1 ? ready.length : at, 0, d);
        }
      }
    };
    const pump = (): void => {
      if (finished === nodes.length) return resolve();
      while (active < concurrency && ready.length > 0) {
        const index = ready.shift() as number;
        active++;
        void resolveNode(ctx, nodes[index] as GraphNode).then(() => {
          active--;
          finished++;
          settle(index);
          pump();
        });
      }
    };
    pump();
  });
};

// records

const recordableParameters = (params: unknown): Record<string, unknown> => {
  if (typeof params !== 'object' || params === null) return {};
  return Object.fromEntries(
    Object.entries(params).map(([k, v]) => [k, findNonJson(v, '', new Set()) === undefined ? v : preview(v)]),
  );
};

const stepRecord = (node: GraphNode, state: NodeState): StepRunRecord => ({
  name: node.name,
  status: state.status === 'pending' ? 'skipped' : state.status,
  durationMs: state.durationMs,
  ...(state.key === undefined ? {} : { key: state.key }),
  ...(state.startedAt === undefined ? {} : { startedAt: state.startedAt }),
  ...(state.cachedFrom === undefined ? {} : { cachedFrom: state.cachedFrom }),
  ...(state.descriptors === undefined ? {} : { outputs: state.descriptors }),
  ...(state.reason === undefined ? {} : { reason: state.reason }),
  ...(state.why === undefined ? {} : { why: state.why }),
  ...(state.error === undefined ? {} : { error: state.error.message }),
});

let runSequence = 0;
/** Run ids sort by start time (then by order within a process), and are unique across processes. */
const newRunId = (): string =>
  `${new Date().toISOString().replace(/[-:.]/g, '').replace('T', '-').slice(0, 18)}-${(runSequence++ % 46656).toString(36).padStart(3, '0')}${randomBytes(3).toString('hex')}`;

// the runner

const planExecute = (name: string, reason: ExecutionReason): PlannedStep => ({ name, expected: 'execute', reason, message: describeReason(reason) });

const storeIdentities = new WeakMap<object, number>();
let nextStoreIdentity = 1;
/** A number per metadata store object, so runners sharing a custom store share in-flight executions. */
const storeIdentity = (store: object): number => {
  let id = storeIdentities.get(store);
  if (id === undefined) {
    id = nextStoreIdentity++;
    storeIdentities.set(store, id);
  }
  return id;
};

const isMetadataStore = (x: Keyv | MetadataStore): x is MetadataStore => typeof (x as MetadataStore).getEntries === 'function';

/**
 * Creates a runner over a store: the embedded default (`./.stepcache`, or `$STEPCACHE_DIR`),
 * or the stores given in the options. Nothing is opened until the first run.
 *
 * @example
 * const runner = createRunner();
 * const first = await runner.run(trainingPipeline);   // executes every step
 * const second = await runner.run(trainingPipeline);  // every step cached
 * second.steps.svc_trainer?.status; // 'cached'
 */
export const createRunner = (options: RunnerOptions = {}): Runner => {
  const dir = path.resolve(options.dir ?? process.env['STEPCACHE_DIR'] ?? '.stepcache');
  const logger = options.logger ?? consoleLogger;
  const concurrency = options.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new StepcacheError('INVALID_OPTIONS', `Invalid option concurrency: got ${preview(concurrency)}, expected a whole number of at least 1.`, { field: 'concurrency' });
  }
  let stores: Promise<{ metadata: MetadataStore; artifacts: ArtifactStore }> | undefined;
  const open = () =>
    (stores ??= (async () => {
      if (options.metadata === undefined || options.artifacts === undefined) await fs.promises.mkdir(dir, { recursive: true });
      const plain =
        options.metadata === undefined
          ? createSqliteMetadataStore(path.join(dir, 'metadata.sqlite'))
          : isMetadataStore(options.metadata)
            ? options.metadata
            : createKeyvMetadataStore(options.metadata);
      const metadata =
        options.secret === undefined
          ? plain
          : signedMetadataStore(plain, options.secret, (entry) =>
              logger.warn(`Ignoring the cache entry of step ${entry.step} (pipeline ${entry.pipeline}, run ${entry.runId}): its signature does not verify with this runner's secret.`),
            );
      const artifacts = options.artifacts ?? createFileArtifactStore(path.join(dir, 'artifacts'));
      return { metadata, artifacts };
    })());

  let fingerprintCache: FingerprintDiskCache | undefined;
  const lock = options.lock ?? (options.metadata === undefined ? createFileStepLock(path.join(dir, 'locks')) : createMemoryStepLock());
  const storeId = options.metadata === undefined ? dir : `${dir}\0${storeIdentity(options.metadata)}`;
  const storeCall = <A>(what: string, f: () => Promise<A>): Promise<A> =>
    f().catch((e: unknown) => {
      throw e instanceof StepcacheError ? e : new StepcacheError('STORE_UNAVAILABLE', `The store in ${dir} could not ${what}: ${toError(e).message}`, { cause: e });
    });

  const openStores = () =>
    open().catch((e: unknown) => {
      stores = undefined;
      throw new StepcacheError('STORE_UNAVAILABLE', `The store in ${dir} could not be opened: ${toError(e).message}`, { cause: e });
    });

  /** The state a run (or a plan) starts from: stores opened, every step's latest entry fetched in one batch. */
  const contextFor = async (p: Pipeline<never, PipelineOutputs | void> | AnyPipeline | object, graph: PipelineGraph, runId: string): Promise<Context> => {
    const { metadata, artifacts } = await openStores();
    const hashKey = await keyHashFunction();
    const layers = graph.nodes.map((n) => layersOf(p as AnyPipeline, n));
    fingerprintCache ??= openFingerprintDiskCache(path.join(dir, 'fingerprints.json'), hashKey);
    const latest = (await storeCall('be read', () => metadata.getLatestEntries(graph.pipeline, graph.nodes.map((n) => n.name)))).filter((e): e is CacheEntry => e !== undefined);
    return {
      graph,
      pipeline: p as AnyPipeline,
      runId,
      states: graph.nodes.map(() => ({ status: 'pending', values: new Map(), durationMs: 0 })),
      hashKey,
      metadata,
      artifacts,
      logger,
      prefetched: new Map(latest.map((e) => [e.key, e])),
      latestByStep: new Map(latest.map((e) => [e.step, e])),
      fingerprints: fingerprintCache,
      storeId,
      lock,
      layers,
      settings: layers.map((l) => resolveSettings(l).settings),
    };
  };

  const admin = createCacheAdmin(openStores);
  const cacheAdmin: CacheAdmin = Object.freeze({
    list: admin.list,
    clear: admin.clear,
    prune: async (prune: PruneOptions = {}) => {
      const invalid = typeof prune === 'object' && prune !== null ? validatePruneOptions(prune) : { field: 'options' as const, message: 'Prune options must be an object.' };
      if (invalid !== undefined) throw new StepcacheError('INVALID_OPTIONS', invalid.message, { field: invalid.field });
      return admin.prune(prune);
    },
  });

  const compileOrThrow = <P, O extends PipelineOutputs | void>(p: Pipeline<P, O>, params: P): PipelineGraph => {
    if (typeof p !== 'object' || p === null || (p as { _tag?: unknown })._tag !== 'Pipeline') {
      throw new StepcacheError('INVALID_PIPELINE', `runner.run takes a pipeline made with pipeline(name, definition), got ${typeof p}.`);
    }
    if (params !== undefined && (typeof params !== 'object' || params === null || Array.isArray(params))) {
      throw new StepcacheError('INVALID_OPTIONS', `The parameters of pipeline ${p.name} must be an object, got ${preview(params)}.`, { field: 'params' });
    }
    const graph = compilePipeline(p, (params ?? {}) as P);
    if (E.isLeft(graph)) {
      const e = graph.left;
      throw new StepcacheError('INVALID_PIPELINE', e.message, { ...('step' in e ? { step: e.step } : {}), ...('field' in e ? { field: e.field } : {}), ...(e._tag === 'DefinitionThrew' ? { cause: e.cause } : {}) });
    }
    return graph.right;
  };

  const planPipeline = async <P, O extends PipelineOutputs | void>(p: Pipeline<P, O>, params: P): Promise<Plan> => {
    const graph = compileOrThrow(p, params);
    const ctx = await contextFor(p, graph, 'plan');
    const steps: Record<string, PlannedStep> = {};
    for (const node of graph.nodes) {
      const notCached = node.upstream.map((u) => graph.nodes[u] as GraphNode).filter((u) => steps[u.name]?.expected !== 'cached');
      if (notCached.length > 0) {
        const upstream = notCached.map((u) => u.name);
        const decision = decideCache(ctx.layers[node.index] as SettingsLayer[], { _tag: 'Miss' });
        steps[node.name] =
          decision._tag === 'Execute' && decision.reason !== 'no-entry'
            ? planExecute(node.name, decision.reason === 'cache-disabled' ? { _tag: 'CacheDisabled', decidedBy: decision.decidedBy } : { _tag: 'Refresh', decidedBy: decision.decidedBy })
            : { name: node.name, expected: 'depends', upstream, message: `cached only if ${upstream.join(' and ')} ${upstream.length > 1 ? 'reproduce their' : 'reproduces its'} outputs byte for byte` };
        continue;
      }
      const assessed = await assess(ctx, node);
      if (E.isLeft(assessed)) throw assessed.left;
      const { key, entry, decision } = assessed.right;
      if (decision._tag === 'UseCache' && entry !== undefined) {
        (ctx.states[node.index] as NodeState).descriptors = entry.outputs;
        steps[node.name] = { name: node.name, expected: 'cached', cachedFrom: entry.runId, message: `cached from run ${entry.runId}` };
      } else if (decision._tag === 'Execute') {
        steps[node.name] = planExecute(node.name, whyExecuting(ctx, node, decision, key, entry));
      }
    }
    await ctx.fingerprints.flush();
    return Object.freeze({ pipeline: graph.pipeline, steps: Object.freeze(steps) });
  };

  const explainStep = async (run: RunRecord | string, step: string): Promise<StepExplanation> => {
    const record = typeof run === 'string' ? await storeCall('be read', async () => (await openStores()).metadata.getRun(run)) : run;
    if (record === undefined) throw new StepcacheError('UNKNOWN_RUN', `There is no run ${JSON.stringify(run)} in the store in ${dir}.`, { field: 'run' });
    const s = record.steps[step];
    if (s === undefined) {
      throw new StepcacheError('UNKNOWN_STEP', `Run ${record.id} of pipeline ${record.pipeline} has no step ${JSON.stringify(step)}; its steps are: ${Object.keys(record.steps).join(', ') || '(none)'}.`, { step, field: 'step' });
    }
    switch (s.status) {
      case 'cached':
        return { step, status: 'cached', cachedFrom: s.cachedFrom ?? '', message: `served from the cache, made by run ${s.cachedFrom ?? '(unknown)'}` };
      case 'failed':
        return { step, status: 'failed', error: s.error ?? '', message: s.error ?? 'it failed' };
      case 'skipped':
        return { step, status: 'skipped', message: s.reason ?? 'an upstream step did not complete' };
      case 'executed': {
        const reason = (s.why ?? { _tag: 'NeverCached' }) as ExecutionReason;
        return { step, status: 'executed', reason, message: s.reason ?? describeReason(reason) };
      }
    }
  };

  const runPipeline = async <P, O extends PipelineOutputs | void>(p: Pipeline<P, O>, params: P): Promise<Run<PipelineOutputValues<Pipeline<P, O>>>> => {
    const graph = compileOrThrow(p, params);
    const ctx = await contextFor(p, graph, newRunId());
    const missing = missingInputs(ctx);
    if (missing !== undefined) throw missing;
    const { metadata } = ctx;
    const nodes = graph.nodes;
    const startedAt = new Date();
    const started = performance.now();
    const record = (status: RunRecord['status']): RunRecord => ({
      id: ctx.runId,
      pipeline: p.name,
      parameters: recordableParameters(params),
      status,
      startedAt: startedAt.toISOString(),
      // The record written when the run starts stays small; the final one has every step.
      steps: status === 'running' ? {} : Object.fromEntries(nodes.map((n) => [n.name, stepRecord(n, ctx.states[n.index] as NodeState)])),
      outputs: Object.fromEntries(Object.entries(graph.outputs).map(([k, ref]) => [k, { step: ref.step, output: ref.output }])),
      edges: nodes.flatMap((n) => Object.entries(n.inputs).map(([input, ref]) => ({ from: ref.step, output: ref.output, to: n.name, input }))),
      ...(status === 'running' ? {} : { endedAt: new Date().toISOString(), durationMs: performance.now() - started }),
    });
    logger.info(`Initiating a new run for the pipeline: ${p.name}.`);
    // The start record is written while the first steps run; it must land before the final one.
    const startRecorded = storeCall('record the run', () => metadata.putRun(record('running')));
    startRecorded.catch(() => undefined);
    await schedule(ctx, concurrency);
    await startRecorded;
    await ctx.fingerprints.flush();
    const failed = nodes.filter((n) => (ctx.states[n.index] as NodeState).status === 'failed');
    const final = record(failed.length > 0 ? 'failed' : 'completed');
    await storeCall('record the run', () => metadata.putRun(final));
    if (failed.length > 0) {
      const first = ctx.states[(failed[0] as GraphNode).index] as NodeState;
      logger.error(`Pipeline run ${ctx.runId} failed: ${failed.map((n) => n.name).join(', ')}.`);
      const error = first.error as StepcacheError;
      throw new StepcacheError(error.code, error.message, { ...(error.step === undefined ? {} : { step: error.step }), ...(error.field === undefined ? {} : { field: error.field }), cause: error.cause ?? error, run: final });
    }
    logger.info(`Pipeline run ${ctx.runId} has finished in ${seconds(final.durationMs ?? 0)}.`);
    const output = async (name: string): Promise<unknown> => {
      const ref = graph.outputs[name];
      if (ref === undefined) {
        throw new StepcacheError('UNKNOWN_OUTPUT', `Pipeline ${p.name} has no output ${JSON.stringify(name)}; its outputs are: ${Object.keys(graph.outputs).join(', ') || '(none)'}.`, { field: name });
      }
      const value = await loadOutput(ctx, ref.node, ref.output);
      if (E.isLeft(value)) throw value.left;
      return value.right;
    };
    return Object.freeze({ ...final, output }) as Run<PipelineOutputValues<Pipeline<P, O>>>;
  };

  const run = <P, O extends PipelineOutputs | void>(p: Pipeline<P, O>, ...params: RunParams<P>) => runPipeline(p, params[0] as P);

  return Object.freeze({
    run,
    runTask: <P, O extends PipelineOutputs | void>(p: Pipeline<P, O>, ...params: RunParams<P>) =>
      TE.tryCatch(
        () => run(p, ...params),
        (e) => (e instanceof StepcacheError ? e : new StepcacheError('STORE_UNAVAILABLE', toError(e).message, { cause: e })),
      ),
    explain: explainStep,
    cache: cacheAdmin,
    plan: <P, O extends PipelineOutputs | void>(p: Pipeline<P, O>, ...params: RunParams<P>) => planPipeline(p, params[0] as P),
    getRun: async (id: string) => storeCall('be read', async () => (await openStores()).metadata.getRun(id)),
    listRuns: async () => storeCall('be read', async () => (await openStores()).metadata.listRuns()),
    close: async () => {
      if (stores === undefined) return;
      const { metadata } = await stores;
      stores = undefined;
      await metadata.close();
    },
  });
};
