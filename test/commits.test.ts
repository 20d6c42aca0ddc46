/**
 * The writes a run leaves behind its steps: tracked by step, waited for before the run settles,
 * and a failure reported once against its step.
 */
import { createRunner, pipeline, silentLogger, step, StepcacheError } from '../src';
import { pendingCommits } from '../src/runner/commits';
import { createSqliteMetadataStore } from '../src/store/metadata-store';
import { removeDir, tempDir } from './support/fixtures';
import * as path from 'node:path';

const later = <A>(value: A, fail = false): { readonly promise: Promise<A>; readonly settle: () => void } => {
  let settle!: () => void;
  const promise = new Promise<A>((resolve, reject) => (settle = () => (fail ? reject(new Error('disk full')) : resolve(value))));
  return { promise, settle };
};

describe('pending commits', () => {
  it('settles only once every tracked write has, including writes tracked meanwhile, and reports each failed step once', async () => {
    const commits = pendingCommits();
    const a = later(undefined);
    const b = later(undefined, true);
    commits.track('a', a.promise);
    let settled = false;
    const done = commits.settle().then((failed) => ((settled = true), failed));
    commits.track('b', b.promise);
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    a.settle();
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    b.settle();
    expect((await done).map((f) => [f.step, f.error.message])).toEqual([['b', 'disk full']]);
    expect(await commits.settle()).toEqual([]);
  });

  it('a step has landed once every write tracked for it has settled, failed or not', async () => {
    const commits = pendingCommits();
    const first = later(undefined, true);
    commits.track('s', first.promise);
    let landed = false;
    void commits.landed('s').then(() => (landed = true));
    await new Promise((r) => setImmediate(r));
    expect(landed).toBe(false);
    first.settle();
    await commits.landed('s');
    expect(landed).toBe(true);
    await commits.landed('never-tracked');
  });
});

describe('a run whose entry cannot be recorded', () => {
  it('fails the step with STORE_UNAVAILABLE naming it, though later steps ran, and the next run executes it again', async () => {
    const dir = tempDir();
    const store = createSqliteMetadataStore(path.join(dir, 'metadata.sqlite'));
    let failing = true;
    const metadata = Object.freeze({ ...store, putEntry: (...args: Parameters<typeof store.putEntry>) => (failing && args[0].step === 'first' ? Promise.reject(new Error('disk full')) : store.putEntry(...args)) });
    const first = step(function first() {
      return 1;
    });
    const second = step(function second({ x }: { x: number }) {
      return x + 1;
    });
    const p = pipeline('unrecorded', (q) => ({ out: q.call(second, { x: q.call(first) }) }));
    const runner = createRunner({ dir, logger: silentLogger, metadata });
    try {
      const error = await runner.run(p).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(StepcacheError);
      expect(error).toMatchObject({ code: 'STORE_UNAVAILABLE', step: 'first', message: expect.stringContaining('The cache entry of step first could not be recorded: disk full') as string });
      expect((error as StepcacheError).run?.steps['second']?.status).toBe('executed');
      failing = false;
      const again = await runner.run(p);
      expect(again.steps['first']?.status).toBe('executed');
      expect(again.steps['second']?.status).toBe('cached');
    } finally {
      await runner.close();
      removeDir(dir);
    }
  });
});
