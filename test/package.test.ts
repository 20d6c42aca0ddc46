/**
 * The published package, installed the way users install it: `npm pack` (whose prepack script
 * builds), then `npm install <tarball>` into a fresh CommonJS project outside the repository.
 * From there a pipeline runs from `require('stepcache')` and from `import … from 'stepcache'`,
 * each in fresh processes against one store, and the installed `stepcache` executable lists the runs.
 *
 * Slow on purpose: packing builds the package, and installing compiles sqlite3 (a native
 * dependency) where no prebuilt binary is at hand. Both happen once, in `beforeAll`.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { removeDir, tempDir } from './support/fixtures';

const ROOT = path.join(__dirname, '..');
const SETUP_TIMEOUT = 6 * 60_000;

// utils

interface Outcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * The environment of every child process: this one's, without the variables npm sets for the
 * script that started jest (`npm test`), so a nested `npm` behaves as when typed in a shell.
 */
const childEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!/^npm_/i.test(name)) env[name] = value;
  return { ...env, ...extra };
};

/** Runs a command to its end and reports its exit code and output; never rejects. */
const exec = (file: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = childEnv(), timeout = SETUP_TIMEOUT): Promise<Outcome> =>
  new Promise((resolve) => {
    execFile(file, args, { cwd, env, timeout, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      resolve({ code, stdout, stderr: error !== null && code === null ? `${stderr}\n${error.message}` : stderr });
    });
  });

/** Fails with the command's output when it did not exit with 0. */
const expectSuccess = (what: string, outcome: Outcome): void => {
  if (outcome.code !== 0) throw new Error(`${what} exited with ${String(outcome.code)}\n--- stdout\n${outcome.stdout}\n--- stderr\n${outcome.stderr}`);
};

/** One file of `npm pack --json`. */
interface PackedFile {
  readonly path: string;
  readonly mode: number;
}

/**
 * The report of `npm pack --json`. The prepack script's build log shares stdout with it, so the
 * report is the JSON array that starts on the last line reading `[`.
 */
const packReport = (stdout: string): { readonly filename: string; readonly files: readonly PackedFile[] } => {
  const lines = stdout.split('\n');
  const start = lines.map((l) => l.trimEnd()).lastIndexOf('[');
  if (start < 0) throw new Error(`npm pack printed no JSON report:\n${stdout}`);
  const report = JSON.parse(lines.slice(start).join('\n')) as ReadonlyArray<{ filename: string; files: PackedFile[] }>;
  const first = report[0];
  if (first === undefined) throw new Error(`npm pack reported no package:\n${stdout}`);
  return first;
};

// the consumer's scripts

type Format = 'cjs' | 'esm';

/**
 * A pipeline script in either module format. Its steps are named after the format, so the two
 * formats' runs share the store without sharing cache entries. `scale` calls a helper from a
 * separate module, which an edit changes between runs. The script prints one JSON line: the
 * run's id, each step's status, the output and the warnings the runner logged.
 */
const pipelineScript = (format: Format): string => {
  const body = `
const load = step(function load_${format}({ n }) {
  return Array.from({ length: n }, (_, i) => i);
});
const scale = step(function scale_${format}({ xs }) {
  return xs.map((x) => x * factor() + 1);
});
const demo = pipeline('${format}-demo', (p, { n = 5 }) => {
  const xs = p.call(load, { n });
  return { ys: p.call(scale, { xs }) };
});

async function main() {
  const warnings = [];
  const logger = { info() {}, warn: (m) => void warnings.push(m), error: (m) => void warnings.push(m) };
  const runner = createRunner({ logger });
  const run = await runner.run(demo, {});
  const statuses = Object.fromEntries(Object.entries(run.steps).map(([name, s]) => [name, s.status]));
  console.log(JSON.stringify({ id: run.id, statuses, ys: await run.output('ys'), warnings }));
}
`;
  return format === 'cjs'
    ? `'use strict';\nconst { step, pipeline, createRunner } = require('stepcache');\nconst { factor } = require('./cjs-helpers');\n${body}\nmain().catch((e) => {\n  console.error(e);\n  process.exitCode = 1;\n});\n`
    : `import { step, pipeline, createRunner } from 'stepcache';\nimport { factor } from './esm-helpers.mjs';\n${body}\nawait main();\n`;
};

/** The helper module `scale` calls; `value` is what `factor()` returns. */
const helperModule = (format: Format, value: number): string =>
  format === 'cjs' ? `exports.factor = function factor() {\n  return ${value};\n};\n` : `export function factor() {\n  return ${value};\n}\n`;

const helperFile = (format: Format): string => (format === 'cjs' ? 'cjs-helpers.js' : 'esm-helpers.mjs');
const scriptFile = (format: Format): string => (format === 'cjs' ? 'pipeline.cjs' : 'pipeline.mjs');

interface RunReport {
  readonly id: string;
  readonly statuses: Record<string, string>;
  readonly ys: number[];
  readonly warnings: string[];
}

// the package, packed and installed once

let work: string;
let project: string;
let store: string;
let packed: readonly PackedFile[];
/** The ids of the runs the pipeline tests made, for the executable to list. */
const runIds: string[] = [];

beforeAll(async () => {
  work = tempDir('stepcache-package-');
  const packDir = path.join(work, 'pack');
  project = path.join(work, 'project');
  store = path.join(work, 'store');
  fs.mkdirSync(packDir);
  fs.mkdirSync(project);

  const pack = await exec('npm', ['pack', '--json', '--pack-destination', packDir], ROOT);
  expectSuccess('npm pack', pack);
  const report = packReport(pack.stdout);
  packed = report.files;

  fs.writeFileSync(
    path.join(project, 'package.json'),
    `${JSON.stringify({ name: 'stepcache-consumer', version: '1.0.0', private: true, type: 'commonjs', allowScripts: { sqlite3: true } }, null, 2)}\n`,
  );
  const install = await exec('npm', ['install', path.join(packDir, report.filename), '--no-audit', '--no-fund', '--prefer-offline'], project);
  expectSuccess('npm install <tarball>', install);
}, SETUP_TIMEOUT);

afterAll(() => {
  if (work !== undefined) removeDir(work);
});

// tests

describe('the packed file list', () => {
  const paths = (): string[] => packed.map((f) => f.path);

  it('holds both builds, their declarations, the CLI, the README and package.json', () => {
    expect(paths()).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'dist/index.js',
        'dist/index.mjs',
        'dist/index.d.ts',
        'dist/index.d.mts',
        'dist/index.js.map',
        'dist/index.mjs.map',
        'dist/cli/main.js',
        'dist/cli/main.mjs',
      ]),
    );
  });

  it('holds no sources, tests or configuration', () => {
    const stray = paths().filter((p) => !p.startsWith('dist/') && !['package.json', 'README.md'].includes(p));
    expect(stray).toEqual([]);
    expect(paths().filter((p) => /^(src|test)\//.test(p) || (/\.ts$/.test(p) && !/\.d\.m?ts$/.test(p)))).toEqual([]);
  });

  it('ships the executable as an executable file', () => {
    const bin = packed.find((f) => f.path === 'dist/cli/main.js');
    expect(bin).toBeDefined();
    expect((bin?.mode ?? 0) & 0o111).not.toBe(0);
  });
});

describe.each<Format>(['cjs', 'esm'])('a pipeline using the installed package (%s)', (format) => {
  const run = async (): Promise<RunReport> => {
    const outcome = await exec(process.execPath, [scriptFile(format)], project, childEnv({ STEPCACHE_DIR: store }), 120_000);
    expectSuccess(`node ${scriptFile(format)}`, outcome);
    const line = outcome.stdout.trim().split('\n').pop() ?? '';
    return JSON.parse(line) as RunReport;
  };
  const load = `load_${format}`;
  const scale = `scale_${format}`;

  it('executes, then is cached in a fresh process, then re-runs the step whose helper changed', async () => {
    fs.writeFileSync(path.join(project, helperFile(format)), helperModule(format, 2));
    fs.writeFileSync(path.join(project, scriptFile(format)), pipelineScript(format));

    const first = await run();
    expect(first.statuses).toEqual({ [load]: 'executed', [scale]: 'executed' });
    expect(first.ys).toEqual([1, 3, 5, 7, 9]);

    const second = await run();
    expect(second.statuses).toEqual({ [load]: 'cached', [scale]: 'cached' });
    expect(second.ys).toEqual([1, 3, 5, 7, 9]);
    expect(second.id).not.toBe(first.id);

    // the code fingerprint reaches into the helper's module: the built package found the step's
    // call site in this file and loaded the TypeScript compiler to read it
    fs.writeFileSync(path.join(project, helperFile(format)), helperModule(format, 3));
    const third = await run();
    expect(third.statuses).toEqual({ [load]: 'cached', [scale]: 'executed' });
    expect(third.ys).toEqual([1, 4, 7, 10, 13]);

    for (const r of [first, second, third]) expect(r.warnings).toEqual([]);
    runIds.push(first.id, second.id, third.id);
  }, 180_000);
});

describe('the installed stepcache executable', () => {
  it('is linked into node_modules/.bin', () => {
    expect(fs.existsSync(path.join(project, 'node_modules', '.bin', 'stepcache'))).toBe(true);
  });

  it('lists the runs of the store', async () => {
    const outcome = await exec('npx', ['stepcache', 'runs', 'list', '--dir', store], project, childEnv(), 120_000);
    expectSuccess('npx stepcache runs list', outcome);
    expect(outcome.stdout).toContain('cjs-demo');
    expect(outcome.stdout).toContain('esm-demo');
    expect(runIds).toHaveLength(6);
    for (const id of runIds) expect(outcome.stdout).toContain(id);
  }, 120_000);
});

// the README's tour, as written

/** The TypeScript code blocks of the README's "A tour" section that are whole programs (they import what they use). */
const tourPrograms = (): string[] => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## A tour\n');
  const end = readme.indexOf('\n## ', start + 1);
  const tour = readme.slice(start, end < 0 ? undefined : end);
  return [...tour.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string).filter((code) => code.startsWith('import ') && /\bcreateRunner\(/.test(code));
};

describe.each<Format>(['esm', 'cjs'])('the README tour, as written, in a TypeScript project (%s)', (format) => {
  it('compiles against the installed package and runs', async () => {
    const programs = tourPrograms();
    expect(programs.length).toBeGreaterThan(0);
    // A project of its own inside the consumer project: its node_modules are found above it.
    const dir = path.join(project, `tour-${format}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify({ name: `tour-${format}`, private: true, type: format === 'esm' ? 'module' : 'commonjs' })}\n`);
    const files = programs.map((_, i) => `tour${i}.ts`);
    programs.forEach((code, i) => fs.writeFileSync(path.join(dir, files[i] as string), code));
    fs.writeFileSync(
      path.join(dir, 'tsconfig.json'),
      `${JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, skipLibCheck: true, types: ['node'], typeRoots: [path.join(ROOT, 'node_modules', '@types')] }, files })}\n`,
    );
    expectSuccess('tsc (the tour)', await exec(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], dir, childEnv(), 120_000));
    for (const file of files) {
      const outcome = await exec(process.execPath, [file.replace(/\.ts$/, '.js')], dir, childEnv({ STEPCACHE_DIR: path.join(work, `tour-store-${format}`) }), 120_000);
      expectSuccess(`node ${file} (the tour)`, outcome);
      expect(outcome.stderr).toBe('');
      expect(outcome.stdout).toContain('executed');
      expect(outcome.stdout).toContain('1498500'); // 3 × (0 + 1 + … + 999)
    }
  }, 180_000);
});
