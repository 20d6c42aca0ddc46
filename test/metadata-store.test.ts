/**
 * The embedded metadata store (keyv over SQLite) keeps the metadata store contract.
 */
import * as path from 'node:path';
import Keyv from 'keyv';
import KeyvSqlite from '@keyv/sqlite';
import { createSqliteMetadataStore } from '../src';
import { metadataStoreContract } from './contract/metadata-store.contract';
import { removeDir, tempDir } from './support/fixtures';

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
