/**
 * Code fingerprints kept on disk between processes, so that a fresh process does not load the
 * TypeScript compiler and parse source files when none of them changed. A kept fingerprint is
 * used only while the function's text is the same and everything observed to compute it is the
 * same: the content of every file read, the existence of every file looked for, the listing of
 * every directory listed, the value of every environment variable read. A fingerprint made from
 * something that cannot be observed again (a module edited on disk after this process loaded it,
 * a value read from a loaded module) is never kept.
 *
 * With a team secret the file is signed (HMAC-SHA256 under a key derived from the secret), so
 * that code identity cannot be forged by editing it: a kept fingerprint decides which cache
 * entries a step is served, so an edited file could otherwise make changed code hit old entries.
 * A file whose signature does not verify is ignored, said once, and rebuilt.
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { fingerprintFunction } from './fingerprint';
import type { CallSite, CodeFingerprint } from './model';
import { currentState, isUnrepeatable, trackConsultedFiles } from './observed';

interface Kept {
  /** The hash of the function's text. */
  readonly text: string;
  readonly fingerprint: CodeFingerprint;
  readonly files: Readonly<Record<string, string>>;
}

/**
 * A fingerprint cache backed by one JSON file.
 *
 * @example
 * const cache = openFingerprintDiskCache('.stepcache/fingerprints.json', hashKey);
 * const fp = cache.fingerprint(fn, site);
 * await cache.flush();
 */
export interface FingerprintDiskCache {
  /** The fingerprint of `fn` defined at `site`: kept, or computed (and kept). */
  fingerprint(fn: Function, site: CallSite | undefined): CodeFingerprint;
  /** Writes what was computed since the last flush (atomically); forgets file states seen. */
  flush(): Promise<void>;
}

/**
 * The version of the file format: 3 keeps files by content; 4 has fingerprints that follow the
 * classes a step's parameter types name (a kept fingerprint of 3 did not consult their files, so
 * could outlive an edit of them). Files of earlier versions are ignored.
 */
const FORMAT = 4;

/**
 * How a fingerprint cache file is trusted.
 *
 * @example
 * const options: FingerprintDiskCacheOptions = { secret: process.env.STEPCACHE_SECRET, onIgnored: (m) => console.warn(m) };
 */
export interface FingerprintDiskCacheOptions {
  /** The team's secret: the file is signed with it, and a file that does not verify is ignored. @default unsigned */
  readonly secret?: string | Uint8Array | undefined;
  /** Hears why the file was ignored (once). @default ignore it */
  readonly onIgnored?: (message: string) => void;
  /** Whether the file may not be written now (a read-only store): `flush` then writes nothing. @default never */
  readonly readOnly?: () => boolean;
}

/** Separates the fingerprint key from every other use of the secret. */
const FINGERPRINT_KEY_LABEL = 'stepcache fingerprints v1';

/**
 * @internal The signature of a fingerprint file's entries (their JSON text) under `secret`.
 *
 * @example
 * signFingerprintEntries('team-secret', '{}'); // 64 hex digits
 */
export const signFingerprintEntries = (secret: string | Uint8Array, entriesText: string): string =>
  createHmac('sha256', createHmac('sha256', secret).update(FINGERPRINT_KEY_LABEL).digest()).update(entriesText).digest('hex');

const signatureVerifies = (secret: string | Uint8Array, entriesText: string, signature: unknown): boolean => {
  if (typeof signature !== 'string') return false;
  const expected = Buffer.from(signFingerprintEntries(secret, entriesText));
  const given = Buffer.from(signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
};

/**
 * Opens (lazily reads) a fingerprint cache file. A missing or damaged file is an empty cache; with
 * a secret, so is a file whose signature does not verify (edited, or written without the secret),
 * and `onIgnored` hears of it.
 *
 * @example
 * const cache = openFingerprintDiskCache(path.join(dir, 'fingerprints.json'), hashKey);
 * const signed = openFingerprintDiskCache(file, hashKey, { secret: 'team-secret', onIgnored: console.warn });
 */
export const openFingerprintDiskCache = (file: string, hash: (bytes: Uint8Array) => string, options: FingerprintDiskCacheOptions = {}): FingerprintDiskCache => {
  const { secret } = options;
  let kept: Map<string, Kept> | undefined;
  let dirty = false;
  const states = new Map<string, string>();
  /** The hash of each function's text (a function's text never changes). */
  const textHashes = new WeakMap<Function, string>();
  const stateNow = (f: string, like: string): string => {
    const kind = `${f}\0${like.slice(0, 4)}`;
    let state = states.get(kind);
    if (state === undefined) {
      state = currentState(f, like);
      states.set(kind, state);
    }
    return state;
  };
  const load = (): Map<string, Kept> => {
    if (kept !== undefined) return kept;
    kept = new Map();
    try {
      const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as { format?: unknown; entries?: unknown; signature?: unknown };
      if (parsed.format === FORMAT && typeof parsed.entries === 'object' && parsed.entries !== null) {
        // JSON text read back is written again identically, so the signed text is the entries' JSON.
        if (secret !== undefined && !signatureVerifies(secret, JSON.stringify(parsed.entries), parsed.signature)) {
          options.onIgnored?.(
            `Ignoring the code fingerprints kept in ${file}: ${parsed.signature === undefined ? 'the file is not signed' : "its signature does not verify with this runner's secret"} (edited, or written without the secret); they are computed again and the file is rebuilt.`,
          );
          return kept;
        }
        for (const [k, v] of Object.entries(parsed.entries as Record<string, Kept>)) kept.set(k, v);
      }
    } catch {
      // absent or damaged: start empty
    }
    return kept;
  };
  return {
    fingerprint: (fn, site) => {
      if (site === undefined) return fingerprintFunction(fn, site, hash);
      const id = `${site.file}:${site.line}:${site.column}:${fn.name}`;
      let text = textHashes.get(fn);
      if (text === undefined) {
        text = hash(new TextEncoder().encode(Function.prototype.toString.call(fn)));
        textHashes.set(fn, text);
      }
      const entries = load();
      const found = entries.get(id);
      if (found !== undefined && found.text === text && Object.entries(found.files).every(([f, state]) => stateNow(f, state) === state)) {
        return found.fingerprint;
      }
      const { result, files } = trackConsultedFiles(() => fingerprintFunction(fn, site, hash));
      if (!result.shallow && ![...files.values()].some(isUnrepeatable)) {
        entries.set(id, { text, fingerprint: result, files: Object.fromEntries(files) });
        dirty = true;
      }
      return result;
    },
    flush: async () => {
      states.clear();
      if (!dirty || kept === undefined || options.readOnly?.() === true) return;
      dirty = false;
      const tmp = `${file}.${process.pid}-${randomBytes(4).toString('hex')}.part`;
      try {
        await fs.promises.mkdir(path.dirname(file), { recursive: true });
        const entriesText = JSON.stringify(Object.fromEntries(kept));
        const signature = secret === undefined ? '' : `,"signature":${JSON.stringify(signFingerprintEntries(secret, entriesText))}`;
        await fs.promises.writeFile(tmp, `{"format":${FORMAT},"entries":${entriesText}${signature}}`);
        await fs.promises.rename(tmp, file);
      } catch {
        await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
      }
    },
  };
};
