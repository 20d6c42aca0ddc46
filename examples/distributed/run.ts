/**
 * A client of the distributed example: the runner walks the DAG here and sends the steps that
 * miss the cache to the workers of the queue at $STEPCACHE_QUEUE_URL. Metadata lives in the
 * PostgreSQL server at $STEPCACHE_EXAMPLE_POSTGRES_URL, artifacts in the folder
 * $STEPCACHE_EXAMPLE_ARTIFACTS, which every worker mounts.
 *
 *   export STEPCACHE_QUEUE_URL=redis://127.0.0.1:6379
 *   export STEPCACHE_EXAMPLE_POSTGRES_URL=postgres://user:password@127.0.0.1:5432/postgres
 *   export STEPCACHE_EXAMPLE_ARTIFACTS=/mnt/team/artifacts
 *   # on each worker machine:
 *   npx stepcache worker --module examples/distributed/pipelines.ts \
 *     --metadata "$STEPCACHE_EXAMPLE_POSTGRES_URL" --artifacts "$STEPCACHE_EXAMPLE_ARTIFACTS" --concurrency 2
 *   # then, anywhere:
 *   npx tsx examples/distributed/run.ts
 *
 * A second run enqueues nothing: every step is served from the cache here, with no worker online.
 */
import { createFileArtifactStore, createPostgresMetadataStore, createRunner } from '../../src';
import { sharded } from './pipelines';

const main = async (): Promise<void> => {
  const url = process.env['STEPCACHE_EXAMPLE_POSTGRES_URL'];
  const artifacts = process.env['STEPCACHE_EXAMPLE_ARTIFACTS'];
  if (url === undefined || artifacts === undefined) throw new Error('Set STEPCACHE_EXAMPLE_POSTGRES_URL and STEPCACHE_EXAMPLE_ARTIFACTS (see the top of this file).');
  const runner = createRunner({ metadata: createPostgresMetadataStore({ url }), artifacts: createFileArtifactStore(artifacts), concurrency: 4 });
  try {
    const run = await runner.run(sharded, { n: 100_000, parts: 4 });
    console.log('total', await run.output('total'));
  } finally {
    await runner.close();
  }
};

void main();
