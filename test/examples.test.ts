/**
 * The examples run end to end: their scripts' caching behaviour, their models and their
 * command-line entry points.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { createRunner, silentLogger, type RunRecord } from '../src';
import * as iris from '../examples/iris';
import * as mnist from '../examples/mnist';
import { collectingLogger, removeDir, tempDir } from './support/fixtures';

let dir: string;
let log: jest.SpyInstance;

beforeEach(() => {
  dir = tempDir('stepcache-examples-');
  log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
});
afterEach(() => {
  jest.restoreAllMocks();
  removeDir(dir);
});

/** Everything the examples printed with console.log, one entry per call. */
const printed = (): string[] => log.mock.calls.map((args: unknown[]) => args.map(String).join(' '));

/** The numbers printed after a prefix such as `Train accuracy: `. */
const printedNumbers = (prefix: string): number[] => printed().filter((l) => l.startsWith(prefix)).map((l) => Number(l.slice(prefix.length)));

const statuses = (run: RunRecord): Record<string, string> => Object.fromEntries(Object.values(run.steps).map((s) => [s.name, s.status]));

const accuracy = (predicted: readonly number[], actual: readonly number[]): number =>
  predicted.filter((label, i) => label === actual[i]).length / actual.length;

describe('examples/iris.ts', () => {
  it('prints the reason of every miss', async () => {
    const log = collectingLogger();
    const spy = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      const runs = await iris.main({ dir, logger: log });
      const executed = runs.flatMap((run) => Object.values(run.steps).filter((s) => s.status === 'executed').map((s) => s.name));
      const reasonLines = log.lines.filter((l) => / (re-)?running because /.test(l));
      // one reason line per executed step, in order, each naming its step
      expect(reasonLines.map((l) => l.split(':')[0])).toEqual(executed);
      expect(reasonLines).toEqual([
        'training_data_loader: running because it was never cached before',
        'svc_trainer: running because it was never cached before',
        'svc_trainer: re-running because parameter gamma changed (0.002 -> 0.0001)',
        'svc_trainer: re-running because caching is disabled by the step settings',
        'training_data_loader: re-running because caching is disabled by the runtime options',
        'svc_trainer: re-running because caching is disabled by the runtime options',
      ]);
    } finally {
      spy.mockRestore();
    }
  });

  it('runs the guide\'s four runs with the statuses the guide describes', async () => {
    const runs = await iris.main({ dir, logger: silentLogger });

    expect(runs.map(statuses)).toEqual([
      { training_data_loader: 'executed', svc_trainer: 'executed' },
      { training_data_loader: 'cached', svc_trainer: 'executed' },
      { training_data_loader: 'cached', svc_trainer: 'executed' },
      { training_data_loader: 'executed', svc_trainer: 'executed' },
    ]);
    // and for the reasons the guide gives
    expect(runs[1]?.steps['svc_trainer']?.reason).toBe('parameter gamma changed (0.002 -> 0.0001)');
    expect(runs[2]?.steps['svc_trainer']?.reason).toBe('caching is disabled by the step settings');
    expect(runs[3]?.steps['training_data_loader']?.reason).toBe('caching is disabled by the runtime options');
    expect(runs[3]?.steps['svc_trainer']?.reason).toBe('caching is disabled by the runtime options');
    expect(runs.map((r) => r.parameters)).toEqual([{}, { gamma: 0.0001 }, {}, {}]);
  });

  it('prints each training accuracy, a number in [0, 1] equal to the training_acc output', async () => {
    const runs = await iris.main({ dir, logger: silentLogger });

    const accuracies = printedNumbers('Train accuracy: ');
    expect(accuracies).toHaveLength(4);
    for (const acc of accuracies) {
      expect(acc).toBeGreaterThanOrEqual(0);
      expect(acc).toBeLessThanOrEqual(1);
    }
    expect(await Promise.all(runs.map((r) => r.output('training_acc')))).toEqual(accuracies);
    // same gamma (0.002) in runs 1, 3 and 4: the same, deterministic model; gamma 0.0001 in run 2: another one
    expect(accuracies[2]).toBe(accuracies[0]);
    expect(accuracies[3]).toBe(accuracies[0]);
    expect(accuracies[1]).not.toBe(accuracies[0]);
    // the summary lines
    expect(printed()).toEqual(expect.arrayContaining(['  training_data_loader: cached', '  svc_trainer: executed']));
  });

  it('splits iris 120/30 with numeric labels, the same way every time', async () => {
    const [first] = await iris.main({ dir, logger: silentLogger });
    const X_test = await first!.output('X_test');
    const y_test = await first!.output('y_test');
    expect(X_test).toHaveLength(30);
    expect(y_test).toHaveLength(30);
    expect(X_test.every((row) => row.length === 4)).toBe(true);
    expect(new Set(y_test)).toEqual(new Set([0, 1, 2]));

    const again = await iris.trainingDataLoader.fn({} as never);
    expect(again.X_test).toEqual(X_test);
    expect(again.y_train).toHaveLength(120);
  });

  it('stores the trained model through the codec: a cached run loads it back and it predicts', async () => {
    const runs = await iris.main({ dir, logger: silentLogger });
    const runner = createRunner({ dir, logger: silentLogger });
    try {
      const cached = await runner.run(iris.trainingPipeline);
      expect(statuses(cached)).toEqual({ training_data_loader: 'cached', svc_trainer: 'cached' });
      // A cached step's record says where it came from; that run's record holds its outputs.
      const trained = await runner.getRun(cached.steps['svc_trainer']?.cachedFrom as string);
      expect(trained?.steps['svc_trainer']?.outputs?.['trained_model']?.format).toBe('codec:LibsvmModel');

      // loaded from the store with SVM.load, not the object the trainer made
      const model = await cached.output('trained_model');
      const trainedInRun1 = await runs[0]!.output('trained_model');
      expect(model).not.toBe(trainedInRun1);
      expect(model.serializeModel()).toBe(trainedInRun1.serializeModel());

      const X_test = await cached.output('X_test');
      const y_test = await cached.output('y_test');
      const predicted = model.predict(X_test);
      expect(predicted).toEqual(trainedInRun1.predict(X_test));
      expect(accuracy(predicted, y_test)).toBeGreaterThan(0.5);

      // it reproduces the recorded training accuracy
      const { X_train, y_train } = await iris.trainingDataLoader.fn({} as never);
      expect(accuracy(model.predict(X_train), y_train)).toBe(await cached.output('training_acc'));
    } finally {
      await runner.close();
    }
  });

  it('has a codec that rejects what is not a model libsvm can read', async () => {
    expect(E.isLeft(iris.svmCodec.decode(42))).toBe(true);
    expect(E.isLeft(iris.svmCodec.decode(null))).toBe(true);

    // libsvm reports a model it cannot read on stderr, through its emscripten module's printErr
    const libsvm = require('libsvm-js/out/asm/libsvm') as { printErr: (message: string) => void };
    const original = libsvm.printErr;
    const complaints: string[] = [];
    libsvm.printErr = (message) => void complaints.push(message);
    try {
      expect(E.isLeft(iris.svmCodec.decode(''))).toBe(true);
      expect(E.isLeft(iris.svmCodec.decode('not a model'))).toBe(true);
      expect(E.isLeft(iris.svmCodec.decode('svm_type c_svc\nkernel_type rbf\n'))).toBe(true);
    } finally {
      libsvm.printErr = original;
    }
    expect(complaints).toContain('ERROR: fscanf failed to read model');

    const { X_train, y_train } = await iris.trainingDataLoader.fn({} as never);
    const model = new iris.SVM({ type: iris.SVM.SVM_TYPES.C_SVC, kernel: iris.SVM.KERNEL_TYPES.RBF, gamma: 0.1, cost: 1, quiet: true });
    model.train(X_train, y_train);
    const decoded = iris.svmCodec.decode(iris.svmCodec.encode(model));
    if (E.isLeft(decoded)) throw new Error('a serialized model did not decode');
    expect(iris.svmCodec.is(decoded.right)).toBe(true);
    expect(decoded.right.predict(X_train)).toEqual(model.predict(X_train));
  });
});

describe('examples/mnist.ts', () => {
  it('executes everything, then re-runs only the trainer and the evaluator for two epochs', async () => {
    const result = await mnist.main({ dir, logger: silentLogger });

    expect(result.runs.map(statuses)).toEqual([
      { importer_mnist: 'executed', normalizer: 'executed', trainer: 'executed', evaluator: 'executed' },
      { importer_mnist: 'cached', normalizer: 'cached', trainer: 'executed', evaluator: 'executed' },
    ]);
    expect(result.runs.map((r) => r.parameters)).toEqual([{ epochs: 1 }, { epochs: 2 }]);

    const [afterOne, afterTwo] = result.accuracies;
    for (const acc of [afterOne, afterTwo]) {
      expect(acc).toBeGreaterThanOrEqual(0);
      expect(acc).toBeLessThanOrEqual(1);
    }
    expect(afterTwo).toBeGreaterThan(0.3); // chance is 0.1
    expect(printedNumbers('Test accuracy: ')).toEqual([afterOne, afterTwo]);

    const model = await result.runs[1].output('model');
    expect(model).toBeInstanceOf(Float64Array);
    expect(model).toHaveLength(10 * (mnist.PIXELS + 1));
  });

  it('times every step in both runs and prints the blog\'s table', async () => {
    const result = await mnist.main({ dir, logger: silentLogger });
    const steps = ['importer_mnist', 'normalizer', 'trainer', 'evaluator'];
    for (const seconds of result.seconds) {
      expect(Object.keys(seconds).sort()).toEqual([...steps].sort());
      for (const s of Object.values(seconds)) expect(s).toBeGreaterThan(0);
    }
    // the seconds come from the run records: a cached step's duration is its lookup
    expect(result.seconds[1]['importer_mnist']).toBe((result.runs[1].steps['importer_mnist']?.durationMs as number) / 1000);
    expect(result.seconds[1]['importer_mnist']).toBeLessThan(result.seconds[0]['importer_mnist'] as number);

    const lines = result.table.split('\n');
    expect(lines[0]).toMatch(/^Step\s+Run1 Execution \(s\)\s+Run2 Execution \(s\)\s+Speed Increase$/);
    const speedUp = (name: string) => lines.find((l) => l.startsWith(`${name} `))?.trim().split(/\s+/)[3];
    expect(speedUp('importer_mnist')).toMatch(/^\d+x$/);
    expect(speedUp('normalizer')).toMatch(/^\d+x$/);
    expect(speedUp('trainer')).toBe('-');
    expect(speedUp('evaluator')).toBe('-');
    expect(printed()).toContain(`\n${result.table}`);
  });

  it('starts from an empty demo store each time, so run 1 always executes everything', async () => {
    await mnist.main({ dir, logger: silentLogger });
    const again = await mnist.main({ dir, logger: silentLogger });
    expect(Object.values(again.runs[0].steps).map((s) => s.status)).toEqual(['executed', 'executed', 'executed', 'executed']);
  });
});

describe('the examples as scripts', () => {
  const script = (file: string) =>
    spawnSync(process.execPath, [require.resolve('tsx/cli'), path.join(__dirname, '..', 'examples', file)], {
      env: { ...process.env, STEPCACHE_DIR: dir },
      encoding: 'utf8',
      timeout: 60_000,
    });

  it('iris.ts runs with `tsx` and exits with 0', () => {
    const { status, stdout } = script('iris.ts');
    expect(status).toBe(0);
    expect(stdout).toContain('First step cached, second not due to parameter change');
    expect(stdout).toContain('Using cached version of training_data_loader.');
    expect(stdout).toMatch(/^Train accuracy: 0\.\d+$/m);
  });

  it('mnist.ts runs with `tsx`, exits with 0 and keeps its store in the mnist-demo subfolder', () => {
    const { status, stdout } = script('mnist.ts');
    expect(status).toBe(0);
    expect(stdout).toContain('Using cached version of normalizer.');
    expect(stdout).toMatch(/^importer_mnist\s+\d+\.\d+\s+\d+\.\d+\s+\d+x$/m);
    expect(fs.existsSync(path.join(dir, 'mnist-demo', 'metadata.sqlite'))).toBe(true);
  });
});
