import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { createContentHasher } from '../src/hash/hashers';
import { createFileArtifactStore } from '../src/store/artifact-store';
import { filesBelow, removeDir, tempDir } from './support/fixtures';
import { ARTIFACTS, artifactBytes, seedsOf } from './support/shared-folder-child';

const root = path.resolve(__dirname, '..');
const ROUNDS = 3;

interface ChildOutcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Starts a child on the folder; resolves `ready` when it has computed its artifacts, `done` when it exits. */
const startChild = (dir: string, role: 'a' | 'b', goFile: string): { readonly ready: Promise<void>; readonly done: Promise<ChildOutcome> } => {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'test/support/shared-folder-child.ts'), dir, role, goFile, String(ROUNDS)], { cwd: root });
  let stdout = '';
  let stderr = '';
  let signalReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (signalReady = resolve));
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (stdout.startsWith('ready\n')) signalReady();
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<ChildOutcome>((resolve) =>
    child.on('close', (code) => {
      signalReady();
      resolve({ code, stdout, stderr });
    }),
  );
  return { ready, done };
};

describe('one artifact folder shared by two processes (a team folder on NFS)', () => {
  it('concurrent puts of the same and of different artifacts, and reads while the other writes: nothing torn, every read verifies', async () => {
    const dir = tempDir('stepcache-shared-');
    const store = path.join(dir, 'artifacts');
    const goFile = path.join(dir, 'go');
    try {
      const children = [startChild(store, 'a', goFile), startChild(store, 'b', goFile)];
      await Promise.all(children.map((c) => c.ready));
      fs.writeFileSync(goFile, '');
      const outcomes = await Promise.all(children.map((c) => c.done));
      for (const o of outcomes) {
        expect(o.stderr).toBe('');
        expect(o.code).toBe(0);
        const report = JSON.parse(o.stdout.trim().split('\n').pop() ?? '') as { reads: number; missing: number; failures: string[] };
        expect(report.failures).toEqual([]);
        expect(report.reads).toBe(ROUNDS * ARTIFACTS * (1 + ARTIFACTS));
        expect(report.missing).toBeLessThan(report.reads);
      }
      // afterwards, a third process-worth of store finds every artifact intact, once, and no leftovers
      const third = createFileArtifactStore(store);
      const seeds = [...seedsOf('shared'), ...seedsOf('a'), ...seedsOf('b')];
      for (const seed of seeds) {
        const bytes = artifactBytes(seed);
        const h = await createContentHasher();
        h.update(bytes);
        const r = await third.get({ id: h.digest(), size: bytes.length });
        expect(E.isRight(r) && r.right.equals(bytes)).toBe(true);
      }
      expect((await third.list()).length).toBe(seeds.length);
      expect(filesBelow(path.join(store, 'tmp'))).toEqual([]);
    } finally {
      removeDir(dir);
    }
  }, 180_000);
});
