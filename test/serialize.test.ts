import * as E from 'fp-ts/Either';
import fc from 'fast-check';
import * as t from 'io-ts';
import type { Unencodable } from '../src/encoding/canonical';
import {
  artifactDigest,
  deserializeOutput,
  findNonJson,
  formatId,
  serializeOutput,
  type ArtifactDescriptor,
  type SerializedOutput,
} from '../src/store/serialize';

// helpers

const serialized = (value: unknown, format: 'auto' | t.Mixed = 'auto'): SerializedOutput => {
  const r = serializeOutput(value, format);
  if (E.isLeft(r)) throw new Error(`expected ${String(value)} to serialize, got ${r.left.path}: ${r.left.reason}`);
  return r.right;
};

const refusal = (value: unknown, format: 'auto' | t.Mixed = 'auto'): Unencodable => {
  const r = serializeOutput(value, format);
  if (E.isRight(r)) throw new Error(`expected a refusal, got kind ${r.right.kind}`);
  return r.left;
};

const descriptorOf = (s: SerializedOutput, id = '0123456789abcdef'): ArtifactDescriptor => ({
  id,
  kind: s.kind,
  ...(s.dtype === undefined ? {} : { dtype: s.dtype }),
  size: s.bytes.byteLength,
  format: s.format,
});

/** Serializes, copies the bytes (as a store would), and deserializes. */
const roundTrip = (value: unknown, format: 'auto' | t.Mixed = 'auto'): unknown => {
  const s = serialized(value, format);
  const r = deserializeOutput(Buffer.from(s.bytes), descriptorOf(s), format);
  if (E.isLeft(r)) throw new Error(`expected to deserialize, got ${r.left.message}`);
  return r.right;
};

const containsMinusZero = (v: unknown): boolean =>
  Object.is(v, -0) || (typeof v === 'object' && v !== null && Object.values(v).some(containsMinusZero));

// round trips

describe("serializeOutput / deserializeOutput with 'auto'", () => {
  it.each<[string, unknown]>([
    ['a number', 42.5],
    ['a string', 'caf\u00e9 \ud83d\ude00'],
    ['a string with a lone surrogate', 'a\ud800b'],
    ['true', true],
    ['null', null],
    ['an empty array', []],
    ['an empty object', {}],
    ['nested data', { a: [1, { b: null, c: 'x' }], d: { e: [[]] } }],
    ['numbers at the edges', [Number.MAX_VALUE, Number.MIN_VALUE, -Number.MAX_SAFE_INTEGER, 1e-300]],
  ])('round-trips %s as JSON', (_label, value) => {
    const s = serialized(value);
    expect(s.kind).toBe('json');
    expect(s.format).toBe('auto');
    expect(roundTrip(value)).toEqual(value);
  });

  const typed: Array<[string, ArrayBufferView]> = [
    ['Int8Array', new Int8Array([-128, 0, 127])],
    ['Uint8Array', new Uint8Array([0, 1, 255])],
    ['Uint8ClampedArray', new Uint8ClampedArray([0, 128, 255])],
    ['Int16Array', new Int16Array([-32768, 1, 32767])],
    ['Uint16Array', new Uint16Array([0, 65535])],
    ['Int32Array', new Int32Array([-(2 ** 31), 7, 2 ** 31 - 1])],
    ['Uint32Array', new Uint32Array([0, 2 ** 32 - 1])],
    ['Float32Array', new Float32Array([1.5, -0, NaN, Infinity])],
    ['Float64Array', new Float64Array([Math.PI, -0, NaN, -Infinity, 5e-324])],
    ['BigInt64Array', new BigInt64Array([-(2n ** 63n), 0n, 2n ** 63n - 1n])],
    ['BigUint64Array', new BigUint64Array([0n, 2n ** 64n - 1n])],
  ];

  it.each(typed)('round-trips a %s as its raw bytes, keeping the element type', (dtype, value) => {
    const s = serialized(value);
    expect(s.kind).toBe('bytes');
    expect(s.dtype).toBe(dtype);
    expect(s.bytes.byteLength).toBe(value.byteLength);
    const back = roundTrip(value) as ArrayBufferView;
    expect((Object.getPrototypeOf(back) as { constructor: { name: string } }).constructor.name).toBe(dtype);
    expect(back).toEqual(value);
    expect(Buffer.from(back.buffer, back.byteOffset, back.byteLength).equals(Buffer.from(value.buffer, value.byteOffset, value.byteLength))).toBe(true);
  });

  it('round-trips a typed array that views part of a larger buffer', () => {
    const view = new Float64Array([1, 2, 3, 4]).subarray(1, 3);
    const s = serialized(view);
    expect(s.bytes.byteLength).toBe(16);
    expect(roundTrip(view)).toEqual(new Float64Array([2, 3]));
  });

  it('rebuilds typed arrays from bytes that start at an unaligned offset', () => {
    const value = new Float64Array([1.25, -2]);
    const s = serialized(value);
    const shifted = Buffer.alloc(s.bytes.byteLength + 1);
    shifted.set(s.bytes, 1);
    const r = deserializeOutput(shifted.subarray(1), descriptorOf(s), 'auto');
    expect(r).toEqual(E.right(value));
  });

  it('copies binary bytes by default; with snapshot: false they are a view of the value, marked sharesMemory', () => {
    const values = new Float64Array([1, 2, 3]);
    const copied = serialized(values);
    const viewed = serializeOutput(values, 'auto', { snapshot: false });
    if (E.isLeft(viewed)) throw new Error('expected bytes');
    expect(copied.sharesMemory).toBeUndefined();
    expect(viewed.right.sharesMemory).toBe(true);
    values[0] = -1;
    expect(new Float64Array(copied.bytes.buffer, copied.bytes.byteOffset, 3)[0]).toBe(1);
    expect(viewed.right.bytes.buffer).toBe(values.buffer);
    const json = serializeOutput({ a: 1 }, 'auto', { snapshot: false });
    expect(E.isRight(json) ? json.right.sharesMemory : 'refused').toBeUndefined();
  });

  it('round-trips a Buffer as a Buffer', () => {
    const value = Buffer.from('bytes \u0000 \u00ff');
    const s = serialized(value);
    expect([s.kind, s.dtype]).toEqual(['bytes', 'Buffer']);
    const back = roundTrip(value);
    expect(Buffer.isBuffer(back)).toBe(true);
    expect((back as Buffer).equals(value)).toBe(true);
  });

  it('round-trips an ArrayBuffer as an ArrayBuffer', () => {
    const value = new Uint8Array([9, 8, 7]).buffer;
    const s = serialized(value);
    expect([s.kind, s.dtype]).toEqual(['bytes', 'ArrayBuffer']);
    const back = roundTrip(value);
    expect(back).toBeInstanceOf(ArrayBuffer);
    expect([...new Uint8Array(back as ArrayBuffer)]).toEqual([9, 8, 7]);
  });

  it('an ArrayBuffer rebuilt from part of a larger buffer holds only its own bytes', () => {
    const s = serialized(new Uint8Array([1, 2, 3]).buffer);
    const big = Buffer.from([0, 1, 2, 3, 0]);
    const r = deserializeOutput(big.subarray(1, 4), descriptorOf(s), 'auto');
    expect(E.isRight(r) && [...new Uint8Array(r.right as ArrayBuffer)]).toEqual([1, 2, 3]);
  });

  it("stores undefined as kind 'none' with no bytes, and reads it back", () => {
    const s = serialized(undefined);
    expect(s.kind).toBe('none');
    expect(s.bytes.byteLength).toBe(0);
    expect(deserializeOutput(Buffer.alloc(0), descriptorOf(s), 'auto')).toEqual(E.right(undefined));
  });

  it('any JSON value without -0 round-trips exactly; values with -0 are refused (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ stringUnit: 'binary' }), (value) => {
        const r = serializeOutput(value, 'auto');
        if (containsMinusZero(value)) {
          expect(E.isLeft(r)).toBe(true);
          if (E.isLeft(r)) expect(r.left.reason).toMatch(/-0/);
        } else {
          expect(E.isRight(r) && r.right.kind).toBe('json');
          expect(roundTrip(value)).toStrictEqual(value);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('any typed array round-trips with the same element type and bytes (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.int8Array(), fc.uint16Array(), fc.int32Array(), fc.float32Array(), fc.float64Array(), fc.bigInt64Array(), fc.bigUint64Array()),
        (value) => {
          const back = roundTrip(value) as ArrayBufferView;
          expect(back.constructor).toBe(value.constructor);
          expect(Buffer.from(back.buffer, back.byteOffset, back.byteLength).equals(Buffer.from(value.buffer, value.byteOffset, value.byteLength))).toBe(true);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe("serializeOutput with 'auto': refusals name the path", () => {
  const cyclic: Record<string, unknown> = { a: [] };
  (cyclic.a as unknown[]).push({ back: cyclic });
  class Model {
    readonly w = [1];
  }
  const cases: Array<[string, unknown, string, RegExp]> = [
    ['NaN', { metrics: { loss: NaN } }, '.metrics.loss', /NaN/],
    ['Infinity', { scores: [1, Infinity] }, '.scores[1]', /Infinity/],
    ['-Infinity', [-Infinity], '[0]', /-Infinity/],
    ['-0', { bias: -0 }, '.bias', /-0/],
    ['undefined inside an object', { a: { b: undefined } }, '.a.b', /undefined/],
    ['undefined inside an array', [1, undefined], '[1]', /undefined/],
    ['a sparse array', { xs: [1, , 3] }, '.xs[1]', /hole|sparse/],
    ['a class instance', { model: new Model() }, '.model', /class Model/],
    ['a Date', { when: new Date(0) }, '.when', /Date/],
    ['a Map', new Map([['a', 1]]), '', /Map/],
    ['a cycle', cyclic, '.a[0].back', /cycle/],
    ['a bigint', { n: 1n }, '.n', /bigint/],
    ['a function', { f: () => 1 }, '.f', /function/],
    ['a symbol', ['x', Symbol('s')], '[1]', /symbol/],
    ['a key that is not an identifier', { 'two words': NaN }, '["two words"]', /NaN/],
  ];

  it.each(cases)('refuses %s', (_label, value, path, reason) => {
    const e = refusal(value);
    expect(e._tag).toBe('Unencodable');
    expect(e.path).toBe(path);
    expect(e.reason).toMatch(reason);
  });

  it('refuses symbol-keyed properties, which JSON would drop', () => {
    const e = refusal({ meta: { a: 1, [Symbol('k')]: 2 } });
    expect(e.path).toBe('.meta');
    expect(e.reason).toMatch(/symbol/);
  });

  it('findNonJson accepts shared references that form no cycle', () => {
    const shared = { x: 1 };
    expect(findNonJson({ a: shared, b: [shared, shared] }, '', new Set())).toBeUndefined();
  });

  it('refuses every value JSON would not give back as it was (property)', () => {
    const notJson = fc.constantFrom<unknown>(NaN, Infinity, -0, undefined, 1n, Symbol('x'), () => 0, new Date(0), new Map(), new Set(), /re/);
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 2 }), notJson, fc.string(), (json, bad, key) => {
        expect(E.isLeft(serializeOutput({ ok: json, [key === 'ok' ? 'ko' : key]: bad }, 'auto'))).toBe(true);
        expect(E.isLeft(serializeOutput([json, bad], 'auto'))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});

// io-ts codecs

const DateFromISO = new t.Type<Date, string, unknown>(
  'DateFromISO',
  (u): u is Date => u instanceof Date,
  (u, c) => {
    if (typeof u !== 'string') return t.failure(u, c);
    const d = new Date(u);
    return Number.isNaN(d.getTime()) ? t.failure(u, c) : t.success(d);
  },
  (d) => d.toISOString(),
);

const Report = t.type({ when: DateFromISO, accuracy: t.number }, 'Report');

describe('serializeOutput / deserializeOutput with an io-ts codec', () => {
  it('encodes then decodes', () => {
    const value = { when: new Date(Date.UTC(2024, 0, 2)), accuracy: 0.97 };
    const s = serialized(value, Report);
    expect(s.kind).toBe('json');
    expect(s.format).toBe('codec:Report');
    expect(JSON.parse(Buffer.from(s.bytes).toString('utf8'))).toEqual({ when: '2024-01-02T00:00:00.000Z', accuracy: 0.97 });
    const back = roundTrip(value, Report) as { when: Date; accuracy: number };
    expect(back.when).toBeInstanceOf(Date);
    expect(back.when.getTime()).toBe(value.when.getTime());
    expect(back.accuracy).toBe(0.97);
  });

  it('a codec that encodes to a typed array stores raw bytes', () => {
    const Vector = new t.Type<number[], Float64Array, unknown>(
      'Vector',
      (u): u is number[] => Array.isArray(u),
      (u, c) => (u instanceof Float64Array ? t.success([...u]) : t.failure(u, c)),
      (xs) => Float64Array.from(xs),
    );
    const s = serialized([1, -0, NaN], Vector);
    expect([s.kind, s.dtype, s.format]).toEqual(['bytes', 'Float64Array', 'codec:Vector']);
    expect(roundTrip([1, -0, NaN], Vector)).toEqual([1, -0, NaN]);
  });

  it('a stored value the codec no longer accepts gives Left UndecodableArtifact with a readable message', () => {
    const stored = serialized({ when: new Date(0), accuracy: 0.5 }, Report);
    const ReportV2 = t.type({ when: DateFromISO, accuracy: t.number, recall: t.number }, 'Report');
    const r = deserializeOutput(Buffer.from(stored.bytes), descriptorOf(stored), ReportV2);
    expect(E.isLeft(r)).toBe(true);
    if (E.isLeft(r)) {
      expect(r.left._tag).toBe('UndecodableArtifact');
      expect(r.left.message).toMatch(/codec Report no longer accepts the stored value/);
      expect(r.left.message).toContain('recall');
      expect(r.left.message).toContain('undefined');
    }
  });

  it('a codec that throws while encoding gives Left naming the codec', () => {
    const Picky = new t.Type<number, number, unknown>(
      'Picky',
      (u): u is number => typeof u === 'number',
      (u, c) => (typeof u === 'number' ? t.success(u) : t.failure(u, c)),
      () => {
        throw new Error('cannot encode this one');
      },
    );
    const e = refusal(1, Picky);
    expect(e.reason).toMatch(/Picky/);
    expect(e.reason).toMatch(/cannot encode this one/);
  });

  it('a codec whose encoded form is not JSON-safe is refused with the path', () => {
    const Loose = new t.Type<{ x: number }, { x: number }, unknown>('Loose', (u): u is { x: number } => typeof u === 'object' && u !== null, (u) => t.success(u as { x: number }), (a) => a);
    expect(refusal({ x: NaN }, Loose).path).toBe('.x');
  });
});

// safety and validation of stored bytes

describe('deserializeOutput: stored bytes it cannot trust', () => {
  afterEach(() => {
    delete (Object.prototype as Record<string, unknown>).polluted;
  });

  it('"__proto__" in a JSON artifact stays an own property and does not pollute Object.prototype', () => {
    const text = '{"__proto__": {"polluted": true}, "a": {"__proto__": {"polluted": 1}}}';
    const r = deserializeOutput(Buffer.from(text), { id: 'ab', kind: 'json', size: text.length, format: 'auto' }, 'auto');
    expect(E.isRight(r)).toBe(true);
    const value = (E.isRight(r) ? r.right : undefined) as Record<string, unknown>;
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.prototype.hasOwnProperty.call(value, '__proto__')).toBe(true);
    expect(Object.keys(value)).toEqual(['__proto__', 'a']);
    expect(Object.getOwnPropertyDescriptor(value, '__proto__')?.value).toEqual({ polluted: true });
    expect(Object.prototype.hasOwnProperty.call(value.a, '__proto__')).toBe(true);
  });

  it('a value with an own "__proto__" key round-trips with the key kept', () => {
    const value = JSON.parse('{"__proto__": {"x": 1}, "y": 2}') as Record<string, unknown>;
    const back = roundTrip(value) as Record<string, unknown>;
    expect(Object.keys(back)).toEqual(['__proto__', 'y']);
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(back, '__proto__')?.value).toEqual({ x: 1 });
  });

  it('invalid JSON gives Left', () => {
    const r = deserializeOutput(Buffer.from('{"a":'), { id: 'ab', kind: 'json', size: 5, format: 'auto' }, 'auto');
    expect(E.isLeft(r) && r.left._tag).toBe('UndecodableArtifact');
    expect(E.isLeft(r) && r.left.message).toMatch(/not valid JSON/);
  });

  it.each<[string, number]>([
    ['Float64Array', 12],
    ['Float64Array', 7],
    ['Float32Array', 6],
    ['Int16Array', 3],
    ['BigInt64Array', 9],
  ])('a %s of %i bytes gives Left', (dtype, length) => {
    const r = deserializeOutput(Buffer.alloc(length), { id: 'ab', kind: 'bytes', dtype, size: length, format: 'auto' }, 'auto');
    expect(E.isLeft(r)).toBe(true);
    if (E.isLeft(r)) {
      expect(r.left._tag).toBe('UndecodableArtifact');
      expect(r.left.message).toContain(dtype);
      expect(r.left.message).toContain(String(length));
    }
  });

  it('an unknown element type gives Left', () => {
    const r = deserializeOutput(Buffer.alloc(8), { id: 'ab', kind: 'bytes', dtype: 'Float16Array', size: 8, format: 'auto' }, 'auto');
    expect(E.isLeft(r) && r.left.message).toMatch(/Float16Array/);
    const r2 = deserializeOutput(Buffer.alloc(8), { id: 'ab', kind: 'bytes', size: 8, format: 'auto' }, 'auto');
    expect(E.isLeft(r2)).toBe(true);
  });

  it('never throws on arbitrary stored bytes (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 40 }),
        fc.constantFrom<ArtifactDescriptor['kind']>('json', 'bytes', 'none'),
        fc.option(fc.constantFrom('Float64Array', 'Int32Array', 'Buffer', 'ArrayBuffer', 'Nope'), { nil: undefined }),
        fc.constantFrom<'auto' | t.Mixed>('auto', Report),
        (bytes, kind, dtype, format) => {
          const descriptor: ArtifactDescriptor = { id: 'ab', kind, ...(dtype === undefined ? {} : { dtype }), size: bytes.length, format: formatId(format) };
          const r = deserializeOutput(Buffer.from(bytes), descriptor, format);
          expect(r._tag === 'Left' || r._tag === 'Right').toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('formatId and artifactDigest', () => {
  it('formatId names auto and codecs apart', () => {
    expect(formatId('auto')).toBe('auto');
    expect(formatId(Report)).toBe('codec:Report');
    expect(formatId(t.array(t.number))).toBe('codec:Array<number>');
  });

  it('artifactDigest distinguishes element types, kinds and ids', () => {
    const base: ArtifactDescriptor = { id: 'ab12', kind: 'bytes', dtype: 'Float32Array', size: 8, format: 'auto' };
    const digests = [
      artifactDigest(base),
      artifactDigest({ ...base, dtype: 'Float64Array' }),
      artifactDigest({ ...base, dtype: 'Int32Array' }),
      artifactDigest({ ...base, dtype: 'Buffer' }),
      artifactDigest({ id: 'ab12', kind: 'json', size: 8, format: 'auto' }),
      artifactDigest({ ...base, id: 'ab13' }),
    ];
    expect(new Set(digests).size).toBe(digests.length);
    expect(digests[0]).toContain('ab12');
  });

  it('equal bytes serialized from different element types get different digests', () => {
    const f32 = serialized(new Float32Array([1]));
    const i32 = serialized(new Int32Array(new Float32Array([1]).buffer));
    expect(Buffer.from(f32.bytes).equals(Buffer.from(i32.bytes))).toBe(true);
    expect(artifactDigest(descriptorOf(f32, 'same'))).not.toBe(artifactDigest(descriptorOf(i32, 'same')));
  });
});
