/**
 * The comparison of two runs: the table of ZenML's caching article (run 1 seconds, run 2
 * seconds, speed-up per step) and what changed between them, step by step.
 *
 * @packageDocumentation
 */
import { compareRuns, formatSpeedUp } from '../render/compare';
import type { RunRecord } from '../store/records';
import { formatDuration } from '../format/duration';
import { stepDetail } from '../format/status';
import { fragment, runHref, stepHref, table, tag, type Html } from './html';
import { page, statusLabel } from './page';

/**
 * What changed for each step of the second run, in words (see `entryChanges`); a step missing
 * here falls back to the second run's recorded reason.
 *
 * @example
 * const changes: StepChanges = new Map([['trainer', ['parameter epochs changed (1 -> 2)']]]);
 */
export type StepChanges = ReadonlyMap<string, readonly string[]>;

/**
 * The comparison page of runs `a` (earlier) and `b`.
 *
 * @example
 * comparePage(run1, run2, changes, ['epochs: 1 -> 2']).html;
 */
export const comparePage = (a: RunRecord, b: RunRecord, changes: StepChanges, parameters: readonly string[]): Html => {
  const { rows } = compareRuns(a, b);
  const seconds = (ms: number | undefined): string => formatDuration(ms, 'seconds');
  const what = (step: string): Html => {
    const s1 = Object.hasOwn(a.steps, step) ? a.steps[step] : undefined;
    const s2 = Object.hasOwn(b.steps, step) ? b.steps[step] : undefined;
    if (s2 === undefined) return fragment('only in run 1');
    if (s1 === undefined) return fragment('only in run 2');
    if (s1.key !== undefined && s1.key === s2.key) return fragment(tag('span', { class: 'note' }, 'nothing: same key'));
    const listed = changes.get(step);
    if (listed !== undefined && listed.length > 0) return tag('ul', { class: 'changes' }, listed.map((c) => tag('li', {}, c)));
    return fragment(stepDetail(s2) || (s2.status === 'cached' ? 'nothing' : 'its cache key changed'));
  };
  const body = rows.map((r) =>
    tag(
      'tr',
      { 'data-step': r.step },
      tag('td', {}, tag('a', { href: stepHref(b.pipeline, r.step) }, r.step)),
      tag('td', { class: 'num run1' }, seconds(Object.hasOwn(a.steps, r.step) ? a.steps[r.step]?.durationMs : undefined)),
      tag('td', { class: 'num run2' }, seconds(Object.hasOwn(b.steps, r.step) ? b.steps[r.step]?.durationMs : undefined)),
      tag('td', { class: 'num speed-up' }, formatSpeedUp(r.speedUp)),
      tag('td', {}, r.run1Status === undefined ? '–' : statusLabel(r.run1Status), ' → ', r.run2Status === undefined ? '–' : statusLabel(r.run2Status)),
      tag('td', { class: 'changed' }, what(r.step)),
    ),
  );
  return page(
    { title: `Compare ${a.id} and ${b.id}` },
    tag('h1', {}, `${b.pipeline}: run 1 vs run 2`),
    tag(
      'p',
      {},
      'Run 1: ',
      tag('a', { href: runHref(a.id), class: 'mono' }, a.id),
      a.pipeline === b.pipeline ? undefined : ` (${a.pipeline})`,
      ' · Run 2: ',
      tag('a', { href: runHref(b.id), class: 'mono' }, b.id),
    ),
    table('comparison', ['Step', 'Run1 Execution (s)', 'Run2 Execution (s)', 'Speed Increase', 'Status', 'What changed'], body),
    tag('h2', {}, 'Parameters'),
    parameters.length === 0 ? tag('p', { class: 'note' }, 'The same in both runs.') : tag('ul', { class: 'changes parameters' }, parameters.map((p) => tag('li', {}, p))),
  );
};
