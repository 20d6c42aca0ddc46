/**
 * A canonical, unambiguous, length-framed binary encoding of plain values,
 * used to build cache keys. Two values get the same bytes exactly when they are
 * the same value: object key order does not matter; `0` and `-0`, `1` and `"1"`,
 * `null`, `undefined` and a missing key, `[[1], 2]` and `[1, 2]`, a `Float32Array`
 * and a `Float64Array` all encode differently. What cannot be encoded faithfully
 * (functions, symbols, class instances, cycles) is refused with the path to it.
 *
 * @packageDocumentation
 */
import * as E from 'fp-ts/Either';

// model

/**
 * Why a value could not be encoded: the path inside the value and what was found there.
 *
 * @example
 * const e: Unencodable = { _tag: 'Unencodable', path: '.model.predict', reason: 'a function' };
 */
export interface Unencodable {
  readonly _tag: 'Unencodable';
  /** Where in the value, like `.weights[3]` (empty for the value itself). */
  readonly path: string;
  /** What was found there, phrased to complete "... is ". */
  readonly reason: string;
}

// tags: one byte each, never reused

const TAG = {
  undefined: 0x01,
  null: 0x02,
  false: 0x03,
  true: 0x04,
  number: 0x05,
  bigint: 0x06,
  string: 0x07,
  lonelySurrogateString: 0x08,
  array: 0x09,
  hole: 0x0a,
  object: 0x0b,
  date: 0x0c,
  typedArray: 0x0d,
  arrayBuffer: 0x0e,
  map: 0x0f,
  set: 0x10,
} as const;

const TYPED_ARRAY_NAMES = new Set([
  'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array',
  'Uint32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array', 'Buffer',
]);

/**
 * The name of a typed array's class (`'Float64Array'`, `'Buffer'`, ...), or `undefined`
 * when `value` is not a typed array of a known kind.
 *
 * @example
 * typedArrayName(new Float32Array(2)); // 'Float32Array'
 */
export const typedArrayName = (value: unknown): string | undefined => {
  if (!ArrayBuffer.isView(value) || value instanceof DataView) return undefined;
  const name = Buffer.isBuffer(value) ? 'Buffer' : Object.getPrototypeOf(value)?.constructor?.name;
  return typeof name === 'string' && TYPED_ARRAY_NAMES.has(name) ? name : undefined;
};

/**
 * True for objects whose prototype is `Object.prototype` or `null`.
 *
 * @example
 * isPlainObject({ a: 1 }); // true
 * isPlainObject(new Date()); // false
 */
export const isPlainObject = (value: unknown): value is Record<string, unknown> => {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
};

// the writer

class ByteWriter {
  private buffer = new Uint8Array(256);
  private view = new DataView(this.buffer.buffer);
  length = 0;

  private reserve(extra: number): void {
    if (this.length + extra <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.length + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buffer.subarray(0, this.length));
    this.buffer = next;
    this.view = new DataView(next.buffer);
  }

  byte(b: number): void {
    this.reserve(1);
    this.buffer[this.length++] = b;
  }

  u32(n: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, n);
    this.length += 4;
  }

  f64(x: number): void {
    this.reserve(8);
    if (Number.isNaN(x)) this.view.setUint32(this.length, 0x7ff80000), this.view.setUint32(this.length + 4, 0);
    else this.view.setFloat64(this.length, x);
    this.length += 8;
  }

  bytes(b: Uint8Array): void {
    this.u32(b.byteLength);
    this.reserve(b.byteLength);
    this.buffer.set(b, this.length);
    this.length += b.byteLength;
  }

  string(s: string): void {
    this.reserve(4 + s.length * 3); // UTF-8 needs at most 3 bytes per UTF-16 code unit
    const { written } = textEncoder.encodeInto(s, this.buffer.subarray(this.length + 4));
    this.view.setUint32(this.length, written);
    this.length += 4 + written;
  }

  utf16(s: string): void {
    this.u32(s.length);
    this.reserve(s.length * 2);
    for (let i = 0; i < s.length; i++) this.view.setUint16(this.length + 2 * i, s.charCodeAt(i));
    this.length += s.length * 2;
  }

  result(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}

const textEncoder = new TextEncoder();

const compareBytes = (a: Uint8Array, b: Uint8Array): number => {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return a.length - b.length;
};

/** One step into a value: a property, an index, or a Map/Set entry's key or value. */
type Segment = string | number | { readonly entry: number; readonly part: 'key' | 'value' };

/** Where the walk is: built as a stack of segments, rendered only when a value is refused. */
interface Walk {
  readonly path: Segment[];
  readonly ancestors: Set<object>;
}

const renderPath = (path: readonly Segment[]): string =>
  path
    .map((segment) =>
      typeof segment === 'number'
        ? `[${segment}]`
        : typeof segment === 'object'
          ? `<${segment.part} ${segment.entry}>`
          : /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(segment)
            ? `.${segment}`
            : `[${JSON.stringify(segment)}]`,
    )
    .join('');

class Refusal {
  constructor(readonly error: Unencodable) {}
}

const refuse = (walk: Walk, reason: string): never => {
  throw new Refusal({ _tag: 'Unencodable', path: renderPath(walk.path), reason });
};

const describeInstance = (value: object): string => {
  const name: unknown = Object.getPrototypeOf(value)?.constructor?.name;
  return typeof name === 'string' && name !== '' ? `an instance of class ${name}` : 'an object with a custom prototype';
};

const writeAt = (w: ByteWriter, value: unknown, walk: Walk, segment: Segment): void => {
  walk.path.push(segment);
  write(w, value, walk);
  walk.path.pop();
};

const write = (w: ByteWriter, value: unknown, walk: Walk): void => {
  switch (typeof value) {
    case 'undefined':
      return w.byte(TAG.undefined);
    case 'boolean':
      return w.byte(value ? TAG.true : TAG.false);
    case 'number':
      w.byte(TAG.number);
      return w.f64(value);
    case 'bigint':
      w.byte(TAG.bigint);
      return w.string(value.toString());
    case 'string':
      if (value.isWellFormed()) {
        w.byte(TAG.string);
        return w.string(value);
      }
      w.byte(TAG.lonelySurrogateString);
      return w.utf16(value);
    case 'function':
      return refuse(walk, `a function (${value.name || 'anonymous'}); pass the data it computes instead`);
    case 'symbol':
      return refuse(walk, `a symbol (${String(value)}), which has no stable identity across runs`);
    case 'object':
      break;
  }
  if (value === null) return w.byte(TAG.null);
  if (walk.ancestors.has(value)) return refuse(walk, 'a reference back to an enclosing object (a cycle)');
  walk.ancestors.add(value);
  try {
    writeObject(w, value, walk);
  } finally {
    walk.ancestors.delete(value);
  }
};

const writeObject = (w: ByteWriter, value: object, walk: Walk): void => {
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) return refuse(walk, describeInstance(value));
    w.byte(TAG.array);
    w.u32(value.length);
    for (let i = 0; i < value.length; i++) {
      if (!(i in value)) w.byte(TAG.hole);
      else writeAt(w, value[i], walk, i);
    }
    return;
  }
  if (isPlainObject(value)) {
    if (Object.getOwnPropertySymbols(value).length > 0) return refuse(walk, 'an object with symbol keys');
    const keys = Object.keys(value).sort();
    w.byte(TAG.object);
    w.u32(keys.length);
    for (const key of keys) {
      write(w, key, walk); // tagged, so lone surrogates stay distinct
      writeAt(w, value[key], walk, key);
    }
    return;
  }
  if (value instanceof Date) {
    w.byte(TAG.date);
    return w.f64(value.getTime());
  }
  const arrayName = typedArrayName(value);
  if (arrayName !== undefined) {
    const view = value as ArrayBufferView;
    w.byte(TAG.typedArray);
    w.string(arrayName);
    return w.bytes(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
  }
  if (value instanceof ArrayBuffer) {
    w.byte(TAG.arrayBuffer);
    return w.bytes(new Uint8Array(value));
  }
  if (value instanceof Map || value instanceof Set) {
    const isMap = value instanceof Map;
    const parts: Array<[Uint8Array, Uint8Array]> = [];
    let i = 0;
    for (const [k, v] of isMap ? value.entries() : [...value].map((x) => [x, undefined] as const)) {
      const kw = new ByteWriter();
      writeAt(kw, k, walk, { entry: i, part: 'key' });
      const vw = new ByteWriter();
      if (isMap) writeAt(vw, v, walk, { entry: i, part: 'value' });
      parts.push([kw.result(), vw.result()]);
      i++;
    }
    parts.sort((a, b) => compareBytes(a[0], b[0]) || compareBytes(a[1], b[1]));
    w.byte(isMap ? TAG.map : TAG.set);
    w.u32(parts.length);
    for (const [k, v] of parts) {
      w.bytes(k);
      if (isMap) w.bytes(v);
    }
    return;
  }
  return refuse(walk, `${describeInstance(value)}; give it an io-ts codec or pass plain data`);
};

// encoding

/**
 * Encodes a value canonically, or says which part of it cannot be encoded.
 *
 * @example
 * import * as E from 'fp-ts/Either';
 * const a = encodeCanonical({ x: 1, y: [2] });
 * const b = encodeCanonical({ y: [2], x: 1 });
 * E.isRight(a) && E.isRight(b); // true, and the bytes are equal
 */
export const encodeCanonical = (value: unknown): E.Either<Unencodable, Uint8Array> => {
  const w = new ByteWriter();
  try {
    write(w, value, { path: [], ancestors: new Set() });
  } catch (e) {
    if (e instanceof Refusal) return E.left(e.error);
    throw e;
  }
  return E.right(w.result());
};
