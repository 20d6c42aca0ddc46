/**
 * The page of a step: its cache entries over time, and for each one what changed since the
 * entry before it.
 *
 * @packageDocumentation
 */
import type { CacheEntry } from '../store/records';
import { formatBytes } from '../format/bytes';
import { formatDuration } from '../format/duration';
import { entryChanges } from './changes';
import { runHref, table, tag, type Html } from './html';
import { page } from './page';

/**
 * The page of step `step` of `pipeline`, from its entries (any order).
 *
 * @example
 * stepPage('mnist_pipeline', 'trainer', (await metadata.listEntries()).filter((e) => e.step === 'trainer')).html;
 */
export const stepPage = (pipeline: string, step: string, entries: readonly CacheEntry[]): Html => {
  const oldestFirst = [...entries].sort((x, y) => x.createdAt - y.createdAt || x.key.localeCompare(y.key));
  const rows = oldestFirst
    .map((entry, i) => {
      const before = i === 0 ? undefined : oldestFirst[i - 1];
      const changes = before === undefined ? ['first entry'] : (entryChanges(before, entry) ?? ['its cache key changed (no components recorded to compare)']);
      const bytes = Object.values(entry.outputs).reduce((sum, o) => sum + o.size, 0);
      return tag(
        'tr',
        { 'data-key': entry.key },
        tag('td', {}, new Date(entry.createdAt).toISOString().slice(0, 19).replace('T', ' ') + ' UTC'),
        tag('td', {}, tag('a', { href: runHref(entry.runId), class: 'mono' }, entry.runId)),
        tag('td', { class: 'num' }, formatDuration(entry.durationMs)),
        tag('td', { class: 'num' }, formatBytes(bytes)),
        tag('td', { class: 'mono', title: entry.key }, entry.key.slice(0, 16)),
        tag('td', {}, tag('ul', { class: 'changes' }, changes.map((c) => tag('li', {}, c)))),
      );
    })
    .reverse();
  return page(
    { title: `Step ${step}` },
    tag('h1', {}, `${pipeline} · step ${step}`),
    tag('p', { class: 'note' }, 'Each cache entry is one execution of the step whose result was kept; newest first.'),
    rows.length === 0
      ? tag('p', { class: 'note' }, 'No cache entries of this step (it never completed, or its entries were pruned).')
      : table('entries', ['Created', 'Run', 'Took', 'Size', 'Key', 'What changed since the entry before'], rows),
  );
};
