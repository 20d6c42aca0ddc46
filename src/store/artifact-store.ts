/**
 * The artifact store: content-addressed bytes. The embedded implementation keeps one file per
 * content hash under `<dir>/artifacts/`, written atomically (temporary file, then rename), and
 * verifies the hash of every file it loads, hashing while it reads and writes so that
 * verification costs little more than the I/O itself.
 *
 * A big artifact that a store has verified in full is not hashed again when it loads it again
 * unchanged: the store keeps, in memory, the file's identity and change time as they were when it
 * verified it (device, inode, size, modification and change times, nanoseconds), and only when
 * that change time was older than that of a file it made in the same folder just before (the
 * file system's own clock, as git does against its index's time: a write within the same tick
 * could otherwise go unseen). Every write to a file (and every rename over it) sets its change
 * time to the file system's present time, which the file's owner cannot set back, so a file that
 * changed in any way after its verification no longer matches and is hashed in full again, and a
 * damaged one is reported. What this does not see is damage below the file system (a disk's bit
 * rot under an unchanged file) during the life of the one process that verified the file; each
 * process, and each store, verifies every artifact the first time it loads it.
 *
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { contentHashing, contentIdOf, type ContentHasher, type ContentHashing } from '../hash/hashers';
import { EMPTY_ARTIFACT_ID } from './serialize';
import { sharedWriteBehind, type WriteBehindOutcome } from './write-worker';

// model

/**
 * Why stored bytes could not be loaded.
 *
 * @example
 * const e: ArtifactLoadError = { _tag: 'ArtifactMissing', id: 'ab12', location: '/x/ab/ab12', message: 'file is missing' };
 */
export interface ArtifactLoadError {
  readonly _tag: 'ArtifactMissing' | 'ArtifactTruncated' | 'ArtifactCorrupted' | 'ArtifactUnreadable';
  readonly id: string;
  /** Where the artifact lives (a file path for the embedded store). */
  readonly location: string;
  readonly message: string;
}

/**
 * A stored artifact's identity and size.
 *
 * @example
 * const ref: ArtifactRef = await artifacts.put(new Uint8Array([1, 2, 3]));
 */
export interface ArtifactRef {
  readonly id: string;
  readonly size: number;
}

/**
 * Where artifact bytes live. Implementations must write atomically and verify on load.
 *
 * @example
 * const store: ArtifactStore = createFileArtifactStore('/tmp/artifacts');
 * const ref = await store.put(new Uint8Array([1, 2, 3]));
 * await store.get(ref); // Right(Buffer [1, 2, 3])
 */
export interface ArtifactStore {
  /** Stores bytes under their content hash; returns the hash. */
  put(bytes: Uint8Array): Promise<string>;
  /**
   * Stores bytes at once, synchronously, and returns their hash; `undefined` when it cannot now
   * (then `put` is the way). Nothing else runs while it stores, so bytes that something may change
   * afterwards (a step's own typed array) are stored as they are now without being copied first.
   * Optional: a store that cannot write synchronously (a network store) leaves it out.
   */
  readonly putNow?: ((bytes: Uint8Array) => string | undefined) | undefined;
  /**
   * The id `put` would give these bytes, without storing them: at once when the hash has loaded,
   * else a promise. Outputs small enough to be kept inside their cache entry are named by it (and
   * checked against it when loaded). Optional: a store without it has every output put.
   */
  readonly idOf?: ((bytes: Uint8Array) => string | Promise<string>) | undefined;
  /** Loads bytes and verifies them against their id and size. */
  get(ref: ArtifactRef): Promise<E.Either<ArtifactLoadError, Buffer>>;
  /** Whether each artifact is present with the expected size (cheap: no content is read). */
  present(refs: readonly ArtifactRef[]): Promise<boolean[]>;
  /** Removes an artifact; removing a missing one is not an error. */
  remove(id: string): Promise<void>;
  /** A human-readable location for messages. */
  locate(id: string): string;
  /** Every stored artifact, with its size and when it was written. */
  list(): Promise<Array<{ readonly id: string; readonly size: number; readonly writtenAt: number }>>;
  /** Removes temporary files of interrupted writes older than `olderThanMs`; returns how many. */
  sweepTemporary(olderThanMs: number): Promise<number>;
}

// the embedded file store

const CHUNK = 8 * 1024 * 1024;
/** Chunks of a synchronous store: small enough to be hashed while still in the processor's cache. */
const CHUNK_NOW = 1024 * 1024;
/** From this size a synchronous store writes on the write-behind worker while it hashes: below, starting a chunk costs more than it overlaps. */
const WRITE_BEHIND_FROM = 8 * 1024 * 1024;
const READS_IN_FLIGHT = 3;
/**
 * Up to this size, `put` stores bytes at once too (as `putNow` does): a few system calls on this
 * thread cost less than the four trips through the thread pool (open, write, close, rename) of an
 * asynchronous write, which a chain of small steps waits for one after the other.
 */
const SMALL = 64 * 1024;
/** Artifact ids are hex content hashes: never a user string, never a path. */
const VALID_ID = /^[0-9a-f]{8,128}$/;
/** Verified big artifacts a store remembers at most (the oldest is forgotten first). */
const MAX_VERIFIED = 4096;

/** A file's identity and times as `fstat` tells them, to the nanosecond: any write or replacement changes them. */
interface FileStamp {
  readonly dev: bigint;
  readonly ino: bigint;
  readonly size: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
}

const stampOf = (stats: fs.BigIntStats): FileStamp => ({ dev: stats.dev, ino: stats.ino, size: stats.size, mtimeNs: stats.mtimeNs, ctimeNs: stats.ctimeNs });

const sameStamp = (a: FileStamp | undefined, b: FileStamp): boolean =>
  a !== undefined && a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;

/**
 * Whether a string is a well-formed artifact id (a hexadecimal content hash), so that a store
 * can build a file name or an object key from it without ever reaching outside its own space.
 *
 * @example
 * isArtifactId('0123456789abcdef'); // true
 * isArtifactId('../../etc/passwd'); // false
 */
export const isArtifactId = (id: string): boolean => VALID_ID.test(id);

const writeAllNow = (fd: number, bytes: Uint8Array, position: number): void => {
  for (let done = 0; done < bytes.byteLength; ) done += fs.writeSync(fd, bytes, done, bytes.byteLength - done, position + done);
};

const writeAll = async (handle: fs.promises.FileHandle, bytes: Uint8Array, position: number): Promise<void> => {
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.byteLength - done, position + done);
    done += bytesWritten;
  }
};

/**
 * How an artifact store names contents.
 *
 * @example
 * const options: ArtifactStoreOptions = { secret: process.env.STEPCACHE_SECRET };
 */
export interface ArtifactStoreOptions {
  /**
   * The team's secret (the runner's `secret`): contents are then named by a hash keyed with it
   * (HMAC-SHA256, 64 hex digits), which nobody without the secret can forge, instead of XXH3-128
   * (32 hex digits, fast but not collision-resistant against an adversary). Artifacts named by
   * the other hash read as missing. See `ContentHashing`.
   * @default no secret: XXH3-128
   */
  readonly secret?: string | Uint8Array | undefined;
}

/** @internal Whether an id was made by this hashing (ids of the other hash read as missing). */
export const madeBy = (hashing: ContentHashing, id: string): boolean => id.length === hashing.idLength;

/** @internal The message of an artifact whose id another hashing made. */
export const otherHashingMessage = (hashing: ContentHashing, id: string): string =>
  `is named by another content hash (${id.length} hex digits; this store names contents by ${hashing.name}, ${hashing.idLength} digits: was it written with${hashing.name === 'xxh3-128' ? '' : 'out'} a secret?)`;

/**
 * @internal How a store whose content hashing is `hashing` names bytes without storing them (its
 * `idOf`): the id its `put` gives them, the empty artifact's for no bytes.
 *
 * @example
 * const idOf = artifactIdOf(contentHashing(undefined));
 * await idOf(new Uint8Array([1])); // 32 hex characters, as put would name them
 */
export const artifactIdOf =
  (hashing: ContentHashing) =>
  (bytes: Uint8Array): string | Promise<string> =>
    bytes.byteLength === 0 ? EMPTY_ARTIFACT_ID : contentIdOf(hashing, bytes);

/**
 * The embedded artifact store: files named by content hash in two-character shards.
 *
 * @example
 * const store = createFileArtifactStore('.stepcache/artifacts');
 * const shared = createFileArtifactStore('/mnt/team/artifacts', { secret: process.env.STEPCACHE_SECRET });
 */
export const createFileArtifactStore = (dir: string, options: ArtifactStoreOptions = {}): ArtifactStore => {
  const hashing = contentHashing(options.secret);
  const tmpDir = path.join(dir, 'tmp');
  const fileOf = (id: string): string => {
    if (!VALID_ID.test(id)) throw new Error(`Invalid artifact id ${JSON.stringify(id)}`);
    return path.join(dir, id.slice(0, 2), id);
  };
  let ready: Promise<void> | undefined;
  const ensureDirs = (): Promise<void> => (ready ??= fs.promises.mkdir(tmpDir, { recursive: true }).then(() => undefined));
  let readyNow = false;
  const ensureDirsNow = (): void => {
    if (!readyNow) fs.mkdirSync(tmpDir, { recursive: true });
    readyNow = true;
  };
  // The hash is loaded by the first use that needs it, not here: a process that only lists or
  // removes (`stepcache cache ls`) never loads it. A runner starts loading it when a run opens
  // (`ContentHashing.nowReady`), so that `putNow` can store by the time a step returns.

  /**
   * Big artifacts this store verified in full, with their files' stamps then (see the module's
   * documentation): loaded again with the same stamp, they are read without being hashed again.
   */
  const verified = new Map<string, FileStamp>();
  /** The file system's present time: the change time of a file made now in the temporary folder (and removed); `undefined` when none can be made (a read-only folder). */
  const fileSystemNow = (): bigint | undefined => {
    const probe = path.join(tmpDir, `${process.pid}-${randomUUID()}.clock`);
    try {
      const fd = fs.openSync(probe, 'wx');
      try {
        return fs.fstatSync(fd, { bigint: true }).ctimeNs;
      } finally {
        fs.closeSync(fd);
        fs.rmSync(probe, { force: true });
      }
    } catch {
      return undefined;
    }
  };
  /** Remembers a verified artifact's stamp, when the file last changed before `clock`: a later write then changes its change time. */
  const rememberVerified = (id: string, stamp: FileStamp, clock: bigint | undefined): void => {
    if (clock === undefined || stamp.ctimeNs >= clock) return;
    verified.delete(id);
    if (verified.size >= MAX_VERIFIED) verified.delete(verified.keys().next().value as string);
    verified.set(id, stamp);
  };

  /** The hash of bytes up to one chunk, at once with the shared hasher (no hasher of its own to make: ~0.5 ms each); `undefined` for more, or while the hash loads. */
  const smallHash = (bytes: Uint8Array): string | undefined => {
    if (bytes.byteLength > CHUNK) return undefined;
    const hasher = hashing.createNow();
    if (hasher === undefined) return undefined;
    hasher.update(bytes);
    return hasher.digest();
  };

  /** Shard folders known to exist: each is made once, not before every write (a shard removed meanwhile is made again). */
  const shards = new Set<string>();
  const renameIntoShard = async (tmp: string, target: string): Promise<void> => {
    const shard = path.dirname(target);
    if (!shards.has(shard)) {
      await fs.promises.mkdir(shard, { recursive: true });
      shards.add(shard);
    }
    try {
      await fs.promises.rename(tmp, target);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      shards.delete(shard);
      await fs.promises.mkdir(shard, { recursive: true });
      await fs.promises.rename(tmp, target);
    }
  };

  /** Whether the file of an id already holds exactly these bytes (a file of another content, a damaged one, is written again). */
  const holds = (target: string, bytes: Uint8Array): boolean => {
    try {
      if (fs.statSync(target, { throwIfNoEntry: false })?.size !== bytes.byteLength) return false;
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).equals(fs.readFileSync(target));
    } catch {
      return false;
    }
  };

  /**
   * Stores small bytes at once: hashed first, then not written at all when their file is there
   * already with these very bytes, else written to a temporary file and renamed into place, all
   * synchronously; `undefined` while the hash loads.
   */
  const putSmallNow = (bytes: Uint8Array): string | undefined => {
    const id = smallHash(bytes);
    if (id === undefined) return undefined;
    const target = fileOf(id);
    if (holds(target, bytes)) return id;
    ensureDirsNow();
    const tmp = path.join(tmpDir, `${process.pid}-${randomUUID()}.part`);
    try {
      const fd = fs.openSync(tmp, 'wx');
      try {
        writeAllNow(fd, bytes, 0);
      } finally {
        fs.closeSync(fd);
      }
      const shard = path.dirname(target);
      if (!shards.has(shard)) {
        fs.mkdirSync(shard, { recursive: true });
        shards.add(shard);
      }
      try {
        fs.renameSync(tmp, target);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        // The shard was removed meanwhile (a `cache clear`): made again.
        fs.mkdirSync(shard, { recursive: true });
        fs.renameSync(tmp, target);
      }
      return id;
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
  };

  let writeBehindStarted = false;
  /** This process stores artifacts: the write-behind worker is started now, so that it runs by the first big one. */
  const startWriteBehind = (): void => {
    if (writeBehindStarted) return;
    writeBehindStarted = true;
    sharedWriteBehind().start();
  };

  const put = async (bytes: Uint8Array): Promise<string> => {
    if (bytes.byteLength === 0) return EMPTY_ARTIFACT_ID;
    startWriteBehind();
    if (bytes.byteLength <= SMALL) {
      // Stored at once; while the hash loads, once it has loaded.
      const now = putSmallNow(bytes) ?? (await hashing.nowReady(), putSmallNow(bytes));
      if (now !== undefined) return now;
    }
    await ensureDirs();
    const hashedNow = smallHash(bytes);
    const hasher = hashedNow === undefined ? await hashing.create() : undefined;
    const tmp = path.join(tmpDir, `${process.pid}-${randomUUID()}.part`);
    const handle = await fs.promises.open(tmp, 'wx');
    try {
      for (let offset = 0; offset < bytes.byteLength; offset += CHUNK) {
        const chunk = bytes.subarray(offset, Math.min(offset + CHUNK, bytes.byteLength));
        const written = writeAll(handle, chunk, offset); // runs on the thread pool...
        hasher?.update(chunk); // ...while this hashes on the main thread
        await written;
      }
      await handle.close();
      const id = hashedNow ?? (hasher as ContentHasher).digest();
      const target = fileOf(id);
      await renameIntoShard(tmp, target);
      return id;
    } catch (e) {
      await handle.close().catch(() => undefined);
      await fs.promises.rm(tmp, { force: true });
      throw e;
    }
  };

  // Writes and hashes chunk by chunk without returning to the event loop: nothing else runs on
  // this thread meanwhile, so no copy of the whole is needed for the bytes to be what they are
  // now. A big artifact is written by the write-behind worker (from a small ring it is copied
  // into, chunk by chunk) while this thread hashes it; a small one, or one the worker could not
  // write, is written here, each chunk written and hashed while it is in the processor's cache.
  const putNow = (bytes: Uint8Array): string | undefined => {
    if (bytes.byteLength === 0) return EMPTY_ARTIFACT_ID;
    startWriteBehind();
    if (bytes.byteLength <= SMALL) return putSmallNow(bytes);
    const hasher = hashing.createNow();
    if (hasher === undefined) return undefined;
    ensureDirsNow();
    const tmp = path.join(tmpDir, `${process.pid}-${randomUUID()}.part`);
    const fd = fs.openSync(tmp, 'wx');
    const behind = bytes.byteLength >= WRITE_BEHIND_FROM ? sharedWriteBehind() : undefined;
    let outcome: WriteBehindOutcome | undefined;
    let open = true;
    const closeFd = (): void => {
      if (!open) return;
      open = false;
      if (outcome === 'abandoned' && behind !== undefined) behind.closeAfterWorker(fd);
      else fs.closeSync(fd);
    };
    try {
      outcome = behind?.writeNow(fd, bytes, (chunk) => hasher.update(chunk));
      if (outcome === undefined) {
        for (let offset = 0; offset < bytes.byteLength; offset += CHUNK_NOW) {
          const chunk = bytes.subarray(offset, Math.min(offset + CHUNK_NOW, bytes.byteLength));
          hasher.update(chunk);
          writeAllNow(fd, chunk, offset);
        }
      } else if (outcome !== 'written') {
        writeAllNow(fd, bytes, 0); // hashed already; this raises the error the worker met, if it lasts
      }
      closeFd();
      const id = hasher.digest();
      const target = fileOf(id);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.renameSync(tmp, target);
      return id;
    } catch (e) {
      try {
        closeFd();
      } catch {
        // the error that counts is e
      }
      fs.rmSync(tmp, { force: true });
      throw e;
    }
  };

  const get = async (ref: ArtifactRef): Promise<E.Either<ArtifactLoadError, Buffer>> => {
    if (ref.id === EMPTY_ARTIFACT_ID) return E.right(Buffer.alloc(0));
    if (!VALID_ID.test(ref.id)) return E.left({ _tag: 'ArtifactUnreadable', id: ref.id, location: '(invalid id)', message: 'has an invalid id: artifact ids are hexadecimal content hashes' });
    const location = fileOf(ref.id);
    const fail = (tag: ArtifactLoadError['_tag'], message: string) => {
      verified.delete(ref.id);
      return E.left({ _tag: tag, id: ref.id, location, message });
    };
    if (!madeBy(hashing, ref.id)) return fail('ArtifactMissing', otherHashingMessage(hashing, ref.id));
    let handle: fs.promises.FileHandle;
    try {
      handle = await fs.promises.open(location, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return code === 'ENOENT' ? fail('ArtifactMissing', 'file is missing') : fail('ArtifactUnreadable', `cannot be opened (${code ?? String(e)})`);
    }
    try {
      let stamp = stampOf(await handle.stat({ bigint: true }));
      const size = Number(stamp.size);
      if (size !== ref.size) return fail(size < ref.size ? 'ArtifactTruncated' : 'ArtifactCorrupted', `has ${size} bytes, expected ${ref.size}`);
      const buffer = Buffer.allocUnsafeSlow(size);
      if (size <= CHUNK) {
        // One read, then the shared hasher at once.
        const { bytesRead } = await handle.read(buffer, 0, size, 0);
        if (bytesRead < size) return fail('ArtifactTruncated', `ended after ${bytesRead} of ${size} bytes`);
        const actual = smallHash(buffer);
        if (actual !== undefined) return actual === ref.id ? E.right(buffer) : fail('ArtifactCorrupted', `content hash is ${actual}, expected ${ref.id}`);
      }
      // Verified before and unchanged since: read only. Otherwise the file system's clock first, then the stamp to remember.
      const trusted = sameStamp(verified.get(ref.id), stamp);
      let clock: bigint | undefined;
      if (!trusted) {
        clock = fileSystemNow();
        stamp = stampOf(await handle.stat({ bigint: true }));
      }
      let hasher = trusted ? undefined : await hashing.create();
      // Keep a few reads in flight on the thread pool while the main thread hashes what arrived.
      const inFlight: Promise<{ readonly offset: number; readonly wanted: number; readonly bytesRead: number }>[] = [];
      let requested = 0;
      const requestNext = (): void => {
        const offset = requested;
        const wanted = Math.min(CHUNK, size - offset);
        requested += wanted;
        inFlight.push(handle.read(buffer, offset, wanted, offset).then(({ bytesRead }) => ({ offset, wanted, bytesRead })));
      };
      while (inFlight.length < READS_IN_FLIGHT && requested < size) requestNext();
      while (inFlight.length > 0) {
        const { offset, wanted, bytesRead } = await (inFlight.shift() as (typeof inFlight)[number]);
        if (bytesRead < wanted) {
          await Promise.allSettled(inFlight);
          return fail('ArtifactTruncated', `ended after ${offset + bytesRead} of ${size} bytes`);
        }
        if (requested < size) requestNext();
        hasher?.update(buffer.subarray(offset, offset + bytesRead));
      }
      const after = stampOf(await handle.stat({ bigint: true }));
      const unchanged = sameStamp(stamp, after);
      if (trusted && unchanged) return E.right(buffer);
      if (hasher === undefined) {
        // Changed while it was read: what was read is verified in full.
        hasher = await hashing.create();
        for (let offset = 0; offset < size; offset += CHUNK) hasher.update(buffer.subarray(offset, Math.min(offset + CHUNK, size)));
      }
      const actual = hasher.digest();
      if (actual !== ref.id) return fail('ArtifactCorrupted', `content hash is ${actual}, expected ${ref.id}`);
      if (unchanged) rememberVerified(ref.id, stamp, clock);
      return E.right(buffer);
    } catch (e) {
      return fail('ArtifactUnreadable', `cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    } finally {
      await handle.close();
    }
  };

  // The store's folder with its separator, normalized once: a valid id is joined to it as it is.
  const shardsRoot = path.join(dir, '_').slice(0, -1);
  const present = async (refs: readonly ArtifactRef[]): Promise<boolean[]> =>
    refs.map((ref) => {
      if (ref.id === EMPTY_ARTIFACT_ID) return true;
      if (!VALID_ID.test(ref.id) || !madeBy(hashing, ref.id)) return false;
      // An unusable shard (a file where its folder should be: ENOTDIR) means the artifact is not there.
      try {
        return fs.statSync(`${shardsRoot}${ref.id.slice(0, 2)}${path.sep}${ref.id}`, { throwIfNoEntry: false })?.size === ref.size;
      } catch {
        return false;
      }
    });

  const remove = async (id: string): Promise<void> => {
    if (id === EMPTY_ARTIFACT_ID) return;
    verified.delete(id);
    await fs.promises.rm(fileOf(id), { force: true }); // an invalid id is a caller's bug: fileOf rejects it
  };

  const list = async (): Promise<Array<{ readonly id: string; readonly size: number; readonly writtenAt: number }>> => {
    const found: Array<{ readonly id: string; readonly size: number; readonly writtenAt: number }> = [];
    let shards: string[];
    try {
      shards = await fs.promises.readdir(dir);
    } catch {
      return found;
    }
    for (const shard of shards) {
      if (!/^[0-9a-f]{2}$/.test(shard)) continue;
      for (const id of await fs.promises.readdir(path.join(dir, shard)).catch(() => [] as string[])) {
        if (!VALID_ID.test(id) || id.slice(0, 2) !== shard) continue;
        const stats = await fs.promises.stat(path.join(dir, shard, id)).catch(() => undefined);
        if (stats?.isFile()) found.push({ id, size: stats.size, writtenAt: stats.mtimeMs });
      }
    }
    return found;
  };

  const sweepTemporary = async (olderThanMs: number): Promise<number> => {
    let removed = 0;
    for (const name of await fs.promises.readdir(tmpDir).catch(() => [] as string[])) {
      const file = path.join(tmpDir, name);
      const stats = await fs.promises.stat(file).catch(() => undefined);
      if (stats !== undefined && Date.now() - stats.mtimeMs > olderThanMs) {
        await fs.promises.rm(file, { force: true });
        removed++;
      }
    }
    return removed;
  };

  const idOf = artifactIdOf(hashing);

  return Object.freeze({ put, putNow, idOf, get, present, remove, list, sweepTemporary, locate: (id: string) => (id === EMPTY_ARTIFACT_ID ? '(empty)' : fileOf(id)) });
};
