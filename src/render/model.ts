/**
 * What the renderers draw: a run record together with the edges of its DAG, and the few facts
 * every picture shares (the order of the steps, the status of each, which step feeds which).
 *
 * @packageDocumentation
 */
import { graphEdges, type GraphEdge, type PipelineGraph } from '../pipeline/pipeline';
import type { NodeStatus } from '../format/status';
import type { RunRecord, StepRunRecord } from '../store/records';
import { ownValue } from '../utils/own-property';

// model

/**
 * One edge of a run's DAG, as the run records it: a {@link GraphEdge} of its pipeline.
 *
 * @example
 * const e: RunEdge = { from: 'training_data_loader', output: 'X_train', to: 'svc_trainer', input: 'X_train' };
 */
export type RunEdge = GraphEdge;

/**
 * A run record with the edges of its DAG: what every renderer takes. The runner records the
 * edges from the compiled pipeline, so a record from the store can be drawn alone; a record
 * made before edges were kept has none, and is drawn as its steps without edges, with a note
 * saying so ({@link withEdges} adds them from the pipeline's compiled graph).
 *
 * @example
 * const run: RenderableRun = (await runner.getRun(id))!;
 */
export type RenderableRun = Omit<RunRecord, 'edges'> & { readonly edges?: readonly RunEdge[] | undefined };

/** One step as the renderers see it: its name, its status and its record (absent when pending). */
export interface StepView {
  readonly name: string;
  readonly status: NodeStatus;
  readonly record: StepRunRecord | undefined;
}

// constructors

/**
 * A run record with the edges of the pipeline's compiled graph, for records made without them.
 *
 * @example
 * const graph = compilePipeline(trainingPipeline, { gamma: 0.01 });
 * if (graph._tag === 'Right') runToTextTree(withEdges(run, graph.right));
 */
export const withEdges = (run: Omit<RunRecord, 'edges'>, graph: PipelineGraph): RenderableRun & { readonly edges: readonly RunEdge[] } => ({ ...run, edges: graphEdges(graph) });

// utils

/**
 * The edges of a run; none for a record made before edges were kept.
 * @internal
 */
export const edgesIn = (run: RenderableRun): readonly RunEdge[] => run.edges ?? [];

/**
 * Said where a picture would show edges, for a record made before edges were kept.
 * @internal
 */
export const NO_EDGES_NOTE = 'edges not recorded (a run recorded before stepcache kept them)';

/**
 * The steps of a run in a topological order: the recorded order (the pipeline's) wherever the
 * edges allow it, then steps named only by edges. A cycle (only in a damaged record) does not
 * hang: the rest follows in recorded order.
 * @internal
 */
export const stepsInOrder = (run: RenderableRun): StepView[] => {
  const names: string[] = Object.keys(run.steps);
  const known = new Set(names);
  for (const e of edgesIn(run)) {
    for (const n of [e.from, e.to]) {
      if (!known.has(n)) {
        known.add(n);
        names.push(n);
      }
    }
  }
  const waiting = new Map(names.map((n) => [n, new Set<string>()]));
  for (const e of edgesIn(run)) if (e.from !== e.to) waiting.get(e.to)?.add(e.from);
  const done = new Set<string>();
  const order: string[] = [];
  while (order.length < names.length) {
    const next = names.find((n) => !done.has(n) && [...(waiting.get(n) ?? [])].every((p) => done.has(p))) ?? names.find((n) => !done.has(n));
    if (next === undefined) break;
    done.add(next);
    order.push(next);
  }
  return order.map((name) => {
    const record = ownValue(run.steps, name);
    return { name, status: record?.status ?? 'pending', record };
  });
};

/**
 * The distinct steps feeding each step, in the order of the edges.
 * @internal
 */
export const parentsOf = (run: RenderableRun): ReadonlyMap<string, readonly string[]> => {
  const parents = new Map<string, string[]>();
  for (const e of edgesIn(run)) {
    const list = parents.get(e.to) ?? [];
    if (!list.includes(e.from) && e.from !== e.to) list.push(e.from);
    parents.set(e.to, list);
  }
  return parents;
};
