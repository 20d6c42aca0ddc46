/**
 * One of several processes running the same pipeline on the same store (test/multiprocess.test.ts).
 * Every step execution is appended to a shared log, so the test can count executions per step.
 * Arguments: store directory, log file.
 */
import * as fs from 'node:fs';
import { createRunner, pipeline, silentLogger, step } from '../../src';

const [dir, log] = process.argv.slice(2) as [string, string];
const note = (name: string): void => fs.appendFileSync(log, `${name} ${process.pid}\n`);
const busy = (ms: number): void => {
  const end = Date.now() + ms;
  while (Date.now() < end);
};

const load = step(async function load_rows() {
  note('load_rows');
  await new Promise((resolve) => setTimeout(resolve, 150));
  return Float64Array.from({ length: 50_000 }, (_, i) => Math.sin(i));
});
const scale = step(function scale_rows({ rows }: { rows: Float64Array }) {
  note('scale_rows');
  busy(100);
  return rows.map((x) => x * 2);
});
const summarize = step(function summarize_rows({ rows }: { rows: Float64Array }) {
  note('summarize_rows');
  return { n: rows.length, sum: rows.reduce((a, b) => a + b, 0) };
});
const p = pipeline('shared_store', (p) => {
  const rows = p.call(load);
  const scaled = p.call(scale, { rows });
  return { summary: p.call(summarize, { rows: scaled }) };
});

const main = async (): Promise<void> => {
  const runner = createRunner({ dir, logger: silentLogger });
  try {
    const run = await runner.run(p);
    const summary = await run.output('summary');
    process.stdout.write(`${JSON.stringify({ statuses: Object.fromEntries(Object.values(run.steps).map((s) => [s.name, s.status])), summary })}\n`);
  } finally {
    await runner.close();
  }
};

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
});
