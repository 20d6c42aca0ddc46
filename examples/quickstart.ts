/**
 * The README's tour in one runnable file: `npx tsx examples/quickstart.ts`.
 */
import { createRunner, pipeline, step, type Logger } from 'stepcache';

/** Loads numbers (stands in for reading a dataset). */
export const load = step(function load_numbers({ n }: { n: number }) {
  return Float64Array.from({ length: n }, (_, i) => i);
});

/** Scales them: a step with two named outputs, each its own artifact. */
export const scale = step(function scale({ xs, factor }: { xs: Float64Array; factor: number }) {
  const scaled = xs.map((x) => x * factor);
  return { scaled, total: scaled.reduce((a, b) => a + b, 0) };
}).outputs({ scaled: 'auto', total: 'auto' });

/** The pipeline: handles are inputs, plain values are parameters. */
export const numbersPipeline = pipeline('numbers', (p, { n = 1000, factor = 2 }: { n?: number; factor?: number }) => {
  const xs = p.call(load, { n });
  const { total } = p.call(scale, { xs, factor });
  return { total };
});

/** Runs the pipeline three times and returns the runs. */
export async function main(options: { dir?: string; logger?: Logger } = {}) {
  const runner = createRunner(options);
  try {
    const first = await runner.run(numbersPipeline, { factor: 2 }); // executes both steps
    const second = await runner.run(numbersPipeline, { factor: 2 }); // both cached
    const third = await runner.run(numbersPipeline, { factor: 3 }); // load_numbers cached, scale re-runs
    console.log(`total: ${await third.output('total')}`);
    for (const run of [first, second, third]) {
      console.log(Object.values(run.steps).map((s) => `${s.name}: ${s.status}`).join(', '));
    }
    return [first, second, third] as const;
  } finally {
    await runner.close();
  }
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
