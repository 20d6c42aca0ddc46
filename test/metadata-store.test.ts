/**
 * The metadata store reads records back decoded: a damaged row is a typed failure for the one
 * who asked for it, is skipped by listings, and is reported once; and the embedded store (keyv over
 * SQLite) keeps the metadata store contract that every metadata store keeps.
 */
import * as path from 'node:path';
import KeyvSqlite from '@keyv/sqlite';
import * as E from 'fp-ts/Either';
import Keyv from 'keyv';
import { createKeyvMetadataStore, createSqliteMetadataStore, type MetadataStore } from '../src/store/metadata-store';
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
