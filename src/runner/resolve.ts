/**
 * Resolving one node: from its key and its settings, serve it from the cache or execute it; a
 * miss is shared by runs in this process (single-flight) and, under the key's lock, by processes.
 *
 * @packageDocumentation
 */
import * as E from 'fp-ts/Either';
import { diffComponents } from '../cache/components';
import { describeReason, type ExecutionReason } from '../cache/reasons';
import { StepcacheError, toError } from '../errors';
import { describeLockHolder, type ReleaseLock } from '../lock';
import type { GraphNode } from '../pipeline/pipeline';
import { decideCache, type CacheDecision, type CacheLookup, type SettingsResolution } from '../settings/settings';
import { artifactsPresent, locateArtifact } from '../store/inline';
import type { CacheEntry, EntryHead } from '../store/records';
import { currentDigests, keyNow, keyOf, prefetchedFor, type RunContext } from './context';
import { executeNode } from './execute';
import { isRemote } from './executor';
import { stepFailure } from './in-process-executor';
import { loadArgument, loadOutput } from './load';
import type { InputLoader, StepKey } from './step-key';

// model

/** @internal What the cache says about a node, from its key: the decision, and the entry it would be served from. */
export interface Assessment {
  readonly key: StepKey;
  /** The entry of the key, or its head (from the batch fetched up front): what a hit serves. */
  readonly entry: EntryHead | undefined;
  readonly decision: CacheDecision;
  /** When the store was asked for the entry (`performance.now()`); absent when it came from the batch fetched up front. */
  readonly lookedUpAt?: number;
}

/** How resolving a node ended, or that it must be assessed again (an input changed under it). */
type Outcome =
  | { readonly _tag: 'Cached'; readonly key: StepKey; readonly entry: EntryHead }
  | { readonly _tag: 'Executed'; readonly key: StepKey; readonly outputs: CacheEntry['outputs']; readonly worker: string | undefined }
  | { readonly _tag: 'Failed'; readonly error: StepcacheError }
  | { readonly _tag: 'InputsChanged' };

/**
 * How many times a node is assessed again when an upstream artifact was repaired with new content
 * while the node loaded its inputs (which changes its key). After that, it executes as it is.
 */
const MAX_REASSESSMENTS = 3;

/** An execution's name in this process: its store and its key. */
const flightKeyOf = (ctx: RunContext, key: StepKey): string => `${ctx.storeId}\0${key.key}`;

/** Executions in flight in this process, by store and key. */
const inFlight = new Map<string, Promise<void>>();

/**
 * When each execution of this process landed (`performance.now()`), by store and key, since
 * `forgottenBefore`: an entry found absent before then may have been written since.
 */
const landedAt = new Map<string, number>();
let forgottenBefore = 0;
const LANDINGS_KEPT = 10_000;

const recordLanding = (flightKey: string): void => {
  if (landedAt.size >= LANDINGS_KEPT) {
    landedAt.clear();
    forgottenBefore = performance.now();
  }
  landedAt.delete(flightKey); // re-inserted last, so the map stays in landing order
  landedAt.set(flightKey, performance.now());
};

/**
 * Whether an entry found absent at `lookedUpAt` is still absent under the key's lock, without
 * asking the store again: no other process has locked keys since (the lock says it has been alone),
 * and no execution of the key in this process has landed since.
 */
const stillAbsent = (ctx: RunContext, flightKey: string, lookedUpAt: number | undefined): boolean => {
  const alone = ctx.lock.aloneSince?.();
  return lookedUpAt !== undefined && alone !== undefined && alone <= lookedUpAt && forgottenBefore <= lookedUpAt && (landedAt.get(flightKey) ?? -Infinity) < lookedUpAt;
};

// assessing

const settingsOf = (ctx: RunContext, node: GraphNode): SettingsResolution => ctx.settings[node.index] as SettingsResolution;

/** A miss (the same value for every one). */
const MISS: CacheLookup = Object.freeze({ _tag: 'Miss' });

/** A hit: the entry's age. */
const hitOf = (entry: EntryHead): CacheLookup => ({ _tag: 'Hit', ageMs: Math.max(0, Date.now() - entry.createdAt) });

/**
 * What the cache holds for a node's key when it is known without asking a store: no entry, an
 * entry without one of the outputs, or one whose artifacts the context's presence batch found
 * present; `undefined` when the artifact store must be asked.
 */
const lookupNow = (ctx: RunContext, node: GraphNode, entry: EntryHead | undefined): CacheLookup | undefined => {
  if (entry === undefined) return MISS;
  const names = node.outputNames;
  for (let i = 0; i < names.length; i++) if (entry.outputs[names[i] as string] === undefined) return MISS;
  for (const o in entry.outputs) if (!ctx.isKnownPresent(entry.outputs[o] as CacheEntry['outputs'][string])) return undefined;
  return hitOf(entry);
};

/** What the cache holds for a node's key: a hit only when the entry has every output and all its artifacts are present. */
const lookupFor = async (ctx: RunContext, node: GraphNode, entry: EntryHead | undefined): Promise<CacheLookup> =>
  lookupNow(ctx, node, entry) ?? ((await artifactsPresent(ctx.artifacts, Object.values((entry as EntryHead).outputs))).every(Boolean) ? hitOf(entry as EntryHead) : MISS);

/** An assessment, at once when nothing was waited for. */
type Assessed = E.Either<StepcacheError, Assessment>;

/** The entry of a key and the decision, from the batch fetched up front when it has it, else from the store. */
const assessKey = (ctx: RunContext, node: GraphNode, key: StepKey): Assessed | Promise<Assessed> => {
  const prefetched = prefetchedFor(ctx, node, key.key);
  const known = prefetched === undefined ? undefined : lookupNow(ctx, node, prefetched);
  if (known !== undefined) return E.right({ key, entry: prefetched, decision: decideCache(settingsOf(ctx, node), known) });
  return (async () => {
    const lookedUpAt = prefetched === undefined ? performance.now() : undefined;
    const entry = prefetched ?? (await ctx.metadata.getEntries([key.key]))[0];
    const decision = decideCache(settingsOf(ctx, node), await lookupFor(ctx, node, entry));
    return E.right({ key, entry, decision, ...(lookedUpAt === undefined ? {} : { lookedUpAt }) });
  })();
};

/**
 * @internal A node's key, the entry the store holds for it, and the cache decision: at once when
 * none of it needs waiting (the usual cached step: its key computed, its entry in the batch
 * fetched up front, its artifacts found present there). Upstream values are loaded (and repaired
 * when damaged) only for a step with a `cacheKey`; a dry run passes a loader that repairs nothing.
 */
export const assess = (ctx: RunContext, node: GraphNode, inputValue: InputLoader = (ref) => loadOutput(ctx, ref.node, ref.output)): Assessed | Promise<Assessed> => {
  const now = keyNow(ctx, node);
  if (now !== undefined) return E.isLeft(now) ? now : assessKey(ctx, node, now.right);
  return keyOf(ctx, node, inputValue).then((key) => (E.isLeft(key) ? key : assessKey(ctx, node, key.right)));
};

/** An intact, usable entry for a key written since the run started (by another process), if any. */
const freshEntry = async (ctx: RunContext, node: GraphNode, key: string): Promise<CacheEntry | undefined> => {
  const [entry] = await ctx.metadata.getEntries([key]);
  return decideCache(settingsOf(ctx, node), await lookupFor(ctx, node, entry))._tag === 'UseCache' ? entry : undefined;
};

/** @internal Why a node executes, from the decision and what the store knows of the step. */
export const whyExecuting = async (
  ctx: RunContext,
  node: GraphNode,
  decision: Exclude<CacheDecision, { _tag: 'UseCache' }>,
  key: StepKey,
  sameKeyEntry: EntryHead | undefined,
): Promise<ExecutionReason> => {
  switch (decision.reason) {
    case 'cache-disabled':
      return { _tag: 'CacheDisabled', decidedBy: decision.decidedBy };
    case 'refresh':
      return { _tag: 'Refresh', decidedBy: decision.decidedBy };
    case 'expired':
      return { _tag: 'Expired', decidedBy: decision.decidedBy, ageMs: decision.ageMs, expiresAfterMs: decision.expiresAfterMs };
    case 'no-entry': {
      if (sameKeyEntry !== undefined) return { _tag: 'ArtifactsMissing' };
      const latest = await ctx.latestOfStep(node.name);
      if (latest === undefined) return { _tag: 'NeverCached' };
      const changes = diffComponents(latest.components, key.components());
      return { _tag: 'KeyChanged', changes: changes.length > 0 ? changes : [{ _tag: 'KeyFormat' }] };
    }
  }
};

// executing a miss

/** A miss is shared: disabled caching and refresh ask for an execution of one's own. */
const isShared = (decision: CacheDecision): boolean => decision._tag === 'Execute' && (decision.reason === 'no-entry' || decision.reason === 'expired');

/**
 * Runs `f` as the one execution of `flightKey` in flight in this process, when there is a key.
 * Others wait until what it left behind has landed too (its entry durable, its lock released).
 */
const inFlightAs = async <A>(ctx: RunContext, node: GraphNode, flightKey: string | undefined, f: () => Promise<A>): Promise<A> => {
  if (flightKey === undefined) return f();
  let landed!: () => void;
  const flight = new Promise<void>((resolve) => (landed = resolve));
  inFlight.set(flightKey, flight);
  try {
    return await f();
  } finally {
    void ctx.commits.landed(node.name).then(() => {
      if (inFlight.get(flightKey) === flight) inFlight.delete(flightKey);
      landed();
    });
  }
};

/**
 * The lock on a node's key, across processes; a long wait is reported once, naming the holder,
 * and a wait that passes the step's `lockTimeout` setting (else the lock's own bound), or a lock
 * folder that cannot be used, fails the step.
 */
const acquireLock = (ctx: RunContext, node: GraphNode, key: StepKey): Promise<E.Either<StepcacheError, ReleaseLock>> => {
  const maxWaitMs = settingsOf(ctx, node).settings.lockTimeout;
  return Promise.resolve()
    .then(() =>
      ctx.lock.acquire(key.key, {
        ...(maxWaitMs === undefined ? {} : { maxWaitMs }),
        onWait: ({ holder }) => ctx.emit({ type: 'warning', kind: 'lock-wait', step: node.name, message: `Step ${node.name} is waiting for its key's lock, held by ${describeLockHolder(holder)}.` }),
      }),
    )
    .then(
      (release) => E.right(release),
      (e: unknown) => E.left(e instanceof StepcacheError ? new StepcacheError(e.code, `Step ${node.name}: ${e.message}`, { step: node.name, cause: e }) : stepFailure('STORE_UNAVAILABLE', `Step ${node.name} could not take its key's lock: ${toError(e).message}`, node.name, e)),
    );
};

/**
 * The argument of a step about to execute. A remote executor's worker loads the inputs itself, so
 * here it is enough that their artifacts are there (a file read and a hash per input saved on
 * every dispatched step); one that is not is loaded, which repairs it.
 */
const argumentFor = async (ctx: RunContext, node: GraphNode): Promise<E.Either<StepcacheError, Readonly<Record<string, unknown>>>> => {
  if (!isRemote(ctx.executor)) return loadArgument(ctx, node);
  const refs = Object.values(node.inputs).map((ref) => ctx.states[ref.node]?.descriptors?.[ref.output]);
  const there = refs.every((d) => d !== undefined) && (await artifactsPresent(ctx.artifacts, refs as NonNullable<(typeof refs)[number]>[])).every(Boolean);
  return there ? E.right(node.parameters) : loadArgument(ctx, node);
};

/** Loads the inputs, then, under the key's lock when the miss is shared, executes (unless another process just did). */
const executeMiss = async (ctx: RunContext, node: GraphNode, { key, entry, decision, lookedUpAt }: Assessment, reassess: boolean): Promise<Outcome> => {
  const argument = await argumentFor(ctx, node);
  if (E.isLeft(argument)) return { _tag: 'Failed', error: argument.left };
  if (reassess && currentDigests(ctx, node).some((d, i) => d !== key.inputDigests[i])) return { _tag: 'InputsChanged' };
  const locked = isShared(decision) ? await acquireLock(ctx, node, key) : E.right(undefined);
  if (E.isLeft(locked)) return { _tag: 'Failed', error: locked.left };
  const release = locked.right;
  try {
    if (release !== undefined && !(entry === undefined && stillAbsent(ctx, flightKeyOf(ctx, key), lookedUpAt))) {
      const made = await freshEntry(ctx, node, key.key);
      if (made !== undefined) return { _tag: 'Cached', key, entry: made };
    }
    if (decision._tag === 'Execute') {
      const reason = await whyExecuting(ctx, node, decision, key, entry);
      ctx.emit({ type: 'step-executing', step: node.name, key: key.key, reason, message: describeReason(reason) });
    }
    // Under the key's lock, found absent (or unusable) there: nobody else commits the key meanwhile.
    const executed = await executeNode(ctx, node, key, argument.right, entry !== undefined, release !== undefined);
    if (E.isLeft(executed)) return { _tag: 'Failed', error: executed.left };
    if (executed.right.cachedFrom !== undefined) {
      // A worker found the key cached (lookups left to the workers).
      const served = (await ctx.metadata.getEntries([key.key]))[0];
      if (served !== undefined) return { _tag: 'Cached', key, entry: served };
    }
    return { _tag: 'Executed', key, outputs: executed.right.descriptors, worker: executed.right.worker };
  } finally {
    // Released once the entry written behind the step is durable: whoever takes the lock next finds it.
    if (release !== undefined) {
      const released = ctx.commits
        .landed(node.name)
        .then(() => {
          recordLanding(flightKeyOf(ctx, key)); // before the next holder can look
          return release();
        })
        .catch((e: unknown) => {
          throw stepFailure('STORE_UNAVAILABLE', `Step ${node.name} could not release its key's lock: ${toError(e).message}`, node.name, e);
        });
      ctx.commits.track(node.name, released);
    }
  }
};

/** Warns, naming the step and each file, that the entry of its key is there but not its artifacts (missing, or not of their size). */
const warnUnusable = async (ctx: RunContext, node: GraphNode, entry: EntryHead): Promise<void> => {
  const outputs = node.outputNames.filter((o) => Object.hasOwn(entry.outputs, o));
  const present = await artifactsPresent(ctx.artifacts, outputs.map((o) => entry.outputs[o] as CacheEntry['outputs'][string]));
  const unusable = outputs.filter((_, i) => present[i] !== true).map((o) => `${locateArtifact(ctx.artifacts, entry.outputs[o] as CacheEntry['outputs'][string])} (output ${o})`);
  const absent = node.outputNames.filter((o) => !Object.hasOwn(entry.outputs, o)).map((o) => `output ${o} (not in the entry)`);
  const what = [...unusable, ...absent];
  if (what.length === 0) return;
  ctx.emit({ type: 'warning', kind: 'damaged-artifact', step: node.name, message: `The cached artifacts of step ${node.name} are missing or damaged: ${what.join(', ')}; re-running ${node.name} to repair them.` });
};

/** How resolving a node ended. */
type Settled = Exclude<Outcome, { _tag: 'InputsChanged' }>;

/** Whether a value is a Promise (what is not was settled at once). */
const isPromise = <A>(value: A | Promise<A>): value is Promise<A> => value instanceof Promise;

/** Assesses a node and acts on it (at once for a step served from the cache as assessed); at most `reassessments` more times when its inputs change under it. */
const settle = (ctx: RunContext, node: GraphNode, reassessments: number): Settled | Promise<Settled> => {
  const assessed = assess(ctx, node);
  return isPromise(assessed) ? assessed.then((a) => actOn(ctx, node, a, reassessments)) : actOn(ctx, node, assessed, reassessments);
};

const actOn = (ctx: RunContext, node: GraphNode, assessed: Assessed, reassessments: number): Settled | Promise<Settled> => {
  if (E.isLeft(assessed)) return { _tag: 'Failed', error: assessed.left };
  const { key, entry, decision } = assessed.right;
  if (decision._tag === 'UseCache' && entry !== undefined && !ctx.lookupsOnWorkers) return { _tag: 'Cached', key, entry };
  return actOnMiss(ctx, node, assessed.right, reassessments);
};

const actOnMiss = async (ctx: RunContext, node: GraphNode, assessment: Assessment, reassessments: number): Promise<Settled> => {
  const { key, entry, decision } = assessment;
  if (entry !== undefined && decision._tag === 'Execute' && decision.reason === 'no-entry') await warnUnusable(ctx, node, entry);
  const flightKey = isShared(decision) ? flightKeyOf(ctx, key) : undefined;
  const running = flightKey === undefined ? undefined : inFlight.get(flightKey);
  if (running !== undefined) {
    // Another run in this process executes this key: wait for it, then find its entry.
    await running;
    return settle(ctx, node, reassessments);
  }
  const outcome = await inFlightAs(ctx, node, flightKey, () => executeMiss(ctx, node, assessment, reassessments > 0));
  return outcome._tag === 'InputsChanged' ? settle(ctx, node, reassessments - 1) : outcome;
};

// resolving

/**
 * What a store or file-system call threw while a node was resolved, as a typed error naming the
 * step: the run settles with it instead of leaving a rejection nobody handles.
 */
const unexpected = (node: GraphNode, e: unknown): StepcacheError =>
  e instanceof StepcacheError
    ? e.step === undefined
      ? new StepcacheError(e.code, `Step ${node.name}: ${e.message}`, { step: node.name, ...(e.field === undefined ? {} : { field: e.field }), cause: e })
      : e
    : stepFailure('STORE_UNAVAILABLE', `Step ${node.name} could not be resolved: the store failed: ${toError(e).message}`, node.name, e);

/** Raises the event that ends a node's resolution. */
const ended = (ctx: RunContext, node: GraphNode, outcome: Settled, began: number): void => {
  const durationMs = performance.now() - began;
  switch (outcome._tag) {
    case 'Cached':
      return ctx.emit({ type: 'step-cached', step: node.name, key: outcome.key.key, cachedFrom: outcome.entry.runId, outputs: outcome.entry.outputs, durationMs }, node.index);
    case 'Executed':
      return ctx.emit({ type: 'step-executed', step: node.name, key: outcome.key.key, outputs: outcome.outputs, durationMs, ...(outcome.worker === undefined ? {} : { worker: outcome.worker }) }, node.index);
    case 'Failed':
      return ctx.emit({ type: 'step-failed', step: node.name, error: outcome.error, durationMs }, node.index);
  }
};

/**
 * @internal Resolves one node of a run: raises its events from start to end. A step served from
 * the cache without waiting for anything is resolved at once (no Promise is returned).
 */
export const resolveNode = (ctx: RunContext, node: GraphNode): Promise<void> | undefined => {
  const began = performance.now();
  ctx.emit({ type: 'step-started', step: node.name }, node.index);
  let outcome: Settled | Promise<Settled>;
  try {
    outcome = settle(ctx, node, MAX_REASSESSMENTS);
  } catch (e) {
    outcome = { _tag: 'Failed', error: unexpected(node, e) };
  }
  if (!isPromise(outcome)) {
    ended(ctx, node, outcome, began);
    return undefined;
  }
  return outcome.catch((e: unknown): Settled => ({ _tag: 'Failed', error: unexpected(node, e) })).then((o) => ended(ctx, node, o, began));
};
