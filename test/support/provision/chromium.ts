/**
 * Debian's Chromium, for tests that look at the dashboard in a real browser through
 * playwright-core: `STEPCACHE_TEST_CHROMIUM` names an executable; else `/usr/bin/chromium` (or
 * `chromium` on the `PATH`); else Debian's `chromium` package is installed when running as
 * root; else one message says how to get it.
 *
 * @example
 * const browser = await launchChromium();
 * const page = await browser.context.newPage();
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { apt, findExecutable, provide, runs, type Tool } from './core';

/** Where Debian's package puts it. */
const DEBIAN_CHROMIUM = '/usr/bin/chromium';

const works = (file: string): boolean => fs.existsSync(file) && runs(file, ['--version'], process.env);

/**
 * Chromium's executable.
 *
 * @example
 * const executable = await provide(chromiumTool); // '/usr/bin/chromium'
 */
export const chromiumTool: Tool<string> = {
  name: 'Chromium',
  neededBy: 'test/dashboard-browser.test.ts',
  variable: 'STEPCACHE_TEST_CHROMIUM',
  fromVariable: (value) => (works(value) ? value : undefined),
  find: (env) => [DEBIAN_CHROMIUM, findExecutable('chromium', env)].find((c): c is string => c !== undefined && works(c)),
  recipe: apt('chromium'),
};

/** Headless, without a sandbox (root in a container), and without any network of its own. */
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * A headless Chromium with a fresh profile in a temporary folder; `close` ends it and removes the profile.
 *
 * @example
 * const browser = await launchChromium();
 * try { const page = await browser.context.newPage(); } finally { await browser.close(); }
 */
export const launchChromium = async (): Promise<{ readonly context: BrowserContext; close(): Promise<void> }> => {
  const executablePath = await provide(chromiumTool);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'stepcache-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath, args: ARGS, headless: true, viewport: { width: 1280, height: 900 } });
  return {
    context,
    close: async () => {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    },
  };
};
