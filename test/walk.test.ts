/**
 * The shared value walk, through its three visitors (the canonical encoding, the JSON check and
 * writer, the preview): the same bytes and text as before for ordinary values, and typed
 * refusals, never a stack overflow or a raw throw, for deep values, throwing getters and Proxies.
 */
import * as E from 'fp-ts/Either';
import fc from 'fast-check';
import { encodeCanonical } from '../src/encoding/canonical';
import { renderPath, walkValue } from '../src/encoding/walk';
import { preview } from '../src/format/preview';
import { findNonJson, serializeOutput, toJsonText } from '../src/store/serialize';
import { encodeCanonicalBefore } from './fixtures/encoding/canonical-before';

const nestedArrays = (depth: number, leaf: unknown = 1): unknown => {
  let v: unknown = leaf;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
};
const nestedObjects = (depth: number, leaf: unknown = 1): unknown => {
  let v: unknown = leaf;
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
};

const anything = fc.anything({
  withBigInt: true,
  withBoxedValues: false,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withSparseArray: true,
  withTypedArray: true,
  withUnicodeString: true,
});

describe('the canonical encoding on the walk', () => {
  it('encodes every value to the same bytes as the recursive encoder did, and refuses the same values at the same paths', () => {
    fc.assert(
      fc.property(anything, (value) => {
        expect(encodeCanonical(value)).toEqual(encodeCanonicalBefore(value));
      }),
      { numRuns: 500 },
    );
  });

  it('encodes values nested 10,000 and 100,000 levels deep', () => {
    for (const depth of [10_000, 100_000]) {
      expect(E.isRight(encodeCanonical(nestedArrays(depth)))).toBe(true);
      expect(E.isRight(encodeCanonical(nestedObjects(depth)))).toBe(true);
      expect(E.isRight(encodeCanonical(new Map([['deep', nestedArrays(depth)]])))).toBe(true);
    }
    expect(encodeCanonical(nestedArrays(10_000, 1))).not.toEqual(encodeCanonical(nestedArrays(10_001, 1)));
  });

  it('refuses a bad leaf 10,000 levels deep with a path that names its ends and the levels between', () => {
    const refused = encodeCanonical(nestedObjects(10_000, () => 1));
    expect(refused).toEqual(E.left({ _tag: 'Unencodable', path: `${'.a'.repeat(12)}…(9976 levels)…${'.a'.repeat(12)}`, reason: expect.stringMatching(/^a function/) }));
  });
});

describe('the JSON check and writer on the walk', () => {
  const json = fc.jsonValue().filter((v) => !JSON.stringify(v).includes('-0') || findNonJson(v) === undefined);

  it('writes the text JSON.stringify writes', () => {
    fc.assert(
      fc.property(json, (value) => {
        if (findNonJson(value) === undefined) expect(toJsonText(value)).toEqual(E.right(JSON.stringify(value)));
      }),
    );
  });

  it('stores and checks values nested 10,000 levels deep (JSON.stringify cannot)', () => {
    for (const value of [nestedArrays(10_000), nestedObjects(10_000)]) {
      expect(() => JSON.stringify(value)).toThrow(RangeError);
      expect(findNonJson(value)).toBeUndefined();
      const stored = serializeOutput(value, 'auto');
      const text = E.isRight(stored) ? Buffer.from(stored.right.bytes).toString('utf8') : '';
      expect(encodeCanonical(JSON.parse(text))).toEqual(encodeCanonical(value)); // read back whole (toEqual itself would recurse)
    }
    expect(findNonJson(nestedArrays(10_000, NaN))?.path).toBe(`${'[0]'.repeat(12)}…(9976 levels)…${'[0]'.repeat(12)}`);
  });
});

describe('what would make a walk throw', () => {
  const throwing = { ok: 1, get broken(): number {
    throw new Error('not loaded yet');
  } };
  const proxy = new Proxy({ a: 1 }, { ownKeys: () => { throw new Error('trap'); } });

  it('a getter that throws is a refusal naming the property', () => {
    const expected = { _tag: 'Unencodable', path: '.x.broken', reason: 'a property whose getter threw (not loaded yet); pass plain data' };
    expect(encodeCanonical({ x: throwing })).toEqual(E.left(expected));
    expect(findNonJson({ x: throwing })).toEqual(expected);
    expect(serializeOutput({ x: throwing }, 'auto')).toEqual(E.left(expected));
    expect(preview({ x: throwing })).toBe('{"x":{"ok":1,"broken":…');
  });

  it('a Proxy is a refusal naming where it is', () => {
    const expected = { _tag: 'Unencodable', path: '.model', reason: expect.stringMatching(/^a Proxy/) };
    expect(encodeCanonical({ model: proxy })).toEqual(E.left(expected));
    expect(findNonJson({ model: proxy })).toEqual(expected);
    expect(preview(proxy)).toMatch(/^<a Proxy/);
    expect(E.isLeft(encodeCanonical(new Proxy([], {})))).toBe(true);
  });

  it('a cycle is a refusal naming where it closes', () => {
    const cyclic: Record<string, unknown> = { a: [1] };
    (cyclic['a'] as unknown[]).push(cyclic);
    expect(encodeCanonical(cyclic)).toEqual(E.left({ _tag: 'Unencodable', path: '.a[1]', reason: 'a reference back to an enclosing object (a cycle)' }));
    expect(preview(cyclic)).toBe('{"a":[1,…');
  });
});

describe('preview on the walk', () => {
  it('stops reading once it has enough text, at any size and depth', () => {
    let reads = 0;
    const counted = Object.defineProperties({}, Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, { enumerable: true, get: () => ++reads }])));
    expect(preview(counted, 20)).toBe('{"k0":1,"k1":2,"k2"…');
    expect(reads).toBeLessThan(5);
    expect(preview(Array.from({ length: 100_000 }, (_, i) => i), 20)).toBe('[0,1,2,3,4,5,6,7,8,…');
    expect(preview(nestedArrays(100_000), 10)).toBe('[[[[[[[[[…');
  });

  it('writes NaN, -0, bigints and undefined as such inside values', () => {
    expect(preview({ gamma: NaN, zero: -0, big: 2n, none: undefined })).toBe('{"gamma":NaN,"zero":-0,"big":2n,"none":undefined}');
  });
});

describe('walkValue', () => {
  it('calls the hooks in order, with the path of each value', () => {
    const seen: string[] = [];
    walkValue(
      { a: [1, 2], m: new Map([['k', 3]]) },
      {
        enter: (v, walk) => {
          seen.push(`enter ${walk.path()}`);
          if (v instanceof Map) return { kind: 'map', value: v };
          if (Array.isArray(v)) return { kind: 'array', value: v };
          if (typeof v === 'object' && v !== null) return { kind: 'object', value: v, keys: Object.keys(v) };
          return undefined;
        },
        leave: (c) => void seen.push(`leave ${c.kind}`),
      },
    );
    expect(seen).toEqual(['enter ', 'enter .a', 'enter .a[0]', 'enter .a[1]', 'leave array', 'enter .m', 'enter .m<key 0>', 'enter .m<value 0>', 'leave map', 'leave object']);
  });

  it('renders paths as people read them', () => {
    expect(renderPath(['weights', 3, 'odd key', { entry: 0, part: 'value' }])).toBe('.weights[3]["odd key"]<value 0>');
  });
});
