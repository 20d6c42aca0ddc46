/**
 * Plain-text helpers shared by every place that shows text: one line of text, a run id short
 * enough for a label.
 *
 * @packageDocumentation
 */

/**
 * Text on one line: runs of control characters (newlines and tabs included), with the spaces
 * around them, become one space; the ends are trimmed.
 *
 * @example
 * oneLine('failed:\n  disk full'); // 'failed: disk full'
 */
export const oneLine = (text: string): string => text.replace(/\s*[\u0000-\u001F\u007F]+\s*/g, ' ').trim();

/**
 * What a terminal would act on rather than show: C0 controls (ESC starts CSI and OSC sequences,
 * BEL rings), DEL, C1 controls (U+0080-U+009F: a lone CSI or OSC on some terminals), and the
 * bidirectional overrides and isolates that reorder what follows them.
 */
const TERMINAL_CONTROLS = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;
/** The same characters, to test for one (no `g`: no state); most text has none, and testing costs less than replacing nothing. */
const HAS_TERMINAL_CONTROL = new RegExp(TERMINAL_CONTROLS.source);

const hex = (code: number, digits: number): string => code.toString(16).padStart(digits, '0');

/**
 * Text safe to print on a terminal: every character a terminal would act on (escape sequences,
 * BEL, C1 controls, bidi overrides) is written as a visible escape (`\x1b`, `\u202e`); newlines
 * and tabs stay. Every printer of the command line passes names, values and messages through it.
 * In `json` style every such character is a JSON escape (`\u001b`), so JSON text stays valid.
 *
 * @example
 * escapeControls('step\u001b[2Jx'); // 'step\\x1b[2Jx'
 * escapeControls('evil\u202etxt.exe'); // 'evil\\u202etxt.exe'
 * escapeControls(JSON.stringify({ name: 'a\u009bb' }), 'json'); // '{"name":"a\\u009bb"}'
 */
export const escapeControls = (text: string, style: 'text' | 'json' = 'text'): string =>
  !HAS_TERMINAL_CONTROL.test(text)
    ? text
    : text.replace(TERMINAL_CONTROLS, (c) => {
        const code = c.charCodeAt(0);
        return style === 'text' && code < 0x100 ? `\\x${hex(code, 2)}` : `\\u${hex(code, 4)}`;
      });

/**
 * A run id short enough for a label: the runner's ids (`20250101-123456789-00aabcdef`) become
 * their date and time to the second and their last five characters; other ids longer than 16
 * characters keep their first 12 and last 4.
 *
 * @example
 * shortRunId('20250101-123456789-00aabcdef'); // '20250101-123456…bcdef'
 * shortRunId('r1'); // 'r1'
 */
export const shortRunId = (id: string): string => {
  const runner = /^(\d{8}-\d{6})\d{3}-[0-9a-z]{3}[0-9a-f]{6}$/.exec(id);
  if (runner !== null) return `${runner[1] ?? ''}…${id.slice(-5)}`;
  return id.length > 16 ? `${id.slice(0, 12)}…${id.slice(-4)}` : id;
};
