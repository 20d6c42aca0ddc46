/**
 * The stores of a runner: a cached run checks the presence of its artifacts in one batch (a
 * shared store answers each check over the network), and what the batch did not find is asked again.
 */
import * as path from 'node:path';
import { createFileArtifactStore, createRunner, pipeline, silentLogger, step, type ArtifactRef, type ArtifactStore, type CacheEntry, type Handle } from '../src';
import { withPresenceOf } from '../src/runner/stores';
import { filesBelow, removeDir, tempDir } from './support/fixtures';

/** The real folder store, with every `present` call recorded; with `files`, without `idOf` (every output a file, none inline). */
const observed = (dir: string, options: { readonly files?: boolean } = {}): { readonly store: ArtifactStore; readonly asked: ArtifactRef[][] } => {
  const { idOf, ...real } = createFileArtifactStore(dir);
  const asked: ArtifactRef[][] = [];
  return {
    asked,
    store: {
      ...real,
      ...(options.files === true ? {} : { idOf }),
      present: (refs) => {
        asked.push([...refs]);
        return real.present(refs);
      },
    },
  };
};

function add({ prev, k }: { prev: number; k: number }): number {
  return prev + k;
}
const links = Array.from({ length: 10 }, (_, i) => step(add).named(`link${i}`));
const chain = pipeline('presence_chain', (p) => {
  let prev: Handle<number> | number = 0;
  links.forEach((s, k) => {
    prev = p.call(s, { prev, k });
  });
  return { last: prev as unknown as Handle<number> };
});

describe('presence of artifacts in a run', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => removeDir(dir));

  it('a fully cached chain of tiny outputs (kept inside their entries) never asks the artifact store', async () => {
    const { store, asked } = observed(path.join(dir, 'artifacts'));
    const runner = createRunner({ dir, logger: silentLogger, artifacts: store });
    try {
      await runner.run(chain);
      const again = await runner.run(chain);
      expect(Object.values(again.steps).every((s) => s.status === 'cached')).toBe(true);
      expect(asked).toEqual([]);
      expect(await again.output('last')).toBe(45);
      expect(filesBelow(path.join(dir, 'artifacts')).filter((f) => !f.startsWith('tmp'))).toEqual([]);
    } finally {
      await runner.close();
    }
  });

  it('a fully cached chain asks the artifact store once, for every step at once', async () => {
    const { store, asked } = observed(path.join(dir, 'artifacts'), { files: true });
    const runner = createRunner({ dir, logger: silentLogger, artifacts: store });
    try {
      await runner.run(chain);
      asked.length = 0;
      const again = await runner.run(chain);
      expect(Object.values(again.steps).every((s) => s.status === 'cached')).toBe(true);
      expect(asked).toHaveLength(1);
      expect(asked[0]).toHaveLength(10);
      expect(await again.output('last')).toBe(45);
    } finally {
      await runner.close();
    }
  });

  it('what the batch did not find is asked again', async () => {
    const { store, asked } = observed(path.join(dir, 'artifacts'));
    const id = await store.put(Buffer.from('kept'));
    const gone: ArtifactRef = { id: 'ab'.repeat(16), size: 4 };
    const entry: CacheEntry = { key: 'k', pipeline: 'p', step: 's', runId: 'r', createdAt: 0, durationMs: 0, outputs: { a: { id, size: 4, kind: 'bytes', format: 'bytes' }, b: { ...gone, kind: 'bytes', format: 'bytes' } } };
    const checked = await withPresenceOf(store, [entry]);
    asked.length = 0;
    expect(await checked.store.present([{ id, size: 4 }, gone])).toEqual([true, false]);
    expect(asked).toEqual([[gone]]);
    // What the batch found is known without a call; what it did not, or with another size, is not.
    expect([{ id, size: 4 }, { id, size: 5 }, gone].map(checked.isKnownPresent)).toEqual([true, false, false]);
  });

  it('the batch leaves inline outputs out, and knows them present by the length of their bytes', async () => {
    const { store, asked } = observed(path.join(dir, 'artifacts'));
    const id = await store.put(Buffer.alloc(4096, 1)); // a file
    const inline = { id: 'cd'.repeat(16), size: 2, kind: 'json', format: 'auto', inline: Buffer.from('42').toString('base64') } as const;
    const entry: CacheEntry = { key: 'k', pipeline: 'p', step: 's', runId: 'r', createdAt: 0, durationMs: 0, outputs: { a: { id, size: 4096, kind: 'bytes', format: 'bytes' }, b: inline } };
    asked.length = 0;
    const checked = await withPresenceOf(store, [entry]);
    expect(asked).toEqual([[entry.outputs['a']]]);
    expect(checked.isKnownPresent(inline)).toBe(true);
    expect(checked.isKnownPresent({ ...inline, size: 7 })).toBe(false); // bytes of another length than recorded
  });
});

describe('a presence batch that fails', () => {
  it('leaves each step to ask for itself', async () => {
    const dir = tempDir();
    try {
      const real = createFileArtifactStore(dir);
      let calls = 0;
      const flaky: ArtifactStore = { ...real, present: (refs) => (++calls === 1 ? Promise.reject(new Error('connection reset by peer')) : real.present(refs)) };
      const id = await real.put(Buffer.from('kept'));
      const ref = { id, size: 4, kind: 'bytes', format: 'bytes' } as const;
      const checked = await withPresenceOf(flaky, [{ key: 'k', pipeline: 'p', step: 's', runId: 'r', createdAt: 0, durationMs: 0, outputs: { a: ref } }]);
      expect(await checked.store.present([ref])).toEqual([true]);
      expect(calls).toBe(2);
      expect(checked.isKnownPresent(ref)).toBe(false);
    } finally {
      removeDir(dir);
    }
  });
});
