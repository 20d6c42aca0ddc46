/**
 * Loading outputs: an output's value is loaded (and verified) once per run and shared by every
 * consumer; an artifact that is missing or damaged is repaired by executing its step again.
 *
 * @packageDocumentation
 */
import * as E from 'fp-ts/Either';
import type { StepcacheError } from '../errors';
import type { GraphNode } from '../pipeline/pipeline';
import { deserializeOutput } from '../store/serialize';
import { keyOf, stateOf, type RunContext } from './context';
import { executeNode } from './execute';
import { formatOf, stepFailure } from './in-process-executor';

type Loaded = E.Either<StepcacheError, unknown>;

/** An output's value, or what is wrong with its artifact (`undefined`: the step has no such output). */
const readOutput = async (ctx: RunContext, node: GraphNode, output: string): Promise<E.Either<string | undefined, unknown>> => {
  const descriptor = stateOf(ctx, node).descriptors?.[output];
  if (descriptor === undefined) return E.left(undefined);
  const bytes = await ctx.artifacts.get({ id: descriptor.id, size: descriptor.size });
  if (E.isLeft(bytes)) return E.left(`Artifact ${bytes.left.location} (output ${output} of step ${node.name}) ${bytes.left.message}`);
  const value = deserializeOutput(bytes.right, descriptor, formatOf(node, output));
  return E.isRight(value) ? value : E.left(`Artifact ${ctx.artifacts.locate(descriptor.id)} (output ${output} of step ${node.name}) cannot be decoded: ${value.left.message}`);
};

/**
 * @internal An output's value as it is stored, without repairing it: what a dry run may read.
 */
export const peekOutput = async (ctx: RunContext, index: number, output: string): Promise<Loaded> => {
  const node = ctx.graph.nodes[index] as GraphNode;
  const read = await readOutput(ctx, node, output);
  return E.isRight(read) ? read : E.left(stepFailure('ARTIFACT_UNAVAILABLE', read.left ?? `Step ${node.name} has no output ${output}.`, node.name));
};

/**
 * @internal An output's value, loaded once per run and shared; repaired (its step executed again)
 * when its artifact cannot be loaded.
 */
export const loadOutput = (ctx: RunContext, index: number, output: string): Promise<Loaded> => {
  const node = ctx.graph.nodes[index] as GraphNode;
  const state = stateOf(ctx, node);
  const known = state.values.get(output);
  if (known) return known;
  const loading = (async (): Promise<Loaded> => {
    const read = await readOutput(ctx, node, output);
    if (E.isRight(read)) return read;
    if (read.left === undefined) return E.left(stepFailure('ARTIFACT_UNAVAILABLE', `Step ${node.name} has no output ${output}.`, node.name));
    ctx.emit({ type: 'warning', kind: 'damaged-artifact', step: node.name, message: `${read.left}; re-running ${node.name} to repair it.` });
    state.values.delete(output);
    const repaired = await repair(ctx, node, read.left);
    if (E.isLeft(repaired)) return repaired;
    // An executor that returns no values (a remote one) leaves the repaired artifact to be read once more.
    const produced = state.values.get(output);
    if (produced !== undefined) return produced;
    const reread = await readOutput(ctx, node, output);
    return E.isRight(reread) ? reread : E.left(stepFailure('ARTIFACT_UNAVAILABLE', `Step ${node.name} did not produce output ${output}${reread.left === undefined ? '' : `: ${reread.left}`}.`, node.name));
  })();
  state.values.set(output, loading);
  return loading;
};

/** @internal A step's argument: its parameters and the values of its inputs. */
export const loadArgument = async (ctx: RunContext, node: GraphNode): Promise<E.Either<StepcacheError, Record<string, unknown>>> => {
  const entries = Object.entries(node.inputs);
  const values = await Promise.all(entries.map(([, ref]) => loadOutput(ctx, ref.node, ref.output)));
  const argument: Record<string, unknown> = { ...node.parameters };
  for (const [i, [field]] of entries.entries()) {
    const value = values[i] as Loaded;
    if (E.isLeft(value)) return value;
    argument[field] = value.right;
  }
  return E.right(argument);
};

/** Executes a step again because `problem` was found with one of its artifacts; once per run. */
const repair = (ctx: RunContext, node: GraphNode, problem: string): Promise<E.Either<StepcacheError, void>> => {
  const state = stateOf(ctx, node);
  state.repair ??= (async () => {
    const argument = await loadArgument(ctx, node);
    if (E.isLeft(argument)) return argument;
    const key = await keyOf(ctx, node, (ref) => loadOutput(ctx, ref.node, ref.output));
    if (E.isLeft(key)) return key;
    const executed = await executeNode(ctx, node, key.right, argument.right, true);
    if (E.isLeft(executed)) return executed;
    ctx.emit({ type: 'step-repaired', step: node.name, problem, key: key.right.key, outputs: executed.right.descriptors, durationMs: executed.right.durationMs });
    return E.right(undefined);
  })();
  return state.repair;
};
