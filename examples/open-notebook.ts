/**
 * Opens examples/notebook.ipynb in Jupyter with the tslab TypeScript kernel: `npm run notebook`.
 *
 * What it does, from a clone of the repository (after `npm ci`):
 * 1. builds the package (`npm run build`), so the notebook's `import ... from 'stepcache'` loads
 *    the package as an installed project would;
 * 2. makes the name `stepcache` resolve to this repository (`node_modules/stepcache` → `..`);
 * 3. writes a project-local kernelspec for this repository's tslab under
 *    `node_modules/.cache/stepcache-jupyter` and points `JUPYTER_PATH` at it, so a Jupyter set-up of
 *    your own is left as it is;
 * 4. starts `jupyter notebook` (or `jupyter lab`) on the notebook.
 *
 * Jupyter itself is yours to install: `apt-get install jupyter-notebook` on Debian or Ubuntu, or
 * `pip install notebook`. The store is `$STEPCACHE_DIR`, or `.stepcache` next to the notebook.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
const BIN = path.join(ROOT, 'node_modules', '.bin');
const NOTEBOOK = path.join(ROOT, 'examples', 'notebook.ipynb');
const JUPYTER_DATA = path.join(ROOT, 'node_modules', '.cache', 'stepcache-jupyter');

const fail = (message: string): never => {
  process.stderr.write(`${message}\n`);
  process.exit(1);
};

/** The first of `commands` that answers `--version`, as the words that start it. */
const firstWorking = (commands: readonly (readonly string[])[]): readonly string[] | undefined =>
  commands.find(([command = '', ...args]) => spawnSync(command, [...args, '--version'], { stdio: 'ignore' }).status === 0);

const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
if (build.status !== 0) fail('The package build failed (npm run build); fix it, then run npm run notebook again.');

const link = path.join(ROOT, 'node_modules', 'stepcache');
if (!fs.existsSync(link)) fs.symlinkSync('..', link, 'dir');

const kernelDir = path.join(JUPYTER_DATA, 'kernels', 'tslab');
fs.mkdirSync(kernelDir, { recursive: true });
const kernel = { argv: [path.join(BIN, 'tslab'), 'kernel', '--config-path', '{connection_file}'], display_name: 'TypeScript', language: 'typescript' };
fs.writeFileSync(path.join(kernelDir, 'kernel.json'), `${JSON.stringify(kernel, null, 2)}\n`);

const jupyter =
  firstWorking([
    ['jupyter', 'notebook'],
    ['/usr/bin/jupyter', 'notebook'],
    ['jupyter', 'lab'],
  ]) ??
  fail(
    [
      'Jupyter is not installed. Install it, then run npm run notebook again:',
      '  Debian or Ubuntu: sudo apt-get install jupyter-notebook',
      '  elsewhere:        pip install notebook',
    ].join('\n'),
  );

const [command = '', ...args] = jupyter;
const env = { ...process.env, JUPYTER_PATH: [JUPYTER_DATA, process.env['JUPYTER_PATH'] ?? ''].filter((p) => p !== '').join(path.delimiter), PATH: [BIN, process.env['PATH'] ?? ''].join(path.delimiter) };
const started = spawnSync(command, [...args, NOTEBOOK, ...process.argv.slice(2)], { cwd: path.dirname(NOTEBOOK), env, stdio: 'inherit' });
process.exit(started.status ?? 1);
