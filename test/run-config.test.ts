import * as fs from 'node:fs';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { applyRunConfig, decodeRunConfig, loadRunConfig, parseRunConfigText, readRunConfig, type RunConfig, type RunConfigError } from '../src/config/run-config';
import { createRunner, pipeline, silentLogger, step, StepcacheError, type Runner } from '../src';
import { removeDir, tempDir } from './support/fixtures';

// helpers

const fixture = (name: string): string => path.join(__dirname, 'fixtures', 'config', name);

const loaded = async (file: string): Promise<RunConfig> => {
  const r = await loadRunConfig(file);
  if (E.isLeft(r)) throw new Error(`expected ${file} to load, got ${r.left._tag}: ${r.left.message}`);
  return r.right;
};

const failure = async (file: string): Promise<RunConfigError> => {
  const r = await loadRunConfig(file);
  if (E.isRight(r)) throw new Error(`expected ${file} to be refused, got ${JSON.stringify(r.right)}`);
  return r.left;
};

const decodeFailure = (input: unknown, source = 'run.yaml'): RunConfigError => {
  const r = decodeRunConfig(input, source);
  if (E.isRight(r)) throw new Error(`expected a refusal, got ${JSON.stringify(r.right)}`);
  return r.left;
};

const withoutSource = ({ source: _source, ...rest }: RunConfig) => rest;

let dir: string;
const runners: Runner[] = [];

beforeEach(() => {
  dir = tempDir('stepcache-run-config-');
});
afterEach(async () => {
  await Promise.all(runners.splice(0).map((r) => r.close()));
  removeDir(dir);
});

/** Writes a file in the test's temporary directory and returns its path. */
const write = (name: string, content: string | Uint8Array): string => {
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  return file;
};

// valid files

describe('valid run config files', () => {
  const expected = {
    settings: { enableCache: true, expiresAfter: '7d' },
    steps: { svc_trainer: { enableCache: false }, training_data_loader: { refresh: false } },
    parameters: { gamma: 0.001, kernels: ['rbf', 'linear'] },
  };

  it('decode to the same RunConfig from JSON, YAML and YML', async () => {
    const json = await loaded(fixture('train.json'));
    const yaml = await loaded(fixture('train.yaml'));
    const yml = await loaded(fixture('train.yml'));
    expect(withoutSource(json)).toEqual(expected);
    expect(withoutSource(yaml)).toEqual(withoutSource(json));
    expect(withoutSource(yml)).toEqual(withoutSource(json));
    expect(yaml.source).toBe(fixture('train.yaml'));
  });

  it('are frozen plain data', async () => {
    const config = await loaded(fixture('train.yaml'));
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.settings)).toBe(true);
    expect(Object.isFrozen(config.steps.svc_trainer)).toBe(true);
    expect(Object.isFrozen(config.parameters['kernels'])).toBe(true);
    expect(Object.getPrototypeOf(config.parameters)).toBe(Object.prototype);
  });

  it('accept every setting that is data, at both levels', () => {
    const input = {
      enableCache: false,
      version: '2024-06-refit',
      files: ['data/train.csv'],
      ignoredInputs: ['progress'],
      expiresAfter: 3_600_000,
      refresh: true,
      steps: { svc_trainer: { version: '2', files: ['a.csv', 'b.csv'], ignoredInputs: ['log'], expiresAfter: '90s', refresh: false, enableCache: true } },
    };
    const { steps, ...settings } = input;
    expect(decodeRunConfig(input, 'all.json')).toEqual(E.right({ source: 'all.json', settings, steps, parameters: {} }));
  });

  it('treat an empty YAML file, or one with comments only, as an empty config', async () => {
    for (const content of ['', '# nothing configured yet\n']) {
      const config = await loaded(write('empty.yaml', content));
      expect(withoutSource(config)).toEqual({ settings: {}, steps: {}, parameters: {} });
    }
  });

  it('read YAML 1.2: "yes" is a string, not true', () => {
    const r = parseRunConfigText('enableCache: yes\n', 'yaml', 'old.yaml');
    expect(E.isLeft(r) && r.left.message).toContain('got "yes", expected true or false');
  });

  it('allow YAML anchors and aliases in reasonable numbers', () => {
    const text = 'shared: &off { enableCache: false }\n'.replace('shared', 'steps:\n  a') + '  b: *off\n  c: *off\n';
    const r = parseRunConfigText(text, 'yaml', 'anchors.yaml');
    expect(E.isRight(r) && r.right.steps).toEqual({ a: { enableCache: false }, b: { enableCache: false }, c: { enableCache: false } });
  });

  it('accept a byte order mark', async () => {
    expect(withoutSource(await loaded(write('bom.json', '\ufeff{ "enableCache": false }')))).toEqual({ settings: { enableCache: false }, steps: {}, parameters: {} });
    expect(withoutSource(await loaded(write('bom.yaml', '\ufeffenableCache: false\n')))).toEqual({ settings: { enableCache: false }, steps: {}, parameters: {} });
  });
});

// invalid files

describe('invalid run config files name the file, the field and what it allows', () => {
  it('enableCache: "yes" for a step', async () => {
    const file = fixture('step-enable-cache-yes.yaml');
    const e = await failure(file);
    expect(e).toMatchObject({ _tag: 'ConfigInvalid', file, field: 'steps.svc_trainer.enableCache' });
    expect(e.message).toContain(file);
    expect(e.message).toContain('steps.svc_trainer.enableCache');
    expect(e.message).toContain('got "yes", expected true or false');
  });

  it('enableCache: "yes" for the pipeline', async () => {
    const file = fixture('enable-cache-yes.json');
    const e = await failure(file);
    expect(e).toMatchObject({ _tag: 'ConfigInvalid', file, field: 'enableCache' });
    expect(e.message).toBe(`Invalid enableCache in run config ${file}: got "yes", expected true or false.`);
  });

  it('a negative expiresAfter', async () => {
    const file = fixture('negative-expiry.json');
    const e = await failure(file);
    expect(e).toMatchObject({ _tag: 'ConfigInvalid', file, field: 'expiresAfter' });
    expect(e.message).toContain(file);
    expect(e.message).toContain('got -1000, expected a number of milliseconds (0 or more)');
    expect(e.message).toContain("'7d'");
  });

  it('other invalid settings, at both levels', () => {
    expect(decodeFailure({ expiresAfter: 'soon' })).toMatchObject({ field: 'expiresAfter', message: expect.stringContaining("a duration like '90s'") });
    expect(decodeFailure({ version: '' })).toMatchObject({ field: 'version', message: expect.stringContaining('a non-empty string') });
    expect(decodeFailure({ files: 'data.csv' })).toMatchObject({ field: 'files', message: expect.stringContaining('an array of file paths') });
    expect(decodeFailure({ steps: { a: { refresh: 1 } } })).toMatchObject({ field: 'steps.a.refresh', message: expect.stringContaining('true or false') });
    expect(decodeFailure({ steps: { a: { ignoredInputs: [''] } } })).toMatchObject({ field: 'steps.a.ignoredInputs', message: expect.stringContaining('an array of input names') });
  });

  it('an unknown key, listing the allowed ones', async () => {
    const file = fixture('unknown-key.yaml');
    const e = await failure(file);
    expect(e).toMatchObject({ _tag: 'ConfigInvalid', file, field: 'parametres' });
    expect(e.message).toBe(`Unknown key "parametres" of run config ${file}; allowed keys: enableCache, version, files, ignoredInputs, expiresAfter, refresh, lockTimeout, timeout, steps, parameters, store.`);
  });

  it('an unknown key in a step, listing the allowed ones', () => {
    const e = decodeFailure({ steps: { svc_trainer: { enable_cache: false } } });
    expect(e).toMatchObject({ field: 'steps.svc_trainer.enable_cache' });
    expect(e.message).toBe('Unknown key "enable_cache" in steps.svc_trainer of run config run.yaml; allowed keys: enableCache, version, files, ignoredInputs, expiresAfter, refresh, lockTimeout, timeout.');
  });

  it('dependsOn or cacheKey in a file: they are code', async () => {
    const file = fixture('depends-on.yaml');
    const e = await failure(file);
    expect(e).toMatchObject({ _tag: 'ConfigInvalid', file, field: 'steps.svc_trainer.dependsOn' });
    expect(e.message).toContain(file);
    expect(e.message).toContain('cannot come from a file: dependsOn holds code');
    expect(e.message).toContain('withOptions({ dependsOn })');
    expect(decodeFailure({ cacheKey: 'etag' })).toMatchObject({ field: 'cacheKey', message: expect.stringContaining('cacheKey holds code (a function of the step input)') });
  });

  it('steps, a step or parameters of the wrong shape', () => {
    expect(decodeFailure({ steps: ['svc_trainer'] })).toMatchObject({ field: 'steps', message: 'Invalid steps in run config run.yaml: got ["svc_trainer"], expected an object of settings by step name, like { svc_trainer: { enableCache: false } }.' });
    expect(decodeFailure({ steps: { svc_trainer: false } })).toMatchObject({ field: 'steps.svc_trainer', message: expect.stringContaining('got false, expected an object of settings') });
    expect(decodeFailure({ steps: { 'svc trainer': {} } })).toMatchObject({ field: 'steps["svc trainer"]', message: expect.stringContaining('Invalid step name "svc trainer"') });
    expect(decodeFailure({ parameters: [0.001] })).toMatchObject({ field: 'parameters', message: expect.stringContaining('expected an object of parameter values') });
  });

  it('parameters that are not JSON data', () => {
    expect(parseRunConfigText('parameters:\n  grid: [0.1, .nan]\n', 'yaml', 'grid.yaml')).toEqual(
      E.left({ _tag: 'ConfigInvalid', file: 'grid.yaml', field: 'parameters.grid[1]', message: 'Invalid parameters.grid[1] in run config grid.yaml: got NaN, expected JSON data (null, true or false, a finite number, a string, an array or an object).' }),
    );
    expect(decodeFailure({ parameters: { when: new Date(0) } })).toMatchObject({ field: 'parameters.when', message: expect.stringContaining('got an instance of Date') });
    expect(decodeFailure({ parameters: { f: () => 1 } })).toMatchObject({ field: 'parameters.f', message: expect.stringContaining('got a function') });
  });

  it('a file that is not an object', async () => {
    const e = await failure(write('list.json', '[1, 2]'));
    expect(e).toMatchObject({ _tag: 'ConfigInvalid', field: '' });
    expect(e.message).toContain('list.json must be an object like { enableCache: true');
    expect((await failure(write('null.yaml', 'null\n'))).message).toContain('got null');
  });

  it('a wrong extension, naming the allowed ones', async () => {
    const file = fixture('train.toml');
    expect(await failure(file)).toEqual({ _tag: 'ConfigUnreadable', file, field: '', message: `Run config ${file} has the extension .toml; use one of .json, .yaml, .yml.` });
    expect((await failure(write('train', '{}'))).message).toContain('has no extension; use one of .json, .yaml, .yml');
  });

  it('an unreadable file', async () => {
    const missing = path.join(dir, 'missing.yaml');
    expect(await failure(missing)).toEqual({ _tag: 'ConfigUnreadable', file: missing, field: '', message: `Run config ${missing} cannot be read: it does not exist.` });
    const directory = path.join(dir, 'configs.yaml');
    fs.mkdirSync(directory);
    expect(await failure(directory)).toMatchObject({ _tag: 'ConfigUnreadable', message: `Run config ${directory} cannot be read: it is a directory.` });
  });

  it('a file that is not UTF-8', async () => {
    const file = write('latin1.yaml', Buffer.from([0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x3a, 0x20, 0xe9, 0x0a]));
    expect(await failure(file)).toMatchObject({ _tag: 'ConfigUnreadable', message: `Run config ${file} is not UTF-8 text.` });
  });

  it('a YAML syntax error, with its line', async () => {
    const file = fixture('syntax-error.yaml');
    const e = await failure(file);
    expect(e).toMatchObject({ _tag: 'ConfigSyntax', file, line: 5, column: 1 });
    expect(e.message).toBe(`Invalid YAML in ${file} at line 5, column 1: All mapping items must start at the same column.`);
  });

  it('a JSON syntax error, with its line', async () => {
    const file = fixture('syntax-error.json');
    const e = await failure(file);
    expect(e).toMatchObject({ _tag: 'ConfigSyntax', file, line: 3 });
    expect(e.message).toContain(`Invalid JSON in ${file} at line 3`);
  });

  it('duplicate keys, several documents and custom tags in YAML', () => {
    expect(parseRunConfigText('enableCache: true\nenableCache: false\n', 'yaml', 'dup.yaml')).toEqual(
      E.left({ _tag: 'ConfigSyntax', file: 'dup.yaml', field: '', line: 2, column: 1, message: 'Invalid YAML in dup.yaml at line 2, column 1: Map keys must be unique.' }),
    );
    expect(parseRunConfigText('enableCache: true\n---\nrefresh: true\n', 'yaml', 'two.yaml')).toMatchObject(E.left({ _tag: 'ConfigSyntax', line: 2, message: expect.stringContaining('multiple documents') }));
    expect(parseRunConfigText('? [a, b]\n: 1\n', 'yaml', 'key.yaml')).toMatchObject(E.left({ _tag: 'ConfigSyntax', message: expect.stringContaining('keys must be strings') }));
  });

  it('duplicate keys at any depth, in block and flow maps, however quoted, at the repeated key', () => {
    const duplicate = (text: string) => parseRunConfigText(text, 'yaml', 'dup.yaml');
    expect(duplicate('parameters:\n  a: 1\n  b: 2\n  a: 3\n')).toMatchObject(E.left({ _tag: 'ConfigSyntax', line: 4, column: 3, message: expect.stringContaining('Map keys must be unique') }));
    expect(duplicate('parameters:\n  a: 1\n  "a": 2\n')).toMatchObject(E.left({ _tag: 'ConfigSyntax', line: 3, column: 3 }));
    expect(duplicate('parameters: { x: [ { k: 1, k: 2 } ] }\n')).toMatchObject(E.left({ _tag: 'ConfigSyntax', line: 1, column: 28 }));
    expect(duplicate('steps:\n  a: { enableCache: true }\n  b: { enableCache: true, enableCache: false }\n')).toMatchObject(E.left({ _tag: 'ConfigSyntax', line: 3, column: 27 }));
    expect(duplicate('parameters:\n  a: { k: 1 }\n  b: { k: 1 }\n')).toEqual(E.right({ source: 'dup.yaml', settings: {}, steps: {}, parameters: { a: { k: 1 }, b: { k: 1 } } }));
  });

  it('a config of 40,000 keys, whole and with its duplicate key found', () => {
    const lines = Array.from({ length: 40_000 }, (_, i) => `  k${i}: ${i}`);
    const parsed = parseRunConfigText(`parameters:\n${lines.join('\n')}\n`, 'yaml', 'big.yaml');
    expect(E.isRight(parsed) && Object.keys(parsed.right.parameters)).toHaveLength(40_000);
    expect(parseRunConfigText(`parameters:\n${lines.join('\n')}\n  k39998: 0\n`, 'yaml', 'big.yaml')).toMatchObject(E.left({ line: 40_002, column: 3 }));
  });

  it('YAML tags that would construct code or binary data', async () => {
    const file = fixture('custom-tag.yaml');
    const e = await failure(file);
    expect(e).toMatchObject({ _tag: 'ConfigSyntax', file, line: 2, column: 8 });
    expect(e.message).toContain('tags are not allowed in run config files');
    for (const tag of ['!!binary aGVsbG8=', '!!timestamp 2001-12-14', '!ruby/object x', '!!python/object:os.system x']) {
      expect(parseRunConfigText(`parameters:\n  x: ${tag}\n`, 'yaml', 't.yaml')).toMatchObject(E.left({ _tag: 'ConfigSyntax', line: 2 }));
    }
    expect(parseRunConfigText('parameters:\n  x: <<\n  <<: { a: 1 }\n', 'yaml', 'merge.yaml')).toEqual(
      E.right({ source: 'merge.yaml', settings: {}, steps: {}, parameters: { x: '<<', '<<': { a: 1 } } }),
    );
  });
});

// the Promise edge

describe('readRunConfig', () => {
  it('resolves to the config', async () => {
    expect(withoutSource(await readRunConfig(fixture('train.yaml')))).toEqual(withoutSource(await loaded(fixture('train.json'))));
  });

  it('rejects with a StepcacheError INVALID_OPTIONS naming the field', async () => {
    const file = fixture('step-enable-cache-yes.yaml');
    const error = await readRunConfig(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StepcacheError);
    expect(error).toMatchObject({ code: 'INVALID_OPTIONS', field: 'steps.svc_trainer.enableCache', message: expect.stringContaining(file) });
    await expect(readRunConfig(fixture('train.toml'))).rejects.toMatchObject({ code: 'INVALID_OPTIONS', field: undefined });
  });
});

// safety

describe('run config files are data, never more', () => {
  afterEach(() => {
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('refuse a top-level __proto__ key as unknown', async () => {
    const e = await failure(fixture('proto.yaml'));
    expect(e).toMatchObject({ _tag: 'ConfigInvalid', field: '__proto__', message: expect.stringContaining('Unknown key "__proto__"') });
    expect(decodeFailure(JSON.parse('{"__proto__": {"polluted": true}}'))).toMatchObject({ field: '__proto__' });
  });

  it('keep a __proto__ parameter as own data, from YAML and from JSON', async () => {
    for (const name of ['proto-parameters.yaml', 'proto-parameters.json']) {
      const { parameters } = await loaded(fixture(name));
      expect(Object.keys(parameters)).toEqual(['__proto__', 'gamma']);
      expect(Object.getOwnPropertyDescriptor(parameters, '__proto__')?.value).toEqual({ polluted: true });
      expect(Object.getPrototypeOf(parameters)).toBe(Object.prototype);
      expect((parameters as Record<string, unknown>)['polluted']).toBeUndefined();
    }
  });

  it('refuse settings for a step named __proto__, which settings objects cannot hold', async () => {
    expect(await failure(fixture('proto-step.yaml'))).toMatchObject({ _tag: 'ConfigInvalid', field: 'steps.__proto__', message: expect.stringContaining('not __proto__') });
  });

  it('refuse an alias bomb quickly', async () => {
    const started = performance.now();
    const e = await failure(fixture('alias-bomb.yaml'));
    expect(performance.now() - started).toBeLessThan(1000);
    expect(e).toMatchObject({ _tag: 'ConfigSyntax', message: expect.stringContaining('its aliases expand too much') });
  });

  it('refuse aliases that make a cycle', () => {
    expect(parseRunConfigText('parameters: &p\n  self: *p\n', 'yaml', 'cycle.yaml')).toMatchObject(
      E.left({ _tag: 'ConfigInvalid', field: 'parameters.self', message: expect.stringContaining('refers back to a value that encloses it') }),
    );
    const cyclic: Record<string, unknown> = {};
    cyclic['again'] = cyclic;
    expect(decodeFailure({ parameters: cyclic })).toMatchObject({ field: 'parameters.again' });
  });

  it('refuse deep nesting before the YAML composer can exhaust the stack', () => {
    const started = performance.now();
    const nested = `parameters:\n  x: ${'['.repeat(20_000)}${']'.repeat(20_000)}\n`;
    for (let i = 0; i < 5; i++) {
      expect(parseRunConfigText(nested, 'yaml', 'deep.yaml')).toMatchObject(E.left({ _tag: 'ConfigSyntax', line: 2, message: expect.stringContaining('nested more than 64 levels deep') }));
    }
    expect(parseRunConfigText(`{"parameters": {"x": ${'['.repeat(20_000)}${']'.repeat(20_000)}}}`, 'json', 'deep.json')).toMatchObject(
      E.left({ _tag: 'ConfigInvalid', message: expect.stringContaining('nests more than 64 levels deep') }),
    );
    expect(performance.now() - started).toBeLessThan(5000);
  });
});

// applying

const calls = { loader: 0, trainer: [] as Array<{ gamma: number; kernel: string }> };
const loader = step(function training_data_loader() {
  calls.loader++;
  return { X_train: [[1, 2], [3, 4]], y_train: [0, 1] };
}).outputs({ X_train: 'auto', y_train: 'auto' });
const trainer = step(function svc_trainer({ X_train, y_train, gamma, kernel }: { X_train: number[][]; y_train: number[]; gamma: number; kernel: string }) {
  calls.trainer.push({ gamma, kernel });
  return { kernel, weights: X_train.map((row, i) => row.map((v) => v * gamma + (y_train[i] ?? 0))) };
});
const trainingPipeline = pipeline('training_pipeline', (p, { gamma = 0.002, kernels = ['linear'] }: { gamma?: number; kernels?: readonly string[] }) => {
  const { X_train, y_train } = p.call(loader);
  return { model: p.call(trainer, { X_train, y_train, gamma, kernel: kernels[0] ?? 'linear' }) };
});

describe('applyRunConfig', () => {
  beforeEach(() => {
    calls.loader = 0;
    calls.trainer = [];
  });

  it('gives the pipeline its run config layer (not its runtime options) and returns the parameters, leaving the original alone', async () => {
    const config = await loaded(fixture('train.yaml'));
    const { pipeline: configured, params } = applyRunConfig(trainingPipeline, config);
    expect(configured.runConfig).toEqual({ enableCache: true, expiresAfter: '7d', steps: config.steps });
    expect(configured.runtime).toEqual({});
    expect(params).toEqual({ gamma: 0.001, kernels: ['rbf', 'linear'] });
    expect(trainingPipeline.runConfig).toEqual({});
    expect(applyRunConfig(trainingPipeline, { source: 'x.yaml', settings: {}, steps: {}, parameters: {} }).pipeline.runConfig).toEqual({});
  });

  it('puts the file below the runtime options, whichever is applied first, and above the step settings', async () => {
    const runner = createRunner({ dir, logger: silentLogger });
    runners.push(runner);
    const disabling: RunConfig = { source: 'off.yaml', settings: {}, steps: { svc_trainer: { enableCache: false } }, parameters: {} };
    const params = { gamma: 0.001, kernels: ['rbf'] };
    await runner.run(trainingPipeline, params);
    // the file disables the trainer's cache; runtime options enable it again, before or after the file is applied
    const runtimeFirst = applyRunConfig(trainingPipeline.withOptions({ steps: { svc_trainer: { enableCache: true } } }), disabling).pipeline;
    const fileFirst = applyRunConfig(trainingPipeline, disabling).pipeline.withOptions({ enableCache: true });
    for (const p of [runtimeFirst, fileFirst]) expect((await runner.run(p, params)).steps.svc_trainer?.status).toBe('cached');
    // and the file beats the step's own settings
    const fileOnly = applyRunConfig(trainingPipeline, disabling).pipeline;
    const run = await runner.run(fileOnly, params);
    expect(run.steps.svc_trainer?.why).toEqual({ _tag: 'CacheDisabled', decidedBy: 'runConfig' });
    expect(run.steps.svc_trainer?.reason).toBe('caching is disabled by the run config file');
  });

  it('refuses a run whose config names a step the pipeline does not have, naming its path', async () => {
    const runner = createRunner({ dir, logger: silentLogger });
    runners.push(runner);
    const typo: RunConfig = { source: 'typo.yaml', settings: {}, steps: { svc_trainr: { enableCache: false } }, parameters: {} };
    const run = runner.run(applyRunConfig(trainingPipeline, typo).pipeline, {});
    await expect(run).rejects.toMatchObject({ code: 'INVALID_OPTIONS', field: 'steps.svc_trainr', message: expect.stringContaining('its steps are: training_data_loader, svc_trainer') });
    expect(calls.loader).toBe(0);
  });

  it('takes effect in a real run: the configured step executes again while the others are cached, with the parameters of the file', async () => {
    const runner = createRunner({ dir, logger: silentLogger });
    runners.push(runner);

    const first = await runner.run(trainingPipeline, { gamma: 0.001, kernels: ['rbf', 'linear'] });
    expect([first.steps.training_data_loader?.status, first.steps.svc_trainer?.status]).toEqual(['executed', 'executed']);

    const { pipeline: configured, params } = applyRunConfig(trainingPipeline, await readRunConfig(fixture('train.yaml')));
    for (let i = 0; i < 2; i++) {
      const run = await runner.run(configured, params);
      expect(run.steps.training_data_loader?.status).toBe('cached');
      expect(run.steps.svc_trainer?.status).toBe('executed');
      expect(run.parameters).toEqual({ gamma: 0.001, kernels: ['rbf', 'linear'] });
      expect(await run.output('model')).toEqual({ kernel: 'rbf', weights: [[0.001, 0.002], [1.003, 1.004]] });
      expect((await runner.explain(run, 'svc_trainer')).message).toMatch(/disabled/i);
    }
    expect(calls.loader).toBe(1);
    expect(calls.trainer).toEqual([{ gamma: 0.001, kernel: 'rbf' }, { gamma: 0.001, kernel: 'rbf' }, { gamma: 0.001, kernel: 'rbf' }]);

    // Without the file, the trainer is a hit again: the setting lived in the configured copy only.
    const plain = await runner.run(trainingPipeline, { gamma: 0.001, kernels: ['rbf', 'linear'] });
    expect(plain.steps.svc_trainer?.status).toBe('cached');
  });
});
