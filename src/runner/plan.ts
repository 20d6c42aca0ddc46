/**
 * The dry run: which steps would be served from cache and which would execute, and why, as far as
 * can be known before any step runs. Executes nothing; writes nothing.
 *
 * @packageDocumentation
 */
import * as E from 'fp-ts/Either';
import { describeReason, type ExecutionReason } from '../cache/reasons';
import type { GraphNode } from '../pipeline/pipeline';
import { decideCache, type SettingsResolution } from '../settings/settings';
import { stateOf, type RunContext } from './context';
import type { Plan, PlannedStep } from './model';
import { peekOutput } from './load';
import { assess, whyExecuting } from './resolve';
import type { InputLoader } from './step-key';

const planExecute = (name: string, reason: ExecutionReason): PlannedStep => ({ name, expected: 'execute', reason, message: describeReason(reason) });

/** A step below a step that is not cached: it executes if its settings say so whatever the key, else it depends on its upstream. */
const planBelow = (ctx: RunContext, node: GraphNode, upstream: readonly string[]): PlannedStep => {
  const decision = decideCache(ctx.settings[node.index] as SettingsResolution, { _tag: 'Miss' });
  if (decision._tag === 'Execute' && (decision.reason === 'cache-disabled' || decision.reason === 'refresh')) {
    return planExecute(node.name, decision.reason === 'cache-disabled' ? { _tag: 'CacheDisabled', decidedBy: decision.decidedBy } : { _tag: 'Refresh', decidedBy: decision.decidedBy });
  }
  const message = `cached only if ${upstream.join(' and ')} ${upstream.length > 1 ? 'reproduce their' : 'reproduces its'} outputs byte for byte`;
  return { name: node.name, expected: 'depends', upstream, message };
};

/** Whether every node of `indices` is expected cached. */
const allCached = (indices: readonly number[], cached: readonly boolean[]): boolean => {
  for (const u of indices) if (cached[u] !== true) return false;
  return true;
};

/** @internal The expectation for every step, in pipeline order; rejects with the first key that cannot be computed. */
export const planSteps = async (ctx: RunContext): Promise<Plan> => {
  const { graph } = ctx;
  const steps: Record<string, PlannedStep> = {};
  const cached: boolean[] = new Array<boolean>(graph.nodes.length).fill(false); // by node index
  const peek: InputLoader = (ref) => peekOutput(ctx, ref.node, ref.output);
  for (const node of graph.nodes) {
    if (!allCached(node.upstream, cached)) {
      const notCached = node.upstream.filter((u) => cached[u] !== true).map((u) => (graph.nodes[u] as GraphNode).name);
      steps[node.name] = planBelow(ctx, node, notCached);
      continue;
    }
    const assessing = assess(ctx, node, peek);
    const assessed = assessing instanceof Promise ? await assessing : assessing; // a cached step is assessed at once
    if (E.isLeft(assessed)) throw assessed.left;
    const { key, entry, decision } = assessed.right;
    if (decision._tag === 'UseCache' && entry !== undefined) {
      stateOf(ctx, node).descriptors = entry.outputs;
      steps[node.name] = { name: node.name, expected: 'cached', cachedFrom: entry.runId, message: `cached from run ${entry.runId}` };
      cached[node.index] = true;
    } else if (decision._tag === 'Execute') {
      steps[node.name] = planExecute(node.name, await whyExecuting(ctx, node, decision, key, entry));
    }
  }
  await ctx.fingerprints.flush();
  return Object.freeze({ pipeline: graph.pipeline, steps: Object.freeze(steps) });
};
