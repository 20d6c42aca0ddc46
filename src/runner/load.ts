/**
 * Loading outputs: every consumer gets a value of its own, equal to the stored one, loaded (and
 * verified) from the artifact unless an execution just handed it over; an artifact that is
 * missing or damaged is repaired by executing its step again.
 *
 * @packageDocumentation
 */
import * as E from 'fp-ts/Either';
import type { StepcacheError } from '../errors';
import type { GraphNode } from '../pipeline/pipeline';
import { loadArtifact, locateArtifact } from '../store/inline';
import { deserializeOutput } from '../store/serialize';
import { keyOf, stateOf, type RunContext } from './context';
import { executeNode } from './execute';
import { formatOf, stepFailure } from './in-process-executor';

type Loaded = E.Either<StepcacheError, unknown>;

/** An output's value, or what is wrong with its artifact (`undefined`: the step has no such output). */
const readOutput = async (ctx: RunContext, node: GraphNode, output: string): Promise<E.Either<string | undefined, unknown>> => {
  const descriptor = stateOf(ctx, node).descriptors?.[output];
  if (descriptor === undefined) return E.left(undefined);
  const bytes = await loadArtifact(ctx.artifacts, descriptor);
  if (E.isLeft(bytes)) return E.left(`Artifact ${bytes.left.location} (output ${output} of step ${node.name}) ${bytes.left.message}`);
  const value = deserializeOutput(bytes.right, descriptor, formatOf(node, output));
  return E.isRight(value) ? value : E.left(`Artifact ${locateArtifact(ctx.artifacts, descriptor)} (output ${output} of step ${node.name}) cannot be decoded: ${value.left.message}`);
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
 * @internal An output's value, of the consumer's own: the value an execution handed over goes to
 * the first consumer; every other one reads the artifact again (the stored bytes are the pristine
 * copy), so what one consumer does to its value no other one sees. An artifact that cannot be
 * loaded is repaired (its step executed again, once per run).
 */
export const loadOutput = async (ctx: RunContext, index: number, output: string): Promise<Loaded> => {
  const node = ctx.graph.nodes[index] as GraphNode;
  const state = stateOf(ctx, node);
  const claim = (): Promise<Loaded> | undefined => {
    const unclaimed = state.values.get(output);
    state.values.delete(output);
    return unclaimed;
  };
  const handedOver = claim();
  if (handedOver !== undefined) return handedOver;
  const read = await readOutput(ctx, node, output);
  if (E.isRight(read)) return read;
  if (read.left === undefined) return E.left(stepFailure('ARTIFACT_UNAVAILABLE', `Step ${node.name} has no output ${output}.`, node.name));
  const repaired = await repair(ctx, node, read.left);
  if (E.isLeft(repaired)) return repaired;
  // An executor that returns no values (a remote one), or a value already claimed, leaves the repaired artifact to be read once more.
  const produced = claim();
  if (produced !== undefined) return produced;
  const reread = await readOutput(ctx, node, output);
  return E.isRight(reread) ? reread : E.left(stepFailure('ARTIFACT_UNAVAILABLE', `Step ${node.name} did not produce output ${output}${reread.left === undefined ? '' : `: ${reread.left}`}.`, node.name));
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

/** Executes a step again because `problem` was found with one of its artifacts, saying so; once per run. */
const repair = (ctx: RunContext, node: GraphNode, problem: string): Promise<E.Either<StepcacheError, void>> => {
  const state = stateOf(ctx, node);
  state.repair ??= (async () => {
    ctx.emit({ type: 'warning', kind: 'damaged-artifact', step: node.name, message: `${problem}; re-running ${node.name} to repair it.` });
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
