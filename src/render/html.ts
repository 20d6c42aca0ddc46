/**
 * A run's steps as an HTML table, for notebooks and reports.
 *
 * @packageDocumentation
 */
import type { RunRecord } from '../store/records';
import { formatDuration } from '../format/duration';
import { STATUS_STYLES, stepDetail, stepDuration } from '../format/status';
import { escapeXml } from './format';

/** @internal */
export const TABLE_STYLE = 'border-collapse:collapse;font-family:Helvetica,Arial,sans-serif;font-size:13px';
/** @internal */
export const CELL_STYLE = 'border:1px solid #d1d5db;padding:4px 8px;text-align:left';

/**
 * A run's steps as an HTML `<table>` (name, status, duration, and why: the run a cached step
 * came from, why a step executed, its error, or why it was skipped), in recorded order, with a
 * caption naming the pipeline and the run. Every text is escaped; styles are inline, so it
 * looks the same wherever it is pasted.
 *
 * @example
 * runToHtmlTable(run);
 * // <table class="stepcache-run" ...><caption>training_pipeline · run ... · completed · 1.021s</caption>
 * // <tr><th>Step</th><th>Status</th><th>Duration</th><th>Details</th></tr>
 * // <tr class="status-cached"><td>training_data_loader</td><td>↺ cached</td><td>0.004s</td><td>cached from 20250101-120000789-00a0f00d1</td></tr> ...
 */
export const runToHtmlTable = (run: Omit<RunRecord, 'edges'>): string => {
  const cell = (tag: 'td' | 'th', content: string, extra = ''): string => `<${tag} style="${CELL_STYLE}${extra}">${escapeXml(content)}</${tag}>`;
  const rows = Object.values(run.steps).map((s) => {
    const style = STATUS_STYLES[s.status];
    return [
      `<tr class="status-${s.status}" style="background:${style.fill}">`,
      cell('td', s.name, ';font-weight:bold'),
      cell('td', `${style.symbol} ${s.status}`, `;color:${style.text}`),
      cell('td', stepDuration(s), ';text-align:right;font-variant-numeric:tabular-nums'),
      cell('td', stepDetail(s, { fullIds: true })),
      '</tr>',
    ].join('');
  });
  const caption = `${run.pipeline} · run ${run.id} · ${run.status} · ${formatDuration(run.durationMs, 'picture')}`;
  return [
    `<table class="stepcache-run" style="${TABLE_STYLE}">`,
    `<caption style="text-align:left;font-weight:bold;padding:4px 0">${escapeXml(caption)}</caption>`,
    `<thead><tr>${['Step', 'Status', 'Duration', 'Details'].map((h) => cell('th', h, ';background:#f9fafb')).join('')}</tr></thead>`,
    `<tbody>${rows.join('')}</tbody>`,
    '</table>',
  ].join('\n');
};
