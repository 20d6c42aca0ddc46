/**
 * The stores a runner works on, opened on first use: metadata (SQLite by default, any keyv, or a
 * metadata store) and artifacts (files by default), with the lock on step keys that goes with them.
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import type Keyv from 'keyv';
import { StepcacheError, toError } from '../errors';
import { createFileStepLock, createMemoryStepLock, soloWhenAlone, type StepLock } from '../lock';
import { createFileArtifactStore, type ArtifactRef, type ArtifactStore } from '../store/artifact-store';
import { inlinePresence, storedArtifacts, type MaybeInline } from '../store/inline';
import { createKeyvMetadataStore, createSqliteMetadataStore, type MetadataStore } from '../store/metadata-store';
import type { CacheEntry, DamagedRecord } from '../store/records';
import { contentHashing, type ContentHashing } from '../hash/hashers';
import { consoleLogger } from './logger';
import { readableCopyOf, readOnlyMode, unwritableStore, type ReadOnlyMode } from '../store/read-only-store';
import { describeRejection, signedMetadataStore } from '../store/signed-metadata-store';
import { storeLayout, type StoreLayout } from '../store/layout';
import {
  localArtifactsWarning,
  openArtifactsLocation,
  openMetadataLocation,
  orThrow,
  parseArtifactsUrl,
  parseMetadataUrl,
  resolveStoreUrls,
  type ArtifactsLocation,
  type MetadataLocation,
} from '../store/urls';
import type { Logger } from './logger';
import type { RunnerOptions } from './model';

// model

/** @internal The opened stores; `metadataFor` checks signatures when the runner has a secret. */
export interface OpenStores {
  readonly artifacts: ArtifactStore;
  /** The metadata store, reporting entries whose signature does not verify to `onRejected`. */
  readonly metadataFor: (onRejected: (message: string) => void) => MetadataStore;
  /** How the artifact store names contents (what a read-only run names the artifacts it keeps in memory by). */
  readonly hashing: ContentHashing;
  readonly close: () => Promise<void>;
}

/** @internal A runner's access to its stores. */
export interface StoreAccess {
  /** The store directory. */
  readonly dir: string;
  /** Identifies the store within this process (runs on one store share executions in flight). */
  readonly storeId: string;
  readonly lock: StepLock;
  /** Whether the store is read-only, and why: asked for (option, variable), found when opened, or learnt from a refused write. */
  readonly readOnly: ReadOnlyMode;
  /** Opens the stores once; a failure is a `STORE_UNAVAILABLE` error, and the next call tries again. */
  readonly open: () => Promise<OpenStores>;
  /** Runs a store operation, turning what it throws into a `STORE_UNAVAILABLE` error naming the store. */
  readonly call: <A>(what: string, f: () => Promise<A>) => Promise<A>;
  readonly close: () => Promise<void>;
}

// utils

const storeIdentities = new WeakMap<object, number>();
let nextStoreIdentity = 1;
/** A number per metadata store object, so runners sharing a custom store share in-flight executions. */
const storeIdentity = (store: object): number => {
  let id = storeIdentities.get(store);
  if (id === undefined) {
    id = nextStoreIdentity++;
    storeIdentities.set(store, id);
  }
  return id;
};

const isMetadataStore = (x: Keyv | MetadataStore): x is MetadataStore => typeof (x as MetadataStore).getEntries === 'function';

/** Where a runner's stores are: objects given in code, locations named by URL, or the embedded default. */
interface StoreChoice {
  /** A metadata store given in code, or opened from a URL. */
  readonly metadata: Keyv | MetadataStore | undefined;
  readonly metadataLocation: MetadataLocation | undefined;
  readonly artifacts: ArtifactStore | undefined;
  readonly artifactsLocation: ArtifactsLocation | undefined;
}

/**
 * The stores of the options: `metadata`/`artifacts` objects first, then `metadataUrl`/`artifactsUrl`,
 * then `STEPCACHE_METADATA_URL`/`STEPCACHE_ARTIFACTS_URL`, else the embedded store. An invalid URL
 * is an `INVALID_OPTIONS` error naming the option or variable.
 */
const chooseStores = (options: RunnerOptions, env: Readonly<Record<string, string | undefined>>): StoreChoice => {
  const urls = resolveStoreUrls(options, env);
  const metadataLocation = options.metadata === undefined && urls.metadata !== undefined ? orThrow(parseMetadataUrl(urls.metadata.url, urls.metadata.source)) : undefined;
  const artifactsLocation = options.artifacts === undefined && urls.artifacts !== undefined ? orThrow(parseArtifactsUrl(urls.artifacts.url, urls.artifacts.source)) : undefined;
  return { metadata: options.metadata, metadataLocation, artifacts: options.artifacts, artifactsLocation };
};

/** Where the metadata is, for messages: the store directory, or the server's redacted URL. */
const metadataWhere = (choice: StoreChoice, layout: StoreLayout): string =>
  choice.metadataLocation === undefined ? `in ${layout.dir}` : `at ${choice.metadataLocation.shown}`;

/** Why the runner is asked to write nothing: its `readOnly` option, else `STEPCACHE_READ_ONLY`. */
const readOnlyAskedBy = (options: RunnerOptions, env: Readonly<Record<string, string | undefined>>): string | undefined =>
  options.readOnly === true ? "the runner's readOnly option is set" : options.readOnly === undefined && env['STEPCACHE_READ_ONLY'] === 'true' ? 'STEPCACHE_READ_ONLY=true is set' : undefined;

const openStores = async (options: RunnerOptions, choice: StoreChoice, metadata: MetadataStore | undefined, layout: StoreLayout, logger: Logger, readOnly: ReadOnlyMode): Promise<OpenStores> => {
  const localArtifacts = choice.artifacts === undefined && choice.artifactsLocation === undefined;
  const localMetadata = metadata === undefined && choice.metadata === undefined;
  if ((localArtifacts || localMetadata) && readOnly.why() === undefined) {
    await fs.promises.mkdir(layout.dir, { recursive: true });
    const unwritable = await unwritableStore(layout, { metadata: localMetadata, artifacts: localArtifacts });
    if (unwritable !== undefined) readOnly.enter(unwritable);
  }
  // A database this process may not write is read from a private copy: SQLite cannot open it in place.
  const copy = localMetadata && readOnly.why() !== undefined && fs.existsSync(layout.metadataFile) && !(await writable(layout)) ? await readableCopyOf(layout.metadataFile) : undefined;
  const onDamaged = (damage: DamagedRecord): void => logger.warn(damage.message);
  const plain =
    metadata ??
    (choice.metadata === undefined
      ? createSqliteMetadataStore(copy?.file ?? layout.metadataFile, { onDamaged })
      : isMetadataStore(choice.metadata)
        ? choice.metadata
        : createKeyvMetadataStore(choice.metadata, { onDamaged }));
  const { secret } = options;
  const opened = choice.artifactsLocation === undefined ? undefined : openArtifactsLocation(choice.artifactsLocation, secret);
  if (localArtifacts && plain.stepLock !== undefined) {
    logger.warn(localArtifactsWarning(choice.metadataLocation?.shown ?? 'given in the options', layout.artifactsDir));
  }
  return {
    artifacts: choice.artifacts ?? opened?.store ?? createFileArtifactStore(layout.artifactsDir, { secret }),
    metadataFor: (onRejected) => (secret === undefined ? plain : signedMetadataStore(plain, secret, (rejection) => onRejected(describeRejection(rejection)))),
    hashing: contentHashing(secret),
    close: async () => {
      opened?.close();
      try {
        await plain.close();
      } finally {
        await copy?.remove();
      }
    },
  };
};

/** Whether this process may write the embedded store's folder and its metadata file (a store read-only only by request is opened in place). */
const writable = async (layout: StoreLayout): Promise<boolean> => (await unwritableStore(layout, { metadata: true, artifacts: false })) === undefined;

// presence

/** @internal An artifact store whose presence checks start from a batch made up front, and what that batch found. */
export interface PresenceChecked {
  readonly store: ArtifactStore;
  /** Whether the batch found the artifact present (with its size), or it is inline (bytes of its size); `false` for any other. */
  readonly isKnownPresent: (ref: MaybeInline) => boolean;
}

/**
 * @internal The artifact store of one run, with the presence of the artifacts of `entries` checked
 * in one batch up front (a shared store answers each check over the network: one round trip per
 * step of a chain would dominate a cached run). What the batch found present is answered from it;
 * anything else is asked again. An artifact removed meanwhile is found missing when loaded, and
 * its step repaired, as for any store. When the batch fails, the store is used as it is.
 * `isKnownPresent` says, without a call, whether the batch found an artifact present: what
 * `present` answers for it without asking the store.
 */
export const withPresenceOf = async (store: ArtifactStore, entries: readonly CacheEntry[]): Promise<PresenceChecked> => {
  const unchecked: PresenceChecked = { store, isKnownPresent: () => false };
  // Inline outputs are present without a call: only the stored ones are asked for.
  const refs = entries.flatMap((e) => storedArtifacts(Object.values(e.outputs)));
  if (refs.length === 0) return { store, isKnownPresent: (r) => inlinePresence(r) === true };
  let found: boolean[];
  try {
    found = await store.present(refs);
  } catch {
    return unchecked; // each step asks for itself, and a failure is reported against the step that met it
  }
  // The size found present for each artifact id (an id names its content, so one size).
  const known = new Map<string, number>();
  refs.forEach((r, i) => {
    if (found[i] === true) known.set(r.id, r.size);
  });
  const isKnown = (r: MaybeInline): boolean => inlinePresence(r) ?? known.get(r.id) === r.size;
  const present = async (asked: readonly ArtifactRef[]): Promise<boolean[]> => {
    const unknown = asked.filter((r) => !isKnown(r));
    const answers = unknown.length === 0 ? [] : await store.present(unknown);
    let next = 0;
    return asked.map((r) => isKnown(r) || answers[next++] === true);
  };
  const checked: ArtifactStore = Object.freeze({
    put: (bytes: Uint8Array) => store.put(bytes),
    putNow: store.putNow === undefined ? undefined : (bytes: Uint8Array) => store.putNow?.(bytes),
    idOf: store.idOf,
    get: (ref: ArtifactRef) => store.get(ref),
    present,
    remove: (id: string) => store.remove(id),
    locate: (id: string) => store.locate(id),
    list: () => store.list(),
    sweepTemporary: (olderThanMs: number) => store.sweepTemporary(olderThanMs),
  });
  return { store: checked, isKnownPresent: isKnown };
};

// access

/**
 * @internal The stores of a runner's options: the embedded store in `options.dir`, `$STEPCACHE_DIR`
 * or `./.stepcache`, or the stores given.
 */
export const storeAccess = (options: RunnerOptions, env: Readonly<Record<string, string | undefined>> = process.env): StoreAccess => {
  const layout = storeLayout(options.dir);
  const { dir } = layout;
  const logger = options.logger ?? consoleLogger;
  const choice = chooseStores(options, env);
  // A store from a URL is made now (nothing connects before the first call), so its lock is known.
  const fromUrl = choice.metadataLocation === undefined ? undefined : openMetadataLocation(choice.metadataLocation, { onDamaged: (damage) => logger.warn(damage.message) });
  const given = fromUrl ?? (choice.metadata !== undefined && isMetadataStore(choice.metadata) ? choice.metadata : undefined);
  const where = metadataWhere(choice, layout);
  const readOnly = readOnlyMode(readOnlyAskedBy(options, env));
  // The embedded store's lock, which gives its marker up when the runner is closed.
  const solo = options.lock === undefined && given?.stepLock === undefined && choice.metadata === undefined && fromUrl === undefined ? soloWhenAlone(layout.locksDir, createFileStepLock(layout.locksDir)) : undefined;
  const lock = options.lock ?? given?.stepLock?.() ?? solo ?? createMemoryStepLock();
  let opened: Promise<OpenStores> | undefined;
  const open = () =>
    (opened ??= openStores(options, choice, fromUrl, layout, logger, readOnly)).catch((e: unknown) => {
      opened = undefined;
      throw new StepcacheError('STORE_UNAVAILABLE', `The store ${where} could not be opened: ${toError(e).message}`, { cause: e });
    });
  /** What a store call threw (or rejected with), as a typed error naming the store and what it could not do. */
  const failure = (what: string, e: unknown): StepcacheError =>
    e instanceof StepcacheError ? e : new StepcacheError('STORE_UNAVAILABLE', `The store ${where} could not ${what}: ${toError(e).message}`, { cause: e });
  return {
    dir,
    storeId:
      choice.metadataLocation !== undefined
        ? `${choice.metadataLocation.shown}\0${choice.metadataLocation.schema}`
        : choice.metadata === undefined
          ? dir
          : `${dir}\0${storeIdentity(choice.metadata)}`,
    readOnly,
    lock,
    open,
    // A store call that throws synchronously fails the same way as one that rejects.
    call: (what, f) =>
      Promise.resolve()
        .then(f)
        .catch((e: unknown) => {
          throw failure(what, e);
        }),
    close: async () => {
      await solo?.close();
      const opening = opened;
      opened = undefined;
      // Stores that failed to open hold nothing to close but a store made from a URL.
      const stores = opening === undefined ? undefined : await opening.catch(() => undefined);
      const close = stores === undefined ? fromUrl?.close : stores.close;
      if (close === undefined) return;
      await Promise.resolve()
        .then(close)
        .catch((e: unknown) => {
          throw failure('be closed', e);
        });
    },
  };
};
