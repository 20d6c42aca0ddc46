/**
 * A client of the distributed tests: runs the diamond pipeline through the queue against the
 * shared store, and prints one line of JSON: the run's status, each step's status, the total,
 * how many jobs it enqueued, and the error (code, step, message) when the run failed.
 * Arguments: queue URL, shared store directory, [size]. `$STEPCACHE_TEST_UNREACHABLE_MS` bounds
 * how long the queue server may be unreachable; `$STEPCACHE_TEST_QUEUE` names the queue.
 */
import * as path from 'node:path';
import { createFileArtifactStore, createRunner, createSqliteMetadataStore, silentLogger, StepcacheError } from '../../../src';
import { queueExecutor } from '../../../src/distributed/queue-executor';
import { diamond } from './pipeline';

const [url, dir, size] = process.argv.slice(2) as [string, string, string | undefined];

const main = async (): Promise<void> => {
  const unreachable = Number(process.env['STEPCACHE_TEST_UNREACHABLE_MS'] ?? '30000');
  const progress: string[] = [];
  const failed: Array<{ step: string; code: string; message: string }> = [];
  const executor = queueExecutor({ url, queue: process.env['STEPCACHE_TEST_QUEUE'] ?? 'stepcache', unreachableAfterMs: unreachable, attempts: Number(process.env['STEPCACHE_TEST_ATTEMPTS'] ?? '1'), backoffMs: 100, onProgress: (step, p) => progress.push(`${step}:${p.phase}:${p.worker}`) });
  const runner = createRunner({
    dir,
    logger: silentLogger,
    concurrency: 4,
    executor,
    onEvent: (e) => {
      if (e.type === 'step-failed') failed.push({ step: e.step, code: e.error.code, message: e.error.message });
    },
    metadata: createSqliteMetadataStore(path.join(dir, 'metadata.sqlite')),
    artifacts: createFileArtifactStore(path.join(dir, 'artifacts')),
  });
  const started = Date.now();
  try {
    const run = await runner.run(diamond, size === undefined ? {} : { size: Number(size) });
    const total = await run.output('total');
    const steps = Object.fromEntries(Object.entries(run.steps).map(([name, s]) => [name, s.status]));
    console.log(JSON.stringify({ status: run.status, steps, total, enqueued: executor.enqueued(), progress, ms: Date.now() - started }));
  } catch (e) {
    const error = e instanceof StepcacheError ? e : undefined;
    console.log(JSON.stringify({ status: 'failed', code: error?.code, message: String((e as Error).message), failed, enqueued: executor.enqueued(), ms: Date.now() - started }));
  } finally {
    await executor.close();
    await runner.close();
  }
};

// A queue server that went away leaves reconnection timers behind: the report is out, so leave.
void main().then(() => setTimeout(() => process.exit(0), 500).unref());
