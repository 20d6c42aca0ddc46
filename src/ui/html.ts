/**
 * Building the dashboard's HTML: every text from a store goes through {@link text}, which shows
 * terminal control sequences as visible marks and escapes what HTML would read as markup; markup
 * is built only by {@link tag}, whose children are {@link Html} values, never raw strings.
 *
 * @packageDocumentation
 */
import { escapeXml } from '../render/format';

// model

/**
 * A piece of HTML that is safe to send: made by {@link text}, {@link tag} or {@link trusted}.
 *
 * @example
 * const cell: Html = tag('td', {}, text(step.name));
 */
export interface Html {
  readonly _tag: 'Html';
  readonly html: string;
}

/** What an element may hold: HTML pieces, plain strings (escaped), or nothing. */
export type Child = Html | string | undefined | false | readonly Child[];

// constructors

/** ANSI escape sequences (colours, cursor moves, titles) as terminals read them. */
const ANSI = /\u001B\[[0-?]*[ -/]*[@-~]|\u001B\][^\u0007\u001B]*(?:\u0007|\u001B\\)|\u001B[@-Z\\-_]/g;
/** Control characters other than tab and newline, C0, DEL and C1. */
const CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/g;

/**
 * Text as a person should see it: terminal escape sequences removed, and every other control
 * character shown as its visible picture (U+2400 + code: `␛`, `␀`), so that nothing in a step
 * name or an error message can reach a terminal or hide text.
 *
 * @example
 * visibleText('\u001b[31mred\u001b[0m\u0007'); // 'red␇'
 */
export const visibleText = (value: string): string =>
  value.replace(ANSI, '').replace(CONTROL, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x20 ? String.fromCharCode(0x2400 + code) : code === 0x7f ? '\u2421' : '\uFFFD';
  });

/**
 * Text as HTML: control characters made visible ({@link visibleText}), then `& < > " '` escaped,
 * so a step named `<script>` shows as those characters.
 *
 * @example
 * text('<script>alert(1)</script>').html; // '&lt;script&gt;alert(1)&lt;/script&gt;'
 */
export const text = (value: string): Html => ({ _tag: 'Html', html: escapeXml(visibleText(value)) });

/**
 * Markup written by this module's callers as literal text (an SVG the renderer escaped, a
 * fixed piece of markup): never a value read from a store.
 *
 * @example
 * trusted(await runToSvg(run));
 */
export const trusted = (html: string): Html => ({ _tag: 'Html', html });

const render = (child: Child): string => {
  if (child === undefined || child === false) return '';
  if (typeof child === 'string') return text(child).html;
  if (Array.isArray(child)) return (child as readonly Child[]).map(render).join('');
  return (child as Html).html;
};

/**
 * Several children as one piece of HTML.
 *
 * @example
 * fragment(tag('h1', {}, 'Runs'), table);
 */
export const fragment = (...children: readonly Child[]): Html => ({ _tag: 'Html', html: children.map(render).join('') });

/** Element names are fixed by the code; an attribute name must be one of these characters. */
const NAME = /^[a-zA-Z][a-zA-Z0-9-]*$/;
/** Elements that have no content and no end tag. */
const VOID = new Set(['meta', 'input', 'br', 'img', 'link']);

/**
 * An element with escaped attributes (`undefined` and `false` leave an attribute out, `true`
 * writes it bare) and children.
 *
 * @example
 * tag('a', { href: runHref(run.id) }, run.id);
 */
export const tag = (name: string, attributes: Readonly<Record<string, string | number | boolean | undefined>>, ...children: readonly Child[]): Html => {
  if (!NAME.test(name)) throw new Error(`not an element name: ${name}`);
  const attrs = Object.entries(attributes)
    .filter(([, v]) => v !== undefined && v !== false)
    .map(([k, v]) => {
      if (!NAME.test(k)) throw new Error(`not an attribute name: ${k}`);
      return v === true ? ` ${k}` : ` ${k}="${escapeXml(visibleText(String(v)))}"`;
    })
    .join('');
  return { _tag: 'Html', html: VOID.has(name) ? `<${name}${attrs}>` : `<${name}${attrs}>${children.map(render).join('')}</${name}>` };
};

/**
 * A table with a header row of plain texts and the given body rows.
 *
 * @example
 * table('runs', ['Run', 'Status'], runs.map((r) => tag('tr', {}, tag('td', {}, r.id), tag('td', {}, r.status))));
 */
export const table = (cls: string, headers: readonly string[], rows: Child): Html =>
  tag('table', { class: cls }, tag('thead', {}, tag('tr', {}, headers.map((h) => tag('th', {}, h)))), tag('tbody', {}, rows));

// links

/**
 * A path with a query string; `undefined` parameters are left out, every value is encoded.
 *
 * @example
 * href('/', { pipeline: 'a b', page: 2 }); // '/?pipeline=a%20b&page=2'
 */
export const href = (path: string, query: Readonly<Record<string, string | number | undefined>> = {}): string => {
  const parts = Object.entries(query)
    .filter((kv): kv is [string, string | number] => kv[1] !== undefined && kv[1] !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  return parts.length === 0 ? path : `${path}?${parts.join('&')}`;
};

/** The page of a run. @example runHref('r1'); // '/runs/r1' */
export const runHref = (id: string): string => `/runs/${encodeURIComponent(id)}`;

/** The comparison of two runs. @example compareHref('r1', 'r2'); // '/compare?a=r1&b=r2' */
export const compareHref = (a: string, b: string): string => href('/compare', { a, b });

/** The page of a step of a pipeline. @example stepHref('p', 'train'); // '/step?pipeline=p&step=train' */
export const stepHref = (pipeline: string, step: string): string => href('/step', { pipeline, step });
