import * as E from 'fp-ts/Either';
import fc from 'fast-check';
import { encodeCanonical, isPlainObject, typedArrayName, type Unencodable } from '../src/encoding/canonical';

// helpers

const bytesOf = (value: unknown): Uint8Array => {
  const r = encodeCanonical(value);
  if (E.isLeft(r)) throw new Error(`expected ${String(value)} to encode, got ${r.left.path}: ${r.left.reason}`);
  return r.right;
};

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

const refusalOf = (value: unknown): Unencodable => {
  const r = encodeCanonical(value);
  if (E.isRight(r)) throw new Error(`expected a refusal, got ${r.right.length} bytes`);
  return r.left;
};

const sameBytes = (a: unknown, b: unknown): boolean => hex(bytesOf(a)) === hex(bytesOf(b));

const shuffled = <T>(items: readonly T[], seed: number): T[] => {
  const out = [...items];
  let s = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
};

// a strict structural equality: 0 and -0 differ, NaN equals NaN, a missing key differs from an
// undefined one, a hole differs from undefined, typed arrays of different element types differ,
// Maps and Sets compare as unordered collections

const viewName = (v: ArrayBufferView): string => (Buffer.isBuffer(v) ? 'Buffer' : (Object.getPrototypeOf(v) as { constructor: { name: string } }).constructor.name);

const viewBytes = (v: ArrayBufferView): string => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');

const unorderedEqual = <T>(xs: readonly T[], ys: readonly T[], eq: (x: T, y: T) => boolean): boolean => {
  if (xs.length !== ys.length) return false;
  const left = [...ys];
  for (const x of xs) {
    const i = left.findIndex((y) => eq(x, y));
    if (i < 0) return false;
    left.splice(i, 1);
  }
  return true;
};

const strictEqual = (a: unknown, b: unknown): boolean => {
  if (typeof a !== typeof b) return false;
  if (typeof a === 'number') return Object.is(a, b);
  if (typeof a !== 'object' || a === null || b === null) return a === b;
  const o = b as object;
  if (Array.isArray(a) || Array.isArray(o)) {
    if (!Array.isArray(a) || !Array.isArray(o) || a.length !== o.length) return false;
    for (let i = 0; i < a.length; i++) {
      if (i in a !== i in o) return false;
      if (i in a && !strictEqual(a[i], o[i])) return false;
    }
    return true;
  }
  if (a instanceof Date || o instanceof Date) return a instanceof Date && o instanceof Date && Object.is(a.getTime(), o.getTime());
  if (ArrayBuffer.isView(a) || ArrayBuffer.isView(o)) {
    return ArrayBuffer.isView(a) && ArrayBuffer.isView(o) && viewName(a) === viewName(o) && viewBytes(a) === viewBytes(o);
  }
  if (a instanceof ArrayBuffer || o instanceof ArrayBuffer) {
    return a instanceof ArrayBuffer && o instanceof ArrayBuffer && Buffer.from(a).equals(Buffer.from(o));
  }
  if (a instanceof Map || o instanceof Map) {
    return a instanceof Map && o instanceof Map && unorderedEqual([...a.entries()], [...o.entries()], (x, y) => strictEqual(x[0], y[0]) && strictEqual(x[1], y[1]));
  }
  if (a instanceof Set || o instanceof Set) {
    return a instanceof Set && o instanceof Set && unorderedEqual([...a], [...o], strictEqual);
  }
  const ka = Object.keys(a).sort();
  const kb = Object.keys(o).sort();
  if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i])) return false;
  return ka.every((k) => strictEqual((a as Record<string, unknown>)[k], (o as Record<string, unknown>)[k]));
};

describe('the strict equality used by these tests', () => {
  it('tells apart what the encoding must tell apart, and equates what it must equate', () => {
    expect(strictEqual(0, -0)).toBe(false);
    expect(strictEqual(NaN, NaN)).toBe(true);
    expect(strictEqual({ a: undefined }, {})).toBe(false);
    expect(strictEqual([undefined], new Array(1))).toBe(false);
    expect(strictEqual(new Float32Array(2), new Int32Array(2))).toBe(false);
    expect(strictEqual(Buffer.from([1]), new Uint8Array([1]))).toBe(false);
    expect(strictEqual(new Map([[1, 'a'], [2, 'b']]), new Map([[2, 'b'], [1, 'a']]))).toBe(true);
    expect(strictEqual(new Set([1, 2]), new Set([2, 1]))).toBe(true);
    expect(strictEqual(new Set([1, 2]), new Set([1, 3]))).toBe(false);
    expect(strictEqual({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] })).toBe(true);
    expect(strictEqual({ a: [1, { b: 2 }] }, { a: [1, { b: 3 }] })).toBe(false);
  });
});

// arbitraries

/** Strings over a small alphabet (so that collisions are likely) with lone surrogates and U+FFFD. */
const smallString = fc.string({ unit: fc.constantFrom('a', 'b', '\u00e9', '\ud800', '\udc00', '\ufffd', '\ud83d\ude00', '"', '\u0000'), maxLength: 4 });

const typedArray: fc.Arbitrary<unknown> = fc.oneof(
  fc.int8Array({ maxLength: 3 }),
  fc.uint8Array({ maxLength: 3 }),
  fc.uint8Array({ maxLength: 3 }).map((a) => new Uint8ClampedArray(a)),
  fc.uint8Array({ maxLength: 3 }).map((a) => Buffer.from(a)),
  fc.int16Array({ maxLength: 2 }),
  fc.int32Array({ maxLength: 2 }),
  fc.uint32Array({ maxLength: 2 }),
  fc.float32Array({ maxLength: 2 }),
  fc.float64Array({ maxLength: 2 }),
  fc.bigInt64Array({ maxLength: 2 }),
  fc.uint8Array({ maxLength: 4 }).map((a) => a.slice().buffer),
  // the same bytes seen as different element types
  fc.constantFrom(new Float32Array([1]), new Int32Array(new Float32Array([1]).buffer), new Uint8Array(new Float32Array([1]).buffer)),
);

const leaf: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null),
  fc.constant(undefined),
  fc.boolean(),
  fc.constantFrom(0, -0, 1, NaN, Infinity, -Infinity),
  fc.double(),
  fc.integer({ min: -3, max: 3 }),
  fc.bigInt({ min: -5n, max: 5n }),
  smallString,
  fc.integer({ min: -2, max: 2 }).map((t) => new Date(t)),
  fc.constant(new Date(NaN)),
  typedArray,
);

const { value: anyValue } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { maxDepth: 3, depthIdentifier: 'value' },
    leaf,
    fc.array(tie('value'), { maxLength: 3 }),
    fc.array(tie('value'), { maxLength: 3 }).map((xs) => {
      const sparse: unknown[] = new Array(xs.length + 1);
      xs.forEach((x, i) => i % 2 === 0 && (sparse[i] = x));
      return sparse;
    }),
    fc.dictionary(smallString, tie('value'), { maxKeys: 3, noNullPrototype: true }),
    fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 3 }).map((entries) => new Map(entries)),
    fc.array(tie('value'), { maxLength: 3 }).map((xs) => new Set(xs)),
  ),
}));

// laws

describe('encodeCanonical: laws', () => {
  it('does not depend on the order of object keys', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(smallString, anyValue), { selector: ([k]) => k, maxLength: 6 }), fc.nat(), (entries, seed) => {
        const a = Object.fromEntries(entries);
        const b = Object.fromEntries(shuffled(entries, seed));
        expect(hex(bytesOf(a))).toBe(hex(bytesOf(b)));
      }),
      { numRuns: 200 },
    );
  });

  it('does not depend on the order of Map entries or Set elements', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(anyValue, anyValue), { selector: ([k]) => k, comparator: 'SameValueZero', maxLength: 5 }), fc.nat(), (entries, seed) => {
        const order = shuffled(entries, seed);
        expect(hex(bytesOf(new Map(entries)))).toBe(hex(bytesOf(new Map(order))));
        expect(hex(bytesOf(new Set(entries.map(([k]) => k))))).toBe(hex(bytesOf(new Set(order.map(([k]) => k)))));
      }),
      { numRuns: 200 },
    );
  });

  it('does not depend on the order of Map entries whose keys are distinct but equal objects', () => {
    const objectKey = fc.integer({ min: 0, max: 1 }).map((k) => ({ k }));
    fc.assert(
      fc.property(fc.array(fc.tuple(objectKey, fc.integer({ min: 0, max: 3 })), { maxLength: 4 }), fc.nat(), (entries, seed) => {
        expect(hex(bytesOf(new Map(entries)))).toBe(hex(bytesOf(new Map(shuffled(entries, seed)))));
      }),
      { numRuns: 200 },
    );
  });

  it('is deterministic: encoding the same value twice gives the same bytes', () => {
    fc.assert(
      fc.property(anyValue, (v) => {
        expect(hex(bytesOf(v))).toBe(hex(bytesOf(v)));
      }),
      { numRuns: 200 },
    );
  });

  it('is injective: equal bytes only for strictly equal values', () => {
    fc.assert(
      fc.property(anyValue, anyValue, (a, b) => {
        if (sameBytes(a, b)) expect(strictEqual(a, b)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('is injective on pairs of small objects whose keys are likely to collide', () => {
    const key = fc.string({ unit: fc.constantFrom('a', '\ud800', '\udc00', '\ufffd'), minLength: 1, maxLength: 2 });
    fc.assert(
      fc.property(fc.dictionary(key, fc.constantFrom(0, 1), { maxKeys: 2 }), fc.dictionary(key, fc.constantFrom(0, 1), { maxKeys: 2 }), (a, b) => {
        if (sameBytes(a, b)) expect(strictEqual(a, b)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

// explicit pairs that must differ

describe('encodeCanonical: values that must encode differently', () => {
  const pairs: ReadonlyArray<readonly [string, unknown, unknown]> = [
    ['0 and -0', 0, -0],
    ['1 and "1"', 1, '1'],
    ['null and undefined', null, undefined],
    ['a null value and an undefined value', { a: null }, { a: undefined }],
    ['an undefined value and a missing key', { a: undefined }, {}],
    ['a null value and a missing key', { a: null }, {}],
    ['[[1], 2] and [1, 2]', [[1], 2], [1, 2]],
    ['[1, 2] and [1, [2]]', [1, 2], [1, [2]]],
    ['[[1], 2] and [1, [2]]', [[1], 2], [1, [2]]],
    ['"" and []', '', []],
    ['[] and {}', [], {}],
    ['"" and null', '', null],
    ['Float32Array and Float64Array of the same bytes', new Float32Array(2), new Float64Array(1)],
    ['Float32Array and Int32Array of the same bytes', new Float32Array([1.5]), new Int32Array(new Float32Array([1.5]).buffer)],
    ['Float64Array and Int32Array of the same bytes', new Float64Array([2]), new Int32Array(new Float64Array([2]).buffer)],
    ['Uint8Array and Buffer of the same bytes', new Uint8Array([1, 2]), Buffer.from([1, 2])],
    ['Uint8Array and ArrayBuffer of the same bytes', new Uint8Array([1, 2]), new Uint8Array([1, 2]).buffer],
    ['Date(0) and 0', new Date(0), 0],
    ['a Map and an object with the same entries', new Map([['a', 1]]), { a: 1 }],
    ['a Set and an array with the same elements', new Set([1, 2]), [1, 2]],
    ['a Set and a Map', new Set(['a']), new Map([['a', undefined]])],
    ['a lone high surrogate and U+FFFD', '\ud800', '\ufffd'],
    ['a lone low surrogate and U+FFFD', '\udc00', '\ufffd'],
    ['two different lone surrogates', '\ud800', '\udc00'],
    ['a hole and undefined', new Array(1), [undefined]],
    ['a hole and null', new Array(1), [null]],
    ['1n and 1', 1n, 1],
    ['1n and "1"', 1n, '1'],
    ['true and 1', true, 1],
    ['["a", "b"] and ["ab"]', ['a', 'b'], ['ab']],
    ['{ ab: 1 } and { a: "b1" }', { ab: 1 }, { a: 'b1' }],
  ];

  it.each(pairs)('%s', (_label, a, b) => {
    expect(hex(bytesOf(a))).not.toBe(hex(bytesOf(b)));
  });

  it('NaN encodes the same whatever its payload', () => {
    const other = new Float64Array(new Uint32Array([1, 0x7ff80000]).buffer)[0] as number;
    expect(Number.isNaN(other)).toBe(true);
    expect(hex(bytesOf(other))).toBe(hex(bytesOf(NaN)));
    expect(hex(bytesOf(NaN))).not.toBe(hex(bytesOf(Infinity)));
  });

  it('object keys with lone surrogates do not collide with U+FFFD', () => {
    expect(hex(bytesOf({ '\ud800': 1 }))).not.toBe(hex(bytesOf({ '\ufffd': 1 })));
    expect(hex(bytesOf(new Map([['\ud800', 1]])))).not.toBe(hex(bytesOf(new Map([['\ufffd', 1]]))));
  });
});

describe('encodeCanonical: values that must encode the same', () => {
  it('Set element order does not matter', () => {
    expect(sameBytes(new Set([1, 'a', [2]]), new Set([[2], 'a', 1]))).toBe(true);
  });

  it('Map key order does not matter', () => {
    expect(sameBytes(new Map<unknown, unknown>([['a', 1], [2, { b: 3 }]]), new Map<unknown, unknown>([[2, { b: 3 }], ['a', 1]]))).toBe(true);
  });

  it('Map entries whose keys encode alike do not depend on insertion order', () => {
    expect(sameBytes(new Map([[{ k: 1 }, 'x'], [{ k: 1 }, 'y']]), new Map([[{ k: 1 }, 'y'], [{ k: 1 }, 'x']]))).toBe(true);
  });

  it('a typed array is encoded by the bytes it views, not the whole buffer', () => {
    const big = new Float64Array([1, 2, 3, 4]);
    expect(sameBytes(big.subarray(1, 3), new Float64Array([2, 3]))).toBe(true);
  });

  it('objects with a null prototype encode like plain objects', () => {
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });
    expect(sameBytes(bare, { a: 1 })).toBe(true);
  });

  it('repeated references that form no cycle are encoded like copies', () => {
    const shared = { w: [1, 2] };
    const tree = { a: shared, b: [shared, shared], c: new Map([['k', shared]]) };
    const copies = { a: { w: [1, 2] }, b: [{ w: [1, 2] }, { w: [1, 2] }], c: new Map([['k', { w: [1, 2] }]]) };
    expect(hex(bytesOf(tree))).toBe(hex(bytesOf(copies)));
  });
});

// refusals

describe('encodeCanonical: refusals name the path', () => {
  it('a function deep inside', () => {
    const e = refusalOf({ a: [1, { f() {} }] });
    expect(e._tag).toBe('Unencodable');
    expect(e.path).toBe('.a[1].f');
    expect(e.reason).toMatch(/function/);
    expect(e.reason).toMatch(/\bf\b/);
  });

  it('a function at the top', () => {
    const e = refusalOf(() => 1);
    expect(e.path).toBe('');
    expect(e.reason).toMatch(/function/);
  });

  it('a symbol', () => {
    const e = refusalOf({ x: [Symbol('s')] });
    expect(e.path).toBe('.x[0]');
    expect(e.reason).toMatch(/symbol/);
  });

  it('a class instance, naming the class', () => {
    class Model {
      constructor(readonly w = 1) {}
    }
    const e = refusalOf({ models: [new Model()] });
    expect(e.path).toBe('.models[0]');
    expect(e.reason).toMatch(/class Model/);
  });

  it('an array subclass, naming the class', () => {
    class Row extends Array<number> {}
    const e = refusalOf({ row: Row.from([1]) });
    expect(e.path).toBe('.row');
    expect(e.reason).toMatch(/Row/);
  });

  it('a cycle, at the back reference', () => {
    const node: Record<string, unknown> = { name: 'n', children: [] };
    (node.children as unknown[]).push({ parent: node });
    const e = refusalOf({ root: node });
    expect(e.path).toBe('.root.children[0].parent');
    expect(e.reason).toMatch(/cycle/);
  });

  it('a cycle through a Map', () => {
    const m = new Map<string, unknown>();
    m.set('self', m);
    const e = refusalOf({ m });
    expect(e.path).toBe('.m<value 0>');
    expect(e.reason).toMatch(/cycle/);
  });

  it('symbol keys', () => {
    const e = refusalOf({ inner: { [Symbol('k')]: 1, a: 2 } });
    expect(e.path).toBe('.inner');
    expect(e.reason).toMatch(/symbol keys/);
  });

  it('keys that are not identifiers are quoted in the path', () => {
    const e = refusalOf({ 'a b': { '0': () => 1 } });
    expect(e.path).toBe('["a b"]["0"]');
  });

  it('a function inside a Set names the element', () => {
    const e = refusalOf({ s: new Set([1, () => 2]) });
    expect(e.path).toBe('.s<key 1>');
  });

  it('other built-in objects that are not plain data', () => {
    expect(refusalOf(/re/).reason).toMatch(/RegExp/);
    expect(refusalOf(new DataView(new ArrayBuffer(2))).reason).toMatch(/DataView/);
    expect(refusalOf(Promise.resolve(1)).reason).toMatch(/Promise/);
  });
});

describe('canonical helpers', () => {
  it('typedArrayName names typed arrays and Buffers, and nothing else', () => {
    expect(typedArrayName(new Float32Array(1))).toBe('Float32Array');
    expect(typedArrayName(new BigUint64Array(1))).toBe('BigUint64Array');
    expect(typedArrayName(Buffer.alloc(1))).toBe('Buffer');
    expect(typedArrayName(new DataView(new ArrayBuffer(1)))).toBeUndefined();
    expect(typedArrayName([1])).toBeUndefined();
    expect(typedArrayName(new ArrayBuffer(1))).toBeUndefined();
  });

  it('isPlainObject accepts plain and null-prototype objects only', () => {
    expect(isPlainObject({})).toBe(true);
    expect(isPlainObject(Object.create(null))).toBe(true);
    expect(isPlainObject([])).toBe(false);
    expect(isPlainObject(new Date())).toBe(false);
    expect(isPlainObject(null)).toBe(false);
    expect(isPlainObject(Object.create({}))).toBe(false);
  });
});
