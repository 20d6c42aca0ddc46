/**
 * Fingerprints that never lie: each case here once gave a false hit (two different codes with one
 * fingerprint) or a wrong error. Regression tests named after what they guard.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fingerprintDependency, fingerprintFunction, openFingerprintDiskCache, type CallSite, type CodeFingerprint } from '../src/fingerprint';
import { resolveImport } from '../src/fingerprint/modules';
import { currentState, envKey, sourceOfRunningFile, trackConsultedFiles, valueState } from '../src/fingerprint/observed';
import { keyHashFunction } from '../src/hash/hashers';
import { createRunner, step, StepcacheError, type Handle, type Pipeline } from '../src';
import { collectingLogger, removeDir, tempDir } from './support/fixtures';

let hash: (bytes: Uint8Array) => string;
const dirs: string[] = [];

beforeAll(async () => {
  hash = await keyHashFunction();
});
afterAll(() => {
  for (const d of dirs.splice(0)) removeDir(d);
});

// helpers

/** A project directory with these files (paths relative to it). */
const projectWith = (files: Readonly<Record<string, string>>): string => {
  const dir = tempDir('stepcache-soundness-');
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
};

/** The call site of the first occurrence of `marker` in `file`. */
const siteOf = (file: string, marker: string): CallSite => {
  const text = fs.readFileSync(file, 'utf8');
  const at = text.indexOf(marker);
  if (at === -1) throw new Error(`${marker} is not in ${file}`);
  const lines = text.slice(0, at).split('\n');
  return { file, line: lines.length, column: (lines[lines.length - 1] ?? '').length + 1 };
};

const partNames = (fp: CodeFingerprint): string[] => fp.parts.map((p) => `${p.kind}:${p.name}`);

// bound and native functions

describe('bound and native functions', () => {
  it('step() refuses a bound function with an error that says to pass the bound value as a parameter', () => {
    function scale({ x }: { x: number }, k: number): number {
      return x * k;
    }
    const bound = scale.bind(null, { x: 1 });
    const error = (() => {
      try {
        step(bound as never);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(StepcacheError);
    expect((error as StepcacheError).code).toBe('INVALID_STEP');
    expect((error as StepcacheError).message).toMatch(/a bound function \(bound scale\)/);
    expect((error as StepcacheError).message).toMatch(/as parameters instead/);
  });

  it('never gives two native-code functions the same fingerprint, even with the same name', () => {
    const f = (k: number, { x }: { x: number }): number => x * k;
    const three = f.bind(null, 3);
    const four = f.bind(null, 4);
    const a = fingerprintFunction(three, undefined, hash);
    const b = fingerprintFunction(four, undefined, hash);
    expect(a.shallow).toBe(true);
    expect(a.reason).toMatch(/native code/);
    expect(a.hash).not.toBe(b.hash);
    expect(fingerprintFunction(Math.max, undefined, hash).hash).not.toBe(fingerprintFunction(Math.min, undefined, hash).hash);
    // The same function object keeps its fingerprint within the process.
    expect(fingerprintFunction(three, undefined, hash).hash).toBe(a.hash);
  });
});

/** A stand-in for a step function of a file the test does not load: the fingerprint checks its name and parameter count. */
const named = (name: string): Function => ({ [name]: function (_input: unknown) { return _input; } })[name] as Function;

/** Fingerprints the step `name` of `file` (written `step(function name(…)`) in `dir`, without loading it. */
const fingerprintUnloaded = (dir: string, file: string, name: string): CodeFingerprint =>
  fingerprintFunction(named(name), siteOf(path.join(dir, file), `function ${name}(`), hash);

/** Rewrites a file of a project (a new copy of the text, a later modification time). */
const rewrite = (dir: string, file: string, from: string, to: string): void => {
  const at = path.join(dir, file);
  const text = fs.readFileSync(at, 'utf8');
  if (!text.includes(from)) throw new Error(`${from} is not in ${file}`);
  fs.writeFileSync(at, text.replace(from, to));
  const later = new Date(fs.statSync(at).mtimeMs + 10_000);
  fs.utimesSync(at, later, later);
};

// imports the key follows

describe('imports through aliases are followed like relative imports', () => {
  const aliased = (): string =>
    projectWith({
      'tsconfig.base.json': JSON.stringify({ compilerOptions: { baseUrl: '.', paths: { '@/*': ['src/*'] } } }),
      'tsconfig.json': JSON.stringify({ extends: './tsconfig.base.json', compilerOptions: { strict: true } }),
      'package.json': JSON.stringify({ name: 'app', version: '1.0.0', imports: { '#shared/*': './src/shared/*.ts' } }),
      'src/lib/features.ts': 'export function features(x: number): number {\n  return x * 2;\n}\n',
      'src/shared/norm.ts': 'export const norm = (x: number): number => x / 10;\n',
      'src/train.ts': [
        "import { features } from '@/lib/features';",
        "import { norm } from '#shared/norm';",
        'declare const step: (f: Function) => unknown;',
        'export const s = step(function train({ x }: { x: number }) {',
        '  return norm(features(x));',
        '});',
        '',
      ].join('\n'),
    });

  it('a tsconfig paths alias (through extends) and a package.json #import name project files, whose edits change the fingerprint', () => {
    const dir = aliased();
    const before = fingerprintUnloaded(dir, 'src/train.ts', 'train');
    expect(partNames(before)).toEqual(['source:train', 'function:features', 'function:norm', 'module:./lib/features.ts', 'module:./shared/norm.ts']);
    expect(before.parts.some((p) => p.kind === 'package')).toBe(false);
    rewrite(dir, 'src/lib/features.ts', 'x * 2', 'x * 3');
    const afterAlias = fingerprintUnloaded(dir, 'src/train.ts', 'train');
    expect(afterAlias.hash).not.toBe(before.hash);
    rewrite(dir, 'src/shared/norm.ts', 'x / 10', 'x / 100');
    expect(fingerprintUnloaded(dir, 'src/train.ts', 'train').hash).not.toBe(afterAlias.hash);
  });
});

describe('computed dynamic imports', () => {
  const models = (): string =>
    projectWith({
      'models/svm.mts': 'export const fit = (x: number): number => x + 1;\n',
      'models/knn.mts': 'export const fit = (x: number): number => x + 2;\n',
      'models/notes.txt': 'not a model\n',
      'train.ts': [
        'declare const step: (f: Function) => unknown;',
        'export const s = step(async function train({ kind, x }: { kind: string; x: number }) {',
        '  const model = await import(`./models/${kind}.mts`);',
        '  return model.fit(x);',
        '});',
        'export const t = step(async function anywhere({ where, x }: { where: string; x: number }) {',
        '  const model = await import(where);',
        '  return model.fit(x);',
        '});',
        '',
      ].join('\n'),
    });

  it('fingerprints every file a template with a literal folder can load, and a file added there', () => {
    const dir = models();
    const before = fingerprintUnloaded(dir, 'train.ts', 'train');
    expect(partNames(before)).toEqual(['source:train', 'function:fit', 'function:fit', 'module:./models/knn.mts', 'module:./models/svm.mts']);
    expect(before.warnings).toEqual([]);
    rewrite(dir, 'models/knn.mts', 'x + 2', 'x + 3');
    const edited = fingerprintUnloaded(dir, 'train.ts', 'train');
    expect(edited.hash).not.toBe(before.hash);
    fs.writeFileSync(path.join(dir, 'models', 'tree.mts'), 'export const fit = (x: number): number => x;\n');
    expect(partNames(fingerprintUnloaded(dir, 'train.ts', 'train'))).toContain('module:./models/tree.mts');
  });

  it('warns, naming the expression, when what an import loads is computed without a literal folder', () => {
    const fp = fingerprintUnloaded(models(), 'train.ts', 'anywhere');
    expect(fp.warnings).toEqual([expect.stringMatching(/loads a module computed at run time \(where\)/)]);
  });
});

describe('modules imported for their side effects', () => {
  it('count whole for the steps of the module that imports them: an override of a config object changes the fingerprint', () => {
    const dir = projectWith({
      'config.ts': 'export const CONFIG = { lr: 0.1 };\n',
      'overrides.ts': "import { CONFIG } from './config';\nCONFIG.lr = 0.5;\n",
      'train.ts': [
        "import { CONFIG } from './config';",
        "import './overrides';",
        'declare const step: (f: Function) => unknown;',
        'export const s = step(function train({ x }: { x: number }) {',
        '  return x * CONFIG.lr;',
        '});',
        '',
      ].join('\n'),
    });
    const before = fingerprintUnloaded(dir, 'train.ts', 'train');
    expect(partNames(before)).toEqual(['source:train', 'variable:CONFIG', 'module:./config.ts', 'module:./overrides.ts']);
    rewrite(dir, 'overrides.ts', 'CONFIG.lr = 0.5;', 'CONFIG.lr = 0.7;');
    expect(fingerprintUnloaded(dir, 'train.ts', 'train').hash).not.toBe(before.hash);
  });
});

// linked and workspace packages

describe('packages linked or in a workspace', () => {
  it('are followed as source by their real path, so an edit in a sibling package changes the fingerprint', () => {
    const dir = projectWith({
      'packages/features/package.json': JSON.stringify({ name: '@mono/features', version: '1.0.0', main: 'index.js' }),
      'packages/features/index.js': 'exports.features = function features(x) {\n  return x * 2;\n};\n',
      'app/package.json': JSON.stringify({ name: 'app', version: '1.0.0', dependencies: { '@mono/features': 'workspace:*' } }),
      'app/train.js': [
        "const { features } = require('@mono/features');",
        'const step = (f) => f;',
        'exports.s = step(function train({ x }) {',
        '  return features(x);',
        '});',
        '',
      ].join('\n'),
    });
    fs.mkdirSync(path.join(dir, 'app', 'node_modules', '@mono'), { recursive: true });
    fs.symlinkSync(path.join(dir, 'packages', 'features'), path.join(dir, 'app', 'node_modules', '@mono', 'features'), 'dir');
    const before = fingerprintUnloaded(dir, 'app/train.js', 'train');
    expect(before.parts.filter((p) => p.kind === 'package')).toEqual([]);
    expect(partNames(before)).toContain('module:../packages/features/index.js');
    rewrite(dir, 'packages/features/index.js', 'x * 2', 'x * 3');
    expect(fingerprintUnloaded(dir, 'app/train.js', 'train').hash).not.toBe(before.hash);
  });
});

// dependsOn functions

describe('functions listed in dependsOn', () => {
  const project = (): string =>
    projectWith({
      'helpers.js': ['function helper(x) {', '  return x * 2;', '}', 'function threshold(x) {', '  return helper(x) > 3;', '}', 'exports.threshold = threshold;', ''].join('\n'),
      'pipeline.js': [
        "const { pipeline, step } = require('stepcache');",
        "const { threshold } = require('./helpers.js');",
        'const kept = step(function kept({ xs }) {',
        '  return xs.length;',
        '}).withOptions({ dependsOn: { threshold } });',
        "exports.pipeline = pipeline('deps', (p, { xs = [1, 2, 3] }) => ({ out: p.call(kept, { xs }) }));",
        'exports.threshold = threshold;',
        '',
      ].join('\n'),
    });

  it('are followed to their helpers, found by name where the step is defined', () => {
    const dir = project();
    const { threshold } = require(path.join(dir, 'pipeline.js')) as { threshold: Function };
    const fp = fingerprintDependency(threshold, siteOf(path.join(dir, 'pipeline.js'), 'step(function kept'), hash);
    expect(fp.shallow).toBe(false);
    expect(partNames(fp)).toEqual(['source:threshold', 'function:helper']);
    // Without a site, among the loaded modules.
    expect(fingerprintDependency(threshold, undefined, hash).hash).toBe(fp.hash);
  });

  it('found where the step is defined, a later fingerprint is reused while its files are unchanged, and an edit is seen', () => {
    const dir = project();
    const { threshold } = require(path.join(dir, 'pipeline.js')) as { threshold: Function };
    const site = siteOf(path.join(dir, 'pipeline.js'), 'step(function kept');
    const first = fingerprintDependency(threshold, site, hash);
    expect(fingerprintDependency(threshold, site, hash)).toBe(first);
    rewrite(dir, 'helpers.js', 'return x * 2;', 'return x * 5;');
    const later = fingerprintDependency(threshold, site, hash);
    expect(later.warnings).toEqual([expect.stringContaining(`${path.join(dir, 'helpers.js')} was edited after this process loaded it`)]);
  });

  it('an edit of a helper of a dependsOn function re-runs the step', async () => {
    const dir = project();
    const runner = createRunner({ dir: path.join(dir, '.stepcache'), logger: collectingLogger() });
    try {
      const load = (): Pipeline<Record<string, never>, void> => (require(path.join(dir, 'pipeline.js')) as { pipeline: Pipeline<Record<string, never>, void> }).pipeline;
      expect((await runner.run(load())).steps['kept']?.status).toBe('executed');
      expect((await runner.run(load())).steps['kept']?.status).toBe('cached');
      rewrite(dir, 'helpers.js', 'return x * 2;', 'return x * 5;');
      jest.resetModules();
      expect((await runner.run(load())).steps['kept']?.status).toBe('executed');
    } finally {
      await runner.close();
    }
  });
});

// module-level values computed at run time

describe('module-level values computed at run time', () => {
  const withEnv = <A>(name: string, value: string | undefined, f: () => A): A => {
    const before = process.env[name];
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
    try {
      return f();
    } finally {
      if (before === undefined) delete process.env[name];
      else process.env[name] = before;
    }
  };
  const envProject = (): string =>
    projectWith({
      'steps.js': [
        'const SCALE = Number(process.env.STEPCACHE_TEST_SCALE ?? 1);',
        'const step = (f) => f;',
        'exports.scaled = step(function scaled({ x }) {',
        '  return x * SCALE;',
        '});',
        '',
      ].join('\n'),
    });

  it('an environment variable read at import is part of the key, by its value now', () => {
    const dir = envProject();
    const two = withEnv('STEPCACHE_TEST_SCALE', '2', () => fingerprintUnloaded(dir, 'steps.js', 'scaled'));
    const three = withEnv('STEPCACHE_TEST_SCALE', '3', () => fingerprintUnloaded(dir, 'steps.js', 'scaled'));
    expect(three.hash).not.toBe(two.hash);
    expect(withEnv('STEPCACHE_TEST_SCALE', '2', () => fingerprintUnloaded(dir, 'steps.js', 'scaled')).hash).toBe(two.hash);
    expect(two.warnings).toEqual([]);
  });

  it('a fingerprint kept on disk is not used once the environment variable it read changed', async () => {
    const dir = envProject();
    const file = path.join(dir, 'fingerprints.json');
    const fn = named('scaled');
    const site = siteOf(path.join(dir, 'steps.js'), 'function scaled(');
    const kept = openFingerprintDiskCache(file, hash);
    const two = withEnv('STEPCACHE_TEST_SCALE', '2', () => kept.fingerprint(fn, site));
    await kept.flush();
    const again = openFingerprintDiskCache(file, hash);
    expect(withEnv('STEPCACHE_TEST_SCALE', '3', () => again.fingerprint(fn, site)).hash).not.toBe(two.hash);
  });

  it('an environment variable the step or a helper reads when it runs is part of the key too', () => {
    const dir = projectWith({
      'steps.js': [
        'function rate() {',
        '  return Number(process.env.STEPCACHE_TEST_RATE ?? 0.1);',
        '}',
        'const step = (f) => f;',
        'exports.trained = step(function trained({ x }) {',
        "  return x * rate() + Number(process.env['STEPCACHE_TEST_BIAS'] ?? 0);",
        '});',
        '',
      ].join('\n'),
    });
    const base = fingerprintUnloaded(dir, 'steps.js', 'trained');
    expect(withEnv('STEPCACHE_TEST_RATE', '0.5', () => fingerprintUnloaded(dir, 'steps.js', 'trained')).hash).not.toBe(base.hash);
    expect(withEnv('STEPCACHE_TEST_BIAS', '1', () => fingerprintUnloaded(dir, 'steps.js', 'trained')).hash).not.toBe(base.hash);
    expect(fingerprintUnloaded(dir, 'steps.js', 'trained').hash).toBe(base.hash);
  });

  it('a long-lived process notices an environment variable the code reads changed between two runs of the same steps', async () => {
    const dir = projectWith({
      'pipeline.js': [
        "const { pipeline, step } = require('stepcache');",
        'function rate() {',
        '  return Number(process.env.STEPCACHE_TEST_LIVE_RATE ?? 1);',
        '}',
        'const scaled = step(function scaled({ xs }) {',
        '  return xs.map((x) => x * rate());',
        '});',
        "exports.pipeline = pipeline('live_env', (p, { xs = [1, 2, 3] }) => ({ out: p.call(scaled, { xs }) }));",
        '',
      ].join('\n'),
    });
    const runner = createRunner({ dir: path.join(dir, '.stepcache'), logger: collectingLogger() });
    try {
      const pipe = (require(path.join(dir, 'pipeline.js')) as { pipeline: Pipeline<Record<string, never>, { out: Handle<number[]> }> }).pipeline;
      const runWith = async (rate: string | undefined): Promise<{ status: string | undefined; out: unknown }> => {
        if (rate === undefined) delete process.env['STEPCACHE_TEST_LIVE_RATE'];
        else process.env['STEPCACHE_TEST_LIVE_RATE'] = rate;
        try {
          const run = await runner.run(pipe);
          return { status: run.steps['scaled']?.status, out: await run.output('out') };
        } finally {
          delete process.env['STEPCACHE_TEST_LIVE_RATE'];
        }
      };
      expect(await runWith(undefined)).toEqual({ status: 'executed', out: [1, 2, 3] });
      expect(await runWith('2')).toEqual({ status: 'executed', out: [2, 4, 6] });
      expect(await runWith(undefined)).toEqual({ status: 'cached', out: [1, 2, 3] });
    } finally {
      await runner.close();
    }
  });

  it('the arguments read at import are part of the key', () => {
    const dir = projectWith({
      'steps.js': ['const MODE = process.argv[2];', 'const step = (f) => f;', 'exports.moded = step(function moded({ x }) {', '  return MODE === "fast" ? x : -x;', '});', ''].join('\n'),
    });
    const fp = fingerprintUnloaded(dir, 'steps.js', 'moded');
    const saved = process.argv;
    process.argv = [...saved.slice(0, 2), 'fast'];
    try {
      expect(fingerprintUnloaded(dir, 'steps.js', 'moded').hash).not.toBe(fp.hash);
    } finally {
      process.argv = saved;
    }
  });

  it('an exported value from another run-time source is read from the loaded module', () => {
    const dir = projectWith({
      'steps.js': [
        'const STARTED = Date.now() + Math.random();',
        'const step = (f) => f;',
        'exports.stamped = step(function stamped({ x }) {',
        '  return x + STARTED;',
        '});',
        'exports.STARTED = STARTED;',
        '',
      ].join('\n'),
    });
    const at = path.join(dir, 'steps.js');
    const first = fingerprintFunction((require(at) as Record<string, Function>)['stamped'] as Function, siteOf(at, 'function stamped('), hash);
    jest.resetModules();
    const second = fingerprintFunction((require(at) as Record<string, Function>)['stamped'] as Function, siteOf(at, 'function stamped('), hash);
    expect(first.warnings).toEqual([]);
    expect(second.hash).not.toBe(first.hash);
  });

  it('warns once, naming the binding, when the value cannot be read: a local from Math.random, a let a function reassigns', () => {
    const dir = projectWith({
      'steps.js': [
        'const SEED = Math.random();',
        'let calls = 0;',
        'function bump() {',
        '  calls += 1;',
        '}',
        'const step = (f) => f;',
        'exports.seeded = step(function seeded({ x }) {',
        '  bump();',
        '  return x * SEED + calls;',
        '});',
        '',
      ].join('\n'),
    });
    const fp = fingerprintUnloaded(dir, 'steps.js', 'seeded');
    expect(fp.warnings).toEqual([
      expect.stringMatching(/^SEED in .*steps\.js is computed at run time \(Math\.random\).*pass it to the step as a parameter/),
      expect.stringMatching(/^calls in .*steps\.js is computed at run time \(calls, assigned in a function \(calls \+= 1\)\)/),
    ]);
  });
});

// TypeScript sources of code a loader compiled

describe('TypeScript sources of compiled code (tslab, tsx, ts-node, jest)', () => {
  const typed = (): string =>
    projectWith({
      'steps.ts': ["import { scale } from './helpers.js';", 'declare const step: (f: Function) => unknown;', 'export const s = step(function scaled({ x }: { x: number }) {', '  return scale(x);', '});', ''].join('\n'),
      'helpers.ts': 'export const scale = (x: number): number => x * 2;\n',
      'cells/model.mts': 'export const fit = (x: number): number => x;\n',
      'cells/view.tsx': 'export const view = (x: number): number => x;\n',
    });

  it('a running .js file that does not exist is the .ts, .tsx, .mts or .cts file next to it', () => {
    const dir = typed();
    expect(sourceOfRunningFile(path.join(dir, 'steps.js'))).toBe(path.join(dir, 'steps.ts'));
    expect(sourceOfRunningFile(path.join(dir, 'cells', 'model.mjs'))).toBe(path.join(dir, 'cells', 'model.mts'));
    expect(sourceOfRunningFile(path.join(dir, 'cells', 'view.jsx'))).toBe(path.join(dir, 'cells', 'view.tsx'));
    expect(sourceOfRunningFile(path.join(dir, 'cells', 'view.js'))).toBe(path.join(dir, 'cells', 'view.tsx'));
    expect(sourceOfRunningFile(path.join(dir, 'nothing.js'))).toBe(path.join(dir, 'nothing.js'));
  });

  it('relative imports written with .js, or without an extension, name the TypeScript source', () => {
    const dir = typed();
    const from = path.join(dir, 'steps.ts');
    expect(resolveImport(from, './helpers.js')).toEqual({ _tag: 'File', file: path.join(dir, 'helpers.ts') });
    expect(resolveImport(from, './helpers')).toEqual({ _tag: 'File', file: path.join(dir, 'helpers.ts') });
    expect(resolveImport(from, './cells/model.mjs')).toEqual({ _tag: 'File', file: path.join(dir, 'cells', 'model.mts') });
  });

  it('a step whose call site names the compiled steps.js is fingerprinted from steps.ts, with its imports', () => {
    const dir = typed();
    const site = siteOf(path.join(dir, 'steps.ts'), 'function scaled(');
    const fp = fingerprintFunction(named('scaled'), { ...site, file: path.join(dir, 'steps.js') }, hash);
    expect(fp.shallow).toBe(false);
    expect(partNames(fp)).toEqual(['source:scaled', 'function:scale', 'module:./helpers.ts']);
  });
});

// edited while loaded (end to end in test/code-changes.test.ts)

describe('files edited after this process read them', () => {
  it('when whether the edited code runs cannot be told (no module entry), the fingerprint warns and never repeats', () => {
    const dir = projectWith({
      'helpers.js': 'exports.scale = function scale(x) {\n  return x * 2;\n};\n',
      'steps.js': ["const { scale } = require('./helpers.js');", 'const step = (f) => f;', 'exports.s = step(function scaled({ x }) {', '  return scale(x);', '});', ''].join('\n'),
    });
    const before = fingerprintUnloaded(dir, 'steps.js', 'scaled');
    expect(before.warnings).toEqual([]);
    rewrite(dir, 'helpers.js', 'x * 2', 'x * 3');
    const after = fingerprintUnloaded(dir, 'steps.js', 'scaled');
    expect(after.warnings).toEqual([expect.stringContaining(`${path.join(dir, 'helpers.js')} changed on disk since this process first read it`)]);
    expect(after.hash).not.toBe(before.hash);
    expect(fingerprintUnloaded(dir, 'steps.js', 'scaled').hash).not.toBe(after.hash);
  });

  it('kept fingerprints are checked by content: an edit that keeps the size and the modification time is seen', async () => {
    const dir = projectWith({
      'steps.js': ['const step = (f) => f;', 'exports.s = step(function doubled({ x }) {', '  return x * 2;', '});', ''].join('\n'),
    });
    const file = path.join(dir, 'fingerprints.json');
    const cache = openFingerprintDiskCache(file, hash);
    cache.fingerprint(named('doubled'), siteOf(path.join(dir, 'steps.js'), 'function doubled('));
    await cache.flush();
    const stored = JSON.parse(fs.readFileSync(file, 'utf8')) as { entries: Record<string, { files: Record<string, string> }> };
    const [entry] = Object.values(stored.entries);
    const state = entry?.files[path.join(dir, 'steps.js')] ?? '';
    expect(state).toMatch(/^sha:/);
    const at = path.join(dir, 'steps.js');
    const { mtime, atime } = fs.statSync(at);
    fs.writeFileSync(at, fs.readFileSync(at, 'utf8').replace('x * 2', 'x * 3'));
    fs.utimesSync(at, atime, mtime);
    expect(currentState(at, state)).not.toBe(state);
  });

  it('a file is read again only when its stamp changed: an edit that keeps the size and the modification time changes it', async () => {
    const dir = projectWith({ 'steps.js': 'exports.x = 2;\n' });
    const at = path.join(dir, 'steps.js');
    // A present far enough ahead that the file counts as changed long before it is read.
    const later = Date.now() + 60_000;
    const state = currentState(at, 'sha:', later);
    expect(state).toMatch(/^sha:/);
    const reads = jest.spyOn(jest.requireActual<typeof fs>('node:fs'), 'readFileSync');
    try {
      expect(currentState(at, state, later)).toBe(state);
      expect(reads.mock.calls.filter(([file]) => file === at)).toEqual([]);
      const { mtime, atime } = fs.statSync(at);
      fs.writeFileSync(at, 'exports.x = 3;\n');
      fs.utimesSync(at, atime, mtime);
      expect(currentState(at, state, later)).not.toBe(state);
      expect(reads.mock.calls.filter(([file]) => file === at)).toHaveLength(1);
    } finally {
      reads.mockRestore();
    }
  });

  it('a file that changed just before it was read is read again every time', async () => {
    const dir = projectWith({ 'steps.js': 'exports.x = 2;\n' });
    const at = path.join(dir, 'steps.js');
    const state = currentState(at, 'sha:');
    const reads = jest.spyOn(jest.requireActual<typeof fs>('node:fs'), 'readFileSync');
    try {
      expect(currentState(at, state)).toBe(state);
      expect(currentState(at, state)).toBe(state);
      expect(reads.mock.calls.filter(([file]) => file === at)).toHaveLength(2);
    } finally {
      reads.mockRestore();
    }
  });
});

describe('a later fingerprint of the same function', () => {
  const project = (): string =>
    projectWith({
      'helpers.js': ['function scale(x) {', '  return x * 2 + Number(process.env.STEPCACHE_TEST_MEMO_OFFSET ?? 0);', '}', 'exports.scale = scale;', ''].join('\n'),
      'steps.js': ["const { scale } = require('./helpers.js');", 'const step = (f) => f;', 'exports.scaled = step(function scaled({ x }) {', '  return scale(x);', '});', ''].join('\n'),
    });
  const loaded = (dir: string): { readonly fn: Function; readonly site: CallSite } => ({
    fn: (require(path.join(dir, 'steps.js')) as { scaled: Function }).scaled,
    site: siteOf(path.join(dir, 'steps.js'), 'function scaled('),
  });

  it('is reused while nothing it observed changed, and what it observed is noted around it as computing it would', () => {
    const dir = project();
    const { fn, site } = loaded(dir);
    const first = fingerprintFunction(fn, site, hash);
    const { result, files } = trackConsultedFiles(() => fingerprintFunction(fn, site, hash));
    expect(result).toBe(first);
    expect(files.get(path.join(dir, 'steps.js'))).toMatch(/^sha:/);
    expect(files.get(path.join(dir, 'helpers.js'))).toMatch(/^sha:/);
    expect(files.get(envKey('STEPCACHE_TEST_MEMO_OFFSET'))).toBe(valueState(undefined));
  });

  it('sees an edit of a loaded helper that keeps its size and modification time: the loaded code is fingerprinted, with a warning', () => {
    const dir = project();
    const at = path.join(dir, 'helpers.js');
    // A whole second, so that setting it back gives exactly the same modification time.
    const time = new Date(1_700_000_000_000);
    fs.utimesSync(at, time, time);
    const { fn, site } = loaded(dir);
    const first = fingerprintFunction(fn, site, hash);
    fs.writeFileSync(at, fs.readFileSync(at, 'utf8').replace('x * 2', 'x * 3'));
    fs.utimesSync(at, time, time);
    expect(fs.statSync(at).mtimeMs).toBe(time.getTime());
    const later = fingerprintFunction(fn, site, hash);
    expect(later.hash).toBe(first.hash);
    expect(later.warnings).toEqual([expect.stringContaining(`${at} was edited after this process loaded it`)]);
  });

  it('sees a change of an environment variable the code reads, and the value set back', () => {
    const dir = project();
    const { fn, site } = loaded(dir);
    const first = fingerprintFunction(fn, site, hash);
    process.env['STEPCACHE_TEST_MEMO_OFFSET'] = '1';
    try {
      expect(fingerprintFunction(fn, site, hash).hash).not.toBe(first.hash);
    } finally {
      delete process.env['STEPCACHE_TEST_MEMO_OFFSET'];
    }
    expect(fingerprintFunction(fn, site, hash).hash).toBe(first.hash);
  });

  it('is never reused when it was computed from a state that never holds again (which code runs cannot be told)', () => {
    const dir = project();
    const fn = named('scaled');
    const site = siteOf(path.join(dir, 'steps.js'), 'function scaled(');
    fingerprintFunction(fn, site, hash);
    rewrite(dir, 'helpers.js', 'x * 2', 'x * 3');
    const unknown = fingerprintFunction(fn, site, hash);
    expect(unknown.warnings).toEqual([expect.stringContaining('whether the code that runs is the edited one cannot be told')]);
    expect(fingerprintFunction(fn, site, hash).hash).not.toBe(unknown.hash);
  });
});
