/**
 * The two hash functions stepcache uses, both from hash-wasm:
 * BLAKE3 (cryptographic) for cache keys, XXH3-128 (fast, ~3.5 GB/s here) for artifact contents.
 *
 * @packageDocumentation
 */
import { createBLAKE3, createXXHash128, type IHasher } from 'hash-wasm';

/** An incremental content hasher: feed chunks with `update`, read the hex digest once. */
export interface ContentHasher {
  /** Feeds the next chunk. */
  readonly update: (chunk: Uint8Array) => void;
  /** The hex digest of everything fed so far. */
  readonly digest: () => string;
}

let keyHasher: Promise<IHasher> | undefined;

const loadKeyHasher = (): Promise<IHasher> => (keyHasher ??= createBLAKE3(256));

/**
 * Loads the WebAssembly key hasher once; afterwards the function it returns is synchronous.
 *
 * @example
 * const hashKey = await keyHashFunction();
 * hashKey(new Uint8Array([1, 2, 3])); // 64 hex characters
 */
export const keyHashFunction = (): Promise<(bytes: Uint8Array) => string> =>
  // One function per process: caches keyed by it (code fingerprints) then live as long as the process.
  (keyHash ??= loadKeyHasher().then((hasher) => (bytes: Uint8Array) => {
    hasher.init();
    hasher.update(bytes);
    return hasher.digest('hex');
  }));

let keyHash: Promise<(bytes: Uint8Array) => string> | undefined;

/**
 * A fresh incremental content hasher (XXH3-128). Each stream gets its own
 * instance, so interleaved asynchronous writes never share state.
 *
 * @example
 * const h = await createContentHasher();
 * h.update(new Uint8Array([1]));
 * h.digest(); // 32 hex characters
 */
export const createContentHasher = async (): Promise<ContentHasher> => {
  const hasher = await createXXHash128();
  hasher.init();
  return { update: (chunk) => void hasher.update(chunk), digest: () => hasher.digest('hex') };
};
