/**
 * The run record: what the store keeps of a run, read from the steps' states (which the run's
 * events made), and the run id it is kept under.
 *
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import { graphEdges, type PipelineGraph } from '../pipeline/pipeline';
import { preview } from '../format/preview';
import type { RunOwner, RunRecord, StepRunRecord } from '../store/records';
import { findNonJson } from '../store/serialize';
import { defineOwn } from '../utils/own-property';
import type { RunContext } from './context';
import type { NodeState } from './state';

/** Parameters as they can be recorded: JSON values as they are, anything else as a preview. */
const recordableParameters = (params: unknown): Record<string, unknown> => {
  if (typeof params !== 'object' || params === null) return {};
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [k, findNonJson(v, '', new Set()) === undefined ? v : preview(v)]));
};

/**
 * A step's part in the run record. A cached step keeps what says where it came from (key, run,
 * duration): its outputs and why it was cached are in the entry it was cached from, so a run
 * where nothing changed is a few hundred bytes a step at most.
 */
const stepRecord = (name: string, state: NodeState): StepRunRecord =>
  state.status === 'cached'
    ? cachedStepRecord(name, state)
    : {
  name,
  status: state.status === 'pending' ? 'skipped' : state.status,
  durationMs: state.durationMs,
  ...(state.key === undefined ? {} : { key: state.key }),
  ...(state.startedAt === undefined ? {} : { startedAt: new Date(state.startedAt).toISOString() }),
  ...(state.cachedFrom === undefined ? {} : { cachedFrom: state.cachedFrom }),
  ...(state.descriptors === undefined ? {} : { outputs: state.descriptors }),
  ...(state.reason === undefined ? {} : { reason: state.reason }),
  ...(state.why === undefined ? {} : { why: state.why }),
  ...(state.error === undefined ? {} : { error: state.error.message }),
  ...(state.worker === undefined ? {} : { worker: state.worker }),
      };

/** A cached step's part, built field by field: most steps of a re-run are cached. */
/** Every step's record, by name, in pipeline order (assigned one by one: several times faster than `Object.fromEntries` for a long pipeline). */
const stepRecords = (ctx: RunContext): Record<string, StepRunRecord> => {
  const steps: Record<string, StepRunRecord> = {};
  for (const n of ctx.graph.nodes) defineOwn(steps, n.name, stepRecord(n.name, ctx.states[n.index] as NodeState));
  return steps;
};

const cachedStepRecord = (name: string, state: NodeState): StepRunRecord => {
  const record: { -readonly [K in keyof StepRunRecord]: StepRunRecord[K] } = { name, status: 'cached', durationMs: state.durationMs };
  if (state.key !== undefined) record.key = state.key;
  if (state.cachedFrom !== undefined) record.cachedFrom = state.cachedFrom;
  return record;
};

/** @internal When a run started, on the wall clock and the monotonic one, and how often it says it is still running. */
export interface RunTiming {
  readonly startedAt: Date;
  readonly started: number;
  readonly heartbeatEveryMs: number;
}

/** The edges of each graph, listed once: a run records them at its start and at its end. */
const edgesOfGraph = new WeakMap<PipelineGraph, ReturnType<typeof graphEdges>>();
const edgesOf = (graph: PipelineGraph): ReturnType<typeof graphEdges> => {
  let edges = edgesOfGraph.get(graph);
  if (edges === undefined) edgesOfGraph.set(graph, (edges = graphEdges(graph)));
  return edges;
};

/** This process, as the owner of the runs it runs. */
const THIS_PROCESS: RunOwner = Object.freeze({ pid: process.pid, host: os.hostname() });

/**
 * @internal The record of a run: small while it runs (no steps), complete once it has ended.
 */
export const runRecord = (ctx: RunContext, params: unknown, timing: RunTiming, status: RunRecord['status']): RunRecord => {
  const { outputs } = ctx.graph;
  return {
    id: ctx.runId,
    pipeline: ctx.pipeline.name,
    parameters: recordableParameters(params),
    status,
    startedAt: timing.startedAt.toISOString(),
    steps: status === 'running' ? {} : stepRecords(ctx),
    outputs: Object.fromEntries(Object.entries(outputs).map(([k, ref]) => [k, { step: ref.step, output: ref.output }])),
    edges: edgesOf(ctx.graph),
    ...(status === 'running' ? {} : { endedAt: new Date().toISOString(), durationMs: performance.now() - timing.started }),
    owner: THIS_PROCESS,
    heartbeatAt: new Date().toISOString(),
    heartbeatEveryMs: timing.heartbeatEveryMs,
  };
};

/** Crockford's base 32, lower case: digits and letters but i, l, o and u; 32 of them, so each random byte's low five bits pick one evenly. */
const ID_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/**
 * @internal A new run id: 12 random characters (60 bits), so that the first four or five
 * already tell runs apart, as a prefix on the command line. Listings sort runs by start time,
 * never by id.
 */
export const newRunId = (): string => Array.from(randomBytes(12), (b) => ID_ALPHABET[b & 31] as string).join('');
