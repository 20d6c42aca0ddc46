/**
 * Text for the command line: humanized sizes, ages and durations, their parsers, and tables
 * aligned on what is visible (colour codes take no width).
 *
 * @packageDocumentation
 */
import { durationMs } from '../settings/settings';

// sizes

const SIZE_UNITS = ['kB', 'MB', 'GB', 'TB'] as const;

/**
 * A byte count in decimal units (1 kB = 1000 bytes), one decimal from a kilobyte on.
 *
 * @example
 * formatBytes(1_234_567); // '1.2 MB'
 * formatBytes(512); // '512 B'
 */
export const formatBytes = (bytes: number): string => {
  if (!Number.isFinite(bytes) || bytes < 1000) return `${Math.max(0, Math.round(bytes))} B`;
  let value = bytes;
  let unit = 0;
  value /= 1000;
  while (value >= 999.95 && unit < SIZE_UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(1)} ${SIZE_UNITS[unit] as string}`;
};

const BYTE_FACTORS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** How sizes are written on the command line, for help texts and error messages. */
export const SIZE_FORM = 'a number of bytes, optionally with a unit: 500MB, 2GB, 750kB (powers of 1000) or 512MiB, 4GiB (powers of 1024)';

/**
 * A size written like `500MB`, `2GB`, `1.5 GiB` or `1048576`, in bytes; `undefined` if malformed.
 *
 * @example
 * parseBytes('500MB'); // 500000000
 * parseBytes('2GiB'); // 2147483648
 */
export const parseBytes = (text: string): number | undefined => {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  if (match === null) return undefined;
  const factor = BYTE_FACTORS[(match[2] as string).toLowerCase()];
  return factor === undefined ? undefined : Math.floor(Number(match[1]) * factor);
};

// durations

/** How durations are written on the command line, for help texts and error messages. */
export const DURATION_FORM = 'a number with a unit: ms, s, m, h or d (for example 90s, 30m, 12h, 7d)';

/**
 * A duration written like `30m`, `12h` or `7d`, in milliseconds; `undefined` if malformed.
 * A bare number is refused: `--older-than 30` is too easy to misread.
 *
 * @example
 * parseDuration('12h'); // 43200000
 * parseDuration('12'); // undefined
 */
export const parseDuration = (text: string): number | undefined => (/^\s*\d+(\.\d+)?\s*$/.test(text) ? undefined : durationMs(text));

/**
 * An age in its largest whole unit: `42s`, `3m`, `2h`, `5d`.
 *
 * @example
 * formatAge(3 * 3_600_000 + 5); // '3h'
 */
export const formatAge = (ms: number): string => {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
};

/**
 * How long something took: `850ms`, `12.4s`, `3m 05s`, `1h 02m`.
 *
 * @example
 * formatDuration(12_400); // '12.4s'
 */
export const formatDuration = (ms: number): string => {
  if (!Number.isFinite(ms) || ms < 0) return '-';
  if (ms === 0) return '0ms';
  if (ms < 1) return '<1ms';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
};

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

/** The width a string takes on a terminal (colour codes take none). */
export const visibleWidth = (s: string): number => s.replace(ANSI, '').length;

/**
 * Rows under headers, columns separated by two spaces, without trailing spaces.
 *
 * @example
 * table([{ header: 'STEP' }, { header: 'SIZE', align: 'right' }], [['loader', '1.2 MB']]);
 * // 'STEP      SIZE\nloader  1.2 MB\n'
 */
export const table = (columns: readonly Column[], rows: readonly (readonly string[])[]): string => {
  const all = [columns.map((c) => c.header), ...rows];
  const widths = columns.map((_, i) => Math.max(...all.map((r) => visibleWidth(r[i] ?? ''))));
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

/** One line of text: newlines and tabs become spaces. */
export const oneLine = (s: string): string => s.replace(/\s*[\r\n\t]+\s*/g, ' ').trim();
