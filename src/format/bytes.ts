/**
 * Sizes as text and back: byte counts in decimal units (`1.2 MB`), and sizes written by people
 * (`500MB`, `2GiB`).
 *
 * @packageDocumentation
 */

const SIZE_UNITS = ['kB', 'MB', 'GB', 'TB'] as const;

/**
 * A byte count in decimal units (1 kB = 1000 bytes), one decimal from a kilobyte on.
 *
 * @example
 * formatBytes(1_234_567); // '1.2 MB'
 * formatBytes(512); // '512 B'
 */
export const formatBytes = (bytes: number): string => {
  if (!Number.isFinite(bytes) || bytes < 1000) return `${Math.max(0, Math.round(bytes))} B`;
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 999.95 && unit < SIZE_UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(1)} ${SIZE_UNITS[unit] as string}`;
};

const BYTE_FACTORS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** How sizes are written on the command line, for help texts and error messages. */
export const SIZE_FORM = 'a number of bytes, optionally with a unit: 500MB, 2GB, 750kB (powers of 1000) or 512MiB, 4GiB (powers of 1024)';

/**
 * A size written like `500MB`, `2GB`, `1.5 GiB` or `1048576`, in bytes; `undefined` if malformed.
 *
 * @example
 * parseBytes('500MB'); // 500000000
 * parseBytes('2GiB'); // 2147483648
 */
export const parseBytes = (text: string): number | undefined => {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  if (match === null) return undefined;
  const factor = BYTE_FACTORS[(match[2] as string).toLowerCase()];
  return factor === undefined ? undefined : Math.floor(Number(match[1]) * factor);
};
