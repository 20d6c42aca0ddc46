import * as fs from 'node:fs';
import * as path from 'node:path';
import { createFileArtifactStore, createRunner, pipeline, silentLogger, step, StepcacheError, type Runner } from '../src';
import fc from 'fast-check';
import { selectedForPruning, validatePruneOptions } from '../src/cache/maintenance';
import { artifactsPresent } from '../src/store/inline';
import { filesBelow, removeDir, tempDir } from './support/fixtures';

let dir: string;
let runner: Runner;
beforeEach(() => {
  dir = tempDir();
  runner = createRunner({ dir, logger: silentLogger });
});
afterEach(async () => {
  await runner.close();
  removeDir(dir);
});

const big = step(function big_features({ n }: { n: number }) {
  return new Float64Array(n).fill(1.5);
});
const small = step(function small_summary({ xs }: { xs: Float64Array }) {
  return { count: xs.length };
});
const makePipeline = (name: string) =>
  pipeline(name, (p, { n = 1000 }: { n?: number }) => {
    const xs = p.call(big, { n });
    return { summary: p.call(small, { xs }) };
  });

const artifactFiles = () => filesBelow(path.join(dir, 'artifacts')).filter((f) => !f.startsWith('tmp'));

/** Every remaining entry has all its artifacts, intact in size. */
const expectConsistent = async () => {
  const store = createFileArtifactStore(path.join(dir, 'artifacts'));
  for (const e of await runner.cache.list()) {
    const run = (await runner.listRuns()).find((r) => Object.values(r.steps).some((s) => s.key === e.key && s.outputs !== undefined));
    const outputs = Object.values(run?.steps ?? {}).find((s) => s.key === e.key)?.outputs ?? {};
    expect((await artifactsPresent(store, Object.values(outputs))).every(Boolean)).toBe(true); // inline outputs are in the entry
  }
};

describe('runner.cache', () => {
  it('lists entries by step with their size, most recently used first', async () => {
    await runner.run(makePipeline('a'), { n: 1000 });
    const entries = await runner.cache.list();
    expect(entries.map((e) => e.step).sort()).toEqual(['big_features', 'small_summary']);
    expect(entries.find((e) => e.step === 'big_features')?.bytes).toBe(8000);
    expect((await runner.cache.list({ step: 'small_summary' })).map((e) => e.step)).toEqual(['small_summary']);
    for (const e of entries) expect(e.ageMs).toBeGreaterThanOrEqual(0);
  });

  it('prunes one step: its entry and its artifacts go, the next run re-executes only that step', async () => {
    await runner.run(makePipeline('a'));
    const report = await runner.cache.prune({ step: 'big_features', graceMs: 0 });
    expect(report.entries).toBe(1);
    expect(report.artifacts).toBe(1);
    expect(report.bytes).toBe(8000);
    expect((await runner.cache.list()).map((e) => e.step)).toEqual(['small_summary']);
    await expectConsistent();
    const run = await runner.run(makePipeline('a'));
    expect(run.steps.big_features?.status).toBe('executed');
    expect(run.steps.small_summary?.status).toBe('cached'); // byte-identical input
  });

  it('prunes entries unused for longer than olderThan, and nothing fresher', async () => {
    await runner.run(makePipeline('a'));
    expect((await runner.cache.prune({ olderThan: '1h', graceMs: 0 })).entries).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await runner.cache.prune({ olderThan: 10, graceMs: 0 })).entries).toBe(2);
    expect(artifactFiles()).toEqual([]);
  });

  it('evicts least recently used entries first to fit maxBytes', async () => {
    await runner.run(makePipeline('old_one'), { n: 4000 }); // 32 kB
    await new Promise((resolve) => setTimeout(resolve, 10));
    await runner.run(makePipeline('new_one'), { n: 200 }); // 1.6 kB: a file too (not inside its entry)
    const report = await runner.cache.prune({ maxBytes: 2000, graceMs: 0 });
    expect(report.remainingBytes).toBeLessThanOrEqual(2000);
    const left = (await runner.cache.list()).map((e) => `${e.pipeline}/${e.step}`).sort();
    // the oldest (and biggest) goes first; eviction stops as soon as the rest fits
    expect(left).toEqual(['new_one/big_features', 'new_one/small_summary', 'old_one/small_summary']);
    expect(report.entries).toBe(1);
    await expectConsistent();
  });

  it('counts a cached use as a use: a re-used old entry survives an LRU eviction', async () => {
    // Files of 1.6 and 2.4 kB (bigger than what is kept inside an entry); room for one of them only.
    await runner.run(makePipeline('first'), { n: 200 });
    await new Promise((resolve) => setTimeout(resolve, 10));
    await runner.run(makePipeline('second'), { n: 300 });
    await new Promise((resolve) => setTimeout(resolve, 10));
    await runner.run(makePipeline('first'), { n: 200 }); // served from cache: now the most recent
    await runner.cache.prune({ maxBytes: 2000, graceMs: 0 });
    const left = (await runner.cache.list()).map((e) => `${e.pipeline}/${e.step}`).sort();
    expect(left).toEqual(['first/big_features', 'first/small_summary', 'second/small_summary']);
  });

  it('evicts for room only entries that hold stored bytes: one whose outputs are all inside it stays, however old', async () => {
    await runner.run(makePipeline('tiny'), { n: 2 }); // 16 B and a number: both inside their entries
    await new Promise((resolve) => setTimeout(resolve, 10));
    await runner.run(makePipeline('large'), { n: 1000 }); // 8 kB: a file
    const report = await runner.cache.prune({ maxBytes: 0, graceMs: 0 });
    expect(report.remainingBytes).toBe(0);
    const left = (await runner.cache.list()).map((e) => `${e.pipeline}/${e.step}`).sort();
    expect(left).toEqual(['large/small_summary', 'tiny/big_features', 'tiny/small_summary']);
    expect(artifactFiles()).toEqual([]);
    await expectConsistent();
  });

  it('clears every entry and artifact; the next run executes everything', async () => {
    await runner.run(makePipeline('a'));
    const report = await runner.cache.clear();
    expect(report.entries).toBe(2);
    expect(await runner.cache.list()).toEqual([]);
    expect(artifactFiles()).toEqual([]);
    const run = await runner.run(makePipeline('a'));
    expect(Object.values(run.steps).map((s) => s.status)).toEqual(['executed', 'executed']);
  });

  it('keeps recently written unreferenced artifacts (a run may be writing them) unless the grace is zero', async () => {
    const store = createFileArtifactStore(path.join(dir, 'artifacts'));
    const id = await store.put(new Uint8Array([1, 2, 3]));
    expect((await runner.cache.prune({})).artifacts).toBe(0);
    expect(fs.existsSync(store.locate(id))).toBe(true);
    expect((await runner.cache.prune({ graceMs: 0 })).artifacts).toBe(1);
    expect(fs.existsSync(store.locate(id))).toBe(false);
  });

  it('removes temporary files of interrupted writes once they are old', async () => {
    await runner.run(makePipeline('a'));
    const leftover = path.join(dir, 'artifacts', 'tmp', '123-crashed.part');
    fs.writeFileSync(leftover, 'partial');
    await runner.cache.prune({});
    expect(fs.existsSync(leftover)).toBe(true);
    const past = new Date(Date.now() - 3600_000);
    fs.utimesSync(leftover, past, past);
    await runner.cache.prune({});
    expect(fs.existsSync(leftover)).toBe(false);
  });

  it('rejects invalid prune options naming the field', async () => {
    await expect(runner.cache.prune({ olderThan: 'soon' })).rejects.toMatchObject({ code: 'INVALID_OPTIONS', field: 'olderThan' });
    await expect(runner.cache.prune({ maxBytes: -1 })).rejects.toMatchObject({ code: 'INVALID_OPTIONS', field: 'maxBytes' });
    await expect(runner.cache.prune({ stepName: 'x' } as never)).rejects.toBeInstanceOf(StepcacheError);
  });
});

describe('selectedForPruning', () => {
  const entry = fc.record({ step: fc.constantFrom('a', 'b'), pipeline: fc.constantFrom('p', 'q') });
  const options = fc.record(
    { step: fc.constantFrom('a', 'b'), pipeline: fc.constantFrom('p', 'q'), olderThan: fc.oneof(fc.nat({ max: 1000 }), fc.constantFrom('1s', '0ms')) },
    { requiredKeys: [] },
  );

  it('selects nothing without a filter', () => {
    fc.assert(fc.property(entry, fc.nat(), (e, age) => expect(selectedForPruning({ maxBytes: 0 })(e, age)).toBe(false)));
  });

  it('selects exactly the entries every given filter matches', () => {
    fc.assert(
      fc.property(options, entry, fc.nat({ max: 2000 }), (o, e, age) => {
        const olderThan = o.olderThan === undefined ? undefined : typeof o.olderThan === 'number' ? o.olderThan : o.olderThan === '1s' ? 1000 : 0;
        const expected =
          Object.keys(o).length > 0 && (o.step === undefined || o.step === e.step) && (o.pipeline === undefined || o.pipeline === e.pipeline) && (olderThan === undefined || age > olderThan);
        expect(selectedForPruning(o)(e, age)).toBe(expected);
      }),
    );
  });
});

describe('validatePruneOptions', () => {
  it('names any invalid value, even one JSON cannot write', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(validatePruneOptions({ olderThan: 10n as never })?.message).toBe("Invalid prune option olderThan: got 10n, expected milliseconds (0 or more) or a duration like '12h' or '30d'.");
    expect(validatePruneOptions({ maxBytes: cyclic as never })?.message).toBe('Invalid prune option maxBytes: got {"self":…, expected a number of 0 or more.');
  });
});
