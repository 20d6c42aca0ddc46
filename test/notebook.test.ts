/**
 * examples/notebook.ipynb, executed for real: Jupyter's nbconvert runs it twice in the tslab
 * kernel against one store (the second execution is a kernel restart: a new process, the store on
 * disk), and the executed notebooks' outputs are read back.
 *
 * The notebook imports `stepcache` as a user's notebook does, so it runs in a folder laid out like
 * a user's project: the notebook, `node_modules/stepcache` holding the package built from this
 * checkout (into that folder, so a concurrent `npm pack` that rebuilds `dist/` cannot disturb it),
 * and this repository's installed dependencies linked beside it.
 *
 * Jupyter and the tslab kernel are provisioned by `support/provision/jupyter.ts`: found, or
 * installed (Debian's packages, as root), or the test fails saying what to install.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { removeDir, tempDir } from './support/fixtures';
import { provideJupyter, type Jupyter } from './support/provision/jupyter';

const ROOT = path.resolve(__dirname, '..');
const NOTEBOOK = path.join(ROOT, 'examples', 'notebook.ipynb');
/** A notebook whose step uses helpers defined in an earlier cell, which later cells define again (as a user edits and re-runs a cell). */
const HELPERS_NOTEBOOK = path.join(__dirname, 'fixtures', 'notebook', 'helpers.ipynb');
const MODULES = path.join(ROOT, 'node_modules');
/** Installing Jupyter (minutes), building the package, then two executions of the notebook. */
const TIMEOUT = 15 * 60_000;

const run = promisify(execFile);

/** Runs a command; on failure, the error names it and ends with what it printed. */
const runOrExplain = async (what: string, file: string, args: readonly string[], options: { readonly cwd: string; readonly env?: NodeJS.ProcessEnv; readonly timeout: number }): Promise<void> => {
  try {
    await run(file, args, { ...options, maxBuffer: 64 * 1024 * 1024 });
  } catch (e) {
    const output = ['stdout', 'stderr'].map((k) => String((e as Record<string, unknown>)[k] ?? '')).join('\n');
    throw new Error(`${what} failed: ${[file, ...args].join(' ')}\n${output.trim().slice(-6000) || String(e)}`);
  }
};

// the notebook's project

/**
 * A user's project in `dir`: `notebook.ipynb`, the package built into `node_modules/stepcache`,
 * and every other entry of this repository's node_modules linked into `node_modules`.
 * Returns the notebook's path.
 */
const prepareProject = async (dir: string): Promise<string> => {
  const modules = path.join(dir, 'node_modules');
  const installed = path.join(modules, 'stepcache');
  fs.mkdirSync(installed, { recursive: true });
  await runOrExplain('Building the package', path.join(MODULES, '.bin', 'tsup'), ['--out-dir', path.join(installed, 'dist')], { cwd: ROOT, timeout: 5 * 60_000 });
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(installed, 'package.json'));
  for (const entry of fs.readdirSync(MODULES)) {
    if (entry !== 'stepcache') fs.symlinkSync(path.join(MODULES, entry), path.join(modules, entry));
  }
  const notebook = path.join(dir, 'notebook.ipynb');
  fs.copyFileSync(NOTEBOOK, notebook);
  fs.copyFileSync(HELPERS_NOTEBOOK, path.join(dir, 'helpers.ipynb'));
  return notebook;
};

// executed notebooks

interface NotebookOutput {
  readonly output_type: string;
  readonly name?: string;
  readonly text?: string | string[];
  readonly data?: Readonly<Record<string, string | string[]>>;
  readonly ename?: string;
  readonly evalue?: string;
}

interface NotebookCell {
  readonly cell_type: string;
  readonly source: string | string[];
  readonly outputs?: readonly NotebookOutput[];
}

interface Notebook {
  readonly metadata: { readonly kernelspec?: { readonly name?: string; readonly language?: string } };
  readonly cells: readonly NotebookCell[];
}

const joined = (v: string | readonly string[] | undefined): string => (v === undefined ? '' : typeof v === 'string' ? v : v.join(''));

/** One executed code cell: its source, what it printed, and its rich outputs by MIME type. */
interface ExecutedCell {
  readonly source: string;
  readonly text: string;
  readonly rich: readonly Readonly<Record<string, string>>[];
  readonly errors: readonly string[];
}

const executedCells = (nb: Notebook): ExecutedCell[] =>
  nb.cells
    .filter((c) => c.cell_type === 'code')
    .map((c) => {
      const outputs = c.outputs ?? [];
      return {
        source: joined(c.source),
        text: outputs.filter((o) => o.output_type === 'stream').map((o) => joined(o.text)).join(''),
        rich: outputs.filter((o) => o.data !== undefined).map((o) => Object.fromEntries(Object.entries(o.data ?? {}).map(([k, v]) => [k, joined(v)]))),
        errors: outputs.filter((o) => o.output_type === 'error').map((o) => `${o.ename ?? ''}: ${o.evalue ?? ''}`),
      };
    });

/** The cell whose source contains `marker` (exactly one). */
const cellWith = (cells: readonly ExecutedCell[], marker: string): ExecutedCell => {
  const found = cells.filter((c) => c.source.includes(marker));
  if (found.length !== 1) throw new Error(`expected one code cell containing ${JSON.stringify(marker)}, found ${found.length}`);
  return found[0] as ExecutedCell;
};

/** The `<label> statuses: step=status ...` lines the notebook prints, by label. */
const statusesOf = (cells: readonly ExecutedCell[]): Record<string, Record<string, string>> => {
  const result: Record<string, Record<string, string>> = {};
  for (const cell of cells) {
    for (const [, label = '', list = ''] of cell.text.matchAll(/^(\w+) statuses: (.*)$/gm)) {
      result[label] = Object.fromEntries(list.trim().split(/\s+/).map((pair) => pair.split('=') as [string, string]));
    }
  }
  return result;
};

/** The `<label> training_acc: x` lines, by label. */
const accuraciesOf = (cells: readonly ExecutedCell[]): Record<string, number> =>
  Object.fromEntries(cells.flatMap((c) => [...c.text.matchAll(/^(\w+) training_acc: (\S+)$/gm)].map(([, label = '', acc = '']) => [label, Number(acc)])));

/** Every HTML or SVG output of a cell. */
const markupOf = (cell: ExecutedCell): string[] => cell.rich.flatMap((r) => [r['text/html'], r['image/svg+xml']].filter((m): m is string => m !== undefined));

// the test

const BOTH_EXECUTED = { training_data_loader: 'executed', svc_trainer: 'executed' };
const LOADER_CACHED = { training_data_loader: 'cached', svc_trainer: 'executed' };
const BOTH_CACHED = { training_data_loader: 'cached', svc_trainer: 'cached' };

it('examples/notebook.ipynb is a TypeScript notebook for the tslab kernel', () => {
  const nb = JSON.parse(fs.readFileSync(NOTEBOOK, 'utf8')) as Notebook;
  expect(nb.metadata.kernelspec).toMatchObject({ name: 'tslab', language: 'typescript' });
});

describe('examples/notebook.ipynb in the tslab kernel', () => {
  let dir: string;
  let jupyter: Jupyter | undefined;
  let first: ExecutedCell[];
  let second: ExecutedCell[];
  let helpers: ExecutedCell[];

  beforeAll(async () => {
    dir = tempDir('stepcache-notebook-');
    // both at once; both settle before a failure ends the test (and afterAll removes their folders)
    const [provision, preparation] = await Promise.allSettled([provideJupyter(), prepareProject(path.join(dir, 'project'))]);
    if (provision.status === 'fulfilled') jupyter = provision.value;
    if (provision.status === 'rejected') throw provision.reason;
    if (preparation.status === 'rejected') throw preparation.reason;
    const [provided, notebook] = [provision.value, preparation.value];
    const [command = '', ...prefix] = provided.nbconvert;
    const env = { ...provided.env, STEPCACHE_DIR: path.join(dir, 'store') };

    const execute = async (name: string, source = notebook, storeEnv = env): Promise<ExecutedCell[]> => {
      const output = path.join(dir, `${name}.ipynb`);
      const args = [...prefix, '--to', 'notebook', '--execute', `--ExecutePreprocessor.kernel_name=${provided.kernelName}`, '--ExecutePreprocessor.timeout=300', '--output', output, source];
      await runOrExplain(`Executing the notebook (${name})`, command, args, { cwd: path.dirname(source), env: storeEnv, timeout: 5 * 60_000 });
      return executedCells(JSON.parse(fs.readFileSync(output, 'utf8')) as Notebook);
    };
    first = await execute('run1');
    second = await execute('run2'); // a new kernel process: only the store on disk is shared
    helpers = await execute('helpers', path.join(path.dirname(notebook), 'helpers.ipynb'), { ...env, STEPCACHE_DIR: path.join(dir, 'helpers-store') });
  }, TIMEOUT);

  afterAll(() => {
    jupyter?.dispose();
    if (dir !== undefined) removeDir(dir);
  });

  it('executes every cell without an error', () => {
    expect(first.flatMap((c) => c.errors)).toEqual([]);
    expect(second.flatMap((c) => c.errors)).toEqual([]);
  });

  it('first execution: both steps execute, then after gamma changes the loader is served from the cache', () => {
    const statuses = statusesOf(first);
    expect(statuses['run1']).toEqual(BOTH_EXECUTED);
    expect(statuses['run2']).toEqual(LOADER_CACHED);

    const gammaCell = cellWith(first, 'const run2 =');
    expect(gammaCell.text).toContain('Using cached version of training_data_loader.');
    expect(gammaCell.text).toContain('svc_trainer: re-running because parameter gamma changed (0.002 -> 0.0001)');
    expect(gammaCell.text).not.toContain('Using cached version of svc_trainer.');
  });

  it('a cell that defines the trainer again with unchanged code is a cache hit', () => {
    const redefined = cellWith(first, 'const run3 =');
    expect(redefined.source).toMatch(/const svcTrainer = step\(function svc_trainer\(/);
    expect(statusesOf(first)['run3']).toEqual(BOTH_CACHED);
    expect(redefined.text).toContain('Using cached version of svc_trainer.');
  });

  it('a step defined in a cell is fingerprinted by its text, with one warning per step', () => {
    const all = first.map((c) => c.text).join('');
    const warned = [...all.matchAll(/^Step (\w+): its fingerprint is shallow, because it is defined in a notebook cell/gm)].map(([, name]) => name);
    expect(warned.sort()).toEqual(['svc_trainer', 'training_data_loader']);
  });

  it('second execution (a kernel restart): every run is served from the store on disk', () => {
    const statuses = statusesOf(second);
    expect(statuses).toEqual({ run1: BOTH_CACHED, run2: BOTH_CACHED, run3: BOTH_CACHED });
    const run1Cell = cellWith(second, 'const run1 =');
    expect(run1Cell.text).toContain('Using cached version of training_data_loader.');
    expect(run1Cell.text).toContain('Using cached version of svc_trainer.');
    expect(run1Cell.text).not.toMatch(/running because/);
    // the cached outputs are the ones the first execution made
    expect(accuraciesOf(second)).toEqual(accuraciesOf(first));
  });

  it.each([
    ['first', () => first],
    ['second', () => second],
  ])('%s execution: shows the run as an SVG picture and the comparison as an HTML table', (_, cells) => {
    const display = markupOf(cellWith(cells(), 'displayRun('));
    expect(display.some((m) => m.includes('<svg') && m.includes('</svg>'))).toBe(true);
    expect(display.some((m) => m.includes('<table'))).toBe(true);

    const comparison = markupOf(cellWith(cells(), 'compareRuns('));
    const table = comparison.find((m) => m.includes('<table'));
    expect(table).toBeDefined();
    expect(table).toContain('training_data_loader');
    expect(table).toContain('svc_trainer');
  });

  describe('a step that uses helpers defined in an earlier cell (test/fixtures/notebook/helpers.ipynb)', () => {
    it('executes every cell without an error', () => {
      expect(helpers.flatMap((c) => c.errors)).toEqual([]);
    });

    it('the helpers are fingerprinted with the step: the warning names them', () => {
      const all = helpers.map((c) => c.text).join('');
      expect(all).toMatch(/^Step shifted: its fingerprint is shallow, because it is defined in a notebook cell, which is not a source file: its text and what it uses from the notebook's cells \(OFFSET, offset\) are fingerprinted/m);
    });

    it('the helpers cell run again with an unrelated edit: the step stays cached', () => {
      const statuses = statusesOf(helpers);
      expect(statuses['runA']).toEqual({ shifted: 'executed' });
      expect(statuses['runB']).toEqual({ shifted: 'cached' });
    });

    it('the helper edited and its cell run again: the step re-runs, and the reason names the helper', () => {
      expect(statusesOf(helpers)['runC']).toEqual({ shifted: 'executed' });
      const runC = cellWith(helpers, 'const runC =');
      expect(runC.text).toContain('shifted: re-running because its code changed (offset)');
      expect(runC.text).toContain('runC out: [3,4,5]');
    });

    it('a constant the helper uses, edited in its cell: the step re-runs, and the reason names the constant', () => {
      expect(statusesOf(helpers)['runD']).toEqual({ shifted: 'executed' });
      const runD = cellWith(helpers, 'const runD =');
      expect(runD.text).toContain('shifted: re-running because its code changed (OFFSET)');
      expect(runD.text).toContain('runD out: [11,12,13]');
    });
  });
});
