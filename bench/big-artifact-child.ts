/**
 * One big-artifact measurement in a fresh process, for the benchmark (`bench/big-artifact.ts`
 * spawns it): time, and how far the process's peak resident memory rose above what it was just
 * before (the peak is reset first through `/proc/self/clear_refs`, then read as `VmHWM`).
 *
 * Usage: `node --import tsx bench/big-artifact-child.ts <mode> <bytes> <store dir>`, where mode is
 * - `miss`: a run whose step makes a Float64Array of `bytes` and returns it (stored);
 *   the time excludes the step's own making of the array; a run storing 8 bytes comes first, unmeasured;
 * - `hit`: a cached run of that pipeline plus `run.output('x')` (loaded and verified);
 * - `write`: making the same array, then the faster of `writeFileSync` and `fs.promises.writeFile`
 *   of its bytes to a new file in the store folder (both timed; the time is the write's);
 * - `read`: the faster of `readFileSync` and `fs.promises.readFile` of the stored artifact.
 * Prints one line of JSON: {@link BigChildResult}.
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRunner, pipeline, silentLogger, step } from '../src/index';

/** What the child prints. */
export interface BigChildResult {
  /** Milliseconds of the measured work. */
  readonly ms: number;
  /** Bytes the peak resident memory rose above the resident memory before the measured work. */
  readonly peakRise: number;
  /** For `write` and `read`: which raw way was faster. */
  readonly way?: string;
}

/**
 * Whether a parsed value is a {@link BigChildResult}.
 *
 * @example
 * isBigChildResult(JSON.parse(stdout));
 */
export const isBigChildResult = (x: unknown): x is BigChildResult =>
  typeof x === 'object' && x !== null && typeof (x as Record<string, unknown>)['ms'] === 'number' && typeof (x as Record<string, unknown>)['peakRise'] === 'number';

const statusBytes = (field: 'VmHWM' | 'VmRSS'): number => {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'));
  if (match === null) throw new Error(`no ${field} in /proc/self/status`);
  return Number(match[1]) * 1024;
};

/** Resets the peak, runs `work`, and says how far the peak rose above the resident memory before it. */
const withPeak = async <A>(work: () => Promise<A>): Promise<{ readonly result: A; readonly peakRise: number }> => {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  fs.writeFileSync('/proc/self/clear_refs', '5');
  const before = statusBytes('VmRSS');
  const result = await work();
  return { result, peakRise: statusBytes('VmHWM') - before };
};

/** The array the step returns: `bytes / 8` elements, each its index scaled (cheap to make, not all zero). */
const makeArray = (bytes: number): Float64Array => {
  const data = new Float64Array(bytes / 8);
  for (let i = 0; i < data.length; i++) data[i] = i * 0.5;
  return data;
};

/** The artifact file of the stored output (the only file of that size below `artifacts/`). */
const artifactFile = (dir: string, bytes: number): string => {
  const root = path.join(dir, 'artifacts');
  for (const entry of fs.readdirSync(root, { recursive: true, withFileTypes: true })) {
    const file = path.join(entry.parentPath, entry.name);
    if (entry.isFile() && !path.relative(root, file).startsWith(`tmp${path.sep}`) && fs.statSync(file).size === bytes) return file;
  }
  throw new Error(`no artifact of ${bytes} bytes below ${root}`);
};

const main = async (): Promise<void> => {
  const [mode, bytesText, dir] = process.argv.slice(2);
  const bytes = Number(bytesText);
  if (dir === undefined || !Number.isInteger(bytes) || bytes % 8 !== 0 || !['miss', 'hit', 'write', 'read'].includes(mode ?? '')) {
    throw new Error('usage: big-artifact-child.ts <miss|hit|write|read> <bytes, a multiple of 8> <store dir>');
  }
  let makingMs = 0;
  const big = step(function big_artifact({ size }: { size: number }): Float64Array {
    const started = performance.now();
    const data = makeArray(size);
    makingMs = performance.now() - started;
    return data;
  });
  const p = pipeline('bench_big_artifact', (p, { size }: { size: number }) => ({ x: p.call(big, { size }) }));
  let out: BigChildResult;
  if (mode === 'miss' || mode === 'hit') {
    const runner = createRunner({ dir, logger: silentLogger });
    // A small run first (a miss, or a hit), unmeasured: the step's code fingerprint, the store and
    // the modules are then ready, as in a process that has run before; what is left is the big artifact.
    await runner.run(p, { size: 8 });
    const { result, peakRise } = await withPeak(async () => {
      const started = performance.now();
      const run = await runner.run(p, { size: bytes });
      const status = run.steps['big_artifact']?.status;
      if (status !== (mode === 'miss' ? 'executed' : 'cached')) throw new Error(`the ${mode} run's step was ${String(status)}`);
      if (mode === 'hit') {
        const x = await run.output('x');
        if (!(x instanceof Float64Array) || x.byteLength !== bytes || x[x.length - 1] !== (x.length - 1) * 0.5) throw new Error('the loaded output is not what was stored');
      }
      return performance.now() - started - makingMs;
    });
    await runner.close();
    out = { ms: result, peakRise };
  } else if (mode === 'write') {
    fs.mkdirSync(dir, { recursive: true });
    const { result, peakRise } = await withPeak(async () => {
      const view = new Uint8Array(makeArray(bytes).buffer);
      const time = async (way: 'sync' | 'promise'): Promise<number> => {
        const file = path.join(dir, `raw-${way}.bin`);
        const started = performance.now();
        if (way === 'sync') fs.writeFileSync(file, view);
        else await fs.promises.writeFile(file, view);
        const ms = performance.now() - started;
        fs.rmSync(file);
        return ms;
      };
      const sync = await time('sync');
      const promise = await time('promise');
      return sync <= promise ? { ms: sync, way: 'writeFileSync' } : { ms: promise, way: 'fs.promises.writeFile' };
    });
    out = { ...result, peakRise };
  } else {
    const file = artifactFile(dir, bytes);
    const time = async (way: 'sync' | 'promise'): Promise<number> => {
      const started = performance.now();
      const read = way === 'sync' ? fs.readFileSync(file) : await fs.promises.readFile(file);
      const ms = performance.now() - started;
      if (read.byteLength !== bytes) throw new Error('the raw read has the wrong length');
      return ms;
    };
    const { result, peakRise } = await withPeak(async () => {
      const sync = await time('sync');
      (globalThis as { gc?: () => void }).gc?.();
      const promise = await time('promise');
      return sync <= promise ? { ms: sync, way: 'readFileSync' } : { ms: promise, way: 'fs.promises.readFile' };
    });
    out = { ...result, peakRise };
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
};

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
