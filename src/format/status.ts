/**
 * How a step's status is shown, everywhere: its look (colours for pictures and terminals, a
 * symbol, a dashed border or not), the words that go with it (where a cached step came from,
 * why a step ran, failed or was skipped), and its duration as a picture shows it.
 *
 * @packageDocumentation
 */
import type { RunRecord, StepRunRecord, StepStatus } from '../store/records';
import { formatDuration } from './duration';
import { shortRunId } from './text';

// model

/**
 * What a picture says of a step: its status in the run, or `pending` for a step the record
 * names in its edges but has no result for yet (a run still running).
 *
 * @example
 * const s: NodeStatus = 'pending';
 */
export type NodeStatus = StepStatus | 'pending';

/**
 * How a status looks: colours for pictures (fill, border, text), its symbol, whether its
 * border is dashed, and its colour on a terminal (an ANSI SGR code).
 *
 * @example
 * const look: StatusStyle = { fill: '#ffffff', stroke: '#9ca3af', text: '#4b5563', symbol: '…', dashed: true, terminal: '33' };
 */
export interface StatusStyle {
  readonly fill: string;
  readonly stroke: string;
  readonly text: string;
  readonly symbol: string;
  readonly dashed: boolean;
  readonly terminal: string;
}

/**
 * How each status looks. A `Record` over every status, so a new status without a look does
 * not compile.
 *
 * @example
 * STATUS_STYLES.cached.fill; // '#dbeafe'
 */
export const STATUS_STYLES: Readonly<Record<NodeStatus, StatusStyle>> = Object.freeze({
  executed: Object.freeze({ fill: '#dcfce7', stroke: '#15803d', text: '#14532d', symbol: '✓', dashed: false, terminal: '32' }),
  cached: Object.freeze({ fill: '#dbeafe', stroke: '#1d4ed8', text: '#1e3a8a', symbol: '↺', dashed: false, terminal: '34' }),
  failed: Object.freeze({ fill: '#fee2e2', stroke: '#b91c1c', text: '#7f1d1d', symbol: '✗', dashed: false, terminal: '31' }),
  skipped: Object.freeze({ fill: '#f3f4f6', stroke: '#6b7280', text: '#374151', symbol: '–', dashed: true, terminal: '90' }),
  pending: Object.freeze({ fill: '#ffffff', stroke: '#9ca3af', text: '#4b5563', symbol: '…', dashed: true, terminal: '33' }),
});

/** A run's terminal colours: a completed run as an executed step, a running one as a pending step, an interrupted one as a failure. */
const RUN_TERMINAL: Readonly<Record<RunRecord['status'], string>> = {
  completed: STATUS_STYLES.executed.terminal,
  running: STATUS_STYLES.pending.terminal,
  failed: STATUS_STYLES.failed.terminal,
  interrupted: STATUS_STYLES.failed.terminal,
};

/**
 * The statuses a legend shows, in the order it shows them.
 *
 * @example
 * STEP_STATUSES; // ['executed', 'cached', 'failed', 'skipped']
 */
export const STEP_STATUSES: readonly StepStatus[] = Object.freeze(['executed', 'cached', 'failed', 'skipped']);

// description

/**
 * A step's or a run's status for a terminal, in its colour when `colour` is on.
 *
 * @example
 * paintStatus('failed', true); // '\x1b[31mfailed\x1b[0m'
 * paintStatus('failed', false); // 'failed'
 */
export const paintStatus = (status: NodeStatus | RunRecord['status'], colour: boolean): string => {
  if (!colour) return status;
  const code = status === 'completed' || status === 'running' || status === 'interrupted' ? RUN_TERMINAL[status] : STATUS_STYLES[status].terminal;
  return `\x1b[${code}m${status}\x1b[0m`;
};

/**
 * What a step's record adds to its status, in a few words: where a cached step came from
 * (its run id shortened unless `fullIds`), why an executed step ran, why a step failed or was
 * skipped.
 *
 * @example
 * stepDetail({ name: 'load', status: 'cached', durationMs: 2, cachedFrom: 'r1' }); // 'cached from r1'
 * stepDetail(undefined); // 'no result recorded yet'
 */
export const stepDetail = (record: StepRunRecord | undefined, options: { readonly fullIds?: boolean } = {}): string => {
  if (record === undefined) return 'no result recorded yet';
  switch (record.status) {
    case 'cached':
      return record.cachedFrom === undefined ? 'cached' : `cached from ${options.fullIds === true ? record.cachedFrom : shortRunId(record.cachedFrom)}`;
    case 'executed':
      return record.reason ?? '';
    case 'failed':
      return record.error ?? record.reason ?? 'failed';
    case 'skipped':
      return record.reason ?? 'an upstream step did not complete';
  }
};

/**
 * How long a step took, as a picture shows it: `not run` for a skipped step, `–` for a step
 * with no result yet.
 *
 * @example
 * stepDuration({ name: 'train', status: 'executed', durationMs: 932 }); // '0.932s'
 * stepDuration(undefined); // '–'
 */
export const stepDuration = (record: StepRunRecord | undefined): string =>
  record === undefined ? '–' : record.status === 'skipped' ? 'not run' : formatDuration(record.durationMs, 'picture');
