/**
 * The dashboard over a team store on PostgreSQL (a real server): the runs, a run, the
 * comparison of two runs and a step's entries read the same as from the embedded store.
 */
import { createPostgresMetadataStore, createRunner, silentLogger, type MetadataStore } from '../src';
import { compareRuns, formatSpeedUp } from '../src/render';
import { createDashboard, type Dashboard } from '../src/ui';
import { renderPipeline } from './fixtures/render/pipelines';
import { removeDir, tempDir } from './support/fixtures';
import { testPostgres, type TestPostgres } from './support/provision/postgres';

let server: TestPostgres;
let metadata: MetadataStore;
let dashboard: Dashboard;
let dir: string;
let schema: string;

beforeAll(async () => {
  server = await testPostgres();
  dir = tempDir('stepcache-dashboard-pg-');
  schema = `dashboard_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  metadata = createPostgresMetadataStore({ url: server.url, schema });
  dashboard = createDashboard({ metadata });
}, 180_000);

afterAll(async () => {
  await metadata?.close();
  await server?.dispose();
  removeDir(dir);
});

test('the pages read runs and entries from PostgreSQL', async () => {
  const runner = createRunner({ dir, logger: silentLogger, metadata: createPostgresMetadataStore({ url: server.url, schema }) });
  const first = await runner.run(renderPipeline, { epochs: 1 });
  const second = await runner.run(renderPipeline, { epochs: 2 });
  await runner.close();

  const runs = (await dashboard.respond('GET', '/')).body;
  expect([...runs.matchAll(/<tr data-run="([^"]+)"/g)].map((m) => m[1])).toEqual([second.id, first.id]);

  const run = (await dashboard.respond('GET', `/runs/${second.id}`)).body;
  expect(run).toContain('<g class="node status-cached" data-step="load_data">');
  expect(run).toContain('<g class="node status-executed" data-step="train_model">');

  const comparison = (await dashboard.respond('GET', `/compare?a=${first.id}&b=${second.id}`)).body;
  const speedUp = formatSpeedUp(compareRuns(first, second).rows.find((r) => r.step === 'load_data')?.speedUp);
  expect(comparison).toMatch(new RegExp(`data-step="load_data">.*?<td class="num speed-up">${speedUp.replace('.', '\\.')}</td>`));
  expect(comparison).toContain('parameter epochs changed (1 -&gt; 2)');

  const step = (await dashboard.respond('GET', '/step?pipeline=render_pipeline&step=train_model')).body;
  expect(step.match(/<tr data-key=/g)?.length).toBe(2);
}, 120_000);
