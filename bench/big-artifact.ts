/**
 * The 1 GB benchmark: a miss storing a 1 GB Float64Array and a hit loading it back, each in a fresh
 * process (`bench/big-artifact-child.ts`), next to the fastest raw write and read of the same
 * bytes, also each in a fresh process; with how far each process's peak resident memory rose over
 * what it was before the measured work. Part of `npm run bench`; `node --expose-gc --import tsx
 * bench/big-artifact.ts` runs it alone.
 *
 * Goals: time within {@link HIT_GOAL}x (hit) and {@link MISS_GOAL}x (miss) of the raw way; peak
 * memory under {@link MEMORY_GOAL}x the artifact's size (for the miss, the step's own array
 * included: storing it must add next to nothing).
 *
 * @packageDocumentation
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isBigChildResult, type BigChildResult } from './big-artifact-child';
import { formatMs, median, type Row, runAlone } from './measure';

/** The artifact's size. */
export const BIG_BYTES = 1_000_000_000;
/** Repetitions (each writes and reads 1 GB several times). */
export const BIG_REPS = 3;
/** The goal for the hit, as a multiple of the fastest raw read. */
export const HIT_GOAL = 1.1;
/** The goal for the miss, as a multiple of the fastest raw write. */
export const MISS_GOAL = 1.3;
/** The goal for the peak memory rise, as a multiple of the artifact's size. */
export const MEMORY_GOAL = 1.2;

const CHILD = path.join(__dirname, 'big-artifact-child.ts');
const REPO = path.resolve(__dirname, '..');

type Mode = 'miss' | 'hit' | 'write' | 'read';

/** The node flags of this process (the TypeScript loader, `--expose-gc`), without profiling flags. */
const childExecArgv = (): string[] => process.execArgv.filter((a) => !/^--(cpu|heap)-prof/.test(a) && a !== '--prof');

const runChild = (mode: Mode, dir: string): Promise<BigChildResult> =>
  new Promise((resolve, reject) => {
    const args = [...childExecArgv(), ...(childExecArgv().includes('--expose-gc') ? [] : ['--expose-gc']), CHILD, mode, String(BIG_BYTES), dir];
    execFile(process.execPath, args, { cwd: REPO, maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`the ${mode} child failed: ${error.message}\n${stderr}`));
      const parsed: unknown = JSON.parse(stdout.trim().split('\n').pop() ?? 'null');
      if (!isBigChildResult(parsed)) return reject(new Error(`the ${mode} child printed ${stdout}`));
      resolve(parsed);
    });
  });

const gb = (bytes: number): string => `${(bytes / 1e9).toFixed(2)} GB`;

/** The 1 GB rows (time of hit and miss, peak memory of each) and a note. */
export const measureBigArtifact = async (reps = BIG_REPS): Promise<{ rows: Row[]; notes: string[] }> => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'stepcache-bench-1gb-'));
  const samples: Record<Mode, BigChildResult[]> = { miss: [], hit: [], write: [], read: [] };
  try {
    for (let rep = 0; rep < reps; rep++) {
      const dir = path.join(root, `store-${rep}`);
      // The miss before the hit (it stores what the hit loads), each beside its raw way in alternating order.
      const order: Mode[] = rep % 2 === 0 ? ['write', 'miss', 'read', 'hit'] : ['miss', 'write', 'hit', 'read'];
      for (const mode of order) samples[mode].push(await runChild(mode, dir));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  const ms = (mode: Mode): number => median(samples[mode].map((s) => s.ms));
  const peak = (mode: Mode): number => median(samples[mode].map((s) => s.peakRise));
  const ways = (mode: Mode): string => [...new Set(samples[mode].map((s) => s.way ?? '?'))].join('/');
  const timeRow = (mode: 'hit' | 'miss', raw: 'read' | 'write', goal: number): Row => ({
    measure: `1 GB ${mode}, fresh process (vs fastest raw ${raw}: ${ways(raw)})`,
    stepcache: formatMs(ms(mode)),
    baseline: formatMs(ms(raw)),
    ratio: ms(mode) / ms(raw),
    goal: `<= ${goal}x baseline`,
    pass: ms(mode) / ms(raw) <= goal,
  });
  const memoryRow = (mode: 'hit' | 'miss', what: string): Row => ({
    measure: `1 GB ${mode}: peak memory rise (${what})`,
    stepcache: gb(peak(mode)),
    baseline: gb(BIG_BYTES),
    ratio: peak(mode) / BIG_BYTES,
    goal: `<= ${MEMORY_GOAL}x artifact size`,
    pass: peak(mode) / BIG_BYTES <= MEMORY_GOAL,
  });
  return {
    rows: [timeRow('hit', 'read', HIT_GOAL), timeRow('miss', 'write', MISS_GOAL), memoryRow('hit', 'the loaded value included'), memoryRow('miss', "the step's own array included")],
    notes: [
      `1 GB: medians of ${reps} fresh processes each; peak memory rise of the raw ways: read ${gb(peak('read'))}, write ${gb(peak('write'))} (the array included); miss time excludes the step making its array`,
    ],
  };
};

if (require.main === module) runAlone(measureBigArtifact);
