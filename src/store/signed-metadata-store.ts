/**
 * Signed cache entries for shared stores: with a team secret, every entry written carries an
 * HMAC-SHA256 over the rest of it, and an entry is served only when its signature verifies and it
 * was signed for the very key (or step) it is found under.
 *
 * Threat model: someone who can write to the metadata store (and to the artifact store) but does
 * not know the secret. They cannot make an entry that verifies, cannot move a verified entry to
 * another key (the signature covers the key, and the key is checked against the lookup), and
 * cannot swap an artifact's bytes (the signed entry names the artifact by a hash keyed with a key
 * derived from the secret, see `contentHashing`, which is verified on load: a file written to in
 * any way after a process verified it is verified again, see `createFileArtifactStore`). They can still
 * delete entries and artifacts, and replay an entry under its own key (for the same inputs, the
 * same code): both only cost an execution.
 *
 * @packageDocumentation
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import * as E from 'fp-ts/Either';
import { encodeCanonical } from '../encoding/canonical';
import type { MetadataStore, PutEntryOptions } from './metadata-store';
import type { CacheEntry } from './records';

// model

/**
 * Why a signed store refused an entry it found:
 *
 * - `Unsigned`: the entry carries no signature (written by a runner without a secret).
 * - `MovedEntry`: the signature verifies, but the entry was signed for another key (or another
 *   step) than the one it was found under: it was copied there.
 * - `ForeignSignature`: the signature does not verify: the entry was signed with another secret,
 *   or altered after it was signed. `firstInRun` is true for the first one met by this store
 *   (one per run), whose message asks whether two teams share the store with different secrets.
 *
 * @example
 * const onRejected = (r: EntryRejection) => console.warn(describeRejection(r));
 */
export type EntryRejection =
  | { readonly _tag: 'Unsigned'; readonly entry: CacheEntry }
  | { readonly _tag: 'MovedEntry'; readonly entry: CacheEntry; readonly foundUnder: string }
  | { readonly _tag: 'ForeignSignature'; readonly entry: CacheEntry; readonly firstInRun: boolean };

/** The question asked once per run when an entry's signature does not verify. */
const ANOTHER_SECRET = 'Entries in this store are signed with another secret: are two teams sharing this store with different secrets?';

/**
 * A refused entry, said for a person: which step, which run, why, and what it may mean.
 *
 * @example
 * describeRejection({ _tag: 'Unsigned', entry }); // 'Ignoring the cache entry of step train (pipeline p, run r1): it is not signed, ...'
 */
export const describeRejection = (rejection: EntryRejection): string => {
  const { entry } = rejection;
  const which = `Ignoring the cache entry of step ${entry.step} (pipeline ${entry.pipeline}, run ${entry.runId})`;
  switch (rejection._tag) {
    case 'Unsigned':
      return `${which}: it is not signed, and this runner has a secret (it was written by a runner without the secret); the step executes and its entry replaces it.`;
    case 'MovedEntry':
      return `${which}: it was signed for another key than ${rejection.foundUnder} and copied there; the step executes and its entry replaces it.`;
    case 'ForeignSignature':
      return `${which}: its signature does not verify with this runner's secret (signed with another secret, or altered).${rejection.firstInRun ? ` ${ANOTHER_SECRET}` : ''}`;
  }
};

// signing

const signatureOf = (secret: string | Uint8Array, entry: CacheEntry): string | undefined => {
  const { signature: _ignored, ...unsigned } = entry;
  const encoded = encodeCanonical(unsigned);
  return E.isRight(encoded) ? createHmac('sha256', secret).update(encoded.right).digest('hex') : undefined;
};

const verifies = (secret: string | Uint8Array, entry: CacheEntry & { readonly signature: string }): boolean => {
  const expected = signatureOf(secret, entry);
  if (expected === undefined || expected.length !== entry.signature.length) return false;
  return timingSafeEqual(Buffer.from(expected), Buffer.from(entry.signature));
};

// the store

/**
 * Wraps a metadata store so that entries are signed on write and verified on read, against the
 * key (or the pipeline and step) they are looked up by. `onRejected` hears of every refused
 * entry, once per entry; a refused entry is a miss, and the entry written for its key replaces
 * it. Make one per run: what it reports once, it reports once per wrapper.
 *
 * @example
 * const metadata = signedMetadataStore(createKeyvMetadataStore(teamKeyv), process.env.STEPCACHE_SECRET!, (r) =>
 *   console.warn(describeRejection(r)));
 */
export const signedMetadataStore = (inner: MetadataStore, secret: string | Uint8Array, onRejected: (rejection: EntryRejection) => void): MetadataStore => {
  /** Keys whose stored entry was refused: the next entry written for one overwrites it. */
  const refusedKeys = new Set<string>();
  const reported = new Set<string>();
  let foreignSeen = false;
  /** Reports a refused entry once; `lookupKey`: the key it was found under (none for a latest entry). */
  const refuse = (lookupKey: string | undefined, rejection: EntryRejection): undefined => {
    const under = lookupKey ?? rejection.entry.key;
    if (lookupKey !== undefined || rejection._tag !== 'MovedEntry') refusedKeys.add(under);
    const id = `${rejection._tag}\0${under}\0${rejection.entry.signature ?? ''}`;
    if (reported.has(id)) return undefined;
    reported.add(id);
    onRejected(rejection);
    return undefined;
  };
  /** The entry if it verifies and was signed for `lookup`'s key, pipeline and step (those given). */
  const check = (entry: CacheEntry | undefined, lookup: { readonly key?: string; readonly pipeline?: string; readonly step?: string }): CacheEntry | undefined => {
    if (entry === undefined) return undefined;
    if (entry.signature === undefined) return refuse(lookup.key, { _tag: 'Unsigned', entry });
    if (!verifies(secret, { ...entry, signature: entry.signature })) {
      const firstInRun = !foreignSeen;
      foreignSeen = true;
      return refuse(lookup.key, { _tag: 'ForeignSignature', entry, firstInRun });
    }
    const moved =
      (lookup.key !== undefined && entry.key !== lookup.key) ||
      (lookup.pipeline !== undefined && entry.pipeline !== lookup.pipeline) ||
      (lookup.step !== undefined && entry.step !== lookup.step);
    return moved ? refuse(lookup.key, { _tag: 'MovedEntry', entry, foundUnder: lookup.key ?? `the latest entry of step ${lookup.step ?? entry.step}` }) : entry;
  };
  return Object.freeze({
    ...inner,
    getEntries: async (keys: readonly string[]) => (await inner.getEntries(keys)).map((entry, i) => check(entry, { key: keys[i] as string })),
    getLatestEntries: async (pipeline: string, steps: readonly string[]) =>
      (await inner.getLatestEntries(pipeline, steps)).map((entry, i) => check(entry, { pipeline, step: steps[i] as string })),
    getLatestEntriesOfSteps: async (steps: readonly string[]) =>
      (await inner.getLatestEntriesOfSteps(steps)).map((entry, i) => check(entry, { step: steps[i] as string })),
    // A signature covers the whole entry: heads are read as whole entries, each verified.
    getLatestHeadsOfSteps: async (steps: readonly string[]) =>
      (await inner.getLatestEntriesOfSteps(steps)).map((entry, i) => check(entry, { step: steps[i] as string })),
    listEntries: async () => (await inner.listEntries()).filter((e) => check(e, { key: e.key }) !== undefined),
    putEntry: async (entry: CacheEntry, options?: PutEntryOptions) => {
      const signature = signatureOf(secret, entry);
      const replace = options?.replace === true || refusedKeys.has(entry.key);
      await inner.putEntry(signature === undefined ? entry : { ...entry, signature }, { ...options, replace });
    },
  });
};
