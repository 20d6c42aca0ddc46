/**
 * Looking after the cache: list entries (by step, age and size), prune them (least recently used
 * first), clear everything, and collect artifacts no entry refers to. Entries go first, artifacts
 * after, and artifacts written recently are kept even when nothing refers to them yet: a run in
 * progress writes its artifacts before their entry. So metadata and artifacts stay consistent,
 * also while a run is going on.
 *
 * @packageDocumentation
 */
import { parseDuration } from '../format/duration';
import { preview } from '../format/preview';
import type { ArtifactStore } from '../store/artifact-store';
import type { MetadataStore } from '../store/metadata-store';
import type { CacheEntry } from '../store/records';
import { storedArtifacts } from '../store/inline';

// model

/**
 * One cache entry as `runner.cache.list()` shows it.
 *
 * @example
 * const info: CacheEntryInfo = { key: 'ab…', pipeline: 'p', step: 'svc_trainer', runId: 'r1', createdAt: '2026-11-23T10:00:00.000Z', lastUsedAt: '2026-11-23T12:00:00.000Z', ageMs: 7200000, bytes: 1024 };
 */
export interface CacheEntryInfo {
  readonly key: string;
  readonly pipeline: string;
  readonly step: string;
  /** The run that produced it. */
  readonly runId: string;
  readonly createdAt: string;
  /** The start of the latest run that used it (produced or served it). */
  readonly lastUsedAt: string;
  /** Milliseconds since it was last used. */
  readonly ageMs: number;
  /** The bytes of its outputs (those kept inside the entry included). */
  readonly bytes: number;
}

/**
 * What to prune. Filters combine: `{ step, olderThan }` prunes that step's entries unused for that
 * long. `maxBytes` then evicts least recently used entries until the artifacts of the rest fit.
 *
 * @example
 * await runner.cache.prune({ olderThan: '30d', maxBytes: 10 * 2 ** 30 });
 */
export interface PruneOptions {
  /** Entries not used for this long: milliseconds, or a duration like `'7d'`. */
  readonly olderThan?: number | string;
  /** Only this step's entries. */
  readonly step?: string;
  /** Only this pipeline's entries. */
  readonly pipeline?: string;
  /**
   * Evict least recently used entries (of those last used at once, the biggest first) until the
   * remaining stored artifacts take at most this many bytes. Outputs kept inside their entries
   * take none: an entry made only of them is never evicted for room.
   */
  readonly maxBytes?: number;
  /** Unreferenced artifacts and temporary files younger than this are kept (a run may be writing them). @default 600000 */
  readonly graceMs?: number;
}

/**
 * What a prune or clear removed.
 *
 * @example
 * const report: PruneReport = { entries: 3, artifacts: 5, bytes: 80_000_000, remainingBytes: 1024 };
 */
export interface PruneReport {
  readonly entries: number;
  readonly artifacts: number;
  /** Bytes of the artifact files removed. */
  readonly bytes: number;
  /** Bytes of the artifacts still referenced. */
  readonly remainingBytes: number;
}

/**
 * `runner.cache`: list, prune, clear.
 *
 * @example
 * const entries = await runner.cache.list({ step: 'svc_trainer' });
 */
export interface CacheAdmin {
  /** Entries, most recently used first. */
  list(filter?: { readonly step?: string; readonly pipeline?: string }): Promise<CacheEntryInfo[]>;
  /** Removes the entries the options select, then every artifact no entry refers to. */
  prune(options?: PruneOptions): Promise<PruneReport>;
  /** Removes every entry and every artifact not being written right now. */
  clear(): Promise<PruneReport>;
}

/** Thrown at the edge for invalid prune options. */
export interface InvalidPruneOption {
  readonly field: keyof PruneOptions;
  readonly message: string;
}

const DEFAULT_GRACE_MS = 10 * 60 * 1000;

// helpers

/** The artifacts of an entry that take room in the artifact store: inline outputs live in the entry itself. */
const artifactsOf = (entry: CacheEntry) => storedArtifacts(Object.values(entry.outputs));

const uniqueBytes = (entries: readonly CacheEntry[]): number => {
  const sizes = new Map<string, number>();
  for (const e of entries) for (const d of artifactsOf(e)) sizes.set(d.id, d.size);
  let total = 0;
  for (const size of sizes.values()) total += size;
  return total;
};

/**
 * Checks prune options, naming the field at fault.
 *
 * @example
 * validatePruneOptions({ olderThan: 'soon' }); // { field: 'olderThan', message: '...' }
 */
export const validatePruneOptions = (options: PruneOptions): InvalidPruneOption | undefined => {
  if (options.olderThan !== undefined && parseDuration(options.olderThan) === undefined) {
    return { field: 'olderThan', message: `Invalid prune option olderThan: got ${preview(options.olderThan)}, expected milliseconds (0 or more) or a duration like '12h' or '30d'.` };
  }
  for (const field of ['maxBytes', 'graceMs'] as const) {
    const value = options[field];
    if (value !== undefined && !(typeof value === 'number' && Number.isFinite(value) && value >= 0)) {
      return { field, message: `Invalid prune option ${field}: got ${preview(value)}, expected a number of 0 or more.` };
    }
  }
  for (const field of ['step', 'pipeline'] as const) {
    const value = options[field];
    if (value !== undefined && (typeof value !== 'string' || value === '')) {
      return { field, message: `Invalid prune option ${field}: expected a ${field} name.` };
    }
  }
  const known = ['olderThan', 'step', 'pipeline', 'maxBytes', 'graceMs'];
  const unknown = Object.keys(options).find((k) => !known.includes(k));
  return unknown === undefined ? undefined : { field: unknown as keyof PruneOptions, message: `Unknown prune option ${unknown}; known options: ${known.join(', ')}.` };
};

/**
 * The prune rule's filters, before `maxBytes`: an entry goes when it is of the step and the
 * pipeline asked for and has not been used for longer than `olderThan`; with none of these
 * filters, no entry goes.
 *
 * @example
 * const selected = selectedForPruning({ step: 'svc_trainer', olderThan: '7d' });
 * selected({ step: 'svc_trainer', pipeline: 'p' }, 8 * 86_400_000); // true
 * selected({ step: 'loader', pipeline: 'p' }, 8 * 86_400_000); // false
 */
export const selectedForPruning = (options: PruneOptions): ((entry: Pick<CacheEntry, 'step' | 'pipeline'>, ageMs: number) => boolean) => {
  const olderThan = options.olderThan === undefined ? undefined : parseDuration(options.olderThan);
  const filtered = options.olderThan !== undefined || options.step !== undefined || options.pipeline !== undefined;
  return (entry, ageMs) =>
    filtered &&
    (options.step === undefined || entry.step === options.step) &&
    (options.pipeline === undefined || entry.pipeline === options.pipeline) &&
    (olderThan === undefined || ageMs > olderThan);
};

// the admin

/**
 * Cache maintenance over a metadata store and an artifact store.
 *
 * @example
 * const admin = createCacheAdmin(async () => ({ metadata, artifacts }));
 * await admin.prune({ step: 'importer_mnist' });
 */
export const createCacheAdmin = (stores: () => Promise<{ readonly metadata: MetadataStore; readonly artifacts: ArtifactStore }>): CacheAdmin => {
  /** When each entry was last used: the start of the latest run that produced or served its key. */
  const lastUse = async (metadata: MetadataStore, entries: readonly CacheEntry[]): Promise<Map<string, number>> => {
    const used = new Map(entries.map((e) => [e.key, e.createdAt]));
    for (const [key, at] of await metadata.lastUsed(entries.map((e) => e.key))) {
      if ((used.get(key) ?? Infinity) < at) used.set(key, at);
    }
    return used;
  };

  const info = (e: CacheEntry, used: Map<string, number>, now: number): CacheEntryInfo => {
    const last = used.get(e.key) ?? e.createdAt;
    return {
      key: e.key,
      pipeline: e.pipeline,
      step: e.step,
      runId: e.runId,
      createdAt: new Date(e.createdAt).toISOString(),
      lastUsedAt: new Date(last).toISOString(),
      ageMs: Math.max(0, now - last),
      bytes: Object.values(e.outputs).reduce((sum, d) => sum + d.size, 0), // inline outputs included: what the outputs weigh
    };
  };

  const collectArtifacts = async (metadata: MetadataStore, artifacts: ArtifactStore, graceMs: number, temporaryGraceMs: number): Promise<{ artifacts: number; bytes: number; remainingBytes: number }> => {
    const remaining = await metadata.listEntries();
    const referenced = new Set(remaining.flatMap((e) => artifactsOf(e).map((d) => d.id)));
    const now = Date.now();
    let count = 0;
    let bytes = 0;
    for (const a of await artifacts.list()) {
      if (referenced.has(a.id) || now - a.writtenAt < graceMs) continue;
      await artifacts.remove(a.id);
      count++;
      bytes += a.size;
    }
    await artifacts.sweepTemporary(temporaryGraceMs);
    return { artifacts: count, bytes, remainingBytes: uniqueBytes(remaining) };
  };

  const prune = async (options: PruneOptions = {}): Promise<PruneReport> => {
    const { metadata, artifacts } = await stores();
    const entries = await metadata.listEntries();
    const used = await lastUse(metadata, entries);
    const now = Date.now();
    const selected = selectedForPruning(options);
    const doomed = new Set(entries.filter((e) => selected(e, now - (used.get(e.key) ?? e.createdAt))).map((e) => e.key));
    if (options.maxBytes !== undefined) {
      // Least recently used first, and of entries last used at once the one with the most bytes
      // stored. An entry whose outputs are all inside it holds no stored bytes: evicting it never
      // makes room, so it is kept.
      const stored = new Map(entries.map((e) => [e.key, artifactsOf(e).reduce((sum, d) => sum + d.size, 0)]));
      const kept = entries
        .filter((e) => !doomed.has(e.key) && (stored.get(e.key) ?? 0) > 0)
        .sort((a, b) => (used.get(a.key) ?? 0) - (used.get(b.key) ?? 0) || (stored.get(b.key) ?? 0) - (stored.get(a.key) ?? 0));
      while (kept.length > 0 && uniqueBytes(kept) > options.maxBytes) doomed.add((kept.shift() as CacheEntry).key);
    }
    const removed = entries.filter((e) => doomed.has(e.key));
    await metadata.deleteEntries(removed);
    const grace = options.graceMs ?? DEFAULT_GRACE_MS;
    const collected = await collectArtifacts(metadata, artifacts, grace, grace);
    return { entries: removed.length, ...collected };
  };

  return Object.freeze({
    list: async (filter: { readonly step?: string; readonly pipeline?: string } = {}) => {
      const { metadata } = await stores();
      const entries = (await metadata.listEntries()).filter((e) => (filter.step === undefined || e.step === filter.step) && (filter.pipeline === undefined || e.pipeline === filter.pipeline));
      const used = await lastUse(metadata, entries);
      const now = Date.now();
      return entries.map((e) => info(e, used, now)).sort((a, b) => a.ageMs - b.ageMs);
    },
    prune,
    clear: async () => {
      const { metadata, artifacts } = await stores();
      const entries = await metadata.listEntries();
      await metadata.deleteEntries(entries);
      // Every artifact goes; temporary files of writes in progress stay (removing them would fail those writes).
      // An entry a run writes after this point may refer to an artifact removed here: such an entry is a
      // miss (artifacts are checked before use and verified on load), never a wrong result.
      const collected = await collectArtifacts(metadata, artifacts, 0, DEFAULT_GRACE_MS);
      return { entries: entries.length, ...collected };
    },
  });
};
