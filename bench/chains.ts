/**
 * Long chains: the runner's own cost per step, at 1,000, 5,000 and 10,000 steps. For each length,
 * a first run (every step executes), a fully cached re-run, and a plan, on a fresh store; the
 * per-step figures show whether the cost grows linearly. Every output is a number, kept inside
 * its cache entry (no artifact file is made), so what is measured is the runner and its metadata.
 *
 * Run alone (`node --import tsx bench/chains.ts [length ...]`) it prints its rows; `npm run bench`
 * calls {@link measureChains}.
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRunner, pipeline, silentLogger, step, type Handle } from '../src/index';
import { formatMs, renderTable, timeAsync, type Row } from './measure';

/** The lengths measured. */
export const CHAIN_LENGTHS: readonly number[] = [1_000, 5_000, 10_000];

/** The goals at 10,000 steps, in milliseconds. */
export const CHAIN_GOALS_MS = Object.freeze({ firstRun: 3_000, cachedRun: 150, plan: 100 });

const origin = step(function chain_origin({ seed }: { seed: number }) {
  return seed;
});
const link = step(function chain_next({ previous }: { previous: number }) {
  return previous + 1;
});

/**
 * A chain of `length` steps: `chain_origin` then `link_1` ... `link_<length-1>`, each adding one.
 *
 * @example
 * await createRunner().run(chainOf(1000), { seed: 0 });
 */
export const chainOf = (length: number) =>
  pipeline('bench_long_chain', (p, { seed }: { seed: number }) => {
    let previous: Handle<number> = p.call(origin, { seed });
    for (let i = 1; i < length; i++) previous = p.call(link.named(`link_${i}`), { previous });
    return { last: previous };
  });

/** What one length measured, in milliseconds. */
export interface ChainTimes {
  readonly length: number;
  readonly firstRun: number;
  readonly cachedRun: number;
  readonly plan: number;
}

/**
 * Times a first run, a cached re-run and a plan of a chain of `length` steps on a fresh store.
 *
 * @example
 * const times = await measureChain(1000);
 */
export const measureChain = async (length: number): Promise<ChainTimes> => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stepcache-chain-'));
  const runner = createRunner({ dir, logger: silentLogger });
  try {
    const chain = chainOf(length);
    const firstRun = await timeAsync(async () => {
      const run = await runner.run(chain, { seed: 0 });
      if ((await run.output('last')) !== length - 1) throw new Error(`the ${length}-step chain computed a wrong value`);
    });
    const cachedRun = await timeAsync(async () => {
      const run = await runner.run(chain, { seed: 0 });
      if (Object.values(run.steps).some((s) => s.status !== 'cached')) throw new Error(`the re-run of the ${length}-step chain was not fully cached`);
    });
    const plan = await timeAsync(() => runner.plan(chain, { seed: 0 }));
    return { length, firstRun, cachedRun, plan };
  } finally {
    await runner.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
};

/**
 * Every length of {@link CHAIN_LENGTHS}, shortest first.
 *
 * @example
 * const all = await measureChains();
 */
export const measureChains = async (lengths: readonly number[] = CHAIN_LENGTHS): Promise<ChainTimes[]> => {
  const all: ChainTimes[] = [];
  for (const length of lengths) all.push(await measureChain(length));
  return all;
};

const perStep = (ms: number, length: number): string => `${formatMs(ms)} (${formatMs(ms / length)}/step)`;

/**
 * The report rows: each figure beside the same figure at the shortest length scaled to this one
 * (the linear baseline: a ratio near 1 means linear growth); the 10,000-step rows carry the goals.
 *
 * @example
 * console.log(renderTable(chainRows(await measureChains())));
 */
export const chainRows = (all: readonly ChainTimes[]): Row[] => {
  const base = all[0];
  if (base === undefined) return [];
  const kinds = [
    ['first run', 'firstRun'],
    ['cached re-run', 'cachedRun'],
    ['plan', 'plan'],
  ] as const;
  return all.flatMap((t) =>
    kinds.map(([label, field]): Row => {
      const linear = (base[field] / base.length) * t.length;
      const goal = t.length === 10_000 ? CHAIN_GOALS_MS[field] : undefined;
      return {
        measure: `${t.length}-step chain, ${label}`,
        stepcache: perStep(t[field], t.length),
        baseline: `${formatMs(linear)} (linear from ${base.length})`,
        ratio: t[field] / linear,
        goal: goal === undefined ? 'linear (ratio < 1.5)' : `< ${formatMs(goal)}`,
        pass: goal === undefined ? t[field] / linear < 1.5 : t[field] < goal,
      };
    }),
  );
};

if (require.main === module) {
  const lengths = process.argv.slice(2).map(Number).filter((n) => Number.isInteger(n) && n > 0);
  measureChains(lengths.length > 0 ? lengths : CHAIN_LENGTHS)
    .then((all) => console.log(renderTable(chainRows(all))))
    .catch((e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    });
}
