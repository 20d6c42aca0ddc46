/**
 * The MNIST caching walkthrough: import digits, normalize them, train a classifier, evaluate
 * it; then train again for two epochs. The second run serves the importer and the normalizer
 * from the cache and re-runs only the trainer and the evaluator.
 *
 * Run it with `npx tsx examples/mnist.ts`. It ends with a table of how long each step took
 * in each run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { consoleLogger, createRunner, pipeline, step, type Logger, type PipelineOutputValues, type Run } from 'stepcache';

/** Pixels per image (28 × 28). The steps write the number in their own source, which their cache keys cover. */
export const PIXELS = 784;

/** Training digits per run (spread evenly over the ten digits). */
export const N_TRAIN = 500;

/** Test digits per run (spread evenly over the ten digits, none of them in the training set). */
export const N_TEST = 100;

// the mnist package ships no types: this is the part of its API the example uses.

/** One digit class of the `mnist` package: its samples, 784 pixels in [0, 1] each. */
interface MnistDigit {
  readonly length: number;
  /** Samples `start` to `end`, both included. */
  range(start: number, end: number): number[][];
}

// steps

/**
 * Imports `n_train` training and `n_test` test digits from the `mnist` package, the same
 * ones every time: the first samples of each digit for training, the next ones for testing.
 * Images are 8-bit grey levels, 784 per image, one image after another; labels are digits.
 *
 * The sizes are parameters, not constants read from the module, because the cache key
 * covers a step's parameters and its own source, not the values of outer variables.
 */
export const importerMnist = step(function importer_mnist({ n_train, n_test }: { n_train: number; n_test: number }) {
  const mnist = require('mnist') as readonly MnistDigit[];
  const pixels = 784;
  const perTrain = Math.floor(n_train / 10);
  const perTest = Math.floor(n_test / 10);
  const X_train = new Uint8Array(perTrain * 10 * pixels);
  const y_train = new Uint8Array(perTrain * 10);
  const X_test = new Uint8Array(perTest * 10 * pixels);
  const y_test = new Uint8Array(perTest * 10);
  const copy = (images: number[][], digit: number, X: Uint8Array, y: Uint8Array, at: number) => {
    images.forEach((image, k) => {
      if (image.length !== pixels) throw new Error(`digit ${digit}: an image has ${image.length} pixels, expected ${pixels}`);
      X.set(image.map((v) => Math.round(v * 255)), (at + k) * pixels);
      y[at + k] = digit;
    });
  };
  for (let digit = 0; digit < 10; digit++) {
    const samples = mnist[digit];
    if (samples === undefined || samples.length < perTrain + perTest) throw new Error(`the mnist package has too few samples of digit ${digit}`);
    copy(samples.range(0, perTrain - 1), digit, X_train, y_train, digit * perTrain);
    copy(samples.range(perTrain, perTrain + perTest - 1), digit, X_test, y_test, digit * perTest);
  }
  return { X_train, y_train, X_test, y_test };
}).outputs({ X_train: 'auto', y_train: 'auto', X_test: 'auto', y_test: 'auto' });

/**
 * Scales pixels into [0, 1], then centers them: subtracts each pixel's mean over the
 * training images (from the test images too, so both are centered the same way).
 */
export const normalizer = step(function normalizer({ X_train, X_test }: { X_train: Uint8Array; X_test: Uint8Array }) {
  const pixels = 784;
  const n = X_train.length / pixels;
  const mean = new Float64Array(pixels);
  for (let j = 0; j < pixels; j++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += X_train[i * pixels + j] as number;
    mean[j] = sum / 255 / n;
  }
  const center = (X: Uint8Array) => Float64Array.from(X, (v, i) => v / 255 - (mean[i % pixels] as number));
  return { X_train: center(X_train), X_test: center(X_test) };
}).outputs({ X_train: 'auto', X_test: 'auto' });

/**
 * Trains a multinomial logistic regression (softmax over ten digits) with mini-batch SGD
 * for `epochs` epochs: batches of 10, a learning rate of 0.5 / epoch number, weights starting
 * at zero, and a seeded shuffle (seed 42) each epoch, so the result depends only on the
 * inputs and `epochs`.
 * Returns the weights: for each digit, 784 pixel weights and then a bias.
 */
export const trainer = step(function trainer({ X_train, y_train, epochs }: { X_train: Float64Array; y_train: Uint8Array; epochs: number }) {
  const pixels = 784;
  const classes = 10;
  const batchSize = 10;
  const learningRate = 0.5;
  const row = pixels + 1;
  const n = y_train.length;

  // mulberry32: a tiny seeded generator of floats in [0, 1)
  let state = 42;
  const random = (): number => {
    state = (state + 0x6d2b79f5) | 0;
    let r = Math.imul(state ^ (state >>> 15), 1 | state);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };

  const weights = new Float64Array(classes * row);
  const gradient = new Float64Array(classes * row);
  const p = new Float64Array(classes);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let epoch = 0; epoch < epochs; epoch++) {
    const rate = learningRate / (1 + epoch);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    for (let start = 0; start < n; start += batchSize) {
      const end = Math.min(n, start + batchSize);
      gradient.fill(0);
      for (let b = start; b < end; b++) {
        const i = order[b] as number;
        const x = X_train.subarray(i * pixels, (i + 1) * pixels);
        // softmax of the scores
        let max = -Infinity;
        for (let k = 0; k < classes; k++) {
          let score = weights[k * row + pixels] as number;
          for (let j = 0; j < pixels; j++) score += (weights[k * row + j] as number) * (x[j] as number);
          p[k] = score;
          if (score > max) max = score;
        }
        let sum = 0;
        for (let k = 0; k < classes; k++) sum += p[k] = Math.exp((p[k] as number) - max);
        // gradient of the cross-entropy: (p - onehot(y)) x
        for (let k = 0; k < classes; k++) {
          const d = (p[k] as number) / sum - (k === y_train[i] ? 1 : 0);
          const g = gradient.subarray(k * row, (k + 1) * row);
          for (let j = 0; j < pixels; j++) g[j] = (g[j] as number) + d * (x[j] as number);
          g[pixels] = (g[pixels] as number) + d;
        }
      }
      const scale = rate / (end - start);
      for (let w = 0; w < weights.length; w++) weights[w] = (weights[w] as number) - scale * (gradient[w] as number);
    }
  }
  return weights;
});

/** The share of test digits the model classifies correctly; prints it too. */
export const evaluator = step(function evaluator({ X_test, y_test, model }: { X_test: Float64Array; y_test: Uint8Array; model: Float64Array }) {
  const pixels = 784;
  const row = pixels + 1;
  let correct = 0;
  for (let i = 0; i < y_test.length; i++) {
    let best = -1;
    let bestScore = -Infinity;
    for (let k = 0; k < 10; k++) {
      let score = model[k * row + pixels] as number;
      for (let j = 0; j < pixels; j++) score += (model[k * row + j] as number) * (X_test[i * pixels + j] as number);
      if (score > bestScore) [best, bestScore] = [k, score];
    }
    if (best === y_test[i]) correct++;
  }
  const accuracy = correct / y_test.length;
  console.log(`Test accuracy: ${accuracy}`);
  return accuracy;
});

// the pipeline

/**
 * `mnist_pipeline`: importer, normalizer, trainer, evaluator. Its parameter is the number
 * of training `epochs` (default 1); its outputs are the trained weights and the test accuracy.
 *
 * @example
 * const run = await createRunner().run(mnistPipeline, { epochs: 2 });
 * await run.output('accuracy');
 */
export const mnistPipeline = pipeline('mnist_pipeline', (p, { epochs = 1 }: { epochs?: number }) => {
  const { X_train: raw_train, y_train, X_test: raw_test, y_test } = p.call(importerMnist, { n_train: N_TRAIN, n_test: N_TEST });
  const { X_train, X_test } = p.call(normalizer, { X_train: raw_train, X_test: raw_test });
  const model = p.call(trainer, { X_train, y_train, epochs });
  const accuracy = p.call(evaluator, { X_test, y_test, model });
  return { model, accuracy };
});

/** A finished run of `mnist_pipeline`. */
export type MnistRun = Run<PipelineOutputValues<typeof mnistPipeline>>;

// timing

/**
 * Seconds each step of a run took, cached steps included (for them: the time to find the
 * cache entry and check its artifacts), from the run record.
 *
 * @example
 * stepSeconds(run); // { importer_mnist: 0.41, normalizer: 0.02, ... }
 */
export const stepSeconds = (run: MnistRun): Record<string, number> =>
  Object.fromEntries(Object.values(run.steps).map((s) => [s.name, s.durationMs / 1000]));

/**
 * The blog's table: each step's time in both runs and, for a step the second run served
 * from the cache, how many times faster that was (`-` for a step that ran both times).
 */
export const timingTable = (steps: readonly string[], run1: Readonly<Record<string, number>>, run2: Readonly<Record<string, number>>, cachedInRun2: ReadonlySet<string>): string => {
  const header = ['Step', 'Run1 Execution (s)', 'Run2 Execution (s)', 'Speed Increase'];
  const rows = steps.map((name) => {
    const a = run1[name];
    const b = run2[name];
    const speedUp = cachedInRun2.has(name) && a !== undefined && b !== undefined && b > 0 ? `${Math.round(a / b)}x` : '-';
    return [name, a === undefined ? '?' : a.toFixed(4), b === undefined ? '?' : b.toFixed(4), speedUp];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] as number)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
};

// the script

/** Where {@link main} keeps its store and sends the runner's log lines. */
export interface MnistOptions {
  /**
   * The parent of the demo's store, which is its `mnist-demo` subfolder.
   * @default process.env.STEPCACHE_DIR ?? './.stepcache'
   */
  readonly dir?: string;
  /** The runner's logger. @default consoleLogger */
  readonly logger?: Logger;
}

/** What {@link main} did: both runs, each step's seconds in each run, and the table. */
export interface MnistResult {
  readonly runs: readonly [MnistRun, MnistRun];
  readonly seconds: readonly [Record<string, number>, Record<string, number>];
  readonly accuracies: readonly [number, number];
  readonly table: string;
}

/**
 * The walkthrough: runs `mnist_pipeline` with 1 epoch, then with 2 (a changed trainer:
 * the trainer and the evaluator run again, the importer and the normalizer come from the
 * cache), then prints the table of step times.
 */
export async function main(options: MnistOptions = {}): Promise<MnistResult> {
  // The demo's point is that run 1 executes every step, which is only true on an empty
  // store: so it keeps its own store in the `mnist-demo` subfolder and empties it first.
  const dir = path.join(options.dir ?? process.env['STEPCACHE_DIR'] ?? '.stepcache', 'mnist-demo');
  fs.rmSync(dir, { recursive: true, force: true });
  const runner = createRunner({ dir, logger: options.logger ?? consoleLogger });
  try {
    const runAndReport = async (label: string, epochs: number) => {
      console.log(`\n${label}: mnist_pipeline with epochs: ${epochs}`);
      const run = await runner.run(mnistPipeline, { epochs });
      const seconds = stepSeconds(run);
      for (const s of Object.values(run.steps)) console.log(`  ${s.name}: ${s.status}`);
      const accuracy = await run.output('accuracy');
      return { run, seconds, accuracy };
    };
    const first = await runAndReport('Run 1', 1);
    // The blog changes the trainer's code so that it trains for two epochs; here epochs is
    // a parameter of the trainer, and changing it invalidates the trainer's cache the same way.
    const second = await runAndReport('Run 2', 2);

    const steps = Object.keys(first.run.steps);
    const cached = new Set(Object.values(second.run.steps).filter((s) => s.status === 'cached').map((s) => s.name));
    const table = timingTable(steps, first.seconds, second.seconds, cached);
    console.log(`\n${table}`);
    return {
      runs: [first.run, second.run],
      seconds: [first.seconds, second.seconds],
      accuracies: [first.accuracy, second.accuracy],
      table,
    };
  } finally {
    await runner.close();
  }
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
