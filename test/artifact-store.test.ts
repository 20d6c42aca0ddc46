import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import fc from 'fast-check';
import { createFileArtifactStore, isArtifactId, type ArtifactLoadError, type ArtifactStore } from '../src/store/artifact-store';
import { createContentHasher, keyedContentHashing } from '../src/hash/hashers';
import { EMPTY_ARTIFACT_ID } from '../src/store/serialize';
import { artifactStoreContract } from './contract/artifact-store.contract';

let dir: string;
let store: ArtifactStore;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stepcache-artifacts-'));
  store = createFileArtifactStore(dir);
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const filesBelow = (root: string): string[] =>
  fs.existsSync(root) ? (fs.readdirSync(root, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(root, f)).isFile()).sort() : [];

const contentId = async (bytes: Uint8Array): Promise<string> => {
  const h = await createContentHasher();
  h.update(bytes);
  return h.digest();
};

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

describe('put / get', () => {
  it('round-trips empty data without writing a file', async () => {
    const id = await store.put(new Uint8Array(0));
    expect(id).toBe(EMPTY_ARTIFACT_ID);
    expect((await loaded(id, 0)).length).toBe(0);
    expect(filesBelow(dir)).toEqual([]);
  });

  it('round-trips small data', async () => {
    const bytes = new Uint8Array([1, 2, 3, 250]);
    const id = await store.put(bytes);
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    const back = await loaded(id, bytes.length);
    expect(Buffer.isBuffer(back)).toBe(true);
    expect(back.equals(Buffer.from(bytes))).toBe(true);
  });

  it('round-trips data larger than several read/write chunks (20 MB)', async () => {
    const bytes = randomBytes(20_000_000);
    const id = await store.put(bytes);
    expect(id).toBe(await contentId(bytes));
    expect(fs.statSync(store.locate(id)).size).toBe(bytes.length);
    const back = await loaded(id, bytes.length);
    expect(back.length).toBe(bytes.length);
    expect(back.equals(bytes)).toBe(true);
  });

  it('stores the bytes a view covers, not its whole buffer', async () => {
    const whole = new Uint8Array([9, 9, 1, 2, 3, 9]);
    const id = await store.put(whole.subarray(2, 5));
    expect([...(await loaded(id, 3))]).toEqual([1, 2, 3]);
    expect(id).toBe(await contentId(new Uint8Array([1, 2, 3])));
  });

  it('the id is the content hash: same bytes give the same id, different bytes another (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.uint8Array({ minLength: 1, maxLength: 64 }), async (a, b) => {
        const idA = await store.put(a);
        expect(idA).toBe(await contentId(a));
        expect(await store.put(Uint8Array.from(a))).toBe(idA);
        const idB = await store.put(b);
        expect(idA === idB).toBe(Buffer.from(a).equals(Buffer.from(b)));
      }),
      { numRuns: 25 },
    );
  });

  it('names files by id only, in two-character shards, with no user strings', async () => {
    const ids = await Promise.all([new Uint8Array([1]), Buffer.from('secret user string'), new Uint8Array([2, 3])].map((b) => store.put(b)));
    const expected = ids.map((id) => path.join(id.slice(0, 2), id)).sort();
    expect(filesBelow(dir)).toEqual(expected);
    for (const id of ids) expect(store.locate(id)).toBe(path.join(dir, id.slice(0, 2), id));
    expect(filesBelow(dir).join('\n')).not.toContain('secret');
  });

  it('leaves no temporary files behind', async () => {
    await Promise.all([store.put(randomBytes(1000)), store.put(randomBytes(10)), store.put(new Uint8Array([7]))]);
    const tmp = path.join(dir, 'tmp');
    expect(filesBelow(tmp)).toEqual([]);
    expect(filesBelow(dir).filter((f) => f.endsWith('.part') || f.startsWith('tmp'))).toEqual([]);
  });

  it('a put that fails after writing leaves no temporary file behind', async () => {
    const bytes = Buffer.from('cannot be renamed into place');
    const id = await contentId(bytes);
    // a non-empty directory where the artifact file should go makes the final rename fail
    fs.mkdirSync(path.join(dir, id.slice(0, 2), id, 'blocker'), { recursive: true });
    await expect(store.put(bytes)).rejects.toThrow();
    expect(filesBelow(path.join(dir, 'tmp'))).toEqual([]);
  });

  it('concurrent puts of the same bytes give one id and one file', async () => {
    const bytes = randomBytes(100_000);
    const ids = await Promise.all([store.put(bytes), store.put(bytes), store.put(Buffer.from(bytes))]);
    expect(new Set(ids).size).toBe(1);
    expect(filesBelow(dir)).toHaveLength(1);
    expect((await loaded(ids[0] as string, bytes.length)).equals(bytes)).toBe(true);
  });

  it('small bytes whose file is there already are not written again: the file stays as it was', async () => {
    const bytes = Buffer.from('stored once');
    const id = await store.put(bytes);
    const file = store.locate(id);
    const long = new Date(Math.floor(Date.now() / 1000) * 1000 - 86_400_000); // whole seconds: the file system keeps them exactly
    fs.utimesSync(file, long, long);
    const { ino } = fs.statSync(file);
    expect(await store.put(Buffer.from(bytes))).toBe(id);
    expect(store.putNow?.(new Uint8Array(bytes))).toBe(id);
    expect(fs.statSync(file).mtimeMs).toBe(long.getTime());
    expect(fs.statSync(file).ino).toBe(ino);
  });

  it('small bytes whose file was damaged (same size, other content) are written again, by put and by putNow', async () => {
    const bytes = Buffer.from('repair me, please');
    const id = await store.put(bytes);
    const damage = (): void => fs.writeFileSync(store.locate(id), Buffer.alloc(bytes.length, 0x41));
    damage();
    expect(await store.put(bytes)).toBe(id);
    expect((await loaded(id, bytes.length)).equals(bytes)).toBe(true);
    damage();
    expect(store.putNow?.(new Uint8Array(bytes))).toBe(id);
    expect((await loaded(id, bytes.length)).equals(bytes)).toBe(true);
  });

  it('a small put into a shard removed since the store made it makes the shard again', async () => {
    const first = Buffer.from('first in its shard');
    const id = await store.put(first);
    fs.rmSync(path.join(dir, id.slice(0, 2)), { recursive: true });
    expect(await store.put(first)).toBe(id);
    expect((await loaded(id, first.length)).equals(first)).toBe(true);
  });

  it('stores the same content in two stores under the same id', async () => {
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'stepcache-artifacts-'));
    try {
      const bytes = Buffer.from('same everywhere');
      expect(await createFileArtifactStore(other).put(bytes)).toBe(await store.put(bytes));
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });
});

describe('loading the content hash', () => {
  /** Fresh modules (a new process) with hash-wasm's XXH3-128 constructor watched. */
  const freshModules = () => {
    let fresh: { readonly store: typeof createFileArtifactStore; readonly hashers: typeof import('../src/hash/hashers'); readonly loads: jest.SpyInstance } | undefined;
    jest.isolateModules(() => {
      const wasm = require('hash-wasm') as typeof import('hash-wasm');
      const loads = jest.spyOn(wasm, 'createXXHash128');
      fresh = { store: (require('../src/store/artifact-store') as typeof import('../src/store/artifact-store')).createFileArtifactStore, hashers: require('../src/hash/hashers') as typeof import('../src/hash/hashers'), loads };
    });
    if (fresh === undefined) throw new Error('modules not loaded');
    return fresh;
  };

  it('a store that only lists, checks presence and removes never loads it (as `cache ls` does)', async () => {
    const bytes = randomBytes(1000);
    const id = await store.put(bytes);
    const fresh = freshModules();
    const other = fresh.store(dir);
    expect(await other.list()).toHaveLength(1);
    expect(await other.present([{ id, size: bytes.length }])).toEqual([true]);
    await other.remove(id);
    expect(fresh.loads).not.toHaveBeenCalled();
  });

  it('is loaded by the first store that needs it, and then stores at once', async () => {
    const fresh = freshModules();
    const other = fresh.store(dir);
    const bytes = randomBytes(100);
    expect(await other.put(bytes)).toBe(await contentId(bytes));
    expect(fresh.loads).toHaveBeenCalledTimes(1);
    expect(other.putNow?.(randomBytes(200))).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe('putNow: storing at once, synchronously', () => {
  /** putNow once the hash has loaded (the store starts loading it when made). */
  const putNow = async (bytes: Uint8Array, on: ArtifactStore = store): Promise<string> => {
    await createContentHasher(); // the hash-wasm module is compiled by then
    for (let tries = 0; tries < 100; tries++) {
      const id = on.putNow?.(bytes);
      if (id !== undefined) return id;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error('putNow never stored');
  };

  it('the first artifact stored, however small, starts the write-behind worker, so that it runs by the first big one', async () => {
    // Fresh modules: a process whose stores have stored nothing yet.
    let fresh: { readonly store: typeof createFileArtifactStore; readonly shared: typeof import('../src/store/write-worker').sharedWriteBehind } | undefined;
    jest.isolateModules(() => {
      fresh = { store: (require('../src/store/artifact-store') as typeof import('../src/store/artifact-store')).createFileArtifactStore, shared: (require('../src/store/write-worker') as typeof import('../src/store/write-worker')).sharedWriteBehind };
    });
    if (fresh === undefined) throw new Error('modules not loaded');
    const behind = fresh.shared();
    try {
      const other = fresh.store(path.join(dir, 'fresh'));
      await putNow(new Uint8Array(0), other);
      expect(behind.ready()).toBe(false); // nothing stored yet
      await putNow(Buffer.from('small'), other);
      for (let tries = 0; tries < 500 && !behind.ready(); tries++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(behind.ready()).toBe(true);
    } finally {
      await behind.close();
    }
  });

  it('gives the id put gives, and get loads the bytes (small, several chunks, a view, empty)', async () => {
    const big = randomBytes(3 * 1024 * 1024 + 17);
    for (const bytes of [Buffer.from('at once'), big, big.subarray(5, 2 * 1024 * 1024 + 3), new Uint8Array(0)]) {
      const id = await putNow(bytes);
      expect(id).toBe(bytes.byteLength === 0 ? EMPTY_ARTIFACT_ID : await contentId(bytes));
      expect(id).toBe(await store.put(bytes));
      expect((await loaded(id, bytes.byteLength)).equals(bytes)).toBe(true);
    }
    expect(filesBelow(path.join(dir, 'tmp'))).toEqual([]);
  });

  it('stores the bytes as they are when it is called: changing them afterwards changes nothing stored', async () => {
    const values = new Float64Array([1, 2, 3]);
    const bytes = new Uint8Array(values.buffer);
    const expected = Buffer.from(bytes);
    const id = await putNow(bytes);
    values.fill(-1);
    expect(await loaded(id, expected.byteLength)).toEqual(expected);
  });

  it('a big artifact (written behind, by the worker) gets the id put gives, and is exactly the bytes of the call', async () => {
    for (const bytes of [randomBytes(8 * 1024 * 1024), randomBytes(9 * 1024 * 1024 + 17).subarray(3)]) {
      const expected = Buffer.from(bytes);
      const id = await putNow(bytes);
      bytes.fill(0);
      expect(id).toBe(await contentId(expected));
      expect((await loaded(id, expected.byteLength)).equals(expected)).toBe(true);
    }
    const keyedDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stepcache-artifacts-'));
    try {
      const keyed = createFileArtifactStore(keyedDir, { secret: 'team-secret' });
      const bytes = randomBytes(8 * 1024 * 1024 + 1);
      expect(await putNow(bytes, keyed)).toBe(await keyed.put(bytes));
    } finally {
      fs.rmSync(keyedDir, { recursive: true, force: true });
    }
    expect(filesBelow(path.join(dir, 'tmp'))).toEqual([]);
  });

  it('with a secret, names contents by the keyed hash, as put does', async () => {
    const keyedDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stepcache-artifacts-'));
    try {
      const keyed = createFileArtifactStore(keyedDir, { secret: 'team-secret' });
      const bytes = Buffer.from('keyed at once');
      const id = keyed.putNow?.(bytes); // HMAC needs no loading
      expect(id).toHaveLength(keyedContentHashing('team-secret').idLength);
      expect(id).toBe(await keyed.put(bytes));
    } finally {
      fs.rmSync(keyedDir, { recursive: true, force: true });
    }
  });

  it('a store whose folder cannot be made throws', async () => {
    const blocked = path.join(dir, 'blocked');
    fs.writeFileSync(blocked, 'a file where the store folder should be');
    await expect(putNow(Buffer.from('x'), createFileArtifactStore(blocked))).rejects.toThrow(/ENOTDIR|EEXIST/);
  });
});

describe('get verifies what it loads', () => {
  it('a truncated file gives Left ArtifactTruncated', async () => {
    const bytes = randomBytes(5000);
    const id = await store.put(bytes);
    fs.truncateSync(store.locate(id), 4000);
    const e = await failure(id, bytes.length);
    expect(e._tag).toBe('ArtifactTruncated');
    expect(e.id).toBe(id);
    expect(e.location).toBe(store.locate(id));
    expect(e.message).toMatch(/4000/);
  });

  it('a file with a flipped byte gives Left ArtifactCorrupted', async () => {
    const bytes = randomBytes(5000);
    const id = await store.put(bytes);
    const file = store.locate(id);
    const onDisk = fs.readFileSync(file);
    onDisk[1234] = (onDisk[1234] as number) ^ 0x01;
    fs.writeFileSync(file, onDisk);
    const e = await failure(id, bytes.length);
    expect(e._tag).toBe('ArtifactCorrupted');
    expect(e.message).toContain(id);
  });

  it('a flipped byte past the first chunk of a large file gives Left ArtifactCorrupted', async () => {
    const bytes = randomBytes(9 * 1024 * 1024 + 17);
    const id = await store.put(bytes);
    const fd = fs.openSync(store.locate(id), 'r+');
    try {
      fs.writeSync(fd, Buffer.from([(bytes[bytes.length - 3] as number) ^ 0x80]), 0, 1, bytes.length - 3);
    } finally {
      fs.closeSync(fd);
    }
    expect((await failure(id, bytes.length))._tag).toBe('ArtifactCorrupted');
  });

  it('a file longer than expected gives Left ArtifactCorrupted', async () => {
    const bytes = Buffer.from('abc');
    const id = await store.put(bytes);
    fs.appendFileSync(store.locate(id), 'd');
    expect((await failure(id, bytes.length))._tag).toBe('ArtifactCorrupted');
  });

  it('a deleted file gives Left ArtifactMissing', async () => {
    const id = await store.put(Buffer.from('gone soon'));
    fs.rmSync(store.locate(id));
    const e = await failure(id, 9);
    expect(e._tag).toBe('ArtifactMissing');
    expect(e.location).toBe(store.locate(id));
  });

  it('an id that was never stored gives Left ArtifactMissing', async () => {
    expect((await failure('0123456789abcdef0123456789abcdef', 3))._tag).toBe('ArtifactMissing');
  });

  it('random bytes written over an artifact never make get throw nor return other bytes (property)', async () => {
    const original = Buffer.from('the original artifact bytes, 40 of them.');
    const id = await store.put(original);
    const file = store.locate(id);
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
        async (garbage) => {
          fs.writeFileSync(file, garbage);
          const r = await store.get({ id, size: original.length });
          if (E.isRight(r)) expect(r.right.equals(original)).toBe(true);
          else expect(['ArtifactTruncated', 'ArtifactCorrupted']).toContain(r.left._tag);
          expect(E.isRight(r)).toBe(Buffer.from(garbage).equals(original));
        },
      ),
      { numRuns: 20 },
    );
  });
});

describe('loading a big artifact again', () => {
  const BIG = 9 * 1024 * 1024 + 5;
  const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

  /** Waits until the file system's clock (the change time of a file written now beside it) is past the file's change time, as it is for any artifact written a tick ago. */
  const settle = async (file: string): Promise<void> => {
    const probe = path.join(path.dirname(file), 'probe');
    for (;;) {
      fs.writeFileSync(probe, 'x');
      const later = fs.statSync(probe, { bigint: true }).ctimeNs > fs.statSync(file, { bigint: true }).ctimeNs;
      fs.rmSync(probe);
      if (later) return;
      await pause(5);
    }
  };

  /** A big artifact, loaded (and so verified) once after the file system's clock moved past its writing. */
  const verifiedBig = async (): Promise<{ readonly bytes: Buffer; readonly id: string; readonly file: string }> => {
    const bytes = randomBytes(BIG);
    const id = await store.put(bytes);
    const file = store.locate(id);
    await settle(file);
    expect((await loaded(id, BIG)).equals(bytes)).toBe(true);
    return { bytes, id, file };
  };

  it('loads the same bytes every time', async () => {
    const { bytes, id } = await verifiedBig();
    for (let i = 0; i < 3; i++) expect((await loaded(id, BIG)).equals(bytes)).toBe(true);
  });

  it('a flipped byte written after it was verified gives Left ArtifactCorrupted', async () => {
    const { bytes, id, file } = await verifiedBig();
    const fd = fs.openSync(file, 'r+');
    try {
      fs.writeSync(fd, Buffer.from([(bytes[BIG - 1] as number) ^ 0x01]), 0, 1, BIG - 1);
    } finally {
      fs.closeSync(fd);
    }
    expect(await failure(id, BIG)).toMatchObject({ _tag: 'ArtifactCorrupted', location: file });
  });

  it('a flipped byte is found even when its writer puts the modification time back', async () => {
    const { bytes, id, file } = await verifiedBig();
    const { atime, mtime } = fs.statSync(file);
    const damaged = Buffer.from(bytes);
    damaged[12345] = (damaged[12345] as number) ^ 0x40;
    fs.writeFileSync(file, damaged);
    fs.utimesSync(file, atime, mtime);
    expect((await failure(id, BIG))._tag).toBe('ArtifactCorrupted');
  });

  it('a file of the same size put in its place gives Left ArtifactCorrupted, and putting the bytes again repairs it', async () => {
    const { bytes, id, file } = await verifiedBig();
    const other = path.join(dir, 'other');
    fs.writeFileSync(other, randomBytes(BIG));
    fs.renameSync(other, file);
    expect((await failure(id, BIG))._tag).toBe('ArtifactCorrupted');
    expect(await store.put(bytes)).toBe(id);
    expect((await loaded(id, BIG)).equals(bytes)).toBe(true);
  });

  it('removed and stored again, it is verified again', async () => {
    const { bytes, id, file } = await verifiedBig();
    await store.remove(id);
    expect((await failure(id, BIG))._tag).toBe('ArtifactMissing');
    const garbage = Buffer.from(bytes);
    garbage[0] = (garbage[0] as number) ^ 0x01;
    fs.writeFileSync(file, garbage); // other bytes under the id, as a writer outside the store could leave
    expect((await failure(id, BIG))._tag).toBe('ArtifactCorrupted');
  });
});

describe('present', () => {
  it('is true for the right size, false for a wrong size or a missing file, true for the empty artifact', async () => {
    const id = await store.put(Buffer.from('12345'));
    expect(await store.present([{ id, size: 5 }, { id, size: 4 }, { id, size: 6 }, { id: 'ffffffffffffffffffffffffffffffff', size: 5 }, { id: EMPTY_ARTIFACT_ID, size: 0 }])).toEqual([
      true,
      false,
      false,
      false,
      true,
    ]);
    fs.rmSync(store.locate(id));
    expect(await store.present([{ id, size: 5 }])).toEqual([false]);
  });

  it('is false for invalid ids instead of throwing', async () => {
    expect(await store.present([{ id: '../../etc/passwd', size: 1 }])).toEqual([false]);
  });
});

describe('remove', () => {
  it('removes an artifact and is idempotent', async () => {
    const id = await store.put(Buffer.from('to remove'));
    await store.remove(id);
    expect(fs.existsSync(store.locate(id))).toBe(false);
    await expect(store.remove(id)).resolves.toBeUndefined();
    await expect(store.remove(EMPTY_ARTIFACT_ID)).resolves.toBeUndefined();
    expect((await failure(id, 9))._tag).toBe('ArtifactMissing');
  });

  it('removes only the artifact asked for', async () => {
    const keep = await store.put(Buffer.from('keep'));
    const drop = await store.put(Buffer.from('drop'));
    await store.remove(drop);
    expect((await loaded(keep, 4)).toString()).toBe('keep');
  });
});

describe('invalid ids are rejected', () => {
  const invalid = ['../../etc/passwd', 'ABCDEF0123456789', 'abc', '', 'abcdefgh', `a/${'0'.repeat(10)}`, '0'.repeat(129), 'none2'];

  it.each(invalid.map((id) => [id]))('get returns a typed error, remove and locate reject %p', async (id) => {
    expect(await store.get({ id, size: 1 })).toMatchObject({ _tag: 'Left', left: { _tag: 'ArtifactUnreadable', message: expect.stringContaining('invalid id') } });
    await expect(store.remove(id)).rejects.toThrow(/Invalid artifact id/);
    expect(() => store.locate(id)).toThrow(/Invalid artifact id/);
  });

  it('a rejected id touches nothing outside the store', async () => {
    const outside = path.join(dir, '..', `${path.basename(dir)}-victim`);
    fs.writeFileSync(outside, 'x');
    try {
      await expect(store.remove(`../${path.basename(outside)}`)).rejects.toThrow();
      expect(fs.existsSync(outside)).toBe(true);
    } finally {
      fs.rmSync(outside, { force: true });
    }
  });
});

/** A folder store in a new temporary folder, with what the contract needs to damage and count its files. */
const folderSubject = async (options: { readonly secret?: string } = {}) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'stepcache-artifacts-contract-'));
  const subject = createFileArtifactStore(root, options);
  return {
    store: subject,
    overwrite: async (id: string, bytes: Uint8Array) => fs.promises.writeFile(subject.locate(id), bytes),
    erase: async (id: string) => fs.promises.rm(subject.locate(id)),
    count: async () => filesBelow(root).filter((f) => !f.startsWith(`tmp${path.sep}`)).length,
    dispose: async () => fs.rmSync(root, { recursive: true, force: true }),
  };
};

artifactStoreContract('the folder store', () => folderSubject());

artifactStoreContract(
  'the folder store with a secret (keyed ids)',
  () => folderSubject({ secret: 'team-secret' }),
  keyedContentHashing('team-secret'),
);

describe('content ids under a secret', () => {
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'stepcache-keyed-'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it('are keyed: 64 hex digits that depend on the secret, not the XXH3-128 of the bytes', async () => {
    const bytes = new Uint8Array([1, 2, 3, 4]);
    const plain = await createFileArtifactStore(path.join(root, 'plain')).put(bytes);
    const a = await createFileArtifactStore(path.join(root, 'a'), { secret: 'team-a' }).put(bytes);
    const b = await createFileArtifactStore(path.join(root, 'b'), { secret: 'team-b' }).put(bytes);
    expect(plain).toMatch(/^[0-9a-f]{32}$/);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(b).toMatch(/^[0-9a-f]{64}$/);
    expect(a).not.toBe(b);
    expect(isArtifactId(a)).toBe(true);
  });

  it('refuse ids made by the other hash: they read as missing, saying why', async () => {
    const dir = path.join(root, 'shared');
    const plainStore = createFileArtifactStore(dir);
    const keyedStore = createFileArtifactStore(dir, { secret: 'team-secret' });
    const bytes = new Uint8Array([5, 6, 7]);
    const plainId = await plainStore.put(bytes);
    const keyedId = await keyedStore.put(bytes);
    expect(await keyedStore.present([{ id: plainId, size: 3 }])).toEqual([false]);
    const loaded = await keyedStore.get({ id: plainId, size: 3 });
    expect(E.isLeft(loaded) && loaded.left).toMatchObject({ _tag: 'ArtifactMissing', message: expect.stringContaining('another content hash') });
    expect(await plainStore.present([{ id: keyedId, size: 3 }])).toEqual([false]);
    expect(E.isLeft(await plainStore.get({ id: keyedId, size: 3 }))).toBe(true);
    expect(E.isRight(await keyedStore.get({ id: keyedId, size: 3 }))).toBe(true);
  });
});
