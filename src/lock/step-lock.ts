/**
 * The step lock: how several processes running the same pipeline on the same store agree that
 * each step key executes once. Before executing a step whose key missed, the runner acquires the
 * lock on that key, looks the key up again (another process may have finished the step while it
 * waited), then either uses the entry or executes, and releases.
 *
 * @packageDocumentation
 */

import type { LockWait } from './wait';

// model

/**
 * What {@link StepLock.acquire} accepts.
 *
 * @example
 * const options: AcquireOptions = {
 *   maxWaitMs: 30 * 60_000,
 *   onWait: ({ holder }) => console.log(`waiting for step train: held by ${describeLockHolder(holder)}`),
 * };
 */
export interface AcquireOptions {
  /** Stops waiting: `acquire` rejects with `signal.reason` and leaves the lock as it found it. */
  readonly signal?: AbortSignal;
  /**
   * How long to wait for the lock at most, in milliseconds (`Infinity`: no bound). Past it,
   * `acquire` rejects with a `StepcacheError` of code `LOCK_TIMEOUT` naming the lock and its
   * holder, holding nothing.
   * @default the lock's own `maxWaitMs`, 10 minutes unless configured
   */
  readonly maxWaitMs?: number;
  /**
   * How long to wait before calling `onWait`, in milliseconds.
   * @default the lock's own `onWaitAfterMs`, 5 seconds unless configured
   */
  readonly onWaitAfterMs?: number;
  /**
   * Called once when the wait has lasted `onWaitAfterMs`, with the key and its current holder
   * (for a log line such as `waiting for step train: held by pid 123 on host h since 12:03:04`).
   * Not called when the lock is acquired sooner, nor when `onWaitAfterMs` is not below
   * `maxWaitMs`. What it throws is ignored.
   */
  readonly onWait?: (wait: LockWait) => void;
}

/**
 * Gives up the lock. Calling it again does nothing.
 *
 * @example
 * const release: ReleaseLock = await lock.acquire(key);
 * await release();
 * await release(); // harmless
 */
export type ReleaseLock = () => Promise<void>;

/**
 * A lock on step keys, shared by every process that uses the same store. Waiting is normal:
 * `acquire` waits while another holder holds the key, reports a long wait once through
 * `onWait`, and gives up with `LOCK_TIMEOUT` after `maxWaitMs`.
 *
 * The embedded store uses {@link createFileStepLock} (lock files next to the store); a shared
 * store can bring its own (Redis `SET key token NX PX`, PostgreSQL `pg_advisory_lock`, ...).
 * {@link createMemoryStepLock} serves one process.
 *
 * @example
 * const lock: StepLock = createFileStepLock('.stepcache/locks');
 * const release = await lock.acquire(key);
 * try {
 *   // look the key up again; execute only if it is still missing
 * } finally {
 *   await release();
 * }
 */
export interface StepLock {
  /**
   * Waits until this process holds the lock on `key`; resolves to a release function.
   * Rejects, holding nothing, on a real I/O failure (a `StepcacheError` naming the lock's
   * location), when the wait passes `maxWaitMs` (`LOCK_TIMEOUT`), or when `options.signal`
   * aborts (with `signal.reason`).
   */
  acquire(key: string, options?: AcquireOptions): Promise<ReleaseLock>;
  /**
   * Since when (`performance.now()`) this process has been the only one locking keys, if it is
   * now: no other process has executed a step under this lock since then, so an entry looked up
   * after that time and absent is still absent. Locks that cannot tell leave it out.
   */
  aloneSince?(): number | undefined;
}
