/**
 * Sizes as text and back.
 */
import { formatBytes, parseBytes } from '../src/format/bytes';

describe('bytes', () => {
  it('humanizes sizes in decimal units', () => {
    expect([0, 999, 1000, 1_234_567, 16_000, 2e9, 999_999, -3].map(formatBytes)).toEqual(['0 B', '999 B', '1.0 kB', '1.2 MB', '16.0 kB', '2.0 GB', '1.0 MB', '0 B']);
  });

  it('parses sizes with decimal and binary units', () => {
    expect(['500MB', '2GB', '2 gb', '512MiB', '1.5kB', '1024'].map(parseBytes)).toEqual([500e6, 2e9, 2e9, 512 * 2 ** 20, 1500, 1024]);
    expect(['', 'MB', '2XB', '-1MB', '1e6'].map(parseBytes)).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });
});
