/**
 * Jupyter's nbconvert with this repository's tslab kernel, for tests that execute notebooks.
 *
 * - nbconvert: `STEPCACHE_TEST_NBCONVERT` names an existing `jupyter-nbconvert`; else the one on
 *   the `PATH` or Debian's `/usr/bin/jupyter-nbconvert` (which runs on Debian's own Python,
 *   whatever `python3` the `PATH` offers); else Debian's `jupyter-nbconvert` package is installed.
 * - tslab: this repository's devDependency (`node_modules/.bin/tslab`, installed by `npm ci`), or
 *   the executable `STEPCACHE_TEST_TSLAB` names.
 * - The kernelspec is project-local: a temporary folder on `JUPYTER_PATH` holds
 *   `kernels/tslab/kernel.json`, whose command is that tslab's absolute path. Jupyter's config,
 *   data and runtime folders are temporary too, so a user's own Jupyter setup
 *   (`~/.local/share/jupyter`, `~/.jupyter`) is neither read nor written.
 *
 * @example
 * const jupyter = await provideJupyter();
 * const [command = '', ...prefix] = jupyter.nbconvert;
 * execFileSync(command, [...prefix, '--to', 'notebook', '--execute', `--ExecutePreprocessor.kernel_name=${jupyter.kernelName}`, 'notebook.ipynb'], { env: jupyter.env });
 * jupyter.dispose();
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { removeDir, tempDir } from '../fixtures';
import { apt, currentHost, findExecutable, projectDependency, provide, REPOSITORY, runs, type Host, type Tool } from './core';

const NEEDED_BY = 'test/notebook.test.ts';

/** Debian's nbconvert, which starts Debian's Python explicitly. */
const DEBIAN_NBCONVERT = '/usr/bin/jupyter-nbconvert';

/**
 * Jupyter's nbconvert, as the command that starts it.
 *
 * @example
 * const [command = '', ...prefix] = await provide(nbconvertTool);
 */
export const nbconvertTool: Tool<readonly string[]> = {
  name: "Jupyter's nbconvert",
  neededBy: NEEDED_BY,
  variable: 'STEPCACHE_TEST_NBCONVERT',
  fromVariable: (value) => (runs(value, ['--version'], process.env) ? [value] : undefined),
  find: (env) => {
    const candidates = [findExecutable('jupyter-nbconvert', env), DEBIAN_NBCONVERT];
    const working = candidates.find((c): c is string => c !== undefined && fs.existsSync(c) && runs(c, ['--version'], env));
    return working === undefined ? undefined : [working];
  },
  recipe: apt('jupyter-nbconvert'),
};

/**
 * The tslab kernel's executable.
 *
 * @example
 * const tslab = await provide(tslabTool); // …/node_modules/.bin/tslab
 */
export const tslabTool: Tool<string> = {
  name: 'the tslab kernel',
  neededBy: NEEDED_BY,
  variable: 'STEPCACHE_TEST_TSLAB',
  fromVariable: (value) => (fs.existsSync(value) ? path.resolve(value) : undefined),
  find: () => {
    const local = path.join(REPOSITORY, 'node_modules', '.bin', 'tslab');
    return fs.existsSync(local) ? local : undefined;
  },
  recipe: projectDependency('tslab'),
};

/**
 * Jupyter, ready to execute notebooks in the tslab kernel.
 *
 * @example
 * const jupyter: Jupyter = await provideJupyter();
 */
export interface Jupyter {
  /** How to start nbconvert: the executable, then any arguments before nbconvert's own. */
  readonly nbconvert: readonly string[];
  /** The kernel's name: pass it as `--ExecutePreprocessor.kernel_name`. */
  readonly kernelName: string;
  /** The environment of nbconvert: the project-local kernelspec and Jupyter folders, and the `node` running the tests first on the `PATH`. */
  readonly env: NodeJS.ProcessEnv;
  /** Removes the kernelspec and Jupyter's temporary folders. */
  dispose(): void;
}

/**
 * The kernelspec `tslab install` writes (see tslab's `python/install.py`), with `tslab` as the
 * command that starts the kernel.
 *
 * @example
 * kernelSpec('/repo/node_modules/.bin/tslab').argv; // ['/repo/node_modules/.bin/tslab', 'kernel', '--config-path', '{connection_file}']
 */
export const kernelSpec = (tslab: string): { readonly argv: readonly string[]; readonly display_name: string; readonly language: string } => ({
  argv: [tslab, 'kernel', '--config-path', '{connection_file}'],
  display_name: 'TypeScript',
  language: 'typescript',
});

/**
 * nbconvert and the tslab kernel, pointed at, found or installed (see `core.ts`), with a
 * project-local kernelspec. Call `dispose` when done.
 *
 * @example
 * let jupyter: Jupyter;
 * beforeAll(async () => {
 *   jupyter = await provideJupyter();
 * }, 10 * 60_000);
 * afterAll(() => jupyter.dispose());
 */
export const provideJupyter = async (host: Host = currentHost()): Promise<Jupyter> => {
  const nbconvert = await provide(nbconvertTool, host);
  const tslab = await provide(tslabTool, host);

  const dir = tempDir('stepcache-jupyter-');
  const kernelDir = path.join(dir, 'path', 'kernels', 'tslab');
  fs.mkdirSync(kernelDir, { recursive: true });
  fs.writeFileSync(path.join(kernelDir, 'kernel.json'), `${JSON.stringify(kernelSpec(tslab), null, 2)}\n`);
  const folder = (name: string): string => {
    const f = path.join(dir, name);
    fs.mkdirSync(f, { recursive: true });
    return f;
  };

  const env: NodeJS.ProcessEnv = {
    ...host.env,
    JUPYTER_PATH: path.join(dir, 'path'),
    JUPYTER_CONFIG_DIR: folder('config'),
    JUPYTER_DATA_DIR: folder('data'),
    JUPYTER_RUNTIME_DIR: folder('runtime'),
    // tslab's executable starts with `#!/usr/bin/env node`: the node running these tests
    PATH: [path.dirname(process.execPath), host.env['PATH'] ?? ''].join(path.delimiter),
    // quiets a debugger notice that Debian's Python prints on every Jupyter start
    PYDEVD_DISABLE_FILE_VALIDATION: '1',
  };
  return { nbconvert, kernelName: 'tslab', env, dispose: () => removeDir(dir) };
};
