/**
 * A process that takes a file step lock, for the multi-process tests of test/lock.test.ts.
 *
 *   tsx test/support/lock-child.ts <dir> <key> <log> <mode> <holdMs> <staleAfterMs> [<goFile>]
 *
 * Appends `ready <pid> <ms>` to the log, waits for `<goFile>` to exist (when given), then
 * acquires the key and appends `enter <pid> <ms>`. Then, by mode:
 * - `hold`: holds for holdMs, appends `leave <pid> <ms>`, releases, exits.
 * - `block`: blocks its event loop for holdMs (a synchronous step: no heartbeat), then as `hold`.
 * - `forever`: holds until killed.
 * - `exit`: exits at once without releasing (the exit hook must delete the lock file).
 * Times are wall-clock milliseconds (`Date.now()`: one clock for every process on the host;
 * `performance.timeOrigin` is fixed per process and drifts apart between processes).
 */
import * as fs from 'node:fs';
import { createFileStepLock } from '../../src/lock';

const [dir, key, log, mode, holdMs, staleAfterMs, goFile] = process.argv.slice(2);
if (dir === undefined || key === undefined || log === undefined || mode === undefined || holdMs === undefined || staleAfterMs === undefined) {
  throw new Error('usage: lock-child.ts <dir> <key> <log> <mode> <holdMs> <staleAfterMs> [<goFile>]');
}

const now = (): string => String(Date.now());
const note = (what: string): void => fs.appendFileSync(log, `${what} ${process.pid} ${now()}\n`);
const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const main = async (): Promise<void> => {
  const lock = createFileStepLock(dir, { staleAfterMs: Number(staleAfterMs), pollMs: 10 });
  note('ready');
  if (goFile !== undefined) while (!fs.existsSync(goFile)) await pause(5);
  const release = await lock.acquire(key);
  note('enter');
  switch (mode) {
    case 'forever':
      setInterval(() => undefined, 1_000);
      return;
    case 'exit':
      process.exit(0);
    case 'block':
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(holdMs));
      break;
    default:
      await pause(Number(holdMs));
  }
  note('leave');
  await release();
};

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
