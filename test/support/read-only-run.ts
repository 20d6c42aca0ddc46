/**
 * One run of a small pipeline on a store, for the read-only store tests: run in a child process,
 * as a user who may not write the store (root writes anywhere).
 *
 * Usage: `node --import tsx test/support/read-only-run.ts <store dir> <x>`. Prints one line of
 * JSON: `{ outputs, statuses, warnings, recorded }` (the outputs loaded back, each step's status,
 * the warning events, whether the run's record can be read back), or `{ error }`.
 *
 * @packageDocumentation
 */
import { createRunner, silentLogger, type RunEvent } from '../../src';
import { readOnlyPipeline } from './read-only-pipeline';

const main = async (): Promise<void> => {
  const [dir, x] = process.argv.slice(2);
  const events: RunEvent[] = [];
  const runner = createRunner({ dir: dir as string, logger: silentLogger, onEvent: (e) => void events.push(e) });
  try {
    const run = await runner.run(readOnlyPipeline, { x: Number(x) });
    const outputs = { doubled: await run.output('doubled'), result: await run.output('result') };
    const statuses = Object.fromEntries(Object.entries(run.steps).map(([name, s]) => [name, s.status]));
    const warnings = events.flatMap((e) => (e.type === 'warning' ? [{ kind: e.kind, message: e.message }] : []));
    console.log(JSON.stringify({ outputs, statuses, warnings, recorded: (await runner.getRun(run.id)) !== undefined }));
  } catch (e) {
    console.log(JSON.stringify({ error: e instanceof Error ? e.message : String(e) }));
  } finally {
    await runner.close().catch((e: unknown) => console.log(JSON.stringify({ error: `close: ${e instanceof Error ? e.message : String(e)}` })));
  }
};

void main();
