/**
 * The hash functions stepcache uses: BLAKE3 (cryptographic, hash-wasm) for cache keys, and for
 * artifact contents XXH3-128 (hash-wasm; fast, ~3.5 GB/s here) or, in a store shared under a
 * secret, HMAC-SHA256 keyed with a key derived from the secret (node:crypto).
 *
 * @packageDocumentation
 */
import { createHmac } from 'node:crypto';
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
 * Idle XXH3-128 instances: instantiating the WebAssembly module costs far more than hashing a
 * small artifact, so an instance is used again once its digest is read. An instance whose digest
 * is never read (a write that failed) is simply dropped.
 */
const idleContentHashers: IHasher[] = [];
/** Idle instances kept at most: as many as streams usually run at once. */
const MAX_IDLE_CONTENT_HASHERS = 16;

/**
 * An incremental content hasher (XXH3-128). Each stream gets an instance of its own, so
 * interleaved asynchronous writes never share state; reading the digest gives the instance back
 * to be used by a later stream.
 *
 * @example
 * const h = await createContentHasher();
 * h.update(new Uint8Array([1]));
 * h.digest(); // 32 hex characters
 */
export const createContentHasher = async (): Promise<ContentHasher> => {
  const hasher = idleContentHashers.pop() ?? (await createXXHash128());
  hasher.init();
  let done = false;
  return {
    update: (chunk) => {
      if (done) throw new Error('This content hasher has given its digest already.');
      hasher.update(chunk);
    },
    digest: () => {
      if (done) throw new Error('This content hasher has given its digest already.');
      done = true;
      const hex = hasher.digest('hex');
      if (idleContentHashers.length < MAX_IDLE_CONTENT_HASHERS) idleContentHashers.push(hasher);
      return hex;
    },
  };
};

/** The one XXH3-128 instance of synchronous hashing, once loaded. */
let instantHasher: IHasher | undefined;
let instantHasherLoading: Promise<IHasher> | undefined;

/**
 * An XXH3-128 hasher at once, for hashing that starts and ends in one synchronous section (no
 * `await` between its first `update` and its `digest`), so that one instance serves every such
 * section; `undefined` until the instance is loaded (the first call starts loading it).
 *
 * @example
 * const h = contentHasherNow();
 * if (h !== undefined) { h.update(bytes); h.digest(); }
 */
export const contentHasherNow = (): ContentHasher | undefined => {
  void contentHasherNowReady();
  const hasher = instantHasher;
  if (hasher === undefined) return undefined;
  hasher.init();
  return { update: (chunk) => void hasher.update(chunk), digest: () => hasher.digest('hex') };
};

/**
 * Settles once {@link contentHasherNow} gives a hasher (starting to load it, the first time).
 *
 * @example
 * await contentHasherNowReady();
 * contentHasherNow() !== undefined; // true
 */
export const contentHasherNowReady = (): Promise<unknown> => (instantHasherLoading ??= createXXHash128().then((h) => (instantHasher = h)));

/**
 * How an artifact store names contents: the hash that makes ids (and verifies them on load).
 *
 * - `xxh3-128` (32 hex digits): fast, and sound against accidents (a damaged file, a partial
 *   write), but not against an adversary: XXH3 collisions can be constructed, so someone who can
 *   write artifact files could put other bytes that still verify under an id.
 * - `hmac-sha256` (64 hex digits): HMAC-SHA256 keyed with a key derived from a team's secret.
 *   Without the secret, nobody can find other bytes with the same id, nor even compute the id of
 *   given bytes; with signed entries naming artifacts by these ids, an artifact cannot be swapped
 *   behind the cache's back. It costs more (a cryptographic hash, ~1-2 GB/s with SHA extensions
 *   against ~3.5 GB/s), so it is used only when a secret is set.
 *
 * @example
 * const hashing = contentHashing(process.env.STEPCACHE_SECRET); // keyed when the secret is set
 * const h = await hashing.create();
 * h.update(new Uint8Array([1]));
 * h.digest().length === hashing.idLength; // true
 */
export interface ContentHashing {
  readonly name: 'xxh3-128' | 'hmac-sha256';
  /** The number of hex digits of an id this hash makes. */
  readonly idLength: number;
  /** A fresh incremental hasher. */
  readonly create: () => Promise<ContentHasher>;
  /**
   * A hasher at once, to be used within one synchronous section (first `update` to `digest`
   * without an `await`), or `undefined` while the hash is still loading (the first call starts it).
   */
  readonly createNow: () => ContentHasher | undefined;
  /** Settles once `createNow` gives a hasher (starting to load the hash, the first time). */
  readonly nowReady: () => Promise<unknown>;
}

/**
 * Contents named by XXH3-128: the default, when no secret is set.
 *
 * @example
 * plainContentHashing.idLength; // 32
 */
export const plainContentHashing: ContentHashing = Object.freeze({ name: 'xxh3-128', idLength: 32, create: createContentHasher, createNow: contentHasherNow, nowReady: contentHasherNowReady });

/** Separates the artifact key from every other use of the secret (entries are signed with it directly). */
const ARTIFACT_KEY_LABEL = 'stepcache artifact ids v1';

/**
 * Contents named by HMAC-SHA256 under a key derived from `secret` (HMAC-SHA256 of a fixed label),
 * so that ids are not forgeable by anyone without the secret.
 *
 * @example
 * const hashing = keyedContentHashing('team-secret');
 * hashing.idLength; // 64
 */
export const keyedContentHashing = (secret: string | Uint8Array): ContentHashing => {
  const key = createHmac('sha256', secret).update(ARTIFACT_KEY_LABEL).digest();
  const createNow = (): ContentHasher => {
    const hmac = createHmac('sha256', key);
    return { update: (chunk) => void hmac.update(chunk), digest: () => hmac.digest('hex') };
  };
  return Object.freeze({ name: 'hmac-sha256', idLength: 64, create: async (): Promise<ContentHasher> => createNow(), createNow, nowReady: async () => undefined });
};

/**
 * The content hashing of a store: keyed with the secret when there is one, XXH3-128 otherwise.
 *
 * @example
 * contentHashing(undefined).name; // 'xxh3-128'
 * contentHashing('team-secret').name; // 'hmac-sha256'
 */
export const contentHashing = (secret: string | Uint8Array | undefined): ContentHashing => (secret === undefined ? plainContentHashing : keyedContentHashing(secret));

/**
 * The content id of bytes under a hashing: at once when the hash can (it has loaded), else once it
 * has. The id a store's `put` gives the same bytes.
 *
 * @example
 * const id = await contentIdOf(contentHashing(undefined), new Uint8Array([1])); // 32 hex characters
 */
export const contentIdOf = (hashing: ContentHashing, bytes: Uint8Array): string | Promise<string> => {
  const now = hashing.createNow();
  if (now !== undefined) {
    now.update(bytes);
    return now.digest();
  }
  return hashing.create().then((hasher) => {
    hasher.update(bytes);
    return hasher.digest();
  });
};
