/**
 * What the renderers draw: a run record together with the edges of its DAG, and the few facts
 * every picture shares (the order of the steps, the status of each, which step feeds which).
 *
 * @packageDocumentation
 */
import type { GraphNode, PipelineGraph } from '../pipeline/pipeline';
import type { RunRecord, StepRunRecord, StepStatus } from '../store/records';

// model

/**
 * One edge of a run's DAG: output `output` of step `from` is input `input` of step `to`.
 *
 * @example
 * const e: RunEdge = { from: 'training_data_loader', output: 'X_train', to: 'svc_trainer', input: 'X_train' };
 */
export interface RunEdge {
  from: string;
  output: string;
  to: string;
  input: string;
}

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

/**
 * What a picture says of a step: its status in the run, or `pending` for a step the record
 * names in its edges but has no result for yet (a run still running).
 *
 * @example
 * const s: NodeStatus = 'pending';
 */
export type NodeStatus = StepStatus | 'pending';

/**
 * How each status looks: its colours (fill, border, text), its symbol and whether its border
 * is dashed. A `Record` over every status, so a new status without a look does not compile.
 *
 * @example
 * STATUS_STYLES.cached.fill; // '#dbeafe'
 */
export const STATUS_STYLES: Readonly<Record<NodeStatus, { readonly fill: string; readonly stroke: string; readonly text: string; readonly symbol: string; readonly dashed: boolean }>> = Object.freeze({
  executed: Object.freeze({ fill: '#dcfce7', stroke: '#15803d', text: '#14532d', symbol: '✓', dashed: false }),
  cached: Object.freeze({ fill: '#dbeafe', stroke: '#1d4ed8', text: '#1e3a8a', symbol: '↺', dashed: false }),
  failed: Object.freeze({ fill: '#fee2e2', stroke: '#b91c1c', text: '#7f1d1d', symbol: '✗', dashed: false }),
  skipped: Object.freeze({ fill: '#f3f4f6', stroke: '#6b7280', text: '#374151', symbol: '–', dashed: true }),
  pending: Object.freeze({ fill: '#ffffff', stroke: '#9ca3af', text: '#4b5563', symbol: '…', dashed: true }),
});

/**
 * The statuses a legend shows, in the order it shows them.
 *
 * @example
 * STEP_STATUSES; // ['executed', 'cached', 'failed', 'skipped']
 */
export const STEP_STATUSES: readonly StepStatus[] = Object.freeze(['executed', 'cached', 'failed', 'skipped']);

/** One step as the renderers see it: its name, its status and its record (absent when pending). */
export interface StepView {
  readonly name: string;
  readonly status: NodeStatus;
  readonly record: StepRunRecord | undefined;
}

// constructors

/**
 * The edges of a compiled pipeline, in pipeline order (by consuming step, then by input):
 * what the runner records in a run, and what {@link withEdges} adds to a record.
 *
 * @example
 * const graph = compilePipeline(trainingPipeline, {});
 * if (graph._tag === 'Right') edgesOf(graph.right);
 * // [{ from: 'training_data_loader', output: 'X_train', to: 'svc_trainer', input: 'X_train' }, ...]
 */
export const edgesOf = (graph: PipelineGraph): RunEdge[] =>
  graph.nodes.flatMap((n: GraphNode) => Object.entries(n.inputs).map(([input, ref]) => ({ from: ref.step, output: ref.output, to: n.name, input })));

/**
 * A run record with the edges of the pipeline's compiled graph, for records made without them.
 *
 * @example
 * const graph = compilePipeline(trainingPipeline, { gamma: 0.01 });
 * if (graph._tag === 'Right') runToTextTree(withEdges(run, graph.right));
 */
export const withEdges = (run: Omit<RunRecord, 'edges'>, graph: PipelineGraph): RenderableRun & { readonly edges: readonly RunEdge[] } => ({ ...run, edges: edgesOf(graph) });

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
    const record = Object.prototype.hasOwnProperty.call(run.steps, name) ? run.steps[name] : undefined;
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
