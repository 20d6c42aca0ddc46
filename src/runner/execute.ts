/**
 * Executing one node: through the run's executor, then committing what it produced: the
 * artifacts are announced, the values handed over for the first consumer downstream, and the
 * cache entry written under the node's key.
 *
 * @packageDocumentation
 */
import * as E from 'fp-ts/Either';
import type { StepcacheError } from '../errors';
import { formatDuration } from '../format/duration';
import type { KeyComponents } from '../cache/components';
import type { GraphNode } from '../pipeline/pipeline';
import type { CacheEntry } from '../store/records';
import { stateOf, type RunContext } from './context';
import type { ExecutionRequest, ExecutionResult, InputArtifact } from './executor';
import { stepFailure } from './in-process-executor';
import type { StepKey } from './step-key';

const inputArtifacts = (ctx: RunContext, node: GraphNode): Record<string, InputArtifact> => {
  const inputs: Record<string, InputArtifact> = {};
  for (const [field, ref] of Object.entries(node.inputs)) {
    const descriptor = ctx.states[ref.node]?.descriptors?.[ref.output];
    if (descriptor !== undefined) inputs[field] = { step: ref.step, output: ref.output, descriptor };
  }
  return inputs;
};

/** Whether the executor may serve an entry it finds: the cache is on, no refresh, and no entry was rejected (unless lookups are the workers'). */
const reuseFor = (ctx: RunContext, node: GraphNode, replace: boolean): ExecutionRequest['reuse'] => {
  const settings = ctx.settings[node.index]?.settings;
  if (settings === undefined || !settings.enableCache || settings.refresh || (replace && !ctx.lookupsOnWorkers)) return undefined;
  return settings.expiresAfter === undefined ? {} : { maxAgeMs: settings.expiresAfter };
};

const requestFor = (ctx: RunContext, node: GraphNode, key: StepKey, components: KeyComponents, argument: Readonly<Record<string, unknown>>, replace: boolean): ExecutionRequest => {
  const reuse = reuseFor(ctx, node, replace);
  const retries = ctx.settings[node.index]?.settings.retries ?? 0;
  return {
    identity: { pipeline: ctx.graph.pipeline, step: node.name, key: key.key, code: key.code },
    node,
    parameters: node.parameters,
    inputs: inputArtifacts(ctx, node),
    argument: () => Promise.resolve(E.right(argument)),
    ...(reuse === undefined ? {} : { reuse }),
    entry: { runId: ctx.runId, components, ttlMs: ctx.settings[node.index]?.settings.expiresAfter, replace },
    ...(retries === 0 ? {} : { retries }),
    onProgress: ({ worker, host, attempt }) => ctx.emit({ type: 'step-remote-started', step: node.name, key: key.key, worker, host, attempt }),
  };
};

const commit = (ctx: RunContext, node: GraphNode, key: StepKey, components: KeyComponents, result: ExecutionResult, replace: boolean): E.Either<StepcacheError, ExecutionResult> => {
  // Served from the cache where the executor runs: the entry is there already.
  if (result.cachedFrom !== undefined) return E.right(result);
  const state = stateOf(ctx, node);
  for (const [output, { id, size }] of Object.entries(result.descriptors)) {
    ctx.emit({ type: 'artifact-written', step: node.name, output, id, size });
    if (result.values !== undefined && Object.hasOwn(result.values, output)) state.values.set(output, Promise.resolve(E.right(result.values[output])));
    else state.values.delete(output);
  }
  const entry: CacheEntry = {
    key: key.key,
    pipeline: ctx.graph.pipeline,
    step: node.name,
    runId: ctx.runId,
    createdAt: Date.now(),
    durationMs: result.durationMs,
    outputs: result.descriptors,
    components,
  };
  // Committed where it executed (a worker, before it answered): writing it again would be a second round trip to the store for nothing.
  if (result.committed === true) return E.right(result);
  const ttlMs = ctx.settings[node.index]?.settings.expiresAfter;
  // Written behind the step: the run waits for it before it settles (see commits.ts).
  ctx.commits.track(node.name, new Promise<void>((written) => written(ctx.metadata.putEntry(entry, { ttlMs, replace }))));
  return E.right(result);
};

/**
 * @internal Executes a node with its key and argument (parameters and loaded input values), and
 * commits the result. The caller raises the event that says how the step ended.
 *
 * `replace`: the entry stored under the key was seen and rejected (refresh, expired, artifacts
 * missing or damaged), so the new entry overwrites it; otherwise the first entry of a key stays
 * (insert-if-absent), so concurrent writers never overwrite each other.
 *
 * `lockedAbsent`: the caller holds the key's lock and found no usable entry under it, so no other
 * execution of the key can commit before this one: the new entry overwrites whatever unusable row
 * is there, without the store reading it first (one round trip less per executed step).
 */
export const executeNode = async (
  ctx: RunContext,
  node: GraphNode,
  key: StepKey,
  argument: Readonly<Record<string, unknown>>,
  replace: boolean,
  lockedAbsent = false,
): Promise<E.Either<StepcacheError, ExecutionResult>> => {
  // The key's readable components, made once: the request carries them (an executor that commits
  // where it runs writes them), and so does the entry committed here.
  const components = key.components();
  const executing = Promise.resolve().then(() => ctx.executor.execute(requestFor(ctx, node, key, components, argument, replace), { artifacts: ctx.artifacts }));
  const result = await withinTimeout(node, ctx.settings[node.index]?.settings.timeout, executing);
  return E.isLeft(result) ? result : commit(ctx, node, key, components, result.right, replace || lockedAbsent);
};

/**
 * An execution, or a `STEP_TIMEOUT` failure once it has run `timeoutMs`: the execution is then
 * abandoned (nothing of it is committed); a synchronous step cannot be interrupted.
 */
const withinTimeout = <A>(node: GraphNode, timeoutMs: number | undefined, executing: Promise<E.Either<StepcacheError, A>>): Promise<E.Either<StepcacheError, A>> => {
  if (timeoutMs === undefined) return executing;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<E.Either<StepcacheError, A>>((resolve) => {
    timer = setTimeout(
      () => resolve(E.left(stepFailure('STEP_TIMEOUT', `Step ${node.name} did not finish within its timeout of ${formatDuration(timeoutMs, 'clock')}; it was abandoned and nothing of it is cached. If it needs longer, raise its timeout setting (.withOptions({ timeout: '2h' })).`, node.name, undefined, 'timeout'))),
      timeoutMs,
    );
  });
  return Promise.race([executing, expired]).finally(() => clearTimeout(timer));
};
