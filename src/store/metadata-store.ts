/**
 * The metadata store: cache entries, the latest entry of each step, and run records.
 * The embedded default is keyv over SQLite (`<dir>/metadata.sqlite`); any keyv instance
 * (Redis, PostgreSQL, ...) can stand in for it.
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import Keyv from 'keyv';
import KeyvSqlite from '@keyv/sqlite';
import * as E from 'fp-ts/Either';
import type { StepLock } from '../lock/step-lock';
import { decodeCacheEntry, decodeRunRecord, decodeRunSummary, entryHead, reportingDamage, runSummary, type CacheEntry, type DamagedRecord, type EntryHead, type RunRecord, type RunSummary } from './records';
import { withLiveStatus } from './run-liveness';
import { openSqliteConnection } from './sqlite-connection';

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
   * What a hit needs of the latest entry of each step ({@link EntryHead}: no key components), as
   * {@link MetadataStore.getLatestEntriesOfSteps} finds it: what a run reads of every step up front,
   * a fraction of the bytes of whole entries. A store without it is read whole; a store that checks
   * entries whole (signed) leaves it out.
   */
  getLatestHeadsOfSteps?(steps: readonly string[]): Promise<ReadonlyArray<EntryHead | undefined>>;
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
  /**
   * Runs, most recent first (by start time), a page at a time: all of them without a query.
   * Damaged ones are skipped and reported. A running run whose owner is gone reads as `interrupted`.
   */
  listRuns(query?: RunQuery): Promise<RunRecord[]>;
  /** Summaries of runs, most recent first, from the run index: a page costs one read, whatever the records hold. */
  listRunSummaries(query?: RunQuery): Promise<RunSummary[]>;
  /** The ids of the runs that start with `prefix`, at most `limit` of them, in id order. */
  findRunIds(prefix: string, limit: number): Promise<string[]>;
  /** Removes runs (their records and their summaries); absent ids are ignored. */
  deleteRuns(ids: readonly string[]): Promise<void>;
  /**
   * When each key was last used by a recorded run (the start of the latest run that executed the
   * step or was served it, in milliseconds since the epoch); keys no run used are absent.
   */
  lastUsed(keys: readonly string[]): Promise<ReadonlyMap<string, number>>;
  /** Every stored row that does not decode (entries, latest-entry pointers, runs, run summaries), with the row it is in. */
  findDamaged(): Promise<DamagedRow[]>;
  /** Removes damaged rows found by {@link MetadataStore.findDamaged}. */
  dropDamaged(rows: readonly DamagedRow[]): Promise<void>;
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

/**
 * A page of runs: at most `limit`, started before the run `before` (the last of the previous
 * page), of one pipeline, with one status.
 *
 * @example
 * const first = await metadata.listRunSummaries({ limit: 20 });
 * const next = await metadata.listRunSummaries({ limit: 20, before: first[first.length - 1] });
 */
export interface RunQuery {
  /** @default all of them */
  readonly limit?: number | undefined;
  /** Only runs that sort after this one (started earlier; among runs started at once, smaller ids). */
  readonly before?: Pick<RunSummary, 'startedAt' | 'id'> | undefined;
  readonly pipeline?: string | undefined;
  /** `interrupted` is derived: a page of them is read among the running runs. */
  readonly status?: RunRecord['status'] | undefined;
}

/**
 * @internal Whether a summary is on a page (its `limit` aside). Stores filter with it what their
 * index does not.
 */
export const onPage = (query: RunQuery) => (summary: Pick<RunSummary, 'startedAt' | 'id' | 'pipeline' | 'status'>): boolean =>
  (query.before === undefined || summary.startedAt < query.before.startedAt || (summary.startedAt === query.before.startedAt && summary.id < query.before.id)) &&
  (query.pipeline === undefined || summary.pipeline === query.pipeline) &&
  (query.status === undefined || summary.status === query.status);

/** @internal Most recent first: by start time, then by id. */
export const byRecency = (a: Pick<RunSummary, 'startedAt' | 'id'>, b: Pick<RunSummary, 'startedAt' | 'id'>): number =>
  a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : a.id < b.id ? 1 : a.id > b.id ? -1 : 0;

/**
 * A stored row that does not decode, and where it is (the store's own name for the row).
 *
 * @example
 * const row: DamagedRow = { _tag: 'DamagedRecord', record: 'run', id: 'r1', message: 'run r1 field status: ...', row: 'run:r1' };
 */
export interface DamagedRow extends DamagedRecord {
  readonly row: string;
}

// keys

const entryKey = (key: string): string => `entry:${key}`;
const latestKey = (pipeline: string, step: string): string => `latest:${pipeline}:${step}`;
const latestOfStepKey = (step: string): string => `latest-step:${step}`;
/**
 * The head of the latest entry of a step ({@link EntryHead}), written beside `latest-step:` in the
 * same statement and by the same rule (the newest stays): what a run reads of every step up front.
 */
const latestHeadKey = (step: string): string => `latest-head:${step}`;
const runKey = (id: string): string => `run:${id}`;
/** A run's row in the run index: keys sort by start time (ISO text sorts as time does), then by id. */
const runIndexKey = (summary: Pick<RunSummary, 'startedAt' | 'id'>): string => `runidx:${summary.startedAt}:${summary.id}`;
/** Set once the run index holds every run (runs recorded before there was one are added on first use). */
const RUN_INDEX_READY = 'meta:run-index';
/** When a key was last used by a run (one row per key, raised to each later use). */
const usedKey = (key: string): string => `used:${key}`;
/**
 * A finished run whose uses are not yet in the `used:` rows: where a store can raise rows in one
 * statement, a run writes this one row ({@link UnfoldedUses}), and its keys' `used:` rows are
 * raised from it when last uses are next read (or before the run is deleted).
 */
const unfoldedKey = (id: string): string => `uses:${id}`;

/**
 * The value of a `uses:` row: the run's start time and the keys it used, joined by spaces (keys
 * are hex digests), so folding reads this row and not the run's record. Rows written by earlier
 * versions hold only the start time (a number): their keys are read from the record.
 */
interface UnfoldedUses {
  readonly at: number;
  readonly keys: string;
}

const KEY_SEPARATOR = ' ';

/** A `uses:` row's value as written now, `undefined` for a row of an earlier version or a damaged one. */
const unfoldedUsesOf = (value: unknown): UnfoldedUses | undefined =>
  typeof value === 'object' && value !== null && 'at' in value && 'keys' in value && typeof value.at === 'number' && typeof value.keys === 'string' ? { at: value.at, keys: value.keys } : undefined;

/** The `uses:` row of a finished run. */
const unfoldedUses = (run: RunRecord): UnfoldedUses => ({ at: Date.parse(run.startedAt), keys: usesOf(run).join(KEY_SEPARATOR) });

/** Last uses raised in one statement at most. */
const USES_PER_RAISE = 8_192;

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

/** @internal The keys of the steps a run executed or was served from the cache. */
export const usesOf = (run: RunRecord): string[] => {
  const keys: string[] = [];
  for (const name in run.steps) {
    const s = run.steps[name];
    if (s?.key !== undefined && Object.hasOwn(run.steps, name) && (s.status === 'executed' || s.status === 'cached')) keys.push(s.key);
  }
  return keys;
};

/**
 * An entry and what a hit reads of it (its outputs) frozen, as a value the store may hand back to
 * readers of its row in this process.
 */
const frozenEntry = (entry: CacheEntry): CacheEntry => {
  if (Object.isFrozen(entry) && Object.isFrozen(entry.outputs)) return entry;
  const outputs: CacheEntry['outputs'] = Object.freeze(Object.fromEntries(Object.entries(entry.outputs).map(([name, d]) => [name, Object.isFrozen(d) ? d : Object.freeze({ ...d })])));
  return Object.freeze({ ...entry, outputs });
};

// implementations

/**
 * @internal Reads of key ranges that a keyv adapter can answer in one query (SQLite can): rows
 * whose key starts with `prefix`, in key order or reversed, as `[key without namespace, value]`.
 * Without one, the store walks every key with keyv's iterator.
 */
export interface KeyRangeReader {
  readonly range: (prefix: string, options: { readonly descending?: boolean; readonly limit?: number; readonly below?: string }) => Promise<Array<readonly [string, unknown]>>;
}

/** @internal A row to write: its key (without namespace), its value, and when it expires (keyv's ttl, from now). */
export interface StoreRow {
  readonly key: string;
  readonly value: unknown;
  readonly ttl?: number;
  /**
   * Written only where the stored row is not a record created later (a readable `createdAt`
   * greater than this value's): the newest stays. Only a {@link RowWriter} honours it.
   */
  readonly keepNewer?: true;
}

/**
 * @internal Writes that a keyv adapter can make in one statement (SQLite can): every row at once,
 * in one transaction, rows marked `keepNewer` compared with the stored ones in the same statement.
 * Without one, the store writes with keyv's `setMany`.
 */
export interface RowWriter {
  readonly setRows: (rows: readonly StoreRow[]) => Promise<void>;
  /** The values of rows by key (absent or expired: `undefined`), in one query whatever their number. */
  readonly getRows: (keys: readonly string[]) => Promise<unknown[]>;
  /** Sets rows of numbers to the given ones where these are greater (or the row is absent or not a number), in one statement. */
  readonly raiseRows: (rows: ReadonlyArray<{ readonly key: string; readonly value: number }>) => Promise<void>;
}

const iteratorRange =
  (keyv: Keyv): KeyRangeReader['range'] =>
  async (prefix, options) => {
    const rows: Array<readonly [string, unknown]> = [];
    if (keyv.iterator === undefined) return rows;
    for await (const [key, value] of keyv.iterator(undefined)) {
      if (typeof key === 'string' && key.startsWith(prefix) && (options.below === undefined || key < options.below)) rows.push([key, value]);
    }
    rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    if (options.descending === true) rows.reverse();
    return options.limit === undefined ? rows : rows.slice(0, options.limit);
  };

/**
 * A metadata store over any keyv instance.
 *
 * @example
 * import Keyv from 'keyv';
 * const metadata = createKeyvMetadataStore(new Keyv({ namespace: 'team' }));
 */
export const createKeyvMetadataStore = (keyv: Keyv, options: MetadataStoreOptions = {}): MetadataStore => keyvMetadataStore(keyv, options, undefined, undefined);

/** Entries written in one commit at most. */
const ENTRIES_PER_COMMIT = 512;

/**
 * How long after the start of a commit the next one gathers entries: a step executed meanwhile
 * waits at most this long more for its entry to be durable (and its key's lock to be released).
 */
const COMMIT_GATHER_MS = 4;

/** An entry waiting to be written, and who waits for it to be durable. */
interface QueuedEntry {
  readonly entry: CacheEntry;
  readonly options: PutEntryOptions;
  readonly durable: () => void;
  readonly failed: (e: unknown) => void;
}

const keyvMetadataStore = (keyv: Keyv, options: MetadataStoreOptions, reader: KeyRangeReader | undefined, writer: RowWriter | undefined): MetadataStore => {
  const range = reader?.range ?? iteratorRange(keyv);
  const setRows = writer?.setRows ?? (async (rows: readonly StoreRow[]) => void (await keyv.setMany([...rows])));
  const getMany = (keys: readonly string[]): Promise<unknown[]> => (writer === undefined ? getManyInBatches(keyv, keys) : writer.getRows(keys));
  // keyv re-emits store errors as events; the failing call rejects anyway, and an 'error' event
  // without a listener would crash the process.
  keyv.on('error', () => undefined);
  const usable = reportingDamage(options.onDamaged);
  // A row read again with the same text is the same parsed value (see `rowValues`): its entry is
  // decoded once. A damaged value is decoded (and found damaged) each time.
  const decoded = new WeakMap<object, CacheEntry>();
  const entryOf = (value: unknown, key: string | (() => string)): CacheEntry | undefined => {
    if (value === undefined || value === null) return undefined;
    const known = typeof value === 'object' ? decoded.get(value) : undefined;
    if (known !== undefined) return known;
    const entry = usable(decodeCacheEntry(value, typeof key === 'string' ? key : key()));
    if (entry !== undefined && typeof value === 'object') decoded.set(value, entry);
    return entry;
  };
  /** The head of an entry being written, known decoded: read back in this process (see `rowValues`), it is not decoded again. */
  const decodedHead = (entry: CacheEntry): EntryHead => {
    const head = entryHead(entry);
    decoded.set(head, head);
    return head;
  };
  const readRun = async (id: string): Promise<E.Either<DamagedRecord, RunRecord | undefined>> => {
    const value: unknown = await keyv.get(runKey(id));
    return value === undefined || value === null ? E.right(undefined) : E.map((run: RunRecord) => withLiveStatus(run))(decodeRunRecord(value, id));
  };
  /** The latest use of each key by finished runs, as of their start. */
  const lastUsesOf = (runs: readonly RunRecord[]): Map<string, number> => {
    const lastUses = new Map<string, number>();
    for (const run of runs) {
      if (run.status === 'running') continue;
      const at = Date.parse(run.startedAt);
      for (const key of usesOf(run)) lastUses.set(key, Math.max(lastUses.get(key) ?? at, at));
    }
    return lastUses;
  };
  /** The rows that index runs beside their records: each run's summary, and the keys it used. */
  const indexRowsOf = (runs: readonly RunRecord[]): StoreRow[] => {
    // The keys finished runs used, as of their start: what `cache ls` sorts by, without reading
    // every run. With a store that raises rows, one row per run says its uses are still to be
    // folded in (a run of ten thousand steps writes one row, not ten thousand); otherwise one row
    // per key, the latest use of the batch (a batch writes its rows in no particular order, so two
    // uses of one key must not both be written).
    const uses =
      writer === undefined
        ? [...lastUsesOf(runs)].map(([key, at]) => ({ key: usedKey(key), value: at }))
        : runs.filter((run) => run.status !== 'running').map((run) => ({ key: unfoldedKey(run.id), value: unfoldedUses(run) }));
    return [...uses, ...runs.map((run) => ({ key: runIndexKey(run), value: runSummary(run) }))];
  };
  const putRuns = async (runs: readonly RunRecord[]): Promise<void> => {
    if (runs.length === 0) return;
    await setRows([...indexRowsOf(runs), ...runs.map((run) => ({ key: runKey(run.id), value: run }))]);
  };
  /**
   * Raises the `used:` rows of the keys the runs not yet folded in used (all of them, or those
   * among `ids`), then removes their `uses:` rows. The keys are in the `uses:` rows; only a row
   * written by an earlier version (a start time alone) has its run's record read. Raising is
   * idempotent and never lowers a row, so two processes folding at once agree; a run recorded
   * again meanwhile writes its row again and is folded again.
   */
  const foldUses = async (ids?: readonly string[]): Promise<void> => {
    if (writer === undefined) return;
    const unfolded: Array<readonly [string, unknown]> =
      ids === undefined
        ? (await range('uses:', {})).map(([key, value]) => [key.slice('uses:'.length), value] as const)
        : (await getMany(ids.map(unfoldedKey))).flatMap((value, i) => (value === undefined || value === null ? [] : [[ids[i] as string, value] as const]));
    if (unfolded.length === 0) return;
    const lastUses = new Map<string, number>();
    const raise = (key: string, at: number): void => {
      const known = lastUses.get(key);
      if (known === undefined || known < at) lastUses.set(key, at);
    };
    const legacy: string[] = [];
    for (const [id, value] of unfolded) {
      const uses = unfoldedUsesOf(value);
      if (uses === undefined) legacy.push(id);
      else if (uses.keys !== '') for (const key of uses.keys.split(KEY_SEPARATOR)) raise(key, uses.at);
    }
    for (let i = 0; i < legacy.length; i += BATCH) {
      const batch = legacy.slice(i, i + BATCH);
      const records = await getMany(batch.map(runKey));
      const runs = records.flatMap((value, j) => {
        const run = value === undefined || value === null ? undefined : usable(decodeRunRecord(value, batch[j] as string));
        return run === undefined ? [] : [run];
      });
      for (const [key, at] of lastUsesOf(runs)) raise(key, at);
    }
    const rows = [...lastUses].map(([key, at]) => ({ key: usedKey(key), value: at }));
    for (let i = 0; i < rows.length; i += USES_PER_RAISE) await writer.raiseRows(rows.slice(i, i + USES_PER_RAISE));
    // Removed once raised: a fold cut short leaves them to be folded again.
    const folded = unfolded.map(([id]) => unfoldedKey(id));
    for (let i = 0; i < folded.length; i += USES_PER_RAISE) await keyv.deleteMany(folded.slice(i, i + USES_PER_RAISE));
  };
  /** Adds the runs recorded before the run index existed to it, once per store. */
  let indexed: Promise<void> | undefined;
  const indexReady = (): Promise<void> =>
    (indexed ??= (async () => {
      if ((await keyv.get(RUN_INDEX_READY)) !== undefined) return;
      const runs: RunRecord[] = [];
      for (const [key, value] of await range('run:', {})) {
        const run = value === undefined || value === null ? undefined : usable(decodeRunRecord(value, key.slice('run:'.length)));
        if (run) runs.push(run);
      }
      // Only the runs without an index row (recorded before there was an index) are indexed, and
      // their records are never written back: one read here may be older than the record by now (a
      // run that finished meanwhile, in another process, would read as running again).
      const indexRows = await getMany(runs.map(runIndexKey));
      const unindexed = runs.filter((_, i) => indexRows[i] === undefined || indexRows[i] === null);
      // Oldest first, so that each key's last use is written last.
      unindexed.sort((a, b) => byRecency(b, a));
      for (let i = 0; i < unindexed.length; i += BATCH) await setRows(indexRowsOf(unindexed.slice(i, i + BATCH)));
      await keyv.set(RUN_INDEX_READY, { version: 1 });
    })().catch((e: unknown) => {
      indexed = undefined;
      throw e;
    }));
  const listRunSummaries = async (query: RunQuery = {}): Promise<RunSummary[]> => {
    await indexReady();
    const wanted = onPage(query);
    const summaries: RunSummary[] = [];
    // Pages of the index, newest first, until the query's page is full: filters may skip rows.
    let below = query.before === undefined ? undefined : runIndexKey(query.before);
    const limit = query.limit ?? Number.POSITIVE_INFINITY;
    const chunk = query.pipeline === undefined && query.status === undefined ? Math.min(limit, 1000) : 1000;
    for (;;) {
      const rows = await range('runidx:', { descending: true, limit: chunk, ...(below === undefined ? {} : { below }) });
      for (const [key, value] of rows) {
        const summary = value === undefined || value === null ? undefined : usable(decodeRunSummary(value, key.slice(key.lastIndexOf(':') + 1)));
        if (summary === undefined) continue;
        const live = withLiveStatus(summary);
        if (wanted(live)) summaries.push(live);
        if (summaries.length >= limit) return summaries;
      }
      const last = rows[rows.length - 1];
      if (last === undefined || rows.length < chunk) return summaries;
      below = last[0];
    }
  };
  /**
   * The rows that record a batch of entries, in order: each is inserted if its key has none (an
   * expired or unreadable one counts as absent) or replaces it, and becomes the latest of its step
   * unless a newer one is. One read for the whole batch, then one write.
   */
  /**
   * An entry's own row, unless it is past its expiry: it expires ttlMs after it was created (keyv
   * counts from now), so one already past it is absent.
   */
  const ownRowOf = (entry: CacheEntry, put: PutEntryOptions): StoreRow | undefined => {
    const ttl = put.ttlMs === undefined ? undefined : entry.createdAt + put.ttlMs - Date.now();
    return ttl === undefined || ttl > 0 ? { key: entryKey(entry.key), value: entry, ...(ttl === undefined ? {} : { ttl }) } : undefined;
  };
  /** The latest of its pipeline's step: the last written. */
  const pipelineLatestRowOf = (entry: CacheEntry): StoreRow => ({ key: latestKey(entry.pipeline, entry.step), value: entry });
  /**
   * The latest entry of its step, whichever pipeline made it, and its head. It is kept whole, so
   * one batched read at the start of a run finds it, and never expires, so a later miss can still
   * say what changed. `keepNewer`: unless the stored one is newer (compared as the rows are written).
   */
  const stepLatestRowsOf = (entry: CacheEntry, keepNewer: boolean): StoreRow[] => {
    const newer = keepNewer ? { keepNewer: true as const } : {};
    return [
      { key: latestOfStepKey(entry.step), value: entry, ...newer },
      { key: latestHeadKey(entry.step), value: decodedHead(entry), ...newer },
    ];
  };
  const entryRows = async (batch: readonly QueuedEntry[]): Promise<StoreRow[]> => {
    if (writer !== undefined && batch.every(({ options: put }) => put.replace === true)) return replacingRows(batch);
    const keys = [...new Set(batch.flatMap(({ entry }) => [entryKey(entry.key), latestOfStepKey(entry.step)]))];
    const values = await getMany(keys);
    const current = new Map<string, unknown>(keys.map((k, i) => [k, values[i]]));
    const rows = new Map<string, StoreRow>();
    const add = (row: StoreRow): void => void rows.set(row.key, row);
    for (const { entry, options: put } of batch) {
      if (put.replace !== true && entryOf(current.get(entryKey(entry.key)), entry.key) !== undefined) continue;
      // Several pipelines write the latest of one step: the newest stays it, whichever came last.
      const newest = entryOf(current.get(latestOfStepKey(entry.step)), `latest of step ${entry.step}`);
      const own = ownRowOf(entry, put);
      if (own !== undefined) {
        add(own);
        current.set(own.key, entry);
      }
      add(pipelineLatestRowOf(entry));
      if (newest === undefined || newest.createdAt <= entry.createdAt) {
        stepLatestRowsOf(entry, false).forEach(add);
        current.set(latestOfStepKey(entry.step), entry);
      }
    }
    return [...rows.values()];
  };
  /**
   * The rows of a batch of entries that each replace what their key holds, without reading the
   * store first: the last entry of each key, and the newest of each step as the latest of the
   * step unless the stored one is newer still (compared as the rows are written).
   */
  const replacingRows = (batch: readonly QueuedEntry[]): StoreRow[] => {
    const rows = new Map<string, StoreRow>();
    const add = (row: StoreRow): void => void rows.set(row.key, row);
    const newestOfStep = new Map<string, CacheEntry>();
    for (const { entry, options: put } of batch) {
      const own = ownRowOf(entry, put);
      if (own !== undefined) add(own);
      add(pipelineLatestRowOf(entry));
      const newest = newestOfStep.get(entry.step);
      if (newest === undefined || newest.createdAt <= entry.createdAt) newestOfStep.set(entry.step, entry);
    }
    for (const entry of newestOfStep.values()) stepLatestRowsOf(entry, true).forEach(add);
    return [...rows.values()];
  };
  // Group commit: entries put while a commit is being written wait for the next one, which writes
  // all of them at once. Commits follow each other, so concurrent writers of a key in this process
  // insert once. (Across processes, the step lock keeps writers of a key apart.) An entry put after
  // a pause is committed after the current job; one put within COMMIT_GATHER_MS of the start of the
  // last commit waits for the rest of that time, so that steps executed one after another share
  // commits instead of writing one each.
  const queued: QueuedEntry[] = [];
  let committing: Promise<void> | undefined;
  let lastCommitAt = Number.NEGATIVE_INFINITY;
  const gathered = (): Promise<void> => {
    const wait = lastCommitAt + COMMIT_GATHER_MS - performance.now();
    return new Promise<void>((next) => (wait > 0 ? setTimeout(next, wait) : setImmediate(next)));
  };
  const commitQueued = async (): Promise<void> => {
    while (queued.length > 0) {
      const batch = queued.splice(0, ENTRIES_PER_COMMIT);
      lastCommitAt = performance.now();
      try {
        await setRows(await entryRows(batch));
        for (const q of batch) {
          // Read back in this process (see `rowValues`), the entry written is the value decoded.
          decoded.set(q.entry, q.entry);
          q.durable();
        }
      } catch (e) {
        for (const q of batch) q.failed(e);
      }
      if (queued.length > 0) await gathered();
    }
    committing = undefined;
  };
  const putEntry = (entry: CacheEntry, put: PutEntryOptions = {}): Promise<void> =>
    new Promise<void>((durable, failed) => {
      // Frozen: the store may hand this very value back to later reads of its row.
      queued.push({ entry: frozenEntry(entry), options: put, durable, failed });
      // After the current job at least: entries put in the same turn share the commit.
      committing ??= gathered().then(commitQueued);
    });
  const store: MetadataStore = Object.freeze({
    getEntries: async (keys: readonly string[]) => {
      if (keys.length === 0) return [];
      const values = keys.length === 1 && writer === undefined ? [await keyv.get(entryKey(keys[0] as string))] : await getMany(keys.map(entryKey));
      return values.map((value, i) => entryOf(value, keys[i] as string));
    },
    getLatestEntries: async (pipeline: string, steps: readonly string[]) => {
      if (steps.length === 0) return [];
      const values = await getMany(steps.map((s) => latestKey(pipeline, s)));
      return values.map((value, i) => entryOf(value, `latest of ${pipeline}/${steps[i] as string}`));
    },
    getLatestEntriesOfSteps: async (steps: readonly string[]) => {
      if (steps.length === 0) return [];
      const values = await getMany(steps.map(latestOfStepKey));
      return values.map((value, i) => entryOf(value, `latest of step ${steps[i] as string}`));
    },
    getLatestHeadsOfSteps: async (steps: readonly string[]): Promise<ReadonlyArray<EntryHead | undefined>> => {
      if (steps.length === 0) return [];
      const heads: Array<EntryHead | undefined> = (await getMany(steps.map(latestHeadKey))).map((value, i) => entryOf(value, () => `latest head of step ${steps[i] as string}`));
      // A step whose latest entry was written before heads were (or whose head is damaged) is read whole.
      const whole = steps.filter((_, i) => heads[i] === undefined);
      if (whole.length === 0) return heads;
      const entries = new Map((await getMany(whole.map(latestOfStepKey))).map((value, i) => [whole[i] as string, entryOf(value, `latest of step ${whole[i] as string}`)]));
      return heads.map((head, i) => head ?? entries.get(steps[i] as string));
    },
    putEntry,
    listEntries: async () => {
      const entries: CacheEntry[] = [];
      for (const [key, value] of await range('entry:', {})) {
        const entry = entryOf(value, key.slice('entry:'.length));
        if (entry) entries.push(entry);
      }
      return entries.sort((a, b) => b.createdAt - a.createdAt || (a.key < b.key ? 1 : a.key > b.key ? -1 : 0));
    },
    deleteEntries: async (entries: readonly CacheEntry[]) => {
      if (entries.length === 0) return;
      const pointers = [...new Set(entries.flatMap((e) => [latestKey(e.pipeline, e.step), latestOfStepKey(e.step), latestHeadKey(e.step)]))];
      const latest = await getMany(pointers);
      const doomed = new Set(entries.map((e) => e.key));
      const stalePointers = pointers.filter((_, i) => {
        const entry = entryOf(latest[i], pointers[i] as string);
        return entry !== undefined && doomed.has(entry.key);
      });
      await keyv.deleteMany([...entries.map((e) => entryKey(e.key)), ...stalePointers]);
    },
    putRun: (run: RunRecord) => putRuns([run]),
    readRun,
    getRun: async (id: string) => usable(await readRun(id)),
    listRuns: async (query: RunQuery = {}) => {
      const summaries = await listRunSummaries(query);
      const values = await getMany(summaries.map((s) => runKey(s.id)));
      return values
        .map((value, i) => (value === undefined || value === null ? undefined : usable(decodeRunRecord(value, (summaries[i] as RunSummary).id))))
        .filter((r): r is RunRecord => r !== undefined)
        .map((r) => withLiveStatus(r));
    },
    listRunSummaries,
    lastUsed: async (keys: readonly string[]) => {
      await indexReady();
      await foldUses();
      const values = await getMany(keys.map(usedKey));
      const used = new Map<string, number>();
      values.forEach((value, i) => {
        if (typeof value === 'number') used.set(keys[i] as string, value);
      });
      return used;
    },
    findDamaged: async () => {
      const damaged: DamagedRow[] = [];
      const check = (row: string, decoded: E.Either<DamagedRecord, unknown>) => {
        if (E.isLeft(decoded)) damaged.push({ ...decoded.left, row });
      };
      for (const [key, value] of await range('entry:', {})) check(key, decodeCacheEntry(value, key.slice('entry:'.length)));
      for (const [key, value] of await range('latest:', {})) check(key, decodeCacheEntry(value, `latest of ${key.slice('latest:'.length).replace(':', '/')}`));
      for (const [key, value] of await range('latest-head:', {})) check(key, decodeCacheEntry(value, `latest head of step ${key.slice('latest-head:'.length)}`));
      for (const [key, value] of await range('run:', {})) check(key, decodeRunRecord(value, key.slice('run:'.length)));
      for (const [key, value] of await range('runidx:', {})) check(key, decodeRunSummary(value, key.slice(key.lastIndexOf(':') + 1)));
      for (const [key, value] of await range('used:', {})) {
        if (typeof value !== 'number') damaged.push({ _tag: 'DamagedRecord', record: 'cache entry', id: key.slice('used:'.length), message: `last use of cache entry ${key.slice('used:'.length)} is not a time`, row: key });
      }
      for (const [key, value] of await range('uses:', {})) {
        if (typeof value !== 'number' && unfoldedUsesOf(value) === undefined) damaged.push({ _tag: 'DamagedRecord', record: 'run', id: key.slice('uses:'.length), message: `uses of run ${key.slice('uses:'.length)}, to be recorded, are neither a start time nor a start time and keys`, row: key });
      }
      return damaged;
    },
    dropDamaged: async (rows: readonly DamagedRow[]) => {
      // A damaged run goes with its summary (deleteRuns finds it by id); other rows go alone.
      const runs = rows.filter((r) => r.row.startsWith('run:')).map((r) => r.row.slice('run:'.length));
      const others = rows.filter((r) => !r.row.startsWith('run:')).map((r) => r.row);
      await store.deleteRuns(runs);
      if (others.length > 0) await keyv.deleteMany(others);
    },
    findRunIds: async (prefix: string, limit: number) => {
      const rows = await range(runKey(prefix), { limit });
      return rows.map(([key]) => key.slice('run:'.length));
    },
    deleteRuns: async (ids: readonly string[]) => {
      if (ids.length === 0) return;
      // Their uses are kept: folded in from their records before these go.
      await foldUses(ids);
      const values = await getMany(ids.map(runKey));
      // The index row is named by the record; a damaged or missing record's row is looked for by its id.
      const indexKeys: string[] = [];
      const unnamed = new Set<string>();
      ids.forEach((id, i) => {
        const value = values[i];
        const decoded = value === undefined || value === null ? undefined : decodeRunRecord(value, id);
        if (decoded !== undefined && E.isRight(decoded)) indexKeys.push(runIndexKey(decoded.right));
        else unnamed.add(id);
      });
      if (unnamed.size > 0) {
        for (const [key] of await range('runidx:', {})) if (unnamed.has(key.slice(key.lastIndexOf(':') + 1))) indexKeys.push(key);
      }
      await keyv.deleteMany([...ids.map(runKey), ...indexKeys]);
    },
    close: async () => {
      await committing; // entries already put are written first
      await keyv.disconnect();
    },
  });
  return store;
};

/** A row's text as JSON, or the text itself when it is not JSON (it reaches the decoder as it is). */
const parsedRow = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
};

/** The value of a parsed row as keyv stored it (`{ value, expires }`): an expired row is absent. */
const liveValue = (stored: unknown): unknown => {
  if (typeof stored !== 'object' || stored === null || !('value' in stored)) return stored;
  const expires = 'expires' in stored ? stored.expires : undefined;
  return typeof expires === 'number' && expires < Date.now() ? undefined : stored.value;
};

/** The value of a row as keyv stored it (`{ value, expires }` as JSON); an expired or unreadable row is absent, an unreadable one reaches the decoder as its text. */
const storedValue = (text: string | null): unknown => (text === null ? undefined : liveValue(parsedRow(text)));

/** Rows whose parse is kept, at most: past it, the memory is cleared and rows are parsed anew. */
const PARSED_ROWS_KEPT = 50_000;
/** Only rows this short have their parse kept (entries are; whole run records are not). */
const PARSED_ROW_MAX_LENGTH = 16_384;

/**
 * The values of rows read by key, parsing only what changed: a row whose text is the one read (or
 * written) last time gives the same parsed value (so its decoding can be kept by identity). Rows
 * are always read, so a replaced or deleted row is seen; expiry is checked on every read.
 */
interface RowValues {
  /** The value of a row read with this text (`null`: absent). */
  readonly read: (key: string, text: string | null) => unknown;
  /**
   * Remembers that `text` is the JSON of `stored`, as this process wrote it: a read of the same text
   * gives `stored` without parsing. Harmless when the row was not written after all (a newer one
   * kept): its text is another one, which is parsed.
   */
  readonly wrote: (key: string, text: string, stored: unknown) => void;
}

const rowValues = (): RowValues => {
  const parsed = new Map<string, { readonly text: string; readonly stored: unknown }>();
  const keep = (key: string, text: string, stored: unknown): void => {
    if (text.length <= PARSED_ROW_MAX_LENGTH) {
      if (parsed.size >= PARSED_ROWS_KEPT) parsed.clear();
      parsed.set(key, { text, stored });
    } else parsed.delete(key);
  };
  return {
    read: (key, text) => {
      if (text === null) {
        parsed.delete(key);
        return undefined;
      }
      const known = parsed.get(key);
      if (known !== undefined && known.text === text) return liveValue(known.stored);
      const stored = parsedRow(text);
      keep(key, text, stored);
      return liveValue(stored);
    },
    wrote: keep,
  };
};

/**
 * The most rows one statement writes, binding each row's key, value and time (three values a row;
 * SQLite binds at most 32,766). A group commit of entries (4 rows each) fits.
 */
const ROWS_BOUND = 2_048;

/** The fewest places of a statement that binds rows. */
const ROW_PLACES_MIN = 4;

/**
 * The places of the statement that binds `rows` rows: the next power of two, so that a few
 * statements, kept prepared, serve writes of every size (the places left over bind nothing).
 */
const rowPlacesFor = (rows: number): number => {
  let places = ROW_PLACES_MIN;
  while (places < rows) places *= 2;
  return places;
};

/** When a record was created, if it says (a number), else `null`. */
const createdAtOf = (value: unknown): number | null => {
  const createdAt = typeof value === 'object' && value !== null ? (value as { readonly createdAt?: unknown }).createdAt : undefined;
  return typeof createdAt === 'number' ? createdAt : null;
};

/**
 * @internal The pragmas a connection to the store's SQLite file starts with. Write-ahead logging:
 * readers never block the writer, and a commit costs one sequential append; synchronous=NORMAL
 * keeps every commit atomic and the database consistent after a crash. Both come before any
 * other statement: a write made before would be synced on commit.
 *
 * A new database (no file yet, or an empty one) is switched to write-ahead logging with syncs off:
 * the switch writes the first page of an empty database through a rollback journal, which
 * synchronous=NORMAL syncs three times (the journal, its folder, the database), for a database
 * that holds nothing to protect yet (a crash then leaves it empty, or switched; a concurrent
 * opener finds it switched already, and its own switch writes nothing). A database that exists is
 * never written with syncs off.
 *
 * @example
 * sqlitePragmasFor('.stepcache/metadata.sqlite'); // ['PRAGMA synchronous=NORMAL', 'PRAGMA journal_mode=WAL'] for a store that exists
 */
export const sqlitePragmasFor = (file: string): readonly string[] => {
  const isNew = (fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0) === 0;
  return isNew ? ['PRAGMA synchronous=OFF', 'PRAGMA journal_mode=WAL', 'PRAGMA synchronous=NORMAL'] : ['PRAGMA synchronous=NORMAL', 'PRAGMA journal_mode=WAL'];
};

/**
 * The embedded default: keyv over SQLite in one file.
 *
 * @example
 * const metadata = createSqliteMetadataStore('.stepcache/metadata.sqlite', { onDamaged: (d) => console.warn(d.message) });
 */
export const createSqliteMetadataStore = (file: string, options: MetadataStoreOptions = {}): MetadataStore => {
  // keyv's SQLite adapter runs every statement through `query`, which is this connection's: it
  // keeps the statements it runs prepared. (The adapter's own connection is to an empty database
  // in memory, never used.)
  // Write-ahead logging with synchronous=NORMAL, set first: see sqlitePragmasFor.
  const table = 'keyv';
  const connection = openSqliteConnection(file, {
    busyTimeoutMs: 10_000,
    pragmas: sqlitePragmasFor(file),
    setup: [`CREATE TABLE IF NOT EXISTS ${table}(key VARCHAR(255) PRIMARY KEY, value TEXT )`],
  });
  const sqlite = new KeyvSqlite({ uri: 'sqlite://:memory:', table });
  const closeUnused = sqlite.close;
  sqlite.query = connection.query as typeof sqlite.query;
  sqlite.close = async () => {
    await Promise.all([connection.close(), closeUnused()]);
  };
  const namespace = 'stepcache';
  const valueOf = rowValues();
  // One query per page of a key range, on the table's primary key: keyv's own iterator reads
  // every row of the table, ten at a time.
  const reader: KeyRangeReader = {
    range: async (prefix, { descending = false, limit, below }) => {
      const from = `${namespace}:${prefix}`;
      const to = below === undefined ? `${from.slice(0, -1)}${String.fromCharCode(from.charCodeAt(from.length - 1) + 1)}` : `${namespace}:${below}`;
      const rows = (await sqlite.query(
        `SELECT key, value FROM ${table} WHERE key >= ? AND key < ? ORDER BY key ${descending ? 'DESC' : 'ASC'}${limit === undefined ? '' : ' LIMIT ?'}`,
        from,
        to,
        ...(limit === undefined ? [] : [limit]),
      )) as Array<{ key: string; value: string | null }>;
      return rows.map((row): readonly [string, unknown] => [row.key.slice(namespace.length + 1), storedValue(row.value)]);
    },
  };
  // Every row of a batch in one statement, so one transaction (keyv's setMany writes row by row,
  // a transaction each, and reports a failure only as an event).
  const writer: RowWriter = {
    // Rows matched to keys through a map: keyv's getMany searches the rows once per key.
    getRows: async (keys) => {
      if (keys.length === 0) return [];
      const named = keys.map((k) => `${namespace}:${k}`);
      // Each row comes with the position of its key in the list (no key text to read back, nor to match).
      const rows = (await sqlite.query(`SELECT j.key AS i, k.value FROM json_each(?) AS j JOIN ${table} AS k ON k.key = j.value`, JSON.stringify(named))) as Array<{
        i: number;
        value: string | null;
      }>;
      const texts: Array<string | null> = new Array<string | null>(keys.length).fill(null);
      for (const row of rows) texts[row.i] = row.value;
      return named.map((key, i) => valueOf.read(key, texts[i] ?? null));
    },
    raiseRows: async (rows) => {
      if (rows.length === 0) return;
      const pairs = rows.map((row) => [`${namespace}:${row.key}`, row.value]);
      // A row holds `{"value":<number>}` as keyv stores it; one that is absent, not a number or smaller is replaced.
      await sqlite.query(
        `INSERT INTO ${table} (key, value) SELECT json_extract(row.value, '$[0]'), json_object('value', json_extract(row.value, '$[1]')) FROM json_each(?) AS row WHERE true ` +
          `ON CONFLICT(key) DO UPDATE SET value = excluded.value WHERE CASE WHEN json_valid(${table}.value) THEN coalesce(json_type(${table}.value, '$.value'), '') NOT IN ('integer', 'real') OR json_extract(${table}.value, '$.value') < json_extract(excluded.value, '$.value') ELSE 1 END`,
        JSON.stringify(pairs),
      );
    },
    setRows: async (rows) => {
      if (rows.length === 0) return;
      const now = Date.now();
      // Each value written out as JSON once: bound as it is, or placed as JSON within the batch's JSON
      // text. An entry is the value of several rows (its own, the latest of its pipeline's step and of
      // its step): the rows that never expire share one text.
      const lasting = new Map<unknown, { readonly stored: { readonly value: unknown }; readonly text: string }>();
      const stored: unknown[] = [];
      const texts: string[] = [];
      for (const row of rows) {
        if (row.ttl !== undefined) {
          const value = { value: row.value, expires: now + row.ttl };
          stored.push(value);
          texts.push(JSON.stringify(value));
          continue;
        }
        let known = lasting.get(row.value);
        if (known === undefined) {
          const value = { value: row.value };
          known = { stored: value, text: JSON.stringify(value) };
          lasting.set(row.value, known);
        }
        stored.push(known.stored);
        texts.push(known.text);
      }
      // Once written, a read of the same text is the value written: no entry this process wrote is
      // parsed again. Only entries (frozen by `putEntry`): a run record is a value its writer may reuse.
      const written = (): void =>
        rows.forEach((row, i) => {
          if (row.key.startsWith('entry:') || row.key.startsWith('latest')) valueOf.wrote(`${namespace}:${row.key}`, texts[i] as string, stored[i]);
        });
      // A row marked keepNewer is left out where the stored row holds a record with a later createdAt.
      const storedIsNewer = `CASE WHEN json_valid(old.value) THEN coalesce(json_type(old.value, '$.value.createdAt') IN ('integer', 'real') AND json_extract(old.value, '$.value.createdAt') > r.column3, 0) ELSE 0 END`;
      // Each row bound as it is (its value's JSON is not escaped into a second JSON text for SQLite
      // to parse and write out again): its key, its value, and, when it is written only where the
      // stored one is not newer, its createdAt. Unused places are bound to nothing. A write of up to
      // ROWS_BOUND rows (every write the store makes: a group commit of entries at most) is one
      // statement, so one transaction; a bigger one would be several.
      for (let from = 0; from < rows.length; from += ROWS_BOUND) {
        const part = rows.slice(from, from + ROWS_BOUND);
        const places = rowPlacesFor(part.length);
        const bound: unknown[] = new Array<unknown>(places * 3).fill(null);
        part.forEach((row, i) => {
          bound[i * 3] = `${namespace}:${row.key}`;
          bound[i * 3 + 1] = texts[from + i];
          if (row.keepNewer === true) bound[i * 3 + 2] = createdAtOf(row.value);
        });
        await sqlite.query(
          `INSERT INTO ${table} (key, value) SELECT r.column1, r.column2 FROM (VALUES ${'(?, ?, ?), '.repeat(places - 1)}(?, ?, ?)) AS r LEFT JOIN ${table} AS old ON old.key = r.column1 ` +
            `WHERE r.column1 IS NOT NULL AND (r.column3 IS NULL OR old.key IS NULL OR NOT (${storedIsNewer})) ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
          ...bound,
        );
      }
      written();
    },
  };
  return keyvMetadataStore(
    new Keyv({
      store: sqlite,
      namespace,
      // Every record is plain JSON: skip the default serializer's Buffer revival, which is several times slower.
      serialize: JSON.stringify,
      deserialize: JSON.parse,
    }),
    options,
    reader,
    writer,
  );
};
