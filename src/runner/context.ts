/**
 * The state a run (or a plan) works in: the compiled graph, each step's state and resolved
 * settings, the stores, the entries fetched up front, and the one way to raise run events.
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as E from 'fp-ts/Either';
import { checkSettingReferences, type PathKind } from '../cache/setting-references';
import { StepcacheError } from '../errors';
import { openFingerprintDiskCache, type FingerprintDiskCache, type FingerprintDiskCacheOptions } from '../fingerprint';
import { keyHashFunction } from '../hash/hashers';
import { createMemoryStepLock, type StepLock } from '../lock';
import type { AnyPipeline, GraphNode, PipelineGraph } from '../pipeline/pipeline';
import { resolveSettings, settingsLayers, type SettingsResolution } from '../settings/settings';
import type { ArtifactStore } from '../store/artifact-store';
import type { MaybeInline } from '../store/inline';
import type { MetadataStore } from '../store/metadata-store';
import { storeLayout } from '../store/layout';
import { readOnlyArtifactStore, readOnlyMetadataStore, type ReadOnlyMode } from '../store/read-only-store';
import type { CacheEntry, EntryHead } from '../store/records';
import { artifactDigest } from '../store/serialize';
import { pendingCommits, type PendingCommits } from './commits';
import { runEvent, type RunEventBody, type RunSubscriber } from './events';
import type { Executor } from './executor';
import { applyEvent, pendingState, type NodeState } from './state';
import { stepKeyNow, stepKeyOf, type InputLoader, type KeyEnvironment, type StepKey } from './step-key';
import { withPresenceOf, type StoreAccess } from './stores';

// model

/** @internal */
export interface RunContext {
  readonly graph: PipelineGraph;
  readonly pipeline: AnyPipeline;
  readonly runId: string;
  readonly states: readonly NodeState[];
  readonly hashKey: (bytes: Uint8Array) => string;
  readonly metadata: MetadataStore;
  readonly artifacts: ArtifactStore;
  readonly executor: Executor;
  /**
   * Raises a run event: stamps it, applies it to its step's state, then tells the subscribers.
   * A caller that knows the step's node index passes it (saves finding the step by name).
   */
  readonly emit: (event: RunEventBody, stepIndex?: number) => void;
  /**
   * Fetched in one batch at the start: the head of the latest entry of every step (made by any
   * pipeline), by node index. A head serves a key only when it is the key's (see
   * `prefetchedFor`): found by index, no key is hashed for a lookup in a map of every step.
   */
  readonly prefetched: ReadonlyArray<EntryHead | undefined>;
  /**
   * The latest entry of a step, whole (with its key components): what a miss is compared with.
   * Read once, for every step, at the first miss that asks (a fully cached run reads none).
   */
  readonly latestOfStep: (step: string) => Promise<CacheEntry | undefined>;
  /** Code fingerprints kept on disk between processes. */
  readonly fingerprints: FingerprintDiskCache;
  /** Identifies the store within this process (runs on one store share executions in flight). */
  readonly storeId: string;
  /** The cross-process lock on step keys. */
  readonly lock: StepLock;
  /** Each node's settings, resolved once: they are fixed for a run. */
  readonly settings: readonly SettingsResolution[];
  /** What computing keys needs, from this context. */
  readonly keys: KeyEnvironment;
  /** Cache lookups are left to the executor's workers: every step is sent to them (no client-side caching). */
  readonly lookupsOnWorkers: boolean;
  /** The entries' writes and the locks' releases the steps left behind them. */
  readonly commits: PendingCommits;
  /**
   * Whether the presence batch made when the context opened found an artifact present: `artifacts`
   * answers so for it without asking the store, so a step can skip the call.
   */
  readonly isKnownPresent: (ref: MaybeInline) => boolean;
  /**
   * Resolves when a step of the run first starts executing, here or on a worker: from then on the
   * run changes the store (a run that only serves steps from the cache never resolves it).
   */
  readonly executing: Promise<void>;
}

/** @internal What opening a context needs from the runner. */
export interface ContextDependencies {
  readonly stores: StoreAccess;
  readonly executor: Executor;
  readonly subscriber: RunSubscriber;
  /** Code fingerprints kept on disk, opened once per runner. */
  readonly fingerprints: (hashKey: (bytes: Uint8Array) => string) => FingerprintDiskCache;
  /** Every step is sent to the executor, which looks in the cache itself. @default false */
  readonly lookupsOnWorkers?: boolean;
}

// opening

/**
 * @internal Fingerprints kept in the store's fingerprint file, opened on first use; signed with
 * the runner's secret when it has one (`options`).
 */
export const fingerprintsIn = (dir: string, readOnly: ReadOnlyMode, options: FingerprintDiskCacheOptions = {}): ContextDependencies['fingerprints'] => {
  let cache: FingerprintDiskCache | undefined;
  return (hashKey) => (cache ??= openFingerprintDiskCache(storeLayout(dir).fingerprintsFile, hashKey, { ...options, readOnly: () => readOnly.why() !== undefined }));
};

/** The lock of runs on a read-only store: within this process only (no lock file is written). */
const readOnlyLock = createMemoryStepLock();

/** What the one `read-only-store` warning of a run says. */
const readOnlyMessage = (why: string): string =>
  `The store is read-only: ${why}. Cached steps are served; executed steps are not stored (their values are handed on within this run), and this run is not recorded.`;

/** What is at a path, relative to the working directory. */
const pathKind = (file: string): PathKind => {
  try {
    return fs.statSync(file).isDirectory() ? 'folder' : 'file';
  } catch {
    return 'missing';
  }
};

/**
 * Settings already resolved, by pipeline value, step settings and step name: all are frozen, and a
 * node's settings depend on nothing else, so they are the same in every run of the pipeline value
 * (a step renamed in the pipeline's definition is a new step value with the same settings).
 */
const resolvedSettings = new WeakMap<AnyPipeline, WeakMap<GraphNode['step']['settings'], Map<string, SettingsResolution>>>();

/** @internal A node's settings, by the one precedence function (resolved once per pipeline value, step settings and name). */
const settingsOf = (pipe: AnyPipeline, node: GraphNode): SettingsResolution => {
  let bySettings = resolvedSettings.get(pipe);
  if (bySettings === undefined) resolvedSettings.set(pipe, (bySettings = new WeakMap()));
  let byName = bySettings.get(node.step.settings);
  if (byName === undefined) bySettings.set(node.step.settings, (byName = new Map()));
  let resolved = byName.get(node.name);
  if (resolved === undefined) {
    resolved = Object.freeze(resolveSettings(settingsLayers({ pipelineDefaults: pipe.defaults, stepSettings: node.step.settings, runConfig: pipe.runConfig, runtime: pipe.runtime, stepName: node.name })));
    byName.set(node.name, resolved);
  }
  return resolved;
};

/** @internal The state a run (or a plan) starts from: stores opened, every step's latest entry fetched in one batch. */
export const openContext = async (deps: ContextDependencies, pipe: AnyPipeline, graph: PipelineGraph, runId: string): Promise<RunContext> => {
  const settings = graph.nodes.map((n) => settingsOf(pipe, n));
  const unmatched = checkSettingReferences(pipe, graph, settings, pathKind);
  if (E.isLeft(unmatched)) {
    const { step, field, message } = unmatched.left;
    throw new StepcacheError('INVALID_OPTIONS', message, { field, ...(step === undefined ? {} : { step }) });
  }
  const stores = await deps.stores.open();
  void stores.hashing.nowReady(); // loaded while the run looks its steps up: a step's output is then stored at once when it returns
  const hashKey = await keyHashFunction();
  const states = graph.nodes.map(pendingState);
  const indexOf = new Map(graph.nodes.map((n) => [n.name, n.index]));
  let startExecuting: (() => void) | undefined;
  const executing = new Promise<void>((resolve) => (startExecuting = resolve));
  const emit = (body: RunEventBody, stepIndex?: number): void => {
    if (body.type === 'step-executing' || body.type === 'step-remote-started') startExecuting?.();
    const event = runEvent(runId, body);
    const index = stepIndex ?? ('step' in event && event.step !== undefined ? indexOf.get(event.step) : undefined);
    if (index !== undefined) applyEvent(states[index] as NodeState, event);
    deps.subscriber(event);
  };
  let readOnlyWarned = false;
  const readOnlyNoticed = (why: string): void => {
    if (readOnlyWarned) return;
    readOnlyWarned = true;
    emit({ type: 'warning', kind: 'read-only-store', message: readOnlyMessage(why) });
  };
  const readOnly = deps.stores.readOnly;
  const metadata = readOnlyMetadataStore(
    stores.metadataFor((message) => emit({ type: 'warning', kind: 'unverified-entry', message })),
    readOnly,
    readOnlyNoticed,
  );
  const names = graph.nodes.map((n) => n.name);
  // The latest entry of each step, whichever pipeline made it: keys do not depend on the pipeline.
  // Only their heads, where the store has them: what a hit needs.
  const wholeLatest = (): Promise<ReadonlyArray<CacheEntry | undefined>> => deps.stores.call('be read', () => metadata.getLatestEntriesOfSteps(names));
  const byStep = (entries: ReadonlyArray<CacheEntry | undefined>): ReadonlyMap<string, CacheEntry> => new Map(entries.flatMap((e) => (e === undefined ? [] : [[e.step, e] as const])));
  const readHeads = metadata.getLatestHeadsOfSteps?.bind(metadata);
  // A store without heads is read whole once, up front: that read also explains the misses.
  const whole = readHeads === undefined ? await wholeLatest() : undefined;
  const heads = whole ?? (await deps.stores.call('be read', () => (readHeads as NonNullable<typeof readHeads>)(names)));
  const latest = heads.filter((e): e is EntryHead => e !== undefined);
  const withLatest = new Set(latest.map((e) => e.step));
  let latestWhole: Promise<ReadonlyMap<string, CacheEntry>> | undefined = whole === undefined ? undefined : Promise.resolve(byStep(whole));
  const readWhole = (): Promise<ReadonlyMap<string, CacheEntry>> =>
    wholeLatest().then(byStep, (e: unknown) => {
      latestWhole = undefined; // a failed read is tried again by the next miss
      throw e;
    });
  // A step without a head had no entry when the run started: nothing to read (a first run reads nothing more).
  const latestOfStep = async (step: string): Promise<CacheEntry | undefined> => (withLatest.has(step) ? (await (latestWhole ??= readWhole())).get(step) : undefined);
  const fingerprints = deps.fingerprints(hashKey);
  const checked = await withPresenceOf(stores.artifacts, latest);
  const keys: KeyEnvironment = {
    hashKey,
    warn: (kind, step, message) => emit({ type: 'warning', kind, step, message }),
    fingerprint: fingerprints.fingerprint,
    descriptorOf: (index, output) => states[index]?.descriptors?.[output],
    nodeOf: (index) => graph.nodes[index],
  };
  return {
    graph,
    pipeline: pipe,
    runId,
    states,
    hashKey,
    metadata,
    artifacts: readOnlyArtifactStore(checked.store, stores.hashing, readOnly, readOnlyNoticed),
    executor: deps.executor,
    emit,
    prefetched: heads,
    latestOfStep,
    fingerprints,
    storeId: deps.stores.storeId,
    lock: readOnly.why() === undefined ? deps.stores.lock : readOnlyLock,
    settings,
    keys,
    lookupsOnWorkers: deps.lookupsOnWorkers === true,
    commits: pendingCommits(),
    isKnownPresent: checked.isKnownPresent,
    executing,
  };
};

// keys

/** @internal A node's key from what the run knows now; `inputValue` loads upstream values for a step with a `cacheKey`. */
export const keyOf = (ctx: RunContext, node: GraphNode, inputValue: InputLoader): Promise<E.Either<StepcacheError, StepKey>> =>
  stepKeyOf(ctx.keys, node, (ctx.settings[node.index] as SettingsResolution).settings, inputValue);

/** @internal A node's key at once, when computing it needs no waiting (see `stepKeyNow`); `undefined` when it does. */
export const keyNow = (ctx: RunContext, node: GraphNode): E.Either<StepcacheError, StepKey> | undefined =>
  stepKeyNow(ctx.keys, node, (ctx.settings[node.index] as SettingsResolution).settings);

/** @internal The digests of a node's inputs as the run knows them now ('' for an input with no artifact yet). */
export const currentDigests = (ctx: RunContext, node: GraphNode): string[] =>
  Object.values(node.inputs).map((ref) => {
    const d = ctx.states[ref.node]?.descriptors?.[ref.output];
    return d === undefined ? '' : artifactDigest(d);
  });

/** @internal The head fetched up front for a node's key, if the latest entry of its step is the key's. */
export const prefetchedFor = (ctx: RunContext, node: GraphNode, key: string): EntryHead | undefined => {
  const head = ctx.prefetched[node.index];
  return head !== undefined && head.key === key ? head : undefined;
};

/** @internal A node's state. */
export const stateOf = (ctx: RunContext, node: GraphNode): NodeState => ctx.states[node.index] as NodeState;
