/**
 * Read-only stores: a store this process may not write (a shared read-only mount, a CI cache
 * restored read-only), or one the runner's `readOnly` option keeps as it is. Reads go to the
 * store; nothing is written to it: cache entries and run records are dropped, and the artifacts a
 * run writes are kept in its memory, so that its later steps and its outputs load them. A write
 * the store refuses as not permitted (a read-only file, a database role without INSERT) turns
 * the same mode on.
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import type { ContentHashing } from '../hash/hashers';
import type { ArtifactRef, ArtifactStore } from './artifact-store';
import type { StoreLayout } from './layout';
import type { MetadataStore } from './metadata-store';

// model

/**
 * Whether a runner's store is read-only, and why (a sentence naming the folder, the file or the
 * option): known when the store opens, or learnt from the first write it refuses.
 *
 * @example
 * const mode = readOnlyMode(undefined);
 * mode.enter('the readOnly option is set');
 * mode.why(); // 'the readOnly option is set'
 */
export interface ReadOnlyMode {
  /** Why the store is read-only, `undefined` while it is writable. */
  why(): string | undefined;
  /** The store is read-only from now on (the first reason stays). */
  enter(why: string): void;
}

/**
 * A read-only mode, read-only from the start when `why` is given.
 *
 * @example
 * readOnlyMode('the store folder /mnt/cache is read-only').why(); // 'the store folder ...'
 */
export const readOnlyMode = (why: string | undefined): ReadOnlyMode => {
  let reason = why;
  return { why: () => reason, enter: (w) => void (reason ??= w) };
};

// detection

/**
 * The error codes of a write refused for want of permission: file systems (`EACCES`, `EPERM`,
 * `EROFS`), SQLite (`SQLITE_READONLY`), PostgreSQL (`42501` insufficient privilege, `25006`
 * read-only transaction).
 */
const REFUSED_CODES: ReadonlySet<string> = new Set(['EACCES', 'EPERM', 'EROFS', 'SQLITE_READONLY', 'SQLITE_PERM', '42501', '25006']);

/**
 * Whether an error is a write refused for want of permission (not a failure of the store).
 *
 * @example
 * isWriteRefused(Object.assign(new Error('permission denied for table keyv'), { code: '42501' })); // true
 */
export const isWriteRefused = (e: unknown): boolean => {
  for (let cause = e, depth = 0; typeof cause === 'object' && cause !== null && depth < 5; cause = (cause as { cause?: unknown }).cause, depth++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string' && REFUSED_CODES.has(code)) return true;
  }
  return false;
};

/** Why this process may not write `file` (a folder or a file), or `undefined` when it may, or when it is not there. */
const unwritable = async (file: string, what: string): Promise<string | undefined> => {
  try {
    await fs.promises.access(file, fs.constants.W_OK);
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? undefined : `the ${what} ${file} is not writable by this process (${code ?? String(e)})`;
  }
};

/**
 * Why this process may not write the embedded store in `layout` (its folder, metadata file,
 * artifact folder, lock folder or fingerprint file), or `undefined` when it may write all of it.
 * `parts` says which parts are the embedded ones (a store given in the options is not checked).
 *
 * @example
 * await unwritableStore(storeLayout('/mnt/cache'), { metadata: true, artifacts: true });
 * // 'the store folder /mnt/cache is not writable by this process (EACCES)'
 */
export const unwritableStore = async (layout: StoreLayout, parts: { readonly metadata: boolean; readonly artifacts: boolean }): Promise<string | undefined> => {
  const checks: Array<readonly [string, string]> = [
    [layout.dir, 'store folder'],
    ...(parts.metadata ? ([[layout.metadataFile, 'metadata file']] as const) : []),
    ...(parts.artifacts ? ([[layout.artifactsDir, 'artifact folder']] as const) : []),
    [layout.locksDir, 'lock folder'],
  ];
  for (const [file, what] of checks) {
    const why = await unwritable(file, what);
    if (why !== undefined) return why;
  }
  return undefined;
};

/**
 * A private copy of an SQLite database this process may not write (SQLite cannot even read a
 * database in write-ahead mode from a folder where it may not create its shared-memory file),
 * and the way to remove it. The copy is read, never written back.
 *
 * @example
 * const copy = await readableCopyOf('/mnt/cache/metadata.sqlite');
 * // ... open copy.file ...
 * await copy.remove();
 */
export const readableCopyOf = async (file: string): Promise<{ readonly file: string; readonly remove: () => Promise<void> }> => {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'stepcache-read-only-'));
  const copy = path.join(dir, path.basename(file));
  for (const suffix of ['', '-wal']) {
    await fs.promises.copyFile(`${file}${suffix}`, `${copy}${suffix}`, fs.constants.COPYFILE_FICLONE).catch((e: unknown) => {
      if (suffix === '' || (e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    });
  }
  return { file: copy, remove: () => fs.promises.rm(dir, { recursive: true, force: true }) };
};

// the stores, read-only

/**
 * A write that is not made while the store is read-only, and that turns the store read-only when
 * the store refuses it; `noticed` hears why, at every write not made.
 */
const writeUnlessReadOnly =
  (mode: ReadOnlyMode, noticed: (why: string) => void) =>
  async (write: () => Promise<void>): Promise<void> => {
    const before = mode.why();
    if (before !== undefined) return noticed(before);
    try {
      await write();
    } catch (e) {
      if (!isWriteRefused(e)) throw e;
      mode.enter(`the store refused a write (${e instanceof Error ? e.message : String(e)})`);
      noticed(mode.why() as string);
    }
  };

/**
 * A metadata store whose writes (entries, runs, deletions) are not made while `mode` is read-only;
 * a write it refuses as not permitted turns `mode` read-only. Reads are the store's.
 *
 * @example
 * const metadata = readOnlyMetadataStore(store, readOnlyMode('the readOnly option is set'), (why) => console.warn(why));
 */
export const readOnlyMetadataStore = (store: MetadataStore, mode: ReadOnlyMode, noticed: (why: string) => void): MetadataStore => {
  const write = writeUnlessReadOnly(mode, noticed);
  // Every method delegated by name: a store may be a class instance, whose methods a spread would lose.
  return Object.freeze({
    getEntries: (keys: readonly string[]) => store.getEntries(keys),
    getLatestEntries: (pipeline: string, steps: readonly string[]) => store.getLatestEntries(pipeline, steps),
    getLatestEntriesOfSteps: (steps: readonly string[]) => store.getLatestEntriesOfSteps(steps),
    ...(store.getLatestHeadsOfSteps === undefined
      ? {}
      : { getLatestHeadsOfSteps: (steps: readonly string[]) => (store.getLatestHeadsOfSteps as NonNullable<MetadataStore['getLatestHeadsOfSteps']>).call(store, steps) }),
    listEntries: () => store.listEntries(),
    readRun: (id: string) => store.readRun(id),
    getRun: (id: string) => store.getRun(id),
    listRuns: (...args: Parameters<MetadataStore['listRuns']>) => store.listRuns(...args),
    listRunSummaries: (...args: Parameters<MetadataStore['listRunSummaries']>) => store.listRunSummaries(...args),
    findRunIds: (prefix: string, limit: number) => store.findRunIds(prefix, limit),
    lastUsed: (keys: readonly string[]) => store.lastUsed(keys),
    findDamaged: () => store.findDamaged(),
    close: () => store.close(),
    ...(store.stepLock === undefined ? {} : { stepLock: () => (store.stepLock as NonNullable<MetadataStore['stepLock']>).call(store) }),
    putEntry: (...args: Parameters<MetadataStore['putEntry']>) => write(() => store.putEntry(...args)),
    deleteEntries: (...args: Parameters<MetadataStore['deleteEntries']>) => write(() => store.deleteEntries(...args)),
    putRun: (...args: Parameters<MetadataStore['putRun']>) => write(() => store.putRun(...args)),
    deleteRuns: (...args: Parameters<MetadataStore['deleteRuns']>) => write(() => store.deleteRuns(...args)),
    dropDamaged: (...args: Parameters<MetadataStore['dropDamaged']>) => write(() => store.dropDamaged(...args)),
  });
};

/**
 * An artifact store whose writes, while `mode` is read-only, are kept in memory (named by
 * `hashing`, as the store names contents) and read back from there: the artifacts of one run.
 * A write it refuses as not permitted turns `mode` read-only. Nothing is removed while read-only.
 *
 * @example
 * const artifacts = readOnlyArtifactStore(store, contentHashing(undefined), mode, (why) => console.warn(why));
 */
export const readOnlyArtifactStore = (store: ArtifactStore, hashing: ContentHashing, mode: ReadOnlyMode, noticed: (why: string) => void): ArtifactStore => {
  const kept = new Map<string, Buffer>();
  const write = writeUnlessReadOnly(mode, noticed);
  const keep = async (bytes: Uint8Array): Promise<string> => {
    const hasher = await hashing.create();
    hasher.update(bytes);
    const id = hasher.digest();
    kept.set(id, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    return id;
  };
  const isKept = (ref: ArtifactRef): boolean => kept.get(ref.id)?.byteLength === ref.size;
  return Object.freeze({
    put: async (bytes: Uint8Array) => {
      let id: string | undefined;
      await write(async () => void (id = await store.put(bytes)));
      return id ?? keep(bytes);
    },
    // At once only while the store may be written: when it is read-only (or refuses this write), the
    // caller copies the bytes and `put` keeps the copy in memory.
    putNow:
      store.putNow === undefined
        ? undefined
        : (bytes: Uint8Array) => {
            if (mode.why() !== undefined) return undefined;
            try {
              return store.putNow?.(bytes);
            } catch (e) {
              if (!isWriteRefused(e)) throw e;
              mode.enter(`the store refused a write (${e instanceof Error ? e.message : String(e)})`);
              return undefined;
            }
          },
    idOf: store.idOf,
    get: async (ref: ArtifactRef) => (isKept(ref) ? E.right(kept.get(ref.id) as Buffer) : store.get(ref)),
    present: async (refs: readonly ArtifactRef[]) => {
      const found = await store.present(refs);
      return refs.map((ref, i) => found[i] === true || isKept(ref));
    },
    remove: (id: string) => write(() => store.remove(id)),
    locate: (id: string) => (kept.has(id) ? `(kept in memory: the store is read-only) ${id}` : store.locate(id)),
    list: () => store.list(),
    sweepTemporary: async (olderThanMs: number) => {
      let swept = 0;
      await write(async () => void (swept = await store.sweepTemporary(olderThanMs)));
      return swept;
    },
  });
};

