/**
 * The state of one step in a run, and how each run event changes it. The run record is read from
 * this state, so the record and the events cannot disagree.
 *
 * @packageDocumentation
 */
import type * as E from 'fp-ts/Either';
import { describeReason, type ExecutionReason } from '../cache/reasons';
import type { StepcacheError } from '../errors';
import type { StepStatus } from '../store/records';
import type { ArtifactDescriptor } from '../store/serialize';
import type { RunEvent } from './events';

// model

/** @internal What a run knows of one step. */
export interface NodeState {
  status: StepStatus | 'pending';
  key?: string;
  descriptors?: Readonly<Record<string, ArtifactDescriptor>>;
  /** Output values an execution handed over, not yet claimed: the first consumer takes each (see `loadOutput`). */
  readonly values: Map<string, Promise<E.Either<StepcacheError, unknown>>>;
  /** When the step started (milliseconds since the epoch); the record gives it as ISO text. */
  startedAt?: number;
  durationMs: number;
  cachedFrom?: string;
  /** The worker that started (and, once executed, executed) the step, when it ran elsewhere. */
  worker?: string;
  why?: ExecutionReason;
  reason?: string;
  error?: StepcacheError;
  /** The repair in progress or done, shared by every consumer that found an artifact damaged. */
  repair?: Promise<E.Either<StepcacheError, void>>;
}

/**
 * A step's state, whose map of handed-over values is made when first asked for: a cached step
 * (most steps of a re-run) never has one, and a run of 10,000 steps keeps 10,000 states.
 */
class StepState implements NodeState {
  status: NodeState['status'] = 'pending';
  durationMs = 0;
  private made: NodeState['values'] | undefined;

  get values(): NodeState['values'] {
    return (this.made ??= new Map());
  }
}

/** @internal A step before anything happened to it. */
export const pendingState = (): NodeState => new StepState();

// transitions

/** @internal Applies a step's event to its state; events about no step, or only informative, change nothing. */
export const applyEvent = (state: NodeState, event: RunEvent): void => {
  switch (event.type) {
    case 'step-started':
      state.startedAt = event.at;
      return;
    case 'step-cached':
      state.status = 'cached';
      state.key = event.key;
      state.descriptors = event.outputs;
      state.cachedFrom = event.cachedFrom;
      state.durationMs = event.durationMs;
      return;
    case 'step-executing':
      state.why = event.reason;
      state.reason = event.message;
      return;
    case 'step-remote-started':
      state.worker = event.worker;
      return;
    case 'step-executed':
      if (event.worker !== undefined) state.worker = event.worker;
      state.status = 'executed';
      state.key = event.key;
      state.descriptors = event.outputs;
      state.durationMs = event.durationMs;
      delete state.cachedFrom;
      return;
    case 'step-repaired':
      // A repaired step executed in this run, whatever it was before: its record says so.
      Object.assign(state, { status: 'executed', key: event.key, descriptors: event.outputs, durationMs: event.durationMs, why: { _tag: 'Repaired', detail: event.problem } });
      state.reason = describeReason(state.why as ExecutionReason);
      delete state.cachedFrom;
      return;
    case 'step-failed':
      Object.assign(state, { status: 'failed', error: event.error, durationMs: event.durationMs });
      return;
    case 'step-skipped':
      state.status = 'skipped';
      state.reason = `upstream step ${event.upstream} did not complete`;
      return;
    case 'run-started':
    case 'artifact-written':
    case 'warning':
    case 'run-finished':
      return;
  }
};
