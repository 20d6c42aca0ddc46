/**
 * One of several processes (machines, in effect) running the same pipeline on one PostgreSQL
 * metadata store with the PostgreSQL step lock (test/postgres-lock.test.ts). Every step execution
 * is appended to a shared log, so the test can count executions per step.
 *
 *   tsx test/support/postgres-run.ts <url> <schema> <artifacts dir> <log>
 *
 * Prints the statuses of the steps and the pipeline's output as one JSON line.
 */
import * as fs from 'node:fs';
import { createFileArtifactStore, createPostgresMetadataStore, createPostgresStepLock, createRunner, pipeline, silentLogger, step } from '../../src';

const [url, schema, artifacts, log] = process.argv.slice(2) as [string, string, string, string];
const note = (name: string): void => fs.appendFileSync(log, `${name} ${process.pid}\n`);

const load = step(async function load_rows() {
  note('load_rows');
  await new Promise((resolve) => setTimeout(resolve, 100));
  return Array.from({ length: 1_000 }, (_, i) => Math.sin(i));
});
const train = step(function train_model({ rows }: { rows: number[] }) {
  note('train_model');
  const end = Date.now() + 100;
  while (Date.now() < end); // a synchronous stretch: the lock must hold without any heartbeat
  return { mean: rows.reduce((a, b) => a + b, 0) / rows.length };
});
const p = pipeline('team_race', (p) => ({ model: p.call(train, { rows: p.call(load) }) }));

const main = async (): Promise<void> => {
  const runner = createRunner({
    dir: artifacts,
    logger: silentLogger,
    metadata: createPostgresMetadataStore({ url, schema }),
    artifacts: createFileArtifactStore(artifacts),
    lock: createPostgresStepLock({ url }, { schema }),
  });
  try {
    const run = await runner.run(p);
    const model = await run.output('model');
    process.stdout.write(`${JSON.stringify({ statuses: Object.fromEntries(Object.values(run.steps).map((s) => [s.name, s.status])), model })}\n`);
  } finally {
    await runner.close();
  }
};

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
});
