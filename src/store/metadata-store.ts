/**
 * The metadata store: cache entries, the latest entry of each step, and run records.
 * The embedded default is keyv over SQLite (`<dir>/metadata.sqlite`); any keyv instance
 * (Redis, PostgreSQL, ...) can stand in for it.
 *
 * @packageDocumentation
 */
import Keyv from 'keyv';
import KeyvSqlite from '@keyv/sqlite';
import * as E from 'fp-ts/Either';
import type { StepLock } from '../lock/step-lock';
import { decodeCacheEntry, decodeRunRecord, reportingDamage, type CacheEntry, type DamagedRecord, type RunRecord } from './records';

// model

/**
 * Where cache entries and runs are recorded.
 *
 * @example
 * const metadata = createKeyvMetadataStore(new Keyv());
 * await metadata.putEntry(entry);
 */
export interface MetadataStore {
  /** Entries by key, `undefined` where absent or damaged (a damaged one is reported, see {@link MetadataStoreOptions}). */
  getEntries(keys: readonly string[]): Promise<ReadonlyArray<CacheEntry | undefined>>;
  /** The most recent entry of each step of a pipeline, `undefined` where there is none. */
  getLatestEntries(pipeline: string, steps: readonly string[]): Promise<ReadonlyArray<CacheEntry | undefined>>;
  /**
   * The most recent entry of each step, whichever pipeline made it, `undefined` where there is
   * none: what a miss is explained against (a step used by several pipelines shares its keys). One
   * batched read for all the steps.
   */
  getLatestEntriesOfSteps(steps: readonly string[]): Promise<ReadonlyArray<CacheEntry | undefined>>;
  /**
   * Records an entry if its key has none (insert-if-absent: concurrent writers of a key never
   * overwrite each other, the first one wins). An expired or unreadable entry counts as absent;
   * `replace` overwrites a present one. The entry becomes the latest of its step.
   */
  putEntry(entry: CacheEntry, options?: PutEntryOptions): Promise<void>;
  /** Every cache entry, most recent first; damaged ones are skipped and reported. */
  listEntries(): Promise<CacheEntry[]>;
  /** Removes entries, and the latest-entry records that point at them. */
  deleteEntries(entries: readonly CacheEntry[]): Promise<void>;
  /** Records a run (again, as it progresses). */
  putRun(run: RunRecord): Promise<void>;
  /** A run by id: `Right(undefined)` when absent, `Left` naming the field at fault when damaged. */
  readRun(id: string): Promise<E.Either<DamagedRecord, RunRecord | undefined>>;
  /** A run by id, `undefined` when absent or damaged (a damaged one is reported). */
  getRun(id: string): Promise<RunRecord | undefined>;
  /** All runs, most recent first; damaged ones are skipped and reported. */
  listRuns(): Promise<RunRecord[]>;
  /** Closes the connection. */
  close(): Promise<void>;
  /**
   * The cross-process step lock that goes with a store shared by machines (PostgreSQL: advisory
   * locks in its schema), which a runner uses unless given another; absent for a store of one machine.
   */
  stepLock?(): StepLock;
}

/**
 * What {@link MetadataStore.putEntry} accepts.
 *
 * @example
 * const options: PutEntryOptions = { ttlMs: 86_400_000 };
 */
export interface PutEntryOptions {
  /** The entry expires (is absent) this long after its `createdAt`. */
  readonly ttlMs?: number | undefined;
  /** Overwrites the entry of the key if there is one: the caller saw it and rejected it (refresh, expired, artifacts missing). */
  readonly replace?: boolean | undefined;
}

// keys

const entryKey = (key: string): string => `entry:${key}`;
const latestKey = (pipeline: string, step: string): string => `latest:${pipeline}:${step}`;
const latestOfStepKey = (step: string): string => `latest-step:${step}`;
const runKey = (id: string): string => `run:${id}`;

/**
 * How a metadata store reports what it cannot use.
 *
 * @example
 * const options: MetadataStoreOptions = { onDamaged: (d) => console.warn(d.message) };
 */
export interface MetadataStoreOptions {
  /**
   * Hears once of each damaged record met (a row that does not decode), which is then read as
   * absent: a damaged entry is a miss, a damaged run is left out of listings.
   * @default ignore it
   */
  readonly onDamaged?: (damage: DamagedRecord) => void;
}

/**
 * Some keyv adapters match the rows of a batch read to the keys with a linear search per key,
 * so one huge batch costs O(n²); batches of a few dozen keep it linear.
 */
const BATCH = 64;
const getManyInBatches = async (keyv: Keyv, keys: readonly string[]): Promise<unknown[]> => {
  const batches: Promise<unknown[]>[] = [];
  for (let i = 0; i < keys.length; i += BATCH) batches.push(keyv.getMany(keys.slice(i, i + BATCH)));
  return (await Promise.all(batches)).flat();
};

// implementations

/**
 * A metadata store over any keyv instance.
 *
 * @example
 * import Keyv from 'keyv';
 * const metadata = createKeyvMetadataStore(new Keyv({ namespace: 'team' }));
 */
export const createKeyvMetadataStore = (keyv: Keyv, options: MetadataStoreOptions = {}): MetadataStore => {
  // keyv re-emits store errors as events; the failing call rejects anyway, and an 'error' event
  // without a listener would crash the process.
  keyv.on('error', () => undefined);
  const usable = reportingDamage(options.onDamaged);
  const entryOf = (value: unknown, key: string): CacheEntry | undefined => (value === undefined || value === null ? undefined : usable(decodeCacheEntry(value, key)));
  const readRun = async (id: string): Promise<E.Either<DamagedRecord, RunRecord | undefined>> => {
    const value: unknown = await keyv.get(runKey(id));
    return value === undefined || value === null ? E.right(undefined) : decodeRunRecord(value, id);
  };
  const writing = new Map<string, Promise<void>>();
  const oneAtATime = (key: string, write: () => Promise<void>): Promise<void> => {
    const next = (writing.get(key) ?? Promise.resolve()).then(write, write);
    const settled = next.catch(() => undefined);
    writing.set(key, settled);
    void settled.then(() => {
      if (writing.get(key) === settled) writing.delete(key);
    });
    return next;
  };
  return Object.freeze({
    getEntries: async (keys: readonly string[]) => {
      if (keys.length === 0) return [];
      const values = keys.length === 1 ? [await keyv.get(entryKey(keys[0] as string))] : await getManyInBatches(keyv, keys.map(entryKey));
      return values.map((value, i) => entryOf(value, keys[i] as string));
    },
    getLatestEntries: async (pipeline: string, steps: readonly string[]) => {
      if (steps.length === 0) return [];
      const values = await getManyInBatches(keyv, steps.map((s) => latestKey(pipeline, s)));
      return values.map((value, i) => entryOf(value, `latest of ${pipeline}/${steps[i] as string}`));
    },
    getLatestEntriesOfSteps: async (steps: readonly string[]) => {
      if (steps.length === 0) return [];
      const values = await getManyInBatches(keyv, steps.map(latestOfStepKey));
      return values.map((value, i) => entryOf(value, `latest of step ${steps[i] as string}`));
    },
    putEntry: (entry: CacheEntry, options: PutEntryOptions = {}) =>
      // Check and write one at a time per key, so concurrent writers in this process insert once.
      // (Across processes, the step lock keeps writers of a key apart.)
      oneAtATime(entry.key, async () => {
        const [stored, latestOfStep] = await keyv.getMany([entryKey(entry.key), latestOfStepKey(entry.step)]);
        if (options.replace !== true && entryOf(stored, entry.key) !== undefined) return;
        // Several pipelines write the latest of one step: the newest stays it, whichever came last.
        const newest = entryOf(latestOfStep, `latest of step ${entry.step}`);
        // The latest entry of a step is kept whole, so one batched read at the start of a run finds it;
        // it never expires, so a later miss can still say what changed.
        // An entry expires ttlMs after it was created (keyv counts from now): one already past it is absent.
        const ttl = options.ttlMs === undefined ? undefined : entry.createdAt + options.ttlMs - Date.now();
        await keyv.setMany([
          ...(ttl === undefined || ttl > 0 ? [{ key: entryKey(entry.key), value: entry, ...(ttl === undefined ? {} : { ttl }) }] : []),
          { key: latestKey(entry.pipeline, entry.step), value: entry },
          ...(newest !== undefined && newest.createdAt > entry.createdAt ? [] : [{ key: latestOfStepKey(entry.step), value: entry }]),
        ]);
      }),
    listEntries: async () => {
      const entries: CacheEntry[] = [];
      if (keyv.iterator === undefined) return entries;
      for await (const [key, value] of keyv.iterator(undefined)) {
        if (typeof key !== 'string' || !key.startsWith('entry:')) continue;
        const entry = entryOf(value, key.slice('entry:'.length));
        if (entry) entries.push(entry);
      }
      return entries.sort((a, b) => b.createdAt - a.createdAt || (a.key < b.key ? 1 : a.key > b.key ? -1 : 0));
    },
    deleteEntries: async (entries: readonly CacheEntry[]) => {
      if (entries.length === 0) return;
      const pointers = [...new Set(entries.flatMap((e) => [latestKey(e.pipeline, e.step), latestOfStepKey(e.step)]))];
      const latest = await getManyInBatches(keyv, pointers);
      const doomed = new Set(entries.map((e) => e.key));
      const stalePointers = pointers.filter((_, i) => {
        const entry = entryOf(latest[i], pointers[i] as string);
        return entry !== undefined && doomed.has(entry.key);
      });
      await keyv.deleteMany([...entries.map((e) => entryKey(e.key)), ...stalePointers]);
    },
    putRun: async (run: RunRecord) => {
      await keyv.set(runKey(run.id), run);
    },
    readRun,
    getRun: async (id: string) => usable(await readRun(id)),
    listRuns: async () => {
      const runs: RunRecord[] = [];
      if (keyv.iterator === undefined) return runs;
      for await (const [key, value] of keyv.iterator(undefined)) {
        if (typeof key !== 'string' || !key.startsWith('run:')) continue;
        const run = value === undefined || value === null ? undefined : usable(decodeRunRecord(value, key.slice('run:'.length)));
        if (run) runs.push(run);
      }
      return runs.sort((a, b) => b.startedAt.localeCompare(a.startedAt) || b.id.localeCompare(a.id));
    },
    close: async () => {
      await keyv.disconnect();
    },
  });
};

/**
 * The embedded default: keyv over SQLite in one file.
 *
 * @example
 * const metadata = createSqliteMetadataStore('.stepcache/metadata.sqlite', { onDamaged: (d) => console.warn(d.message) });
 */
export const createSqliteMetadataStore = (file: string, options: MetadataStoreOptions = {}): MetadataStore => {
  const sqlite = new KeyvSqlite({ uri: `sqlite://${file}`, busyTimeout: 10_000 });
  // Write-ahead logging: readers never block the writer, and a commit costs one sequential append.
  // synchronous=NORMAL keeps every commit atomic and the database consistent after a crash.
  void sqlite.query('PRAGMA journal_mode=WAL').then(() => sqlite.query('PRAGMA synchronous=NORMAL')).catch(() => undefined);
  return createKeyvMetadataStore(
    new Keyv({
      store: sqlite,
      namespace: 'stepcache',
      // Every record is plain JSON: skip the default serializer's Buffer revival, which is several times slower.
      serialize: JSON.stringify,
      deserialize: JSON.parse,
    }),
    options,
  );
};
