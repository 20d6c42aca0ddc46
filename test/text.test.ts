/**
 * Plain-text helpers: one line of text, short run ids.
 */
import { oneLine, shortRunId } from '../src/format/text';

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
});
