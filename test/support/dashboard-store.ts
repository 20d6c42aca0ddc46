/**
 * A store for the dashboard tests: two runs of the render pipeline (the second serves
 * load_data and scale.features-v2 from the cache, and executes train_model and evaluate again
 * because epochs changed), a run whose step fails, and a hostile record whose step name,
 * parameter and error hold HTML, script and terminal escapes.
 */
import * as path from 'node:path';
import { createRunner, createSqliteMetadataStore, silentLogger, type RunRecord } from '../../src';
import { failingPipeline, renderPipeline } from '../fixtures/render/pipelines';

/** What a script that ran would set. */
export const PWNED = '__pwned';
export const HOSTILE_STEP = `<script>window.${PWNED}=1</script>`;
export const HOSTILE_PARAMETER = `<img src=x onerror="window.${PWNED}=1">`;
export const HOSTILE_ERROR = `boom <svg onload="window.${PWNED}=1"></svg> \u001b[31mred\u001b[0m`;
export const HOSTILE_RUN_ID = '20250101-000000000-00hostile';

/** The ids of the runs made, oldest first. */
export interface DashboardStore {
  readonly dir: string;
  readonly first: RunRecord;
  readonly second: RunRecord;
  readonly failed: RunRecord;
  readonly hostile: RunRecord;
}

/** Runs the pipelines into `dir` and writes the hostile record beside them. */
export const makeDashboardStore = async (dir: string): Promise<DashboardStore> => {
  const runner = createRunner({ dir, logger: silentLogger });
  const first = await runner.run(renderPipeline, { epochs: 1 });
  const second = await runner.run(renderPipeline, { epochs: 2 });
  const failed = await runner.run(failingPipeline).then(
    () => undefined,
    () => undefined,
  );
  void failed;
  const runs = await runner.listRuns();
  await runner.close();
  const failedRun = runs.find((r) => r.pipeline === 'failing_pipeline');
  if (failedRun === undefined) throw new Error('the failing pipeline left no run');
  const hostile: RunRecord = {
    id: HOSTILE_RUN_ID,
    pipeline: 'hostile_pipeline',
    parameters: { note: HOSTILE_PARAMETER },
    status: 'failed',
    startedAt: '2025-01-01T00:00:00.000Z',
    endedAt: '2025-01-01T00:00:01.000Z',
    durationMs: 1000,
    steps: {
      [HOSTILE_STEP]: { name: HOSTILE_STEP, status: 'failed', durationMs: 5, error: HOSTILE_ERROR },
      after: { name: 'after', status: 'skipped', durationMs: 0, reason: `upstream ${HOSTILE_STEP} did not complete` },
    },
    outputs: {},
    edges: [{ from: HOSTILE_STEP, output: 'output', to: 'after', input: HOSTILE_PARAMETER }],
  };
  const metadata = createSqliteMetadataStore(path.join(dir, 'metadata.sqlite'));
  await metadata.putRun(hostile);
  await metadata.close();
  return { dir, first, second, failed: failedRun, hostile };
};
