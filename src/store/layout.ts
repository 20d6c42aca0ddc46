/**
 * Where the embedded store keeps what: one directory (`--dir`, else `$STEPCACHE_DIR`, else
 * `./.stepcache`) holding the metadata database, the artifact files, the lock files and the
 * fingerprint cache.
 *
 * @packageDocumentation
 */
import * as path from 'node:path';

/**
 * The paths of an embedded store, all absolute.
 *
 * @example
 * const layout: StoreLayout = storeLayout('/tmp/cache');
 * layout.metadataFile; // '/tmp/cache/metadata.sqlite'
 */
export interface StoreLayout {
  /** The store directory. */
  readonly dir: string;
  /** The SQLite database of cache entries and runs. */
  readonly metadataFile: string;
  /** The content-addressed artifact files. */
  readonly artifactsDir: string;
  /** The lock files on step keys. */
  readonly locksDir: string;
  /** The cache of code fingerprints. */
  readonly fingerprintsFile: string;
}

/** The store directory when neither a directory nor `STEPCACHE_DIR` is given. */
const DEFAULT_STORE_DIR = '.stepcache';

/**
 * The layout of the store in `dir`, else in `$STEPCACHE_DIR`, else in `./.stepcache`; a
 * relative directory is resolved against `cwd`.
 *
 * @example
 * storeLayout(undefined, { STEPCACHE_DIR: '/data/cache' }).artifactsDir; // '/data/cache/artifacts'
 * storeLayout('cache', {}, '/work').dir; // '/work/cache'
 */
export const storeLayout = (dir?: string, env: Readonly<Record<string, string | undefined>> = process.env, cwd: string = process.cwd()): StoreLayout => {
  const root = path.resolve(cwd, dir ?? env['STEPCACHE_DIR'] ?? DEFAULT_STORE_DIR);
  return Object.freeze({
    dir: root,
    metadataFile: path.join(root, 'metadata.sqlite'),
    artifactsDir: path.join(root, 'artifacts'),
    locksDir: path.join(root, 'locks'),
    fingerprintsFile: path.join(root, 'fingerprints.json'),
  });
};
