/**
 * Run retention: which run records to delete, by count (keep the most recent N) and by age
 * (delete runs started longer ago than D). Runs still running are never deleted; interrupted
 * ones are, like finished ones. Read from the run index a page at a time.
 *
 * @packageDocumentation
 */
import { byRecency, type MetadataStore } from './metadata-store';
import type { RunSummary } from './records';

// model

/**
 * Which runs to keep: the most recent `last`, and only those started within `olderThanMs`.
 * Either alone, or both (a run goes when either says so).
 *
 * @example
 * const keep: RunRetention = { last: 1000, olderThanMs: 90 * 86_400_000 };
 */
export interface RunRetention {
  /** Keep at most this many runs, the most recent. */
  readonly last?: number | undefined;
  /** Delete runs started longer ago than this. */
  readonly olderThanMs?: number | undefined;
}

/**
 * What a retention pass deleted.
 *
 * @example
 * const report: RunPruneReport = { runs: ['0a1b2c3d4e5f'] };
 */
export interface RunPruneReport {
  /** The ids of the deleted runs, most recent first. */
  readonly runs: readonly string[];
}

// rules

/**
 * Whether a run may go when retention selects it: every run but one still running.
 *
 * @example
 * deletable({ status: 'running' }); // false
 */
const deletable = (run: Pick<RunSummary, 'status'>): boolean => run.status !== 'running';

const PAGE = 1000;

/** A position before every run: the runs before it are all of them. */
const ABOVE_ALL: Pick<RunSummary, 'startedAt' | 'id'> = { startedAt: '\uffff', id: '' };

/**
 * The runs retention selects, most recent first (read from the run index, a page at a time): the
 * runs after the last one of the most recent `last`, and the runs started before now - `olderThanMs`.
 *
 * @example
 * const doomed = await runsToPrune(metadata, { last: 100 }, Date.now());
 */
export const runsToPrune = async (metadata: MetadataStore, retention: RunRetention, now: number): Promise<RunSummary[]> => {
  const starts: Array<Pick<RunSummary, 'startedAt' | 'id'>> = [];
  if (retention.last !== undefined) {
    const kept = retention.last === 0 ? [] : await metadata.listRunSummaries({ limit: retention.last });
    const lastKept = retention.last === 0 ? ABOVE_ALL : kept.length === retention.last ? kept[kept.length - 1] : undefined;
    if (lastKept !== undefined) starts.push(lastKept);
  }
  // An id of '' puts the runs started at the cutoff itself after it: they stay.
  if (retention.olderThanMs !== undefined) starts.push({ startedAt: new Date(now - retention.olderThanMs).toISOString(), id: '' });
  // A run goes when either rule selects it: every run after the more recent of the two positions.
  const start = starts.sort(byRecency)[0];
  if (start === undefined) return [];
  const selected: RunSummary[] = [];
  for (let before = start; ; ) {
    const page = await metadata.listRunSummaries({ limit: PAGE, before });
    selected.push(...page.filter(deletable));
    const last = page[page.length - 1];
    if (last === undefined || page.length < PAGE) return selected;
    before = last;
  }
};

/**
 * Deletes the runs retention selects, and says which.
 *
 * @example
 * await pruneRuns(metadata, { last: 1000 }); // { runs: [...] }
 */
export const pruneRuns = async (metadata: MetadataStore, retention: RunRetention, now = Date.now()): Promise<RunPruneReport> => {
  const doomed = await runsToPrune(metadata, retention, now);
  const ids = doomed.map((r) => r.id);
  for (let i = 0; i < ids.length; i += PAGE) await metadata.deleteRuns(ids.slice(i, i + PAGE));
  return { runs: ids };
};
