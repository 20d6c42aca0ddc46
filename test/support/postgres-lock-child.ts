/**
 * A process that takes a PostgreSQL step lock and holds it until killed (test/postgres-lock.test.ts).
 *
 *   tsx test/support/postgres-lock-child.ts <url> <schema> <key>
 *
 * Prints `held` once it holds the key.
 */
import { createPostgresStepLock } from '../../src';

const [url, schema, key] = process.argv.slice(2);
if (url === undefined || schema === undefined || key === undefined) throw new Error('usage: postgres-lock-child.ts <url> <schema> <key>');

const main = async (): Promise<void> => {
  await createPostgresStepLock({ url }, { schema }).acquire(key);
  process.stdout.write('held\n');
  setInterval(() => undefined, 1_000);
};

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
