/**
 * Run retention: by count, by age, both at once; running runs stay; a runner with `keepRuns`
 * prunes after each run.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { createRunner, pipeline, silentLogger, step, type RunRecord } from '../src';
import { createSqliteMetadataStore, type MetadataStore } from '../src/store/metadata-store';
import { pruneRuns, runsToPrune } from '../src/store/run-retention';
import { removeDir, tempDir } from './support/fixtures';

const DAY = 86_400_000;
const NOW = Date.parse('2026-11-30T00:00:00.000Z');
const runAt = (id: string, daysAgo: number, status: RunRecord['status'] = 'completed'): RunRecord => ({ id, pipeline: 'p', parameters: {}, status, startedAt: new Date(NOW - daysAgo * DAY).toISOString(), steps: {}, outputs: {} });

let dir: string;
let metadata: MetadataStore;
beforeEach(async () => {
  dir = tempDir('stepcache-retention-');
  metadata = createSqliteMetadataStore(path.join(dir, 'metadata.sqlite'));
  // r0 is the most recent; r3 is still running (its owner, this process, is alive).
  for (let i = 0; i < 6; i++) await metadata.putRun(i === 3 ? { ...runAt(`r${i}`, i, 'running'), owner: { pid: process.pid, host: os.hostname() } } : runAt(`r${i}`, i));
});
afterEach(async () => {
  await metadata.close();
  removeDir(dir);
});

const ids = async (retention: Parameters<typeof runsToPrune>[1]) => (await runsToPrune(metadata, retention, NOW)).map((r) => r.id);

describe('runsToPrune', () => {
  it('selects the runs beyond the most recent `last`, but never a running one', async () => {
    expect(await ids({ last: 2 })).toEqual(['r2', 'r4', 'r5']);
    expect(await ids({ last: 0 })).toEqual(['r0', 'r1', 'r2', 'r4', 'r5']);
    expect(await ids({ last: 6 })).toEqual([]);
    expect(await ids({ last: 100 })).toEqual([]);
  });

  it('selects the runs started longer ago than olderThanMs; a run started at the cutoff stays', async () => {
    expect(await ids({ olderThanMs: 4 * DAY })).toEqual(['r5']);
    expect(await ids({ olderThanMs: 1.5 * DAY })).toEqual(['r2', 'r4', 'r5']);
  });

  it('with both, a run goes when either says so', async () => {
    expect(await ids({ last: 4, olderThanMs: 1.5 * DAY })).toEqual(['r2', 'r4', 'r5']);
    expect(await ids({ last: 1, olderThanMs: 4.5 * DAY })).toEqual(['r1', 'r2', 'r4', 'r5']);
    expect(await ids({})).toEqual([]);
  });

  it('pruneRuns deletes what it selects', async () => {
    expect(await pruneRuns(metadata, { last: 2 }, NOW)).toEqual({ runs: ['r2', 'r4', 'r5'] });
    expect((await metadata.listRuns()).map((r) => r.id)).toEqual(['r0', 'r1', 'r3']);
  });
});

describe('a runner with keepRuns', () => {
  it('keeps the most recent runs after each run', async () => {
    const runnerDir = tempDir('stepcache-keep-');
    const runner = createRunner({ dir: runnerDir, logger: silentLogger, keepRuns: { last: 2 } });
    try {
      const one = step(function one() {
        return 1;
      });
      const p = pipeline('kept_pipeline', (b) => ({ one: b.call(one) }));
      const runs: string[] = [];
      for (let i = 0; i < 4; i++) runs.push((await runner.run(p)).id);
      expect((await runner.listRuns()).map((r) => r.id)).toEqual([runs[3], runs[2]]);
    } finally {
      await runner.close();
      removeDir(runnerDir);
    }
  });
});
