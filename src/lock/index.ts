/**
 * Cross-process locks on step keys, so that several processes running the same pipeline on the
 * same store execute each step key once.
 *
 * @example
 * import { createFileStepLock, describeLockHolder } from './lock';
 * const lock = createFileStepLock('.stepcache/locks');
 * const release = await lock.acquire(stepKey, {
 *   maxWaitMs: 30 * 60_000,
 *   onWait: ({ holder }) => console.log(`waiting for step train: held by ${describeLockHolder(holder)}`),
 * });
 * await release();
 *
 * @packageDocumentation
 */
export type { AcquireOptions, ReleaseLock, StepLock } from './step-lock';
export { createMemoryStepLock } from './memory-lock';
export type { MemoryStepLockOptions } from './memory-lock';
export { createFileStepLock } from './file-lock';
export { soloWhenAlone } from './solo-lock';
export type { SoloOptions, SoloStepLock } from './solo-lock';
export type { FileStepLockOptions } from './file-lock';
export { DEFAULT_MAX_WAIT_MS, DEFAULT_ON_WAIT_AFTER_MS, describeLockHolder } from './wait';
export type { LockHolder, LockWait } from './wait';
