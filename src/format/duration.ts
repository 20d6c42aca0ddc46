/**
 * Durations as text and back: the one parser of durations written by people (`'30m'`, `'7d'`)
 * and the one formatter, whose named styles are the few ways stepcache shows a duration (the
 * run log, pictures of runs, the command line, messages, ages, a table column of seconds).
 *
 * @packageDocumentation
 */

// units

/** Milliseconds per unit, smallest first. */
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

type Unit = keyof typeof UNIT_MS;

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/** How durations are written in settings and on the command line, for help texts and error messages. */
export const DURATION_FORM = 'a number with a unit: ms, s, m, h or d (for example 90s, 30m, 12h, 7d)';

// parsing

/**
 * Milliseconds of a duration given as a number of milliseconds or a string like `'30m'`;
 * `undefined` for anything else (a bare number in a string, like `'30'`, is refused: it is too
 * easy to misread).
 *
 * @example
 * parseDuration('1.5h'); // 5400000
 * parseDuration(250); // 250
 * parseDuration('30'); // undefined
 */
export const parseDuration = (value: unknown): number | undefined => {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = DURATION.exec(value.trim());
  return match ? Number(match[1]) * UNIT_MS[match[2] as Unit] : undefined;
};

// formatting

/**
 * The ways stepcache shows a duration:
 * - `log`: seconds with three decimals, always (`0.932s`, `75.400s`): the run log's
 *   `Step X has finished in 0.932s.`
 * - `picture`: milliseconds below one (a cache lookup), seconds with three decimals under a
 *   minute, then minutes and seconds (`0.27ms`, `0.932s`, `1m 15.4s`); `–` when unknown.
 * - `clock`: what the command line shows (`850ms`, `12.4s`, `3m 05s`, `1h 02m`); `-` when unknown.
 * - `decimal`: one decimal of the largest unit that fits (`999ms`, `1.5s`, `1.5m`, `1.5h`,
 *   `8.0d`), for messages such as an entry's age.
 * - `age`: whole units of the largest unit that fits (`59s`, `3m`, `2h`, `5d`).
 * - `seconds`: a number of seconds with four decimals and no unit, for a column whose header
 *   names the unit (`0.4120`); `-` when unknown.
 *
 * @example
 * const style: DurationStyle = 'clock';
 */
export type DurationStyle = 'log' | 'picture' | 'clock' | 'decimal' | 'age' | 'seconds';

const two = (n: number): string => String(n).padStart(2, '0');

/** The largest unit of at most `ms` (seconds at least), with the unit's size. */
const largestUnit = (ms: number): [Unit, number] =>
  ms < UNIT_MS.m ? ['s', UNIT_MS.s] : ms < UNIT_MS.h ? ['m', UNIT_MS.m] : ms < UNIT_MS.d ? ['h', UNIT_MS.h] : ['d', UNIT_MS.d];

/** Each style, for a finite duration; `UNKNOWN` says what each shows for anything else. */
const STYLES: Readonly<Record<DurationStyle, (ms: number) => string>> = {
  log: (ms) => `${(ms / 1000).toFixed(3)}s`,
  picture: (ms) => {
    if (ms > 0 && ms < 1) return `${ms.toFixed(2)}ms`;
    if (ms < UNIT_MS.m) return `${(Math.max(0, ms) / 1000).toFixed(3)}s`;
    const minutes = Math.floor(ms / UNIT_MS.m);
    return `${minutes}m ${((ms - minutes * UNIT_MS.m) / 1000).toFixed(1)}s`;
  },
  clock: (ms) => {
    if (ms < 0) return '-';
    if (ms === 0) return '0ms';
    if (ms < 1) return '<1ms';
    if (ms < 1000) return `${Math.round(ms)}ms`;
    if (ms < UNIT_MS.m) return `${(Math.floor(ms / 100) / 10).toFixed(1)}s`;
    const s = Math.floor(ms / 1000);
    if (s < 3600) return `${Math.floor(s / 60)}m ${two(s % 60)}s`;
    return `${Math.floor(s / 3600)}h ${two(Math.floor(s / 60) % 60)}m`;
  },
  decimal: (ms) => {
    if (ms < 1000) return `${Math.round(ms)}ms`;
    const [unit, size] = largestUnit(ms);
    return `${(ms / size).toFixed(1)}${unit}`;
  },
  age: (ms) => {
    const whole = Math.max(0, ms);
    const [unit, size] = largestUnit(whole);
    return `${Math.floor(whole / size)}${unit}`;
  },
  seconds: (ms) => (ms / 1000).toFixed(4),
};

const UNKNOWN: Readonly<Record<DurationStyle, string>> = { log: '?', picture: '–', clock: '-', decimal: '?', age: '?', seconds: '-' };

/**
 * A duration in milliseconds as text, in one of the {@link DurationStyle}s (`clock` unless
 * told); `undefined`, `NaN` and infinities show as unknown (`–`, `-` or `?`, by style).
 *
 * @example
 * formatDuration(932, 'log'); // '0.932s'
 * formatDuration(75_400, 'picture'); // '1m 15.4s'
 * formatDuration(185_000); // '3m 05s'
 * formatDuration(5_400_000, 'decimal'); // '1.5h'
 * formatDuration(3 * 3_600_000 + 5, 'age'); // '3h'
 * formatDuration(412, 'seconds'); // '0.4120'
 */
export const formatDuration = (ms: number | undefined, style: DurationStyle = 'clock'): string =>
  ms === undefined || !Number.isFinite(ms) ? UNKNOWN[style] : STYLES[style](ms);
