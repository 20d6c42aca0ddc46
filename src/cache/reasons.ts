/**
 * Why a step executed (or not): a tagged value recorded with every step of every run, and its
 * one-line description for the log (`svc_trainer: re-running because parameter gamma changed (0.002 -> 0.0001)`).
 *
 * @packageDocumentation
 */
import { formatDuration } from '../format/duration';
import type { SettingSource } from '../settings/settings';
import { describeChange, type KeyChange } from './components';

// model

/**
 * Why a step executed.
 *
 * @example
 * const why: ExecutionReason = { _tag: 'KeyChanged', changes: [{ _tag: 'Parameter', name: 'gamma', before: '0.002', after: '0.0001' }] };
 */
export type ExecutionReason =
  | { readonly _tag: 'NeverCached' }
  | { readonly _tag: 'CacheDisabled'; readonly decidedBy: SettingSource }
  | { readonly _tag: 'Refresh'; readonly decidedBy: SettingSource }
  | { readonly _tag: 'Expired'; readonly decidedBy: SettingSource; readonly ageMs: number; readonly expiresAfterMs: number }
  | { readonly _tag: 'ArtifactsMissing' }
  | { readonly _tag: 'Repaired'; readonly detail: string }
  | { readonly _tag: 'KeyChanged'; readonly changes: readonly KeyChange[] };

/**
 * What happened to a step in a run and why, as `runner.explain` returns it.
 *
 * @example
 * const e: StepExplanation = { step: 'svc_trainer', status: 'executed', reason: { _tag: 'NeverCached' }, message: 'it was never cached before' };
 * // shallowSpots (executed or cached steps): where the key cannot see the code the step reaches through its values
 */
export type StepExplanation =
  | { readonly step: string; readonly status: 'executed'; readonly reason: ExecutionReason; readonly message: string; readonly shallowSpots?: readonly string[] }
  | { readonly step: string; readonly status: 'cached'; readonly cachedFrom: string; readonly message: string; readonly shallowSpots?: readonly string[] }
  | { readonly step: string; readonly status: 'failed'; readonly error: string; readonly message: string }
  | { readonly step: string; readonly status: 'skipped'; readonly message: string };

// description

const LAYER_WORDS: Readonly<Record<SettingSource, string>> = {
  default: 'default',
  pipeline: 'pipeline settings',
  step: 'step settings',
  runConfig: 'run config file',
  runtime: 'runtime options',
  runtimeStep: 'runtime options for this step',
};

/**
 * An execution reason in words, completing "re-running because ...".
 *
 * @example
 * describeReason({ _tag: 'CacheDisabled', decidedBy: 'step' }); // 'caching is disabled by the step settings'
 */
export const describeReason = (reason: ExecutionReason): string => {
  switch (reason._tag) {
    case 'NeverCached':
      return 'it was never cached before';
    case 'CacheDisabled':
      return `caching is disabled by the ${LAYER_WORDS[reason.decidedBy]}`;
    case 'Refresh':
      return `a refresh was asked for by the ${LAYER_WORDS[reason.decidedBy]}`;
    case 'Expired':
      return `its cache entry expired (${formatDuration(reason.ageMs, 'decimal')} old, expiresAfter ${formatDuration(reason.expiresAfterMs, 'decimal')})`;
    case 'ArtifactsMissing':
      return 'its cached artifacts are missing';
    case 'Repaired':
      return `its cached artifacts were damaged (${reason.detail})`;
    case 'KeyChanged':
      return reason.changes.length === 0 ? 'its cache key changed' : reason.changes.map(describeChange).join(', and ');
  }
};
