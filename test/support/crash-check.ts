/**
 * Checks a store left behind by a killed process: every cache entry's artifacts are there,
 * whole and with the right content; no file under an artifact's final name is partial or foreign;
 * the SQLite metadata opens and every row reads back. The store is only read: SQLite is opened
 * read-only (which still recovers a write-ahead log left by the killed writer), and the library's
 * own metadata store is used only on a database that exists.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import sqlite3 from 'sqlite3';
import { createFileArtifactStore, createSqliteMetadataStore, type ArtifactStore } from '../../src';
import { CacheEntryCodec, RunRecordCodec, RunSummaryCodec, type CacheEntry } from '../../src/store/records';

/** What one check found. */
export interface StoreCheck {
  /** Every inconsistency, one sentence each; empty when the store is consistent. */
  readonly violations: readonly string[];
  /** Rows `stepcache:entry:<key>` checked. */
  readonly entries: number;
  /** Rows `stepcache:latest:<pipeline>:<step>` and `stepcache:latest-step:<step>` checked. */
  readonly latest: number;
  /** Rows `stepcache:run:<id>` checked. */
  readonly runs: number;
  /** Files under final artifact names, each read and hashed. */
  readonly artifacts: number;
  /** Files left in `artifacts/tmp` (partial writes of killed processes; never read as artifacts). */
  readonly tmpFiles: number;
  /** Temporary `fingerprints.json.*.part` files left in the store directory. */
  readonly strayParts: number;
  /** The keys of the cache entries that are intact (from entry and latest rows). */
  readonly entryKeys: ReadonlySet<string>;
  /** The intact entries of the entry rows. */
  readonly intact: readonly CacheEntry[];
}

const SHARD = /^[0-9a-f]{2}$/;
/** An XXH3-128 content hash in hex: what every artifact file is named. */
const ARTIFACT_NAME = /^[0-9a-f]{32}$/;
const EMPTY_ARTIFACT_ID = 'none';

interface Row {
  readonly key: string;
  readonly value: string;
}

type ReadRows = { readonly _tag: 'absent' } | { readonly _tag: 'noTable' } | { readonly _tag: 'rows'; readonly rows: readonly Row[]; readonly integrity: string } | { readonly _tag: 'error'; readonly message: string };

/** Every row of the keyv table, read with a read-only connection; also runs SQLite's integrity check. */
const readRows = (file: string): Promise<ReadRows> => {
  if (!fs.existsSync(file)) return Promise.resolve({ _tag: 'absent' });
  return new Promise((resolve) => {
    const db = new sqlite3.Database(file, sqlite3.OPEN_READONLY, (openError) => {
      if (openError) return resolve({ _tag: 'error', message: `cannot be opened: ${openError.message}` });
      const done = (result: ReadRows): void => db.close(() => resolve(result));
      db.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'keyv'", (tableError, tables) => {
        if (tableError) return done({ _tag: 'error', message: `cannot be read: ${tableError.message}` });
        // A process killed while opening a new store may leave the file without the table; the next one creates it.
        if (tables.length === 0) return done({ _tag: 'noTable' });
        db.all<{ integrity_check: string }>('PRAGMA integrity_check', (integrityError, integrity) => {
          if (integrityError) return done({ _tag: 'error', message: `integrity check failed: ${integrityError.message}` });
          db.all<Row>('SELECT key, value FROM keyv', (readError, rows) => {
            if (readError) return done({ _tag: 'error', message: `table keyv cannot be read: ${readError.message}` });
            done({ _tag: 'rows', rows, integrity: integrity.map((r) => r.integrity_check).join('; ') });
          });
        });
      });
    });
  });
};

/** Parses a keyv row: `{ value, expires? }` as JSON. */
const parseRow = (row: Row): E.Either<string, unknown> => {
  try {
    const parsed = JSON.parse(row.value) as unknown;
    if (typeof parsed !== 'object' || parsed === null || !('value' in parsed)) return E.left('is not a keyv record ({ value })');
    return E.right((parsed as { value: unknown }).value);
  } catch (e) {
    return E.left(`is not valid JSON (${(e as Error).message})`);
  }
};

/**
 * Content verdicts kept between checks of one store: artifact id -> the identity of the file that
 * was read and found to hash to its id (device, inode, size, modification and change times in
 * nanoseconds). A file with the same identity has not been written since: any write changes its
 * change time, and a file renamed over the name has another inode. Such a file is not read again.
 */
export type VerifiedFiles = Map<string, string>;

/**
 * Checks the store in `dir` (the directory a runner was created with).
 *
 * @example
 * const report = await checkStore(dir);
 * expect(report.violations).toEqual([]);
 */
export const checkStore = async (dir: string, known: VerifiedFiles = new Map()): Promise<StoreCheck> => {
  const violations: string[] = [];
  const artifactsDir = path.join(dir, 'artifacts');
  const store: ArtifactStore = createFileArtifactStore(artifactsDir);
  /** Verdicts of this check by id and size: undefined when intact, else why not. */
  const verdicts = new Map<string, string | undefined>();
  const verify = async (id: string, size: number): Promise<string | undefined> => {
    const memo = `${id}/${size}`;
    if (verdicts.has(memo)) return verdicts.get(memo);
    const verdict = await (async (): Promise<string | undefined> => {
      if (!ARTIFACT_NAME.test(id)) return `${JSON.stringify(id)} is not an artifact id`;
      const file = path.join(artifactsDir, id.slice(0, 2), id);
      const stat = fs.statSync(file, { bigint: true, throwIfNoEntry: false });
      if (stat === undefined) return `${file} is missing`;
      if (stat.size !== BigInt(size)) return `${file} has ${stat.size} bytes, expected ${size}`;
      const identity = `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`;
      if (known.get(id) === identity) return undefined;
      const got = await store.get({ id, size });
      if (E.isLeft(got)) return `${got.left._tag}: ${got.left.location} ${got.left.message}`;
      known.set(id, identity);
      return undefined;
    })();
    verdicts.set(memo, verdict);
    return verdict;
  };

  // 1. the files: no file under a final name is partial or foreign

  let artifacts = 0;
  let tmpFiles = 0;
  if (fs.existsSync(artifactsDir)) {
    for (const shard of fs.readdirSync(artifactsDir, { withFileTypes: true })) {
      const shardPath = path.join(artifactsDir, shard.name);
      if (shard.name === 'tmp' && shard.isDirectory()) {
        tmpFiles += fs.readdirSync(shardPath).length;
        continue;
      }
      if (!shard.isDirectory() || !SHARD.test(shard.name)) {
        violations.push(`${shardPath} is neither artifacts/tmp nor a shard directory`);
        continue;
      }
      for (const file of fs.readdirSync(shardPath, { withFileTypes: true })) {
        const filePath = path.join(shardPath, file.name);
        if (!file.isFile() || !ARTIFACT_NAME.test(file.name) || !file.name.startsWith(shard.name)) {
          violations.push(`${filePath} is not named as an artifact of its shard (a partial or foreign file under a final name)`);
          continue;
        }
        artifacts++;
        const problem = await verify(file.name, Number(fs.statSync(filePath).size));
        if (problem !== undefined) violations.push(`artifact file ${filePath} does not hash to its name: ${problem}`);
      }
    }
  }
  const strayParts = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.startsWith('fingerprints.json.') && f.endsWith('.part')).length : 0;
  const fingerprints = path.join(dir, 'fingerprints.json');
  if (fs.existsSync(fingerprints)) {
    try {
      JSON.parse(fs.readFileSync(fingerprints, 'utf8'));
    } catch (e) {
      violations.push(`${fingerprints} is not whole JSON: ${(e as Error).message}`);
    }
  }

  // 2. the metadata: every row reads; every entry's artifacts are there, whole and right

  let entries = 0;
  let latest = 0;
  let runs = 0;
  const entryKeys = new Set<string>();
  const intactEntries: CacheEntry[] = [];
  const entryRowKeys: string[] = [];
  const sqliteFile = path.join(dir, 'metadata.sqlite');
  const read = await readRows(sqliteFile);
  if (read._tag === 'error') violations.push(`${sqliteFile} ${read.message}`);
  if (read._tag === 'rows') {
    if (read.integrity !== 'ok') violations.push(`${sqliteFile} fails PRAGMA integrity_check: ${read.integrity}`);
    for (const row of read.rows) {
      const value = parseRow(row);
      if (E.isLeft(value)) {
        violations.push(`row ${row.key} ${value.left}`);
        continue;
      }
      if (row.key.startsWith('stepcache:run:')) {
        runs++;
        const run = RunRecordCodec.decode(value.right);
        if (E.isLeft(run)) violations.push(`row ${row.key} is not a run record`);
        else if (run.right.id !== row.key.slice('stepcache:run:'.length)) violations.push(`row ${row.key} holds run ${run.right.id}`);
        else if (run.right.status !== 'running') {
          // A finished run's record names the artifacts of its steps: they were stored before it was written.
          for (const s of Object.values(run.right.steps)) {
            for (const [output, d] of Object.entries(s.outputs ?? {})) {
              if (d.id === EMPTY_ARTIFACT_ID) continue;
              const problem = await verify(d.id, d.size);
              if (problem !== undefined) violations.push(`run ${run.right.id} (${run.right.status}) step ${s.name} output ${output}: ${problem}`);
            }
          }
        }
        continue;
      }
      if (row.key.startsWith('stepcache:runidx:')) {
        if (!RunSummaryCodec.is(value.right)) violations.push(`row ${row.key} is not a run summary`);
        else if (row.key !== `stepcache:runidx:${value.right.startedAt}:${value.right.id}`) violations.push(`row ${row.key} holds the summary of run ${value.right.id}`);
        continue;
      }
      if (row.key.startsWith('stepcache:used:')) {
        if (typeof value.right !== 'number') violations.push(`row ${row.key} is not a time`);
        continue;
      }
      if (row.key.startsWith('stepcache:uses:')) {
        const uses = value.right;
        const readable = typeof uses === 'object' && uses !== null && 'at' in uses && typeof uses.at === 'number' && 'keys' in uses && typeof uses.keys === 'string';
        if (!readable) violations.push(`row ${row.key} is not a run's start and keys`);
        continue;
      }
      if (row.key === 'stepcache:meta:run-index') continue;
      const isEntry = row.key.startsWith('stepcache:entry:');
      const isLatestOfStep = row.key.startsWith('stepcache:latest-step:');
      const isLatestHead = row.key.startsWith('stepcache:latest-head:');
      const isLatest = isLatestOfStep || isLatestHead || row.key.startsWith('stepcache:latest:');
      if (!isEntry && !isLatest) {
        violations.push(`row ${row.key} is not a key stepcache writes`);
        continue;
      }
      if (isEntry) entries++;
      else latest++;
      if (!CacheEntryCodec.is(value.right)) {
        violations.push(`row ${row.key} is not a cache entry`);
        continue;
      }
      const entry = value.right;
      if (isEntry && row.key !== `stepcache:entry:${entry.key}`) violations.push(`row ${row.key} holds the entry of key ${entry.key}`);
      if (isLatestOfStep && row.key !== `stepcache:latest-step:${entry.step}`) violations.push(`row ${row.key} holds the entry of step ${entry.step}`);
      if (isLatestHead && row.key !== `stepcache:latest-head:${entry.step}`) violations.push(`row ${row.key} holds the head of step ${entry.step}`);
      if (isLatest && !isLatestOfStep && !isLatestHead && row.key !== `stepcache:latest:${entry.pipeline}:${entry.step}`) violations.push(`row ${row.key} holds the entry of step ${entry.pipeline}:${entry.step}`);
      if (isEntry) entryRowKeys.push(entry.key);
      let intact = true;
      for (const [output, d] of Object.entries(entry.outputs)) {
        const where = `entry ${entry.key.slice(0, 12)} (step ${entry.step}, run ${entry.runId}) output ${output}`;
        if (d.id === EMPTY_ARTIFACT_ID) {
          if (d.size !== 0) violations.push(`${where}: the empty artifact has size ${d.size}`);
          continue;
        }
        const problem = await verify(d.id, d.size);
        if (problem !== undefined) {
          intact = false;
          violations.push(`${where}: ${problem}`);
        }
      }
      if (intact) entryKeys.add(entry.key);
      if (intact && isEntry) intactEntries.push(entry);
    }
  }

  // 3. the library reads back what is there

  if (read._tag === 'rows') {
    const metadata = createSqliteMetadataStore(sqliteFile);
    try {
      const got = await metadata.getEntries(entryRowKeys);
      got.forEach((e, i) => {
        if (e === undefined) violations.push(`the metadata store does not return the entry of key ${entryRowKeys[i] ?? '?'}, which has a row`);
      });
      await metadata.listRuns();
    } catch (e) {
      violations.push(`the metadata store cannot be read: ${(e as Error).message}`);
    } finally {
      await metadata.close();
    }
  }

  return { violations, entries, latest, runs, artifacts, tmpFiles, strayParts, entryKeys, intact: intactEntries };
};
