/**
 * The whole-process benchmark: a script that runs a fully cached {@link SCRIPT_STEPS}-step chain
 * with the built package (`dist/`, through `require` and through `import`), timed from spawning
 * `node` to its exit, next to a plain script that does the same work by calling the same functions
 * (also a whole `node` process). Everything a user waits for is inside: Node's start-up, importing
 * stepcache, opening the store, keys and lookups, loading the output. Part of `npm run bench`;
 * `node --import tsx bench/whole-process.ts` runs it alone.
 *
 * Each step does about {@link STEP_WORK_MS} ms of arithmetic (calibrated in the parent, the same
 * count passed to every script), so the plain script is about as long as the one the goal was set
 * on (~160 ms with Node's start-up). The package is built first when `dist/` is missing.
 *
 * @packageDocumentation
 */
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureBuilt, formatMs, median, type Row, runAlone } from './measure';

/** Steps of the cached script. */
export const SCRIPT_STEPS = 5;
/** About how long each step's work takes, in milliseconds. */
export const STEP_WORK_MS = 25;
/** The goal for the whole cached process, as a multiple of the plain one. */
export const WHOLE_PROCESS_GOAL = 1.05;

const REPO = path.resolve(__dirname, '..');
const DIST = path.join(REPO, 'dist');

/** The step functions' work, the same text in every script and in the calibration. */
const WORK = 'const work = (n, x) => { let s = 0; for (let i = 0; i < n; i++) s += Math.sqrt(i * x + 1); return s % 1000; };';

const stepsOf = (): string =>
  Array.from({ length: SCRIPT_STEPS }, (_, i) =>
    i === 0 ? `const s0 = step(function part_0({ n }) { return work(n, 1); });` : `const s${i} = step(function part_${i}({ n, x }) { return work(n, x); });`,
  ).join('\n');

const chainOf = (): string =>
  [
    "const chain = pipeline('whole_process', (p, { n }) => {",
    '  let x = p.call(s0, { n });',
    ...Array.from({ length: SCRIPT_STEPS - 1 }, (_, i) => `  x = p.call(s${i + 1}, { n, x });`),
    '  return { y: x };',
    '});',
  ].join('\n');

const RUN = [
  'const main = async () => {',
  '  const runner = createRunner({ dir: process.argv[2], logger: silentLogger });',
  '  const run = await runner.run(chain, { n: Number(process.argv[3]) });',
  "  const y = await run.output('y');",
  '  await runner.close();',
  '  const statuses = Object.values(run.steps).map((s) => s.status);',
  '  process.stdout.write(`${JSON.stringify({ y, executed: statuses.filter((s) => s !== "cached").length })}\\n`);',
  '};',
].join('\n');

const cjsScript = (): string =>
  [`const { step, pipeline, createRunner, silentLogger } = require(${JSON.stringify(path.join(DIST, 'index.js'))});`, WORK, stepsOf(), chainOf(), RUN, 'main();', ''].join('\n');

const esmScript = (): string =>
  [`import { step, pipeline, createRunner, silentLogger } from ${JSON.stringify(path.join(DIST, 'index.mjs'))};`, WORK, stepsOf(), chainOf(), RUN, 'await main();', ''].join('\n');

const plainScript = (): string =>
  [
    WORK,
    'const n = Number(process.argv[3]);',
    'let x = work(n, 1);',
    `for (let i = 1; i < ${SCRIPT_STEPS}; i++) x = work(n, x);`,
    'process.stdout.write(`${JSON.stringify({ y: x, executed: 0 })}\\n`);',
    '',
  ].join('\n');

/** How many iterations of the work take about {@link STEP_WORK_MS} ms here (after a warm-up, so optimized code is timed). */
const calibrate = (): number => {
  const work = new Function(`${WORK} return work;`)() as (n: number, x: number) => number;
  for (let i = 0; i < 5; i++) work(1 << 16, 1);
  const samples: number[] = [];
  const n = 1 << 22;
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    work(n, 1);
    samples.push(performance.now() - started);
  }
  return Math.round((n * STEP_WORK_MS) / Math.max(median(samples), 0.001));
};

/** Milliseconds from spawning `node <script> <args>` to its exit, and what it printed. */
const timeProcess = (script: string, args: readonly string[]): Promise<{ ms: number; y: number; executed: number }> =>
  new Promise((resolve, reject) => {
    const started = performance.now();
    execFile(process.execPath, [script, ...args], { cwd: path.dirname(script) }, (error, stdout, stderr) => {
      const ms = performance.now() - started;
      if (error) return reject(new Error(`node ${script} failed: ${error.message}\n${stderr}`));
      const result = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as { y?: unknown; executed?: unknown };
      if (typeof result.y !== 'number' || typeof result.executed !== 'number') return reject(new Error(`node ${script} printed ${stdout}`));
      resolve({ ms, y: result.y, executed: result.executed });
    });
  });

/** Milliseconds to load the built package in a fresh process (`require` or `import`), median of `reps`. */
const loadMs = (format: 'cjs' | 'esm', reps: number): number => {
  const code =
    format === 'cjs'
      ? `const t = performance.now(); require(${JSON.stringify(path.join(DIST, 'index.js'))}); console.log(performance.now() - t);`
      : `const t = performance.now(); await import(${JSON.stringify(path.join(DIST, 'index.mjs'))}); console.log(performance.now() - t);`;
  const samples: number[] = [];
  for (let i = 0; i < reps; i++) samples.push(Number(execFileSync(process.execPath, [...(format === 'esm' ? ['--input-type=module'] : []), '-e', code], { encoding: 'utf8' }).trim()));
  return median(samples);
};

/** The whole-process rows (CommonJS and ES module) and notes. */
export const measureWholeProcess = async (reps: number): Promise<{ rows: Row[]; notes: string[] }> => {
  ensureBuilt();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'stepcache-bench-process-'));
  try {
    const files = { plain: path.join(root, 'plain.cjs'), cjs: path.join(root, 'cached.cjs'), esm: path.join(root, 'cached.mjs') };
    fs.writeFileSync(files.plain, plainScript());
    fs.writeFileSync(files.cjs, cjsScript());
    fs.writeFileSync(files.esm, esmScript());
    const n = String(calibrate());
    const stores = { cjs: path.join(root, 'store-cjs'), esm: path.join(root, 'store-esm') };
    const expected = await timeProcess(files.plain, [root, n]);
    for (const format of ['cjs', 'esm'] as const) {
      const first = await timeProcess(files[format], [stores[format], n]);
      if (first.executed !== SCRIPT_STEPS || first.y !== expected.y) throw new Error(`benchmark: the first ${format} run executed ${first.executed} steps and returned ${first.y}, expected ${expected.y}`);
    }
    const samples = { plain: [] as number[], cjs: [] as number[], esm: [] as number[] };
    const order = ['plain', 'cjs', 'esm'] as const;
    for (let rep = 0; rep < reps; rep++) {
      for (let k = 0; k < order.length; k++) {
        const which = order[(rep + k) % order.length] as (typeof order)[number];
        const r = await timeProcess(files[which], [which === 'plain' ? root : stores[which], n]);
        if (r.executed !== 0 || r.y !== expected.y) throw new Error(`benchmark: a ${which} run executed ${r.executed} steps and returned ${r.y}, expected ${expected.y}`);
        samples[which].push(r.ms);
      }
    }
    const plain = median(samples.plain);
    const row = (format: 'cjs' | 'esm'): Row => {
      const s = median(samples[format]);
      return {
        measure: `whole process: fully cached ${SCRIPT_STEPS}-step script, ${format === 'cjs' ? 'require (CommonJS)' : 'import (ESM)'} (vs plain script)`,
        stepcache: formatMs(s),
        baseline: formatMs(plain),
        ratio: s / plain,
        goal: `<= ${WHOLE_PROCESS_GOAL}x baseline`,
        pass: s / plain <= WHOLE_PROCESS_GOAL,
      };
    };
    const loads = { cjs: loadMs('cjs', reps), esm: loadMs('esm', reps) };
    return {
      rows: [row('cjs'), row('esm')],
      notes: [
        `whole process: ${SCRIPT_STEPS} steps of ~${STEP_WORK_MS} ms of work each (${n} iterations); medians of ${reps}, plain / require / import interleaved; loading the built package alone: require ${formatMs(loads.cjs)}, import ${formatMs(loads.esm)}`,
      ],
    };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
};

if (require.main === module) runAlone(() => measureWholeProcess(Number(process.env['BENCH_REPS'] ?? 11) || 11));
