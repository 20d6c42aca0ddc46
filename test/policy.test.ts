/**
 * The cache policy settings in real runs: version, dependsOn, files, ignoredInputs, expiresAfter,
 * cacheKey, refresh, and the precedence of the layers that set them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRunner, pipeline, step, type RunRecord, type Runner, type Step } from '../src';
import type { ExecutionReason } from '../src/cache/reasons';
import { collectingLogger, removeDir, tempDir, rejection, type CollectingLogger } from './support/fixtures';

const dirs: string[] = [];
const runners: Runner[] = [];
let log: CollectingLogger;
let runner: Runner;

const newDir = (): string => {
  const d = tempDir();
  dirs.push(d);
  return d;
};

/** A runner over a fresh store; `runner` is one made for each test. */
const freshRunner = (): Runner => {
  const r = createRunner({ dir: newDir(), logger: log });
  runners.push(r);
  return r;
};

const calls: Record<string, number> = {};
const count = (name: string): void => {
  calls[name] = (calls[name] ?? 0) + 1;
};

beforeEach(() => {
  log = collectingLogger();
  runner = freshRunner();
  for (const k of Object.keys(calls)) delete calls[k];
});
afterEach(async () => {
  await Promise.all(runners.splice(0).map((r) => r.close()));
  for (const d of dirs.splice(0)) removeDir(d);
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The status of each step of a run. */
const statuses = (run: RunRecord): Record<string, string> => Object.fromEntries(Object.entries(run.steps).map(([k, s]) => [k, s.status]));

/** A pipeline of one step taking { x }. */
const single = <R>(s: Step<{ x: number }, R>, name = 'single') => pipeline(name, (p, { x = 1 }: { x?: number }) => ({ out: p.call(s, { x }) }));

// steps

const fitOne = step(function fit({ x }: { x: number }) {
  count('fit');
  return x + 1;
});
const fitOther = step(function fit({ x }: { x: number }) {
  count('fit');
  return x * 100;
});

describe('version', () => {
  it('with a version set, a different function body under the same step name and version is cached', async () => {
    const first = await runner.run(single(fitOne.withOptions({ version: '1' })));
    expect(statuses(first)).toEqual({ fit: 'executed' });
    const second = await runner.run(single(fitOther.withOptions({ version: '1' })));
    expect(statuses(second)).toEqual({ fit: 'cached' });
    expect(second.steps.fit?.cachedFrom).toBe(first.id);
    expect(await second.output('out')).toBe(2);
    expect(calls.fit).toBe(1);
  });

  it('bumping the version re-runs, and the reason names the version change', async () => {
    await runner.run(single(fitOne.withOptions({ version: '1' })));
    log.clear();
    const bumped = await runner.run(single(fitOther.withOptions({ version: '2' })));
    expect(statuses(bumped)).toEqual({ fit: 'executed' });
    expect(await bumped.output('out')).toBe(100);
    expect(bumped.steps.fit?.why).toEqual({ _tag: 'KeyChanged', changes: [{ _tag: 'Version', before: '1', after: '2' }] });
    expect(log.lines).toContain('fit: re-running because version changed (1 -> 2)');
    expect(calls.fit).toBe(2);
  });

  it('without a version, the different function body re-runs because its code changed', async () => {
    await runner.run(single(fitOne));
    const changed = await runner.run(single(fitOther));
    expect(statuses(changed)).toEqual({ fit: 'executed' });
    expect(changed.steps.fit?.why).toMatchObject({ _tag: 'KeyChanged', changes: [{ _tag: 'Code' }] });
  });
});

const tokenize = step(function tokenize({ text }: { text: string }) {
  count('tokenize');
  return text.split(' ');
});
const tokenizing = (s: Step<{ text: string }, string[]>) => pipeline('tokens', (p) => ({ out: p.call(s, { text: 'a b' }) }));
function splitOnSpace(s: string): string[] {
  return s.split(' ');
}
function splitOnComma(s: string): string[] {
  return s.split(',');
}

describe('dependsOn', () => {
  it('with a value: the same value stays cached; a different value re-runs, naming the dependency', async () => {
    await runner.run(tokenizing(tokenize.withOptions({ dependsOn: { x: { size: 1 } } })));
    const same = await runner.run(tokenizing(tokenize.withOptions({ dependsOn: { x: { size: 1 } } })));
    expect(statuses(same)).toEqual({ tokenize: 'cached' });
    log.clear();
    const changed = await runner.run(tokenizing(tokenize.withOptions({ dependsOn: { x: { size: 2 } } })));
    expect(statuses(changed)).toEqual({ tokenize: 'executed' });
    expect(changed.steps.tokenize?.why).toEqual({ _tag: 'KeyChanged', changes: [{ _tag: 'DependsOn', name: 'x' }] });
    expect(changed.steps.tokenize?.reason).toBe('dependency x changed');
    expect(log.lines).toContain('tokenize: re-running because dependency x changed');
    expect(calls.tokenize).toBe(2);
  });

  it('with a function: the same function stays cached; a different function re-runs', async () => {
    await runner.run(tokenizing(tokenize.withOptions({ dependsOn: { splitter: splitOnSpace } })));
    const same = await runner.run(tokenizing(tokenize.withOptions({ dependsOn: { splitter: splitOnSpace } })));
    expect(statuses(same)).toEqual({ tokenize: 'cached' });
    const changed = await runner.run(tokenizing(tokenize.withOptions({ dependsOn: { splitter: splitOnComma } })));
    expect(statuses(changed)).toEqual({ tokenize: 'executed' });
    expect(changed.steps.tokenize?.reason).toBe('dependency splitter changed');
  });
});

const readLabels = step(function read_labels({ file }: { file: string }) {
  count('read_labels');
  return fs.readFileSync(file, 'utf8').split(',');
});
const constant = step(function constant({ x }: { x: number }) {
  count('constant');
  return x;
});

describe('files', () => {
  it("changing the file's content re-runs, naming the file; touching it without change stays cached", async () => {
    const file = path.join(newDir(), 'labels.csv');
    fs.writeFileSync(file, 'cat,dog');
    const p = pipeline('labels', (b) => ({ out: b.call(readLabels.withOptions({ files: [file] }), { file }) }));
    expect(statuses(await runner.run(p))).toEqual({ read_labels: 'executed' });
    expect(statuses(await runner.run(p))).toEqual({ read_labels: 'cached' });
    const later = new Date(fs.statSync(file).mtimeMs + 60_000);
    fs.utimesSync(file, later, later);
    expect(statuses(await runner.run(p))).toEqual({ read_labels: 'cached' });
    fs.writeFileSync(file, 'cat,bird');
    log.clear();
    const changed = await runner.run(p);
    expect(statuses(changed)).toEqual({ read_labels: 'executed' });
    expect(await changed.output('out')).toEqual(['cat', 'bird']);
    expect(changed.steps.read_labels?.why).toEqual({ _tag: 'KeyChanged', changes: [{ _tag: 'File', path: file }] });
    expect(log.lines).toContain(`read_labels: re-running because file ${file} changed`);
    expect(calls.read_labels).toBe(2);
  });

  it('a file that does not exist fails the run before anything executes, naming the path', async () => {
    const file = path.join(newDir(), 'missing.csv');
    const e = await rejection(runner.run(single(constant.withOptions({ files: [file] }), 'missing_file')));
    expect(e.code).toBe('INVALID_OPTIONS');
    expect(e.field).toBe('files');
    expect(e.step).toBe('constant');
    expect(e.message).toContain(file);
    expect(calls.constant).toBeUndefined();
  });

  it('a folder listed in files is an error too: the files in it must be listed', async () => {
    const e = await rejection(runner.run(single(constant.withOptions({ files: [newDir()] }), 'folder_file')));
    expect(e.code).toBe('INVALID_OPTIONS');
    expect(e.message).toContain('is a folder');
  });
});

const source = step(function source({ data, note }: { data: number; note: string }) {
  count('source');
  return { values: [data, data + 1], progress: `progress: ${note}` };
}).outputs({ values: 'auto', progress: 'auto' });
const consume = step(function consume({ values, progress }: { values: number[]; progress: string }) {
  count('consume');
  return { doubled: values.map((v) => v * 2), logged: progress.length > 0 };
});
const withIgnored = pipeline('ignored_inputs', (p, { data = 1, note = 'a' }: { data?: number; note?: string }) => {
  const { values, progress } = p.call(source, { data, note });
  return {
    ignoring: p.call(consume.withOptions({ ignoredInputs: ['progress'] }), { values, progress }),
    all: p.call(consume.named('consume_all'), { values, progress }),
  };
});

describe('ignoredInputs', () => {
  it('a changed ignored input keeps the step cached; a changed other input re-runs it', async () => {
    await runner.run(withIgnored, { data: 1, note: 'a' });
    const noteChanged = await runner.run(withIgnored, { data: 1, note: 'b' });
    expect(statuses(noteChanged)).toEqual({ source: 'executed', consume: 'cached', consume_all: 'executed' });
    expect(noteChanged.steps.consume_all?.reason).toBe('input progress changed (new content from source)');
    const dataChanged = await runner.run(withIgnored, { data: 2, note: 'b' });
    expect(statuses(dataChanged)).toEqual({ source: 'executed', consume: 'executed', consume_all: 'executed' });
    expect(dataChanged.steps.consume?.why).toEqual({ _tag: 'KeyChanged', changes: [{ _tag: 'Input', name: 'values', step: 'source', output: 'values', added: false, removed: false }] });
    expect(await dataChanged.output('ignoring')).toEqual({ doubled: [4, 6], logged: true });
  });
});

const stamp = step(function stamp({ x }: { x: number }) {
  count('stamp');
  return x;
});

describe('expiresAfter', () => {
  it('an entry older than expiresAfter re-runs with an Expired reason', async () => {
    const p = single(stamp.withOptions({ expiresAfter: 1 }), 'expiring');
    await runner.run(p);
    await sleep(20);
    log.clear();
    const again = await runner.run(p);
    expect(statuses(again)).toEqual({ stamp: 'executed' });
    const why = again.steps.stamp?.why as ExecutionReason | undefined;
    expect(why).toMatchObject({ _tag: 'Expired', decidedBy: 'step', expiresAfterMs: 1 });
    expect(why?._tag === 'Expired' && why.ageMs).toBeGreaterThanOrEqual(15);
    expect(log.lines).toEqual(expect.arrayContaining([expect.stringMatching(/^stamp: re-running because its cache entry expired \(\d+ms old, expiresAfter 1ms\)$/)]));
    expect(calls.stamp).toBe(2);
  });

  it('expiresAfter set at run time expires the entry too, decided by the runtime options', async () => {
    const p = single(stamp, 'expiring_runtime');
    await runner.run(p);
    await sleep(20);
    const again = await runner.run(p.withOptions({ expiresAfter: 1 }));
    expect(again.steps.stamp?.why).toMatchObject({ _tag: 'Expired', decidedBy: 'runtime', expiresAfterMs: 1 });
  });

  it.each<[number | string]>([['1h'], [3_600_000]])('an entry younger than expiresAfter %p stays cached', async (expiresAfter) => {
    const p = single(stamp.withOptions({ expiresAfter }), 'not_expiring');
    const first = await runner.run(p);
    await sleep(20);
    const again = await runner.run(p);
    expect(statuses(again)).toEqual({ stamp: 'cached' });
    expect(again.steps.stamp?.cachedFrom).toBe(first.id);
    expect(calls.stamp).toBe(1);
  });
});

const etags: Record<string, string> = {};
const seen: unknown[] = [];
const fetchTable = step(function fetch_table({ url }: { url: string }) {
  count('fetch_table');
  return url.length;
});
const fetching = (s: Step<{ url: string }, number>) => pipeline('fetching', (p, { url = 'https://example.org/table' }: { url?: string }) => ({ out: p.call(s, { url }) }));
const byEtag = fetchTable.withOptions({
  cacheKey: (params: { url: string }) => {
    seen.push(params);
    return `${params.url}@${etags[params.url] ?? 'none'}`;
  },
});

describe('cacheKey', () => {
  beforeEach(() => {
    seen.length = 0;
    etags['https://example.org/table'] = 'v1';
  });

  it('is a function of the parameters: the same string stays cached, a different string re-runs', async () => {
    await runner.run(fetching(byEtag));
    expect(seen[0]).toEqual({ url: 'https://example.org/table' });
    expect(statuses(await runner.run(fetching(byEtag)))).toEqual({ fetch_table: 'cached' });
    etags['https://example.org/table'] = 'v2';
    log.clear();
    const changed = await runner.run(fetching(byEtag));
    expect(statuses(changed)).toEqual({ fetch_table: 'executed' });
    expect(changed.steps.fetch_table?.why).toEqual({ _tag: 'KeyChanged', changes: [{ _tag: 'CacheKey', before: 'https://example.org/table@v1', after: 'https://example.org/table@v2' }] });
    expect(log.lines).toContain('fetch_table: re-running because its cacheKey changed (https://example.org/table@v1 -> https://example.org/table@v2)');
    expect(calls.fetch_table).toBe(2);
  });

  it('may return a promise', async () => {
    const asyncKey = fetchTable.withOptions({ cacheKey: async ({ url }: { url: string }) => `${url}#${etags[url] ?? ''}` });
    await runner.run(fetching(asyncKey));
    expect(statuses(await runner.run(fetching(asyncKey)))).toEqual({ fetch_table: 'cached' });
    etags['https://example.org/table'] = 'v3';
    expect(statuses(await runner.run(fetching(asyncKey)))).toEqual({ fetch_table: 'executed' });
  });

  it('returning a non-string fails the run with INVALID_OPTIONS naming cacheKey', async () => {
    const bad = fetchTable.withOptions({ cacheKey: () => 42 as unknown as string });
    const e = await rejection(runner.run(fetching(bad)));
    expect(e.code).toBe('INVALID_OPTIONS');
    expect(e.field).toBe('cacheKey');
    expect(e.step).toBe('fetch_table');
    expect(e.message).toContain('cacheKey');
    expect(e.message).toContain('fetch_table');
    expect(e.run?.steps.fetch_table?.status).toBe('failed');
    expect(calls.fetch_table).toBeUndefined();
  });

  it('throwing fails the run naming the step', async () => {
    const throwing = fetchTable.withOptions({
      cacheKey: () => {
        throw new Error('HEAD request failed');
      },
    });
    const e = await rejection(runner.run(fetching(throwing)));
    expect(e.step).toBe('fetch_table');
    expect(e.message).toContain('fetch_table');
    expect(e.message).toContain('HEAD request failed');
    expect(e.run?.steps.fetch_table?.status).toBe('failed');
    expect(calls.fetch_table).toBeUndefined();
  });
});

const loadRows = step(function load_rows({ n }: { n: number }) {
  count('load_rows');
  return Array.from({ length: n }, (_, i) => i);
});
const trainModel = step(function train_model({ rows, rate }: { rows: number[]; rate: number }) {
  count('train_model');
  return rows.reduce((s, r) => s + r * rate, 0);
});
const twoSteps = pipeline('two_steps', (p, { n = 3, rate = 0.5 }: { n?: number; rate?: number }) => {
  const rows = p.call(loadRows, { n });
  return { model: p.call(trainModel, { rows, rate }) };
});

describe('refresh', () => {
  it('withOptions({ refresh: true }) re-executes every step; the next normal run is cached from the refreshing run', async () => {
    await runner.run(twoSteps);
    log.clear();
    const refreshing = await runner.run(twoSteps.withOptions({ refresh: true }));
    expect(statuses(refreshing)).toEqual({ load_rows: 'executed', train_model: 'executed' });
    for (const name of ['load_rows', 'train_model']) {
      expect(refreshing.steps[name]?.why).toEqual({ _tag: 'Refresh', decidedBy: 'runtime' });
      expect(refreshing.steps[name]?.reason).toBe('a refresh was asked for by the runtime options');
      expect(log.lines).toContain(`${name}: re-running because a refresh was asked for by the runtime options`);
    }
    expect(calls).toEqual({ load_rows: 2, train_model: 2 });
    const next = await runner.run(twoSteps);
    expect(statuses(next)).toEqual({ load_rows: 'cached', train_model: 'cached' });
    expect(next.steps.load_rows?.cachedFrom).toBe(refreshing.id);
    expect(next.steps.train_model?.cachedFrom).toBe(refreshing.id);
  });

  it('withOptions({ steps: { name: { refresh: true } } }) refreshes only that step', async () => {
    const first = await runner.run(twoSteps);
    const refreshing = await runner.run(twoSteps.withOptions({ steps: { train_model: { refresh: true } } }));
    expect(statuses(refreshing)).toEqual({ load_rows: 'cached', train_model: 'executed' });
    expect(refreshing.steps.load_rows?.cachedFrom).toBe(first.id);
    expect(refreshing.steps.train_model?.why).toEqual({ _tag: 'Refresh', decidedBy: 'runtimeStep' });
    expect(refreshing.steps.train_model?.reason).toContain('runtime options for this step');
    expect(calls).toEqual({ load_rows: 1, train_model: 2 });
  });

  it('refresh on a step re-executes it on every run', async () => {
    const p = single(stamp.withOptions({ refresh: true }), 'always');
    await runner.run(p);
    const again = await runner.run(p);
    expect(again.steps.stamp?.why).toEqual({ _tag: 'Refresh', decidedBy: 'step' });
    expect(calls.stamp).toBe(2);
  });
});

const stepA = step(function a({ x }: { x: number }) {
  count('a');
  return x + 1;
});
const stepB = step(function b({ y }: { y: number }) {
  count('b');
  return y * 2;
});
const stepC = step(function c({ a, b }: { a: number; b: number }) {
  count('c');
  return a + b;
});
const threeSteps = (sa = stepA, sb = stepB, defaults = {}) =>
  pipeline(
    'precedence',
    (p) => {
      const a = p.call(sa, { x: 1 });
      const b = p.call(sb, { y: 2 });
      return { c: p.call(stepC, { a, b }) };
    },
    defaults,
  );

describe('precedence in real runs', () => {
  it('runtime options for one step beat the runtime options: that step cached, the others executed', async () => {
    const first = await runner.run(threeSteps());
    const run = await runner.run(threeSteps().withOptions({ enableCache: false, steps: { a: { enableCache: true } } }));
    expect(statuses(run)).toEqual({ a: 'cached', b: 'executed', c: 'executed' });
    expect(run.steps.a?.cachedFrom).toBe(first.id);
    expect(run.steps.b?.why).toEqual({ _tag: 'CacheDisabled', decidedBy: 'runtime' });
    expect(run.steps.c?.reason).toBe('caching is disabled by the runtime options');
  });

  it('runtime options beat step settings, and runtime options for one step beat both', async () => {
    await runner.run(threeSteps(stepA.withOptions({ enableCache: false }), stepB.withOptions({ enableCache: true })));
    const run = await runner.run(threeSteps(stepA.withOptions({ enableCache: false }), stepB.withOptions({ enableCache: true })).withOptions({ enableCache: false, steps: { a: { enableCache: true } } }));
    expect(statuses(run)).toEqual({ a: 'cached', b: 'executed', c: 'executed' });
    expect(run.steps.b?.why).toEqual({ _tag: 'CacheDisabled', decidedBy: 'runtime' });
  });

  it('pipeline defaults for one step: pipeline(name, def, { steps: { a: { enableCache: false } } })', async () => {
    const p = threeSteps(stepA, stepB, { steps: { a: { enableCache: false } } });
    await runner.run(p);
    const run = await runner.run(p);
    expect(statuses(run)).toEqual({ a: 'executed', b: 'cached', c: 'cached' });
    expect(run.steps.a?.why).toEqual({ _tag: 'CacheDisabled', decidedBy: 'pipeline' });
    expect(run.steps.a?.reason).toBe('caching is disabled by the pipeline settings');
    expect(calls).toEqual({ a: 2, b: 1, c: 1 });
  });

  it('pipeline defaults for one step beat the pipeline-wide defaults, and step settings beat both', async () => {
    const p = threeSteps(stepA, stepB.withOptions({ enableCache: true }), { enableCache: false, steps: { a: { enableCache: true } } });
    await runner.run(p);
    const run = await runner.run(p);
    expect(statuses(run)).toEqual({ a: 'cached', b: 'cached', c: 'executed' });
    expect(run.steps.c?.why).toEqual({ _tag: 'CacheDisabled', decidedBy: 'pipeline' });
  });

  it('a step setting beats the pipeline defaults for that step', async () => {
    const p = threeSteps(stepA.withOptions({ enableCache: true }), stepB, { steps: { a: { enableCache: false } } });
    await runner.run(p);
    expect(statuses(await runner.run(p))).toEqual({ a: 'cached', b: 'cached', c: 'cached' });
  });

  it('a step setting turning caching off is reported as the step settings', async () => {
    const p = threeSteps(stepA, stepB.withOptions({ enableCache: false }));
    await runner.run(p);
    const run = await runner.run(p);
    expect(run.steps.b?.why).toEqual({ _tag: 'CacheDisabled', decidedBy: 'step' });
    expect(log.lines).toContain('b: re-running because caching is disabled by the step settings');
  });
});

const trainWithDefault = step(function train_default({ X, gamma = 0.001 }: { X: number; gamma?: number }) {
  count('train_default');
  return X * gamma;
});
const DEFAULT_RATE = 0.5;
const trainWithVariableDefault = step(function train_variable({ X, rate = DEFAULT_RATE }: { X: number; rate?: number }) {
  count('train_variable');
  return X * rate;
});

describe('parameter defaults', () => {
  const calling = (args: { X: number; gamma?: number }) => pipeline('defaults', (p) => ({ out: p.call(trainWithDefault, args) }));

  it('passing a constant default explicitly is a hit on the entry made without it, and the reverse', async () => {
    expect(statuses(await runner.run(calling({ X: 2 })))).toEqual({ train_default: 'executed' });
    expect(statuses(await runner.run(calling({ X: 2, gamma: 0.001 })))).toEqual({ train_default: 'cached' });
    const other = freshRunner();
    expect(statuses(await other.run(calling({ X: 2, gamma: 0.001 })))).toEqual({ train_default: 'executed' });
    expect(statuses(await other.run(calling({ X: 2 })))).toEqual({ train_default: 'cached' });
  });

  it('a value other than the default misses, and the reason shows the default as the value before', async () => {
    await runner.run(calling({ X: 2 }));
    const changed = await runner.run(calling({ X: 2, gamma: 0.01 }));
    expect(changed.steps.train_default?.why).toEqual({ _tag: 'KeyChanged', changes: [{ _tag: 'Parameter', name: 'gamma', before: '0.001', after: '0.01' }] });
  });

  it('a default that is not a constant is reported, and the key has only what is passed', async () => {
    const p = (args: { X: number; rate?: number }) => pipeline('variable_default', (b) => ({ out: b.call(trainWithVariableDefault, args) }));
    await runner.run(p({ X: 2 }));
    expect(log.warnings.join('\n')).toContain('Step train_variable: the default of rate (DEFAULT_RATE) is not a constant');
    expect(statuses(await runner.run(p({ X: 2, rate: 0.5 })))).toEqual({ train_variable: 'executed' });
  });
});

const logged: string[] = [];
const scale = step(function scale({ x, factor = 2, onProgress }: { x: number; factor?: number; onProgress?: (message: string) => void }) {
  count('scale');
  onProgress?.(`scaling ${x}`);
  return x * factor;
});
const quietScale = scale.withOptions({ ignoredInputs: ['onProgress'] });

describe('ignoredInputs on plain parameters', () => {
  it('an ignored parameter is never encoded: a callback may be passed, changed or left out, and the step stays cached', async () => {
    const withCallback = (onProgress?: (m: string) => void) =>
      pipeline('ignored_parameter', (p) => ({ out: p.call(quietScale, onProgress === undefined ? { x: 3 } : { x: 3, onProgress }) }));
    const first = await runner.run(withCallback((m) => logged.push(m)));
    expect(statuses(first)).toEqual({ scale: 'executed' });
    expect(logged).toEqual(['scaling 3']);
    expect(statuses(await runner.run(withCallback((m) => logged.push(`other ${m}`))))).toEqual({ scale: 'cached' });
    expect(statuses(await runner.run(withCallback()))).toEqual({ scale: 'cached' });
    expect(calls.scale).toBe(1);
  });

  it('an ignored plain value does not change the key, whatever its value', async () => {
    const p = (factor: number) => pipeline('ignored_value', (b) => ({ out: b.call(scale.withOptions({ ignoredInputs: ['factor'] }), { x: 3, factor }) }));
    await runner.run(p(2));
    const again = await runner.run(p(10));
    expect(statuses(again)).toEqual({ scale: 'cached' });
    expect(await again.output('out')).toBe(6);
  });
});

const tableName = step(function table_name({ day }: { day: string }) {
  count('table_name');
  return `events_${day}`;
});
const readTable = step(function read_table({ table, limit }: { table: string; limit: number }) {
  count('read_table');
  return `${table}:${limit}`;
});
const versions: Record<string, string> = {};
const keyArguments: unknown[] = [];
const byTableVersion = readTable.withOptions({
  cacheKey: ({ table, limit }: { table: string; limit: number }) => {
    keyArguments.push({ table, limit });
    return `${table}@${versions[table] ?? 'v0'}`;
  },
});
const tables = pipeline('tables', (p, { day = '2026-01-01' }: { day?: string }) => ({ out: p.call(byTableVersion, { table: p.call(tableName, { day }), limit: 10 }) }));

describe('cacheKey with inputs from upstream steps', () => {
  beforeEach(() => {
    keyArguments.length = 0;
  });

  it('receives the upstream values together with the parameters, on a fresh run and when the upstream step is cached', async () => {
    await runner.run(tables);
    expect(keyArguments).toEqual([{ table: 'events_2026-01-01', limit: 10 }]);
    keyArguments.length = 0;
    const again = await runner.run(tables);
    expect(statuses(again)).toEqual({ table_name: 'cached', read_table: 'cached' });
    expect(keyArguments).toEqual([{ table: 'events_2026-01-01', limit: 10 }]);
    versions['events_2026-01-01'] = 'v1';
    const changed = await runner.run(tables);
    expect(statuses(changed)).toEqual({ table_name: 'cached', read_table: 'executed' });
    expect(changed.steps.read_table?.reason).toBe('its cacheKey changed (events_2026-01-01@v0 -> events_2026-01-01@v1)');
  });

  it('a dry run computes the key from the cached upstream value too', async () => {
    await runner.run(tables);
    keyArguments.length = 0;
    const plan = await runner.plan(tables);
    expect(plan.steps.read_table?.expected).toBe('cached');
    expect(keyArguments).toEqual([{ table: 'events_2026-01-01', limit: 10 }]);
  });
});

describe('settings that name nothing', () => {
  it('an ignoredInputs name that is no input or parameter of the step fails before anything executes', async () => {
    const e = await rejection(runner.run(single(constant.withOptions({ ignoredInputs: ['progres'] }), 'typo_ignored')));
    expect(e.code).toBe('INVALID_OPTIONS');
    expect(e.field).toBe('ignoredInputs');
    expect(e.step).toBe('constant');
    expect(e.message).toContain('progres');
    expect(e.message).toContain('its inputs and parameters are: x');
    expect(calls.constant).toBeUndefined();
  });

  it('an ignored name the function declares but the call leaves out is accepted', async () => {
    const p = pipeline('declared_ignored', (b) => ({ out: b.call(scale.withOptions({ ignoredInputs: ['onProgress'] }), { x: 1 }) }));
    expect(statuses(await runner.run(p))).toEqual({ scale: 'executed' });
  });

  it('pipeline-wide ignoredInputs must name an input of some step', async () => {
    const p = pipeline('wide_ignored', (b) => ({ a: b.call(constant, { x: 1 }), b: b.call(scale, { x: 2 }) }));
    expect(statuses(await runner.run(p.withOptions({ ignoredInputs: ['onProgress'] })))).toEqual({ constant: 'executed', scale: 'executed' });
    const e = await rejection(runner.run(p.withOptions({ ignoredInputs: ['nothing'] })));
    expect(e.code).toBe('INVALID_OPTIONS');
    expect(e.field).toBe('ignoredInputs');
    expect(e.message).toContain('nothing');
  });

  it('a dependsOn entry whose value is undefined (a misspelt import) fails naming it', async () => {
    const e = await rejection(runner.run(single(constant.withOptions({ dependsOn: { tokenizer: undefined } }), 'undefined_dependency')));
    expect(e.code).toBe('INVALID_OPTIONS');
    expect(e.field).toBe('dependsOn.tokenizer');
    expect(e.step).toBe('constant');
    expect(calls.constant).toBeUndefined();
  });

  it('a run config or runtime steps section naming a step the pipeline does not have fails naming it', async () => {
    const p = single(constant, 'config_typo');
    const fromConfig = await rejection(runner.run(p.withRunConfig({ steps: { constnt: { refresh: true } } })));
    expect(fromConfig.code).toBe('INVALID_OPTIONS');
    expect(fromConfig.field).toBe('steps.constnt');
    expect(fromConfig.message).toContain('its steps are: constant');
    const fromRuntime = await rejection(runner.run(p.withOptions({ steps: { constnt: { refresh: true } } })));
    expect(fromRuntime.field).toBe('steps.constnt');
    expect(calls.constant).toBeUndefined();
    expect(await runner.listRuns()).toEqual([]);
  });
});
