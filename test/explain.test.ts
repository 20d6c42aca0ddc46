/**
 * Why steps ran: runner.explain on recorded runs, the log line of every executed step, and
 * runner.plan, the dry run that says what would run before anything does.
 */
import * as path from 'node:path';
import { createRunner, pipeline, step, type RunRecord, type Runner } from '../src';
import { describeReason, type ExecutionReason } from '../src/cache/reasons';
import { createSqliteMetadataStore, type MetadataStore } from '../src/store/metadata-store';
import { collectingLogger, removeDir, tempDir, rejection, type CollectingLogger } from './support/fixtures';

let dir: string;
let log: CollectingLogger;
let runner: Runner;

const calls = { loader: 0, labels: 0, trainer: 0, evaluator: 0 };

beforeEach(() => {
  dir = tempDir();
  log = collectingLogger();
  runner = createRunner({ dir, logger: log });
  for (const k of Object.keys(calls) as (keyof typeof calls)[]) calls[k] = 0;
});
afterEach(async () => {
  await runner.close();
  removeDir(dir);
});

// a pipeline with two roots: loader -> trainer -> evaluator <- labels

const loader = step(function training_data_loader({ rows }: { rows: number }) {
  calls.loader++;
  return { X_train: Array.from({ length: rows }, (_, i) => [i, i + 1]), y_train: Array.from({ length: rows }, (_, i) => i % 2) };
}).outputs({ X_train: 'auto', y_train: 'auto' });

const labels = step(function labels_reader() {
  calls.labels++;
  return ['even', 'odd'];
});

const trainer = step(function svc_trainer({ X_train, y_train, gamma }: { X_train: number[][]; y_train: number[]; gamma: number }) {
  calls.trainer++;
  if (gamma < 0) throw new Error('gamma must not be negative');
  return X_train.map((row, i) => row.map((v) => v * gamma + (y_train[i] ?? 0)));
});

const evaluator = step(function evaluator({ model, names }: { model: number[][]; names: string[] }) {
  calls.evaluator++;
  return { rows: model.length, classes: names.length };
});

const training = pipeline('training_pipeline', (p, { gamma = 0.002, rows = 2 }: { gamma?: number; rows?: number }) => {
  const { X_train, y_train } = p.call(loader, { rows });
  const names = p.call(labels);
  const model = p.call(trainer, { X_train, y_train, gamma });
  return { model, report: p.call(evaluator, { model, names }) };
});

const STEPS = ['training_data_loader', 'labels_reader', 'svc_trainer', 'evaluator'] as const;

/** Every executed step of a run has its log line, with the reason recorded for it. */
const expectLogLines = (run: RunRecord): void => {
  for (const [name, s] of Object.entries(run.steps)) {
    if (s.status !== 'executed') continue;
    const why = s.why as ExecutionReason;
    expect(s.reason).toBe(describeReason(why));
    expect(log.lines).toContain(`${name}: ${why._tag === 'NeverCached' ? 'running' : 're-running'} because ${s.reason ?? ''}`);
  }
};

describe('latest entries read by a run', () => {
  it('a run reads only the heads of the latest entries; whole entries are read once, at the first miss that says what changed', async () => {
    const store = createSqliteMetadataStore(path.join(dir, 'counted.sqlite'));
    const wholeReads: number[] = [];
    const counted: MetadataStore = Object.freeze({
      ...store,
      getLatestEntriesOfSteps: (steps: readonly string[]) => {
        wholeReads.push(steps.length);
        return store.getLatestEntriesOfSteps(steps);
      },
    });
    const counting = createRunner({ dir, metadata: counted, logger: collectingLogger() });
    try {
      await counting.run(training);
      expect(wholeReads).toEqual([]);
      expect(Object.values((await counting.run(training)).steps).map((s) => s.status)).toEqual(['cached', 'cached', 'cached', 'cached']);
      expect(wholeReads).toEqual([]);
      const changed = await counting.run(training, { gamma: 0.0001 });
      expect(wholeReads).toEqual([STEPS.length]);
      expect(changed.steps.svc_trainer?.why).toEqual({ _tag: 'KeyChanged', changes: [{ _tag: 'Parameter', name: 'gamma', before: '0.002', after: '0.0001' }] });
      expect(changed.steps.evaluator?.why).toMatchObject({ _tag: 'KeyChanged', changes: [{ _tag: 'Input', name: 'model' }] });
    } finally {
      await counting.close(); // closes the store it was given
    }
  });
});

describe('runner.explain', () => {
  it('explains an executed step by run and by run id, with the structured reason', async () => {
    const first = await runner.run(training);
    const expected = { step: 'svc_trainer', status: 'executed', reason: { _tag: 'NeverCached' }, message: 'it was never cached before' };
    expect(await runner.explain(first, 'svc_trainer')).toEqual(expected);
    expect(await runner.explain(first.id, 'svc_trainer')).toEqual(expected);

    const second = await runner.run(training, { gamma: 0.0001 });
    const changed = {
      step: 'svc_trainer',
      status: 'executed',
      reason: { _tag: 'KeyChanged', changes: [{ _tag: 'Parameter', name: 'gamma', before: '0.002', after: '0.0001' }] },
      message: 'parameter gamma changed (0.002 -> 0.0001)',
    };
    expect(await runner.explain(second, 'svc_trainer')).toEqual(changed);
    expect(await runner.explain(second.id, 'svc_trainer')).toEqual(changed);
    expect(await runner.explain(second.id, 'evaluator')).toEqual({
      step: 'evaluator',
      status: 'executed',
      reason: { _tag: 'KeyChanged', changes: [{ _tag: 'Input', name: 'model', step: 'svc_trainer', output: 'output', added: false, removed: false }] },
      message: 'input model changed (new content from svc_trainer)',
    });
  });

  it('explains a cached step with the id of the run that produced it', async () => {
    const first = await runner.run(training);
    const second = await runner.run(training, { gamma: 0.5 });
    for (const run of [second, second.id]) {
      const e = await runner.explain(run, 'training_data_loader');
      expect(e).toMatchObject({ step: 'training_data_loader', status: 'cached', cachedFrom: first.id });
      expect(e.message).toContain(first.id);
    }
    const third = await runner.run(training, { gamma: 0.5 });
    expect(await runner.explain(third.id, 'svc_trainer')).toMatchObject({ status: 'cached', cachedFrom: second.id });
    expect(await runner.explain(third.id, 'training_data_loader')).toMatchObject({ status: 'cached', cachedFrom: first.id });
  });

  it('explains a failed step with its error, and a skipped step with the upstream step that did not complete', async () => {
    const e = await rejection(runner.run(training, { gamma: -1 }));
    const failedRun = e.run as RunRecord;
    expect(failedRun).toBeDefined();
    for (const run of [failedRun, failedRun.id]) {
      const failed = await runner.explain(run, 'svc_trainer');
      expect(failed).toMatchObject({ step: 'svc_trainer', status: 'failed' });
      expect(failed.status === 'failed' && failed.error).toContain('gamma must not be negative');
      expect(failed.message).toContain('svc_trainer');
      const skipped = await runner.explain(run, 'evaluator');
      expect(skipped).toMatchObject({ step: 'evaluator', status: 'skipped' });
      expect(skipped.message).toContain('svc_trainer');
    }
    expect(calls.evaluator).toBe(0);
  });

  it('names the shallow spots of an executed or cached step: values whose methods its key cannot see', async () => {
    const scorer = step(function scorer({ weights, data }: { weights: unknown; data: number[] }) {
      return data.length + String(weights).length;
    });
    const scoring = pipeline('scoring', (p) => ({ score: p.call(scorer, { weights: [1, 2], data: [3] }) }));
    const spot = expect.stringMatching(/^weights: unknown says nothing of the methods its value carries/);
    const executed = await runner.explain(await runner.run(scoring), 'scorer');
    expect(executed).toMatchObject({ status: 'executed', shallowSpots: [spot] });
    expect(executed.message).toMatch(/^it was never cached before; what its key cannot see: weights: unknown/);
    expect(await runner.explain(await runner.run(scoring), 'scorer')).toMatchObject({ status: 'cached', shallowSpots: [spot] });
    // A step whose parameter types say everything has none.
    expect(await runner.explain(await runner.run(training), 'svc_trainer')).not.toHaveProperty('shallowSpots');
  });

  it('an unknown run is UNKNOWN_RUN', async () => {
    await runner.run(training);
    const e = await rejection(runner.explain('20200101-000000000-000000000', 'svc_trainer'));
    expect(e.code).toBe('UNKNOWN_RUN');
    expect(e.message).toContain('20200101-000000000-000000000');
  });

  it('an unknown step is UNKNOWN_STEP listing the steps of the run', async () => {
    const run = await runner.run(training);
    for (const r of [run, run.id]) {
      const e = await rejection(runner.explain(r, 'svm_trainer'));
      expect(e.code).toBe('UNKNOWN_STEP');
      expect(e.message).toContain('svm_trainer');
      for (const name of STEPS) expect(e.message).toContain(name);
    }
  });
});

describe('the log line of every executed step', () => {
  it("first run: '<step>: running because it was never cached before'", async () => {
    const run = await runner.run(training);
    for (const name of STEPS) expect(log.lines).toContain(`${name}: running because it was never cached before`);
    expectLogLines(run);
  });

  it("a parameter change: '<step>: re-running because parameter gamma changed (0.002 -> 0.0001)'", async () => {
    await runner.run(training);
    log.clear();
    const run = await runner.run(training, { gamma: 0.0001 });
    expect(log.lines).toContain('svc_trainer: re-running because parameter gamma changed (0.002 -> 0.0001)');
    expect(log.lines).toContain('evaluator: re-running because input model changed (new content from svc_trainer)');
    expect(log.lines.filter((l) => l.includes('running because'))).toHaveLength(2);
    expectLogLines(run);
  });

  it('an upstream parameter change, runtime refresh and disabled caching each log their reason', async () => {
    await runner.run(training);
    for (const [p, params] of [
      [training, { rows: 3 }],
      [training.withOptions({ refresh: true }), {}],
      [training.withOptions({ enableCache: false }), {}],
    ] as const) {
      log.clear();
      const run = await runner.run(p, params);
      expect(log.lines.filter((l) => l.includes('running because')).length).toBeGreaterThan(0);
      expectLogLines(run);
    }
  });
});

describe('runner.plan', () => {
  it('on an empty store: every root step execute (NeverCached), downstream steps depend on them', async () => {
    const plan = await runner.plan(training, { gamma: 0.002 });
    expect(plan.pipeline).toBe('training_pipeline');
    expect(Object.keys(plan.steps)).toEqual([...STEPS]);
    expect(plan.steps.training_data_loader).toEqual({ name: 'training_data_loader', expected: 'execute', reason: { _tag: 'NeverCached' }, message: 'it was never cached before' });
    expect(plan.steps.labels_reader).toEqual({ name: 'labels_reader', expected: 'execute', reason: { _tag: 'NeverCached' }, message: 'it was never cached before' });
    expect(plan.steps.svc_trainer).toMatchObject({ expected: 'depends', upstream: ['training_data_loader'] });
    expect(plan.steps.evaluator).toMatchObject({ expected: 'depends', upstream: expect.arrayContaining(['svc_trainer', 'labels_reader']) });
    expect(plan.steps.evaluator?.expected === 'depends' && plan.steps.evaluator.upstream).toHaveLength(2);
  });

  it('after a run, the same parameters plan every step cached, from that run', async () => {
    const run = await runner.run(training, { gamma: 0.002 });
    const plan = await runner.plan(training, { gamma: 0.002 });
    for (const name of STEPS) {
      expect(plan.steps[name]).toMatchObject({ name, expected: 'cached', cachedFrom: run.id });
      expect(plan.steps[name]?.message).toContain(run.id);
    }
  });

  it('a changed parameter of a downstream step: upstream cached, that step execute with the Parameter reason', async () => {
    const run = await runner.run(training, { gamma: 0.002 });
    const plan = await runner.plan(training, { gamma: 0.0001 });
    expect(plan.steps.training_data_loader).toMatchObject({ expected: 'cached', cachedFrom: run.id });
    expect(plan.steps.labels_reader).toMatchObject({ expected: 'cached', cachedFrom: run.id });
    expect(plan.steps.svc_trainer).toEqual({
      name: 'svc_trainer',
      expected: 'execute',
      reason: { _tag: 'KeyChanged', changes: [{ _tag: 'Parameter', name: 'gamma', before: '0.002', after: '0.0001' }] },
      message: 'parameter gamma changed (0.002 -> 0.0001)',
    });
    expect(plan.steps.evaluator).toMatchObject({ expected: 'depends', upstream: ['svc_trainer'] });
  });

  it('a changed parameter of an upstream step: that step execute, its downstream steps depend', async () => {
    await runner.run(training, { rows: 2 });
    const plan = await runner.plan(training, { rows: 3 });
    expect(plan.steps.training_data_loader).toMatchObject({ expected: 'execute', reason: { _tag: 'KeyChanged', changes: [{ _tag: 'Parameter', name: 'rows', before: '2', after: '3' }] } });
    expect(plan.steps.labels_reader).toMatchObject({ expected: 'cached' });
    expect(plan.steps.svc_trainer).toMatchObject({ expected: 'depends', upstream: ['training_data_loader'] });
    expect(plan.steps.evaluator).toMatchObject({ expected: 'depends', upstream: ['svc_trainer'] });
  });

  it('with caching disabled at runtime: execute everywhere with CacheDisabled', async () => {
    await runner.run(training);
    for (const plan of [await runner.plan(training.withOptions({ enableCache: false })), await runner.plan(training.withOptions({ enableCache: false }), { gamma: 7 })]) {
      for (const name of STEPS) {
        expect(plan.steps[name]).toEqual({ name, expected: 'execute', reason: { _tag: 'CacheDisabled', decidedBy: 'runtime' }, message: 'caching is disabled by the runtime options' });
      }
    }
  });

  it('executes nothing and writes no run', async () => {
    expect(await runner.listRuns()).toEqual([]);
    await runner.plan(training);
    expect(calls).toEqual({ loader: 0, labels: 0, trainer: 0, evaluator: 0 });
    expect(await runner.listRuns()).toEqual([]);
    await runner.run(training);
    const runsBefore = await runner.listRuns();
    const callsBefore = { ...calls };
    await runner.plan(training, { gamma: 0.3, rows: 5 });
    await runner.plan(training.withOptions({ refresh: true }));
    expect(calls).toEqual(callsBefore);
    expect(await runner.listRuns()).toEqual(runsBefore);
    const next = await runner.run(training);
    expect(Object.values(next.steps).every((s) => s.status === 'cached')).toBe(true);
  });

  it('agrees with the run that follows: steps planned to execute execute, for the reason planned', async () => {
    await runner.run(training);
    const plan = await runner.plan(training, { gamma: 0.0001 });
    const run = await runner.run(training, { gamma: 0.0001 });
    for (const name of STEPS) {
      const planned = plan.steps[name];
      const actual = run.steps[name];
      if (planned?.expected === 'cached') expect(actual).toMatchObject({ status: 'cached', cachedFrom: planned.cachedFrom });
      if (planned?.expected === 'execute') expect(actual).toMatchObject({ status: 'executed', why: planned.reason, reason: planned.message });
    }
  });
});

describe('a step used by two pipelines', () => {
  const other = pipeline('other_pipeline', (p, { rows = 2 }: { rows?: number }) => ({ data: p.call(loader, { rows }).X_train }));
  const loaderOnly = pipeline('loader_only', (p, { rows = 2 }: { rows?: number }) => ({ data: p.call(loader, { rows }).y_train }));

  it('the same key is a hit in the second pipeline', async () => {
    const first = await runner.run(other);
    const second = await runner.run(loaderOnly);
    expect(second.steps.training_data_loader).toMatchObject({ status: 'cached', cachedFrom: first.id });
  });

  it("its first run in the second pipeline is compared with the first pipeline's entry, not called never cached", async () => {
    await runner.run(other, { rows: 2 });
    log.clear();
    const run = await runner.run(loaderOnly, { rows: 3 });
    expect(run.steps.training_data_loader?.why).toEqual({ _tag: 'KeyChanged', changes: [{ _tag: 'Parameter', name: 'rows', before: '2', after: '3' }] });
    expect(log.lines).toContain('training_data_loader: re-running because parameter rows changed (2 -> 3)');
    const plan = await runner.plan(other, { rows: 4 });
    expect(plan.steps.training_data_loader).toMatchObject({ expected: 'execute', reason: { _tag: 'KeyChanged', changes: [{ _tag: 'Parameter', name: 'rows', before: '3', after: '4' }] } });
  });
});
