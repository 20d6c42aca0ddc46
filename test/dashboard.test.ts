/**
 * The dashboard's server: its pages over a real embedded store, its read-only routes, its
 * headers, escaping, pages and filters, a running run that reloads, and `stepcache ui`.
 */
import * as path from 'node:path';
import { createFileArtifactStore, createSqliteMetadataStore, type MetadataStore, type RunRecord } from '../src';
import { runCli } from '../src/cli/cli';
import { createDashboard, type Dashboard } from '../src/ui';
import { text, visibleText } from '../src/ui/html';
import { HOSTILE_STEP, makeDashboardStore, type DashboardStore } from './support/dashboard-store';
import { removeDir, tempDir } from './support/fixtures';

let dir: string;
let store: DashboardStore;
let metadata: MetadataStore;
let dashboard: Dashboard;

beforeAll(async () => {
  dir = tempDir('stepcache-dashboard-');
  store = await makeDashboardStore(dir);
  metadata = createSqliteMetadataStore(path.join(dir, 'metadata.sqlite'));
  dashboard = createDashboard({ metadata, artifacts: createFileArtifactStore(path.join(dir, 'artifacts')), pageSize: 2 });
}, 120_000);

afterAll(async () => {
  await metadata.close();
  removeDir(dir);
});

const rowsOf = (html: string): string[] => [...html.matchAll(/<tr data-run="([^"]+)"/g)].map((m) => m[1] ?? '');

describe('text', () => {
  test('markup shows as text and terminal escapes as visible marks', () => {
    expect(text('<script>alert("x")</script>').html).toBe('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(visibleText('\u001b[31mred\u001b[0m\u0007\u0000')).toBe('red\u2407\u2400');
    expect(visibleText('a\tb\nc')).toBe('a\tb\nc');
  });
});

describe('routes', () => {
  test.each(['POST', 'PUT', 'DELETE', 'PATCH'])('%s is refused with 405 and changes nothing', async (method) => {
    const before = (await metadata.listRuns()).length;
    const r = await dashboard.respond(method, `/runs/${store.second.id}`);
    expect(r.status).toBe(405);
    expect(r.headers['allow']).toBe('GET, HEAD');
    expect((await metadata.listRuns()).length).toBe(before);
  });

  test('every page forbids script and loading anything from elsewhere', async () => {
    for (const url of ['/', `/runs/${store.second.id}`, `/compare?a=${store.first.id}&b=${store.second.id}`, '/step?pipeline=render_pipeline&step=train_model', '/nowhere']) {
      const r = await dashboard.respond('GET', url);
      expect(r.headers['content-security-policy']).toMatch(/^default-src 'none';/);
      expect(r.headers['content-security-policy']).not.toContain('script-src');
      expect(r.body).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    }
  });

  test('an unknown run is a 404 naming it; a bad query a 400 saying what is wrong', async () => {
    const missing = await dashboard.respond('GET', '/runs/no-such-run');
    expect(missing.status).toBe(404);
    expect(missing.body).toContain('There is no run &quot;no-such-run&quot;');
    const bad = await dashboard.respond('GET', '/?status=exploded');
    expect(bad.status).toBe(400);
    expect(bad.body).toContain('status must be one of running, completed, failed');
    expect((await dashboard.respond('GET', `/compare?a=${store.first.id}`)).status).toBe(400);
    expect((await dashboard.respond('GET', '/runs/%E0%A4%A')).status).toBe(400);
  });

  test('a store that cannot be read is a 500 saying so', async () => {
    const broken = createDashboard({ metadata: { ...metadata, listRunSummaries: () => Promise.reject(new Error('disk on fire')) } });
    const r = await broken.respond('GET', '/');
    expect(r.status).toBe(500);
    expect(r.body).toContain('disk on fire');
  });
});

describe('runs page', () => {
  test('lists runs most recent first, a page at a time', async () => {
    const all = (await metadata.listRuns()).map((r) => r.id);
    expect(rowsOf((await dashboard.respond('GET', '/')).body)).toEqual(all.slice(0, 2));
    const second = (await dashboard.respond('GET', '/?page=2')).body;
    expect(rowsOf(second)).toEqual(all.slice(2, 4));
    expect(second).toContain('page 2 of 2 · 4 runs');
  });

  test('filters by pipeline and by status', async () => {
    expect(rowsOf((await dashboard.respond('GET', '/?pipeline=render_pipeline')).body)).toEqual([store.second.id, store.first.id]);
    expect(rowsOf((await dashboard.respond('GET', '/?status=failed&limit=10')).body)).toEqual([store.failed.id, store.hostile.id]);
    expect((await dashboard.respond('GET', '/?pipeline=nope')).body).toContain('No run matches these filters.');
  });

  test('shows counts of cached, executed and failed steps, and the parameters', async () => {
    const body = (await dashboard.respond('GET', '/?pipeline=render_pipeline')).body;
    const row = body.slice(body.indexOf(`<tr data-run="${store.second.id}"`));
    expect(row).toMatch(/<td class="num">2<\/td><td class="num">2<\/td><td class="num">0<\/td><td>epochs=2<\/td>/);
  });
});

describe('run page', () => {
  test('draws the DAG and says why each step ran, with its artifacts and key', async () => {
    const body = (await dashboard.respond('GET', `/runs/${store.second.id}`)).body;
    expect(body).toContain('<svg');
    expect(body).toContain('<g class="node status-cached" data-step="load_data">');
    expect(body).toContain(`served from the cache, made by run ${store.first.id}`);
    expect(body).toContain('parameter epochs changed (1 -&gt; 2)');
    expect(body).toContain(store.second.steps['train_model']?.key?.slice(0, 16));
    expect(body).toContain(`href="/compare?a=${store.first.id}&amp;b=${store.second.id}"`);
    expect(body).not.toContain('http-equiv="refresh"');
  });

  test('a missing artifact is marked; an output kept inside its entry never is', async () => {
    // The run as a store of files would record it: train_model's output in a file, every other tiny output inline.
    const run = store.second;
    const trained = run.steps['train_model'];
    const [name, output] = Object.entries(trained?.outputs ?? {})[0] ?? [];
    expect(output?.inline).toBeDefined();
    const { inline: _kept, ...file } = output ?? { id: '', size: 0, kind: 'none', format: 'auto' };
    const withFile: RunRecord = { ...run, steps: { ...run.steps, train_model: { ...trained!, outputs: { ...trained?.outputs, [name!]: file } } } };
    const viewed: MetadataStore = { ...metadata, getRun: async (id: string) => (id === run.id ? withFile : metadata.getRun(id)) };
    // A store where nothing is present: only the output in a file can be missing.
    const artifacts = { ...createFileArtifactStore(path.join(dir, 'artifacts')), present: (refs: readonly { id: string }[]) => Promise.resolve(refs.map(() => false)) };
    const body = (await createDashboard({ metadata: viewed, artifacts }).respond('GET', `/runs/${run.id}`)).body;
    expect(body.match(/ missing<\/span>/g)?.length).toBe(1);
  });

  test('a run still running reloads itself', async () => {
    const running: RunRecord = { ...store.first, id: '20990101-000000000-00running', status: 'running', steps: {} };
    delete (running as { durationMs?: number }).durationMs;
    await metadata.putRun(running);
    const body = (await dashboard.respond('GET', `/runs/${running.id}`)).body;
    expect(body).toContain('<meta http-equiv="refresh" content="2">');
    expect(body).toContain('<g class="node status-pending"');
    expect(body).not.toContain('<g class="node status-executed"');
  });

  test('a hostile step name is text', async () => {
    const body = (await dashboard.respond('GET', `/runs/${store.hostile.id}`)).body;
    expect(body).not.toContain(HOSTILE_STEP);
    expect(body).toContain('&lt;script&gt;window.__pwned=1&lt;/script&gt;');
  });
});

describe('a large run', () => {
  test('is drawn in columns by depth, every step with its status, without waiting for ELK', async () => {
    const steps = Object.fromEntries(
      Array.from({ length: 400 }, (_, i) => [`s${i}`, { name: `s${i}`, status: i % 2 === 0 ? ('cached' as const) : ('executed' as const), durationMs: 1 }]),
    );
    const edges = Array.from({ length: 399 }, (_, i) => ({ from: `s${i}`, output: 'output', to: `s${i + 1}`, input: 'x' }));
    const large: RunRecord = { ...store.first, id: '20990101-000000000-0000large', pipeline: 'large_pipeline', steps, edges };
    await metadata.putRun(large);
    const body = (await dashboard.respond('GET', `/runs/${large.id}`)).body;
    expect(body.match(/<g class="node status-cached"/g)?.length).toBe(200);
    expect(body.match(/<g class="node status-executed"/g)?.length).toBe(200);
    expect(body).toContain('400 steps (200 executed, 200 cached, 0 failed, 0 skipped), in columns by depth');
    // a chain: each step one column further right
    const x = (step: string) => Number(new RegExp(`data-step="${step}"><title>[^<]*</title><rect x="(\\d+)"`).exec(body)?.[1]);
    expect(x('s1') - x('s0')).toBe(x('s2') - x('s1'));
    expect(x('s1')).toBeGreaterThan(x('s0'));
  });
});

describe('step page', () => {
  test('lists the entries of a step, newest first, with what changed since the one before', async () => {
    const body = (await dashboard.respond('GET', '/step?pipeline=render_pipeline&step=train_model')).body;
    const keys = [...body.matchAll(/<tr data-key="([^"]+)"/g)].map((m) => m[1]);
    expect(keys).toEqual([store.second.steps['train_model']?.key, store.first.steps['train_model']?.key]);
    expect(body).toMatch(/parameter epochs changed \(1 -&gt; 2\).*first entry/s);
  });
});

describe('stepcache ui', () => {
  test('serves the store on 127.0.0.1, prints its address and stops when asked', async () => {
    let out = '';
    const stop = new AbortController();
    const exit = runCli(['ui', '--dir', dir, '--port', '0'], { stdout: { write: (s: string) => (out += s) }, stderr: { write: () => undefined }, signal: stop.signal });
    for (let i = 0; i < 200 && !out.includes('http://'); i++) await new Promise((r) => setTimeout(r, 25));
    const url = /http:\/\/127\.0\.0\.1:\d+\//.exec(out)?.[0];
    expect(url).toBeDefined();
    const response = await fetch(`${url ?? ''}runs/${store.second.id}`);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('render_pipeline');
    expect((await fetch(url ?? '', { method: 'POST' })).status).toBe(405);
    stop.abort();
    expect(await exit).toBe(0);
  });

  test('refuses a port that is not one', async () => {
    let err = '';
    const code = await runCli(['ui', '--dir', dir, '--port', '70000'], { stdout: { write: () => undefined }, stderr: { write: (s: string) => (err += s) } });
    expect(code).toBe(2);
    expect(err).toContain('port');
  });
});
