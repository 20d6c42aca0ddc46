/**
 * A run that never ends: its one step prints `step started` and then waits forever, so that a
 * test can kill the process in the middle of the run. Usage: `node --import tsx hanging-run.ts <dir>`.
 */
import { createRunner, pipeline, silentLogger, step } from '../../src';

const hang = step(async function hang_forever() {
  process.stdout.write('step started\n');
  await new Promise(() => setInterval(() => undefined, 60_000));
  return 0;
});

const hanging = pipeline('hanging_pipeline', (p) => ({ never: p.call(hang) }));

void createRunner({ dir: process.argv[2] as string, logger: silentLogger }).run(hanging);
