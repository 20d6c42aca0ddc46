/**
 * What every {@link ArtifactStore} must do, as one suite run against each implementation:
 * content addressing, writing once, verifying every load (a damaged or deleted artifact is a
 * typed `Left`, never other bytes), `present`, `list`, `remove`, the empty artifact and large
 * artifacts.
 *
 *   artifactStoreContract('the folder store', async () => folderSubject(...));
 */
import { randomBytes } from 'node:crypto';
import * as E from 'fp-ts/Either';
import fc from 'fast-check';
import { plainContentHashing, type ContentHashing } from '../../src/hash/hashers';
import type { ArtifactLoadError, ArtifactStore } from '../../src/store/artifact-store';
import { EMPTY_ARTIFACT_ID } from '../../src/store/serialize';

/** A fresh, empty store under test, with ways to reach behind it as a careless colleague or a failing disk would. */
export interface ArtifactStoreSubject {
  readonly store: ArtifactStore;
  /** Replaces the stored bytes of an artifact without going through the store. */
  overwrite(id: string, bytes: Uint8Array): Promise<void>;
  /** Deletes a stored artifact without going through the store. */
  erase(id: string): Promise<void>;
  /** How many artifacts (files, objects) are stored. */
  count(): Promise<number>;
  /** Releases the subject (connections, folders). */
  dispose(): Promise<void>;
}


const MB = 1_000_000;

/**
 * Runs the artifact store contract against fresh subjects made by `makeStore` (one per test),
 * whose ids are made by `hashing` (XXH3-128 unless given).
 *
 * @example
 * artifactStoreContract('the folder store', async () => folderSubject(tempDir()));
 */
export const artifactStoreContract = (name: string, makeStore: () => Promise<ArtifactStoreSubject>, hashing: ContentHashing = plainContentHashing): void => {
  /** The id the store must give bytes: their content hash, as the store's hashing makes it. */
  const contentId = async (bytes: Uint8Array): Promise<string> => {
    const h = await hashing.create();
    h.update(bytes);
    return h.digest();
  };
  describe(`artifact store contract: ${name}`, () => {
    let subject: ArtifactStoreSubject;
    let store: ArtifactStore;

    beforeEach(async () => {
      subject = await makeStore();
      store = subject.store;
    });

    afterEach(async () => {
      await subject.dispose();
    });

    const loaded = async (id: string, size: number): Promise<Buffer> => {
      const r = await store.get({ id, size });
      if (E.isLeft(r)) throw new Error(`expected bytes, got ${r.left._tag}: ${r.left.message}`);
      return r.right;
    };

    const failure = async (id: string, size: number): Promise<ArtifactLoadError> => {
      const r = await store.get({ id, size });
      if (E.isRight(r)) throw new Error(`expected a failure, got ${r.right.length} bytes`);
      return r.left;
    };

    it('round-trips bytes under their content hash', async () => {
      const bytes = randomBytes(1000);
      const id = await store.put(bytes);
      expect(id).toBe(await contentId(bytes));
      const back = await loaded(id, bytes.length);
      expect(Buffer.isBuffer(back)).toBe(true);
      expect(back.equals(bytes)).toBe(true);
      expect(store.locate(id)).toContain(id);
    });

    it('the id is the content hash: equal bytes give one id, different bytes another (property)', async () => {
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.uint8Array({ minLength: 1, maxLength: 64 }), async (a, b) => {
          const idA = await store.put(a);
          expect(idA).toBe(await contentId(a));
          expect(await store.put(Uint8Array.from(a))).toBe(idA);
          const idB = await store.put(b);
          expect(idA === idB).toBe(Buffer.from(a).equals(Buffer.from(b)));
        }),
        { numRuns: 15 },
      );
    });

    it('idOf names bytes as put would, without storing anything (property)', async () => {
      const { idOf } = store;
      if (idOf === undefined) throw new Error('the store has no idOf: every output would be put, none kept inside its entry');
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 2048 }), async (bytes) => {
          expect(await idOf(bytes)).toBe(await contentId(bytes));
        }),
        { numRuns: 25 },
      );
      expect(await subject.count()).toBe(0);
      expect(await idOf(new Uint8Array(0))).toBe(EMPTY_ARTIFACT_ID);
      const bytes = randomBytes(300);
      expect(await idOf(bytes)).toBe(await store.put(bytes));
    });

    it('stores the bytes a view covers, not its whole buffer', async () => {
      const whole = new Uint8Array([9, 9, 1, 2, 3, 9]);
      const id = await store.put(whole.subarray(2, 5));
      expect([...(await loaded(id, 3))]).toEqual([1, 2, 3]);
    });

    it('writes the same bytes once: twice in a row and three times at once give one id and one artifact', async () => {
      const bytes = randomBytes(50_000);
      const first = await store.put(bytes);
      expect(await store.put(Buffer.from(bytes))).toBe(first);
      const ids = await Promise.all([store.put(bytes), store.put(bytes), store.put(Buffer.from(bytes))]);
      expect(new Set([first, ...ids]).size).toBe(1);
      expect(await subject.count()).toBe(1);
      expect((await loaded(first, bytes.length)).equals(bytes)).toBe(true);
    });

    it('keeps different bytes apart', async () => {
      const a = await store.put(Buffer.from('first artifact'));
      const b = await store.put(Buffer.from('second artifact'));
      expect(a).not.toBe(b);
      expect(await subject.count()).toBe(2);
      expect((await loaded(a, 14)).toString()).toBe('first artifact');
      expect((await loaded(b, 15)).toString()).toBe('second artifact');
    });

    it('stores the empty artifact as nothing and loads it back', async () => {
      const id = await store.put(new Uint8Array(0));
      expect(id).toBe(EMPTY_ARTIFACT_ID);
      expect((await loaded(id, 0)).length).toBe(0);
      expect(await subject.count()).toBe(0);
      expect(await store.present([{ id, size: 0 }])).toEqual([true]);
    });

    it('round-trips a 100 MB artifact', async () => {
      const bytes = randomBytes(100 * MB);
      const id = await store.put(bytes);
      expect(await store.present([{ id, size: bytes.length }])).toEqual([true]);
      const back = await loaded(id, bytes.length);
      expect(back.length).toBe(bytes.length);
      expect(back.equals(bytes)).toBe(true);
    }, 180_000);

    describe('verified load', () => {
      it('an artifact overwritten with garbage of the same size is Left ArtifactCorrupted naming its location', async () => {
        const bytes = randomBytes(5000);
        const id = await store.put(bytes);
        await subject.overwrite(id, randomBytes(5000));
        const e = await failure(id, bytes.length);
        expect(e._tag).toBe('ArtifactCorrupted');
        expect(e.id).toBe(id);
        expect(e.location).toBe(store.locate(id));
        expect(e.message).toContain(id);
      });

      it('an artifact overwritten with fewer bytes is Left ArtifactTruncated, with more bytes Left ArtifactCorrupted', async () => {
        const bytes = randomBytes(5000);
        const id = await store.put(bytes);
        await subject.overwrite(id, bytes.subarray(0, 4000));
        expect(await failure(id, bytes.length)).toMatchObject({ _tag: 'ArtifactTruncated', location: store.locate(id), message: expect.stringContaining('4000') });
        await subject.overwrite(id, Buffer.concat([bytes, Buffer.from('x')]));
        expect(await failure(id, bytes.length)).toMatchObject({ _tag: 'ArtifactCorrupted', location: store.locate(id) });
      });

      it('a deleted artifact is Left ArtifactMissing naming its location', async () => {
        const id = await store.put(Buffer.from('gone soon'));
        await subject.erase(id);
        expect(await failure(id, 9)).toMatchObject({ _tag: 'ArtifactMissing', id, location: store.locate(id) });
        expect(await store.present([{ id, size: 9 }])).toEqual([false]);
      });

      it('an id that was never stored is Left ArtifactMissing', async () => {
        expect((await failure('0123456789abcdef0123456789abcdef', 3))._tag).toBe('ArtifactMissing');
      });

      it('a size that does not match the stored artifact is a Left, whichever way it differs', async () => {
        const bytes = randomBytes(3000);
        const id = await store.put(bytes);
        expect((await failure(id, bytes.length + 1))._tag).toBe('ArtifactTruncated');
        expect((await failure(id, bytes.length - 1))._tag).toBe('ArtifactCorrupted');
        expect((await loaded(id, bytes.length)).equals(bytes)).toBe(true);
      });

      it('putting the bytes again repairs a damaged or deleted artifact', async () => {
        const bytes = randomBytes(4096);
        const id = await store.put(bytes);
        await subject.overwrite(id, randomBytes(4096));
        expect(E.isLeft(await store.get({ id, size: bytes.length }))).toBe(true);
        expect(await store.put(bytes)).toBe(id);
        expect((await loaded(id, bytes.length)).equals(bytes)).toBe(true);
        await subject.erase(id);
        expect(await store.put(bytes)).toBe(id);
        expect((await loaded(id, bytes.length)).equals(bytes)).toBe(true);
      });

      it('whatever replaces an artifact, get returns its bytes or a Left, never other bytes (property)', async () => {
        const original = Buffer.from('the original artifact bytes, 40 of them.');
        const id = await store.put(original);
        await fc.assert(
          fc.asyncProperty(
            fc.oneof(
              fc.uint8Array({ maxLength: 80 }),
              fc.uint8Array({ minLength: original.length, maxLength: original.length }),
              fc.tuple(fc.nat({ max: original.length - 1 }), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
                const copy = Buffer.from(original);
                copy[i] = (copy[i] as number) ^ x;
                return copy;
              }),
              fc.constant(Buffer.from(original)),
            ),
            async (replacement) => {
              await subject.overwrite(id, replacement);
              const r = await store.get({ id, size: original.length });
              expect(E.isRight(r)).toBe(Buffer.from(replacement).equals(original));
              if (E.isRight(r)) expect(r.right.equals(original)).toBe(true);
              else expect(['ArtifactTruncated', 'ArtifactCorrupted']).toContain(r.left._tag);
            },
          ),
          { numRuns: 15 },
        );
      });
    });

    describe('present', () => {
      it('is true for the right size, false for a wrong size, a missing artifact or an invalid id, true for the empty artifact', async () => {
        const id = await store.put(Buffer.from('12345'));
        const refs = [
          { id, size: 5 },
          { id, size: 4 },
          { id, size: 6 },
          { id: 'ffffffffffffffffffffffffffffffff', size: 5 },
          { id: EMPTY_ARTIFACT_ID, size: 0 },
          { id: '../../etc/passwd', size: 1 },
        ];
        expect(await store.present(refs)).toEqual([true, false, false, false, true, false]);
        expect(await store.present([])).toEqual([]);
      });

      it('answers many artifacts at once, in order', async () => {
        const stored = await Promise.all(Array.from({ length: 40 }, (_, i) => Buffer.from(`artifact number ${i}`)).map(async (b) => ({ id: await store.put(b), size: b.length })));
        const refs = stored.flatMap((ref, i) => (i % 3 === 0 ? [ref, { id: ref.id, size: ref.size + 1 }] : [ref]));
        expect(await store.present(refs)).toEqual(stored.flatMap((_, i) => (i % 3 === 0 ? [true, false] : [true])));
      });
    });

    describe('list', () => {
      it('lists every stored artifact with its size and when it was written', async () => {
        expect(await store.list()).toEqual([]);
        const before = Date.now();
        const a = await store.put(Buffer.from('one'));
        const b = await store.put(randomBytes(20_000));
        const listed = [...(await store.list())].sort((x, y) => x.size - y.size);
        expect(listed.map(({ id, size }) => ({ id, size }))).toEqual([
          { id: a, size: 3 },
          { id: b, size: 20_000 },
        ]);
        for (const { writtenAt } of listed) {
          // object stores keep whole seconds
          expect(writtenAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 - 1000);
          expect(writtenAt).toBeLessThanOrEqual(Date.now() + 1000);
        }
      });
    });

    describe('remove', () => {
      it('removes only the artifact asked for, and removing it again (or the empty artifact) is no error', async () => {
        const keep = await store.put(Buffer.from('keep'));
        const drop = await store.put(Buffer.from('drop'));
        await store.remove(drop);
        expect((await failure(drop, 4))._tag).toBe('ArtifactMissing');
        await expect(store.remove(drop)).resolves.toBeUndefined();
        await expect(store.remove(EMPTY_ARTIFACT_ID)).resolves.toBeUndefined();
        expect((await loaded(keep, 4)).toString()).toBe('keep');
        expect((await store.list()).map((x) => x.id)).toEqual([keep]);
      });
    });

    describe('invalid ids', () => {
      it.each([['../../etc/passwd'], ['ABCDEF0123456789'], [''], [`a/${'0'.repeat(10)}`]])('get is a Left ArtifactUnreadable, remove and locate reject %p', async (id) => {
        expect(await store.get({ id, size: 1 })).toMatchObject({ _tag: 'Left', left: { _tag: 'ArtifactUnreadable', message: expect.stringContaining('invalid id') } });
        await expect(store.remove(id)).rejects.toThrow(/Invalid artifact id/);
        expect(() => store.locate(id)).toThrow(/Invalid artifact id/);
      });
    });

    describe('sweepTemporary', () => {
      it('leaves stored artifacts alone', async () => {
        const bytes = randomBytes(100);
        const id = await store.put(bytes);
        expect(await store.sweepTemporary(0)).toBeGreaterThanOrEqual(0);
        expect((await loaded(id, bytes.length)).equals(bytes)).toBe(true);
      });
    });
  });
};
