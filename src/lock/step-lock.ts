/**
 * The step lock: how several processes running the same pipeline on the same store agree that
 * each step key executes once. Before executing a step whose key missed, the runner acquires the
 * lock on that key, looks the key up again (another process may have finished the step while it
 * waited), then either uses the entry or executes, and releases.
 *
 * @packageDocumentation
 */

// model

/**
 * What {@link StepLock.acquire} accepts.
 *
 * @example
 * const options: AcquireOptions = { signal: AbortSignal.timeout(60_000) };
 */
export interface AcquireOptions {
  /** Stops waiting: `acquire` rejects with `signal.reason` and leaves the lock as it found it. */
  readonly signal?: AbortSignal;
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
 * A lock on step keys, shared by every process that uses the same store. Waiting is normal and
 * never an error: `acquire` waits as long as another holder holds the key.
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
   * Rejects only on a real I/O failure (the error names the lock's location) or when
   * `options.signal` aborts (with `signal.reason`, holding nothing).
   */
  acquire(key: string, options?: AcquireOptions): Promise<ReleaseLock>;
}
