/**
 * Cross-process locks on step keys, so that several processes running the same pipeline on the
 * same store execute each step key once.
 *
 * @example
 * import { createFileStepLock } from './lock';
 * const lock = createFileStepLock('.stepcache/locks');
 * const release = await lock.acquire(stepKey);
 * await release();
 *
 * @packageDocumentation
 */
export type { AcquireOptions, ReleaseLock, StepLock } from './step-lock';
export { createMemoryStepLock } from './memory-lock';
export { createFileStepLock } from './file-lock';
export type { FileStepLockOptions } from './file-lock';
