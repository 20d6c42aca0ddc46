import * as fs from 'node:fs';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import * as t from 'io-ts';
import Keyv from 'keyv';
import { applyRunConfig, createFileStepLock, createRunner, pipeline, readRunConfig, step, silentLogger, StepcacheError, type AnyStep, type Runner } from '../src';
import { collectingLogger, countingArtifactStore, filesBelow, filesOnly, removeDir, tempDir } from './support/fixtures';
import { runEvent, type RunEvent, type RunEventBody } from '../src/runner/events';
import { logLineOf } from '../src/runner/logger';
import type { ExecutionRequest, ExecutionResult, Executor } from '../src/runner/executor';
import { inProcessExecutor } from '../src/runner/in-process-executor';

let dir: string;
const runners: Runner[] = [];
const runnerFor = (options: Parameters<typeof createRunner>[0] = {}): Runner => {
  const r = createRunner({ dir, logger: silentLogger, ...options });
  runners.push(r);
  return r;
};
/** A runner whose outputs, tiny as they are, are all files (none kept inside its entry): for tests about artifact files. */
const fileRunnerFor = (options: Parameters<typeof createRunner>[0] = {}): Runner => runnerFor({ artifacts: filesOnly(dir), ...options });

beforeEach(() => {
  dir = tempDir();
});
afterEach(async () => {
  await Promise.all(runners.splice(0).map((r) => r.close()));
  removeDir(dir);
});

// a two-step pipeline in the shape of the seed

const calls = { loader: 0, trainer: 0 };
const loader = step(function training_data_loader() {
  calls.loader++;
  return { X_train: [[1, 2], [3, 4]], y_train: [0, 1] };
}).outputs({ X_train: 'auto', y_train: 'auto' });
const trainer = step(function svc_trainer({ X_train, y_train, gamma }: { X_train: number[][]; y_train: number[]; gamma: number }) {
  calls.trainer++;
  return { weights: X_train.map((row, i) => row.map((v) => v * gamma + (y_train[i] ?? 0))) };
});
const makePipeline = (tr = trainer, defaults = {}) =>
  pipeline(
    'training_pipeline',
    (p, { gamma = 0.002 }: { gamma?: number }) => {
      const { X_train, y_train } = p.call(loader);
      return { model: p.call(tr, { X_train, y_train, gamma }) };
    },
    defaults,
  );

beforeEach(() => {
  calls.loader = 0;
  calls.trainer = 0;
});

describe('caching across runs', () => {
  it('executes every step on the first run and serves all of them from cache on the second', async () => {
    const log = collectingLogger();
    const runner = runnerFor({ logger: log });
    const first = await runner.run(makePipeline(), { gamma: 0.002 });
    expect(first.steps.training_data_loader?.status).toBe('executed');
    expect(first.steps.svc_trainer?.status).toBe('executed');
    log.clear();
    const second = await runner.run(makePipeline(), { gamma: 0.002 });
    expect(second.steps.training_data_loader?.status).toBe('cached');
    expect(second.steps.svc_trainer?.status).toBe('cached');
    expect(calls).toEqual({ loader: 1, trainer: 1 });
    expect(await second.output('model')).toEqual({ weights: [[0.002, 0.004], [1.006, 1.008]] });
    expect(log.lines).toEqual(
      expect.arrayContaining([
        'Step training_data_loader has started.',
        'Using cached version of training_data_loader.',
        'Step svc_trainer has started.',
        'Using cached version of svc_trainer.',
      ]),
    );
  });

  it('logs the seed lines in order, with durations in seconds', async () => {
    const log = collectingLogger();
    const runner = runnerFor({ logger: log });
    await runner.run(makePipeline());
    await runner.run(makePipeline(), { gamma: 0.5 });
    const trainerLines = log.lines.filter((l) => l.includes('svc_trainer') || l.includes('training_data_loader'));
    expect(trainerLines.slice(-5)).toEqual([
      'Step training_data_loader has started.',
      'Using cached version of training_data_loader.',
      'Step svc_trainer has started.',
      'svc_trainer: re-running because parameter gamma changed (0.002 -> 0.5)',
      expect.stringMatching(/^Step svc_trainer has finished in \d+\.\d{3}s\.$/),
    ]);
  });

  it('re-runs only the step whose parameter changed', async () => {
    const runner = runnerFor();
    await runner.run(makePipeline(), { gamma: 0.002 });
    const changed = await runner.run(makePipeline(), { gamma: 0.0001 });
    expect(changed.steps.training_data_loader?.status).toBe('cached');
    expect(changed.steps.svc_trainer?.status).toBe('executed');
    expect(calls).toEqual({ loader: 1, trainer: 2 });
    const back = await runner.run(makePipeline(), { gamma: 0.002 });
    expect(back.steps.svc_trainer?.status).toBe('cached');
  });

  it('re-runs a step whose code changed, under the same name', async () => {
    const runner = runnerFor();
    await runner.run(makePipeline());
    const edited = step(function svc_trainer({ X_train, gamma }: { X_train: number[][]; y_train: number[]; gamma: number }) {
      return { weights: X_train.map((row) => row.map((v) => v * gamma * 2)) };
    });
    const run = await runner.run(makePipeline(edited));
    expect(run.steps.training_data_loader?.status).toBe('cached');
    expect(run.steps.svc_trainer?.status).toBe('executed');
    expect(await run.output('model')).toEqual({ weights: [[0.004, 0.008], [0.012, 0.016]] });
  });

  it('keeps downstream steps cached when an upstream step re-executes with byte-identical outputs', async () => {
    const runner = runnerFor();
    await runner.run(makePipeline());
    const uncachedLoader = loader.withOptions({ enableCache: false });
    const p = pipeline('training_pipeline', (p) => {
      const { X_train, y_train } = p.call(uncachedLoader);
      return { model: p.call(trainer, { X_train, y_train, gamma: 0.002 }) };
    });
    const run = await runner.run(p);
    expect(run.steps.training_data_loader?.status).toBe('executed');
    expect(run.steps.svc_trainer?.status).toBe('cached');
    expect(calls).toEqual({ loader: 2, trainer: 1 });
  });

  it('re-runs downstream steps when an upstream output changes', async () => {
    const runner = runnerFor();
    let offset = 0;
    const source = step(function source() {
      return [offset];
    }).withOptions({ enableCache: false });
    const sink = step(function sink({ xs }: { xs: number[] }) {
      return xs[0];
    });
    const p = pipeline('changing', (p) => ({ y: p.call(sink, { xs: p.call(source) }) }));
    await runner.run(p);
    offset = 1;
    const run = await runner.run(p);
    expect(run.steps.sink?.status).toBe('executed');
    expect(await run.output('y')).toBe(1);
  });

  it('shares the cache between runner instances on the same store directory', async () => {
    await runnerFor().run(makePipeline());
    await runners[0]?.close();
    const again = await runnerFor().run(makePipeline());
    expect(again.steps.svc_trainer?.status).toBe('cached');
  });

  it('executes a step whose cached artifact file disappeared', async () => {
    const runner = fileRunnerFor();
    const first = await runner.run(makePipeline());
    const id = first.steps.svc_trainer?.outputs?.['output']?.id as string;
    fs.rmSync(path.join(dir, 'artifacts', id.slice(0, 2), id));
    const run = await runner.run(makePipeline());
    expect(run.steps.training_data_loader?.status).toBe('cached');
    expect(run.steps.svc_trainer?.status).toBe('executed');
    expect(await run.output('model')).toEqual({ weights: [[0.002, 0.004], [1.006, 1.008]] });
  });
});

describe('settings precedence in real runs', () => {
  it('a step setting turns caching off for that step only', async () => {
    const runner = runnerFor();
    await runner.run(makePipeline());
    const run = await runner.run(makePipeline(trainer.withOptions({ enableCache: false })));
    expect(run.steps.training_data_loader?.status).toBe('cached');
    expect(run.steps.svc_trainer?.status).toBe('executed');
    expect(run.steps.svc_trainer?.reason).toBe('caching is disabled by the step settings');
  });

  it('a step setting beats the pipeline default', async () => {
    const runner = runnerFor();
    const p = makePipeline(trainer.withOptions({ enableCache: true }), { enableCache: false });
    await runner.run(p);
    const run = await runner.run(p);
    expect(run.steps.training_data_loader?.status).toBe('executed');
    expect(run.steps.svc_trainer?.status).toBe('cached');
  });

  it('the runtime withOptions on the pipeline beats every step setting', async () => {
    const runner = runnerFor();
    const p = makePipeline(trainer.withOptions({ enableCache: true }));
    await runner.run(p);
    const run = await runner.run(p.withOptions({ enableCache: false }));
    expect(run.steps.training_data_loader?.status).toBe('executed');
    expect(run.steps.svc_trainer?.status).toBe('executed');
    expect(run.steps.svc_trainer?.reason).toBe('caching is disabled by the runtime options');
  });
});

describe('failures', () => {
  const makeFailing = (shouldFail: { value: boolean }) => {
    const a = step(function a() {
      return 1;
    });
    const b = step(function b({ x }: { x: number }) {
      if (shouldFail.value) throw new Error('division by zero');
      return x + 1;
    });
    const c = step(function c({ y }: { y: number }) {
      return y * 10;
    });
    const independent = step(function independent() {
      return 'ok';
    });
    return pipeline('failing', (p) => {
      const x = p.call(a);
      const y = p.call(b, { x });
      return { z: p.call(c, { y }), w: p.call(independent) };
    });
  };

  it('fails the run naming the step, skips downstream steps, keeps what completed, and resumes from cache', async () => {
    const shouldFail = { value: true };
    const log = collectingLogger();
    const runner = runnerFor({ logger: log });
    const error = await runner.run(makeFailing(shouldFail)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StepcacheError);
    const e = error as StepcacheError;
    expect(e.code).toBe('STEP_FAILED');
    expect(e.step).toBe('b');
    expect(e.message).toContain('Step b failed: division by zero');
    expect((e.cause as Error).message).toBe('division by zero');
    expect(e.run?.status).toBe('failed');
    expect(e.run?.steps['a']?.status).toBe('executed');
    expect(e.run?.steps['b']?.status).toBe('failed');
    expect(e.run?.steps['b']?.error).toContain('division by zero');
    expect(e.run?.steps['c']?.status).toBe('skipped');
    expect(e.run?.steps['independent']?.status).toBe('executed');
    expect(log.lines).toContain('Step c was skipped because b did not complete.');
    const recorded = await runner.getRun(e.run?.id as string);
    expect(recorded?.status).toBe('failed');

    shouldFail.value = false;
    const resumed = await runner.run(makeFailing(shouldFail));
    expect(resumed.steps['a']?.status).toBe('cached');
    expect(resumed.steps['independent']?.status).toBe('cached');
    expect(resumed.steps['b']?.status).toBe('executed');
    expect(resumed.steps['c']?.status).toBe('executed');
    expect(await resumed.output('z')).toBe(20);
  });

  it('settles with a typed error naming the step when a store call throws while a step is resolved', async () => {
    const shouldFail = { value: false };
    await fileRunnerFor().run(makeFailing(shouldFail));
    const store = countingArtifactStore(path.join(dir, 'artifacts'));
    const broken = { ...store, present: () => Promise.reject(new Error('connection reset by peer')) };
    const error = await runnerFor({ artifacts: broken }).run(makeFailing(shouldFail)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StepcacheError);
    const e = error as StepcacheError;
    expect(e.code).toBe('STORE_UNAVAILABLE');
    expect(e.step).toBe('a');
    expect(e.message).toContain('connection reset by peer');
    expect(e.run?.steps['a']?.status).toBe('failed');
    expect(e.run?.steps['c']?.status).toBe('skipped');
  });

  it('fails with a clear error when a step does not return its declared outputs', async () => {
    const bad = step(function bad() {
      return { a: 1 } as { a: number; b: number };
    }).outputs({ a: 'auto', b: 'auto' });
    const error = await runnerFor()
      .run(pipeline('bad_outputs', (p) => void p.call(bad)))
      .catch((e: StepcacheError) => e);
    expect(error).toBeInstanceOf(StepcacheError);
    expect((error as StepcacheError).message).toBe('Step bad declares output b but did not return it.');
    expect((error as StepcacheError).field).toBe('b');
  });

  it('refuses an output that cannot be stored faithfully, naming the step, output and path', async () => {
    const nan = step(function make_stats() {
      return { mean: [1, NaN] };
    });
    const error = (await runnerFor()
      .run(pipeline('nan', (p) => void p.call(nan)))
      .catch((e: unknown) => e)) as StepcacheError;
    expect(error.code).toBe('UNENCODABLE_VALUE');
    expect(error.step).toBe('make_stats');
    expect(error.message).toMatch(/^The output of step make_stats at \.mean\[1\] cannot be stored: it is NaN/);
  });

  it('refuses a parameter that cannot be part of a key, naming the step and field', async () => {
    const s = step(function uses_callback({ f }: { f: () => number }) {
      return f();
    });
    const error = (await runnerFor()
      .run(pipeline('callback', (p) => void p.call(s, { f: () => 1 })))
      .catch((e: unknown) => e)) as StepcacheError;
    expect(error.code).toBe('UNENCODABLE_VALUE');
    expect(error.field).toBe('f');
    expect(error.message).toContain('Parameter f of step uses_callback cannot be part of a cache key: it is a function');
  });

  it('rejects an invalid pipeline before anything runs or is recorded', async () => {
    const runner = runnerFor();
    const twice = pipeline('twice', (p) => {
      p.call(loader);
      p.call(loader);
    });
    await expect(runner.run(twice)).rejects.toMatchObject({ code: 'INVALID_PIPELINE', step: 'training_data_loader' });
    expect(calls.loader).toBe(0);
    expect(await runner.listRuns()).toEqual([]);
  });

  it('rejects a request for an output the pipeline does not have', async () => {
    const run = await runnerFor().run(makePipeline());
    await expect(run.output('nope' as 'model')).rejects.toMatchObject({ code: 'UNKNOWN_OUTPUT', message: expect.stringContaining('its outputs are: model') });
  });

  it('offers a TaskEither for fp-ts users', async () => {
    const runner = runnerFor();
    const ok = await runner.runTask(makePipeline(), { gamma: 1 })();
    expect(E.isRight(ok) && ok.right.steps.svc_trainer?.status).toBe('executed');
    const bad = await runner.runTask(pipeline('bad', (p) => void p.call(step((_: {}) => 1)))) ();
    expect(E.isLeft(bad) && bad.left.code).toBe('INVALID_PIPELINE');
  });
});

describe('artifacts', () => {
  it('does not read a cached step\'s artifacts unless an executing step or the caller needs them', async () => {
    const artifacts = countingArtifactStore(path.join(dir, 'artifacts'));
    const runner = runnerFor({ artifacts });
    await runner.run(makePipeline());
    expect(artifacts.gets).toEqual([]); // executed values are handed over in memory
    const cached = await runner.run(makePipeline());
    expect(artifacts.gets).toEqual([]);
    await cached.output('model');
    expect(artifacts.gets).toHaveLength(1);
    artifacts.gets.length = 0;
    await runner.run(makePipeline(), { gamma: 3 }); // the trainer executes: it needs the loader's two outputs
    expect(artifacts.gets).toHaveLength(2);
  });

  it('stores typed arrays as raw bytes and JSON values as JSON', async () => {
    const s = step(function make_arrays() {
      return { big: new Float64Array([1.5, -0, NaN, Infinity]), labels: new Uint8Array([1, 2, 3]), meta: { n: 4 } };
    }).outputs({ big: 'auto', labels: 'auto', meta: 'auto' });
    const p = pipeline('arrays', (p) => p.call(s));
    const runner = fileRunnerFor();
    const run = await runner.run(p);
    const outputs = run.steps.make_arrays?.outputs ?? {};
    expect(outputs['big']).toMatchObject({ kind: 'bytes', dtype: 'Float64Array', size: 32 });
    expect(outputs['labels']).toMatchObject({ kind: 'bytes', dtype: 'Uint8Array', size: 3 });
    expect(outputs['meta']).toMatchObject({ kind: 'json' });
    const bigFile = path.join(dir, 'artifacts', outputs['big']!.id.slice(0, 2), outputs['big']!.id);
    expect(fs.readFileSync(bigFile)).toEqual(Buffer.from(new Float64Array([1.5, -0, NaN, Infinity]).buffer));
    const again = await runner.run(p);
    expect(again.steps.make_arrays?.status).toBe('cached');
    const big = await again.output('big');
    expect(big).toBeInstanceOf(Float64Array);
    expect(Array.from(big)).toEqual([1.5, -0, NaN, Infinity]);
    expect(Object.is(big[1], -0)).toBe(true);
    expect(await again.output('labels')).toEqual(new Uint8Array([1, 2, 3]));
  });

  it('writes artifacts atomically under content-hash names and leaves no temporary files', async () => {
    await fileRunnerFor().run(makePipeline());
    const files = filesBelow(path.join(dir, 'artifacts'));
    expect(files.length).toBe(3);
    for (const f of files) expect(path.basename(f)).toMatch(/^[0-9a-f]{32}$/);
    expect(fs.existsSync(path.join(dir, 'metadata.sqlite'))).toBe(true);
  });

  it('repairs a corrupted artifact that a downstream step needs: warns naming step and file, re-executes, stays correct', async () => {
    const log = collectingLogger();
    const runner = fileRunnerFor({ logger: log });
    const first = await runner.run(makePipeline());
    const id = first.steps.training_data_loader?.outputs?.['X_train']?.id as string;
    const file = path.join(dir, 'artifacts', id.slice(0, 2), id);
    const bytes = fs.readFileSync(file);
    bytes[1] = bytes[1] === 0x31 ? 0x32 : 0x31; // same size, different content
    fs.writeFileSync(file, bytes);
    const run = await runner.run(makePipeline(), { gamma: 1 });
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]).toContain(file);
    expect(log.warnings[0]).toContain('training_data_loader');
    expect(calls.loader).toBe(2);
    expect(await run.output('model')).toEqual({ weights: [[1, 2], [4, 5]] });
    expect(fs.readFileSync(file).toString()).toBe('[[1,2],[3,4]]');
  });

  it('a step repaired while run.output() loads it is recorded as executed (repaired) in the stored run, with a warning naming it and the file', async () => {
    const log = collectingLogger();
    const runner = fileRunnerFor({ logger: log });
    const first = await runner.run(makePipeline());
    const run = await runner.run(makePipeline());
    expect(run.steps.svc_trainer?.status).toBe('cached');
    // A cached step's record names its origin only; the run that executed it holds its outputs.
    const id = first.steps.svc_trainer?.outputs?.['output']?.id as string;
    const file = path.join(dir, 'artifacts', id.slice(0, 2), id);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 2] = bytes[bytes.length - 2] === 0x31 ? 0x32 : 0x31; // same size, different content
    fs.writeFileSync(file, bytes);
    log.clear();
    expect(await run.output('model')).toEqual({ weights: [[0.002, 0.004], [1.006, 1.008]] });
    expect(calls.trainer).toBe(2);
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]).toContain('svc_trainer');
    expect(log.warnings[0]).toContain(file);
    const stored = await runner.getRun(run.id);
    expect(stored?.steps.svc_trainer?.status).toBe('executed');
    expect((stored?.steps.svc_trainer?.why as { readonly _tag?: string } | undefined)?._tag).toBe('Repaired');
    expect(stored?.steps.training_data_loader?.status).toBe('cached');
    expect(stored?.endedAt).toBe(run.endedAt);
    expect((await runner.explain(run.id, 'svc_trainer')).status).toBe('executed');
  });

  it('a cached artifact of the wrong size is a warning naming the step and the file, and the step re-runs', async () => {
    const log = collectingLogger();
    const runner = fileRunnerFor({ logger: log });
    const first = await runner.run(makePipeline());
    const id = first.steps.svc_trainer?.outputs?.['output']?.id as string;
    const file = path.join(dir, 'artifacts', id.slice(0, 2), id);
    fs.writeFileSync(file, 'garbage');
    log.clear();
    const run = await runner.run(makePipeline());
    expect(run.steps.svc_trainer?.status).toBe('executed');
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]).toContain('svc_trainer');
    expect(log.warnings[0]).toContain(file);
    expect(await run.output('model')).toEqual(await first.output('model'));
  });

  it('stores custom types through an io-ts codec and validates them on load', async () => {
    class Model {
      constructor(readonly weights: number[]) {}
      predict(x: number): number {
        return (this.weights[0] ?? 0) * x;
      }
    }
    const ModelCodec = new t.Type<Model, { weights: number[] }, unknown>(
      'Model',
      (u): u is Model => u instanceof Model,
      (u, c) => (typeof u === 'object' && u !== null && Array.isArray((u as { weights?: unknown }).weights) ? t.success(new Model((u as { weights: number[] }).weights)) : t.failure(u, c)),
      (m) => ({ weights: m.weights }),
    );
    const fit = step(function fit() {
      return { model: new Model([3]) };
    }).outputs({ model: ModelCodec });
    const p = pipeline('codec', (p) => p.call(fit));
    const runner = runnerFor();
    await runner.run(p);
    const run = await runner.run(p);
    expect(run.steps.fit?.status).toBe('cached');
    const model = await run.output('model');
    expect(model).toBeInstanceOf(Model);
    expect(model.predict(2)).toBe(6);
  });

  it('stores nothing for a step that returns undefined and still caches it', async () => {
    let sideEffects = 0;
    const s = step(function side_effect() {
      sideEffects++;
    });
    const p = pipeline('void', (p) => ({ done: p.call(s) }));
    const runner = runnerFor();
    await runner.run(p);
    const run = await runner.run(p);
    expect(run.steps.side_effect?.status).toBe('cached');
    expect(sideEffects).toBe(1);
    expect(await run.output('done')).toBeUndefined();
  });
});

describe('stores and records', () => {
  it('records every run with parameters, statuses, keys, durations and where cached outputs came from', async () => {
    const runner = runnerFor();
    const first = await runner.run(makePipeline(), { gamma: 0.25 });
    const second = await runner.run(makePipeline(), { gamma: 0.25 });
    const record = await runner.getRun(second.id);
    expect(record).toMatchObject({
      id: second.id,
      pipeline: 'training_pipeline',
      parameters: { gamma: 0.25 },
      status: 'completed',
      outputs: { model: { step: 'svc_trainer', output: 'output' } },
    });
    expect(record?.steps['svc_trainer']).toMatchObject({ status: 'cached', cachedFrom: first.id, key: first.steps.svc_trainer?.key });
    expect(first.steps.svc_trainer?.key).toMatch(/^[0-9a-f]{64}$/);
    expect(typeof record?.durationMs).toBe('number');
    expect(Date.parse(record?.endedAt ?? '')).toBeGreaterThanOrEqual(Date.parse(record?.startedAt ?? ''));
    expect((await runner.listRuns()).map((r) => r.id)).toEqual([second.id, first.id]); // most recent first, by start time
  });

  it('uses STEPCACHE_DIR when no directory is given', async () => {
    const saved = process.env['STEPCACHE_DIR'];
    process.env['STEPCACHE_DIR'] = path.join(dir, 'from-env');
    try {
      const runner = createRunner({ logger: silentLogger });
      runners.push(runner);
      await runner.run(makePipeline());
      expect(fs.existsSync(path.join(dir, 'from-env', 'metadata.sqlite'))).toBe(true);
      // Its outputs, tiny, are kept inside their entries there: another runner on that folder serves them.
      await runner.close();
      const again = await runnerFor({ dir: path.join(dir, 'from-env') }).run(makePipeline());
      expect(again.steps.svc_trainer?.status).toBe('cached');
    } finally {
      if (saved === undefined) delete process.env['STEPCACHE_DIR'];
      else process.env['STEPCACHE_DIR'] = saved;
    }
  });

  it('accepts a keyv instance of another backend for metadata', async () => {
    const keyv = new Keyv();
    const runner = runnerFor({ metadata: keyv });
    await runner.run(makePipeline());
    const run = await runner.run(makePipeline());
    expect(run.steps.svc_trainer?.status).toBe('cached');
    expect(fs.existsSync(path.join(dir, 'metadata.sqlite'))).toBe(false);
  });

  it('runs independent steps concurrently when allowed', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const started: string[] = [];
    const waits = step(async function waits() {
      started.push('waits');
      await gate;
      return 1;
    });
    const releases = step(function releases() {
      started.push('releases');
      release();
      return 2;
    });
    const p = pipeline('concurrent', (p) => ({ a: p.call(waits), b: p.call(releases) }));
    const run = await runnerFor({ concurrency: 2 }).run(p);
    // `waits` can only finish because `releases` ran while it was waiting: run one at a time, this would hang
    expect([...started].sort()).toEqual(['releases', 'waits']);
    expect(run.status).toBe('completed');
  });

  it('rejects an invalid concurrency naming the option', () => {
    expect(() => createRunner({ concurrency: 0 })).toThrow(/concurrency/);
  });
});

describe('bounded waits through settings', () => {
  const slow = step(function slow_step(): Promise<number> {
    return new Promise(() => undefined); // never settles: only its timeout ends it
  });
  const after = step(function after_slow({ value }: { value: number }) {
    return value + 1;
  });
  const slowPipeline = pipeline('bounded', (p) => ({ out: p.call(after, { value: p.call(slow) }) }));

  const failure = async (r: Promise<unknown>): Promise<StepcacheError> => {
    const e = await r.then(() => undefined, (x: unknown) => x);
    expect(e).toBeInstanceOf(StepcacheError);
    return e as StepcacheError;
  };

  it('a step running past its timeout fails with STEP_TIMEOUT naming the step and the limit; downstream is skipped, nothing is cached', async () => {
    const e = await failure(runnerFor().run(slowPipeline.withOptions({ steps: { slow_step: { timeout: '50ms' } } })));
    expect([e.code, e.step, e.field]).toEqual(['STEP_TIMEOUT', 'slow_step', 'timeout']);
    expect(e.message).toContain('slow_step');
    expect(e.message).toContain('50ms');
    expect(e.run?.steps['slow_step']?.status).toBe('failed');
    expect(e.run?.steps['after_slow']?.status).toBe('skipped');
    expect(await runnerFor().cache.list()).toEqual([]);
  });

  it('the timeout comes from the run config file too', async () => {
    const file = path.join(dir, 'run.yaml');
    fs.writeFileSync(file, 'steps:\n  slow_step:\n    timeout: 40\n');
    const e = await failure(runnerFor().run(applyRunConfig(slowPipeline, await readRunConfig(file)).pipeline));
    expect([e.code, e.step]).toEqual(['STEP_TIMEOUT', 'slow_step']);
    expect(e.message).toContain('40ms');
  });

  it('a step that finishes within its timeout is cached as usual', async () => {
    const quick = pipeline('bounded_quick', (p) => ({ out: p.call(after, { value: 1 }) })).withOptions({ timeout: '1h' });
    const first = await runnerFor().run(quick);
    expect(await first.output('out')).toBe(2);
    expect((await runnerFor().run(quick)).steps['after_slow']?.status).toBe('cached');
  });

  it('lockTimeout bounds the wait for a key held by another process: LOCK_TIMEOUT naming the step', async () => {
    const quick = pipeline('bounded_lock', (p) => ({ out: p.call(after, { value: 1 }) }));
    const runner = runnerFor();
    const key = (await runner.run(quick)).steps['after_slow']?.key as string;
    await runner.cache.clear();
    const release = await createFileStepLock(path.join(dir, 'locks')).acquire(key);
    try {
      const e = await failure(runner.run(quick.withOptions({ lockTimeout: 60 })));
      expect([e.code, e.step]).toEqual(['LOCK_TIMEOUT', 'after_slow']);
      expect(e.message).toContain('after_slow');
    } finally {
      await release();
    }
    expect((await runner.run(quick)).steps['after_slow']?.status).toBe('executed');
  });

  it('timeout and lockTimeout never change a key: setting them keeps a step cached', async () => {
    const quick = pipeline('bounded_key', (p) => ({ out: p.call(after, { value: 1 }) }));
    await runnerFor().run(quick);
    const again = await runnerFor().run(quick.withOptions({ timeout: '10m', lockTimeout: '1m' }));
    expect(again.steps['after_slow']?.status).toBe('cached');
  });

  it('refuses a timeout of 0 or past 24 days, naming the setting', () => {
    expect(() => slowPipeline.withOptions({ timeout: 0 })).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS', field: 'timeout' }) as StepcacheError);
    expect(() => slowPipeline.withOptions({ lockTimeout: '25d' })).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS', field: 'lockTimeout' }) as StepcacheError);
  });
});

describe('long chains', () => {
  // Planning, skipping, scheduling, running and recording are iterative: a chain this long
  // overflows the stack of any recursion over it.
  const LONG = 20_000;
  const first = step(function chain_start({ seed }: { seed: number }) {
    if (seed < 0) throw new Error('a negative seed');
    return seed;
  });
  const link = step(function chain_link({ previous }: { previous: number }) {
    return previous + 1;
  });
  const chain = (length: number, version = '1') =>
    pipeline('chain', (p, { seed }: { seed: number }) => {
      let previous = p.call(first.withOptions({ version }), { seed });
      for (let i = 1; i < length; i++) previous = p.call(link.named(`link_${i}`), { previous });
      return { last: previous };
    });

  it(`plans a ${LONG.toLocaleString('en')}-step chain, and skips all of it below a failed first step`, async () => {
    const runner = runnerFor();
    const plan = await runner.plan(chain(LONG), { seed: 1 });
    expect(Object.keys(plan.steps)).toHaveLength(LONG);
    expect(plan.steps[`link_${LONG - 1}`]?.expected).toBe('depends');
    const error = await runner.run(chain(LONG), { seed: -1 }).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(StepcacheError);
    const steps = Object.values((error as StepcacheError).run?.steps ?? {});
    expect(steps.filter((s) => s.status === 'skipped')).toHaveLength(LONG - 1);
    expect((error as StepcacheError).step).toBe('chain_start');
  }, 120_000);

  it(`runs a ${LONG.toLocaleString('en')}-step chain, then again with its first step changed: the rest is cached`, async () => {
    const runner = runnerFor();
    const run = await runner.run(chain(LONG), { seed: 1 });
    expect(await run.output('last')).toBe(LONG);
    const again = await runner.run(chain(LONG, '2'), { seed: 1 });
    expect(again.steps['chain_start']?.status).toBe('executed');
    expect(Object.values(again.steps).filter((s) => s.status === 'cached')).toHaveLength(LONG - 1);
    expect(await again.output('last')).toBe(LONG);
    const plan = await runner.plan(chain(LONG, '3'), { seed: 1 });
    expect(plan.steps['chain_start']?.expected).toBe('execute');
  }, 600_000);
});

describe('scheduling order', () => {
  it('one step at a time, the steps made ready by one step start in pipeline order, before those that became ready later', async () => {
    const started: string[] = [];
    const onEvent = (e: RunEvent): void => {
      if (e.type === 'step-started') started.push(e.step);
    };
    const source = step(function order_source({ n }: { n: number }) {
      return n;
    });
    const use = step(function order_use({ value }: { value: number }) {
      return value + 1;
    });
    // d (below a) becomes ready before c (below b), but c comes first in the pipeline.
    const shape = pipeline('order', (p) => {
      const a = p.call(source.named('a'), { n: 1 });
      const b = p.call(source.named('b'), { n: 2 });
      const c = p.call(use.named('c'), { value: b });
      const d = p.call(use.named('d'), { value: a });
      const e = p.call(use.named('e'), { value: c });
      return { d, e };
    });
    await runnerFor({ onEvent }).run(shape);
    expect(started).toEqual(['a', 'b', 'c', 'd', 'e']);
    started.length = 0;
    await runnerFor({ onEvent }).run(shape); // cached: every step resolved at once, in the same order
    expect(started).toEqual(['a', 'b', 'c', 'd', 'e']);
  });
});

describe('a cached chain with a change in its middle', () => {
  // Cached links are served without waiting for anything; a link whose key changed, or whose key
  // waits for a file, is resolved as before: what is below it must still be right.
  const LENGTH = 200;
  const MIDDLE = 100;
  const start = step(function middle_start({ seed }: { seed: number }) {
    return seed;
  });
  const add = step(function middle_add({ previous, inc }: { previous: number; inc: number }) {
    return previous + inc;
  });
  const chain = (options: { incAt?: number; versionAt?: string; filesAt?: string } = {}) =>
    pipeline('middle_chain', (p, { seed }: { seed: number }) => {
      let previous = p.call(start, { seed });
      for (let i = 1; i < LENGTH; i++) {
        const named = add.named(`middle_${i}`);
        const link = i !== MIDDLE ? named : named.withOptions({ ...(options.versionAt === undefined ? {} : { version: options.versionAt }), ...(options.filesAt === undefined ? {} : { files: [options.filesAt] }) });
        previous = p.call(link, { previous, inc: i === MIDDLE ? (options.incAt ?? 1) : 1 });
      }
      return { last: previous };
    });
  const statusesOf = (run: { steps: Readonly<Record<string, { status: string } | undefined>> }, from: number, to: number): string[] =>
    [...new Set(Array.from({ length: to - from }, (_, i) => run.steps[`middle_${from + i}`]?.status ?? 'absent'))];

  it('a parameter changed in the middle: above it cached, it and every step below it executed, the value right; then all cached', async () => {
    const runner = runnerFor();
    expect(await (await runner.run(chain(), { seed: 0 })).output('last')).toBe(LENGTH - 1);
    const plan = await runner.plan(chain({ incAt: 5 }), { seed: 0 });
    expect(plan.steps[`middle_${MIDDLE - 1}`]?.expected).toBe('cached');
    expect(plan.steps[`middle_${MIDDLE}`]).toMatchObject({ expected: 'execute', reason: { _tag: 'KeyChanged' } });
    expect(plan.steps[`middle_${MIDDLE + 1}`]?.expected).toBe('depends');
    const changed = await runner.run(chain({ incAt: 5 }), { seed: 0 });
    expect(changed.steps['middle_start']?.status).toBe('cached');
    expect(statusesOf(changed, 1, MIDDLE)).toEqual(['cached']);
    expect(statusesOf(changed, MIDDLE, LENGTH)).toEqual(['executed']);
    expect(await changed.output('last')).toBe(LENGTH - 1 + 4);
    const again = await runner.run(chain({ incAt: 5 }), { seed: 0 });
    expect(statusesOf(again, 1, LENGTH)).toEqual(['cached']);
    expect(await again.output('last')).toBe(LENGTH - 1 + 4);
    // Back to the first parameters: every key is one the store holds.
    const back = await runner.run(chain(), { seed: 0 });
    expect(statusesOf(back, 1, LENGTH)).toEqual(['cached']);
    expect(await back.output('last')).toBe(LENGTH - 1);
  }, 120_000);

  it('code changed in the middle with the same output: it executes, the steps below it stay cached', async () => {
    const runner = runnerFor();
    await runner.run(chain({ versionAt: '1' }), { seed: 3 });
    const edited = await runner.run(chain({ versionAt: '2' }), { seed: 3 });
    expect(statusesOf(edited, 1, MIDDLE)).toEqual(['cached']);
    expect(edited.steps[`middle_${MIDDLE}`]?.status).toBe('executed');
    expect(statusesOf(edited, MIDDLE + 1, LENGTH)).toEqual(['cached']);
    expect(await edited.output('last')).toBe(LENGTH - 1 + 3);
  }, 120_000);

  it('a step in the middle whose key waits for a file: cached while the file is the same, executed when it changes, the rest cached', async () => {
    const runner = runnerFor();
    const file = path.join(dir, 'middle-input.txt');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(file, 'first');
    await runner.run(chain({ filesAt: file }), { seed: 7 });
    const same = await runner.run(chain({ filesAt: file }), { seed: 7 });
    expect(statusesOf(same, 1, LENGTH)).toEqual(['cached']);
    fs.writeFileSync(file, 'second');
    const changed = await runner.run(chain({ filesAt: file }), { seed: 7 });
    expect(statusesOf(changed, 1, MIDDLE)).toEqual(['cached']);
    expect(changed.steps[`middle_${MIDDLE}`]?.status).toBe('executed');
    expect(statusesOf(changed, MIDDLE + 1, LENGTH)).toEqual(['cached']);
    expect(await changed.output('last')).toBe(LENGTH - 1 + 7);
  }, 120_000);
});

describe('unusable stores', () => {
  const one = pipeline('unusable', (p) => ({ out: p.call(step(function unusable_a() { return [1, 2, 3]; })) }));

  it('a garbage metadata file: the run and close reject with typed errors naming the store, never the driver\'s own', async () => {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'metadata.sqlite'), 'not a database at all, only garbage bytes '.repeat(100));
    const runner = createRunner({ dir, logger: silentLogger });
    const run = await runner.run(one).then(() => undefined, (e: unknown) => e);
    expect(run).toBeInstanceOf(StepcacheError);
    expect((run as StepcacheError).code).toBe('STORE_UNAVAILABLE');
    expect((run as StepcacheError).message).toContain(dir);
    const closed = await runner.close().then(() => undefined, (e: unknown) => e);
    if (closed !== undefined) {
      expect(closed).toBeInstanceOf(StepcacheError);
      expect((closed as StepcacheError).code).toBe('STORE_UNAVAILABLE');
      expect((closed as StepcacheError).message).toContain(dir);
    }
  });

  it('close after the stores failed to open resolves: nothing was opened', async () => {
    fs.writeFileSync(path.join(dir, 'taken'), 'a file where the store folder should be');
    const runner = createRunner({ dir: path.join(dir, 'taken'), logger: silentLogger });
    await expect(runner.run(one)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    await expect(runner.close()).resolves.toBeUndefined();
  });

  it('a file where an artifact\'s shard folder should be: the hit is a miss, and storing again fails with a typed error naming the file', async () => {
    const runner = fileRunnerFor();
    const first = await runner.run(one);
    const id = first.steps['unusable_a']?.outputs?.['output']?.id as string;
    const shard = path.join(dir, 'artifacts', id.slice(0, 2));
    fs.rmSync(shard, { recursive: true });
    fs.writeFileSync(shard, 'not a folder');
    const error = await runner.run(one).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(StepcacheError);
    const e = error as StepcacheError;
    expect([e.code, e.step]).toEqual(['STORE_UNAVAILABLE', 'unusable_a']);
    expect(e.message).toContain(shard);
    expect(e.run?.steps['unusable_a']?.status).toBe('failed');
  });
});

describe('concurrent runs in one process', () => {
  it('share one execution of a step key, and both see its outputs', async () => {
    let executions = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let executing!: () => void;
    const executionStarted = new Promise<void>((resolve) => (executing = resolve));
    const slow = step(async function slow_features({ n }: { n: number }) {
      executions++;
      executing();
      await gate;
      return Array.from({ length: n }, (_, i) => i * 2);
    });
    const p = pipeline('shared', (p) => ({ xs: p.call(slow, { n: 4 }) }));
    let secondStarted!: () => void;
    const secondReady = new Promise<void>((resolve) => (secondStarted = resolve));
    const runner = runnerFor();
    // a second runner on the same store directory
    const other = runnerFor({ onEvent: (e) => void (e.type === 'step-started' && secondStarted()) });
    const first = runner.run(p);
    await executionStarted;
    const second = other.run(p);
    await secondReady;
    expect(executions).toBe(1);
    release();
    const [a, b] = await Promise.all([first, second]);
    expect(executions).toBe(1);
    expect([a.steps.slow_features?.status, b.steps.slow_features?.status].sort()).toEqual(['cached', 'executed']);
    expect(await a.output('xs')).toEqual([0, 2, 4, 6]);
    expect(await b.output('xs')).toEqual([0, 2, 4, 6]);
  });

  it('do not share when caching is disabled: each run executes', async () => {
    let executions = 0;
    const counted = step(async function counted() {
      executions++;
      await new Promise((resolve) => setTimeout(resolve, 20));
      return executions;
    });
    const p = pipeline('unshared', (p) => ({ n: p.call(counted) })).withOptions({ enableCache: false });
    const runner = runnerFor();
    await Promise.all([runner.run(p), runner.run(p)]);
    expect(executions).toBe(2);
  });
});

describe('pipeline checks before anything runs', () => {
  it('rejects a step called without a required input, naming the step and the input', async () => {
    let ran = 0;
    const loader = step(function rows_loader() {
      ran++;
      return [1, 2, 3];
    });
    const scaler = step(function rows_scaler({ rows, factor, offset = 0 }: { rows: number[]; factor: number; offset?: number }) {
      ran++;
      return rows.map((r) => r * factor + offset);
    });
    const broken = pipeline('broken', (p) => ({ out: p.call(scaler, { rows: p.call(loader) } as never) }));
    const runner = runnerFor();
    const error = (await runner.run(broken).catch((e: unknown) => e)) as StepcacheError;
    expect(error.code).toBe('INVALID_PIPELINE');
    expect(error.step).toBe('rows_scaler');
    expect(error.field).toBe('factor');
    expect(error.message).toContain('without its required input factor');
    expect(ran).toBe(0);
    expect(await runner.listRuns()).toEqual([]);
    // optional and defaulted inputs may be left out
    const fine = pipeline('fine', (p) => ({ out: p.call(scaler, { rows: p.call(loader), factor: 2 }) }));
    expect(await (await runner.run(fine)).output('out')).toEqual([2, 4, 6]);
  });

  describe('called from plain JavaScript', () => {
    // A step file without types, as plain JavaScript users write them; wired without type checks.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const js = require('./fixtures/plain-js/steps.js') as Record<'scale' | 'total' | 'withDefault' | 'untyped', AnyStep>;
    type Untyped = { call: (s: AnyStep, args?: Record<string, unknown>) => unknown };
    const untyped = (name: string, define: (p: Untyped) => Record<string, unknown>) => pipeline(name, define as never);

    it('an input its JSDoc type requires, left out, is an error at the start naming the step and the input; one with a default may be left out', async () => {
      const runner = runnerFor();
      const error = (await runner.run(untyped('js_missing', (p) => ({ out: p.call(js.total, { scaled: p.call(js.scale, { values: [1, 2] }) }) }))).catch((e: unknown) => e)) as StepcacheError;
      expect([error.code, error.step, error.field]).toEqual(['INVALID_PIPELINE', 'scale', 'factor']);
      expect(error.message).toContain('without its required input factor');
      expect(await runner.listRuns()).toEqual([]);
      const run = await runner.run(untyped('js_default', (p) => ({ out: p.call(js.withDefault, { values: [1, 2] }) })));
      expect(await run.output('out' as never)).toEqual([2, 4]);
      // without JSDoc nothing says an input is required: the step decides what it does without it
      const plain = await runner.run(untyped('js_untyped', (p) => ({ out: p.call(js.untyped, { values: [1, 2] }) })));
      expect(await plain.output('out' as never)).toEqual([1, 2]);
    });

    it('a handle of a step that is not in the pipeline is an error naming the step and the input', async () => {
      const ghost = { _tag: 'Handle', step: 'ghost', output: 'output' };
      const error = (await runnerFor().run(untyped('js_ghost', (p) => ({ out: p.call(js.total, { scaled: ghost }) }))).catch((e: unknown) => e)) as StepcacheError;
      expect([error.code, error.step, error.field]).toEqual(['INVALID_PIPELINE', 'total', 'scaled']);
      expect(error.message).toContain('ghost');
    });

    it('a Promise passed as a parameter is an error at the start naming the step and the input, before any step runs', async () => {
      let ran = 0;
      const first = step(function runs_first() {
        ran++;
        return 1;
      });
      const runner = runnerFor();
      const error = (await runner
        .run(untyped('js_promise', (p) => ({ first: p.call(first), out: p.call(js.scale, { values: Promise.resolve([1, 2]), factor: 2 }) })))
        .catch((e: unknown) => e)) as StepcacheError;
      expect([error.code, error.step, error.field]).toEqual(['INVALID_PIPELINE', 'scale', 'values']);
      expect(error.message).toContain('Promise');
      expect(ran).toBe(0);
      expect(await runner.listRuns()).toEqual([]);
    });
  });
});

describe('run events', () => {
  const collect = () => {
    const events: RunEvent[] = [];
    return { events, onEvent: (e: RunEvent) => void events.push(e), types: () => events.map((e) => `${e.type}${'step' in e && e.step !== undefined ? ` ${e.step}` : ''}`) };
  };

  it('tell a run from start to finish, stamped with the run id and frozen', async () => {
    const seen = collect();
    const runner = runnerFor({ onEvent: seen.onEvent });
    const run = await runner.run(makePipeline());
    expect(seen.types()).toEqual([
      'run-started',
      'step-started training_data_loader',
      'step-executing training_data_loader',
      'artifact-written training_data_loader',
      'artifact-written training_data_loader',
      'step-executed training_data_loader',
      'step-started svc_trainer',
      'step-executing svc_trainer',
      'artifact-written svc_trainer',
      'step-executed svc_trainer',
      'run-finished',
    ]);
    for (const e of seen.events) {
      expect(e.runId).toBe(run.id);
      expect(typeof e.at).toBe('number');
      expect(Object.isFrozen(e)).toBe(true);
    }
    expect(seen.events[0]).toMatchObject({ type: 'run-started', pipeline: 'training_pipeline', steps: ['training_data_loader', 'svc_trainer'] });
    expect(seen.events[2]).toMatchObject({ type: 'step-executing', reason: { _tag: 'NeverCached' }, message: 'it was never cached before' });
    const written = seen.events.filter((e) => e.type === 'artifact-written');
    expect(written.map((e) => e.type === 'artifact-written' && [e.output, e.id, e.size])).toEqual(
      ['X_train', 'y_train', 'output'].map((o) => {
        const s = o === 'output' ? run.steps.svc_trainer : run.steps.training_data_loader;
        return [o, s?.outputs?.[o]?.id, s?.outputs?.[o]?.size];
      }),
    );
    expect(seen.events.at(-1)).toMatchObject({ type: 'run-finished', status: 'completed', counts: { executed: 2, cached: 0, failed: 0, skipped: 0 }, failed: [], durationMs: run.durationMs });
  });

  it('make the run record: the last event of each step agrees with its record', async () => {
    const seen = collect();
    const runner = runnerFor({ onEvent: seen.onEvent });
    const first = await runner.run(makePipeline());
    const run = await runner.run(makePipeline(), { gamma: 0.5 });
    const mine = seen.events.filter((e) => e.runId === run.id);
    const cached = mine.find((e) => e.type === 'step-cached');
    // A cached step's record says where it came from; its outputs are those of that run's record.
    expect(cached).toMatchObject({ step: 'training_data_loader', key: run.steps.training_data_loader?.key, outputs: first.steps.training_data_loader?.outputs });
    expect(run.steps.training_data_loader).toEqual({ name: 'training_data_loader', status: 'cached', durationMs: expect.any(Number), key: first.steps.training_data_loader?.key, cachedFrom: first.id });
    expect(cached?.type === 'step-cached' && cached.cachedFrom).toBe(run.steps.training_data_loader?.cachedFrom);
    const executed = mine.find((e) => e.type === 'step-executed');
    expect(executed).toMatchObject({ step: 'svc_trainer', key: run.steps.svc_trainer?.key, outputs: run.steps.svc_trainer?.outputs, durationMs: run.steps.svc_trainer?.durationMs });
    const executing = mine.find((e) => e.type === 'step-executing');
    expect(executing?.type === 'step-executing' && [executing.reason, executing.message]).toEqual([run.steps.svc_trainer?.why, run.steps.svc_trainer?.reason]);
  });

  it('report a failure with its StepcacheError, and the steps skipped because of it', async () => {
    const seen = collect();
    const broken = step(function svc_trainer(): number {
      throw new Error('out of memory');
    });
    const after = step(function evaluator({ model }: { model: number }) {
      return model;
    });
    const p = pipeline('failing', (p) => ({ score: p.call(after, { model: p.call(broken) }) }));
    const error = (await runnerFor({ onEvent: seen.onEvent }).run(p).catch((e: unknown) => e)) as StepcacheError;
    const failed = seen.events.find((e) => e.type === 'step-failed');
    expect(failed?.type === 'step-failed' && failed.error).toBeInstanceOf(StepcacheError);
    expect(failed?.type === 'step-failed' && failed.error.message).toBe(error.message);
    expect(seen.events.find((e) => e.type === 'step-skipped')).toMatchObject({ step: 'evaluator', upstream: 'svc_trainer' });
    expect(seen.events.at(-1)).toMatchObject({ type: 'run-finished', status: 'failed', failed: ['svc_trainer'], counts: { executed: 0, cached: 0, failed: 1, skipped: 1 } });
  });

  it('warn about a damaged artifact, then report the repair with what was wrong', async () => {
    const seen = collect();
    const runner = fileRunnerFor({ onEvent: seen.onEvent });
    const first = await runner.run(makePipeline());
    const id = first.steps.training_data_loader?.outputs?.['X_train']?.id as string;
    fs.writeFileSync(path.join(dir, 'artifacts', id.slice(0, 2), id), '[[9,9],[9,9]]');
    await runner.run(makePipeline(), { gamma: 1 });
    const warning = seen.events.find((e) => e.type === 'warning');
    expect(warning).toMatchObject({ kind: 'damaged-artifact', step: 'training_data_loader' });
    const repaired = seen.events.find((e) => e.type === 'step-repaired');
    expect(repaired).toMatchObject({ step: 'training_data_loader' });
    expect(repaired?.type === 'step-repaired' && repaired.problem).toContain(id);
  });

  it('warn about a captured variable with its kind and step', async () => {
    const seen = collect();
    const factor = Math.random() > 2 ? 3 : 2;
    const scale = ((f: number) => step(function captured_scaler() {
      return f;
    }))(factor);
    await runnerFor({ onEvent: seen.onEvent }).run(pipeline('captures', (p) => ({ out: p.call(scale) })));
    expect(seen.events.find((e) => e.type === 'warning')).toMatchObject({ kind: 'captured-variable', step: 'captured_scaler' });
  });

  it('go to a logger that takes events instead of its lines', async () => {
    const seen = collect();
    const log = collectingLogger();
    await runnerFor({ logger: { ...log, onEvent: seen.onEvent } }).run(makePipeline());
    expect(log.lines).toEqual([]);
    expect(seen.events.at(-1)?.type).toBe('run-finished');
  });

  it('survive a subscriber that throws: the run completes, the logger hears of it once, other subscribers hear everything', async () => {
    const log = collectingLogger();
    const runner = runnerFor({
      logger: log,
      onEvent: () => {
        throw new Error('subscriber bug');
      },
    });
    const run = await runner.run(makePipeline());
    expect(run.status).toBe('completed');
    expect(log.warnings).toEqual([expect.stringContaining('subscriber bug')]);
    expect(log.lines).toContain('Step svc_trainer has started.');
    expect(log.lines.at(-1)).toMatch(/^Pipeline run \S+ has finished in \d+\.\d{3}s\.$/);
  });

  it('survive a logger that throws', async () => {
    const throwing = { info: () => { throw new Error('disk full'); }, warn: () => undefined, error: () => undefined };
    const seen = collect();
    const run = await runnerFor({ logger: throwing, onEvent: seen.onEvent }).run(makePipeline());
    expect(run.status).toBe('completed');
    expect(seen.events.at(-1)?.type).toBe('run-finished');
  });
});

describe('executors', () => {
  it('get the step identity, its parameters and its inputs by reference; the runner commits the entry', async () => {
    const requests: ExecutionRequest[] = [];
    const recording: Executor = {
      execute: (request, store) => {
        requests.push(request);
        return inProcessExecutor().execute(request, store);
      },
    };
    const runner = runnerFor({ executor: recording });
    const run = await runner.run(makePipeline(), { gamma: 0.25 });
    const trained = requests.find((r) => r.identity.step === 'svc_trainer') as ExecutionRequest;
    expect(trained.identity).toEqual({ pipeline: 'training_pipeline', step: 'svc_trainer', key: run.steps.svc_trainer?.key, code: expect.stringMatching(/^fingerprint:/) });
    expect(trained.parameters).toEqual({ gamma: 0.25 });
    expect(trained.inputs).toEqual({
      X_train: { step: 'training_data_loader', output: 'X_train', descriptor: run.steps.training_data_loader?.outputs?.['X_train'] },
      y_train: { step: 'training_data_loader', output: 'y_train', descriptor: run.steps.training_data_loader?.outputs?.['y_train'] },
    });
    expect((await runnerFor().run(makePipeline(), { gamma: 0.25 })).steps.svc_trainer?.status).toBe('cached');
  });

  it('may return descriptors without values, as a remote one does: consumers load the outputs from the store', async () => {
    const remoteLike: Executor = {
      execute: async (request, store) => {
        const result = await inProcessExecutor().execute(request, store);
        return E.map(({ descriptors, durationMs }: ExecutionResult) => ({ descriptors, durationMs }))(result);
      },
    };
    const counting = countingArtifactStore(path.join(dir, 'artifacts'));
    const run = await runnerFor({ executor: remoteLike, artifacts: counting }).run(makePipeline(), { gamma: 1 });
    // the trainer read its inputs from the store, and so does the caller
    expect([...counting.gets].sort()).toEqual([run.steps.training_data_loader?.outputs?.['X_train']?.id, run.steps.training_data_loader?.outputs?.['y_train']?.id].sort());
    expect(await run.output('model')).toEqual({ weights: [[1, 2], [4, 5]] });
    expect(counting.gets).toHaveLength(3);
  });

  it('fail a step with the error they return, and nothing is cached', async () => {
    const refusing: Executor = { execute: async (request) => E.left(new StepcacheError('STEP_FAILED', `No worker can run ${request.identity.step}.`, { step: request.identity.step })) };
    const error = (await runnerFor({ executor: refusing }).run(makePipeline()).catch((e: unknown) => e)) as StepcacheError;
    expect(error.message).toBe('No worker can run training_data_loader.');
    expect(error.run?.steps.svc_trainer?.status).toBe('skipped');
    expect((await runnerFor().run(makePipeline())).steps.training_data_loader?.status).toBe('executed');
  });
});

describe('log lines of run events', () => {
  const at = (body: RunEventBody) => logLineOf(runEvent('20260101-000000-abc', body, 0));
  const counts = { executed: 1, cached: 1, failed: 0, skipped: 0 };

  it('are the seed lines, word for word', () => {
    expect([
      at({ type: 'run-started', pipeline: 'training_pipeline', steps: ['a'] }),
      at({ type: 'step-started', step: 'svc_trainer' }),
      at({ type: 'step-cached', step: 'svc_trainer', key: 'k', cachedFrom: 'r0', outputs: {}, durationMs: 1 }),
      at({ type: 'step-executing', step: 'svc_trainer', key: 'k', reason: { _tag: 'NeverCached' }, message: 'it was never cached before' }),
      at({ type: 'step-executing', step: 'svc_trainer', key: 'k', reason: { _tag: 'Refresh', decidedBy: 'runtime' }, message: 'a refresh was asked for' }),
      at({ type: 'step-executed', step: 'svc_trainer', key: 'k', outputs: {}, durationMs: 932 }),
      at({ type: 'step-skipped', step: 'evaluator', upstream: 'svc_trainer' }),
      at({ type: 'run-finished', pipeline: 'training_pipeline', status: 'completed', counts, failed: [], durationMs: 1500 }),
    ]).toEqual([
      { level: 'info', text: 'Initiating a new run for the pipeline: training_pipeline.' },
      { level: 'info', text: 'Step svc_trainer has started.' },
      { level: 'info', text: 'Using cached version of svc_trainer.' },
      { level: 'info', text: 'svc_trainer: running because it was never cached before' },
      { level: 'info', text: 'svc_trainer: re-running because a refresh was asked for' },
      { level: 'info', text: 'Step svc_trainer has finished in 0.932s.' },
      { level: 'info', text: 'Step evaluator was skipped because svc_trainer did not complete.' },
      { level: 'info', text: 'Pipeline run 20260101-000000-abc has finished in 1.500s.' },
    ]);
  });

  it('put failures and warnings at their levels, and say nothing of artifacts and repairs', () => {
    const error = new StepcacheError('STEP_FAILED', 'Step a failed: boom', { step: 'a' });
    expect(at({ type: 'step-failed', step: 'a', error, durationMs: 1 })).toEqual({ level: 'error', text: 'Step a failed: boom' });
    expect(at({ type: 'run-finished', pipeline: 'p', status: 'failed', counts, failed: ['a', 'b'], durationMs: 1 })).toEqual({ level: 'error', text: 'Pipeline run 20260101-000000-abc failed: a, b.' });
    expect(at({ type: 'warning', kind: 'shallow-fingerprint', step: 'a', message: 'careful' })).toEqual({ level: 'warn', text: 'careful' });
    expect(at({ type: 'artifact-written', step: 'a', output: 'output', id: 'x', size: 1 })).toBeUndefined();
    expect(at({ type: 'step-repaired', step: 'a', problem: 'damaged', key: 'k', outputs: {}, durationMs: 1 })).toBeUndefined();
  });
});
