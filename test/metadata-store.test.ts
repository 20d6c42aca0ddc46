/**
 * The metadata store reads records back decoded: a damaged row is a typed failure for the one
 * who asked for it, is skipped by listings, and is reported once; and the embedded store (keyv over
 * SQLite) keeps the metadata store contract that every metadata store keeps.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import KeyvSqlite from '@keyv/sqlite';
import * as E from 'fp-ts/Either';
import * as fc from 'fast-check';
import Keyv from 'keyv';
import { createKeyvMetadataStore, createSqliteMetadataStore, sqlitePragmasFor, type MetadataStore } from '../src/store/metadata-store';
import { metadataStoreContract } from './contract/metadata-store.contract';
import type { CacheEntry, DamagedRecord, RunRecord } from '../src/store/records';
import { removeDir, tempDir } from './support/fixtures';

const run = (id: string, startedAt: string): RunRecord => ({ id, pipeline: 'p', parameters: {}, status: 'completed', startedAt, steps: {}, outputs: {} });
const entry: CacheEntry = { key: 'k1', pipeline: 'p', step: 's', runId: 'r1', createdAt: 1, durationMs: 2, outputs: {} };

describe('a metadata store with damaged rows', () => {
  let dir: string;
  let keyv: Keyv;
  let store: MetadataStore;
  let damaged: DamagedRecord[];

  beforeEach(async () => {
    dir = tempDir('metadata-');
    keyv = new Keyv({ store: new KeyvSqlite({ uri: `sqlite://${path.join(dir, 'metadata.sqlite')}` }), namespace: 'stepcache' });
    damaged = [];
    store = createKeyvMetadataStore(keyv, { onDamaged: (d) => void damaged.push(d) });
    await store.putRun(run('r1', '2026-11-30T10:00:00.000Z'));
    await store.putRun(run('r2', '2026-11-30T11:00:00.000Z'));
    await keyv.set('run:bad', { ...run('bad', '2026-11-30T12:00:00.000Z'), status: 'exploded' });
    await store.putEntry(entry);
    await keyv.set('entry:k2', { ...entry, key: 'k2', outputs: 'lost' });
  });

  afterEach(async () => {
    await store.close();
    removeDir(dir);
  });

  it('gives the one who asks for a damaged run the field at fault', async () => {
    expect(await store.readRun('bad')).toEqual(E.left({ _tag: 'DamagedRecord', record: 'run', id: 'bad', message: 'run bad field status: expected "running" | "completed" | "failed" | "interrupted", got "exploded"' }));
    expect(await store.readRun('absent')).toEqual(E.right(undefined));
    expect(await store.readRun('r1')).toEqual(E.right(run('r1', '2026-11-30T10:00:00.000Z')));
    expect(await store.getRun('bad')).toBeUndefined();
  });

  it('lists the intact runs and entries, and reports each damaged row once', async () => {
    expect((await store.listRuns()).map((r) => r.id)).toEqual(['r2', 'r1']);
    expect((await store.listRuns()).map((r) => r.id)).toEqual(['r2', 'r1']);
    expect((await store.listEntries()).map((e) => e.key)).toEqual(['k1']);
    expect(await store.getEntries(['k1', 'k2', 'k3'])).toEqual([entry, undefined, undefined]);
    expect(damaged.map((d) => d.message)).toEqual(['run bad field status: expected "running" | "completed" | "failed" | "interrupted", got "exploded"', expect.stringMatching(/^cache entry k2 field outputs: expected \{ \[K in string\]: .*…, got "lost"$/)]);
  });
});

metadataStoreContract('keyv over SQLite', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'metadata.sqlite');
  const store = createSqliteMetadataStore(file);
  // A second handle on the same file, with the store's namespace and serialization, to damage rows behind its back.
  const raw = new Keyv({ store: new KeyvSqlite({ uri: `sqlite://${file}`, busyTimeout: 10_000 }), namespace: 'stepcache', serialize: JSON.stringify, deserialize: JSON.parse });
  return {
    store,
    damageEntry: async (key) => {
      await raw.set(`entry:${key}`, { key, outputs: 'not descriptors' });
    },
    damageRun: async (id) => {
      await raw.set(`run:${id}`, { id, steps: 42 });
    },
    dispose: async () => {
      await raw.disconnect();
      await store.close();
      removeDir(dir);
    },
  };
});

describe('the embedded SQLite store', () => {
  it('a new store is in write-ahead logging before its first write: the entry put first is in the log, not synced into the database file', async () => {
    const dir = tempDir('metadata-');
    const file = path.join(dir, 'metadata.sqlite');
    const store = createSqliteMetadataStore(file);
    try {
      await store.putEntry(entry);
      // Bytes 18 and 19 of the header: 2 and 2 in WAL mode (1 and 1 with a rollback journal).
      const header = fs.readFileSync(file).subarray(18, 20);
      expect([...header]).toEqual([2, 2]);
      expect(fs.statSync(`${file}-wal`).size).toBeGreaterThan(0);
      expect((await store.getEntries([entry.key]))[0]).toEqual(entry);
    } finally {
      await store.close();
      removeDir(dir);
    }
  });

  it('switches a new database to write-ahead logging with syncs off, then syncs as usual; an existing one is never written with syncs off', async () => {
    const dir = tempDir('metadata-');
    const file = path.join(dir, 'metadata.sqlite');
    try {
      const fresh = sqlitePragmasFor(file);
      expect(fresh).toEqual(['PRAGMA synchronous=OFF', 'PRAGMA journal_mode=WAL', 'PRAGMA synchronous=NORMAL']);
      fs.writeFileSync(file, '');
      expect(sqlitePragmasFor(file)).toEqual(fresh); // an empty file is a new database too
      const store = createSqliteMetadataStore(file);
      await store.putEntry(entry);
      await store.close();
      const existing = sqlitePragmasFor(file);
      expect(existing).not.toContain('PRAGMA synchronous=OFF');
      expect(existing).toContain('PRAGMA journal_mode=WAL');
      const again = createSqliteMetadataStore(file);
      expect((await again.getEntries([entry.key]))[0]).toEqual(entry);
      await again.close();
    } finally {
      removeDir(dir);
    }
  });
});

describe('entries put at once (group commit)', () => {
  const at = (key: string, step: string, createdAt: number, runId = 'r'): CacheEntry => ({ key, pipeline: 'p', step, runId, createdAt, durationMs: 1, outputs: {} });

  it('entries put in one turn are all durable once their puts resolve: a second handle on the file reads every one, first writer of a key winning', async () => {
    const dir = tempDir('metadata-');
    const file = path.join(dir, 'metadata.sqlite');
    const store = createSqliteMetadataStore(file);
    const other = createSqliteMetadataStore(file);
    try {
      const entries = Array.from({ length: 700 }, (_, i) => at(`k${i}`, `s${i % 10}`, i));
      await Promise.all([...entries.map((e) => store.putEntry(e)), store.putEntry({ ...at('k0', 's0', 0), runId: 'second' })]);
      const read = await other.getEntries(entries.map((e) => e.key));
      expect(read).toEqual(entries);
      // The latest of each step is its newest entry, whatever the order of the batch.
      expect((await other.getLatestEntriesOfSteps(['s0', 's9'])).map((e) => e?.key)).toEqual(['k690', 'k699']);
      await store.putEntry({ ...at('k1', 's1', 1), runId: 'replacing' }, { replace: true });
      expect((await other.getEntries(['k1']))[0]?.runId).toBe('replacing');
    } finally {
      await other.close();
      await store.close();
      removeDir(dir);
    }
  });

  it('entries that replace (written without reading first) still leave the newest entry of a step its latest, and overwrite damaged rows', async () => {
    const dir = tempDir('metadata-');
    const file = path.join(dir, 'metadata.sqlite');
    const store = createSqliteMetadataStore(file);
    const raw = new KeyvSqlite({ uri: `sqlite://${file}` });
    try {
      await store.putEntry(at('new', 's', 100));
      // Older than the step's latest, in one batch, the last of a key winning: the latest stays the newer one.
      await Promise.all([store.putEntry(at('old', 's', 50, 'first'), { replace: true }), store.putEntry(at('old', 's', 60, 'second'), { replace: true })]);
      expect((await store.getEntries(['old']))[0]?.runId).toBe('second');
      expect((await store.getLatestEntriesOfSteps(['s']))[0]?.key).toBe('new');
      expect((await store.getLatestEntries('p', ['s']))[0]?.key).toBe('old');
      // Newer: it becomes the latest.
      await store.putEntry(at('newer', 's', 200), { replace: true });
      expect((await store.getLatestEntriesOfSteps(['s']))[0]?.key).toBe('newer');
      // Damaged rows (the entry, the step's latest, one with a later createdAt but no entry in it) are overwritten.
      await raw.query(`UPDATE keyv SET value = 'not json' WHERE key IN ('stepcache:entry:newer', 'stepcache:latest-step:s')`);
      await store.putEntry(at('newer', 's', 150), { replace: true });
      expect((await store.getEntries(['newer']))[0]?.createdAt).toBe(150);
      expect((await store.getLatestEntriesOfSteps(['s']))[0]?.createdAt).toBe(150);
      await raw.query(`UPDATE keyv SET value = '{"value":{"createdAt":"later"}}' WHERE key = 'stepcache:latest-step:s'`);
      await store.putEntry(at('k2', 's', 10), { replace: true });
      expect((await store.getLatestEntriesOfSteps(['s']))[0]?.key).toBe('k2');
      // Entries put without replace in the same batch as replacing ones are still inserted only where absent.
      await Promise.all([store.putEntry(at('k2', 's', 11, 'not-replacing')), store.putEntry(at('k3', 's', 12), { replace: true })]);
      expect((await store.getEntries(['k2', 'k3'])).map((e) => e?.runId)).toEqual(['r', 'r']);
    } finally {
      await raw.close();
      await store.close();
      removeDir(dir);
    }
  });

  it('a commit that fails rejects every put in it, and the next commit writes again', async () => {
    const dir = tempDir('metadata-');
    const keyv = new Keyv({ store: new KeyvSqlite({ uri: `sqlite://${path.join(dir, 'metadata.sqlite')}` }), namespace: 'stepcache' });
    const store = createKeyvMetadataStore(keyv);
    try {
      const setMany = keyv.setMany.bind(keyv);
      keyv.setMany = () => Promise.reject(new Error('disk full'));
      const puts = [store.putEntry(at('a', 's', 1)), store.putEntry(at('b', 's', 2))].map((p) => p.then(() => 'written', (e: unknown) => (e as Error).message));
      expect(await Promise.all(puts)).toEqual(['disk full', 'disk full']);
      keyv.setMany = setMany;
      await store.putEntry(at('a', 's', 1));
      expect((await store.getEntries(['a', 'b'])).map((e) => e?.key)).toEqual(['a', undefined]);
    } finally {
      await store.close();
      removeDir(dir);
    }
  });

  it('closing the store writes the entries already put first', async () => {
    const dir = tempDir('metadata-');
    const file = path.join(dir, 'metadata.sqlite');
    const store = createSqliteMetadataStore(file);
    const put = store.putEntry(at('late', 's', 1));
    await store.close();
    await put;
    const reopened = createSqliteMetadataStore(file);
    try {
      expect((await reopened.getEntries(['late']))[0]?.key).toBe('late');
    } finally {
      await reopened.close();
      removeDir(dir);
    }
  });
});

describe('the embedded store: last uses and rows read again', () => {
  let dir: string;
  let file: string;
  let store: MetadataStore;
  let raw: Keyv;

  const used = (id: string, startedAt: string, keys: readonly string[]): RunRecord => ({
    ...run(id, startedAt),
    steps: Object.fromEntries(keys.map((key, i) => [`s${i}`, { name: `s${i}`, status: 'cached' as const, durationMs: 1, key, cachedFrom: 'r0' }])),
  });
  const rowKeys = async (prefix: string): Promise<string[]> => {
    const keys: string[] = [];
    if (raw.iterator === undefined) throw new Error('the SQLite adapter iterates its rows');
    for await (const [key] of raw.iterator(undefined)) if (typeof key === 'string' && key.startsWith(prefix)) keys.push(key);
    return keys.sort();
  };

  beforeEach(() => {
    dir = tempDir('metadata-');
    file = path.join(dir, 'metadata.sqlite');
    store = createSqliteMetadataStore(file);
    raw = new Keyv({ store: new KeyvSqlite({ uri: `sqlite://${file}`, busyTimeout: 10_000 }), namespace: 'stepcache', serialize: JSON.stringify, deserialize: JSON.parse });
  });

  afterEach(async () => {
    await raw.disconnect();
    await store.close();
    removeDir(dir);
  });

  it('a finished run writes one row for its uses, whatever its number of steps; they are folded into one row per key when read', async () => {
    const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);
    await store.putRun(used('r1', '2026-11-30T10:00:00.000Z', keys));
    expect(await rowKeys('uses:')).toEqual(['uses:r1']);
    expect(await rowKeys('used:')).toEqual([]);
    const last = await store.lastUsed(['k0', 'k299', 'never']);
    expect([...last.entries()].sort()).toEqual([
      ['k0', Date.parse('2026-11-30T10:00:00.000Z')],
      ['k299', Date.parse('2026-11-30T10:00:00.000Z')],
    ]);
    expect(await rowKeys('uses:')).toEqual([]);
    expect((await rowKeys('used:')).length).toBe(300);
  });

  it('a use folded in later never lowers a later one, and last uses written one row per key by earlier versions are read and raised', async () => {
    await raw.set('used:legacy', Date.parse('2026-11-30T09:00:00.000Z'));
    await raw.set('used:kept', Date.parse('2026-11-30T23:00:00.000Z'));
    await store.putRun(used('newer', '2026-11-30T12:00:00.000Z', ['k1']));
    expect((await store.lastUsed(['k1'])).get('k1')).toBe(Date.parse('2026-11-30T12:00:00.000Z'));
    await store.putRun(used('older', '2026-11-30T11:00:00.000Z', ['k1', 'legacy', 'kept']));
    const last = await store.lastUsed(['k1', 'legacy', 'kept']);
    expect(last.get('k1')).toBe(Date.parse('2026-11-30T12:00:00.000Z'));
    expect(last.get('legacy')).toBe(Date.parse('2026-11-30T11:00:00.000Z'));
    expect(last.get('kept')).toBe(Date.parse('2026-11-30T23:00:00.000Z'));
  });

  it('folding reads the uses row and not the run record: a run whose record is damaged after it was written still has its uses folded', async () => {
    await store.putRun(used('r1', '2026-11-30T10:00:00.000Z', ['k1', 'k2']));
    const row: unknown = await raw.get('uses:r1');
    expect(row).toEqual({ at: Date.parse('2026-11-30T10:00:00.000Z'), keys: 'k1 k2' });
    await raw.set('run:r1', 'not a run');
    const last = await store.lastUsed(['k1', 'k2']);
    expect(last.get('k1')).toBe(Date.parse('2026-11-30T10:00:00.000Z'));
    expect(last.get('k2')).toBe(Date.parse('2026-11-30T10:00:00.000Z'));
  });

  it('a uses row written by an earlier version (a start time alone) is folded from the run record', async () => {
    await store.putRun(used('old', '2026-11-30T10:00:00.000Z', ['k1']));
    await raw.set('uses:old', Date.parse('2026-11-30T10:00:00.000Z'));
    await store.putRun(used('new', '2026-11-30T09:00:00.000Z', ['k1', 'k2']));
    const last = await store.lastUsed(['k1', 'k2']);
    expect(last.get('k1')).toBe(Date.parse('2026-11-30T10:00:00.000Z'));
    expect(last.get('k2')).toBe(Date.parse('2026-11-30T09:00:00.000Z'));
    expect(await rowKeys('uses:')).toEqual([]);
    expect(await store.findDamaged()).toEqual([]);
  });

  it('a uses row that is neither a time nor a start and keys is damaged', async () => {
    await raw.set('uses:bad', { at: 'soon', keys: 3 });
    expect((await store.findDamaged()).map((d) => d.row)).toEqual(['uses:bad']);
  });

  it('folding is idempotent and never lowers a last use, whatever order the runs are folded in', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ hour: fc.integer({ min: 0, max: 23 }), keys: fc.subarray(['a', 'b', 'c', 'd']) }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 3 }),
        async (runs, folds) => {
          const prefix = `p${Math.random().toString(36).slice(2)}`;
          const at = (hour: number): string => `2026-11-30T${String(hour).padStart(2, '0')}:00:00.000Z`;
          const expected = new Map<string, number>();
          for (const [i, r] of runs.entries()) {
            const keys = r.keys.map((k) => `${prefix}${k}`);
            await store.putRun(used(`${prefix}-${i}`, at(r.hour), keys));
            for (const key of keys) expected.set(key, Math.max(expected.get(key) ?? 0, Date.parse(at(r.hour))));
            if (i % folds === 0) await store.lastUsed([]);
          }
          const keys = ['a', 'b', 'c', 'd'].map((k) => `${prefix}${k}`);
          const first = await store.lastUsed(keys);
          const again = await store.lastUsed(keys);
          expect(new Map(first)).toEqual(expected);
          expect(new Map(again)).toEqual(expected);
        },
      ),
      { numRuns: 15 },
    );
  });

  it('an entry this store wrote is read back without parsing its row, frozen, and a second store on the file parses it to the same value', async () => {
    const written: CacheEntry = { ...entry, key: 'written-key', components: { code: ['c'] }, outputs: { out: { id: 'a1', kind: 'json', size: 3, format: 'json' } } };
    await store.putEntry(written);
    const parse = jest.spyOn(JSON, 'parse');
    try {
      const [read] = await store.getEntries(['written-key']);
      const [latest] = await store.getLatestEntriesOfSteps(['s']);
      expect(parse.mock.calls.filter(([text]) => typeof text === 'string' && text.includes('written-key'))).toEqual([]);
      expect(read).toEqual(written);
      expect(latest).toBe(read);
      expect(Object.isFrozen(read) && Object.isFrozen(read?.outputs)).toBe(true);
    } finally {
      parse.mockRestore();
    }
    const other = createSqliteMetadataStore(file);
    try {
      expect((await other.getEntries(['written-key']))[0]).toEqual(written);
    } finally {
      await other.close();
    }
  });

  it('a step whose latest entry has no head row (written before heads were) or a damaged one has its head read from the whole entry', async () => {
    const withComponents: CacheEntry = { ...entry, key: 'whole', step: 'old', components: { code: 'c' } };
    await store.putEntry(withComponents);
    await store.putEntry({ ...entry, key: 'damaged-head', step: 'hurt' });
    await raw.delete('latest-head:old');
    await raw.set('latest-head:hurt', { key: 3 });
    const heads = await store.getLatestHeadsOfSteps?.(['old', 'hurt', 'none']);
    expect(heads?.map((h) => h?.key)).toEqual(['whole', 'damaged-head', undefined]);
  });

  it('the uses of a deleted run are kept, and a second store on the file reads them', async () => {
    await store.putRun(used('gone', '2026-11-30T10:00:00.000Z', ['k1']));
    await store.deleteRuns(['gone']);
    expect(await store.getRun('gone')).toBeUndefined();
    expect(await rowKeys('uses:')).toEqual([]);
    const other = createSqliteMetadataStore(file);
    try {
      expect((await other.lastUsed(['k1'])).get('k1')).toBe(Date.parse('2026-11-30T10:00:00.000Z'));
    } finally {
      await other.close();
    }
  });

  it('an entry read again is the row as it is now: replaced, damaged, deleted or expired behind the store, it is seen so', async () => {
    const first: CacheEntry = { ...entry, createdAt: Date.now() };
    await store.putEntry(first, { ttlMs: 60_000 });
    expect(await store.getEntries(['k1'])).toEqual([first]);
    expect(await store.getEntries(['k1'])).toEqual([first]);
    await raw.set('entry:k1', { ...first, runId: 'replaced' });
    expect((await store.getEntries(['k1']))[0]?.runId).toBe('replaced');
    await raw.set('entry:k1', { ...first, outputs: 'lost' });
    expect(await store.getEntries(['k1'])).toEqual([undefined]);
    // The same row read again once its time is up: absent, though its text did not change.
    await raw.set('entry:k1', first, 1_000);
    expect(await store.getEntries(['k1'])).toEqual([first]);
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(await store.getEntries(['k1'])).toEqual([undefined]);
    await raw.delete('entry:k1');
    expect(await store.getEntries(['k1'])).toEqual([undefined]);
  });
});

describe('the run index, built on first listing', () => {
  /** Rows of a keyv map, with the keys written while `recording` is on. */
  class RecordingMap extends Map<string, unknown> {
    recording = false;
    readonly written: string[] = [];
    override set(key: string, value: unknown): this {
      if (this.recording) this.written.push(key);
      return super.set(key, value);
    }
  }

  it('writes no run record back: a run that finished meanwhile in another process would be shown running again', async () => {
    const rows = new RecordingMap();
    const writer = createKeyvMetadataStore(new Keyv({ store: rows, namespace: 'stepcache' }));
    await writer.putRun({ ...run('live', '2026-11-30T10:00:00.000Z'), status: 'running' });
    await writer.putRun(run('done', '2026-11-30T09:00:00.000Z'));
    // A run recorded by a version before the index: its record alone.
    const legacy = new Keyv({ store: rows, namespace: 'stepcache' });
    await legacy.set('run:old', run('old', '2026-11-29T09:00:00.000Z'));
    rows.recording = true;
    const reader = createKeyvMetadataStore(new Keyv({ store: rows, namespace: 'stepcache' }));
    expect((await reader.listRuns()).map((r) => r.id)).toEqual(['live', 'done', 'old']);
    // Only the index rows of the run recorded before the index, and the index's marker: never a record.
    expect(rows.written.filter((key) => key.startsWith('stepcache:run:'))).toEqual([]);
    expect(rows.written.filter((key) => key.includes(':live') || key.includes(':done'))).toEqual([]);
    expect(rows.written.some((key) => key.startsWith('stepcache:runidx:') && key.endsWith(':old'))).toBe(true);
    expect((await reader.listRuns({ status: 'completed' })).map((r) => r.id)).toEqual(['done', 'old']);
  });
});
