/**
 * A step lock for one process: a first-in, first-out queue per key.
 *
 * @packageDocumentation
 */
import type { AcquireOptions, ReleaseLock, StepLock } from './step-lock';

interface Waiter {
  readonly grant: () => void;
}

/**
 * A step lock that lives in this process's memory: for tests, and for a single process running
 * several steps at once. Waiters are served in the order they asked; a release hands the key
 * straight to the next waiter. Any string is a key.
 *
 * @example
 * const lock = createMemoryStepLock();
 * const release = await lock.acquire('0123456789abcdef');
 * const next = lock.acquire('0123456789abcdef'); // waits
 * await release();
 * await (await next)(); // `next` got the key once it was released
 */
export const createMemoryStepLock = (): StepLock => {
  /** Held keys, each with its waiters in arrival order (a Set: ordered, and O(1) removal on abort). */
  const held = new Map<string, Set<Waiter>>();

  const handOver = (key: string): void => {
    const waiters = held.get(key);
    if (waiters === undefined) return;
    const next = waiters.values().next();
    if (next.done === true) {
      held.delete(key);
      return;
    }
    waiters.delete(next.value);
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

  const acquire = (key: string, options: AcquireOptions = {}): Promise<ReleaseLock> => {
    const { signal } = options;
    if (signal?.aborted === true) return Promise.reject(signal.reason);
    const waiters = held.get(key);
    if (waiters === undefined) {
      held.set(key, new Set());
      return Promise.resolve(releaserFor(key));
    }
    return new Promise<ReleaseLock>((resolve, reject) => {
      const onAbort = (): void => {
        // Still queued (a granted waiter has removed this listener): leave the queue, hold nothing.
        waiters.delete(waiter);
        reject(signal?.reason);
      };
      const waiter: Waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(releaserFor(key));
        },
      };
      waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  };

  return Object.freeze({ acquire });
};
