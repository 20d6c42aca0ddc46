/**
 * The dashboard's server time, measured in-process on a real embedded store (SQLite):
 *
 * 1. The page of a 1,000-step run (a layered DAG of 20 layers of 50 steps, each fed by two steps
 *    of the layer before): layout with ELK, SVG and the table. Goal: under 1 s.
 * 2. The runs page of a store holding 10,000 runs (20 steps each), first page of 50. Goal:
 *    under 100 ms. The store's listing (every run decoded) is timed alone beside it, since it
 *    is what such a page waits for.
 *
 * Each figure is the median of `BENCH_REPS` (default 7) requests after one warm-up.
 *
 * Run: `npm run bench:dashboard` (or `node --expose-gc --import tsx bench/dashboard.ts`).
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createSqliteMetadataStore, type MetadataStore, type RunRecord, type StepRunRecord } from '../src/index';
import { createDashboard } from '../src/ui';
import { collectGarbage, formatMs, median, timeAsync } from './measure';

const REPS = Math.max(3, Math.round(Number(process.env['BENCH_REPS'] ?? 7)) || 7);
const RUN_PAGE_GOAL_MS = 1000;
const RUNS_PAGE_GOAL_MS = 100;

const step = (name: string, i: number): StepRunRecord => ({
  name,
  status: i % 3 === 0 ? 'executed' : 'cached',
  durationMs: 1 + (i % 17),
  key: (i * 2654435761).toString(16).padStart(64, '0').slice(0, 64),
  ...(i % 3 === 0 ? { reason: 'parameter epochs changed (1 -> 2)' } : { cachedFrom: '20250101-120000123-00a0f00d1' }),
  outputs: { output: { id: (i * 40503).toString(16).padStart(64, 'a'), kind: 'json', size: 1000 + i, format: 'json' } },
});

/** A run of `layers` x `width` steps; each step after the first layer reads two of the layer before. */
const layeredRun = (id: string, startedAt: string, layers: number, width: number): RunRecord => {
  const name = (l: number, w: number) => `step_${l}_${w}`;
  const steps: Record<string, StepRunRecord> = {};
  const edges: { from: string; output: string; to: string; input: string }[] = [];
  for (let l = 0; l < layers; l++) {
    for (let w = 0; w < width; w++) {
      steps[name(l, w)] = step(name(l, w), l * width + w);
      if (l > 0) {
        edges.push({ from: name(l - 1, w), output: 'output', to: name(l, w), input: 'a' });
        edges.push({ from: name(l - 1, (w + 1) % width), output: 'output', to: name(l, w), input: 'b' });
      }
    }
  }
  return { id, pipeline: 'bench_pipeline', parameters: { epochs: 2 }, status: 'completed', startedAt, endedAt: startedAt, durationMs: 1234, steps, outputs: {}, edges };
};

const measure = async (what: () => Promise<unknown>): Promise<number> => {
  await what();
  const times: number[] = [];
  for (let i = 0; i < REPS; i++) {
    collectGarbage();
    times.push(await timeAsync(what));
  }
  return median(times);
};

const ok = async (dashboard: ReturnType<typeof createDashboard>, url: string): Promise<void> => {
  const r = await dashboard.respond('GET', url);
  if (r.status !== 200) throw new Error(`${url} answered ${r.status}`);
};

const main = async (): Promise<void> => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stepcache-bench-dashboard-'));
  let metadata: MetadataStore | undefined;
  try {
    metadata = createSqliteMetadataStore(path.join(dir, 'metadata.sqlite'));
    const big = layeredRun('20250101-000000000-00big00001', '2025-01-01T00:00:00.000Z', 20, 50);
    await metadata.putRun(big);
    const dashboard = createDashboard({ metadata });
    const runPage = await measure(() => ok(dashboard, `/runs/${big.id}`));

    const filling = performance.now();
    const small = layeredRun('x', '', 4, 5);
    const base = Date.parse('2025-02-01T00:00:00.000Z');
    for (let i = 0; i < 10_000; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, (_, k) => {
          const at = new Date(base + (i + k) * 1000).toISOString();
          return (metadata as MetadataStore).putRun({ ...small, id: `run-${String(i + k).padStart(5, '0')}`, startedAt: at, endedAt: at });
        }),
      );
    }
    const fillMs = performance.now() - filling;
    const listing = await measure(() => (metadata as MetadataStore).listRunSummaries());
    const runsPage = await measure(() => ok(dashboard, '/'));
    const filtered = await measure(() => ok(dashboard, '/?status=completed&page=50'));

    const verdict = (ms: number, goal: number) => (ms <= goal ? 'meets' : 'misses');
    const lines = [
      `Dashboard server time (median of ${REPS}; store filled with 10,001 runs in ${formatMs(fillMs)})`,
      `  run page, 1,000 steps           ${formatMs(runPage).padStart(10)}   goal < ${RUN_PAGE_GOAL_MS} ms: ${verdict(runPage, RUN_PAGE_GOAL_MS)}`,
      `  runs page, 10,001 runs          ${formatMs(runsPage).padStart(10)}   goal < ${RUNS_PAGE_GOAL_MS} ms: ${verdict(runsPage, RUNS_PAGE_GOAL_MS)}`,
      `  runs page, filtered, page 50    ${formatMs(filtered).padStart(10)}`,
      `  of which the run index          ${formatMs(listing).padStart(10)}   (every run's summary read and decoded)`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await metadata?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
};

void main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
