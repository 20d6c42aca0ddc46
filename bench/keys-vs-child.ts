/**
 * One measurement of `bench/keys-vs.ts`, in a fresh process, against the stepcache source tree
 * given on the command line (loaded from `<tree>/src`, so that two trees are measured with the
 * same steps, written in this file).
 *
 * Usage: `node --import tsx bench/keys-vs-child.ts <tree> <store dir> <warm|cached|fingerprint>`.
 * - `warm`: runs the chain once (fills the store);
 * - `cached`: times one fully cached run of the chain (the first run of the process);
 * - `fingerprint`: times the first fingerprint of a step function (parsing its file included), then
 *   the mean of further fingerprints of it.
 * Prints one line of JSON: {@link KeysChildResult}. With `KV_PROFILE=<file>`, `cached` writes a CPU
 * profile of the run there.
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * What the child prints.
 *
 * @example
 * const r: KeysChildResult = { firstMs: 0.42, next: 1000 }; // `cached`: 0.42 ms per cached step, 1000 cached
 */
export interface KeysChildResult {
  /** `cached`: milliseconds per cached step; `fingerprint`: milliseconds of the first fingerprint. */
  readonly firstMs: number;
  /** `cached`: how many steps were cached; `fingerprint`: mean milliseconds of a later fingerprint. */
  readonly next: number;
}

/**
 * How many steps the chain has.
 *
 * @example
 * const perStepMs = runMs / CHAIN_STEPS;
 */
export const CHAIN_STEPS = 1000;

/** How many fingerprints the mean of a later fingerprint is taken over. */
const REPEATS = Number(process.env.KV_REPEATS ?? 200);

const OFFSET = 1;

/**
 * A helper the fingerprinted step calls.
 *
 * @example
 * plus(1, 2); // 4
 */
export function plus(a: number, b: number): number {
  return a + b + OFFSET;
}

/**
 * The first step of the chain.
 *
 * @example
 * seed({ k: 3 }); // 3
 */
export function seed({ k }: { k: number }): number {
  return k;
}

/**
 * Every later step of the chain.
 *
 * @example
 * add({ prev: 3, k: 4 }); // 8
 */
export function add({ prev, k }: { prev: number; k: number }): number {
  return plus(prev, k);
}

interface Tree {
  readonly createRunner: (options: { dir: string; logger: unknown }) => { run: (p: unknown) => Promise<{ steps: Record<string, { status: string }> }>; close: () => Promise<void> };
  readonly pipeline: (name: string, def: (p: { call: (s: unknown, input: object) => unknown }) => object) => unknown;
  readonly step: (fn: Function) => { named: (n: string) => unknown };
  readonly silentLogger: unknown;
}

const chainOf = (tree: Tree): unknown => {
  const first = tree.step(seed).named('s0');
  const rest = Array.from({ length: CHAIN_STEPS - 1 }, (_, i) => tree.step(add).named(`s${i + 1}`));
  return tree.pipeline('keys_vs_chain', (p) => {
    let prev = p.call(first, { k: 0 });
    rest.forEach((s, i) => {
      prev = p.call(s, { prev, k: i + 1 });
    });
    return { last: prev };
  });
};

/** The position of the `step(add)` call in this file, as `callSiteOf` reports it inside `step()`. */
const siteOfAdd = (): { file: string; line: number; column: number } => {
  const text = fs.readFileSync(__filename, 'utf8');
  const at = text.indexOf('tree.step(add)') + 'tree.'.length;
  const lines = text.slice(0, at).split('\n');
  return { file: __filename, line: lines.length, column: (lines[lines.length - 1] ?? '').length + 1 };
};

/**
 * With `KV_PROFILE=<file>`, starts a CPU profile of what is timed (the run only, not the imports);
 * the function returned writes it there (`.cpuprofile`, for Chrome's DevTools or a script).
 */
const startProfile = async (): Promise<(() => Promise<void>) | undefined> => {
  const file = process.env.KV_PROFILE;
  if (file === undefined || file === '') return undefined;
  const inspector = await import('node:inspector/promises');
  const session = new inspector.Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    fs.writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  };
};

const main = async (): Promise<void> => {
  const [treeDir, dir, what] = process.argv.slice(2);
  if (treeDir === undefined || dir === undefined || (what !== 'warm' && what !== 'cached' && what !== 'fingerprint')) {
    throw new Error('usage: keys-vs-child.ts <tree> <store dir> <warm|cached|fingerprint>');
  }
  const src = path.join(path.resolve(treeDir), 'src');
  let result: KeysChildResult;
  if (what === 'fingerprint') {
    const { fingerprintFunction } = (await import(path.join(src, 'fingerprint', 'index.ts'))) as { fingerprintFunction: (fn: Function, site: unknown, hash: unknown) => { hash: string; shallow: boolean } };
    const { keyHashFunction } = (await import(path.join(src, 'hash', 'hashers.ts'))) as { keyHashFunction: () => Promise<(b: Uint8Array) => string> };
    const hash = await keyHashFunction();
    const site = siteOfAdd();
    let started = performance.now();
    const first = fingerprintFunction(add, site, hash);
    const firstMs = performance.now() - started;
    if (first.shallow) throw new Error('the fingerprint is shallow: the site is wrong');
    started = performance.now();
    for (let i = 0; i < REPEATS; i++) fingerprintFunction(add, site, hash);
    result = { firstMs, next: (performance.now() - started) / REPEATS };
  } else {
    const tree = (await import(path.join(src, 'index.ts'))) as Tree;
    const runner = tree.createRunner({ dir, logger: tree.silentLogger });
    const chain = chainOf(tree);
    const profiler = await startProfile();
    const started = performance.now();
    const run = await runner.run(chain);
    const ms = performance.now() - started;
    await profiler?.();
    await runner.close();
    const cached = Object.values(run.steps).filter((s) => s.status === 'cached').length;
    if (what === 'cached' && cached !== CHAIN_STEPS) throw new Error(`only ${cached} of ${CHAIN_STEPS} steps were cached`);
    result = { firstMs: ms / CHAIN_STEPS, next: cached };
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
};

if (require.main === module) {
  main().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  });
}
