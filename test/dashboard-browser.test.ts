/**
 * The dashboard in a real browser (Debian's Chromium driven by playwright-core): from the runs
 * page to the latest run and its DAG, to the comparison of the last two runs, and a record full
 * of HTML and script that must show as text and run nothing. Screenshots go to
 * `test-artifacts/dashboard/` (ignored by git).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { createFileArtifactStore, createSqliteMetadataStore, type MetadataStore } from '../src';
import { compareRuns, formatSpeedUp } from '../src/render';
import { createDashboard, type DashboardServer } from '../src/ui';
import { launchChromium } from './support/provision/chromium';
import { HOSTILE_ERROR, HOSTILE_STEP, makeDashboardStore, PWNED, type DashboardStore } from './support/dashboard-store';
import { REPOSITORY } from './support/provision/core';
import { removeDir, tempDir } from './support/fixtures';

const SCREENSHOTS = path.join(REPOSITORY, 'test-artifacts', 'dashboard');

let dir: string;
let store: DashboardStore;
let metadata: MetadataStore;
let server: DashboardServer;
let browser: Awaited<ReturnType<typeof launchChromium>>;
let page: Page;
const dialogs: string[] = [];

const shoot = async (name: string): Promise<void> => {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
};

beforeAll(async () => {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  dir = tempDir('stepcache-dashboard-');
  store = await makeDashboardStore(dir);
  metadata = createSqliteMetadataStore(path.join(dir, 'metadata.sqlite'));
  server = await createDashboard({ metadata, artifacts: createFileArtifactStore(path.join(dir, 'artifacts')) }).listen(0);
  browser = await launchChromium();
  page = await browser.context.newPage();
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await metadata?.close();
  removeDir(dir);
});

test('from the runs page, the latest run shows every step of its DAG with its status', async () => {
  await page.goto(server.url);
  await shoot('runs');
  const links = page.locator('table.runs a.run-link');
  expect(await links.count()).toBe(4);
  const latest = (await metadata.listRuns())[0];
  expect(await links.first().textContent()).toBe(latest?.id);
  await links.first().click();
  await page.waitForURL(`**/runs/${latest?.id}`);
  await shoot('latest-run');
  for (const step of Object.values(latest?.steps ?? {})) {
    const node = page.locator(`svg g.node[data-step="${step.name}"]`);
    expect(await node.count()).toBe(1);
    expect(await node.getAttribute('class')).toBe(`node status-${step.status}`);
    expect(await page.locator(`table.steps tr[data-step="${step.name}"] .status`).textContent()).toBe(step.status);
  }
  expect(await page.locator('svg g.node').count()).toBe(Object.keys(latest?.steps ?? {}).length);
});

test('the comparison of the last two runs of a pipeline reads the speed-up of a cached step', async () => {
  await page.goto(server.url);
  await page.selectOption('select[name=pipeline]', 'render_pipeline');
  await page.click('button[type=submit]');
  await page.waitForURL('**/?pipeline=render_pipeline**');
  await page.locator('table.runs a.run-link').first().click();
  await page.waitForURL(`**/runs/${store.second.id}`);
  await shoot('second-run');
  await page.click('a.compare-previous');
  await page.waitForURL('**/compare?**');
  await shoot('compare');
  const row = page.locator('table.comparison tr[data-step="load_data"]');
  const expected = compareRuns(store.first, store.second).rows.find((r) => r.step === 'load_data');
  expect(expected?.speedUp).toBeGreaterThan(1);
  expect(await row.locator('.speed-up').textContent()).toBe(formatSpeedUp(expected?.speedUp));
  expect(await row.locator('.run1').textContent()).toBe(((store.first.steps['load_data']?.durationMs ?? 0) / 1000).toFixed(4));
  expect(await row.locator('.changed').textContent()).toBe('nothing: same key');
  expect(await page.locator('table.comparison tr[data-step="train_model"] .changed').textContent()).toBe('parameter epochs changed (1 -> 2)');
});

test('a step name, a parameter and an error holding HTML and script show as text, and nothing runs', async () => {
  for (const url of [server.url, `${server.url}runs/${store.hostile.id}`]) {
    await page.goto(url);
    const shown = await page.locator('main').innerText();
    expect(shown).toContain('note="<img src=x onerror=');
    if (url !== server.url) {
      expect(shown).toContain(HOSTILE_STEP);
      expect(shown).toContain('boom <svg onload=');
      expect(shown).not.toContain('\u001b');
      expect(shown).not.toContain(HOSTILE_ERROR);
    }
    expect(await page.evaluate(`typeof window.${PWNED}`)).toBe('undefined');
    expect(await page.locator('script, main img, svg svg').count()).toBe(0);
  }
  await shoot('hostile-run');
  expect(dialogs).toEqual([]);
});
