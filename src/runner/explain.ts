/**
 * Explaining a step of a recorded run: why it executed, was cached, failed or was skipped.
 *
 * @packageDocumentation
 */
import { describeReason, type ExecutionReason, type StepExplanation } from '../cache/reasons';
import { StepcacheError } from '../errors';
import type { RunRecord } from '../store/records';

/** The shallow spots kept with an entry's key components (parts of kind `shallow`), defensively: stored data. */
const shallowSpotsOf = (components: unknown): readonly string[] => {
  const parts = typeof components === 'object' && components !== null ? (components as { readonly codeParts?: unknown }).codeParts : undefined;
  if (!Array.isArray(parts)) return [];
  return parts.flatMap((p: unknown) => {
    const part = typeof p === 'object' && p !== null ? (p as { readonly kind?: unknown; readonly name?: unknown }) : {};
    return part.kind === 'shallow' && typeof part.name === 'string' ? [part.name] : [];
  });
};

/** The explanation's message, with the shallow spots of its key said after it. */
const withShallowSpots = <X extends { readonly message: string }>(explanation: X, spots: readonly string[]): X & { readonly shallowSpots?: readonly string[] } =>
  spots.length === 0 ? explanation : { ...explanation, shallowSpots: spots, message: `${explanation.message}; what its key cannot see: ${spots.join('; ')}` };

/**
 * @internal Why a step of a run ended as it did, from the run's record, and, given the key
 * components of the step's cache entry, the shallow spots of its code fingerprint (places where
 * the code it reaches through its values cannot be found).
 */
export const explainStep = (record: RunRecord, step: string, components?: unknown): StepExplanation => {
  const s = Object.hasOwn(record.steps, step) ? record.steps[step] : undefined;
  if (s === undefined) {
    throw new StepcacheError('UNKNOWN_STEP', `Run ${record.id} of pipeline ${record.pipeline} has no step ${JSON.stringify(step)}; its steps are: ${Object.keys(record.steps).join(', ') || '(none)'}.`, {
      step,
      field: 'step',
    });
  }
  const spots = shallowSpotsOf(components);
  switch (s.status) {
    case 'cached':
      return withShallowSpots({ step, status: 'cached', cachedFrom: s.cachedFrom ?? '', message: `served from the cache, made by run ${s.cachedFrom ?? '(unknown)'}` }, spots);
    case 'failed':
      return { step, status: 'failed', error: s.error ?? '', message: s.error ?? 'it failed' };
    case 'skipped':
      return { step, status: 'skipped', message: s.reason ?? 'an upstream step did not complete' };
    case 'executed': {
      const reason = (s.why ?? { _tag: 'NeverCached' }) as ExecutionReason;
      return withShallowSpots({ step, status: 'executed', reason, message: s.reason ?? describeReason(reason) }, spots);
    }
  }
};
