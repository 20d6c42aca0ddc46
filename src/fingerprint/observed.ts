/**
 * What a fingerprint observed of the world, and how to tell later whether it still holds: the
 * files it consulted (by content when it read them, by existence when it only looked for them),
 * the directories it listed, the environment variables and arguments it read; and, for each
 * source file, the text this process loaded, which is not always the text now on disk.
 *
 * The loaded text of a file is the text seen the first time this process looked at it (a step
 * defined in it, or a first fingerprint reading it). When the file on disk differs later, the
 * module was either reloaded (its `require.cache` entry is a new one: the disk text is what runs
 * now) or not (the same entry, or an entry gone: the loaded text still runs, `stale`). When the
 * module was never in `require.cache` (an ES module, a loader that keeps its own registry), which
 * text runs cannot be known: `unknown`.
 *
 * @packageDocumentation
 * @internal
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

// states

/**
 * What was observed of one thing, as a string that is equal later exactly when the thing is the same:
 * `absent`, `file` (exists), `sha:<digest>` (content), `dir:<digest>` (a directory's listing),
 * `val:<json>` (an environment variable's or the arguments' value), or a state that never holds
 * again (`stale:<file>`, `unknown:<file>`, `volatile`).
 *
 * @internal
 * @example
 * const s: ObservedState = 'sha:3f7a…';
 */
export type ObservedState = string;

const rankOf = (state: ObservedState): number => (state === 'absent' || state === 'file' ? 0 : state.startsWith('sha:') || state.startsWith('dir:') || state.startsWith('val:') ? 1 : 2);

/**
 * Whether a state can never be observed again: what was computed from it must not be kept.
 *
 * @internal
 * @example
 * isUnrepeatable('stale:/p/helpers.ts'); // true
 */
export const isUnrepeatable = (state: ObservedState): boolean => rankOf(state) === 2;

/** While tracking: every thing observed, with its state then. */
let observed: Map<string, ObservedState> | undefined;

/**
 * Records what was observed of `key` (an absolute path, `\0env:NAME` or `\0argv`). A stronger
 * observation (content over existence, a state that never holds again over content) is kept.
 *
 * @internal
 * @example
 * noteObserved('/p/helpers.ts', 'file');
 */
export const noteObserved = (key: string, state: ObservedState): void => {
  if (observed === undefined) return;
  const previous = observed.get(key);
  if (previous === undefined || rankOf(state) >= rankOf(previous)) observed.set(key, state);
};

/**
 * Runs `f` and returns what it returned with everything it observed (files read, stat'ed, or
 * looked for and not found; directories listed; environment variables read) and the state of
 * each. A result computed from them is still valid while every one is in the same state
 * ({@link currentState}).
 *
 * @internal
 * @example
 * const { result, files } = trackConsultedFiles(() => fingerprintFunction(fn, site, hash));
 */
export const trackConsultedFiles = <A>(f: () => A): { readonly result: A; readonly files: ReadonlyMap<string, ObservedState> } => {
  const outer = observed;
  const files = new Map<string, ObservedState>();
  observed = files;
  try {
    return { result: f(), files };
  } finally {
    observed = outer;
    if (outer !== undefined) for (const [file, state] of files) noteObserved(file, state);
  }
};

/**
 * The hex digest of some content, for states (not a key hash: only compared within one machine's caches).
 *
 * @internal
 * @example
 * contentDigest('const a = 1;');
 */
export const contentDigest = (content: string | Uint8Array): string => createHash('sha256').update(content).digest('hex');

const ENV = '\0env:';
const ARGV = '\0argv';

/**
 * The key under which an environment variable is observed.
 *
 * @internal
 * @example
 * envKey('SCALE'); // '\0env:SCALE'
 */
export const envKey = (name: string): string => `${ENV}${name}`;

/**
 * The key under which the process's arguments are observed.
 *
 * @internal
 * @example
 * noteObserved(ARGV_KEY, valueState(process.argv.slice(2)));
 */
export const ARGV_KEY = ARGV;

/**
 * The state of a value read now (an environment variable's, the arguments').
 *
 * @internal
 * @example
 * valueState(process.env['SCALE']); // 'val:"2"'
 */
export const valueState = (value: unknown): ObservedState => `val:${JSON.stringify(value) ?? 'undefined'}`;

const listing = (dir: string): string[] | undefined => {
  try {
    return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((n) => !n.split(path.sep).includes('node_modules')).sort();
  } catch {
    return undefined;
  }
};

/**
 * Lists a directory's files, recursively (without `node_modules`), and records the listing.
 *
 * @internal
 * @example
 * listFiles('/p/models'); // ['a.mts', 'b.mts']
 */
export const listFiles = (dir: string): readonly string[] => {
  const names = listing(dir);
  noteObserved(dir, names === undefined ? 'absent' : `dir:${contentDigest(names.join('\n'))}`);
  return names ?? [];
};

/**
 * The state of `key` now, observed the same way as `like` was (by content, by existence, by listing, by value).
 * By content, a source file this process loaded is seen as it runs: edited on disk since (and not
 * reloaded), it is `changed` whatever the disk holds, so that nothing kept for the disk text (by
 * another process) is taken for the code loaded here. A file is read again only when its stamp
 * changed since it was last read (see `digestsByStamp`); `nowMs` is the present on the wall
 * clock, before anything is looked at.
 *
 * @internal
 * @example
 * currentState('/p/helpers.ts', kept) === kept; // the file has the same content
 */
export const currentState = (key: string, like: ObservedState, nowMs: number = Date.now()): ObservedState => {
  if (key.startsWith(ENV)) return valueState(process.env[key.slice(ENV.length)]);
  if (key === ARGV) return valueState(process.argv.slice(2));
  if (isUnrepeatable(like)) return 'changed';
  if (like.startsWith('dir:')) {
    const names = listing(key);
    return names === undefined ? 'absent' : `dir:${contentDigest(names.join('\n'))}`;
  }
  try {
    const stats = fs.statSync(key, { bigint: true, throwIfNoEntry: false });
    if (stats?.isFile() !== true) return 'absent';
    if (!like.startsWith('sha:')) return 'file';
    const disk = `sha:${diskDigest(key, stats, nowMs)}`;
    return runsDiskText(key, disk) ? disk : 'changed';
  } catch {
    return 'absent';
  }
};

/**
 * How long before it is read a file must have last changed for its digest to be kept by stamp:
 * longer than the coarsest clock of common file systems (2 s), so that a later change, even one
 * within the same tick of that clock, gives the file another change time.
 */
const STAMP_AGE_NS = 3_000_000_000n;
/** Files whose digests are kept by stamp, at most (the oldest kept is forgotten first). */
const STAMPS_KEPT = 4096;

/**
 * The digest of each file read before, by path, with the file's stamp then (device, inode, size,
 * modification and change times, in nanoseconds), as the artifact store keeps the stamps of the
 * artifacts it verified. Every write to a file, and every rename over it, sets its change time to
 * the present, which the file's owner cannot set back: a file with the same stamp has the same
 * content, provided it had last changed {@link STAMP_AGE_NS} before it was read (a change within
 * the same tick of the file system's clock could otherwise keep the stamp).
 */
const digestsByStamp = new Map<string, { readonly stamp: string; readonly digest: string }>();

/** The digest of a file's content: the one kept for its stamp, or read and hashed (and kept, once the file is old enough). */
const diskDigest = (file: string, stats: fs.BigIntStats, nowMs: number): string => {
  const stamp = `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeNs}:${stats.ctimeNs}`;
  const kept = digestsByStamp.get(file);
  if (kept?.stamp === stamp) return kept.digest;
  const digest = contentDigest(fs.readFileSync(file));
  digestsByStamp.delete(file);
  if (stats.ctimeNs < BigInt(nowMs) * 1_000_000n - STAMP_AGE_NS) {
    if (digestsByStamp.size >= STAMPS_KEPT) digestsByStamp.delete(digestsByStamp.keys().next().value as string);
    digestsByStamp.set(file, { stamp, digest });
  }
  return digest;
};

/**
 * Whether the disk text of a file (its state `disk`) is the text this process runs: always for a
 * file it never loaded; for a loaded source file, when the disk text is the loaded one, or the
 * module was loaded again since (a new module-system entry). A file loaded and edited on disk
 * since is not what runs, so a result kept for its disk text is not one for this process.
 */
const runsDiskText = (file: string, disk: ObservedState): boolean => {
  const snap = snapshots.get(file);
  if (snap === undefined || disk === `sha:${snapshotDigest(snap)}`) return true;
  const entry = loadedModuleEntry(file);
  return entry !== undefined && entry !== snap.entry;
};

// witnesses

/** How one observation is checked again: by the file's identity on disk (and its module's), or by observing it again. */
type Check =
  | { readonly _tag: 'Identity'; readonly key: string; readonly state: ObservedState; readonly identity: string; readonly entry: object | undefined }
  | { readonly _tag: 'Again'; readonly key: string; readonly state: ObservedState };

/**
 * What lets a result computed from some observations be reused without computing it again: one
 * cheap check per observation (see {@link witnessOf}).
 *
 * @internal
 * @example
 * const w = witnessOf(files);
 * if (w !== undefined && stillHolds(w)) reuse();
 */
export interface ObservationWitness {
  readonly checks: readonly Check[];
}

/** A file's identity on disk: equal later only when it was not written, replaced or touched since (`undefined`: not a file). */
const identityOf = (file: string): string | undefined => {
  try {
    const s = fs.statSync(file, { throwIfNoEntry: false });
    return s?.isFile() === true ? `${s.mtimeMs}:${s.ctimeMs}:${s.size}:${s.ino}` : undefined;
  } catch {
    return undefined;
  }
};

/**
 * A witness of observations made just now, or `undefined` when they cannot be checked cheaply:
 * a state that never holds again, or a file whose content is no longer what was observed. A file
 * observed by content is checked later by its identity on disk (modification and change times,
 * size, inode: taken before its content is read again here, so that an edit after it changes the
 * identity) and, for a loaded module, by its module-system entry (a reload is a new entry); every
 * other observation (existence, a listing, a value) by observing it again.
 *
 * @internal
 * @example
 * const { result, files } = trackConsultedFiles(compute);
 * const witness = witnessOf(files);
 */
export const witnessOf = (files: ReadonlyMap<string, ObservedState>): ObservationWitness | undefined => {
  const checks: Check[] = [];
  for (const [key, state] of files) {
    if (isUnrepeatable(state)) return undefined;
    if (!state.startsWith('sha:')) {
      checks.push({ _tag: 'Again', key, state });
      continue;
    }
    const identity = identityOf(key);
    if (identity === undefined) return undefined;
    const entry = loadedModuleEntry(key);
    const snap = snapshots.get(key);
    // The content observed is the disk's now, and (for a loaded module) the loaded text.
    if (snap !== undefined && (`sha:${snapshotDigest(snap)}` !== state || (snap.entry !== undefined && snap.entry !== entry))) return undefined;
    try {
      if (`sha:${contentDigest(fs.readFileSync(key))}` !== state) return undefined;
    } catch {
      return undefined;
    }
    checks.push({ _tag: 'Identity', key, state, identity, entry });
  }
  return { checks };
};

/**
 * Whether every observation a witness covers still holds (see {@link witnessOf}); when it does,
 * they are observed again (recorded in the tracking around), as computing the result again would.
 *
 * @internal
 * @example
 * if (stillHolds(memo.witness)) return memo.result;
 */
export const stillHolds = (witness: ObservationWitness): boolean => {
  for (const check of witness.checks) {
    if (check._tag === 'Again' ? currentState(check.key, check.state) !== check.state : identityOf(check.key) !== check.identity || loadedModuleEntry(check.key) !== check.entry) return false;
  }
  if (observed !== undefined) for (const check of witness.checks) noteObserved(check.key, check.state);
  return true;
};

// loaded sources

/**
 * The source file of a running file: itself, or, for a `.js` file that does not exist, the
 * TypeScript file next to it that a loader compiled (tslab, ts-node and jest name compiled
 * notebook or module code after the `.js` it would be).
 *
 * @internal
 * @example
 * sourceOfRunningFile('/nb/steps.js'); // '/nb/steps.ts' when only that exists
 */
export const sourceOfRunningFile = (file: string): string => {
  const js = /\.([cm]?)js(x?)$/i.exec(file);
  if (js === null || fs.existsSync(file)) return file;
  const base = file.slice(0, -js[0].length);
  const candidates = [`${base}.${js[1] ?? ''}ts${js[2] ?? ''}`, `${base}.ts`, `${base}.tsx`, `${base}.mts`, `${base}.cts`];
  return candidates.find((c) => fs.existsSync(c)) ?? file;
};

const noted = new Set<string>();

const PROJECT_SCRIPT = /\.[cm]?[jt]sx?$/i;

/**
 * Notes that a step is being defined at `site`: its file runs now, and so do the modules loaded
 * before it, so the text on disk now of each is the one loaded (see {@link noteLoaded}) unless
 * one was noted before. Called by `step()`; the first call per file looks at the disk, once per
 * project module loaded then (`node_modules` left out).
 *
 * @example
 * noteStepDefinedAt(callSiteOf(new Error(), 1));
 */
export const noteStepDefinedAt = (site: { readonly file: string }): void => {
  if (noted.has(site.file)) return;
  noted.add(site.file);
  noteLoaded(sourceOfRunningFile(site.file));
  for (const file of loadedModuleFiles()) {
    if (!snapshots.has(file) && PROJECT_SCRIPT.test(file) && !/\.d\.[cm]?ts$/i.test(file) && !file.split(/[\\/]/).includes('node_modules')) noteLoaded(file);
  }
};


/** The module system's cache: `require.cache` where this module is loaded by `require` (jest keeps its own), else Node's. */
const moduleCache = (): Readonly<Record<string, unknown>> => {
  try {
    return typeof require === 'function' ? require.cache : createRequire(path.join(process.cwd(), 'noop.js')).cache;
  } catch {
    return {};
  }
};

/**
 * The module system's entry of a loaded file (`require.cache`), when it keeps one: a new entry
 * means the module was loaded again.
 *
 * @internal
 * @example
 * loadedModuleEntry('/p/helpers.js')?.exports;
 */
export const loadedModuleEntry = (file: string): { readonly exports?: unknown } | undefined => {
  const entry: unknown = moduleCache()[file];
  return typeof entry === 'object' && entry !== null ? entry : undefined;
};

/**
 * Every file the module system's cache holds.
 *
 * @internal
 * @example
 * loadedModuleFiles().filter(isScript);
 */
export const loadedModuleFiles = (): readonly string[] => Object.keys(moduleCache());

interface Snapshot {
  text: string;
  entry: object | undefined;
  /** The disk state (`mtimeMs:ctimeMs:size:ino`) when the disk text was last found equal to `text`. */
  diskState: string | undefined;
  /** The content digest of `text`, once computed. */
  digest?: string;
}

const snapshotDigest = (s: Snapshot): string => (s.digest ??= contentDigest(s.text));

const snapshots = new Map<string, Snapshot>();

/**
 * Which text of a source file runs in this process: `current` (the disk's), `stale` (the text
 * loaded earlier, edited on disk since), `unknown` (edited on disk, and whether the module was
 * reloaded cannot be told).
 *
 * @internal
 * @example
 * const s: LoadedSource = { text: '…', status: 'stale' };
 */
export interface LoadedSource {
  readonly text: string;
  readonly status: 'current' | 'stale' | 'unknown';
}

const readText = (file: string): string | undefined => {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
};

/**
 * Notes that a module is being loaded or runs now (a step is defined in it): the text on disk
 * now is taken as its loaded text, unless one was noted before. Cheap after the first call per file.
 *
 * @internal
 * @example
 * noteLoaded('/p/pipeline.ts'); // inside step(): the caller's file is executing
 */
export const noteLoaded = (file: string): void => {
  if (snapshots.has(file) || !path.isAbsolute(file)) return;
  const text = readText(file);
  if (text !== undefined) snapshots.set(file, { text, entry: loadedModuleEntry(file), diskState: undefined });
};

/**
 * The text of a source file as this process runs it, given its disk state now (`mtimeMs:ctimeMs:size:ino`:
 * a write, a replacement or a touch changes it).
 * Records what it observed: the content of the text used, or a state that never holds again when
 * the disk text is not the loaded one.
 *
 * @internal
 * @example
 * loadedSource('/p/helpers.ts', '1732350000000:1732350000000:2048:81')?.status; // 'current'
 */
export const loadedSource = (file: string, diskState: string): LoadedSource | undefined => {
  const entry = loadedModuleEntry(file);
  const snap = snapshots.get(file);
  const current = (s: Snapshot): LoadedSource => {
    noteObserved(file, `sha:${snapshotDigest(s)}`);
    return { text: s.text, status: 'current' };
  };
  if (snap !== undefined && snap.diskState === diskState && (snap.entry === entry || snap.entry === undefined)) {
    snap.entry ??= entry;
    return current(snap);
  }
  const disk = readText(file);
  if (disk === undefined) return undefined;
  if (snap === undefined || disk === snap.text || (entry !== undefined && entry !== snap.entry)) {
    // First look, unchanged, or reloaded since: the disk text is what runs.
    const fresh: Snapshot = { text: disk, entry, diskState };
    snapshots.set(file, fresh);
    return current(fresh);
  }
  if (snap.entry !== undefined) {
    noteObserved(file, `stale:${file}`);
    return { text: snap.text, status: 'stale' };
  }
  noteObserved(file, `unknown:${file}`);
  return { text: disk, status: 'unknown' };
};

/**
 * Takes the disk text of a file as what runs from now on (the caller checked that the loaded
 * function is the one on disk).
 *
 * @internal
 * @example
 * acceptDiskText('/p/steps.js');
 */
export const acceptDiskText = (file: string): void => {
  const disk = readText(file);
  if (disk !== undefined) snapshots.set(file, { text: disk, entry: loadedModuleEntry(file), diskState: undefined });
};
