/**
 * The page of one run: its DAG drawn by the project's own layout and SVG renderer, steps
 * coloured by status, and a table of its steps (status, duration, why each ran, artifacts and
 * keys). While the run is still running the page reloads itself.
 *
 * @packageDocumentation
 */
import { explainStep } from '../runner/explain';
import type { RunRecord, StepRunRecord } from '../store/records';
import { formatBytes } from '../format/bytes';
import { stepDuration } from '../format/status';
import { compareHref, fragment, runHref, stepHref, table, tag, trusted, type Html } from './html';
import { page, statusLabel } from './page';
import { stepCounts } from '../store/records';
import { parametersLine } from '../store/records';
import { runDuration, timestamp } from './runs-page';

/**
 * How often a running run's page reloads, in seconds.
 *
 * @example
 * REFRESH_SECONDS; // 2
 */
export const REFRESH_SECONDS = 2;

/**
 * What the run page shows besides the record.
 *
 * @example
 * const extra: RunPageExtras = { svg: await runToSvg(run), previousRun: 'r0', missingArtifacts: new Set() };
 */
export interface RunPageExtras {
  /** The DAG as SVG text, drawn by `runToSvg` (which escapes every text). */
  readonly svg: string;
  /** The run before it of the same pipeline, to compare with. */
  readonly previousRun?: string | undefined;
  /** Ids of the artifacts the artifact store does not hold (when one was given). */
  readonly missingArtifacts?: ReadonlySet<string> | undefined;
}

const outputsCell = (s: StepRunRecord, missing: ReadonlySet<string> | undefined): Html => {
  const outputs = Object.entries(s.outputs ?? {});
  if (outputs.length === 0) return fragment('–');
  return fragment(
    outputs.map(([name, artifact], i) =>
      fragment(
        i === 0 ? undefined : tag('br', {}),
        `${name}: ${formatBytes(artifact.size)} `,
        tag('span', { class: 'mono', title: artifact.id }, artifact.kind === 'none' ? '(no artifact)' : artifact.id.slice(0, 12)),
        missing?.has(artifact.id) === true ? tag('span', { class: 'status status-failed' }, ' missing') : undefined,
      ),
    ),
  );
};

/**
 * The page of a run.
 *
 * @example
 * runPage(run, { svg: await runToSvg(run) }).html;
 */
export const runPage = (run: RunRecord, extras: RunPageExtras): Html => {
  const c = stepCounts(run);
  const steps = Object.values(run.steps);
  const rows = steps.map((s) =>
    tag(
      'tr',
      { class: `status-${s.status}`, 'data-step': s.name },
      tag('td', {}, tag('a', { href: stepHref(run.pipeline, s.name) }, s.name)),
      tag('td', {}, statusLabel(s.status)),
      tag('td', { class: 'num' }, stepDuration(s)),
      tag('td', { class: 'why' }, explainStep(run, s.name).message),
      tag('td', {}, outputsCell(s, extras.missingArtifacts)),
      tag('td', { class: 'mono', title: s.key ?? '' }, s.key === undefined ? '–' : s.key.slice(0, 16)),
    ),
  );
  const params = parametersLine(run.parameters);
  return page(
    { title: `Run ${run.id}`, refreshSeconds: run.status === 'running' ? REFRESH_SECONDS : undefined },
    tag('h1', {}, `${run.pipeline} · run `, tag('span', { class: 'mono' }, run.id)),
    tag(
      'p',
      {},
      statusLabel(run.status),
      ` · started ${timestamp(run.startedAt)} · ${runDuration(run)} · ${c.cached} cached, ${c.executed} executed, ${c.failed} failed, ${c.skipped} skipped`,
      params === '' ? undefined : fragment(' · parameters ', tag('span', { class: 'mono' }, params)),
      extras.previousRun === undefined ? undefined : fragment(' · ', tag('a', { href: compareHref(extras.previousRun, run.id), class: 'compare-previous' }, 'compare with the previous run')),
    ),
    run.status === 'running' ? tag('p', { class: 'note' }, `Still running: this page reloads every ${REFRESH_SECONDS} seconds.`) : undefined,
    tag('div', { class: 'dag' }, trusted(extras.svg)),
    tag('h2', {}, 'Steps'),
    steps.length === 0
      ? tag('p', { class: 'note' }, 'No steps recorded yet.')
      : table('steps', ['Step', 'Status', 'Duration', 'Why', 'Artifacts', 'Key'], rows),
    tag('p', {}, tag('a', { href: runHref(run.id) }, 'permalink')),
  );
};
