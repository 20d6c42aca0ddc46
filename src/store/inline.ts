/**
 * Outputs kept inside their cache entry: an output whose bytes are tiny is not written to the
 * artifact store (no file, no object) but carried, base64, by its descriptor (`inline`), in the
 * entry, the run record and a worker's answer. Creating a file costs far more than the row grows
 * by; a tiny output's presence needs no `stat`. Its descriptor keeps its `id`, the content hash of
 * the bytes as the store names them, so keys, dedup and `cachedFrom` are the same as for a file,
 * and the bytes are checked against it on every load: a damaged row is a miss, never a wrong value.
 *
 * Base64 for every kind (JSON text too): one encoding whose decoding gives back the very bytes
 * that were hashed, which JSON text inside the entry's JSON would not guarantee (its escaping).
 *
 * @packageDocumentation
 */
import * as E from 'fp-ts/Either';
import type { ArtifactLoadError, ArtifactRef, ArtifactStore } from './artifact-store';
import { EMPTY_ARTIFACT_ID, type ArtifactDescriptor } from './serialize';

// model

/**
 * Outputs of at most this many serialized bytes are kept inside their cache entry. Creating an
 * artifact file costs 450-870 µs of kernel time on ext4 whatever its size; inline bytes instead
 * grow the metadata file about eight times over (base64, in the entry's own row, its step's and
 * pipeline's latest rows and the run record), and big rows slow the cached path. Measured with
 * chains of 1,000 steps whose outputs all have one size (first run per step, cached re-run,
 * metadata.sqlite; inline against files):
 *
 * - 1 KiB: 0.76 against 2.65 ms, 77 against 99 ms, 14.8 against 4.2 MB
 * - 4 KiB: 1.2 against 2.9 ms, 94 against 84 ms, 35 against 4.2 MB
 * - 16 KiB: 1.9 against 3.0 ms, 300 against 79 ms, 117 against 4.2 MB
 *
 * Up to 1 KiB every figure is better inline; above, the first run gains less while the store
 * and the cached run pay more. Numbers, short strings, small JSON objects and small typed
 * arrays are below it; arrays of data above.
 */
export const INLINE_MAX_BYTES = 1024;

/**
 * Anything that names an artifact: its id and size, and its bytes when the entry keeps them.
 *
 * @example
 * const ref: MaybeInline = { id: '5d2e...', size: 2, inline: 'NDI=' };
 */
export type MaybeInline = ArtifactRef & { readonly inline?: string | undefined };

// constructors

/**
 * Whether bytes are to be kept inside their entry by a store: tiny, not empty (the empty
 * artifact has no bytes at all), and a store that can name them without storing them (`idOf`).
 *
 * @example
 * keptInline(createFileArtifactStore(dir), new Uint8Array(8)); // true
 * keptInline(createFileArtifactStore(dir), new Uint8Array(1 << 20)); // false: a file
 */
export const keptInline = (store: ArtifactStore, bytes: Uint8Array): boolean => store.idOf !== undefined && bytes.byteLength > 0 && bytes.byteLength <= INLINE_MAX_BYTES;

/**
 * The bytes as an inline descriptor carries them (base64).
 *
 * @example
 * inlineForm(Buffer.from('42')); // 'NDI='
 */
export const inlineForm = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');

// queries

/**
 * The artifacts of descriptors that live in the artifact store (files, objects): neither inline
 * nor empty. What garbage collection keeps, disk usage counts and a check-up reads.
 *
 * @example
 * storedArtifacts(Object.values(entry.outputs)).map((d) => d.id); // the files the entry needs
 */
export const storedArtifacts = <D extends MaybeInline>(refs: readonly D[]): D[] => refs.filter((d) => d.inline === undefined && d.id !== EMPTY_ARTIFACT_ID);

/**
 * Whether an inline artifact is present: its bytes are of the size it claims (base64 of `size`
 * bytes has this length), checked without decoding; `undefined` for an artifact that is not inline.
 *
 * @example
 * inlinePresence({ id: 'ab12', size: 2, inline: 'NDI=' }); // true
 * inlinePresence({ id: 'ab12', size: 2 }); // undefined: ask the store
 */
export const inlinePresence = (ref: MaybeInline): boolean | undefined => (ref.inline === undefined ? undefined : ref.inline.length === 4 * Math.ceil(ref.size / 3));

/**
 * Whether each artifact is present: an inline one (of the length its size says) without a call,
 * the others asked of the store in one batch (no call when there are none).
 *
 * @example
 * await artifactsPresent(store, Object.values(entry.outputs)); // [true, true]
 */
export const artifactsPresent = async (store: ArtifactStore, refs: readonly MaybeInline[]): Promise<boolean[]> => {
  const stored = refs.filter((r) => r.inline === undefined);
  const answers = stored.length === 0 ? [] : await store.present(stored);
  let next = 0;
  return refs.map((r) => inlinePresence(r) ?? answers[next++] === true);
};

/**
 * Where an artifact lives, for messages: the store's location, or its cache entry.
 *
 * @example
 * locateArtifact(store, { id: 'ab12', size: 2, inline: 'NDI=' }); // '(inside its cache entry) ab12'
 */
export const locateArtifact = (store: ArtifactStore, ref: MaybeInline): string => (ref.inline === undefined ? store.locate(ref.id) : `(inside its cache entry) ${ref.id}`);

// loading

/**
 * An artifact's bytes, verified against its id: decoded from the descriptor when it is inline
 * (its base64 canonical, its size and content hash as recorded, hashed by the store), loaded
 * from the store otherwise. A store that cannot name bytes (`idOf`) cannot check inline bytes:
 * they are then loaded from the store, as a file of the same id would be.
 *
 * @example
 * const bytes = await loadArtifact(store, entry.outputs.model); // Right(Buffer) or Left(ArtifactLoadError)
 */
export const loadArtifact = async (store: ArtifactStore, descriptor: ArtifactDescriptor): Promise<E.Either<ArtifactLoadError, Buffer>> => {
  const { inline, id, size } = descriptor;
  if (inline === undefined || store.idOf === undefined) return store.get({ id, size });
  const location = locateArtifact(store, descriptor);
  const fail = (tag: ArtifactLoadError['_tag'], message: string): E.Either<ArtifactLoadError, Buffer> => E.left({ _tag: tag, id, location, message });
  const bytes = Buffer.from(inline, 'base64');
  // Node decodes leniently (skipping what is not base64): only the canonical form of the bytes is accepted.
  if (bytes.toString('base64') !== inline) return fail('ArtifactCorrupted', 'is not valid base64 (the entry is damaged)');
  if (bytes.byteLength !== size) return fail(bytes.byteLength < size ? 'ArtifactTruncated' : 'ArtifactCorrupted', `has ${bytes.byteLength} bytes, expected ${size}`);
  const actual = await store.idOf(bytes);
  return actual === id ? E.right(bytes) : fail('ArtifactCorrupted', `content hash is ${actual}, expected ${id} (the entry is damaged)`);
};
