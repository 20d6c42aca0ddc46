/**
 * The fast path of the file lock for a process alone on its store: while no other process uses
 * the lock folder, keys are locked in memory only (no file per key), and as soon as another one
 * shows up, the keys held are taken as files and every later key is locked through its file.
 *
 * The protocol, with two marker files kept by the file lock itself (so that a dead holder's are
 * recovered the same way as any lock file's):
 *
 * - Solo: a process that starts locking keys creates the solo marker exclusively, then looks for
 *   presence markers of other processes. None (alive): it is solo, and keeps looking every
 *   `pollMs`. One: it becomes shared (below).
 * - Shared: a process that cannot be solo first creates its own presence marker, then waits until
 *   the solo marker is gone, and from then on locks each key through its file. A solo process
 *   that sees a presence marker creates its own, takes the file of every key it holds, and only
 *   then deletes the solo marker.
 *
 * Whoever creates its marker first is seen by the other (each creates its marker before it looks
 * for the other's), so no key is ever held in memory by one process and through its file by
 * another. A process lets its marker go once it has held no key for `idleMs`, so the next run
 * decides again: a long-lived process becomes solo again once the others are gone.
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StepcacheError } from '../errors';
import { createMemoryStepLock } from './memory-lock';
import { newToken } from './owner';
import type { AcquireOptions, ReleaseLock, StepLock } from './step-lock';

// model

/**
 * Options of {@link soloWhenAlone}.
 *
 * @example
 * const options: SoloOptions = { pollMs: 20, idleMs: 2_000 };
 */
export interface SoloOptions {
  /**
   * How often a solo process looks for other processes, in milliseconds: the longest another
   * process waits before it may lock keys.
   * @default 20
   */
  readonly pollMs?: number;
  /**
   * How long a process keeps its marker (solo or presence) after it last held a key.
   * @default 2_000
   */
  readonly idleMs?: number;
}

/**
 * The lock {@link soloWhenAlone} makes: a step lock that can give its marker up at once.
 *
 * @example
 * const lock: SoloStepLock = soloWhenAlone(dir, createFileStepLock(dir));
 * await lock.close(); // no marker left in dir, unless a key is held in this process
 */
export interface SoloStepLock extends StepLock {
  /** Gives this process's marker up now rather than after `idleMs`, unless a key is being acquired or held here. */
  close(): Promise<void>;
}

/** A key held in memory while solo, and its file once the process has left solo. */
interface Held {
  file?: Promise<ReleaseLock>;
}

/** How this process locks keys for now, and how it stops. */
interface Session {
  mode: 'solo' | 'shared';
  /** Gives up the session's marker. */
  readonly end: () => Promise<void>;
}

/** What this process knows of one lock folder, shared by every lock on it. */
interface Folder {
  readonly memory: StepLock;
  readonly held: Map<string, Held>;
  session: Promise<Session> | undefined;
  /** Keys being acquired or held. */
  active: number;
  /** When the current session became solo (`performance.now()`), while it is. */
  soloSince: number | undefined;
  idle: NodeJS.Timeout | undefined;
  ending: Promise<void>;
}

/** The solo marker's key (16 hex digits: no step key is that short). */
const SOLO_KEY = 'f0f0f0f0f0f0f0f0';
/** Presence markers: this prefix and a random token (40 hex digits in all: no step key is that long). */
const PRESENCE_PREFIX = 'e0e0e0e0';
const PRESENCE_FILE = /^e0e0e0e0[0-9a-f]{32}\.lock$/;

const folders = new Map<string, Folder>();

const folderOf = (dir: string): Folder => {
  let folder = folders.get(dir);
  if (folder === undefined) {
    folder = { memory: createMemoryStepLock(), held: new Map(), session: undefined, active: 0, soloSince: undefined, idle: undefined, ending: Promise.resolve() };
    folders.set(dir, folder);
  }
  return folder;
};

/**
 * How long a try waits: long enough for the file operations of an acquisition on a busy machine
 * (a try that times out only makes this process shared, which is always safe).
 */
const TRY_MS = 250;

/** Takes a key's file now, or `undefined` when another live holder has it. */
const tryFile = async (files: StepLock, key: string): Promise<ReleaseLock | undefined> => {
  try {
    return await files.acquire(key, { maxWaitMs: TRY_MS });
  } catch (e) {
    if (e instanceof StepcacheError && e.code === 'LOCK_TIMEOUT') return undefined;
    throw e;
  }
};

/** The presence markers of other processes in the folder (none when the folder is not there yet). */
const othersPresent = async (dir: string, own: string | undefined): Promise<string[]> => {
  const names = await fs.promises.readdir(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [] as string[];
    throw e;
  });
  return names.filter((n) => PRESENCE_FILE.test(n) && n !== own).map((n) => n.slice(0, -'.lock'.length));
};

// the lock

/**
 * A file lock on `directory` with the solo fast path in front of it: see the module's comment.
 * `files` is the file lock on that folder; every process using the folder must use this too.
 *
 * @example
 * const lock = soloWhenAlone('.stepcache/locks', createFileStepLock('.stepcache/locks'));
 * const release = await lock.acquire(stepKey); // no file while this process is alone
 * await release();
 */
export const soloWhenAlone = (directory: string, files: StepLock, options: SoloOptions = {}): SoloStepLock => {
  const dir = path.resolve(directory);
  const pollMs = options.pollMs ?? 20;
  const idleMs = options.idleMs ?? 2_000;
  const folder = folderOf(dir);

  /**
   * Whether a key's file is there, asked at once: one look-up of a name (a few microseconds),
   * where a trip through the thread pool would be waited for by every step that executes.
   */
  const keyFileExists = (key: string): boolean => fs.existsSync(path.join(dir, `${key}.lock`));

  /** Announces this process, then waits until no process is solo. */
  const share = async (): Promise<ReleaseLock> => {
    const token = newToken();
    const presence = await files.acquire(`${PRESENCE_PREFIX}${token}`, { maxWaitMs: Number.POSITIVE_INFINITY });
    try {
      await (await files.acquire(SOLO_KEY, { maxWaitMs: Number.POSITIVE_INFINITY }))();
    } catch (e) {
      await presence();
      throw e;
    }
    return presence;
  };

  /** Leaves solo: presence first, then the files of the keys held, then the solo marker. */
  const leaveSolo = async (session: Session, solo: ReleaseLock): Promise<ReleaseLock> => {
    session.mode = 'shared';
    folder.soloSince = undefined;
    const token = newToken();
    const presence = await files.acquire(`${PRESENCE_PREFIX}${token}`, { maxWaitMs: Number.POSITIVE_INFINITY });
    const taking = [...folder.held].map(([key, held]) => (held.file = files.acquire(key, { maxWaitMs: Number.POSITIVE_INFINITY })));
    await Promise.allSettled(taking);
    await solo();
    return presence;
  };

  const begin = async (): Promise<Session> => {
    const solo = await tryFile(files, SOLO_KEY);
    if (solo === undefined) {
      const presence = await share();
      return { mode: 'shared', end: presence };
    }
    // Other processes' presence markers: a dead one's marker is recovered (taken, then let go).
    let alone = true;
    for (const key of await othersPresent(dir, undefined)) {
      const dead = await tryFile(files, key).catch(() => undefined);
      if (dead === undefined) {
        alone = false;
        break;
      }
      await dead();
    }
    if (!alone) {
      await solo(); // held no key yet
      return { mode: 'shared', end: await share() };
    }
    let presence: ReleaseLock | undefined; // once it has left solo
    let looking: Promise<void> | undefined;
    const poll = setInterval(() => {
      looking ??= othersPresent(dir, undefined)
        .then(async (others) => {
          if (others.length === 0 || session.mode !== 'solo') return;
          clearInterval(poll);
          presence = await leaveSolo(session, solo);
        })
        .catch(() => undefined) // a look that failed is tried again; a failed leave keeps the solo marker, so others go on waiting
        .finally(() => (looking = undefined));
    }, pollMs);
    poll.unref();
    folder.soloSince = performance.now();
    const session: Session = {
      mode: 'solo',
      end: async () => {
        session.mode = 'shared';
        folder.soloSince = undefined;
        clearInterval(poll);
        await looking;
        await (presence ?? solo)();
      },
    };
    return session;
  };

  /** Gives the session's marker up, unless a key is being acquired or held in this process. */
  const endIfIdle = (): Promise<void> => {
    const current = folder.session;
    if (folder.active > 0 || current === undefined) return folder.ending;
    folder.session = undefined;
    folder.ending = current.then((s) => s.end()).catch(() => undefined);
    return folder.ending;
  };

  const idleLater = (): void => {
    if (folder.active > 0) return;
    clearTimeout(folder.idle);
    folder.idle = setTimeout(() => void endIfIdle(), idleMs);
    folder.idle.unref();
  };

  const acquire = async (key: string, acquireOptions: AcquireOptions = {}): Promise<ReleaseLock> => {
    folder.active++;
    clearTimeout(folder.idle);
    let done = false;
    const leave = (): void => {
      if (done) return;
      done = true;
      folder.active--;
      idleLater();
    };
    try {
      const session = await (folder.session ??= folder.ending.then(begin).catch((e: unknown) => {
        folder.session = undefined;
        throw e;
      }));
      /** The key taken through its file, this process leaving once it is released. */
      const throughFile = async (): Promise<ReleaseLock> => {
        const release = await files.acquire(key, acquireOptions);
        return async () => {
          try {
            await release();
          } finally {
            leave();
          }
        };
      };
      if (session.mode === 'shared') return await throughFile();
      const releaseMemory = await folder.memory.acquire(key, acquireOptions);
      if (session.mode !== 'solo') {
        // Left solo while this waited in memory: the key's file is the lock now.
        await releaseMemory();
        return await throughFile();
      }
      const held: Held = {};
      folder.held.set(key, held);
      // A key file made by a lock that does not take part (another version, a plain file lock on
      // this folder) is respected: the key is then taken through its file too.
      if (keyFileExists(key)) {
        // Whoever made it may have written entries: lookups made before now are not to be trusted.
        if (folder.soloSince !== undefined) folder.soloSince = performance.now();
        held.file = files.acquire(key, acquireOptions);
        await held.file.catch(async (e: unknown) => {
          folder.held.delete(key);
          await releaseMemory();
          throw e;
        });
      }
      let released: Promise<void> | undefined;
      return () =>
        (released ??= (async () => {
          folder.held.delete(key);
          try {
            if (held.file !== undefined) await (await held.file)();
          } finally {
            await releaseMemory();
            leave();
          }
        })());
    } catch (e) {
      leave();
      throw e;
    }
  };

  return Object.freeze({
    acquire,
    aloneSince: () => folder.soloSince,
    close: async () => {
      clearTimeout(folder.idle);
      await endIfIdle();
    },
  });
};
