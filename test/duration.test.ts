/**
 * The one duration formatter (each style) and the one duration parser.
 */
import fc from 'fast-check';
import { formatDuration, parseDuration, type DurationStyle } from '../src/format/duration';

const show = (style: DurationStyle) => (ms: number | undefined) => formatDuration(ms, style);

describe('formatDuration', () => {
  it('log: seconds with three decimals, as in "Step X has finished in 0.932s."', () => {
    expect([932, 4, 0, 75_400].map(show('log'))).toEqual(['0.932s', '0.004s', '0.000s', '75.400s']);
  });

  it('picture: milliseconds below one, seconds under a minute, then minutes', () => {
    expect([0.27, 932, 4, 75_400, undefined].map(show('picture'))).toEqual(['0.27ms', '0.932s', '0.004s', '1m 15.4s', '–']);
  });

  it('clock (the default): what the command line shows', () => {
    expect([0, 0.3, 850, 12_400, 185_000, 3_725_000, -1, NaN].map((ms) => formatDuration(ms))).toEqual(['0ms', '<1ms', '850ms', '12.4s', '3m 05s', '1h 02m', '-', '-']);
  });

  it('decimal: one decimal of the largest unit that fits', () => {
    expect([20, 999, 1500, 90_000, 5_400_000, 8 * 86_400_000].map(show('decimal'))).toEqual(['20ms', '999ms', '1.5s', '1.5m', '1.5h', '8.0d']);
  });

  it('age: whole units of the largest unit that fits', () => {
    expect([0, 59_999, 3 * 60_000, 2 * 3_600_000 + 1, 5 * 86_400_000, -5].map(show('age'))).toEqual(['0s', '59s', '3m', '2h', '5d', '0s']);
  });

  it('seconds: a column of seconds with four decimals', () => {
    expect([412, 6.4, undefined].map(show('seconds'))).toEqual(['0.4120', '0.0064', '-']);
  });

  it('log keeps its exact form for every sub-minute duration', () => {
    fc.assert(fc.property(fc.double({ min: 0, max: 59_999, noNaN: true }), (ms) => expect(formatDuration(ms, 'log')).toMatch(/^\d+\.\d{3}s$/)));
  });
});

describe('parseDuration', () => {
  it('reads numbers of milliseconds and numbers with a unit, nothing else', () => {
    expect(['30m', '12h', '7d', '1.5h', ' 90s ', '250ms', 250].map(parseDuration)).toEqual([1_800_000, 43_200_000, 604_800_000, 5_400_000, 90_000, 250, 250]);
    expect(['30', 'soon', '-1s', '', -1, NaN, Infinity, null, {}].map(parseDuration)).toEqual(Array(9).fill(undefined));
  });

  it('reads back what the decimal style writes, to within its rounding', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1000, max: 30 * 86_400_000 }), (ms) => {
        const back = parseDuration(formatDuration(ms, 'decimal')) as number;
        expect(Math.abs(back - ms) / ms).toBeLessThan(0.05);
      }),
    );
  });
});

describe('parseDuration: settings values', () => {
  it.each<[unknown, number]>([
    ['90s', 90_000],
    ['30m', 1_800_000],
    ['1.5h', 5_400_000],
    ['7d', 604_800_000],
    ['250ms', 250],
    [0, 0],
    [1500, 1500],
    [0.5, 0.5],
  ])('parses %p as %p ms', (input, expected) => {
    expect(parseDuration(input)).toBe(expected);
  });

  it.each([[-1], [-0.001], [NaN], [Infinity], [-Infinity], ['5 minutes'], ['-5s'], ['soon'], [''], [null], [undefined], [true], [{}], [['1s']]])('rejects %p', (input) => {
    expect(parseDuration(input)).toBeUndefined();
  });

  it('returns every finite number >= 0 as it is and rejects every negative one (property)', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (n) => {
        expect(parseDuration(n)).toBe(n >= 0 ? n : undefined);
      }),
    );
  });

  it('multiplies a number with a unit by the unit (property)', () => {
    const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
    fc.assert(
      fc.property(fc.nat({ max: 100_000 }), fc.constantFrom(...Object.keys(UNITS)), (n, unit) => {
        expect(parseDuration(`${n}${unit}`)).toBe(n * (UNITS[unit] as number));
        expect(parseDuration(`-${n}${unit}`)).toBeUndefined();
      }),
    );
  });
});
