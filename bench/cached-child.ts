/**
 * Times one fully cached run in a fresh process, for the benchmark (`bench/index.ts` spawns it).
 * Process startup and module loading are not measured: only `runner.run` (which, being the
 * first run of the process, includes opening the store), and next to it one pass of the same work
 * as plain function calls, also the first in the process.
 *
 * Usage: `node --import tsx bench/cached-child.ts <store dir> <chain|independent> <run-first|plain-first>`.
 * Prints one line of JSON: {@link ChildResult}.
 *
 * @packageDocumentation
 */
import { createRunner, silentLogger } from '../src/index';
import { isShapeName, SHAPES, STEP_COUNT } from './pipelines';

/** What the child prints. */
export interface ChildResult {
  /** Milliseconds spent in `runner.run`. */
  readonly runMs: number;
  /** Milliseconds spent in one pass of the plain function calls. */
  readonly plainMs: number;
  /** How many steps the run served from the cache (must be all of them). */
  readonly cached: number;
  /** How many steps the run had. */
  readonly steps: number;
  /** The CPU time the whole child process used, startup included, in milliseconds. */
  readonly cpuMs: number;
}

/**
 * Whether a parsed value is a {@link ChildResult}.
 *
 * @example
 * isChildResult(JSON.parse(stdout));
 */
export const isChildResult = (x: unknown): x is ChildResult => {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as Record<string, unknown>;
  return typeof r['runMs'] === 'number' && typeof r['plainMs'] === 'number' && typeof r['cached'] === 'number' && typeof r['steps'] === 'number' && typeof r['cpuMs'] === 'number';
};

const main = async (): Promise<void> => {
  const [dir, shapeName, order] = process.argv.slice(2);
  if (dir === undefined || !isShapeName(shapeName) || (order !== 'run-first' && order !== 'plain-first')) {
    throw new Error('usage: cached-child.ts <store dir> <chain|independent> <run-first|plain-first>');
  }
  const shape = SHAPES[shapeName];
  const runner = createRunner({ dir, logger: silentLogger });
  let sink = 0;
  let runMs = Number.NaN;
  let plainMs = Number.NaN;
  let cached = 0;
  let steps = 0;
  const timeRun = async (): Promise<void> => {
    const started = performance.now();
    const run = await runner.run(shape.pipeline);
    runMs = performance.now() - started;
    const statuses = Object.values(run.steps).map((s) => s.status);
    steps = statuses.length;
    cached = statuses.filter((s) => s === 'cached').length;
  };
  const timePlain = (): void => {
    const started = performance.now();
    sink += shape.plain();
    plainMs = performance.now() - started;
  };
  if (order === 'run-first') {
    await timeRun();
    timePlain();
  } else {
    timePlain();
    await timeRun();
  }
  await runner.close();
  if (steps !== STEP_COUNT || !Number.isFinite(sink)) throw new Error(`expected ${STEP_COUNT} steps, the run had ${steps}`);
  const cpu = process.cpuUsage();
  const result: ChildResult = { runMs, plainMs, cached, steps, cpuMs: (cpu.user + cpu.system) / 1000 };
  process.stdout.write(`${JSON.stringify(result)}\n`);
};

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
