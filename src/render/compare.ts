/**
 * Two runs side by side: how long each step took in each, and how much faster the cache made
 * the second.
 *
 * @packageDocumentation
 */
import type { RunRecord, StepStatus } from '../store/records';
import { formatDuration } from '../format/duration';
import { ownValue } from '../utils/own-property';
import { escapeXml } from './format';
import { CELL_STYLE, TABLE_STYLE } from './html';

/**
 * One step of a comparison: its seconds and status in each run, and how many times faster the
 * second run was when it served the step from the cache and the first executed it.
 *
 * @example
 * const row: ComparisonRow = { step: 'importer_mnist', run1Seconds: 0.412, run2Seconds: 0.0064, speedUp: 64.4, run1Status: 'executed', run2Status: 'cached' };
 */
export interface ComparisonRow {
  readonly step: string;
  readonly run1Seconds: number | undefined;
  readonly run2Seconds: number | undefined;
  readonly speedUp: number | undefined;
  readonly run1Status: StepStatus | undefined;
  readonly run2Status: StepStatus | undefined;
}

/**
 * The result of {@link compareRuns}: a row per step, and the same table as text and as HTML.
 *
 * @example
 * const { rows, text, html } = compareRuns(run1, run2);
 */
export interface RunComparison {
  readonly rows: readonly ComparisonRow[];
  readonly text: string;
  readonly html: string;
}

/** The table's columns. */
const HEADER = ['Step', 'Run1 Execution (s)', 'Run2 Execution (s)', 'Speed Increase'] as const;

/**
 * A speed-up as the table shows it: whole times from 10 up, one decimal below, `-` when there is none.
 *
 * @example
 * formatSpeedUp(64.4); // '64x'
 * formatSpeedUp(2.46); // '2.5x'
 * formatSpeedUp(undefined); // '-'
 */
export const formatSpeedUp = (speedUp: number | undefined): string =>
  speedUp === undefined ? '-' : speedUp >= 10 ? `${Math.round(speedUp)}x` : `${speedUp.toFixed(1)}x`;

/**
 * Compares the step times of two runs, as in the table of ZenML's caching article: columns
 * Step, Run1 Execution (s), Run2 Execution (s), Speed Increase. Times come from each step's
 * recorded duration (a cached step's is the real time its lookup took). The speed increase
 * is run 1's time over run 2's, for a step that executed in run 1 and was cached in run 2;
 * otherwise (the step ran again, failed, was skipped, or is missing from a run) it is `-`.
 * Steps are listed in run 1's order, then those only run 2 has.
 *
 * @example
 * const { text, rows } = compareRuns(run1, run2);
 * console.log(text);
 * // Step            Run1 Execution (s)  Run2 Execution (s)  Speed Increase
 * // --------------  ------------------  ------------------  --------------
 * // importer_mnist  0.4120              0.0064              64x
 * // trainer         2.1000              4.0500              -
 * rows[0]?.speedUp; // 64.4
 */
export const compareRuns = (a: Omit<RunRecord, 'edges'>, b: Omit<RunRecord, 'edges'>): RunComparison => {
  const names = [...Object.keys(a.steps), ...Object.keys(b.steps).filter((name) => !Object.hasOwn(a.steps, name))];
  const rows = names.map((step): ComparisonRow => {
    const s1 = ownValue(a.steps, step);
    const s2 = ownValue(b.steps, step);
    const run1Seconds = s1 === undefined ? undefined : s1.durationMs / 1000;
    const run2Seconds = s2 === undefined ? undefined : s2.durationMs / 1000;
    const speedUp =
      s1?.status === 'executed' && s2?.status === 'cached' && run1Seconds !== undefined && run2Seconds !== undefined && run2Seconds > 0 ? run1Seconds / run2Seconds : undefined;
    return { step, run1Seconds, run2Seconds, speedUp, run1Status: s1?.status, run2Status: s2?.status };
  });
  const cells = rows.map((r) => [r.step, formatDuration(ownValue(a.steps, r.step)?.durationMs, 'seconds'), formatDuration(ownValue(b.steps, r.step)?.durationMs, 'seconds'), formatSpeedUp(r.speedUp)]);

  const widths = HEADER.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: readonly string[]): string => c.map((x, i) => x.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  const text = [line(HEADER), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');

  const td = (x: string, i: number): string => `<td style="${CELL_STYLE}${i === 0 ? '' : ';text-align:right;font-variant-numeric:tabular-nums'}">${escapeXml(x)}</td>`;
  const html = [
    `<table class="stepcache-comparison" style="${TABLE_STYLE}">`,
    `<caption style="text-align:left;font-weight:bold;padding:4px 0">${escapeXml(`${a.pipeline}: run ${a.id} vs run ${b.id}`)}</caption>`,
    `<thead><tr>${HEADER.map((h) => `<th style="${CELL_STYLE};background:#f9fafb">${escapeXml(h)}</th>`).join('')}</tr></thead>`,
    `<tbody>${cells.map((c) => `<tr>${c.map(td).join('')}</tr>`).join('')}</tbody>`,
    '</table>',
  ].join('\n');
  return { rows, text, html };
};
