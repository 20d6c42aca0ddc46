/**
 * A client of the distributed example (README, "Run on many machines"): the runner walks the DAG
 * here and sends the steps that miss the cache to the workers of the queue at
 * $STEPCACHE_QUEUE_URL; the stores are those of $STEPCACHE_METADATA_URL (PostgreSQL) and
 * $STEPCACHE_ARTIFACTS_URL (a folder every machine mounts, or a bucket), which the workers use too.
 *
 * Its last line of output is a JSON summary: the run's status, the total, how many steps executed
 * and were cached, how many jobs it enqueued, and which worker executed each step. A second run
 * enqueues nothing: every step is served from the cache here, with no worker needed.
 */
import { createRunner, queueExecutor } from '../../src';
import { sharded } from './pipelines';

const main = async (): Promise<void> => {
  const executor = queueExecutor(); // the queue of $STEPCACHE_QUEUE_URL
  const workers: Record<string, string> = {};
  const runner = createRunner({
    executor,
    concurrency: 4,
    onEvent: (e) => {
      if (e.type === 'step-executed' && e.worker !== undefined) workers[e.step] = e.worker;
    },
  });
  try {
    const run = await runner.run(sharded, { n: 100_000, parts: 4 });
    const count = (status: string) => Object.values(run.steps).filter((s) => s.status === status).length;
    const summary = { run: run.id, status: run.status, total: await run.output('total'), executed: count('executed'), cached: count('cached'), enqueued: executor.enqueued(), workers };
    console.log(JSON.stringify(summary));
  } finally {
    await runner.close();
    await executor.close();
  }
};

void main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
