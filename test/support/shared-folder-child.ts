/**
 * One of two processes sharing one artifact folder (as a team shares a folder on NFS), for
 * test/shared-folder.test.ts.
 *
 *   node --import tsx test/support/shared-folder-child.ts <dir> <role: a|b> <goFile> <rounds>
 *
 * Prints `ready` once its artifacts are computed, waits for `<goFile>`, then for every round and
 * every artifact index: puts the shared artifact (the other process puts the same bytes), puts
 * its own artifact, and reads the shared artifact and every artifact of the other process, some
 * of which the other process is writing at that moment. Every read must be the expected bytes;
 * only an artifact of the other process may be missing (the other process may not have reached
 * it yet: the two run at their own pace), never torn. Prints one JSON line
 * `{ reads, missing, failures }`.
 */
import { createCipheriv, createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as E from 'fp-ts/Either';
import { createContentHasher } from '../../src/hash/hashers';
import { createFileArtifactStore } from '../../src/store/artifact-store';

/** How many artifacts of each kind (shared, own per process). */
export const ARTIFACTS = 10;

/** Deterministic pseudo-random bytes of a deterministic size (1 byte to 3 MB) for a seed. */
export const artifactBytes = (seed: string): Buffer => {
  const digest = createHash('sha256').update(seed).digest();
  const size = 1 + (digest.readUInt32BE(0) % 3_000_000);
  const cipher = createCipheriv('aes-128-ctr', digest.subarray(0, 16), digest.subarray(16, 32));
  return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()]);
};

/** The seeds of the shared artifacts and of one process's own artifacts. */
export const seedsOf = (owner: 'shared' | 'a' | 'b'): string[] => Array.from({ length: ARTIFACTS }, (_, k) => `${owner}-${k}`);

interface Known {
  readonly bytes: Buffer;
  readonly id: string;
}

const known = async (seed: string): Promise<Known> => {
  const bytes = artifactBytes(seed);
  const h = await createContentHasher();
  h.update(bytes);
  return { bytes, id: h.digest() };
};

const main = async (): Promise<void> => {
  const [dir, role, goFile, rounds] = process.argv.slice(2);
  if (dir === undefined || (role !== 'a' && role !== 'b') || goFile === undefined || rounds === undefined) {
    throw new Error('usage: shared-folder-child.ts <dir> <a|b> <goFile> <rounds>');
  }
  const store = createFileArtifactStore(dir);
  const shared = await Promise.all(seedsOf('shared').map(known));
  const own = await Promise.all(seedsOf(role).map(known));
  const theirs = await Promise.all(seedsOf(role === 'a' ? 'b' : 'a').map(known));
  const failures: string[] = [];
  let reads = 0;
  let missing = 0;

  const check = async (what: string, artifact: Known, mayBeMissing: boolean): Promise<void> => {
    const r = await store.get({ id: artifact.id, size: artifact.bytes.length });
    reads++;
    if (E.isRight(r)) {
      if (!r.right.equals(artifact.bytes)) failures.push(`${what}: verified but not the expected bytes`);
    } else if (r.left._tag === 'ArtifactMissing' && mayBeMissing) {
      missing++;
    } else {
      failures.push(`${what}: ${r.left._tag} ${r.left.message}`);
    }
  };

  process.stdout.write('ready\n');
  while (!fs.existsSync(goFile)) await new Promise((resolve) => setTimeout(resolve, 5));

  for (let round = 0; round < Number(rounds); round++) {
    for (let k = 0; k < ARTIFACTS; k++) {
      // the two processes walk the shared artifacts in opposite orders in odd rounds, in the same order in even ones
      const s = shared[round % 2 === 1 && role === 'b' ? ARTIFACTS - 1 - k : k] as Known;
      const mine = own[k] as Known;
      const [sharedId, ownId] = await Promise.all([store.put(s.bytes), store.put(mine.bytes)]);
      if (sharedId !== s.id) failures.push(`put of a shared artifact returned ${sharedId}, expected ${s.id}`);
      if (ownId !== mine.id) failures.push(`put of an own artifact returned ${ownId}, expected ${mine.id}`);
      await Promise.all([check(`shared ${s.id} in round ${round}`, s, false), ...theirs.map((t) => check(`their ${t.id} in round ${round}`, t, true))]);
    }
  }
  process.stdout.write(`${JSON.stringify({ reads, missing, failures })}\n`);
};

if (require.main === module) {
  main().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
