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
import { describeInstance, HOLE, isPlainObject, walkValue, type Container, type Unencodable, type Visitor, type Walk } from './walk';

export { isPlainObject, type Unencodable } from './walk';

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

const writeString = (w: ByteWriter, value: string): void => {
  if (value.isWellFormed()) {
    w.byte(TAG.string);
    return w.string(value);
  }
  w.byte(TAG.lonelySurrogateString);
  return w.utf16(value);
};

/**
 * The encoder as a visitor of the value walk. Writes go to the innermost writer: a Map or Set
 * entry's key and value are written apart, so that the entries can be sorted by their bytes
 * when the Map or Set is left.
 */
class Encoder implements Visitor {
  /** The innermost writer last; more only inside Map and Set entries. */
  private readonly writers: ByteWriter[];
  /** The bytes of the entries of each Map or Set being walked (a key, then its value for a Map). */
  private readonly entryParts: Uint8Array[][] = [];

  constructor(root: ByteWriter) {
    this.writers = [root];
  }

  private out(): ByteWriter {
    return this.writers[this.writers.length - 1] as ByteWriter;
  }

  enter(value: unknown, walk: Walk): Container | undefined {
    const w = this.out();
    switch (typeof value) {
      case 'undefined':
        return void w.byte(TAG.undefined);
      case 'boolean':
        return void w.byte(value ? TAG.true : TAG.false);
      case 'number':
        w.byte(TAG.number);
        return void w.f64(value);
      case 'bigint':
        w.byte(TAG.bigint);
        return void w.string(value.toString());
      case 'string':
        return void writeString(w, value);
      case 'function':
        return walk.refuse(`a function (${value.name || 'anonymous'}); pass the data it computes instead`);
      case 'symbol':
        return value === HOLE ? void w.byte(TAG.hole) : walk.refuse(`a symbol (${String(value)}), which has no stable identity across runs`);
      case 'object':
        break;
    }
    if (value === null) return void w.byte(TAG.null);
    if (Array.isArray(value)) {
      if (Object.getPrototypeOf(value) !== Array.prototype) return walk.refuse(describeInstance(value));
      w.byte(TAG.array);
      w.u32(value.length);
      return { kind: 'array', value };
    }
    if (isPlainObject(value)) {
      if (Object.getOwnPropertySymbols(value).length > 0) return walk.refuse('an object with symbol keys');
      const keys = Object.keys(value).sort();
      w.byte(TAG.object);
      w.u32(keys.length);
      return { kind: 'object', value, keys };
    }
    if (value instanceof Date) {
      w.byte(TAG.date);
      return void w.f64(value.getTime());
    }
    const arrayName = typedArrayName(value);
    if (arrayName !== undefined) {
      const view = value as ArrayBufferView;
      w.byte(TAG.typedArray);
      w.string(arrayName);
      return void w.bytes(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
    }
    if (value instanceof ArrayBuffer) {
      w.byte(TAG.arrayBuffer);
      return void w.bytes(new Uint8Array(value));
    }
    if (value instanceof Map || value instanceof Set) {
      this.entryParts.push([]);
      return value instanceof Map ? { kind: 'map', value } : { kind: 'set', value };
    }
    return walk.refuse(`${describeInstance(value)}; pass plain data`);
  }

  beforeChild(container: Container, index: number): void {
    if (container.kind === 'object') writeString(this.out(), container.keys[index] as string); // tagged, so lone surrogates stay distinct
    else if (container.kind === 'map' || container.kind === 'set') this.writers.push(new ByteWriter());
  }

  afterChild(container: Container): void {
    if (container.kind === 'map' || container.kind === 'set') (this.entryParts[this.entryParts.length - 1] as Uint8Array[]).push((this.writers.pop() as ByteWriter).result());
  }

  leave(container: Container): void {
    if (container.kind !== 'map' && container.kind !== 'set') return;
    const parts = this.entryParts.pop() as Uint8Array[];
    const isMap = container.kind === 'map';
    const entries: Array<[Uint8Array, Uint8Array]> = [];
    for (let i = 0; i < parts.length; i += isMap ? 2 : 1) entries.push([parts[i] as Uint8Array, isMap ? (parts[i + 1] as Uint8Array) : EMPTY]);
    entries.sort((a, b) => compareBytes(a[0], b[0]) || compareBytes(a[1], b[1]));
    const w = this.out();
    w.byte(isMap ? TAG.map : TAG.set);
    w.u32(entries.length);
    for (const [k, v] of entries) {
      w.bytes(k);
      if (isMap) w.bytes(v);
    }
  }
}

const EMPTY = new Uint8Array(0);

// encoding

/**
 * Encodes a value canonically, or says which part of it cannot be encoded.
 *
 * @example
 * import * as E from 'fp-ts/Either';
import { describeInstance, HOLE, isPlainObject, walkValue, type Container, type Unencodable, type Visitor, type Walk } from './walk';

export { isPlainObject, type Unencodable } from './walk';
 * const a = encodeCanonical({ x: 1, y: [2] });
 * const b = encodeCanonical({ y: [2], x: 1 });
 * E.isRight(a) && E.isRight(b); // true, and the bytes are equal
 */
export const encodeCanonical = (value: unknown): E.Either<Unencodable, Uint8Array> => {
  const w = new ByteWriter();
  const walked = walkValue(value, new Encoder(w));
  return E.isRight(walked) ? E.right(w.result()) : walked;
};
