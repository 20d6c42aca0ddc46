/**
 * One machine of a team (test/team-store.test.ts): runs a pipeline with the stores the
 * environment names (`STEPCACHE_METADATA_URL`, `STEPCACHE_ARTIFACTS_URL`; its own `STEPCACHE_DIR`
 * and working folder), signing with `STEPCACHE_TEST_SECRET` when set. Every step execution is
 * appended to the log file given as argument. Prints one line of JSON (statuses and the output);
 * log lines and warnings go to stderr, a failure to stderr with exit code 1.
 */
import * as fs from 'node:fs';
import { createRunner, pipeline, step, type Logger } from '../../src';

const [log, scale = '2'] = process.argv.slice(2) as [string, string | undefined];
const note = (name: string): void => fs.appendFileSync(log, `${name} ${process.pid}\n`);

const load = step(async function load_rows() {
  note('load_rows');
  await new Promise((resolve) => setTimeout(resolve, 100));
  return Float64Array.from({ length: 20_000 }, (_, i) => Math.sin(i));
});
const scaleRows = step(function scale_rows({ rows, factor }: { rows: Float64Array; factor: number }) {
  note('scale_rows');
  return rows.map((x) => x * factor);
});
const summarize = step(function summarize_rows({ rows }: { rows: Float64Array }) {
  note('summarize_rows');
  return { n: rows.length, sum: rows.reduce((a, b) => a + b, 0) };
});
const p = pipeline('team_store', (p, params: { factor: number }) => {
  const rows = p.call(load);
  const scaled = p.call(scaleRows, { rows, factor: params.factor });
  return { summary: p.call(summarize, { rows: scaled }) };
});

const logger: Logger = {
  info: (m) => void process.stderr.write(`info: ${m}\n`),
  warn: (m) => void process.stderr.write(`warning: ${m}\n`),
  error: (m) => void process.stderr.write(`error: ${m}\n`),
};

const main = async (): Promise<void> => {
  const secret = process.env['STEPCACHE_TEST_SECRET'];
  const runner = createRunner({ logger, ...(secret === undefined ? {} : { secret }) });
  try {
    const run = await runner.run(p, { factor: Number(scale) });
    const summary = await run.output('summary');
    process.stdout.write(`${JSON.stringify({ statuses: Object.fromEntries(Object.values(run.steps).map((s) => [s.name, s.status])), summary })}\n`);
  } finally {
    await runner.close();
  }
};

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
