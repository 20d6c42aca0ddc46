/**
 * A step lock for one process: a first-in, first-out queue per key.
 *
 * @packageDocumentation
 */
import * as os from 'node:os';
import type { AcquireOptions, ReleaseLock, StepLock } from './step-lock';
import { DEFAULT_MAX_WAIT_MS, DEFAULT_ON_WAIT_AFTER_MS, limitsOf, lockTimeout, watchWait, type LockHolder, type WaitLimits } from './wait';

// model

/**
 * Options of {@link createMemoryStepLock}: the waiting limits of every `acquire` that does not set its own.
 *
 * @example
 * const options: MemoryStepLockOptions = { maxWaitMs: 60_000, onWaitAfterMs: 1_000 };
 */
export interface MemoryStepLockOptions {
  /**
   * How long `acquire` waits at most before it fails with `LOCK_TIMEOUT` (`Infinity`: no bound).
   * @default 600_000 (10 minutes)
   */
  readonly maxWaitMs?: number;
  /**
   * How long `acquire` waits before it calls its `onWait`.
   * @default 5_000
   */
  readonly onWaitAfterMs?: number;
}

interface Waiter {
  readonly grant: () => void;
}

interface Held {
  readonly since: number;
  /** Waiters in arrival order (a Set: ordered, and O(1) removal on abort). */
  readonly waiters: Set<Waiter>;
}

const OWNER = 'createMemoryStepLock';

/**
 * A step lock that lives in this process's memory: for tests, and for a single process running
 * several steps at once. Waiters are served in the order they asked; a release hands the key
 * straight to the next waiter. Any string is a key. Waits are bounded and reported like the
 * file lock's; the holder is always this process.
 *
 * @example
 * const lock = createMemoryStepLock();
 * const release = await lock.acquire('0123456789abcdef');
 * const next = lock.acquire('0123456789abcdef'); // waits
 * await release();
 * await (await next)(); // `next` got the key once it was released
 */
export const createMemoryStepLock = (options: MemoryStepLockOptions = {}): StepLock => {
  const defaults: WaitLimits = limitsOf(OWNER, { maxWaitMs: DEFAULT_MAX_WAIT_MS, onWaitAfterMs: DEFAULT_ON_WAIT_AFTER_MS }, options);
  const held = new Map<string, Held>();
  const host = os.hostname();

  const holderOf = (key: string): LockHolder | undefined => {
    const current = held.get(key);
    return current === undefined ? undefined : { pid: process.pid, host, since: current.since };
  };

  const handOver = (key: string): void => {
    const current = held.get(key);
    if (current === undefined) return;
    const next = current.waiters.values().next();
    if (next.done === true) {
      held.delete(key);
      return;
    }
    current.waiters.delete(next.value);
    held.set(key, { since: Date.now(), waiters: current.waiters });
    next.value.grant();
  };

  const releaserFor = (key: string): ReleaseLock => {
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      handOver(key);
    };
  };

  const acquire = async (key: string, acquireOptions: AcquireOptions = {}): Promise<ReleaseLock> => {
    const limits = limitsOf(OWNER, defaults, acquireOptions);
    const { signal } = acquireOptions;
    if (signal?.aborted === true) throw signal.reason;
    const current = held.get(key);
    if (current === undefined) {
      held.set(key, { since: Date.now(), waiters: new Set() });
      return releaserFor(key);
    }
    const { waiters } = current;
    const watch = watchWait(key, 'memory', limits, acquireOptions, async () => holderOf(key));
    return new Promise<ReleaseLock>((resolve, reject) => {
      const onAbort = (): void => {
        // Still queued (a granted waiter has removed this listener): leave the queue, hold nothing.
        waiters.delete(waiter);
        const timedOut = watch.timedOut();
        watch.stop();
        reject(
          timedOut
            ? lockTimeout(
                { key, location: 'memory', holder: holderOf(key), waitedMs: watch.waitedMs() },
                limits.maxWaitMs,
                "Another run in this process holds it: raise the step's lockTimeout setting (.withOptions({ lockTimeout: '30m' })) if it is that slow, or look for a step that never finishes.",
              )
            : watch.signal.reason,
        );
      };
      const waiter: Waiter = {
        grant: () => {
          watch.signal.removeEventListener('abort', onAbort);
          watch.stop();
          resolve(releaserFor(key));
        },
      };
      waiters.add(waiter);
      watch.signal.addEventListener('abort', onAbort, { once: true });
    });
  };

  return Object.freeze({ acquire });
};
