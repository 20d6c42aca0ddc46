/**
 * Explaining a step of a recorded run: why it executed, was cached, failed or was skipped.
 *
 * @packageDocumentation
 */
import { describeReason, type ExecutionReason, type StepExplanation } from '../cache/reasons';
import { StepcacheError } from '../errors';
import type { RunRecord } from '../store/records';

/**
 * @internal Why a step of a run ended as it did, from the run's record.
 */
export const explainStep = (record: RunRecord, step: string): StepExplanation => {
  const s = Object.hasOwn(record.steps, step) ? record.steps[step] : undefined;
  if (s === undefined) {
    throw new StepcacheError('UNKNOWN_STEP', `Run ${record.id} of pipeline ${record.pipeline} has no step ${JSON.stringify(step)}; its steps are: ${Object.keys(record.steps).join(', ') || '(none)'}.`, {
      step,
      field: 'step',
    });
  }
  switch (s.status) {
    case 'cached':
      return { step, status: 'cached', cachedFrom: s.cachedFrom ?? '', message: `served from the cache, made by run ${s.cachedFrom ?? '(unknown)'}` };
    case 'failed':
      return { step, status: 'failed', error: s.error ?? '', message: s.error ?? 'it failed' };
    case 'skipped':
      return { step, status: 'skipped', message: s.reason ?? 'an upstream step did not complete' };
    case 'executed': {
      const reason = (s.why ?? { _tag: 'NeverCached' }) as ExecutionReason;
      return { step, status: 'executed', reason, message: s.reason ?? describeReason(reason) };
    }
  }
};
