/**
 * The runs page: every recorded run, most recent first, filtered by pipeline and status and
 * cut into pages.
 *
 * @packageDocumentation
 */
import type { RunRecord, RunSummary } from '../store/records';
import { formatDuration } from '../format/duration';
import { compareHref, fragment, href, runHref, table, tag, type Html } from './html';
import { page, statusLabel } from './page';

// model

/**
 * The statuses a run can have, in the order the filter offers them.
 *
 * @example
 * RUN_STATUSES; // ['running', 'completed', 'failed']
 */
export const RUN_STATUSES: readonly RunRecord['status'][] = ['running', 'completed', 'failed'];

/**
 * What the runs page shows: the query string's filters and page.
 *
 * @example
 * const query: RunsQuery = { pipeline: 'mnist_pipeline', status: 'completed', page: 1, pageSize: 50 };
 */
export interface RunsQuery {
  readonly pipeline?: string | undefined;
  readonly status?: RunRecord['status'] | undefined;
  /** From 1. */
  readonly page: number;
  readonly pageSize: number;
}

/**
 * A timestamp as UTC date and time to the second (the server's zone would differ from the reader's).
 *
 * @example
 * timestamp('2026-11-30T02:17:09.123Z'); // '2026-11-30 02:17:09 UTC'
 */
export const timestamp = (iso: string): string => {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
};

/**
 * A run's duration as the dashboard shows it: `running` while it runs.
 *
 * @example
 * runDuration(run); // '3m 05s'
 */
export const runDuration = (run: Pick<RunRecord, 'durationMs' | 'status'>): string => (run.durationMs === undefined ? (run.status === 'running' ? 'running' : '?') : formatDuration(run.durationMs));

// page

/**
 * The runs page, from the summaries of every run most recent first (the store's run index: one
 * read, whatever the runs' records hold).
 *
 * @example
 * runsPage(await metadata.listRunSummaries(), { page: 1, pageSize: 50 }).html;
 */
export const runsPage = (runs: readonly RunSummary[], query: RunsQuery): Html => {
  const pipelines = [...new Set(runs.map((r) => r.pipeline))].sort();
  const matching = runs.filter((r) => (query.pipeline === undefined || r.pipeline === query.pipeline) && (query.status === undefined || r.status === query.status));
  const pages = Math.max(1, Math.ceil(matching.length / query.pageSize));
  const current = Math.min(Math.max(1, query.page), pages);
  const shown = matching.slice((current - 1) * query.pageSize, current * query.pageSize);
  // the previous run of the same pipeline, to compare with
  const previous = new Map<string, string>();
  const seen = new Map<string, string>();
  for (let i = runs.length - 1; i >= 0; i--) {
    const r = runs[i] as RunSummary;
    const before = seen.get(r.pipeline);
    if (before !== undefined) previous.set(r.id, before);
    seen.set(r.pipeline, r.id);
  }

  const option = (value: string, label: string, selected: boolean): Html => tag('option', { value, selected }, label);
  const filters = tag(
    'form',
    { class: 'filters', method: 'get', action: '/' },
    tag('label', {}, 'Pipeline', tag('select', { name: 'pipeline' }, option('', 'all', query.pipeline === undefined), pipelines.map((p) => option(p, p, p === query.pipeline)))),
    tag('label', {}, 'Status', tag('select', { name: 'status' }, option('', 'all', query.status === undefined), RUN_STATUSES.map((s) => option(s, s, s === query.status)))),
    tag('button', { type: 'submit' }, 'Filter'),
  );

  const rows = shown.map((r) => {
    const c = r.steps;
    const before = previous.get(r.id);
    return tag(
      'tr',
      { 'data-run': r.id },
      tag('td', {}, tag('a', { href: runHref(r.id), class: 'run-link mono' }, r.id)),
      tag('td', {}, r.pipeline),
      tag('td', {}, statusLabel(r.status)),
      tag('td', {}, timestamp(r.startedAt)),
      tag('td', { class: 'num' }, runDuration(r)),
      tag('td', { class: 'num' }, String(c.cached)),
      tag('td', { class: 'num' }, String(c.executed)),
      tag('td', { class: 'num' }, String(c.failed)),
      tag('td', {}, r.parameters),
      tag('td', {}, before === undefined ? '' : tag('a', { href: compareHref(before, r.id) }, 'vs previous')),
    );
  });
  const pageLink = (n: number, label: string): Html => tag('a', { href: href('/', { pipeline: query.pipeline, status: query.status, page: n }) }, label);
  const nav = tag(
    'nav',
    { class: 'pages' },
    current > 1 ? pageLink(current - 1, '← newer') : undefined,
    tag('span', { class: 'note' }, `page ${current} of ${pages} · ${matching.length} run${matching.length === 1 ? '' : 's'}`),
    current < pages ? pageLink(current + 1, 'older →') : undefined,
  );
  const header = ['Run', 'Pipeline', 'Status', 'Started', 'Duration', 'Cached', 'Executed', 'Failed', 'Parameters', 'Compare'];
  return page(
    { title: 'Runs' },
    tag('h1', {}, 'Runs'),
    filters,
    matching.length === 0
      ? tag('p', { class: 'note' }, runs.length === 0 ? 'No runs recorded in this store yet.' : 'No run matches these filters.')
      : fragment(table('runs', header, rows), nav),
  );
};
