/**
 * Helpers shared by the end-to-end tests: temporary stores, a collecting logger and an
 * artifact store wrapper that counts reads.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createFileArtifactStore, StepcacheError, type ArtifactStore, type Logger, type Runner } from '../../src';

/** A fresh temporary directory; removed by `removeDir`. */
export const tempDir = (prefix = 'stepcache-test-'): string => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

/** Removes a directory tree. */
export const removeDir = (dir: string): void => fs.rmSync(dir, { recursive: true, force: true });

/** A logger that keeps every line, with its level. */
export interface CollectingLogger extends Logger {
  readonly lines: string[];
  readonly warnings: string[];
  readonly errors: string[];
  clear(): void;
}

/** Makes a {@link CollectingLogger}. */
export const collectingLogger = (): CollectingLogger => {
  const lines: string[] = [];
  const warnings: string[] = [];
  const errors: string[] = [];
  return {
    lines,
    warnings,
    errors,
    info: (m) => void lines.push(m),
    warn: (m) => void warnings.push(m),
    error: (m) => void errors.push(m),
    clear: () => {
      lines.length = 0;
      warnings.length = 0;
      errors.length = 0;
    },
  };
};

/** An artifact store over files that counts how often content is loaded. */
export const countingArtifactStore = (dir: string): ArtifactStore & { readonly gets: string[] } => {
  const inner = createFileArtifactStore(dir);
  const gets: string[] = [];
  return {
    gets,
    put: (bytes) => inner.put(bytes),
    get: (ref) => {
      gets.push(ref.id);
      return inner.get(ref);
    },
    present: (refs) => inner.present(refs),
    remove: (id) => inner.remove(id),
    locate: (id) => inner.locate(id),
    list: () => inner.list(),
    sweepTemporary: (olderThanMs) => inner.sweepTemporary(olderThanMs),
  };
};

/** All files below a directory, relative to it. */
export const filesBelow = (dir: string): string[] => {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile());
};

/** The rejection of a promise, which must reject with a StepcacheError. */
export const rejection = async (p: Promise<unknown>): Promise<StepcacheError> => {
  try {
    await p;
  } catch (e) {
    if (e instanceof StepcacheError) return e;
    throw e;
  }
  throw new Error('expected a rejection');
};

/**
 * A fresh store folder for each test, and the runners a test keeps on it: closed, and the folder
 * removed, after each test. Call it at the top of a test file or of a `describe`.
 */
export const storePerTest = (): { readonly dir: () => string; readonly keep: <R extends Runner>(runner: R) => R } => {
  let current = '';
  const runners: Runner[] = [];
  beforeEach(() => {
    current = tempDir();
  });
  afterEach(async () => {
    await Promise.all(runners.splice(0).map((r) => r.close()));
    removeDir(current);
  });
  return { dir: () => current, keep: (runner) => (runners.push(runner), runner) };
};

/**
 * The embedded artifact store of a store folder, with every output written as a file: without
 * `idOf`, no output is kept inside its cache entry. For tests about artifact files (damaged,
 * removed, unreadable) whose outputs are tiny.
 */
export const filesOnly = (storeDir: string): ArtifactStore => {
  const { idOf: _inline, ...files } = createFileArtifactStore(path.join(storeDir, 'artifacts'));
  return Object.freeze(files);
};
