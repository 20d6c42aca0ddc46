/**
 * Plain-text helpers: one line of text, short run ids.
 */
import fc from 'fast-check';
import { escapeControls, oneLine, shortRunId } from '../src/format/text';

describe('text', () => {
  it('puts text on one line', () => {
    expect(oneLine('failed:\n  disk full\r\n')).toBe('failed: disk full');
    expect(oneLine('a\tb\u0000c')).toBe('a b c');
  });

  it('shortens run ids for labels', () => {
    expect(shortRunId('20250101-123456789-00aabcdef')).toBe('20250101-123456…bcdef');
    expect(shortRunId('r1')).toBe('r1');
    expect(shortRunId('a-very-long-custom-run-id')).toBe('a-very-long-…n-id');
  });

  it('escapes what a terminal would act on: ESC, CSI, OSC, BEL, C1 controls, bidi overrides', () => {
    expect(escapeControls('a\u001b[31mred\u001b[0m')).toBe('a\\x1b[31mred\\x1b[0m');
    expect(escapeControls('\u001b]0;title\u0007')).toBe('\\x1b]0;title\\x07');
    expect(escapeControls('x\u009b2Jy\u009d')).toBe('x\\x9b2Jy\\x9d');
    expect(escapeControls('evil\u202etxt.exe \u2066a\u2069 \u200f')).toBe('evil\\u202etxt.exe \\u2066a\\u2069 \\u200f');
    expect(escapeControls('line one\n\tline two é 日本')).toBe('line one\n\tline two é 日本');
    const json = escapeControls(JSON.stringify({ name: 'a\u009b\u007f\u202eb' }), 'json');
    expect(json).toBe('{"name":"a\\u009b\\u007f\\u202eb"}');
    expect(JSON.parse(json)).toEqual({ name: 'a\u009b\u007f\u202eb' });
  });

  it('leaves no control character but newline and tab, and changes text without any', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        const escaped = escapeControls(text);
        expect(/[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/.test(escaped)).toBe(false);
        if (!/[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/.test(text)) expect(escaped).toBe(text);
      }),
    );
  });
});
