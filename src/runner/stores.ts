/**
 * The stores a runner works on, opened on first use: metadata (SQLite by default, any keyv, or a
 * metadata store) and artifacts (files by default), with the lock on step keys that goes with them.
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import type Keyv from 'keyv';
import { StepcacheError, toError } from '../errors';
import { createFileStepLock, createMemoryStepLock, type StepLock } from '../lock';
import { createFileArtifactStore, type ArtifactStore } from '../store/artifact-store';
import { createKeyvMetadataStore, createSqliteMetadataStore, type MetadataStore } from '../store/metadata-store';
import type { CacheEntry, DamagedRecord } from '../store/records';
import { consoleLogger } from './logger';
import { signedMetadataStore } from '../store/signed-metadata-store';
import { storeLayout, type StoreLayout } from '../store/layout';
import type { RunnerOptions } from './model';

// model

/** @internal The opened stores; `metadataFor` checks signatures when the runner has a secret. */
export interface OpenStores {
  readonly artifacts: ArtifactStore;
  /** The metadata store, reporting entries whose signature does not verify to `onRejected`. */
  readonly metadataFor: (onRejected: (message: string) => void) => MetadataStore;
  readonly close: () => Promise<void>;
}

/** @internal A runner's access to its stores. */
export interface StoreAccess {
  /** The store directory. */
  readonly dir: string;
  /** Identifies the store within this process (runs on one store share executions in flight). */
  readonly storeId: string;
  readonly lock: StepLock;
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

const rejectedMessage = (entry: CacheEntry): string =>
  `Ignoring the cache entry of step ${entry.step} (pipeline ${entry.pipeline}, run ${entry.runId}): its signature does not verify with this runner's secret.`;

const openStores = async (options: RunnerOptions, layout: StoreLayout): Promise<OpenStores> => {
  if (options.metadata === undefined || options.artifacts === undefined) await fs.promises.mkdir(layout.dir, { recursive: true });
  const onDamaged = (damage: DamagedRecord): void => (options.logger ?? consoleLogger).warn(damage.message);
  const plain =
    options.metadata === undefined
      ? createSqliteMetadataStore(layout.metadataFile, { onDamaged })
      : isMetadataStore(options.metadata)
        ? options.metadata
        : createKeyvMetadataStore(options.metadata, { onDamaged });
  const { secret } = options;
  return {
    artifacts: options.artifacts ?? createFileArtifactStore(layout.artifactsDir),
    metadataFor: (onRejected) => (secret === undefined ? plain : signedMetadataStore(plain, secret, (entry) => onRejected(rejectedMessage(entry)))),
    close: () => plain.close(),
  };
};

// access

/**
 * @internal The stores of a runner's options: the embedded store in `options.dir`, `$STEPCACHE_DIR`
 * or `./.stepcache`, or the stores given.
 */
export const storeAccess = (options: RunnerOptions): StoreAccess => {
  const layout = storeLayout(options.dir);
  const { dir } = layout;
  let opened: Promise<OpenStores> | undefined;
  const open = () =>
    (opened ??= openStores(options, layout)).catch((e: unknown) => {
      opened = undefined;
      throw new StepcacheError('STORE_UNAVAILABLE', `The store in ${dir} could not be opened: ${toError(e).message}`, { cause: e });
    });
  /** What a store call threw (or rejected with), as a typed error naming the store and what it could not do. */
  const failure = (what: string, e: unknown): StepcacheError =>
    e instanceof StepcacheError ? e : new StepcacheError('STORE_UNAVAILABLE', `The store in ${dir} could not ${what}: ${toError(e).message}`, { cause: e });
  return {
    dir,
    storeId: options.metadata === undefined ? dir : `${dir}\0${storeIdentity(options.metadata)}`,
    lock: options.lock ?? (options.metadata === undefined ? createFileStepLock(layout.locksDir) : createMemoryStepLock()),
    open,
    // A store call that throws synchronously fails the same way as one that rejects.
    call: (what, f) =>
      Promise.resolve()
        .then(f)
        .catch((e: unknown) => {
        throw failure(what, e);
      }),
    close: async () => {
      if (opened === undefined) return;
      const opening = opened;
      opened = undefined;
      // Stores that failed to open hold nothing to close.
      const stores = await opening.catch(() => undefined);
      if (stores === undefined) return;
      await Promise.resolve()
        .then(stores.close)
        .catch((e: unknown) => {
        throw failure('be closed', e);
      });
    },
  };
};
