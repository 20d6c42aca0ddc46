import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import * as ts from 'typescript';
import { callSiteOf, diffFingerprints, fingerprintFunction, fingerprintOutputCodec, openFingerprintDiskCache, withParts, type CallSite, type CodeFingerprint, type FingerprintPart } from '../src/fingerprint';
import { signFingerprintEntries } from '../src/fingerprint/disk-cache';
import { keyHashFunction } from '../src/hash/hashers';
import { fakeStep, type FakeStep } from './fixtures/fingerprint/callsite-step';
import { clipper, multiline, pair } from './fixtures/fingerprint/callsite-user';
import * as inputSteps from './fixtures/fingerprint/inputs';
import { typed } from './fixtures/fingerprint/typed';
import { removeDir, tempDir } from './support/fixtures';

const FIXTURES = path.join(__dirname, 'fixtures', 'fingerprint');

let hash: (bytes: Uint8Array) => string;
const dirs: string[] = [];

beforeAll(async () => {
  hash = await keyHashFunction();
});
afterAll(() => {
  for (const d of dirs.splice(0)) removeDir(d);
});

// helpers

/** The call site of the first occurrence of `marker` in `file` (its first character). */
const siteOf = (file: string, marker: string, occurrence = 0): CallSite => {
  const text = fs.readFileSync(file, 'utf8');
  let at = -1;
  for (let i = 0; i <= occurrence; i++) at = text.indexOf(marker, at + 1);
  if (at === -1) throw new Error(`${marker} is not in ${file}`);
  const lines = text.slice(0, at).split('\n');
  return { file, line: lines.length, column: (lines[lines.length - 1] ?? '').length + 1 };
};

/** A fresh copy of the fixtures directory, with edits applied: `[file, from, to]`, each `from` must occur. */
const variant = (...edits: readonly (readonly [string, string, string])[]): string => {
  const dir = tempDir('stepcache-fingerprint-');
  dirs.push(dir);
  for (const f of fs.readdirSync(FIXTURES)) fs.copyFileSync(path.join(FIXTURES, f), path.join(dir, f));
  for (const [file, from, to] of edits) editFile(path.join(dir, file), from, to);
  return dir;
};

/** Replaces text in a file and moves its modification time forward, so a cached parse is not reused. */
const editFile = (file: string, from: string, to: string): void => {
  const text = fs.readFileSync(file, 'utf8');
  if (!text.includes(from)) throw new Error(`${from} is not in ${file}`);
  fs.writeFileSync(file, text.replace(from, to));
  const later = new Date(fs.statSync(file).mtimeMs + 10_000);
  fs.utimesSync(file, later, later);
};

/** Edits a loaded module's file and reloads the modules, as a watch-mode tool does: the code loaded next is the edited one. */
const editAndReload = (file: string, from: string, to: string): void => {
  editFile(file, from, to);
  jest.resetModules();
};

type StepFn = (input: never) => unknown;

/** Loads a step function from a (copied) fixture module. */
const load = (dir: string, file: string, name: string): StepFn => (require(path.join(dir, file)) as Record<string, StepFn>)[name] as StepFn;

/** The markers of the steps in steps.js. */
const STEPS: Readonly<Record<string, string>> = {
  trainer: 'step(function trainer',
  viaNamespace: 'step(function viaNamespace',
  shadowing: 'step(function shadowing',
  withClass: 'step(function withClass',
  recursive: 'step(function recursive',
  scaled: 'step(function scaled',
  usesBuiltin: 'step(function usesBuiltin',
  named: 'step(byName)',
  withLabels: 'step(function withLabels',
  lazy: 'step(function lazy',
  fromRegistry: 'step(function fromRegistry',
};

/** The fingerprint of one step of steps.js in `dir`. */
const fingerprintIn = (dir: string, name: string): CodeFingerprint =>
  fingerprintFunction(load(dir, 'steps.js', name), siteOf(path.join(dir, 'steps.js'), STEPS[name] as string), hash);

const partNames = (fp: CodeFingerprint, kind?: FingerprintPart['kind']): string[] => fp.parts.filter((p) => kind === undefined || p.kind === kind).map((p) => p.name);

const original = (): string => variant();

// call sites

describe('callSiteOf', () => {
  const stack = [
    'Error: boom',
    '    at step (/p/src/step.ts:10:5)',
    '    at Object.<anonymous> (/p/pipeline (copy).ts:3:17)',
    '    at async run (file:///p/run.mjs:7:1)',
    '    at /p/anon.js:1:2',
    '    at eval (eval at <anonymous> (/p/x.js:1:1), <anonymous>:2:3)',
    '    at Array.map (<anonymous>)',
    '    at new Promise (<anonymous>)',
  ].join('\n');
  const withStack = (s: unknown): Error => Object.assign(new Error('boom'), { stack: s });

  it('reads the file, line and column of the frame at the given depth', () => {
    const e = withStack(stack);
    expect(callSiteOf(e, 0)).toEqual({ file: '/p/src/step.ts', line: 10, column: 5 });
    expect(callSiteOf(e, 1)).toEqual({ file: '/p/pipeline (copy).ts', line: 3, column: 17 });
    expect(callSiteOf(e, 2)).toEqual({ file: '/p/run.mjs', line: 7, column: 1 });
    expect(callSiteOf(e, 3)).toEqual({ file: '/p/anon.js', line: 1, column: 2 });
  });

  it('gives eval frames the position inside the evaluated code, and none to frames without a position', () => {
    const e = withStack(stack);
    expect(callSiteOf(e, 4)).toEqual({ file: '<anonymous>', line: 2, column: 3 });
    expect(callSiteOf(e, 5)).toBeUndefined();
    expect(callSiteOf(e, 6)).toBeUndefined();
    expect(callSiteOf(e, 7)).toBeUndefined();
    expect(callSiteOf(e, -1)).toBeUndefined();
    expect(callSiteOf(withStack(undefined), 0)).toBeUndefined();
  });

  /** Checks a site is on the callee `fakeStep` of the call that starts with `marker` (ts-jest maps the column to its end, tsx to its start). */
  const expectAtCallee = (site: CallSite | undefined, file: string, marker: string): void => {
    const callee = siteOf(file, marker);
    expect(site?.file).toBe(file);
    expect(site?.line).toBe(callee.line);
    expect(site?.column).toBeGreaterThanOrEqual(callee.column);
    expect(site?.column).toBeLessThanOrEqual(callee.column + 'fakeStep'.length);
  };

  it('under jest, names the .ts file and line of the caller of a step-like wrapper', () => {
    const file = path.join(FIXTURES, 'callsite-user.ts');
    expectAtCallee(clipper.site, file, 'fakeStep(function clipper');
    const [left, right] = pair;
    expectAtCallee(left?.site, file, 'fakeStep(function left');
    expectAtCallee(right?.site, file, 'fakeStep(function right');
    expectAtCallee(multiline.site, file, 'fakeStep(\n');
  });

  it('under tsx, names the .ts file and line of the caller too', () => {
    const dir = tempDir('stepcache-fingerprint-tsx-');
    dirs.push(dir);
    const script = path.join(dir, 'probe.ts');
    const user = path.join(FIXTURES, 'callsite-user.ts');
    const api = path.join(__dirname, '..', 'src', 'fingerprint', 'index.ts');
    const hashers = path.join(__dirname, '..', 'src', 'hash', 'hashers.ts');
    fs.writeFileSync(
      script,
      [
        `import { clipper } from ${JSON.stringify(user)};`,
        `import { fingerprintFunction } from ${JSON.stringify(api)};`,
        `import { keyHashFunction } from ${JSON.stringify(hashers)};`,
        'void keyHashFunction().then((hash) => {',
        '  const fp = fingerprintFunction(clipper.fn, clipper.site, hash);',
        '  console.log(JSON.stringify({ site: clipper.site, shallow: fp.shallow, parts: fp.parts.map((p) => p.name) }));',
        '});',
      ].join('\n'),
    );
    const tsx = path.join(path.dirname(require.resolve('tsx/package.json')), 'dist', 'cli.mjs');
    const child = spawnSync(process.execPath, [tsx, script], { encoding: 'utf8', cwd: path.join(__dirname, '..') });
    expect(child.stderr).toBe('');
    const result = JSON.parse(child.stdout) as { site: CallSite; shallow: boolean; parts: string[] };
    expectAtCallee(result.site, user, 'fakeStep(function clipper');
    expect(result.shallow).toBe(false);
    expect(result.parts).toEqual(['clipper', 'clip', 'LIMIT']);
  });
});

// locating the function

describe('fingerprintFunction finds the step function at its call site', () => {
  it('fingerprints the function passed to a step-like wrapper, with what it uses', () => {
    const fp = fingerprintFunction(clipper.fn, clipper.site, hash);
    expect(fp.shallow).toBe(false);
    expect(fp.file).toBe(path.join(FIXTURES, 'callsite-user.ts'));
    expect(fp.parts.map((p) => [p.kind, p.name])).toEqual([
      ['source', 'clipper'],
      ['function', 'clip'],
      ['variable', 'LIMIT'],
    ]);
    expect(fp.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('tells apart two steps on one line by column, and by name when the column is unknown', () => {
    const [left, right] = pair as unknown as [FakeStep<StepFn>, FakeStep<StepFn>];
    const l = fingerprintFunction(left.fn, left.site, hash);
    const r = fingerprintFunction(right.fn, right.site, hash);
    expect(partNames(l)).toEqual(['left']);
    expect(partNames(r)).toEqual(['right', 'clip', 'LIMIT']);
    const lineOnly = (s: CallSite | undefined): CallSite => ({ ...(s as CallSite), column: 1 });
    expect(fingerprintFunction(left.fn, lineOnly(left.site), hash).hash).toBe(l.hash);
    expect(fingerprintFunction(right.fn, lineOnly(right.site), hash).hash).toBe(r.hash);
  });

  it('finds a function passed on the line after the call', () => {
    const fp = fingerprintFunction(multiline.fn, multiline.site, hash);
    expect(fp.shallow).toBe(false);
    expect(partNames(fp)).toEqual(['(anonymous)', 'LIMIT']);
  });

  it('follows an identifier to the module-level function it names', () => {
    const fp = fingerprintIn(original(), 'named');
    expect(fp.shallow).toBe(false);
    expect(fp.parts.map((p) => [p.kind, p.name])).toEqual([
      ['source', 'byName'],
      ['variable', 'SCALE'],
    ]);
  });

  it('is shallow, with a reason, when the function at the site is not the step function (the file changed)', () => {
    const dir = original();
    const fp = fingerprintFunction(load(dir, 'steps.js', 'viaNamespace'), siteOf(path.join(dir, 'steps.js'), STEPS['trainer'] as string), hash);
    expect(fp.shallow).toBe(true);
    expect(fp.reason).toMatch(/not the step's function/);
    expect(fp.parts).toEqual([{ name: 'viaNamespace', kind: 'source', hash: expect.stringMatching(/^[0-9a-f]{64}$/) }]);
  });

  it('is shallow for functions made with new Function or eval', () => {
    const dir = original();
    const file = path.join(dir, 'dynamic.js');
    for (const [name, marker] of [
      ['fromNewFunction', 'step(new Function'],
      ['fromEval', 'step(eval'],
    ] as const) {
      const fn = load(dir, 'dynamic.js', name);
      const fp = fingerprintFunction(fn, siteOf(file, marker), hash);
      expect(fp.shallow).toBe(true);
      expect(fp.reason).toMatch(/computed at run time/);
      expect(fp.parts).toHaveLength(1);
      expect(fp.parts[0]?.kind).toBe('source');
      expect(fp.capturedVariables).toEqual([]);
    }
  });

  it('is shallow when step() is called from code run by new Function or eval', () => {
    const made = new Function('wrap', 'return wrap(function made(input) { return input; });') as (wrap: typeof fakeStep) => FakeStep<StepFn>;
    const s = made(fakeStep);
    expect(s.site?.file).toBe('<anonymous>');
    const fp = fingerprintFunction(s.fn, s.site, hash);
    expect(fp.shallow).toBe(true);
    expect(fp.reason).toMatch(/not a JavaScript or TypeScript source file/);
    const evaluated = (0, eval)('(function (wrap) { return wrap(function inEval(input) { return input; }); })') as (wrap: typeof fakeStep) => FakeStep<StepFn>;
    expect(fingerprintFunction(evaluated(fakeStep).fn, evaluated(fakeStep).site, hash).shallow).toBe(true);
  });

  it('is shallow when the source file does not exist or there is no call site', () => {
    const fn = function notebookCell({ x }: { x: number }) {
      return x;
    };
    const missing = fingerprintFunction(fn, { file: path.join(FIXTURES, 'no-such-file.ts'), line: 1, column: 1 }, hash);
    expect(missing.shallow).toBe(true);
    expect(missing.reason).toMatch(/does not exist/);
    const unknown = fingerprintFunction(fn, undefined, hash);
    expect(unknown.shallow).toBe(true);
    expect(unknown.reason).toMatch(/unknown/);
    expect(unknown.hash).toBe(missing.hash);
    const edited = function notebookCell({ x }: { x: number }) {
      return x + 1;
    };
    expect(fingerprintFunction(edited, undefined, hash).hash).not.toBe(unknown.hash);
  });
});

// what the fingerprint follows

describe('fingerprintFunction follows the code', () => {
  it('includes helpers transitively, module-level constants, and the imported module', () => {
    const fp = fingerprintIn(original(), 'trainer');
    expect(fp.parts.map((p) => [p.kind, p.name])).toEqual([
      ['source', 'trainer'],
      ['function', 'a'],
      ['function', 'b'],
      ['function', 'normalize'],
      ['variable', 'EPS'],
      ['variable', 'SCALE'],
      ['module', './helpers.js'],
    ]);
    expect(fp.capturedVariables).toEqual([]);
  });

  it('does not change with whitespace or comments', () => {
    const before = fingerprintIn(original(), 'trainer');
    const after = fingerprintIn(
      variant(
        ['steps.js', '  // scale every value\n  return xs.map((x) => a(normalize(x)));', '  /* comments */ return xs.map( (x)  =>  a( normalize(x) ) ) ;'],
        ['steps.js', 'function b(x) {\n  return x * SCALE;\n}', 'function b(x) { return x * SCALE; } // one line'],
        ['helpers.js', 'return x / (1 + EPS);', 'return x / (1 + EPS) // no semicolon'],
      ),
      'trainer',
    );
    expect(after.hash).toBe(before.hash);
  });

  it('does not change when an unrelated function or constant of the file changes', () => {
    const before = fingerprintIn(original(), 'trainer');
    const after = fingerprintIn(variant(['steps.js', 'return x - OFFSET;', 'return x - OFFSET * 2;'], ['steps.js', 'const OFFSET = 10;', 'const OFFSET = 11;']), 'trainer');
    expect(after.hash).toBe(before.hash);
  });

  it('changes when a helper two calls away changes, and the diff names it', () => {
    const dir = original();
    const before = fingerprintIn(dir, 'trainer');
    editAndReload(path.join(dir, 'steps.js'), 'return x * SCALE;', 'return x * SCALE + 0.5;');
    const after = fingerprintIn(dir, 'trainer');
    expect(after.hash).not.toBe(before.hash);
    expect(diffFingerprints(before.parts, after.parts)).toEqual({ changed: ['b'], added: [], removed: [] });
  });

  it('changes when a module-level constant it uses changes', () => {
    const dir = original();
    const before = fingerprintIn(dir, 'trainer');
    const named = fingerprintIn(dir, 'named');
    editAndReload(path.join(dir, 'steps.js'), 'const SCALE = 2;', 'const SCALE = 3;');
    expect(diffFingerprints(before.parts, fingerprintIn(dir, 'trainer').parts).changed).toEqual(['SCALE']);
    expect(fingerprintIn(dir, 'named').hash).not.toBe(named.hash);
  });

  it('changes when a used function of a relatively imported module changes, not when another one does', () => {
    const dir = original();
    const trainer = fingerprintIn(dir, 'trainer');
    const viaNamespace = fingerprintIn(dir, 'viaNamespace');
    expect(partNames(viaNamespace)).toEqual(['viaNamespace', 'normalize', 'EPS', './helpers.js']);
    const unused = variant(['helpers.js', 'return x * 100;', 'return x * 1000;']);
    expect(fingerprintIn(unused, 'trainer').hash).toBe(trainer.hash);
    expect(fingerprintIn(unused, 'viaNamespace').hash).toBe(viaNamespace.hash);
    editAndReload(path.join(dir, 'helpers.js'), 'return x / (1 + EPS);', 'return x / (2 + EPS);');
    const after = fingerprintIn(dir, 'trainer');
    expect(diffFingerprints(trainer.parts, after.parts).changed).toEqual(['normalize']);
    expect(fingerprintIn(dir, 'viaNamespace').hash).not.toBe(viaNamespace.hash);
  });

  it('follows a require() inside the function to the export it reads', () => {
    const fp = fingerprintIn(original(), 'lazy');
    expect(partNames(fp)).toEqual(['lazy', 'normalize', 'EPS', './helpers.js']);
    expect(fingerprintIn(variant(['helpers.js', 'const EPS = 1e-9;', 'const EPS = 1e-6;']), 'lazy').hash).not.toBe(fp.hash);
  });

  it('covers the content of an imported JSON file', () => {
    const fp = fingerprintIn(original(), 'withLabels');
    expect(fp.parts.map((p) => [p.kind, p.name])).toEqual([
      ['source', 'withLabels'],
      ['module', './labels.json'],
    ]);
    const edited = variant(['labels.json', '"virginica"', '"virginica", "other"']);
    expect(fingerprintIn(edited, 'withLabels').hash).not.toBe(fp.hash);
  });

  it('covers top-level statements that change a module-level value the step uses', () => {
    const dir = original();
    const fp = fingerprintIn(dir, 'fromRegistry');
    expect(partNames(fp)).toEqual(['fromRegistry', 'REGISTRY', 'SCALE']);
    editAndReload(path.join(dir, 'steps.js'), 'REGISTRY.factor = SCALE * 5;', 'REGISTRY.factor = SCALE * 6;');
    expect(diffFingerprints(fp.parts, fingerprintIn(dir, 'fromRegistry').parts).changed).toEqual(['REGISTRY']);
  });

  it('includes a class the step uses, with its methods', () => {
    const dir = original();
    const before = fingerprintIn(dir, 'withClass');
    expect(before.parts.map((p) => [p.kind, p.name])).toEqual([
      ['source', 'withClass'],
      ['class', 'Standardizer'],
    ]);
    editAndReload(path.join(dir, 'steps.js'), 'return this.xs.map((x) => x - mean);', 'return this.xs.map((x) => (x - mean) / 2);');
    expect(diffFingerprints(before.parts, fingerprintIn(dir, 'withClass').parts).changed).toEqual(['Standardizer']);
  });

  it('treats parameters and locals named like module-level functions as what they are', () => {
    const dir = original();
    const fp = fingerprintIn(dir, 'shadowing');
    expect(partNames(fp)).toEqual(['shadowing']);
    const edited = variant(['steps.js', 'return b(x) + 1;', 'return b(x) + 2;'], ['steps.js', 'return x * SCALE;', 'return x * SCALE * 2;']);
    expect(fingerprintIn(edited, 'shadowing').hash).toBe(fp.hash);
  });

  it('follows mutually recursive helpers without looping', () => {
    const fp = fingerprintIn(original(), 'recursive');
    expect(partNames(fp)).toEqual(['recursive', 'even', 'odd']);
  });

  it('reports variables captured from an enclosing function, and fingerprints local helper functions', () => {
    const dir = original();
    const fp = fingerprintIn(dir, 'scaled');
    expect(fp.shallow).toBe(false);
    expect(fp.capturedVariables).toEqual(['factor']);
    expect(fp.parts.map((p) => [p.kind, p.name])).toEqual([
      ['source', 'scaled'],
      ['function', 'plusOne'],
    ]);
    const edited = variant(['steps.js', 'const plusOne = (x) => x + 1;', 'const plusOne = (x) => x + 2;']);
    expect(fingerprintIn(edited, 'scaled').hash).not.toBe(fp.hash);
  });

  it('counts a Node built-in by its name only', () => {
    const fp = fingerprintIn(original(), 'usesBuiltin');
    expect(fp.parts.map((p) => [p.kind, p.name, p.file])).toEqual([
      ['source', 'usesBuiltin', expect.any(String)],
      ['builtin', 'path', undefined],
    ]);
  });

  it('counts an npm package by its name and installed version, not its source', () => {
    const file = path.join(FIXTURES, 'packages.js');
    const fn = load(FIXTURES, 'packages.js', 'withPackage');
    const fp = fingerprintFunction(fn, siteOf(file, 'step(function withPackage'), hash);
    const { version } = require('fp-ts/package.json') as { version: string };
    expect(fp.parts.map((p) => [p.kind, p.name])).toEqual([
      ['source', 'withPackage'],
      ['package', 'fp-ts'],
      ['builtin', 'fs'],
    ]);
    expect(fp.parts.find((p) => p.kind === 'package')).toEqual({ name: 'fp-ts', kind: 'package', version, hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(fp.parts.some((p) => p.file?.includes('node_modules') === true)).toBe(false);
  });

  it('changes when the installed version of a package changes (found without require.resolve of package.json too)', () => {
    const install = (dir: string, version: string): void => {
      const pkg = path.join(dir, 'node_modules', 'fakepkg');
      fs.mkdirSync(pkg, { recursive: true });
      fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'fakepkg', version, exports: { './sub': './sub.js' } }));
      fs.writeFileSync(path.join(pkg, 'sub.js'), 'exports.twice = (x) => 2 * x;\n');
    };
    const fingerprintAt = (dir: string): CodeFingerprint => fingerprintFunction(load(dir, 'uses-fake.js', 'usesFake'), siteOf(path.join(dir, 'uses-fake.js'), 'step(function usesFake'), hash);
    const one = variant();
    install(one, '1.0.0');
    const two = variant();
    install(two, '2.0.0');
    const a = fingerprintAt(one);
    const b = fingerprintAt(two);
    expect(a.parts.find((p) => p.kind === 'package')).toMatchObject({ name: 'fakepkg', version: '1.0.0' });
    expect(b.parts.find((p) => p.kind === 'package')).toMatchObject({ name: 'fakepkg', version: '2.0.0' });
    expect(b.hash).not.toBe(a.hash);
  });

  it('leaves out type syntax: type-only edits keep the fingerprint, interfaces and type aliases are not parts', () => {
    const fingerprintTyped = (dir: string): CodeFingerprint => fingerprintFunction(typed, siteOf(path.join(dir, 'typed.ts'), 'step(function typed'), hash);
    const before = fingerprintTyped(original());
    expect(before.parts.map((p) => [p.kind, p.name])).toEqual([
      ['source', 'typed'],
      ['function', 'applyFactor'],
      ['function', 'round'],
      ['enum', 'Mode'],
      ['variable', 'FACTOR'],
      ['variable', 'PRECISION'],
      ['module', './typed-helpers.ts'],
    ]);
    const typesOnly = variant(
      ['typed.ts', 'readonly factor: number;', 'readonly factor: number;\n  readonly label?: string;'],
      ['typed.ts', 'type Scalar = number;', 'type Scalar = number | bigint;'],
      ['typed.ts', 'applyFactor(x as number, Mode.Rounded)', 'applyFactor(<number>x!, Mode.Rounded)'],
      ['typed.ts', '}): Scalar[] {', '}) {'],
      ['typed.ts', 'options?: Options', 'options?: Partial<Options>'],
      ['typed.ts', 'export const FACTOR: Scalar = 2;', 'export const FACTOR = 2 satisfies number;'],
      ['typed-helpers.ts', 'readonly digits: number;', 'readonly digits: bigint;'],
      ['typed-helpers.ts', 'export function round(x: number): number {', 'export function round<T extends number>(x: T) {'],
    );
    expect(fingerprintTyped(typesOnly).hash).toBe(before.hash);
    const behaviour = variant(['typed.ts', 'const y = x * (options?.factor ?? FACTOR);', 'const y = x + (options?.factor ?? FACTOR);']);
    expect(fingerprintTyped(behaviour).hash).not.toBe(before.hash);
  });

  it('follows ES imports (named and namespace) into TypeScript modules, and enum members', () => {
    const fingerprintTyped = (dir: string): CodeFingerprint => fingerprintFunction(typed, siteOf(path.join(dir, 'typed.ts'), 'step(function typed'), hash);
    const dir = original();
    const before = fingerprintTyped(dir);
    expect(fingerprintTyped(variant(['typed-helpers.ts', 'return x - 1;', 'return x - 2;'])).hash).toBe(before.hash);
    expect(fingerprintTyped(variant(['typed-helpers.ts', 'export const PRECISION = 100;', 'export const PRECISION = 1000;'])).hash).not.toBe(before.hash);
    editAndReload(path.join(dir, 'typed-helpers.ts'), 'return Math.round(x * PRECISION) / PRECISION;', 'return Math.floor(x * PRECISION) / PRECISION;');
    expect(diffFingerprints(before.parts, fingerprintTyped(dir).parts).changed).toEqual(['round']);
    expect(fingerprintTyped(variant(['typed.ts', '  Rounded,\n', '  Rounded,\n  Other,\n'])).hash).not.toBe(before.hash);
  });

  it('is deterministic, and does not depend on where the project lives', () => {
    const dir = original();
    const first = fingerprintIn(dir, 'trainer');
    expect(fingerprintIn(dir, 'trainer')).toEqual(first);
    const elsewhere = fingerprintIn(original(), 'trainer');
    expect(elsewhere.hash).toBe(first.hash);
    expect(elsewhere.parts.map((p) => [p.kind, p.name, p.hash])).toEqual(first.parts.map((p) => [p.kind, p.name, p.hash]));
    expect(Object.isFrozen(first)).toBe(true);
    expect(Object.isFrozen(first.parts)).toBe(true);
  });

  it('fingerprints 1000 steps of one file, each with its own source and the shared helpers', () => {
    const dir = tempDir('stepcache-fingerprint-many-');
    dirs.push(dir);
    const file = path.join(dir, 'many.js');
    const lines = ["'use strict';", 'const step = (fn) => fn;', 'const K = 7;', 'function shared(x) { return x * K; }'];
    for (let i = 0; i < 1000; i++) lines.push(`exports.s${i} = step(function s${i}({ x }) { return shared(x) + ${i}; });`);
    fs.writeFileSync(file, lines.join('\n'));
    const steps = require(file) as Record<string, StepFn>;
    const fps = Array.from({ length: 1000 }, (_, i) => fingerprintFunction(steps[`s${i}`] as StepFn, { file, line: i + 5, column: `exports.s${i} = `.length + 1 }, hash));
    expect(fps.every((fp) => !fp.shallow)).toBe(true);
    expect(new Set(fps.map((fp) => fp.hash)).size).toBe(1000);
    expect(fps.map((fp) => partNames(fp).slice(1))).toEqual(Array.from({ length: 1000 }, () => ['shared', 'K']));
    expect(new Set(fps.map((fp) => fp.parts.find((p) => p.name === 'shared')?.hash)).size).toBe(1);
    expect(fps.map((fp) => fp.parts[0]?.name)).toEqual(Array.from({ length: 1000 }, (_, i) => `s${i}`));
  });
});

// properties

describe('fingerprintFunction follows the classes whose instances reach the step as values', () => {
  const MARKERS: Readonly<Record<string, string>> = {
    literal: 'step(function literal',
    viaInterface: 'step(function viaInterface',
    inContainers: 'step(function inContainers',
    viaFields: 'step(function viaFields',
    plainData: 'step(function plainData',
    shallow: 'step(function shallow',
  };
  const fingerprintValues = (dir: string, name: string): CodeFingerprint =>
    fingerprintFunction(load(dir, 'values.ts', name), siteOf(path.join(dir, 'values.ts'), MARKERS[name] as string), hash);
  const MODEL_PARTS = ['Model.constructor', 'Model.predict', 'shift', 'OFFSET'];

  it('a class named in a type literal: each member is a part, with the helpers its methods call', () => {
    const fp = fingerprintValues(original(), 'literal');
    expect(fp.parts.map((p) => [p.kind, p.name])).toEqual([
      ['source', 'literal'],
      ['function', 'Model.constructor'],
      ['function', 'Model.predict'],
      ['function', 'shift'],
      ['variable', 'OFFSET'],
    ]);
    expect(fp.shallowSpots).toBeUndefined();
  });

  it.each([['viaInterface'], ['inContainers']])('a class named through an interface, or in generic and array types (%s)', (name) => {
    expect(partNames(fingerprintValues(original(), name))).toEqual(expect.arrayContaining(MODEL_PARTS));
  });

  it("a class named by a field of a class the step receives (Ensemble's members: Model[])", () => {
    expect(partNames(fingerprintValues(original(), 'viaFields'))).toEqual(expect.arrayContaining(['Ensemble.members', 'Ensemble.size', ...MODEL_PARTS]));
  });

  it('an edit of the method changes the fingerprint, and the diff names the method; an edit of an unrelated class does not', () => {
    // Each in its own copy (an edit of a module this process never loaded cannot be told apart from one it runs): parts compared by name.
    const changedParts = (a: CodeFingerprint, b: CodeFingerprint): string[] => {
      const hashes = new Map(a.parts.map((p) => [p.name, p.hash]));
      return b.parts.filter((p) => hashes.get(p.name) !== p.hash).map((p) => p.name);
    };
    const before = fingerprintValues(original(), 'literal');
    expect(fingerprintValues(variant(['values-models.ts', "return 'unrelated';", "return 'other';"]), 'literal').hash).toBe(before.hash);
    const edited = fingerprintValues(variant(['values-models.ts', 'return shift(x) * this.weight;', 'return shift(x) * this.weight * 2;']), 'literal');
    expect(edited.hash).not.toBe(before.hash);
    expect(changedParts(before, edited)).toEqual(['Model.predict']);
    expect(changedParts(before, fingerprintValues(variant(['values-models.ts', 'const OFFSET = 1;', 'const OFFSET = 2;']), 'literal'))).toEqual(['OFFSET']);
  });

  it("the codec an output is stored with (found at the step's definition): its code, and the class it decodes to member by member", () => {
    const site = (dir: string): CallSite => siteOf(path.join(dir, 'values.ts'), 'withOutputs(function trainer');
    const dir = original();
    const codec = fingerprintOutputCodec(site(dir), 'model', hash);
    expect(codec?.parts.map((p) => [p.kind, p.name])).toEqual([
      ['source', 'modelCodec'],
      ['function', 'Model.constructor'],
      ['function', 'Model.predict'],
      ['function', 'shift'],
      ['class', 'Type'],
      ['variable', 'OFFSET'],
    ]);
    expect(fingerprintOutputCodec(site(dir), 'weight', hash)).toBeUndefined();
    expect(fingerprintOutputCodec(site(dir), 'absent', hash)).toBeUndefined();
    const edited = fingerprintOutputCodec(site(variant(['values-models.ts', 'return shift(x) * this.weight;', 'return shift(x) * this.weight * 2;'])), 'model', hash);
    expect(edited?.hash).not.toBe(codec?.hash);

    // A step's fingerprint with the codec's parts: the codec's source counts as a variable; parts it has already are not added twice.
    const step = fingerprintValues(dir, 'literal');
    const combined = withParts(step, codec?.parts ?? [], hash);
    expect(combined.hash).not.toBe(step.hash);
    expect(partNames(combined).filter((n) => n === 'Model.predict')).toHaveLength(1);
    expect(combined.parts.filter((p) => p.kind === 'source').map((p) => p.name)).toEqual(['literal']);
    expect(partNames(combined, 'variable')).toContain('modelCodec');
    expect(withParts(combined, codec?.parts ?? [], hash)).toBe(combined);
  });

  it('plain data types add no part and no shallow spot', () => {
    const fp = fingerprintValues(original(), 'plainData');
    expect(fp.parts.map((p) => p.kind)).toEqual(['source']);
    expect(fp.shallowSpots).toBeUndefined();
  });

  it('any, unknown, a function type and an interface with methods are shallow spots: named, kept as parts, not in the hash', () => {
    const dir = original();
    const fp = fingerprintValues(dir, 'shallow');
    expect(fp.shallow).toBe(false);
    expect(fp.shallowSpots).toEqual([
      expect.stringMatching(/^a: any says nothing of the methods/),
      expect.stringMatching(/^b: unknown says nothing of the methods/),
      expect.stringMatching(/^c: a function value, whose code is not fingerprinted/),
      expect.stringMatching(/^d: Predictor is an interface with methods \(predict\), not a class of the project/),
    ]);
    expect(partNames(fp, 'shallow')).toEqual(fp.shallowSpots);
    // The same code with its shallow spots typed as plain data has the same hash: spots are notes, not code.
    editAndReload(path.join(dir, 'values.ts'), '{ a: any; b: unknown; c: (x: number) => number; d: Predictor }', '{ a: number; b: number; c: (x: number) => number; d: { predict(x: number): number } }');
    const typed = fingerprintValues(dir, 'shallow');
    expect(typed.shallowSpots).toEqual([expect.stringMatching(/^c: a function value/), expect.stringMatching(/^d: an object type with methods \(predict\)/)]);
    editAndReload(path.join(dir, 'values.ts'), '{ a: number; b: number; c: (x: number) => number; d: { predict(x: number): number } }', '{ a: number; b: number; c: Function; d: Record<string, number> }');
    const plain = fingerprintValues(dir, 'shallow');
    expect(plain.shallowSpots).toBeUndefined();
    expect(plain.hash).toBe(fp.hash);
    expect(diffFingerprints(fp.parts, plain.parts)).toEqual({ changed: [], added: [], removed: [] });
  });
});

describe('fingerprintFunction in a tslab notebook: what a step uses from the cells', () => {
  const CELL: CallSite = { file: 'evalmachine.<anonymous>', line: 3, column: 18 };
  const tslabGlobal = globalThis as { __tslab__?: { exports: Record<string, unknown> } };
  let cells: Record<string, unknown>;
  beforeEach(() => {
    cells = {};
    tslabGlobal.__tslab__ = { exports: cells };
  });
  afterEach(() => {
    delete tslabGlobal.__tslab__;
  });
  /** A function compiled from `text` as tslab compiles a cell: a name from an earlier cell reads `exports.name`. */
  const compiled = (text: string): Function => new Function('exports', `return ${text};`)(cells) as Function;

  it('follows `exports.x` (an earlier cell) and plain names (its own cell), transitively: functions and classes by text, constants by value', () => {
    cells['SCALE'] = 2;
    cells['scale'] = compiled('function scale(x) { return x * exports.SCALE; }');
    cells['Model'] = compiled('class Model { predict(x) { return offset(x); } }');
    cells['offset'] = compiled('function offset(x) { return x + 1; }');
    cells['unused'] = compiled('function unused() { return 0; }');
    const fn = compiled('function shifted({ xs }) { return xs.map((x) => exports.scale(x) + new Model().predict(x)); }');
    const fp = fingerprintFunction(fn, CELL, hash);
    expect(fp.shallow).toBe(true);
    expect(fp.parts.map((p) => [p.kind, p.name])).toEqual([
      ['source', 'shifted'],
      ['function', 'offset'],
      ['function', 'scale'],
      ['class', 'Model'],
      ['variable', 'SCALE'],
    ]);
    expect(fp.reason).toMatch(/notebook cell.*\(Model, SCALE, offset, scale\) are fingerprinted/);
    const before = fp.parts;
    cells['offset'] = compiled('function offset(x) { return x + 2; }');
    expect(diffFingerprints(before, fingerprintFunction(fn, CELL, hash).parts).changed).toEqual(['offset']);
    cells['SCALE'] = 3;
    cells['unused'] = compiled('function unused() { return 1; }');
    expect(diffFingerprints(before, fingerprintFunction(fn, CELL, hash).parts).changed).toEqual(['SCALE', 'offset']);
  });

  it('a step that uses nothing from the cells keeps the fingerprint of its text alone', () => {
    const fn = compiled('function alone({ xs }) { return xs.length; }');
    const inCell = fingerprintFunction(fn, CELL, hash);
    delete tslabGlobal.__tslab__;
    expect(inCell.hash).toBe(fingerprintFunction(fn, CELL, hash).hash);
  });

  it('a cell value that cannot be encoded (an object holding functions, a module a cell imported) is a shallow spot', () => {
    cells['fs'] = fs;
    cells['handle'] = { close: () => undefined };
    const fn = compiled('function reads() { return [exports.fs.existsSync("x"), exports.handle]; }');
    const fp = fingerprintFunction(fn, CELL, hash);
    expect(fp.parts.filter((p) => p.kind !== 'shallow').map((p) => p.name)).toEqual(['reads']);
    expect(fp.shallowSpots).toEqual([
      expect.stringMatching(/^fs, from a notebook cell: a value that cannot be encoded/),
      expect.stringMatching(/^handle, from a notebook cell: a value that cannot be encoded \(a function \(close\)/),
    ]);
  });
});

describe('fingerprint properties', () => {
  /** The start of every token of a source text. */
  const tokenStarts = (text: string): number[] => {
    const scanner = ts.createScanner(ts.ScriptTarget.Latest, true, ts.LanguageVariant.Standard, text);
    const starts: number[] = [];
    while (scanner.scan() !== ts.SyntaxKind.EndOfFileToken) starts.push(scanner.getTokenStart());
    return starts;
  };

  it('formatting-only changes (spaces, tabs, block comments between any tokens, indentation) keep the fingerprint', () => {
    const base = original();
    const expected = fingerprintIn(base, 'trainer').hash;
    const text = fs.readFileSync(path.join(base, 'steps.js'), 'utf8');
    const starts = tokenStarts(text);
    const filler = fc.constantFrom(' ', '  ', '\t', '/* c */', ' /**/ ');
    let run = 0;
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat({ max: starts.length - 1 }), filler), { maxLength: 60 }), fc.nat({ max: 4 }), (inserts, indent) => {
        let out = text;
        const sorted = [...inserts].sort((x, y) => y[0] - x[0]);
        for (const [i, f] of sorted) {
          const at = starts[i] as number;
          out = out.slice(0, at) + f + out.slice(at);
        }
        out = out.replace(/\n(?=[ \t]*\S)/g, `\n${' '.repeat(indent)}`);
        const dir = path.join(base, `format-${run++}`);
        fs.mkdirSync(dir);
        fs.copyFileSync(path.join(base, 'helpers.js'), path.join(dir, 'helpers.js'));
        const file = path.join(dir, 'steps.js');
        fs.writeFileSync(file, out);
        const site = siteOfStep(file, 'trainer');
        return fingerprintFunction(load(base, 'steps.js', 'trainer'), site, hash).hash === expected;
      }),
      { numRuns: 40 },
    );
  });

  it('any other value of a constant the step uses changes the fingerprint', () => {
    const base = original();
    const expected = fingerprintIn(base, 'trainer');
    let run = 0;
    fc.assert(
      fc.property(
        fc.integer({ min: -1000, max: 1000 }).filter((n) => n !== 2),
        (n) => {
          const dir = path.join(base, `scale-${run++}`);
          fs.mkdirSync(dir);
          fs.copyFileSync(path.join(base, 'helpers.js'), path.join(dir, 'helpers.js'));
          const file = path.join(dir, 'steps.js');
          fs.writeFileSync(file, fs.readFileSync(path.join(base, 'steps.js'), 'utf8').replace('const SCALE = 2;', `const SCALE = ${n};`));
          const fp = fingerprintFunction(load(base, 'steps.js', 'trainer'), siteOfStep(file, 'trainer'), hash);
          const scale = (f: CodeFingerprint) => f.parts.find((p) => p.name === 'SCALE')?.hash;
          return fp.hash !== expected.hash && scale(fp) !== scale(expected) && fp.parts.length === expected.parts.length;
        },
      ),
      { numRuns: 30 },
    );
  });
});

/** The call site of the step() call whose first argument is the function expression named `name`, found by parsing. */
const siteOfStep = (file: string, name: string): CallSite => {
  const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
  let found: CallSite | undefined;
  const visit = (n: ts.Node): void => {
    if (ts.isCallExpression(n)) {
      const arg = n.arguments[0];
      if (arg !== undefined && ts.isFunctionExpression(arg) && arg.name?.text === name) {
        const { line, character } = sf.getLineAndCharacterOfPosition(n.expression.getStart(sf));
        found = { file, line: line + 1, column: character + 1 };
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  if (found === undefined) throw new Error(`no step(function ${name}) in ${file}`);
  return found;
};

// input names

describe('fingerprintFunction reads the step function\'s input names', () => {
  type InputStep = keyof typeof inputSteps;

  /** The fingerprint of one step of inputs.ts in `dir` (the original fixtures by default). */
  const inputsIn = (name: InputStep, dir = FIXTURES): CodeFingerprint =>
    fingerprintFunction(inputSteps[name] as StepFn, siteOf(path.join(dir, 'inputs.ts'), `step(function ${name}`), hash);

  it('from a type literal: optional, defaulted and undefined-accepting members are not required; every member is known', () => {
    const fp = inputsIn('literal');
    expect(fp.shallow).toBe(false);
    expect(fp.inputs).toEqual({ required: ['data', 'note'], known: ['data', 'extra', 'gamma', 'note', 'scale', 'seed'] });
  });

  it('from an interface and a type alias of the same file', () => {
    expect(inputsIn('viaInterface').inputs).toEqual({ required: ['data', 'label'], known: ['data', 'gamma', 'label', 'seed'] });
    expect(inputsIn('viaAlias').inputs).toEqual({ required: ['data', 'model'], known: ['data', 'model', 'weights'] });
  });

  it('from an identifier parameter typed with an interface (or a type literal): the non-optional properties', () => {
    expect(inputsIn('whole').inputs).toEqual({ required: ['data', 'label'], known: ['data', 'gamma', 'label', 'seed'] });
    expect(fingerprintFunction(multiline.fn, multiline.site, hash).inputs).toEqual({ required: ['z'], known: ['z'] });
    expect(fingerprintFunction(clipper.fn, clipper.site, hash).inputs).toEqual({ required: ['xs'], known: ['xs'] });
  });

  it('follows interface extends, undefined through a same-file alias, and a rest element', () => {
    expect(inputsIn('extended').inputs).toEqual({ required: ['data', 'folds', 'label'], known: ['data', 'folds', 'gamma', 'label', 'note', 'seed'] });
  });

  it('follows types imported from a relative module, renamed exports included', () => {
    expect(inputsIn('imported').inputs).toEqual({ required: ['rows'], known: ['limit', 'rows'] });
    expect(inputsIn('renamed').inputs).toEqual({ required: ['table'], known: ['table', 'where'] });
  });

  it('treats `gamma?: number` and `gamma: number | undefined` alike: not required', () => {
    const dir = variant(['inputs.ts', 'readonly gamma?: number;', 'readonly gamma: number | undefined;']);
    const before = inputsIn('whole');
    const after = inputsIn('whole', dir);
    expect(after.inputs).toEqual(before.inputs);
    expect(after.inputs?.required).not.toContain('gamma');
    const required = inputsIn('whole', variant(['inputs.ts', 'readonly gamma?: number;', 'readonly gamma: number;']));
    expect(required.inputs?.required).toEqual(['data', 'gamma', 'label']);
  });

  it('a default value makes a member of a required type not required', () => {
    expect(inputsIn('literal').inputs?.required).not.toContain('gamma');
    const withoutDefault = inputsIn('literal', variant(['inputs.ts', '{ data, gamma = 0.1, scale', '{ data, gamma, scale']));
    expect(withoutDefault.inputs?.required).toEqual(['data', 'gamma', 'note']);
    const withDefault = inputsIn('viaAlias', variant(['inputs.ts', '{ model, data }: ScoreInput', '{ model = 1, data }: ScoreInput']));
    expect(withDefault.inputs).toEqual({ required: ['data'], known: ['data', 'model', 'weights'] });
  });

  it('a function without parameters requires nothing', () => {
    expect(inputsIn('none').inputs).toEqual({ required: [], known: [] });
  });

  it('are absent for JavaScript without types, shallow fingerprints and types it does not read', () => {
    const js = fingerprintIn(original(), 'trainer');
    expect(js.shallow).toBe(false);
    expect(js).not.toHaveProperty('inputs');
    expect(fingerprintFunction(inputSteps.literal, undefined, hash)).not.toHaveProperty('inputs');
    for (const name of ['generic', 'union', 'indexed', 'computed', 'untyped'] as const) {
      const fp = inputsIn(name);
      expect([name, fp.shallow]).toEqual([name, false]);
      expect([name, fp.inputs]).toEqual([name, undefined]);
    }
    const unresolved = variant(['inputs.ts', 'interface TrainInput {', 'interface Other {'], ['inputs.ts', 'interface Tuned extends TrainInput {', 'interface Tuned extends Other {']);
    expect(inputsIn('viaInterface', unresolved).inputs).toBeUndefined();
  });

  it('do not count in the hash: editing only optionality changes the inputs, not the hash', () => {
    const before = inputsIn('viaInterface');
    const after = inputsIn('viaInterface', variant(['inputs.ts', 'readonly label: string;', 'readonly label?: string;']));
    expect(after.inputs?.required).toEqual(['data']);
    expect(before.inputs?.required).toEqual(['data', 'label']);
    expect(after.hash).toBe(before.hash);
    expect(after.parts.map((p) => [p.kind, p.name, p.hash])).toEqual(before.parts.map((p) => [p.kind, p.name, p.hash]));
  });

  it('do not count in the hash: it is the hash of the same code without types, where the inputs are absent', () => {
    const dir = tempDir('stepcache-fingerprint-plain-');
    dirs.push(dir);
    const plain = path.join(dir, 'inputs-plain.js');
    const source = fs.readFileSync(path.join(FIXTURES, 'inputs.ts'), 'utf8');
    fs.writeFileSync(plain, ts.transpileModule(source, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText);
    for (const name of ['literal', 'viaInterface', 'whole', 'none'] as const) {
      const typedFp = inputsIn(name);
      const plainFp = fingerprintFunction(inputSteps[name], siteOf(plain, `step(function ${name}`), hash);
      expect(plainFp.shallow).toBe(false);
      expect(typedFp.inputs).toBeDefined();
      if (name !== 'none') expect(plainFp).not.toHaveProperty('inputs');
      expect([name, plainFp.hash]).toEqual([name, typedFp.hash]);
    }
  });
});

describe('openFingerprintDiskCache', () => {
  const site = (): CallSite => siteOf(path.join(FIXTURES, 'inputs.ts'), 'step(function literal');

  it('keeps the input names through the JSON file', async () => {
    const dir = tempDir('stepcache-fingerprint-cache-');
    dirs.push(dir);
    const file = path.join(dir, 'fingerprints.json');
    const first = openFingerprintDiskCache(file, hash).fingerprint(inputSteps.literal, site());
    expect(first.inputs).toEqual({ required: ['data', 'note'], known: ['data', 'extra', 'gamma', 'note', 'scale', 'seed'] });
    const cache = openFingerprintDiskCache(file, hash);
    cache.fingerprint(inputSteps.literal, site());
    await cache.flush();
    const stored = JSON.parse(fs.readFileSync(file, 'utf8')) as { format: number; entries: Record<string, { fingerprint: CodeFingerprint }> };
    expect(stored.format).toBe(4);
    expect(Object.values(stored.entries).map((e) => e.fingerprint.inputs)).toEqual([first.inputs]);
    // Marked, so that the test sees the kept fingerprint is the one used.
    const entries = Object.fromEntries(Object.entries(stored.entries).map(([k, e]) => [k, { ...e, fingerprint: { ...e.fingerprint, reason: 'kept' } }]));
    fs.writeFileSync(file, JSON.stringify({ format: 4, entries }));
    const kept = openFingerprintDiskCache(file, hash).fingerprint(inputSteps.literal, site());
    expect(kept.reason).toBe('kept');
    expect(kept.inputs).toEqual(first.inputs);
    expect({ ...kept, reason: undefined }).toEqual({ ...first, reason: undefined });
  });

  it('ignores a file of an earlier format (3: fingerprints that did not follow the classes of parameter types)', async () => {
    const dir = tempDir('stepcache-fingerprint-cache-');
    dirs.push(dir);
    const file = path.join(dir, 'fingerprints.json');
    const cache = openFingerprintDiskCache(file, hash);
    const fresh = cache.fingerprint(inputSteps.literal, site());
    await cache.flush();
    const stored = JSON.parse(fs.readFileSync(file, 'utf8')) as { entries: Record<string, { fingerprint: CodeFingerprint }> };
    const old = Object.fromEntries(
      Object.entries(stored.entries).map(([k, e]) => {
        const { inputs: _inputs, ...rest } = e.fingerprint;
        return [k, { ...e, fingerprint: rest }];
      }),
    );
    fs.writeFileSync(file, JSON.stringify({ format: 3, entries: old }));
    expect(openFingerprintDiskCache(file, hash).fingerprint(inputSteps.literal, site()).inputs).toEqual(fresh.inputs);
  });

  describe('with a secret', () => {
    const secret = 'team-secret';
    /** A cache file of one kept fingerprint, marked so that a test sees whether it is used. */
    const markedFile = async (signWith: string | undefined): Promise<{ readonly file: string; readonly fresh: CodeFingerprint }> => {
      const dir = tempDir('stepcache-fingerprint-cache-');
      dirs.push(dir);
      const file = path.join(dir, 'fingerprints.json');
      const cache = openFingerprintDiskCache(file, hash, { secret });
      const fresh = cache.fingerprint(inputSteps.literal, site());
      await cache.flush();
      const stored = JSON.parse(fs.readFileSync(file, 'utf8')) as { entries: Record<string, { fingerprint: CodeFingerprint }> };
      const entries = Object.fromEntries(Object.entries(stored.entries).map(([k, e]) => [k, { ...e, fingerprint: { ...e.fingerprint, reason: 'kept' } }]));
      const signature = signWith === undefined ? {} : { signature: signFingerprintEntries(signWith, JSON.stringify(entries)) };
      fs.writeFileSync(file, JSON.stringify({ format: 4, entries, ...signature }));
      return { file, fresh };
    };

    it('signs the file it writes, and uses a file signed with the secret', async () => {
      const { file } = await markedFile(secret);
      const ignored: string[] = [];
      expect(openFingerprintDiskCache(file, hash, { secret, onIgnored: (m) => void ignored.push(m) }).fingerprint(inputSteps.literal, site()).reason).toBe('kept');
      expect(ignored).toEqual([]);
    });

    it('ignores an edited file, an unsigned one and one signed with another secret, says so once, and rebuilds it', async () => {
      for (const signWith of [undefined, 'other-secret']) {
        const { file, fresh } = await markedFile(signWith);
        const ignored: string[] = [];
        const cache = openFingerprintDiskCache(file, hash, { secret, onIgnored: (m) => void ignored.push(m) });
        const computed = cache.fingerprint(inputSteps.literal, site());
        expect(computed.reason).not.toBe('kept');
        expect(computed).toEqual(fresh);
        cache.fingerprint(inputSteps.literal, site());
        expect(ignored).toHaveLength(1);
        expect(ignored[0]).toContain(file);
        expect(ignored[0]).toContain(signWith === undefined ? 'not signed' : 'does not verify');
        await cache.flush();
        const reopened: string[] = [];
        openFingerprintDiskCache(file, hash, { secret, onIgnored: (m) => void reopened.push(m) }).fingerprint(inputSteps.literal, site());
        expect(reopened).toEqual([]);
      }
      // an edit after signing
      const { file } = await markedFile(secret);
      const text = fs.readFileSync(file, 'utf8');
      fs.writeFileSync(file, text.replace('"kept"', '"forged"'));
      const ignored: string[] = [];
      expect(openFingerprintDiskCache(file, hash, { secret, onIgnored: (m) => void ignored.push(m) }).fingerprint(inputSteps.literal, site()).reason).not.toBe('forged');
      expect(ignored).toHaveLength(1);
      // without a secret, the same file is read as it is
      expect(openFingerprintDiskCache(file, hash).fingerprint(inputSteps.literal, site()).reason).toBe('forged');
    });
  });
});

// diffs

describe('diffFingerprints', () => {
  const part = (name: string, hashValue: string, file?: string, kind: FingerprintPart['kind'] = 'function'): FingerprintPart => ({ name, kind, hash: hashValue, ...(file === undefined ? {} : { file }) });

  it('names the parts that changed, appeared and disappeared, by name and file', () => {
    const before = [part('trainer', '1', '/p/a.ts', 'source'), part('a', '2', '/p/a.ts'), part('b', '3', '/p/a.ts'), part('old', '4', '/p/a.ts')];
    const after = [part('trainer', '1', '/p/a.ts', 'source'), part('a', '2', '/p/a.ts'), part('b', '5', '/p/a.ts'), part('fresh', '6', '/p/b.ts')];
    expect(diffFingerprints(before, after)).toEqual({ changed: ['b'], added: ['fresh'], removed: ['old'] });
    expect(diffFingerprints(after, after)).toEqual({ changed: [], added: [], removed: [] });
  });

  it('adds the file to a name that two parts share', () => {
    const before = [part('normalize', '1', '/p/a.ts'), part('normalize', '2', '/p/b.ts')];
    const after = [part('normalize', '1', '/p/a.ts'), part('normalize', '3', '/p/b.ts')];
    expect(diffFingerprints(before, after).changed).toEqual(['normalize (/p/b.ts)']);
  });
});
