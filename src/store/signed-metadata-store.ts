/**
 * Signed cache entries for shared stores: with a team secret, every entry written carries an
 * HMAC-SHA256 over the rest of it, and an entry whose signature does not verify (written without
 * the secret, or altered) is ignored and reported. Artifacts are covered through the content
 * hashes the signed entry names, which are verified on every load.
 *
 * @packageDocumentation
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import * as E from 'fp-ts/Either';
import { encodeCanonical } from '../encoding/canonical';
import type { MetadataStore } from './metadata-store';
import type { CacheEntry } from './records';

const signatureOf = (secret: string | Uint8Array, entry: CacheEntry): string | undefined => {
  const { signature: _ignored, ...unsigned } = entry;
  const encoded = encodeCanonical(unsigned);
  return E.isRight(encoded) ? createHmac('sha256', secret).update(encoded.right).digest('hex') : undefined;
};

const verifies = (secret: string | Uint8Array, entry: CacheEntry): boolean => {
  if (entry.signature === undefined) return false;
  const expected = signatureOf(secret, entry);
  if (expected === undefined || expected.length !== entry.signature.length) return false;
  return timingSafeEqual(Buffer.from(expected), Buffer.from(entry.signature));
};

/**
 * Wraps a metadata store so that entries are signed on write and verified on read.
 * `onRejected` hears of every entry ignored for its signature.
 *
 * @example
 * const metadata = signedMetadataStore(createKeyvMetadataStore(teamKeyv), process.env.STEPCACHE_SECRET!, (e) =>
 *   console.warn(`ignoring unsigned entry of ${e.step}`));
 */
export const signedMetadataStore = (inner: MetadataStore, secret: string | Uint8Array, onRejected: (entry: CacheEntry) => void): MetadataStore => {
  const check = (entry: CacheEntry | undefined): CacheEntry | undefined => {
    if (entry === undefined) return undefined;
    if (verifies(secret, entry)) return entry;
    onRejected(entry);
    return undefined;
  };
  return Object.freeze({
    ...inner,
    getEntries: async (keys: readonly string[]) => (await inner.getEntries(keys)).map(check),
    getLatestEntries: async (pipeline: string, steps: readonly string[]) => (await inner.getLatestEntries(pipeline, steps)).map(check),
    getLatestEntriesOfSteps: async (steps: readonly string[]) => (await inner.getLatestEntriesOfSteps(steps)).map(check),
    listEntries: async () => (await inner.listEntries()).filter((e) => check(e) !== undefined),
    putEntry: async (entry: CacheEntry, options?: { readonly ttlMs?: number | undefined }) => {
      const signature = signatureOf(secret, entry);
      await inner.putEntry(signature === undefined ? entry : { ...entry, signature }, options);
    },
  });
};
