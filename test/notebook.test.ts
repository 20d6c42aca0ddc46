/**
 * examples/notebook.ipynb, executed for real: Jupyter's nbconvert runs it twice in the tslab
 * kernel against one store (the second execution is a kernel restart: a new process, the store on
 * disk), and the executed notebooks' outputs are read back.
 *
 * Needs Jupyter's nbconvert and the tslab kernel registered with Jupyter; .ci/run installs both.
 * Without them the test fails and says what to install.
 */
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { removeDir, tempDir } from './support/fixtures';

const ROOT = path.resolve(__dirname, '..');
const NOTEBOOK = path.join(ROOT, 'examples', 'notebook.ipynb');
const BIN = path.join(ROOT, 'node_modules', '.bin');
const TIMEOUT = 8 * 60_000;

const INSTALL = [
  'Install them (as root, on Debian or Ubuntu):',
  '  apt-get update && apt-get install -y jupyter-nbconvert jupyter-client python3-ipykernel',
  'then, after npm ci, register the kernel with the Python that has Jupyter:',
  '  node_modules/.bin/tslab install --python=/usr/bin/python3',
  '(.ci/run does both.)',
].join('\n');

// finding Jupyter

/** The environment of the Jupyter processes: the repository's node_modules/.bin first, so the kernel command `tslab` is this repository's. */
const jupyterEnv = (storeDir: string): NodeJS.ProcessEnv => ({
  ...process.env,
  PATH: [BIN, process.env['PATH'] ?? ''].join(path.delimiter),
  STEPCACHE_DIR: storeDir,
  // quiets a debugger notice that Debian's Python prints on every Jupyter start
  PYDEVD_DISABLE_FILE_VALIDATION: '1',
});

const succeeds = (command: string, args: readonly string[], env: NodeJS.ProcessEnv): boolean =>
  spawnSync(command, args, { env, stdio: 'ignore', timeout: 60_000 }).status === 0;

/** An executable found on the PATH of `env`, or undefined. */
const onPath = (command: string, env: NodeJS.ProcessEnv): string | undefined => {
  for (const dir of (env['PATH'] ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, command);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
};

/** How to start nbconvert: `jupyter-nbconvert`, or `jupyter nbconvert`. */
const findNbconvert = (env: NodeJS.ProcessEnv): readonly string[] | undefined => {
  const direct = onPath('jupyter-nbconvert', env);
  if (direct !== undefined && succeeds(direct, ['--version'], env)) return [direct];
  const jupyter = onPath('jupyter', env);
  if (jupyter !== undefined && succeeds(jupyter, ['nbconvert', '--version'], env)) return [jupyter, 'nbconvert'];
  return undefined;
};

/** The tslab kernelspec's kernel.json, looked up in Jupyter's data directories. */
const findTslabKernel = (env: NodeJS.ProcessEnv): { readonly file: string; readonly argv: readonly string[] } | undefined => {
  const jupyter = onPath('jupyter', env);
  if (jupyter === undefined) return undefined;
  const paths = spawnSync(jupyter, ['--paths', '--json'], { env, encoding: 'utf8', timeout: 60_000 });
  if (paths.status !== 0) return undefined;
  const data = (JSON.parse(paths.stdout) as { data?: string[] }).data ?? [];
  for (const dir of data) {
    const file = path.join(dir, 'kernels', 'tslab', 'kernel.json');
    if (fs.existsSync(file)) return { file, argv: (JSON.parse(fs.readFileSync(file, 'utf8')) as { argv?: string[] }).argv ?? [] };
  }
  return undefined;
};

/** The nbconvert command, or an error saying what is missing and how to install it. */
const checkJupyter = (env: NodeJS.ProcessEnv): readonly string[] => {
  const nbconvert = findNbconvert(env);
  if (nbconvert === undefined) {
    throw new Error(`The notebook test needs Jupyter's nbconvert and the tslab kernel, but neither jupyter-nbconvert nor jupyter nbconvert runs.\n${INSTALL}`);
  }
  const kernel = findTslabKernel(env);
  if (kernel === undefined) {
    throw new Error(`The notebook test needs the tslab kernel, but Jupyter has no kernelspec named tslab (see jupyter --paths).\n${INSTALL}`);
  }
  const command = kernel.argv[0] ?? '';
  const runnable = path.isAbsolute(command) ? fs.existsSync(command) : onPath(command, env) !== undefined;
  if (!runnable) {
    throw new Error(`The tslab kernel (${kernel.file}) starts ${JSON.stringify(command)}, which is not found; register it again after npm ci.\n${INSTALL}`);
  }
  return nbconvert;
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
  let first: ExecutedCell[];
  let second: ExecutedCell[];

  beforeAll(async () => {
    dir = tempDir('stepcache-notebook-');
    const env = jupyterEnv(path.join(dir, 'store'));
    const [command = '', ...prefix] = checkJupyter(env);

    const execute = async (name: string): Promise<ExecutedCell[]> => {
      const output = path.join(dir, `${name}.ipynb`);
      const args = [...prefix, '--to', 'notebook', '--execute', '--ExecutePreprocessor.kernel_name=tslab', '--ExecutePreprocessor.timeout=300', '--output', output, NOTEBOOK];
      try {
        await promisify(execFile)(command, args, { cwd: ROOT, env, maxBuffer: 64 * 1024 * 1024, timeout: TIMEOUT / 2 });
      } catch (e) {
        const stderr = String((e as { stderr?: unknown }).stderr ?? '');
        throw new Error(`${[command, ...args].join(' ')} failed (${name}):\n${stderr.slice(-6000) || String(e)}`);
      }
      return executedCells(JSON.parse(fs.readFileSync(output, 'utf8')) as Notebook);
    };
    first = await execute('run1');
    second = await execute('run2'); // a new kernel process: only the store on disk is shared
  }, TIMEOUT);

  afterAll(() => {
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
    const warned = [...all.matchAll(/^Step (\w+): only the function's own text is fingerprinted/gm)].map(([, name]) => name);
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
});
