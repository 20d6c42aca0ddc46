/**
 * Small measuring helpers for the benchmark: timing, interleaved sampling, medians and the report table.
 *
 * @packageDocumentation
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The repository this benchmark belongs to. */
const REPO_ROOT = path.resolve(__dirname, '..');

/** Runs a full garbage collection when node was started with `--expose-gc`; otherwise does nothing. */
export const collectGarbage = (): void => {
  const gc: unknown = (globalThis as { gc?: unknown }).gc;
  if (typeof gc === 'function') (gc as () => void)();
};

/** Whether {@link collectGarbage} really collects (node was started with `--expose-gc`). */
export const gcExposed = (): boolean => typeof (globalThis as { gc?: unknown }).gc === 'function';

/**
 * Times an asynchronous action in milliseconds, with `performance.now()`.
 *
 * @example
 * const ms = await timeAsync(() => fs.promises.readFile(file));
 */
export const timeAsync = async (action: () => Promise<unknown>): Promise<number> => {
  const started = performance.now();
  await action();
  return performance.now() - started;
};

/**
 * The median of some numbers (the mean of the two middle ones for an even count).
 *
 * @example
 * median([3, 1, 2]); // 2
 */
export const median = (xs: readonly number[]): number => {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

/** The samples of two variants measured side by side. */
export interface Paired {
  readonly a: number[];
  readonly b: number[];
}

/**
 * Measures two variants side by side, `reps` times: each repetition runs both, A first in even
 * repetitions and B first in odd ones, so that drift and order effects hit both alike. With
 * `gc`, each sample is preceded by a full garbage collection (when exposed), so that one sample's
 * garbage is not collected in the next. `a` and `b` return their own measurement (so they can keep
 * setup and cleanup out of it).
 *
 * @example
 * const { a, b } = await interleave(9, true, () => timeAsync(cachedRun), () => timeAsync(rawRead));
 */
export const interleave = async (
  reps: number,
  gc: boolean,
  a: (rep: number) => Promise<number>,
  b: (rep: number) => Promise<number>,
): Promise<Paired> => {
  const result: Paired = { a: [], b: [] };
  for (let rep = 0; rep < reps; rep++) {
    const order: Array<'a' | 'b'> = rep % 2 === 0 ? ['a', 'b'] : ['b', 'a'];
    for (const which of order) {
      if (gc) collectGarbage();
      if (which === 'a') result.a.push(await a(rep));
      else result.b.push(await b(rep));
    }
  }
  return result;
};

/** One line of the report. */
export interface Row {
  /** What is measured. */
  readonly measure: string;
  /** The stepcache median, formatted with its unit. */
  readonly stepcache: string;
  /** The baseline median, formatted with its unit. */
  readonly baseline: string;
  /** stepcache / baseline. */
  readonly ratio: number;
  /** The goal, as text. */
  readonly goal: string;
  /** Whether the goal is met. */
  readonly pass: boolean;
}

const formatRatio = (r: number): string => (!Number.isFinite(r) ? 'n/a' : r >= 100 ? `${r.toFixed(0)}x` : `${r.toFixed(2)}x`);

/**
 * Formats milliseconds with a sensible number of digits.
 *
 * @example
 * formatMs(0.01234); // '0.0123 ms'
 */
export const formatMs = (ms: number): string => {
  if (!Number.isFinite(ms)) return 'n/a';
  if (ms >= 100) return `${ms.toFixed(1)} ms`;
  if (ms >= 1) return `${ms.toFixed(2)} ms`;
  if (ms >= 0.001) return `${ms.toPrecision(3)} ms`;
  if (ms >= 0.000001) return `${(ms * 1000).toPrecision(3)} µs`;
  return `${(ms * 1_000_000).toPrecision(3)} ns`;
};

/**
 * Renders rows as an aligned plain-text table.
 *
 * @example
 * console.log(renderTable(rows));
 */
export const renderTable = (rows: readonly Row[]): string => {
  const header = ['measure', 'stepcache (median)', 'baseline (median)', 'ratio', 'goal', 'verdict'];
  const cells = rows.map((r) => [r.measure, r.stepcache, r.baseline, formatRatio(r.ratio), r.goal, r.pass ? 'PASS' : 'MISS']);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] as string).length)));
  const line = (c: readonly string[]): string => c.map((x, i) => x.padEnd(widths[i] as number)).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
};

/**
 * Runs one benchmark module on its own (`node --import tsx bench/<module>.ts`): prints its table
 * and notes, and sets a failing exit code when it cannot run.
 *
 * @example
 * if (require.main === module) runAlone(measureRecords);
 */
export const runAlone = (measure: () => Promise<{ readonly rows: readonly Row[]; readonly notes: readonly string[] }>): void => {
  measure().then(
    ({ rows, notes }) => {
      console.log(renderTable(rows));
      for (const note of notes) console.log(note);
    },
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
};

/** The newest modification time of the files under a folder (recursively), in milliseconds. */
const newestUnder = (dir: string): number =>
  fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((name) => fs.statSync(path.join(dir, name)).mtimeMs)
    .reduce((newest, t) => Math.max(newest, t), 0);

/**
 * Builds the package (`npm run build`) unless `dist/` is there and newer than every file under
 * `src/`, so that measurements of the built package (whole processes, the CLI) measure this code.
 *
 * @example
 * ensureBuilt(); // then run dist/cli/main.js
 */
export const ensureBuilt = (): void => {
  const built = path.join(REPO_ROOT, 'dist', 'index.js');
  const builtAt = fs.existsSync(built) ? fs.statSync(built).mtimeMs : -1;
  if (builtAt < newestUnder(path.join(REPO_ROOT, 'src'))) execFileSync('npm', ['run', 'build'], { cwd: REPO_ROOT, stdio: 'ignore' });
};
