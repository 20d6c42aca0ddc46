/**
 * The run record: what the store keeps of a run, read from the steps' states (which the run's
 * events made), and the run id it is kept under.
 *
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import { graphEdges } from '../pipeline/pipeline';
import { preview } from '../format/preview';
import type { RunRecord, StepRunRecord } from '../store/records';
import { findNonJson } from '../store/serialize';
import type { RunContext } from './context';
import type { NodeState } from './state';

/** Parameters as they can be recorded: JSON values as they are, anything else as a preview. */
const recordableParameters = (params: unknown): Record<string, unknown> => {
  if (typeof params !== 'object' || params === null) return {};
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [k, findNonJson(v, '', new Set()) === undefined ? v : preview(v)]));
};

const stepRecord = (name: string, state: NodeState): StepRunRecord => ({
  name,
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

/** @internal When a run started, on the wall clock and the monotonic one. */
export interface RunTiming {
  readonly startedAt: Date;
  readonly started: number;
}

/**
 * @internal The record of a run: small while it runs (no steps), complete once it has ended.
 */
export const runRecord = (ctx: RunContext, params: unknown, timing: RunTiming, status: RunRecord['status']): RunRecord => {
  const { nodes, outputs } = ctx.graph;
  return {
    id: ctx.runId,
    pipeline: ctx.pipeline.name,
    parameters: recordableParameters(params),
    status,
    startedAt: timing.startedAt.toISOString(),
    steps: status === 'running' ? {} : Object.fromEntries(nodes.map((n) => [n.name, stepRecord(n.name, ctx.states[n.index] as NodeState)])),
    outputs: Object.fromEntries(Object.entries(outputs).map(([k, ref]) => [k, { step: ref.step, output: ref.output }])),
    edges: graphEdges(ctx.graph),
    ...(status === 'running' ? {} : { endedAt: new Date().toISOString(), durationMs: performance.now() - timing.started }),
  };
};

let runSequence = 0;

/**
 * @internal A new run id: ids sort by start time (then by order within a process), and are unique across processes.
 */
export const newRunId = (): string =>
  `${new Date().toISOString().replace(/[-:.]/g, '').replace('T', '-').slice(0, 18)}-${(runSequence++ % 46656).toString(36).padStart(3, '0')}${randomBytes(3).toString('hex')}`;
