/**
 * Bounded waits for a step lock: who holds the lock, one report after a few seconds of waiting,
 * and a typed error once the wait bound passes. Shared by every step lock here, so the
 * defaults, the report and the error read the same whichever lock is used.
 *
 * @packageDocumentation
 */
import { StepcacheError } from '../errors';
import type { AcquireOptions } from './step-lock';

// model

/**
 * Who holds a lock, as its record says.
 *
 * @example
 * const holder: LockHolder = { pid: 123, host: 'trainer-01', since: Date.parse('2026-11-30T12:03:04Z') };
 */
export interface LockHolder {
  /** The holder's process id, on its host. */
  readonly pid: number;
  /** The host name the holder recorded. */
  readonly host: string;
  /** When the holder took the lock, in milliseconds since the epoch (by the holder's clock). */
  readonly since: number;
}

/**
 * What {@link AcquireOptions.onWait} receives: a wait that has lasted `onWaitAfterMs`.
 *
 * @example
 * const onWait = (wait: LockWait): void => console.log(`waiting for ${wait.key}: ${describeLockHolder(wait.holder)}`);
 */
export interface LockWait {
  /** The key waited for. */
  readonly key: string;
  /** Where the lock lives: the lock file's path, or `memory` for a lock of this process. */
  readonly location: string;
  /** The current holder; `undefined` when the lock's record cannot be read (damaged, or being written). */
  readonly holder: LockHolder | undefined;
  /** How long the waiter has waited so far, in milliseconds. */
  readonly waitedMs: number;
}

/**
 * Waiting limits, resolved: what {@link AcquireOptions} fields fall back to.
 *
 * @internal
 */
export interface WaitLimits {
  readonly maxWaitMs: number;
  readonly onWaitAfterMs: number;
}

// defaults

/**
 * How long `acquire` waits for a lock by default before it fails with `LOCK_TIMEOUT`: 10 minutes.
 *
 * @example
 * createFileStepLock('.stepcache/locks', { maxWaitMs: 2 * DEFAULT_MAX_WAIT_MS }); // 20 minutes
 */
export const DEFAULT_MAX_WAIT_MS = 10 * 60_000;

/**
 * How long `acquire` waits by default before it reports the wait through `onWait`: 5 seconds.
 *
 * @example
 * lock.acquire(key, { onWaitAfterMs: DEFAULT_ON_WAIT_AFTER_MS, onWait: (w) => console.log(w.holder) });
 */
export const DEFAULT_ON_WAIT_AFTER_MS = 5_000;

/** The longest delay a timer takes (setTimeout fires at once beyond it). */
const LONGEST_TIMER_MS = 2 ** 31 - 1;

// validation

/**
 * Checks a waiting limit: a positive number of milliseconds, at most about 24 days, or
 * `Infinity` (no limit). Returns an error naming the field and its owner otherwise.
 *
 * @internal
 */
export const checkWaitLimit = (owner: string, field: string, value: unknown): StepcacheError | undefined =>
  value === Number.POSITIVE_INFINITY || (typeof value === 'number' && Number.isFinite(value) && value > 0 && value <= LONGEST_TIMER_MS)
    ? undefined
    : new StepcacheError('INVALID_OPTIONS', `Invalid option ${field} of ${owner}: got ${String(value)}, expected a positive number of milliseconds up to ${LONGEST_TIMER_MS}, or Infinity.`, { field });

/**
 * The limits of one `acquire`: its options over the lock's defaults. Throws `INVALID_OPTIONS`.
 *
 * @internal
 */
export const limitsOf = (owner: string, defaults: WaitLimits, options: AcquireOptions): WaitLimits => {
  const maxWaitMs = options.maxWaitMs ?? defaults.maxWaitMs;
  const onWaitAfterMs = options.onWaitAfterMs ?? defaults.onWaitAfterMs;
  const invalid = checkWaitLimit(owner, 'maxWaitMs', maxWaitMs) ?? checkWaitLimit(owner, 'onWaitAfterMs', onWaitAfterMs);
  if (invalid !== undefined) throw invalid;
  if (options.onWait !== undefined && typeof options.onWait !== 'function') {
    throw new StepcacheError('INVALID_OPTIONS', `Invalid option onWait of ${owner}: got ${typeof options.onWait}, expected a function.`, { field: 'onWait' });
  }
  return { maxWaitMs, onWaitAfterMs };
};

// describing

const pad = (n: number): string => String(n).padStart(2, '0');

/**
 * A holder in words, for logs and error messages: `pid 123 on host trainer-01 since 12:03:04`
 * (local time; the date too when it is not today).
 *
 * @example
 * describeLockHolder({ pid: 123, host: 'trainer-01', since: Date.now() }); // 'pid 123 on host trainer-01 since 12:03:04'
 * describeLockHolder(undefined); // 'an unknown holder (the lock record cannot be read)'
 */
export const describeLockHolder = (holder: LockHolder | undefined, now: number = Date.now()): string => {
  if (holder === undefined) return 'an unknown holder (the lock record cannot be read)';
  const at = new Date(holder.since);
  if (Number.isNaN(at.getTime())) return `pid ${holder.pid} on host ${holder.host}`;
  const time = `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}`;
  const today = new Date(now);
  const sameDay = at.getFullYear() === today.getFullYear() && at.getMonth() === today.getMonth() && at.getDate() === today.getDate();
  return `pid ${holder.pid} on host ${holder.host} since ${sameDay ? '' : `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())} `}${time}`;
};

const duration = (ms: number): string => (ms < 1_000 ? `${Math.round(ms)} ms` : ms < 120_000 ? `${Math.round(ms / 100) / 10} s` : `${Math.round(ms / 6_000) / 10} min`);

/**
 * The error of a wait that passed its bound: names the lock, the holder and what to do.
 *
 * @internal
 */
export const lockTimeout = (wait: LockWait, maxWaitMs: number, advice: string): StepcacheError =>
  new StepcacheError(
    'LOCK_TIMEOUT',
    `Gave up waiting for the lock on step key ${wait.key} (${wait.location}) after ${duration(wait.waitedMs)} (maxWaitMs ${maxWaitMs}): it is held by ${describeLockHolder(wait.holder)}. ${advice}`,
    { field: 'maxWaitMs' },
  );

// watching a wait

/**
 * One wait in progress: a signal that aborts when the caller's signal aborts or the bound
 * passes, and a timer that reports the wait once.
 *
 * @internal
 */
export interface WaitWatch {
  /** Aborts with the caller's reason, or once `maxWaitMs` has passed. */
  readonly signal: AbortSignal;
  /** Whether `signal` aborted because this watch's bound passed. */
  readonly timedOut: () => boolean;
  /** How long the wait has lasted. */
  readonly waitedMs: () => number;
  /** Ends the watch (clears its timers); call it however the wait ends. */
  readonly stop: () => void;
}

/**
 * Starts watching a wait. `holderNow` reads the lock's current holder when the report is due.
 * A report whose wait ended while the holder was being read is dropped; an exception thrown by
 * `onWait` is ignored (it is a report, not a decision).
 *
 * @internal
 */
export const watchWait = (
  key: string,
  location: string,
  limits: WaitLimits,
  options: AcquireOptions,
  holderNow: () => Promise<LockHolder | undefined>,
): WaitWatch => {
  const started = performance.now();
  const waitedMs = (): number => performance.now() - started;
  const controller = new AbortController();
  let stopped = false;
  /** This watch's own bound passed (not an outer watch's, whose reason reaches here through `signal`). */
  let expired = false;
  const { signal, onWait } = options;
  const onAbort = (): void => controller.abort(signal?.reason);
  if (signal?.aborted === true) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  const deadline = Number.isFinite(limits.maxWaitMs) ? setTimeout(() => {
        expired = true;
        controller.abort(new Error(`The wait for the lock on ${key} passed its bound.`));
      }, limits.maxWaitMs) : undefined;
  const report =
    onWait !== undefined && Number.isFinite(limits.onWaitAfterMs) && limits.onWaitAfterMs < limits.maxWaitMs
      ? setTimeout(() => {
          holderNow().then(
            (holder) => {
              if (stopped) return;
              try {
                onWait(Object.freeze({ key, location, holder, waitedMs: waitedMs() }));
              } catch {
                // a failing report must not fail the wait
              }
            },
            () => undefined, // the wait itself meets the same failure and reports it
          );
        }, limits.onWaitAfterMs)
      : undefined;
  return {
    signal: controller.signal,
    timedOut: () => expired,
    waitedMs,
    stop: () => {
      stopped = true;
      clearTimeout(deadline);
      clearTimeout(report);
      signal?.removeEventListener('abort', onAbort);
    },
  };
};
