/**
 * The embedded store's step lock: one lock file per held key under a directory shared by every
 * process that uses the store.
 *
 * - Acquire: create `<dir>/<key>.lock` exclusively (`open` with `wx`) and write the holder's
 *   record into it (pid, host, random token, time; see `owner.ts`). Whoever creates the file holds the key.
 * - Hold: refresh the file's mtime every `staleAfterMs / 3` through the open descriptor, so only
 *   a holder that stopped (died, froze) lets its file grow old. The descriptor, unlike the path,
 *   can only ever touch our own file, even if it was broken and replaced.
 * - Wait: poll every `pollMs` (with jitter). Waiters in this process queue in memory first, so
 *   only one of them polls each file and a release here hands over at once. A wait is bounded
 *   (`maxWaitMs`, then `LOCK_TIMEOUT` naming the holder) and reported once after
 *   `onWaitAfterMs` (see `wait.ts`).
 * - Recover: a file whose holder is certainly dead, or that is older than `staleAfterMs`, is
 *   broken (see {@link breakStale}) and creation is retried. On Linux a waiter on the holder's
 *   machine asks the operating system whether the holder still runs and ignores the file's age
 *   (see `owner.ts`): a step that blocks the event loop cannot refresh its file but is not dead.
 *   A file's age is the larger of its mtime's age and how long this waiter has seen it unchanged
 *   (by its own clock), so a file stamped in the future (clock skew, damage) still goes stale.
 * - Release: delete the file if it still carries our token (read, compare, unlink). On process
 *   `exit`, files still held are deleted synchronously. SIGKILL and crashes leave files behind:
 *   that is what recovery is for.
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StepcacheError } from '../errors';
import { createMemoryStepLock } from './memory-lock';
import { defaultHost, formatOwner, judgeHolder, newToken, parseOwner, processIncarnation, type HolderState, type Judge, type LockOwner } from './owner';
import type { AcquireOptions, ReleaseLock, StepLock } from './step-lock';
import { DEFAULT_MAX_WAIT_MS, DEFAULT_ON_WAIT_AFTER_MS, limitsOf, lockTimeout, watchWait, type LockHolder, type WaitLimits } from './wait';

// model

/**
 * Options of {@link createFileStepLock}.
 *
 * @example
 * const options: FileStepLockOptions = { staleAfterMs: 60_000, pollMs: 50 };
 */
export interface FileStepLockOptions {
  /**
   * How long a lock file may go unrefreshed before a waiter may break it, when the waiter cannot
   * ask the operating system whether the holder still runs (the holder is on another machine, or
   * not on Linux). Holders refresh every third of it; a holder whose event loop is blocked for
   * longer (a synchronous step) looks dead to other machines, so make it longer than the longest
   * synchronous stretch of any step when machines share a store.
   * @default 30_000
   */
  readonly staleAfterMs?: number;
  /**
   * How often a waiter tries again, in milliseconds (each wait varies by ±25% so waiters spread out).
   * @default 25
   */
  readonly pollMs?: number;
  /**
   * The host name recorded in lock files. Set distinct names where machines or containers that
   * share the store could have the same host name (Linux tells those apart by itself).
   * @default os.hostname()
   */
  readonly host?: string;
  /**
   * How long `acquire` waits at most before it fails with `LOCK_TIMEOUT` (`Infinity`: no bound),
   * unless the call sets its own.
   * @default 600_000 (10 minutes)
   */
  readonly maxWaitMs?: number;
  /**
   * How long `acquire` waits before it calls its `onWait`, unless the call sets its own.
   * @default 5_000
   */
  readonly onWaitAfterMs?: number;
}

// validation

/** Keys are hex hashes: never a user string, never a path. */
const VALID_KEY = /^[0-9a-f]{16,128}$/;

const OWNER = 'createFileStepLock';

const invalidOption = (field: string, got: unknown, expected: string): StepcacheError =>
  new StepcacheError('INVALID_OPTIONS', `Invalid option ${field} of ${OWNER}: got ${String(got)}, expected ${expected}.`, { field });

const positive = (field: string, value: number | undefined, fallback: number): number => {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw invalidOption(field, value, 'a positive number of milliseconds');
  return value;
};

// this process's locks

/** The lock files this process holds, by token: deleted on exit. */
const heldFiles = new Map<string, string>();

let exitHookInstalled = false;
const installExitHook = (): void => {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Best effort, synchronous: 'exit' listeners cannot wait. A fatal signal skips this;
  // waiters on this machine then see the pid is gone and break the file at once.
  process.on('exit', () => {
    for (const [token, file] of heldFiles) {
      try {
        if (parseOwner(fs.readFileSync(file, 'utf8'))?.token === token) fs.unlinkSync(file);
      } catch {
        // already gone, or unreachable: recovery handles it
      }
    }
  });
};

// file operations

const codeOf = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | undefined)?.code;

/** Errors that say the lock folder itself is unusable, not one file in it. */
const FOLDER_PROBLEMS: Readonly<Record<string, string>> = {
  ENOTDIR: 'the folder, or a folder above it, is a file',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'the path is too long',
  EISDIR: 'a folder is where the lock file should be',
};

/** A failed file operation on a lock: `STORE_UNAVAILABLE`, naming the folder when it is the folder that is unusable. */
const lockError = (doing: string, file: string, cause: unknown): StepcacheError => {
  const code = codeOf(cause);
  const problem = code === undefined ? undefined : FOLDER_PROBLEMS[code];
  const folder = path.dirname(file);
  const message =
    problem === undefined
      ? `Could not ${doing} the lock file ${file}: ${code ?? (cause instanceof Error ? cause.message : String(cause))}.`
      : `The lock folder ${folder} cannot be used: could not ${doing} the lock file ${file} (${code}: ${problem}). Make ${folder} a folder this process can create files in, or open the store in another directory.`;
  return new StepcacheError('STORE_UNAVAILABLE', message, { cause });
};

/** A lock file as one waiter saw it: inode, content and age read through one descriptor, so all three belong to the same file. */
interface Seen {
  readonly ino: bigint;
  readonly raw: string;
  readonly owner: LockOwner | undefined;
  readonly mtimeMs: number;
  /** Inode, mtime (ns) and content: changes with every heartbeat and every new file. */
  readonly version: string;
}

const RECORD_MAX = 4096;

/** Reads a lock file; `undefined` when there is none. */
const readLock = async (file: string): Promise<Seen | undefined> => {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, 'r');
  } catch (e) {
    // Windows refuses to open a file that is being deleted (EPERM) for a moment: gone, too.
    if (codeOf(e) === 'ENOENT' || (codeOf(e) === 'EPERM' && process.platform === 'win32')) return undefined;
    throw lockError('read', file, e);
  }
  try {
    const stat = await handle.stat({ bigint: true });
    const buffer = Buffer.alloc(RECORD_MAX);
    const { bytesRead } = await handle.read(buffer, 0, RECORD_MAX, 0);
    const raw = buffer.toString('utf8', 0, bytesRead);
    return { ino: stat.ino, raw, owner: parseOwner(raw), mtimeMs: Number(stat.mtimeMs), version: `${stat.ino}/${stat.mtimeNs}/${raw}` };
  } catch (e) {
    throw lockError('read', file, e);
  } finally {
    await handle.close().catch(() => undefined);
  }
};

const unlinkIfPresent = async (file: string): Promise<void> => {
  try {
    await fs.promises.unlink(file);
  } catch (e) {
    if (codeOf(e) !== 'ENOENT') throw lockError('delete', file, e);
  }
};

/**
 * Creates a file exclusively and writes a record into it; `undefined` when it exists already.
 * On Windows a file that is being deleted cannot be opened (EPERM) for a moment: that is contention too.
 */
const createExclusive = async (file: string, dir: string, owner: LockOwner): Promise<fs.promises.FileHandle | undefined> => {
  for (let attempt = 0; ; attempt++) {
    let handle: fs.promises.FileHandle;
    try {
      handle = await fs.promises.open(file, 'wx');
    } catch (e) {
      const code = codeOf(e);
      if (code === 'EEXIST' || (code === 'EPERM' && process.platform === 'win32')) return undefined;
      if (code === 'ENOENT' && attempt === 0) {
        // the directory is not there (yet, or any more)
        await fs.promises.mkdir(dir, { recursive: true }).catch((m: unknown) => {
          throw lockError('create', file, m);
        });
        continue;
      }
      throw lockError('create', file, e);
    }
    try {
      await handle.write(formatOwner(owner), 0, 'utf8');
      return handle;
    } catch (e) {
      // ENOSPC and the like: the file is ours and empty; take it back.
      await handle.close().catch(() => undefined);
      await fs.promises.unlink(file).catch(() => undefined);
      throw lockError('write', file, e);
    }
  }
};

const sleep = (ms: number, signal: AbortSignal | undefined): Promise<void> =>
  new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });

// breaking stale locks

/**
 * Removes a stale lock file, exactly the one that was judged stale and never a fresh one.
 *
 * The danger is a waiter acting on an outdated look. Two waiters read the same stale file A;
 * the first deletes it, a third process creates a fresh file B at the same path, and the
 * second waiter, still acting on its look at A, deletes B: now two processes hold the key.
 * Renaming the file to a tombstone first and checking the tombstone afterwards only detects
 * this after the fact, and moving B back (with `rename`, which overwrites) can destroy a C
 * created meanwhile; the path stays empty in between.
 *
 * So breakers take turns per stale file instead. The file's identity is its inode and its token,
 * and a breaker first creates `<lock>.<inode>-<token>.break` exclusively. Holding that marker it
 * reads the lock file again; if it is still the same file and still stale it deletes it. Between
 * that read and the delete the file cannot change: the only ones who ever delete a lock file are
 * its own holder (dead, or frozen past the stale limit: that is what stale means) and its
 * breakers, and its breakers need the marker we hold. A breaker whose look is outdated either
 * finds the marker taken, or, once the marker is free again, reads a different file (or none)
 * and deletes nothing. Other files' breakers use other markers and, by the same argument, only
 * delete their own file.
 *
 * A marker is deleted once the break is over; it holds its breaker's record, so a marker left by
 * a breaker that died in those few milliseconds is itself judged (dead pid, or older than
 * staleAfterMs) and deleted by the next breaker. Only that last step is unguarded: if a breaker
 * dies mid-break, two waiters clean up its marker at the same instant, and the file changes
 * between their reads, one step may run twice. Nothing is corrupted then: artifacts are
 * content-addressed and written atomically.
 *
 * Returns `busy` when another breaker holds the marker (wait a poll), `done` otherwise (try again now).
 */
const breakStale = async (file: string, dir: string, seen: Seen, judge: Judge, host: string, sightings: Sightings): Promise<'busy' | 'done'> => {
  const marker = `${file}.${seen.ino}-${seen.owner?.token ?? 'none'}.break`;
  const handle = await createExclusive(marker, dir, ownerRecord(newToken(), host));
  if (handle === undefined) {
    const other = await readLock(marker);
    if (other !== undefined && judgeOf(other, judge, sightings(marker, other)) !== 'held') await unlinkIfPresent(marker);
    return 'busy';
  }
  try {
    await handle.close().catch(() => undefined);
    const again = await readLock(file);
    // The very version judged stale (a heartbeat since means its holder lives), and still stale.
    if (again !== undefined && again.version === seen.version && judgeOf(again, judge, sightings(file, again)) !== 'held') await unlinkIfPresent(file);
    return 'done';
  } finally {
    await unlinkIfPresent(marker);
  }
};

/**
 * How long one waiter has seen each file (lock or marker) unchanged, by its own monotonic clock:
 * 0 for a version it sees for the first time.
 */
type Sightings = (file: string, seen: Seen) => number;

const newSightings = (): Sightings => {
  const first = new Map<string, { readonly version: string; readonly at: number }>();
  return (file, seen) => {
    const now = performance.now();
    const known = first.get(file);
    if (known !== undefined && known.version === seen.version) return now - known.at;
    first.set(file, { version: seen.version, at: now });
    return 0;
  };
};

/**
 * Judges a file by its record and age. The age is the larger of the mtime's age by this clock and
 * how long this waiter has seen the file unchanged: an mtime in the future (another machine's
 * clock, a damaged file) delays a break by at most `staleAfterMs` after this waiter first saw it,
 * while a holder's heartbeats (new mtimes) keep it fresh whatever its clock says.
 */
const judgeOf = (seen: Seen, judge: Judge, unchangedMs: number): HolderState => judgeHolder(seen.owner, Math.max(Date.now() - seen.mtimeMs, unchangedMs), judge);

const holderOf = (seen: Seen | undefined): LockHolder | undefined =>
  seen?.owner === undefined ? undefined : Object.freeze({ pid: seen.owner.pid, host: seen.owner.host, since: seen.owner.at });

const ownerRecord = (token: string, host: string): LockOwner => {
  const proc = processIncarnation();
  return { pid: process.pid, host, token, at: Date.now(), ...(proc === undefined ? {} : { proc }) };
};

// the lock

/**
 * The step lock of the embedded store: lock files under `dir`, shared by every process on every
 * machine that sees the directory. Keys must be 16 to 128 lowercase hex digits (step keys are);
 * anything else is rejected, so no path is ever built from a user string.
 *
 * A holder that dies is recovered from: at once when it ran on this machine (and the pid is gone
 * or reused), otherwise once its file is older than `staleAfterMs`.
 *
 * @example
 * const lock = createFileStepLock('.stepcache/locks', { staleAfterMs: 60_000 });
 * const release = await lock.acquire(stepKey);
 * try {
 *   // check the cache again, then execute only if the key still misses
 * } finally {
 *   await release();
 * }
 */
export const createFileStepLock = (directory: string, options: FileStepLockOptions = {}): StepLock => {
  if (typeof directory !== 'string' || directory.length === 0) throw invalidOption('dir', directory, 'a directory path');
  const dir = path.resolve(directory); // the exit hook must find the files after a chdir
  const staleAfterMs = positive('staleAfterMs', options.staleAfterMs, 30_000);
  const pollMs = positive('pollMs', options.pollMs, 25);
  const host = options.host ?? defaultHost();
  if (typeof host !== 'string' || host.length === 0 || host.length > 255) throw invalidOption('host', host, 'a host name of 1 to 255 characters');
  const judge: Judge = { host, staleAfterMs };
  const defaults: WaitLimits = limitsOf(OWNER, { maxWaitMs: DEFAULT_MAX_WAIT_MS, onWaitAfterMs: DEFAULT_ON_WAIT_AFTER_MS }, options);
  const heartbeatMs = Math.max(1, Math.floor(staleAfterMs / 3));
  /** One waiter per key in this process polls the file; the others queue here. */
  const local = createMemoryStepLock();

  const hold = (file: string, token: string, handle: fs.promises.FileHandle): ReleaseLock => {
    heldFiles.set(token, file);
    installExitHook();
    let beat: Promise<void> | undefined;
    const timer = setInterval(() => {
      if (beat !== undefined) return;
      const now = new Date();
      beat = handle.utimes(now, now).then(
        () => void (beat = undefined),
        () => void (beat = undefined), // a missed beat is not fatal; the next one may succeed
      );
    }, heartbeatMs);
    timer.unref();
    let released: Promise<void> | undefined;
    return () =>
      (released ??= (async () => {
        clearInterval(timer);
        await beat;
        // Closed before the delete: Windows keeps an open file's name until it is closed.
        await handle.close().catch(() => undefined);
        try {
          const current = await readLock(file);
          // Not ours any more only if someone broke it while we were frozen: then it is theirs.
          if (current?.owner?.token === token) await unlinkIfPresent(file);
        } finally {
          heldFiles.delete(token);
        }
      })());
  };

  const acquireFile = async (file: string, signal: AbortSignal): Promise<ReleaseLock> => {
    const token = newToken();
    const sightings = newSightings();
    let vanished = 0;
    for (;;) {
      signal.throwIfAborted();
      const handle = await createExclusive(file, dir, ownerRecord(token, host));
      if (handle !== undefined) {
        const release = hold(file, token, handle);
        if (signal.aborted) {
          await release();
          signal.throwIfAborted();
        }
        return release;
      }
      const seen = await readLock(file);
      // Released in between: try again at once, but do not spin if that keeps happening.
      const retryNow =
        seen === undefined ? vanished++ === 0 : judgeOf(seen, judge, sightings(file, seen)) !== 'held' && (await breakStale(file, dir, seen, judge, host, sightings)) === 'done';
      if (seen !== undefined) vanished = 0;
      if (!retryNow) await sleep(pollMs * (0.75 + Math.random() * 0.5), signal);
    }
  };

  /** The error of a wait that passed its bound, with the holder as the file says now. */
  const timedOut = async (key: string, file: string, waitedMs: number, maxWaitMs: number): Promise<StepcacheError> => {
    const seen = await readLock(file).catch(() => undefined);
    const holder = holderOf(seen);
    const ageS = seen === undefined ? 0 : Math.round((Date.now() - seen.mtimeMs) / 1_000);
    const lastRefresh = seen === undefined ? '' : ageS >= 0 ? ` Its file was last refreshed ${ageS} s ago.` : ` Its file is stamped ${-ageS} s in the future (a clock ahead of this one, or a damaged file).`;
    const takeover = `Waiters take the lock over without help once its file goes unrefreshed for staleAfterMs (${staleAfterMs} ms), and at once when its holder ran on this machine and is gone.`;
    const advice =
      seen === undefined
        ? `The lock was released just as the wait ended: run again.`
        : holder === undefined
          ? `The lock file holds no readable record (damaged, or its holder died while writing it).${lastRefresh} ${takeover} If no process uses this store, delete ${file}.`
          : `If pid ${holder.pid} on ${holder.host} is still working on this step, wait for it or raise the step's lockTimeout setting (.withOptions({ lockTimeout: '30m' })); if it hangs, stop it (kill ${holder.pid} on ${holder.host}).${lastRefresh} ${takeover} If no process uses this store, delete ${file}.`;
    return lockTimeout({ key, location: file, holder, waitedMs }, maxWaitMs, advice);
  };

  const acquire = async (key: string, acquireOptions: AcquireOptions = {}): Promise<ReleaseLock> => {
    if (typeof key !== 'string' || !VALID_KEY.test(key)) {
      throw new StepcacheError('INVALID_OPTIONS', `Invalid step key ${JSON.stringify(key)}: a lock key is 16 to 128 lowercase hex digits.`, { field: 'key' });
    }
    const limits = limitsOf(OWNER, defaults, acquireOptions);
    const file = path.join(dir, `${key}.lock`);
    // One watch over both phases (the queue in this process, then the file), so the bound and the report count the whole wait.
    const watch = watchWait(key, file, limits, acquireOptions, async () => holderOf(await readLock(file)));
    try {
      const releaseLocal = await local.acquire(key, { signal: watch.signal, maxWaitMs: Number.POSITIVE_INFINITY });
      let releaseFile: ReleaseLock;
      try {
        releaseFile = await acquireFile(file, watch.signal);
      } catch (e) {
        await releaseLocal();
        throw e;
      }
      let released: Promise<void> | undefined;
      return () =>
        (released ??= (async () => {
          try {
            await releaseFile();
          } finally {
            await releaseLocal();
          }
        })());
    } catch (e) {
      if (watch.timedOut() && e === watch.signal.reason) throw await timedOut(key, file, watch.waitedMs(), limits.maxWaitMs);
      throw e;
    } finally {
      watch.stop();
    }
  };

  return Object.freeze({ acquire });
};
