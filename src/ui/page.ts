/**
 * The frame of every dashboard page: the document, its one small style sheet, the navigation,
 * and an optional refresh for a run that is still running. No script, no external resource.
 *
 * @packageDocumentation
 */
import { fragment, tag, trusted, type Child, type Html } from './html';

/** The style sheet of every page (inline: the dashboard loads nothing else). */
const STYLE = `
body{font:14px/1.45 Helvetica,Arial,'DejaVu Sans',sans-serif;color:#111827;margin:0;background:#f9fafb}
header{background:#111827;color:#f9fafb;padding:10px 20px;display:flex;gap:20px;align-items:baseline}
header a{color:#f9fafb;text-decoration:none;font-weight:bold}
main{padding:16px 20px}
h1{font-size:20px;margin:4px 0 12px}
h2{font-size:16px;margin:20px 0 8px}
table{border-collapse:collapse;background:#fff}
th,td{border:1px solid #d1d5db;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f4f6}
td.num{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font-family:'DejaVu Sans Mono',Menlo,monospace;font-size:12px}
a{color:#1d4ed8}
.status{font-weight:bold}
.status-executed,.status-completed{color:#14532d}
.status-cached{color:#1e3a8a}
.status-failed{color:#7f1d1d}
.status-skipped{color:#374151}
.status-running{color:#92400e}
tr.status-executed td{background:#f0fdf4}tr.status-cached td{background:#eff6ff}tr.status-failed td{background:#fef2f2}
.dag{background:#fff;border:1px solid #e5e7eb;overflow:auto;max-width:100%;padding:4px}
.dag svg{max-width:100%;height:auto}
.note{color:#4b5563}
.error{color:#7f1d1d;background:#fef2f2;border:1px solid #fecaca;padding:8px}
form.filters{display:flex;gap:12px;align-items:end;margin-bottom:12px}
form.filters label{display:flex;flex-direction:column;font-size:12px;color:#374151}
nav.pages{margin-top:10px;display:flex;gap:12px}
ul.changes{margin:0;padding-left:18px}
`.trim();

/**
 * What a page says besides its body.
 *
 * @example
 * const options: PageOptions = { title: 'Runs', refreshSeconds: 2 };
 */
export interface PageOptions {
  readonly title: string;
  /** Reload the page after this many seconds (a run still running). */
  readonly refreshSeconds?: number | undefined;
}

/**
 * A whole HTML document around a page's body.
 *
 * @example
 * page({ title: 'Runs' }, tag('h1', {}, 'Runs')).html; // '<!doctype html><html lang="en">…'
 */
export const page = (options: PageOptions, ...body: readonly Child[]): Html =>
  fragment(
    trusted('<!doctype html>'),
    tag(
      'html',
      { lang: 'en' },
      tag(
        'head',
        {},
        tag('meta', { charset: 'utf-8' }),
        options.refreshSeconds === undefined ? undefined : tag('meta', { 'http-equiv': 'refresh', content: String(options.refreshSeconds) }),
        tag('meta', { name: 'viewport', content: 'width=device-width, initial-scale=1' }),
        tag('title', {}, `${options.title} · stepcache`),
        tag('style', {}, trusted(STYLE)),
      ),
      tag('body', {}, tag('header', {}, tag('a', { href: '/' }, 'stepcache'), tag('span', {}, 'runs, steps and what the cache saved')), tag('main', {}, ...body)),
    ),
  );

/**
 * A status as a coloured word (a run's or a step's).
 *
 * @example
 * statusLabel('cached'); // <span class="status status-cached">cached</span>
 */
export const statusLabel = (status: string): Html => tag('span', { class: `status status-${status}` }, status);
