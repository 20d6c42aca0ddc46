/**
 * The pipeline the crash test kills: six steps in a small DAG with large, deterministic outputs.
 *
 *   source ─┬─► smooth ────┬─► combine ─► summarize
 *           └─► featurize ─┘
 *   noise (independent)
 *
 * `source` has two named outputs (a Float64Array and a JSON array); the others produce a
 * Float64Array, a JSON array of objects, a Buffer, and more Float64Arrays. Every value is derived
 * from the seed alone, so two runs with the same seed produce the same bytes.
 *
 * Usage: `node --import tsx test/support/crash-pipeline.ts <store dir> <seed> [--wait]` (or
 * `tsx ...`; the crash test uses `node --import tsx`, which runs the script in the process it
 * starts, so that the signal it sends reaches the process that writes the store). With `--wait`,
 * the run begins only when a line arrives on stdin, so that the test can start the process (and
 * load its modules) while it checks the store, and time the kill from the start of the run.
 *
 * Prints, one per line:
 * - `started` once the modules are loaded, just before the run begins (or waits, with `--wait`);
 * - `log <line>` for every line the runner logs;
 * - `trace put <bytes>` when an artifact write begins and `trace stored <id>` when it has been
 *   renamed to its final name (the store is the runner's default, `<dir>/artifacts`, with these
 *   lines added), so that the test can tell where a kill landed;
 * - `done <json>` when the run has completed: `{ runId, statuses, digests }`, where `digests` maps
 *   every pipeline output to the sha256 of its bytes (raw bytes for typed arrays and Buffers, the
 *   JSON text for JSON values), loaded back from the store.
 *
 * @packageDocumentation
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { createFileArtifactStore, createRunner, pipeline, step, type ArtifactStore, type Logger } from '../../src';

/** The name the crash test looks for in the run records. */
export const CRASH_PIPELINE = 'crash_pipeline';

/** The names of the pipeline's steps. */
export const CRASH_STEPS = ['source', 'noise', 'smooth', 'featurize', 'combine', 'summarize'] as const;

/** The names of the pipeline's outputs, sorted. */
export const CRASH_OUTPUTS = ['blob', 'features', 'labels', 'noise', 'signal', 'smoothed', 'summary'] as const;

// deterministic helpers

/** A small seeded PRNG (mulberry32): numbers in [0, 1). */
export const prng = (seed: number): (() => number) => {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};

/** A finite number JSON stores faithfully (no -0), rounded to 6 decimals. */
const fin = (v: number): number => {
  const r = Math.round(v * 1e6) / 1e6;
  return r === 0 ? 0 : r;
};

// steps

const SIGNAL = 512 * 1024; // 4 MB of Float64
const LABELS = 3000;
const NOISE = 768 * 1024; // 6 MB of Float64

const source = step(function source({ seed }: { seed: number }) {
  const next = prng(seed);
  const signal = new Float64Array(SIGNAL);
  let phase = next() * Math.PI;
  for (let i = 0; i < SIGNAL; i++) {
    phase += 0.001 + next() * 0.01;
    signal[i] = Math.sin(phase) * 10 + Math.cos(phase * 3.1) + next();
  }
  const labels = Array.from({ length: LABELS }, (_, id) => ({
    id,
    label: next() < 0.5 ? 'neg' : 'pos',
    weight: fin(next() * 3),
    tags: [`t${Math.floor(next() * 16)}`, `u${Math.floor(next() * 8)}`],
  }));
  return { signal, labels };
}).outputs({ signal: 'auto', labels: 'auto' });

const noise = step(function noise({ seed }: { seed: number }) {
  const next = prng(seed ^ 0x5eed);
  const out = new Float64Array(NOISE);
  let walk = 0;
  for (let i = 0; i < NOISE; i++) {
    walk = walk * 0.999 + (next() - 0.5);
    out[i] = walk + Math.sqrt(i + 1) * 1e-3;
  }
  return out;
});

const smooth = step(function smooth({ signal }: { signal: Float64Array }) {
  const window = 64;
  const out = new Float64Array(signal.length);
  let sum = 0;
  for (let i = 0; i < signal.length; i++) {
    sum += signal[i] ?? 0;
    if (i >= window) sum -= signal[i - window] ?? 0;
    out[i] = Math.tanh(sum / Math.min(i + 1, window));
  }
  return out;
});

const featurize = step(function featurize({ signal, labels }: { signal: Float64Array; labels: { id: number; label: string; weight: number; tags: string[] }[] }) {
  const per = Math.floor(signal.length / labels.length);
  return labels.map((l) => {
    let max = -Infinity;
    let sum = 0;
    for (let i = l.id * per; i < (l.id + 1) * per; i++) {
      const v = signal[i] ?? 0;
      sum += v;
      if (v > max) max = v;
    }
    return { id: l.id, label: l.label, mean: fin(sum / per), max: fin(max), score: fin((sum / per) * l.weight), tag: l.tags[0] ?? '' };
  });
});

const combine = step(function combine({ smoothed, features }: { smoothed: Float64Array; features: { mean: number; max: number; score: number }[] }) {
  const blob = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < blob.length; i++) {
    const f = features[i % features.length];
    const v = (smoothed[i % smoothed.length] ?? 0) * 97 + (f === undefined ? 0 : f.score * 13 + f.max);
    blob[i] = Math.floor(Math.abs(v) * 1000) & 0xff;
  }
  return blob;
});

const summarize = step(function summarize({ blob }: { blob: Buffer }) {
  const out = new Float64Array(256 * 1024); // 2 MB
  let acc = 0;
  for (let i = 0; i < blob.length; i++) {
    acc = (acc * 31 + (blob[i] ?? 0)) % 1000003;
    const slot = i % out.length;
    out[slot] = (out[slot] ?? 0) + acc / 1000003;
  }
  return out;
});

/** The pipeline: every step's output is also a pipeline output. */
export const crashPipeline = pipeline(CRASH_PIPELINE, (p, { seed }: { seed: number }) => {
  const { signal, labels } = p.call(source, { seed });
  const noiseOut = p.call(noise, { seed });
  const smoothed = p.call(smooth, { signal });
  const features = p.call(featurize, { signal, labels });
  const blob = p.call(combine, { smoothed, features });
  const summary = p.call(summarize, { blob });
  return { signal, labels, noise: noiseOut, smoothed, features, blob, summary };
});

/** The bytes an output value is compared by. */
const bytesOf = (value: unknown): Uint8Array =>
  ArrayBuffer.isView(value) ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength) : Buffer.from(JSON.stringify(value), 'utf8');

/** What the `done` line carries. */
export interface CrashPipelineResult {
  readonly runId: string;
  readonly statuses: Record<string, string>;
  readonly digests: Record<string, string>;
}

const main = async (): Promise<void> => {
  const [dir, seedText, flag] = process.argv.slice(2);
  const seed = Number(seedText);
  if (dir === undefined || !Number.isInteger(seed) || (flag !== undefined && flag !== '--wait')) throw new Error('usage: crash-pipeline.ts <store dir> <seed> [--wait]');
  const say = (line: string): void => void process.stdout.write(`${line}\n`);
  const logger: Logger = { info: (m) => say(`log ${m}`), warn: (m) => say(`log ${m}`), error: (m) => say(`log ${m}`) };
  // The runner's default artifact store, announcing each write.
  const files = createFileArtifactStore(path.join(dir, 'artifacts'));
  const artifacts: ArtifactStore = {
    ...files,
    put: async (bytes) => {
      say(`trace put ${bytes.byteLength}`);
      const id = await files.put(bytes);
      say(`trace stored ${id}`);
      return id;
    },
  };
  const runner = createRunner({ dir, logger, artifacts, concurrency: 2 });
  say('started');
  if (flag === '--wait') {
    await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
    process.stdin.destroy();
  }
  const run = await runner.run(crashPipeline, { seed });
  const digests: Record<string, string> = {};
  if (Object.keys(run.outputs).sort().join() !== CRASH_OUTPUTS.join()) throw new Error(`the run's outputs are ${Object.keys(run.outputs).join(', ')}`);
  for (const name of CRASH_OUTPUTS) digests[name] = createHash('sha256').update(bytesOf(await run.output(name))).digest('hex');
  await runner.close();
  const result: CrashPipelineResult = { runId: run.id, statuses: Object.fromEntries(Object.values(run.steps).map((s) => [s.name, s.status])), digests };
  say(`done ${JSON.stringify(result)}`);
};

if (require.main === module) {
  main().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
