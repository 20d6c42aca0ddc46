/**
 * The contract every metadata store keeps, run against each implementation (the keyv/SQLite store
 * in test/metadata-store.test.ts, the PostgreSQL one in test/postgres-metadata-store.test.ts).
 *
 * One meaning for each operation:
 * - `putEntry` is insert-if-absent: a key's first entry stays, later writes of the key (even
 *   concurrent ones) change nothing; `replace: true` overwrites; an expired or unreadable entry is absent.
 * - An entry with `ttlMs` expires `ttlMs` after its `createdAt`; `getEntries` and `listEntries` skip it.
 * - `getLatestEntries` gives each step's most recent entry of the pipeline, expired or not (it explains
 *   a later miss); a deleted entry is never it. `getLatestEntriesOfSteps` does the same whichever
 *   pipeline made the entry.
 * - `listEntries` and `listRuns` give the most recent first.
 * - A row that does not decode is skipped, never a crash; the next write of its key replaces it.
 */
import * as os from 'node:os';
import * as fc from 'fast-check';
import type { CacheEntry, MetadataStore, RunRecord } from '../../src';

// model

/** A fresh, empty store, and ways to damage its rows behind its back. */
export interface MetadataStoreSubject {
  readonly store: MetadataStore;
  /** Makes the stored entry of `key` unreadable (a value that does not decode as an entry). */
  damageEntry(key: string): Promise<void>;
  /** Makes the stored run `id` unreadable. */
  damageRun(id: string): Promise<void>;
  /** Closes the store and removes what it stored. */
  dispose(): Promise<void>;
}

// fixtures

let sequence = 0;
const uniqueKey = (): string => `${(++sequence).toString(16).padStart(8, '0')}${Math.random().toString(16).slice(2, 10)}`.padEnd(32, '0');

const HOUR = 3_600_000;

/** An entry created `agoMs` before now (whole milliseconds). */
export const entryOf = (overrides: Partial<CacheEntry> = {}, agoMs = 0): CacheEntry => ({
  key: uniqueKey(),
  pipeline: 'training',
  step: 'svc_trainer',
  runId: 'run-1',
  createdAt: Date.now() - agoMs,
  durationMs: 12.5,
  outputs: { model: { id: 'ab'.repeat(32), kind: 'bytes', size: 1024, format: 'auto', dtype: 'float64' } },
  components: { code: { hash: 'c0de' }, parameters: { gamma: '0.1' } },
  ...overrides,
});

const runOf = (id: string, startedAt: string, overrides: Partial<RunRecord> = {}): RunRecord => ({
  id,
  pipeline: 'training',
  parameters: { gamma: 0.1, nested: { list: [1, 'two', null] } },
  status: 'completed',
  startedAt,
  steps: {
    // deliberately not in alphabetical order: the pipeline's order must survive
    zeta_loader: { name: 'zeta_loader', status: 'executed', durationMs: 3.25, key: 'k1', startedAt },
    alpha_trainer: { name: 'alpha_trainer', status: 'cached', durationMs: 0.5, key: 'k2', cachedFrom: 'run-0', reason: 'cached', why: { _tag: 'NeverCached' } },
    mid_eval: { name: 'mid_eval', status: 'failed', durationMs: 1, error: 'boom' },
  },
  outputs: { model: { step: 'alpha_trainer', output: 'output' } },
  endedAt: startedAt,
  durationMs: 42,
  edges: [{ from: 'zeta_loader', output: 'output', to: 'alpha_trainer', input: 'rows' }],
  ...overrides,
});

const arbitraryEntry = (key: string): fc.Arbitrary<CacheEntry> =>
  fc.record({
    key: fc.constant(key),
    pipeline: fc.constantFrom('training', 'eval'),
    step: fc.constantFrom('loader', 'trainer'),
    runId: fc.string({ minLength: 1, maxLength: 12 }).filter((s) => !s.includes('\u0000')),
    createdAt: fc.integer({ min: 1_500_000_000_000, max: 2_000_000_000_000 }),
    durationMs: fc.double({ min: 0, max: 1e6, noNaN: true }),
    outputs: fc.dictionary(
      fc.constantFrom('output', 'model', 'metrics'),
      fc.record({ id: fc.stringMatching(/^[0-9a-f]{8}$/), kind: fc.constantFrom('json' as const, 'bytes' as const, 'none' as const), size: fc.nat(), format: fc.constant('auto') }),
    ),
  });

// the contract

/**
 * Declares the contract's tests for one implementation. `makeSubject` is called for every test.
 *
 * @example
 * metadataStoreContract('keyv over SQLite', async () => ({ store, damageEntry, damageRun, dispose }));
 */
export const metadataStoreContract = (name: string, makeSubject: () => Promise<MetadataStoreSubject>): void => {
  describe(`${name}: the metadata store contract`, () => {
    let subject: MetadataStoreSubject;
    let store: MetadataStore;
    beforeEach(async () => {
      subject = await makeSubject();
      store = subject.store;
    });
    afterEach(async () => {
      await subject.dispose();
    });

    describe('entries', () => {
      it('reads back what was put, in the order of the keys asked for, undefined where absent', async () => {
        const a = entryOf({ step: 'a' });
        const b = entryOf({ step: 'b', components: undefined, signature: 'f'.repeat(64) });
        delete (b as { components?: unknown }).components;
        await store.putEntry(a);
        await store.putEntry(b);
        const missing = uniqueKey();
        expect(await store.getEntries([b.key, missing, a.key, b.key])).toEqual([b, undefined, a, b]);
        expect(await store.getEntries([])).toEqual([]);
        expect(Object.hasOwn((await store.getEntries([b.key]))[0] as object, 'components')).toBe(false);
      });

      it('a batch of many keys reads them all', async () => {
        const entries = Array.from({ length: 300 }, (_, i) => entryOf({ step: `s${i % 7}` }, i));
        await Promise.all(entries.map((e) => store.putEntry(e)));
        expect(await store.getEntries(entries.map((e) => e.key))).toEqual(entries);
      });

      it('insert-if-absent: a later entry of the same key changes nothing; replace overwrites', async () => {
        const first = entryOf({ runId: 'first' });
        await store.putEntry(first);
        await store.putEntry({ ...first, runId: 'second', createdAt: first.createdAt + 5 });
        expect(await store.getEntries([first.key])).toEqual([first]);
        const third = { ...first, runId: 'third', createdAt: first.createdAt + 10 };
        await store.putEntry(third, { replace: true });
        expect(await store.getEntries([first.key])).toEqual([third]);
      });

      it('concurrent writers of one key: exactly one entry is stored and it stays', async () => {
        const base = entryOf();
        const writers = Array.from({ length: 16 }, (_, i) => ({ ...base, runId: `writer-${i}` }));
        await Promise.all(writers.map((e) => store.putEntry(e)));
        const [stored] = await store.getEntries([base.key]);
        expect(writers).toContainEqual(stored);
        expect((await store.listEntries()).filter((e) => e.key === base.key)).toEqual([stored]);
        await Promise.all(writers.map((e) => store.putEntry({ ...e, runId: `late-${e.runId}` })));
        expect(await store.getEntries([base.key])).toEqual([stored]);
      });

      it('law: after any sequence of writes, each key holds its first entry', async () => {
        const keys = [uniqueKey(), uniqueKey(), uniqueKey()];
        await fc.assert(
          fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 2 }).chain((i) => arbitraryEntry(keys[i] as string)), { minLength: 1, maxLength: 8 }), async (writes) => {
            const fresh = writes.map((w) => ({ ...w, key: `${w.key}-${sequence}` }));
            sequence++;
            for (const w of fresh) await store.putEntry(w);
            const firsts = new Map<string, CacheEntry>();
            for (const w of fresh) if (!firsts.has(w.key)) firsts.set(w.key, w);
            expect(await store.getEntries([...firsts.keys()])).toEqual([...firsts.values()]);
          }),
          { numRuns: 15 },
        );
      });

      it('an entry expires ttlMs after its creation: absent from reads and lists, and the next write of its key replaces it', async () => {
        const expired = entryOf({ step: 'expiring' }, 10_000);
        const fresh = entryOf({ step: 'lasting' }, 10_000);
        await store.putEntry(expired, { ttlMs: 1_000 });
        await store.putEntry(fresh, { ttlMs: HOUR });
        expect(await store.getEntries([expired.key, fresh.key])).toEqual([undefined, fresh]);
        expect((await store.listEntries()).map((e) => e.key)).toEqual([fresh.key]);
        const again = { ...expired, runId: 'again', createdAt: Date.now() };
        await store.putEntry(again, { ttlMs: HOUR });
        expect(await store.getEntries([expired.key])).toEqual([again]);
      });

      it('lists entries most recent first', async () => {
        const old = entryOf({ step: 'a' }, 3_000);
        const middle = entryOf({ step: 'b' }, 2_000);
        const recent = entryOf({ step: 'c' }, 1_000);
        for (const e of [middle, recent, old]) await store.putEntry(e);
        expect(await store.listEntries()).toEqual([recent, middle, old]);
      });

      it('deletes entries; the rest stay; a deleted entry is never the latest', async () => {
        const older = entryOf({ step: 'trainer' }, 2_000);
        const newer = entryOf({ step: 'trainer' }, 1_000);
        const other = entryOf({ step: 'loader' });
        for (const e of [older, newer, other]) await store.putEntry(e);
        await store.deleteEntries([newer]);
        expect(await store.getEntries([older.key, newer.key, other.key])).toEqual([older, undefined, other]);
        const [latest] = await store.getLatestEntries('training', ['trainer']);
        expect(latest?.key).not.toBe(newer.key);
        await store.deleteEntries([]);
        expect((await store.listEntries()).map((e) => e.key)).toEqual([other.key, older.key]);
      });
    });

    describe('latest entries', () => {
      it('gives each step its most recent entry of the pipeline, undefined for a step without one', async () => {
        const trainerOld = entryOf({ step: 'trainer' }, 2_000);
        const trainerNew = entryOf({ step: 'trainer' }, 1_000);
        const loader = entryOf({ step: 'loader' }, 5_000);
        const elsewhere = entryOf({ step: 'trainer', pipeline: 'other' });
        for (const e of [trainerOld, trainerNew, loader, elsewhere]) await store.putEntry(e);
        expect(await store.getLatestEntries('training', ['loader', 'nothing', 'trainer'])).toEqual([loader, undefined, trainerNew]);
        expect(await store.getLatestEntries('other', ['trainer'])).toEqual([elsewhere]);
        expect(await store.getLatestEntries('training', [])).toEqual([]);
      });

      it('an expired entry stays the latest of its step, so a later miss can say what changed', async () => {
        const expired = entryOf({ step: 'trainer' }, 10_000);
        await store.putEntry(expired, { ttlMs: 1_000 });
        expect(await store.getEntries([expired.key])).toEqual([undefined]);
        expect(await store.getLatestEntries('training', ['trainer'])).toEqual([expired]);
      });

      it('gives each step its most recent entry whichever pipeline made it, undefined for a step without one', async () => {
        const inTraining = entryOf({ step: 'trainer' }, 3_000);
        const inOther = entryOf({ step: 'trainer', pipeline: 'other' }, 1_000);
        const loader = entryOf({ step: 'loader', pipeline: 'other' }, 2_000);
        for (const e of [inOther, inTraining, loader]) await store.putEntry(e);
        expect(await store.getLatestEntriesOfSteps(['trainer', 'nothing', 'loader'])).toEqual([inOther, undefined, loader]);
        expect(await store.getLatestEntriesOfSteps([])).toEqual([]);
        const newest = entryOf({ step: 'trainer' }, 500);
        await store.putEntry(newest);
        expect(await store.getLatestEntriesOfSteps(['trainer'])).toEqual([newest]);
        expect(await store.getLatestEntries('other', ['trainer'])).toEqual([inOther]);
      });

      it('a deleted entry is never the latest of its step', async () => {
        const entry = entryOf({ step: 'trainer', pipeline: 'other' });
        await store.putEntry(entry);
        await store.deleteEntries([entry]);
        const [latest] = await store.getLatestEntriesOfSteps(['trainer']);
        expect(latest?.key).not.toBe(entry.key);
      });

      it('the heads of the latest entries are those entries without key components or signature, through writes, replacements and deletions', async () => {
        const heads = (steps: readonly string[]) => (store.getLatestHeadsOfSteps === undefined ? store.getLatestEntriesOfSteps(steps) : store.getLatestHeadsOfSteps(steps));
        const headOf = (e: CacheEntry | undefined) => (e === undefined ? undefined : { key: e.key, pipeline: e.pipeline, step: e.step, runId: e.runId, createdAt: e.createdAt, durationMs: e.durationMs, outputs: e.outputs });
        const steps = ['trainer', 'nothing', 'loader'];
        const agree = async () => expect(await heads(steps)).toEqual((await store.getLatestEntriesOfSteps(steps)).map(headOf));
        const older = entryOf({ step: 'trainer' }, 3_000);
        const newer = entryOf({ step: 'trainer', pipeline: 'other' }, 1_000);
        const loader = entryOf({ step: 'loader' }, 2_000);
        for (const e of [newer, older, loader]) await store.putEntry(e);
        expect(await heads(steps)).toEqual([headOf(newer), undefined, headOf(loader)]);
        await agree();
        const replaced = { ...newer, runId: 'run-2', createdAt: newer.createdAt + 1, outputs: {} };
        await store.putEntry(replaced, { replace: true });
        expect((await heads(['trainer']))[0]).toEqual(headOf(replaced));
        await store.deleteEntries([replaced]);
        expect((await heads(['trainer']))[0]?.key).not.toBe(replaced.key);
        await agree();
        expect(await heads([])).toEqual([]);
      });

      it('an entry that was not inserted (its key had one) does not become the latest', async () => {
        const first = entryOf({ step: 'trainer' }, 1_000);
        await store.putEntry(first);
        await store.putEntry({ ...first, runId: 'ignored' });
        expect(await store.getLatestEntries('training', ['trainer'])).toEqual([first]);
      });
    });

    describe('runs', () => {
      it('a run record round-trips, the order of its steps included; writing it again updates it', async () => {
        const running = runOf('run-a', '2026-01-02T03:04:05.006Z', { status: 'running', steps: {}, outputs: {} });
        delete (running as { endedAt?: string }).endedAt;
        await store.putRun(running);
        expect(await store.getRun('run-a')).toEqual(running);
        const done = runOf('run-a', '2026-01-02T03:04:05.006Z');
        await store.putRun(done);
        const read = await store.getRun('run-a');
        expect(read).toEqual(done);
        expect(Object.keys(read?.steps ?? {})).toEqual(['zeta_loader', 'alpha_trainer', 'mid_eval']);
        expect(await store.getRun('no-such-run')).toBeUndefined();
      });

      it('any JSON round-trips exactly, strings with NUL characters and unicode included', async () => {
        const odd = 'nul\u0000 tab\t quote" backslash\\u0000 emoji \u{1F600} lone \uD800';
        const run = runOf('odd', '2026-01-02T00:00:00.000Z', { parameters: { [odd]: odd, list: [odd, -0.5, 1e300] } });
        const failed = { ...run.steps, mid_eval: { name: 'mid_eval', status: 'failed' as const, durationMs: 1, error: odd } };
        await store.putRun({ ...run, steps: failed });
        expect(await store.getRun('odd')).toEqual({ ...run, steps: failed });
        const entry = entryOf({ components: { parameters: { [odd]: { digest: 'd', preview: odd } }, nothing: null } });
        await store.putEntry(entry);
        expect(await store.getEntries([entry.key])).toEqual([entry]);
        const nullComponents = entryOf({ components: null });
        await store.putEntry(nullComponents);
        expect(await store.getEntries([nullComponents.key])).toEqual([nullComponents]);
      });

      it('lists runs most recent first', async () => {
        const runs = [runOf('r2', '2026-01-02T00:00:00.000Z'), runOf('r3', '2026-01-03T00:00:00.000Z'), runOf('r1', '2026-01-01T00:00:00.000Z')];
        for (const r of runs) await store.putRun(r);
        expect((await store.listRuns()).map((r) => r.id)).toEqual(['r3', 'r2', 'r1']);
      });
    });

    describe('run pages, summaries, ids and deletion', () => {
      const at = (i: number): string => new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString();
      const putMany = async (n: number): Promise<RunRecord[]> => {
        const runs = Array.from({ length: n }, (_, i) =>
          runOf(`run-${String(i).padStart(3, '0')}`, at(i), { pipeline: i % 2 === 0 ? 'even' : 'odd', status: i % 3 === 0 ? 'failed' : 'completed' }),
        );
        for (const r of runs) await store.putRun(r);
        return runs;
      };

      it('pages runs newest first by start time, continuing before the last of the previous page, with filters', async () => {
        await putMany(25);
        const first = await store.listRunSummaries({ limit: 10 });
        expect(first.map((r) => r.id)).toEqual(Array.from({ length: 10 }, (_, i) => `run-${String(24 - i).padStart(3, '0')}`));
        const second = await store.listRunSummaries({ limit: 10, before: first[first.length - 1] });
        expect(second.map((r) => r.id)[0]).toBe('run-014');
        const rest = await store.listRunSummaries({ before: second[second.length - 1] });
        expect(rest).toHaveLength(5);
        expect((await store.listRunSummaries({ pipeline: 'odd', limit: 3 })).map((r) => r.id)).toEqual(['run-023', 'run-021', 'run-019']);
        expect((await store.listRunSummaries({ status: 'failed' })).map((r) => r.id)).toEqual(['run-024', 'run-021', 'run-018', 'run-015', 'run-012', 'run-009', 'run-006', 'run-003', 'run-000']);
        expect((await store.listRuns({ limit: 2, pipeline: 'even' })).map((r) => r.id)).toEqual(['run-024', 'run-022']);
        expect(await store.listRuns()).toHaveLength(25);
      });

      it('sorts by start time, not by id', async () => {
        await store.putRun(runOf('zzz-old', at(1)));
        await store.putRun(runOf('aaa-new', at(2)));
        expect((await store.listRunSummaries()).map((r) => r.id)).toEqual(['aaa-new', 'zzz-old']);
      });

      it('a summary says what a listing shows: status, times, parameters in short, step counts', async () => {
        const run = runOf('summed', at(0));
        await store.putRun(run);
        expect(await store.listRunSummaries()).toEqual([
          { id: 'summed', pipeline: 'training', status: 'completed', startedAt: at(0), endedAt: at(0), durationMs: 42, parameters: 'gamma=0.1 nested={"list":[1,"two",null]}', steps: { executed: 1, cached: 1, failed: 1, skipped: 0 } },
        ]);
      });

      it('finds run ids by prefix, in id order, at most limit', async () => {
        for (const id of ['abcd1', 'abcd2', 'abce3', 'x_y%1']) await store.putRun(runOf(id, at(0)));
        expect(await store.findRunIds('abcd', 10)).toEqual(['abcd1', 'abcd2']);
        expect(await store.findRunIds('ab', 2)).toEqual(['abcd1', 'abcd2']);
        expect(await store.findRunIds('x_y%', 10)).toEqual(['x_y%1']);
        expect(await store.findRunIds('x%', 10)).toEqual([]);
        expect(await store.findRunIds('nope', 10)).toEqual([]);
      });

      it('deletes runs, their summaries with them', async () => {
        await putMany(5);
        await store.deleteRuns(['run-001', 'run-003', 'no-such-run']);
        expect((await store.listRunSummaries()).map((r) => r.id)).toEqual(['run-004', 'run-002', 'run-000']);
        expect(await store.getRun('run-001')).toBeUndefined();
        expect(await store.findRunIds('run-00', 10)).toEqual(['run-000', 'run-002', 'run-004']);
      });

      it('says when each key was last used by a finished run: executed or cached, not failed, not while running', async () => {
        await store.putRun(runOf('older', at(1)));
        await store.putRun(runOf('newer', at(5), { steps: { zeta_loader: { name: 'zeta_loader', status: 'cached', durationMs: 1, key: 'k1', cachedFrom: 'older' } } }));
        await store.putRun(runOf('unfinished', at(9), { status: 'running', steps: { zeta_loader: { name: 'zeta_loader', status: 'cached', durationMs: 1, key: 'k1' } } }));
        const used = await store.lastUsed(['k1', 'k2', 'never']);
        expect([...used.entries()].sort()).toEqual([
          ['k1', Date.parse(at(5))],
          ['k2', Date.parse(at(1))],
        ]);
        expect((await store.lastUsed([])).size).toBe(0);
      });

      it('a running run whose owner is gone reads as interrupted; a live one as running', async () => {
        const dead = { pid: 2 ** 22 + 12345, host: os.hostname() };
        await store.putRun(runOf('killed', at(1), { status: 'running', steps: {}, owner: dead, heartbeatAt: at(1), heartbeatEveryMs: 30_000 }));
        await store.putRun(runOf('alive', at(2), { status: 'running', steps: {}, owner: { pid: process.pid, host: os.hostname() }, heartbeatAt: new Date().toISOString(), heartbeatEveryMs: 30_000 }));
        await store.putRun(runOf('silent', at(3), { status: 'running', steps: {}, owner: { pid: 1, host: 'another-host' }, heartbeatAt: at(3), heartbeatEveryMs: 30_000 }));
        expect((await store.getRun('killed'))?.status).toBe('interrupted');
        expect((await store.getRun('alive'))?.status).toBe('running');
        expect((await store.listRunSummaries()).map((r) => [r.id, r.status])).toEqual([
          ['silent', 'interrupted'],
          ['alive', 'running'],
          ['killed', 'interrupted'],
        ]);
        expect((await store.listRuns({ status: 'interrupted' })).map((r) => r.id)).toEqual(['silent', 'killed']);
      });
    });

    describe('damaged rows', () => {
      it('an entry that does not decode is skipped by every read, and the next write of its key replaces it', async () => {
        const damaged = entryOf({ step: 'trainer' }, 1_000);
        const intact = entryOf({ step: 'loader' }, 2_000);
        await store.putEntry(damaged);
        await store.putEntry(intact);
        await subject.damageEntry(damaged.key);
        expect(await store.getEntries([damaged.key, intact.key])).toEqual([undefined, intact]);
        expect(await store.listEntries()).toEqual([intact]);
        const repaired = { ...damaged, runId: 'repair' };
        await store.putEntry(repaired);
        expect(await store.getEntries([damaged.key])).toEqual([repaired]);
      });

      it('findDamaged names every row that does not decode, and dropDamaged removes them and nothing else', async () => {
        const entry = entryOf();
        const damagedEntry = entryOf({ step: 'trainer' });
        await store.putEntry(entry);
        await store.putEntry(damagedEntry);
        await store.putRun(runOf('damaged', '2026-01-02T00:00:00.000Z'));
        await store.putRun(runOf('intact', '2026-01-01T00:00:00.000Z'));
        expect(await store.findDamaged()).toEqual([]);
        await subject.damageEntry(damagedEntry.key);
        await subject.damageRun('damaged');
        const found = await store.findDamaged();
        expect(found.map((d) => [d.record, d.id]).sort()).toEqual(
          expect.arrayContaining([
            ['cache entry', damagedEntry.key],
            ['run', 'damaged'],
          ]),
        );
        await store.dropDamaged(found);
        expect(await store.findDamaged()).toEqual([]);
        expect(await store.getEntries([entry.key])).toEqual([entry]);
        expect((await store.listRuns()).map((r) => r.id)).toEqual(['intact']);
        expect((await store.listRunSummaries()).map((r) => r.id)).toEqual(['intact']);
      });

      it('a run that does not decode is skipped', async () => {
        await store.putRun(runOf('damaged', '2026-01-02T00:00:00.000Z'));
        await store.putRun(runOf('intact', '2026-01-01T00:00:00.000Z'));
        await subject.damageRun('damaged');
        expect(await store.getRun('damaged')).toBeUndefined();
        expect((await store.listRuns()).map((r) => r.id)).toEqual(['intact']);
      });
    });
  });
};
