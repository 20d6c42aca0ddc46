/**
 * The records benchmark: listing runs and cache entries of a store with {@link RUN_COUNT} runs
 * (`stepcache runs list` and `cache ls` through `runCli` in this process, so CLI start-up is not
 * counted; and as processes of the built CLI, beside `stepcache --version`), what a cached run of a {@link STEP_COUNT}-step chain adds to the store, and parsing a
 * run config of 40,000 keys. Part of `npm run bench`; `node --import tsx bench/records.ts` runs it alone.
 *
 * @packageDocumentation
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseRunConfigText } from '../src/config/run-config';
import { runCli } from '../src/cli/cli';
import { createRunner, silentLogger, type CacheEntry, type RunRecord } from '../src/index';
import { createSqliteMetadataStore } from '../src/store/metadata-store';
import { ensureBuilt, formatMs, median, type Row, runAlone, timeAsync } from './measure';
import { chainPipeline, STEP_COUNT } from './pipelines';

/** Runs in the listed store. */
export const RUN_COUNT = 10_000;
/** Cache entries in the listed store. */
export const ENTRY_COUNT = 2_000;
/** The goal for `runs list` and `cache ls`, beyond CLI start-up. */
export const LIST_GOAL_MS = 50;
/** The goal for a cached step's share of a run record. */
export const CACHED_STEP_GOAL_BYTES = 300;
/** The goal for parsing and validating a run config of 40,000 keys. */
export const CONFIG_GOAL_MS = 1000;

const REPS = 7;

/** A finished run of ten steps, as the runner records it. */
const runOf = (i: number): RunRecord => {
  const startedAt = new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString();
  const steps = Object.fromEntries(
    Array.from({ length: 10 }, (_, s) => [`step_${s}`, s < 8 ? { name: `step_${s}`, status: 'cached' as const, durationMs: 0.2, key: 'ab'.repeat(32), cachedFrom: 'r0' } : { name: `step_${s}`, status: 'executed' as const, durationMs: 120, key: 'cd'.repeat(32), outputs: { output: { id: 'ef'.repeat(16), kind: 'json' as const, size: 100, format: 'auto' } }, reason: 'its parameters changed' }]),
  );
  return { id: `run${String(i).padStart(8, '0')}`, pipeline: 'bench_records', parameters: { gamma: i / 1000, kernel: 'rbf' }, status: 'completed', startedAt, steps, outputs: {}, endedAt: startedAt, durationMs: 250 };
};

const entryOf = (i: number): CacheEntry => ({
  key: i.toString(16).padStart(64, '0'),
  pipeline: 'bench_records',
  step: `step_${i % 10}`,
  runId: 'run00000000',
  createdAt: Date.UTC(2026, 0, 1) + i,
  durationMs: 12,
  outputs: { output: { id: i.toString(16).padStart(32, '0'), kind: 'json', size: 100, format: 'auto' } },
});

const silent = { stdout: { write: () => true }, stderr: { write: (s: string) => void process.stderr.write(s) }, env: {} };

/** Median milliseconds of a CLI command in this process (store opened and closed each time). */
const timeCli = async (argv: string[]): Promise<number> => {
  const samples: number[] = [];
  for (let i = 0; i < REPS; i++) {
    samples.push(
      await timeAsync(async () => {
        if ((await runCli(argv, silent)) !== 0) throw new Error(`stepcache ${argv.join(' ')} failed`);
      }),
    );
  }
  return median(samples);
};

const CLI = path.resolve(__dirname, '..', 'dist', 'cli', 'main.js');

/** Milliseconds from spawning the built CLI with `argv` to its exit. */
const timeCliProcess = (argv: readonly string[]): Promise<number> =>
  new Promise((resolve, reject) => {
    const started = performance.now();
    execFile(process.execPath, [CLI, ...argv], { maxBuffer: 16 << 20 }, (error, _stdout, stderr) => {
      if (error) return reject(new Error(`stepcache ${argv.join(' ')} failed: ${error.message}\n${stderr}`));
      resolve(performance.now() - started);
    });
  });

/**
 * The built CLI as a whole process: `runs list` and `cache ls`, each beside `stepcache --version`
 * (its start-up: Node, the CLI's modules), interleaved; medians; built first when `dist/` is older
 * than the sources. `undefined` when the build made no CLI.
 */
const cliProcessMs = async (dir: string): Promise<{ readonly version: number; readonly runsList: number; readonly cacheLs: number } | undefined> => {
  ensureBuilt();
  if (!fs.existsSync(CLI)) return undefined;
  const samples = { version: [] as number[], runsList: [] as number[], cacheLs: [] as number[] };
  const commands = [
    ['version', ['--version']],
    ['runsList', ['runs', 'list', '--dir', dir]],
    ['cacheLs', ['cache', 'ls', '--dir', dir]],
  ] as const;
  for (let rep = 0; rep < REPS; rep++) {
    for (let k = 0; k < commands.length; k++) {
      const [name, argv] = commands[(rep + k) % commands.length] as (typeof commands)[number];
      samples[name].push(await timeCliProcess(argv));
    }
  }
  return { version: median(samples.version), runsList: median(samples.runsList), cacheLs: median(samples.cacheLs) };
};

/** Bytes a cached run of the chain adds to the metadata store file (and its write-ahead log), per step. */
const cachedRunBytes = async (root: string): Promise<{ recordBytes: number; fileBytesPerStep: number }> => {
  const dir = path.join(root, 'chain');
  const runner = createRunner({ dir, logger: silentLogger });
  await runner.run(chainPipeline);
  const sizeOf = () => ['metadata.sqlite', 'metadata.sqlite-wal'].reduce((sum, f) => sum + (fs.existsSync(path.join(dir, f)) ? fs.statSync(path.join(dir, f)).size : 0), 0);
  const cached = await runner.run(chainPipeline);
  const recordBytes = Buffer.byteLength(JSON.stringify(await runner.getRun(cached.id)));
  const before = sizeOf();
  const RUNS = 5;
  for (let i = 0; i < RUNS; i++) await runner.run(chainPipeline);
  const fileBytesPerStep = (sizeOf() - before) / RUNS / STEP_COUNT;
  await runner.close();
  return { recordBytes, fileBytesPerStep };
};

const configParseMs = (): number => {
  const lines = Array.from({ length: 40_000 }, (_, i) => `  k${i}: ${i}`);
  const text = `parameters:\n${lines.join('\n')}\n`;
  const samples: number[] = [];
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    parseRunConfigText(text, 'yaml', 'big.yaml');
    samples.push(performance.now() - started);
  }
  return median(samples);
};

/** The records benchmark's rows and notes. */
export const measureRecords = async (): Promise<{ rows: Row[]; notes: string[] }> => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'stepcache-bench-records-'));
  try {
    const dir = path.join(root, 'store');
    fs.mkdirSync(dir, { recursive: true });
    const metadata = createSqliteMetadataStore(path.join(dir, 'metadata.sqlite'));
    for (let i = 0; i < RUN_COUNT; i += 100) await Promise.all(Array.from({ length: 100 }, (_, j) => metadata.putRun(runOf(i + j))));
    for (let i = 0; i < ENTRY_COUNT; i += 100) await Promise.all(Array.from({ length: 100 }, (_, j) => metadata.putEntry(entryOf(i + j))));
    await metadata.close();
    const runsList = await timeCli(['runs', 'list', '--dir', dir]);
    const cacheLs = await timeCli(['cache', 'ls', '--dir', dir]);
    const runsShow = await timeCli(['runs', 'show', 'latest', '--dir', dir]);
    const processes = await cliProcessMs(dir);
    const { recordBytes, fileBytesPerStep } = await cachedRunBytes(root);
    const perStep = recordBytes / STEP_COUNT;
    const config = configParseMs();
    const row = (measure: string, ms: number, goal: number): Row => ({ measure, stepcache: formatMs(ms), baseline: '-', ratio: Number.NaN, goal: `<= ${formatMs(goal)}`, pass: ms <= goal });
    return {
      rows: [
        row(`runs list (newest 20 of ${RUN_COUNT} runs)`, runsList, LIST_GOAL_MS),
        row(`cache ls (${ENTRY_COUNT} entries, ${RUN_COUNT} runs)`, cacheLs, LIST_GOAL_MS),
        row('runs show latest', runsShow, LIST_GOAL_MS),
        ...(processes === undefined
          ? []
          : (
              [
                ['runs list', processes.runsList],
                ['cache ls', processes.cacheLs],
              ] as const
            ).map(([command, ms]): Row => ({
              measure: `${command} as a process, beyond stepcache --version (built CLI, ${RUN_COUNT} runs)`,
              stepcache: ms >= processes.version ? formatMs(ms - processes.version) : `-${formatMs(processes.version - ms)}`,
              baseline: formatMs(processes.version),
              ratio: ms / processes.version,
              goal: `<= ${formatMs(LIST_GOAL_MS)} beyond`,
              pass: ms - processes.version <= LIST_GOAL_MS,
            }))),
        { measure: `run record per cached step (${STEP_COUNT}-step chain)`, stepcache: `${perStep.toFixed(0)} B`, baseline: '-', ratio: Number.NaN, goal: `<= ${CACHED_STEP_GOAL_BYTES} B`, pass: perStep <= CACHED_STEP_GOAL_BYTES },
        row('run config of 40,000 keys (YAML)', config, CONFIG_GOAL_MS),
      ],
      notes: [
        `records: a cached run of the ${STEP_COUNT}-step chain records ${(recordBytes / 1000).toFixed(0)} kB as JSON; the store file grows by ${fileBytesPerStep.toFixed(0)} B per cached step (SQLite pages and its write-ahead log included)`,
        `records: list times are in-process runCli calls (the store opened and closed each time), medians of ${REPS}${processes === undefined ? '; no build in dist/, so no CLI process rows (npm run build)' : `; as processes of the built CLI, medians of ${REPS} interleaved: --version ${formatMs(processes.version)}, runs list ${formatMs(processes.runsList)}, cache ls ${formatMs(processes.cacheLs)}`}`,
      ],
    };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
};

if (require.main === module) runAlone(measureRecords);
