/**
 * Run events: what a run tells the world, as a closed union of typed, frozen values. The logger,
 * the progress display and any `onEvent` subscriber read the same events; the run record is built
 * from the state they describe.
 *
 * @packageDocumentation
 */
import type { ExecutionReason } from '../cache/reasons';
import type { StepcacheError } from '../errors';
import type { StepStatus } from '../store/records';
import type { ArtifactDescriptor } from '../store/serialize';

// model

/**
 * What every event carries: the run it belongs to and when it happened (milliseconds since the
 * epoch). Events of a dry run (`runner.plan`) carry the run id `plan`.
 */
export interface RunEventBase {
  readonly runId: string;
  readonly at: number;
}

/**
 * What a warning is about.
 *
 * @example
 * const onEvent = (e: RunEvent) => { if (e.type === 'warning' && e.kind === 'damaged-artifact') alert(e.message); };
 */
export type RunWarningKind =
  /** A cache entry whose signature does not verify with the runner's secret was ignored. */
  | 'unverified-entry'
  /** Only a step function's own text is fingerprinted: changes to its helpers go unnoticed. */
  | 'shallow-fingerprint'
  /** A step function uses a variable of an enclosing function, whose value cannot be fingerprinted. */
  | 'captured-variable'
  /**
   * The code fingerprint cannot fully see what the step runs: a module edited after it was loaded,
   * a computed import, a module-level value computed at run time that cannot be read.
   */
  | 'fingerprint-caveat'
  /** A step waits for the lock on its key, held by another run (in this or another process). */
  | 'lock-wait'
  /** An artifact is missing or damaged; its step runs again to repair it. */
  | 'damaged-artifact'
  /**
   * The store is read-only (not writable by this process, refusing writes, or the `readOnly`
   * option): executed steps are not stored and the run is not recorded. Once per run.
   */
  | 'read-only-store';

/**
 * The outputs a step has, by output name.
 *
 * @example
 * const onEvent = (e: RunEvent) => { if (e.type === 'step-cached') console.log(Object.keys(e.outputs)); };
 */
export type StepOutputs = Readonly<Record<string, ArtifactDescriptor>>;

/**
 * Everything a run reports, by `type`:
 *
 * - `run-started`: the run begins; `steps` lists every step of the pipeline, in order.
 * - `step-started`: a step is being resolved (from cache, or by executing it).
 * - `step-cached`: a step is served from the cache entry made by run `cachedFrom`.
 * - `step-executing`: a step executes, and why.
 * - `step-remote-started`: a worker (`worker`, on `host`) started the step: its `attempt`-th try, from 1.
 * - `artifact-written`: an output of an executed step is stored.
 * - `step-executed`: a step executed and its entry is committed; `worker` names the worker that executed it, when one did.
 * - `step-repaired`: a step executed again because one of its artifacts could not be loaded.
 * - `step-failed`: a step failed, with the error naming what to do.
 * - `step-skipped`: a step did not run because `upstream` did not complete.
 * - `warning`: something to look at that did not stop the run.
 * - `run-finished`: the run's status, how many steps ended in each status, and its duration.
 *
 * @example
 * const onEvent = (e: RunEvent) => {
 *   if (e.type === 'step-executed') console.log(`${e.step} took ${e.durationMs}ms`);
 * };
 */
export type RunEvent = RunEventBase &
  (
    | { readonly type: 'run-started'; readonly pipeline: string; readonly steps: readonly string[] }
    | { readonly type: 'step-started'; readonly step: string }
    | { readonly type: 'step-cached'; readonly step: string; readonly key: string; readonly cachedFrom: string; readonly outputs: StepOutputs; readonly durationMs: number }
    | { readonly type: 'step-executing'; readonly step: string; readonly key: string; readonly reason: ExecutionReason; readonly message: string }
    | { readonly type: 'step-remote-started'; readonly step: string; readonly key: string; readonly worker: string; readonly host: string; readonly attempt: number }
    | { readonly type: 'artifact-written'; readonly step: string; readonly output: string; readonly id: string; readonly size: number }
    | { readonly type: 'step-executed'; readonly step: string; readonly key: string; readonly outputs: StepOutputs; readonly durationMs: number; readonly worker?: string }
    | { readonly type: 'step-repaired'; readonly step: string; readonly problem: string; readonly key: string; readonly outputs: StepOutputs; readonly durationMs: number }
    | { readonly type: 'step-failed'; readonly step: string; readonly error: StepcacheError; readonly durationMs: number }
    | { readonly type: 'step-skipped'; readonly step: string; readonly upstream: string }
    | { readonly type: 'warning'; readonly kind: RunWarningKind; readonly step?: string; readonly message: string }
    | {
        readonly type: 'run-finished';
        readonly pipeline: string;
        readonly status: 'completed' | 'failed';
        readonly counts: Readonly<Record<StepStatus, number>>;
        readonly failed: readonly string[];
        readonly durationMs: number;
      }
  );

/**
 * The type tags of run events.
 *
 * @example
 * const counted: RunEventType[] = ['step-cached', 'step-executed'];
 */
export type RunEventType = RunEvent['type'];

/** Omit over each member of a union. */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * An event as the runner raises it, before the run id and time are stamped on.
 *
 * @example
 * const body: RunEventBody = { type: 'step-started', step: 'svc_trainer' };
 */
export type RunEventBody = DistributiveOmit<RunEvent, keyof RunEventBase>;

/**
 * Receives run events. It should return quickly; whatever it throws is reported once through the
 * runner's logger and never breaks the run.
 *
 * @example
 * const seen: RunEvent[] = [];
 * createRunner({ onEvent: (e) => seen.push(e) });
 */
export type RunSubscriber = (event: RunEvent) => void;

// constructors

/**
 * Stamps an event with its run and time, and freezes it. The body is taken over, not copied (a
 * run raises two events a step): pass a fresh one.
 *
 * @example
 * runEvent('r1', { type: 'step-started', step: 'a' }, 0); // { type: 'step-started', step: 'a', runId: 'r1', at: 0 }
 */
export const runEvent = (runId: string, body: RunEventBody, at: number = Date.now()): RunEvent => {
  const event = body as { runId?: string; at?: number };
  event.runId = runId;
  event.at = at;
  return Object.freeze(event) as RunEvent;
};

// dispatch

/**
 * Sends every event to each subscriber in turn. A subscriber that throws is reported once (by
 * `report`), then kept: its later failures are silent, and other subscribers still hear every event.
 *
 * @example
 * const dispatch = dispatcher([loggingSubscriber(consoleLogger), onEvent], (m) => console.warn(m));
 * dispatch(runEvent('r1', { type: 'step-started', step: 'a' }));
 */
export const dispatcher = (subscribers: readonly RunSubscriber[], report: (message: string) => void): RunSubscriber => {
  const reported = new Set<RunSubscriber>();
  return (event) => {
    for (const subscriber of subscribers) {
      try {
        subscriber(event);
      } catch (e) {
        if (reported.has(subscriber)) continue;
        reported.add(subscriber);
        const why = e instanceof Error ? e.message : String(e);
        try {
          report(`A run event subscriber threw on a ${event.type} event (${why}); the run goes on, and its later failures are not reported.`);
        } catch {
          // the report itself failed: nothing else to tell it to
        }
      }
    }
  };
};

/**
 * How many steps ended in each status.
 *
 * @example
 * countStatuses(['cached', 'executed', 'cached']); // { executed: 1, cached: 2, failed: 0, skipped: 0 }
 */
export const countStatuses = (statuses: readonly StepStatus[]): Readonly<Record<StepStatus, number>> => {
  const counts: Record<StepStatus, number> = { executed: 0, cached: 0, failed: 0, skipped: 0 };
  for (const status of statuses) counts[status]++;
  return Object.freeze(counts);
};
