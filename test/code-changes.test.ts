/**
 * Cache keys that follow the code, end to end: a pipeline module written as a plain CommonJS
 * file in a project directory, edited between runs, each run in a fresh process (`tsx run.js`),
 * like a user re-running a script against one store.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { removeDir, tempDir } from './support/fixtures';

const ROOT = path.join(__dirname, '..');
const FIXTURES = path.join(__dirname, 'fixtures', 'code-changes');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');
const ENTRY = path.join(ROOT, 'src', 'index.ts');

const execFileAsync = promisify(execFile);

interface Outcome {
  readonly id: string;
  readonly steps: Record<string, { readonly status: string; readonly reason?: string; readonly why?: unknown; readonly cachedFrom?: string }>;
  readonly out: unknown;
  readonly explained: Record<string, { readonly status: string; readonly message: string; readonly shallowSpots?: readonly string[] }>;
  readonly lines: string[];
  readonly warnings: string[];
  readonly errors: string[];
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) removeDir(d);
});

/** A project directory holding a copy of the fixtures, with `stepcache` installed as a package that loads this repository's source. */
const project = (): string => {
  const dir = tempDir('stepcache-code-changes-');
  dirs.push(dir);
  for (const f of fs.readdirSync(FIXTURES)) fs.copyFileSync(path.join(FIXTURES, f), path.join(dir, f));
  const pkg = path.join(dir, 'node_modules', 'stepcache');
  fs.mkdirSync(pkg, { recursive: true });
  fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'stepcache', version: '0.0.0-test', main: 'index.js' }));
  fs.writeFileSync(path.join(pkg, 'index.js'), `module.exports = require(${JSON.stringify(ENTRY)});\n`);
  // A package the project installs (for its codecs).
  fs.symlinkSync(path.join(ROOT, 'node_modules', 'io-ts'), path.join(dir, 'node_modules', 'io-ts'));
  return dir;
};

/** Runs the pipeline of `module` in a fresh process against the project's store. */
const runIn = async (dir: string, module = 'pipeline.js'): Promise<Outcome> => {
  const { stdout } = await execFileAsync(TSX, ['run.js', module, path.join(dir, '.stepcache')], { cwd: dir, encoding: 'utf8' });
  return JSON.parse(stdout) as Outcome;
};

/** Replaces text in a project file (which must contain it) and moves its modification time on. */
const edit = (dir: string, from: string, to: string, file = 'pipeline.js'): void => {
  const at = path.join(dir, file);
  const text = fs.readFileSync(at, 'utf8');
  if (!text.includes(from)) throw new Error(`${from} is not in ${file}`);
  fs.writeFileSync(at, text.replace(from, to));
  const later = new Date(fs.statSync(at).mtimeMs + 10_000);
  fs.utimesSync(at, later, later);
};

describe('a pipeline module edited between runs, each run in a fresh process', () => {
  let dir: string;
  let first: Outcome;

  beforeAll(() => {
    dir = project();
  });

  it('run 1 executes the step, with its whole code fingerprinted (no warning)', async () => {
    first = await runIn(dir);
    expect(first.steps.transform?.status).toBe('executed');
    expect(first.lines).toContain('transform: running because it was never cached before');
    expect(first.out).toEqual([3, 5, 7]);
    expect(first.warnings).toEqual([]);
    expect(first.errors).toEqual([]);
  });

  it('run 2, unedited, is cached from run 1', async () => {
    const again = await runIn(dir);
    expect(again.steps.transform).toMatchObject({ status: 'cached', cachedFrom: first.id });
    expect(again.lines).toContain('Using cached version of transform.');
  });

  it('editing a comment in the step keeps it cached', async () => {
    edit(dir, '// apply a to every value', '// map every value through a(), keeping the order');
    expect((await runIn(dir)).steps.transform).toMatchObject({ status: 'cached', cachedFrom: first.id });
  });

  it('editing a comment in b() keeps it cached', async () => {
    edit(dir, '// double the value', '// scale the value by SCALE');
    expect((await runIn(dir)).steps.transform).toMatchObject({ status: 'cached', cachedFrom: first.id });
  });

  it('editing an unrelated function in the same file keeps it cached', async () => {
    edit(dir, 'return x - 10;', 'return x - 20;');
    const run = await runIn(dir);
    expect(run.steps.transform).toMatchObject({ status: 'cached', cachedFrom: first.id });
    expect(run.out).toEqual([3, 5, 7]);
  });

  it('editing b(), two calls away from the step, re-runs it, and the reason names b', async () => {
    edit(dir, 'return x * SCALE;', 'return x * SCALE + 1;');
    const run = await runIn(dir);
    expect(run.steps.transform?.status).toBe('executed');
    expect(run.steps.transform?.why).toEqual({ _tag: 'KeyChanged', changes: [{ _tag: 'Code', changed: ['b'], added: [], removed: [] }] });
    expect(run.steps.transform?.reason).toBe('its code changed (b)');
    expect(run.lines).toContain('transform: re-running because its code changed (b)');
    expect(run.out).toEqual([4, 6, 8]);
  });

  it('editing a module-level constant used by b() re-runs it, and the reason names the constant', async () => {
    edit(dir, 'const SCALE = 2;', 'const SCALE = 3;');
    const run = await runIn(dir);
    expect(run.steps.transform?.status).toBe('executed');
    expect(run.steps.transform?.reason).toBe('its code changed (SCALE)');
    expect(run.lines).toContain('transform: re-running because its code changed (SCALE)');
    expect(run.out).toEqual([5, 8, 11]);
  });
});

describe('a step that calls methods of a class instance it receives as an input (decoded by a codec)', () => {
  let dir: string;
  let first: Outcome;

  beforeAll(() => {
    dir = project();
  });

  it('run 1 executes every step', async () => {
    first = await runIn(dir, 'methods.ts');
    expect(first.errors).toEqual([]);
    expect(first.steps).toMatchObject({ train: { status: 'executed' }, evaluate: { status: 'executed' }, evaluate_any: { status: 'executed' }, evaluate_untyped: { status: 'executed' } });
    expect(first.out).toEqual([2, 4, 6]);
  });

  it('editing a method of an unrelated class in the same module keeps the steps cached', async () => {
    edit(dir, "return 'unrelated';", "return 'still unrelated';", 'methods-models.ts');
    const run = await runIn(dir, 'methods.ts');
    expect(run.steps.evaluate).toMatchObject({ status: 'cached', cachedFrom: first.id });
    expect(run.steps.train).toMatchObject({ status: 'cached', cachedFrom: first.id });
  });

  it('editing the method the steps call re-runs them, and the reason names the method (found through the parameter type, or else through the input codec)', async () => {
    edit(dir, 'return x * this.weight;', 'return x * this.weight + 1;', 'methods-models.ts');
    const run = await runIn(dir, 'methods.ts');
    expect(run.out).toEqual([3, 5, 7]);
    expect(run.steps.evaluate?.status).toBe('executed');
    expect(run.steps.evaluate?.reason).toBe('its code changed (Model.predict)');
    expect(run.lines).toContain('evaluate: re-running because its code changed (Model.predict)');
    // The model's stored content is the same: only the step's own key tells the method changed.
    expect(run.steps.evaluate?.why).toEqual({ _tag: 'KeyChanged', changes: [{ _tag: 'Code', changed: ['Model.predict'], added: [], removed: [] }] });
    // Typed with an interface, or `any`: the codec the input is decoded by names the class.
    expect(run.steps.evaluate_any).toMatchObject({ status: 'executed', reason: 'its code changed (Model.predict)' });
    expect(run.steps.evaluate_untyped).toMatchObject({ status: 'executed', reason: 'its code changed (Model.predict)' });
    expect(run.steps.train).toMatchObject({ status: 'executed', reason: 'its code changed (Model)' });
  });


  it('a step whose input is typed with an interface (no class) has a shallow spot in explain, and no warning', async () => {
    const run = await runIn(dir, 'methods.ts');
    expect(run.warnings).toEqual([]);
    expect(run.explained['evaluate_any']?.shallowSpots).toEqual([expect.stringMatching(/^model: Predictor is an interface with methods \(predict\)/)]);
    expect(run.explained['evaluate_any']?.message).toContain('model: Predictor is an interface with methods');
    expect(run.explained['evaluate']?.shallowSpots).toBeUndefined();
  });
});

describe('a step that uses a variable of an enclosing function', () => {
  it('warns, naming the variable', async () => {
    const run = await runIn(project(), 'captured.js');
    expect(run.steps.scaled?.status).toBe('executed');
    expect(run.out).toEqual([3, 6]);
    expect(run.warnings).toEqual([expect.stringMatching(/^Step scaled uses factor from an enclosing function\b.*pass factor as a parameter/)]);
  });
});

describe('a module edited while a long-lived process has it loaded (a notebook, a watch-mode script)', () => {
  interface LiveRun {
    readonly status: string;
    readonly out: unknown;
  }
  const live = async (dir: string, module: string, file: string, from: string, to: string, when = 'between'): Promise<{ first: LiveRun; second: LiveRun; warnings: string[] }> => {
    const { stdout } = await execFileAsync(TSX, ['live.js', path.join(dir, '.stepcache'), module, file, from, to, when], { cwd: dir, encoding: 'utf8' });
    return JSON.parse(stdout) as { first: LiveRun; second: LiveRun; warnings: string[] };
  };

  it.each([
    ['an imported helper', 'live-pipeline.js', 'live-helpers.js', 'return x * 2;', 'return x * 3;', [3, 6, 9]],
    ['the pipeline file itself', 'live-pipeline.js', 'live-pipeline.js', 'const OFFSET = 0;', 'const OFFSET = 1;', [3, 5, 7]],
    ['an imported TypeScript helper', 'live-typed.ts', 'live-typed-helpers.ts', 'return x * 2;', 'return x * 3;', [3, 6, 9]],
  ])('%s: the rebuilt pipeline runs the loaded code under its own key, and a fresh process runs the edit', async (_what, module, file, from, to, edited) => {
    const dir = project();
    const run = await live(dir, module, file, from, to);
    expect(run.first).toMatchObject({ status: 'executed', out: [2, 4, 6] });
    // The process still runs the code it loaded: same key, served from the cache, with a warning naming the file.
    expect(run.second).toMatchObject({ status: 'cached', out: [2, 4, 6] });
    expect(run.warnings).toEqual([expect.stringContaining(`${file} was edited after this process loaded it`)]);
    // A fresh process loads the edit: its key is new, so it executes.
    const fresh = await runIn(dir, module);
    expect(fresh.steps.scaled?.status).toBe('executed');
    expect(fresh.out).toEqual(edited);
    expect(fresh.warnings).toEqual([]);
  });

  it('a helper edited after it was loaded and before the first run: the run keys the loaded code, and a fresh process runs the edit', async () => {
    const dir = project();
    const run = await live(dir, 'live-pipeline.js', 'live-helpers.js', 'return x * 2;', 'return x * 3;', 'before');
    expect(run.first).toMatchObject({ status: 'executed', out: [2, 4, 6] });
    expect(run.second).toMatchObject({ status: 'cached', out: [2, 4, 6] });
    expect(run.warnings).toEqual([expect.stringContaining('live-helpers.js was edited after this process loaded it')]);
    const fresh = await runIn(dir, 'live-pipeline.js');
    expect(fresh.steps.scaled?.status).toBe('executed');
    expect(fresh.out).toEqual([3, 6, 9]);
  });

  it('a helper edited after it was loaded, then run by a fresh process: the code fingerprint that process kept (of the edit) is not used for the loaded code', async () => {
    const dir = project();
    const run = await live(dir, 'live-pipeline.js', 'live-helpers.js', 'return x * 2;', 'return x * 3;', 'fresh');
    // The fresh process stored the edit's result under the edit's key; this process runs the loaded code, under its own key.
    expect(run.first).toMatchObject({ status: 'executed', out: [2, 4, 6] });
    expect(run.second).toMatchObject({ status: 'cached', out: [2, 4, 6] });
    expect(run.warnings).toEqual([expect.stringContaining('live-helpers.js was edited after this process loaded it')]);
    // And the loaded code's result was not stored under the edit's key: a fresh process is served the edit's result.
    const fresh = await runIn(dir, 'live-pipeline.js');
    expect(fresh.steps.scaled?.status).toBe('cached');
    expect(fresh.out).toEqual([3, 6, 9]);
  });
});
