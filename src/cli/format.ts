/**
 * Text for the command line: timestamps, and tables aligned on what is visible (colour codes
 * take no width). Durations, sizes and statuses are written by the modules under `src/format`.
 *
 * @packageDocumentation
 */

// durations: the progress reporter's import, kept while it moves to the format module

export { formatDuration } from '../format/duration';

// timestamps

/**
 * An ISO timestamp as local date and time to the second.
 *
 * @example
 * formatTimestamp('2026-11-23T10:00:00.000Z'); // '2026-11-23 11:00:00' in Central Europe
 */
export const formatTimestamp = (iso: string): string => {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const two = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
};

// tables

/** A column of a {@link table}. */
export interface Column {
  readonly header: string;
  /** @default 'left' */
  readonly align?: 'left' | 'right';
}

const ANSI = /\x1b\[[0-9;]*m/g;

/** The width a string takes on a terminal (colour codes take none); a string without an escape is its length. */
const visibleWidth = (s: string): number => (s.includes('\x1b') ? s.replace(ANSI, '').length : s.length);

/**
 * Rows under headers, columns separated by two spaces, without trailing spaces. A cell without a
 * colour code is measured by its length, without a regular expression (a listing has thousands).
 *
 * @example
 * table([{ header: 'STEP' }, { header: 'SIZE', align: 'right' }], [['loader', '1.2 MB']]);
 * // 'STEP      SIZE\nloader  1.2 MB\n'
 */
export const table = (columns: readonly Column[], rows: readonly (readonly string[])[]): string => {
  const all = [columns.map((c) => c.header), ...rows];
  const widths = columns.map((_, i) => all.reduce((widest, r) => Math.max(widest, visibleWidth(r[i] ?? '')), 0));
  const line = (r: readonly string[]) =>
    columns
      .map((c, i) => {
        const cell = r[i] ?? '';
        const pad = ' '.repeat((widths[i] as number) - visibleWidth(cell));
        return c.align === 'right' ? pad + cell : i === columns.length - 1 ? cell : cell + pad;
      })
      .join('  ')
      .trimEnd();
  return all.map(line).join('\n') + '\n';
};
