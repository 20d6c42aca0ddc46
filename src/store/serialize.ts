/**
 * How step outputs become bytes and back: JSON-compatible values as JSON, typed arrays,
 * `Buffer`s and `ArrayBuffer`s as their raw bytes, `undefined` as nothing, and custom
 * types through an io-ts codec that is checked again on load.
 *
 * @packageDocumentation
 */
import * as E from 'fp-ts/Either';
import type * as t from 'io-ts';
import { PathReporter } from 'io-ts/PathReporter';
import { typedArrayName } from '../encoding/canonical';
import { toError } from '../errors';
import { describeInstance, HOLE, isPlainObject, walkValue, type Container, type Unencodable, type Visitor, type Walk } from '../encoding/walk';

// model

/**
 * How an artifact's bytes are to be read.
 *
 * @example
 * const kind: ArtifactKind = 'bytes'; // a typed array, a Buffer or an ArrayBuffer, stored raw
 */
export type ArtifactKind = 'json' | 'bytes' | 'none';

/**
 * Everything needed to find, verify and decode a stored output.
 *
 * @example
 * const d: ArtifactDescriptor = { id: '9f0c...', kind: 'bytes', dtype: 'Float64Array', size: 80, format: 'auto' };
 * const tiny: ArtifactDescriptor = { id: '5d2e...', kind: 'json', size: 2, format: 'auto', inline: 'NDI=' }; // 42, kept in the entry
 */
export interface ArtifactDescriptor {
  /** The content hash of the bytes (XXH3-128, hex); also the file name. */
  readonly id: string;
  readonly kind: ArtifactKind;
  /** For `bytes`: which class to rebuild (`Float64Array`, `Buffer`, `ArrayBuffer`, ...). */
  readonly dtype?: string;
  /** The number of bytes. */
  readonly size: number;
  /** `'auto'` or `'codec:<codec name>'`. */
  readonly format: string;
  /**
   * The bytes themselves, base64, for an output small enough to be kept inside its cache entry
   * (see `INLINE_MAX_BYTES`) instead of in the artifact store: no file, no object. `id` is still
   * their content hash, checked on every load.
   */
  readonly inline?: string;
}

/**
 * An output turned into bytes, before it is stored. Unless `sharesMemory`, the bytes share no
 * memory with the value: they are what the value was when it was serialized, whatever is done to
 * the value afterwards.
 */
export interface SerializedOutput {
  readonly kind: ArtifactKind;
  readonly dtype?: string;
  readonly format: string;
  readonly bytes: Uint8Array;
  /** The bytes are a view of the value's own memory (asked for with `{ snapshot: false }`): they change when it does. */
  readonly sharesMemory?: true;
}

/**
 * How to serialize: `snapshot: false` lets the bytes of a typed array, `Buffer` or `ArrayBuffer`
 * be a view of its memory (no copy), for a caller that stores them before anything can change them.
 *
 * @example
 * const options: SerializeOptions = { snapshot: false };
 */
export interface SerializeOptions {
  /** @default true: the bytes are a copy */
  readonly snapshot?: boolean;
}

/** Why stored bytes could not be turned back into a value. */
export interface UndecodableArtifact {
  readonly _tag: 'UndecodableArtifact';
  readonly message: string;
}

/** The empty artifact's id: `undefined` outputs have no bytes and no file. */
export const EMPTY_ARTIFACT_ID = 'none';

// helpers

/**
 * The identity of an artifact as a cache-key input: its content hash and how to read it,
 * so that equal bytes of different element types never collide.
 *
 * @example
 * artifactDigest({ id: 'ab', kind: 'bytes', dtype: 'Float32Array', size: 4, format: 'auto' }); // 'bytes/Float32Array/ab'
 */
export const artifactDigest = (d: ArtifactDescriptor): string => `${d.kind}/${d.dtype ?? ''}/${d.id}`;

/**
 * The format id of an output declaration, as it enters the cache key.
 *
 * @example
 * formatId('auto'); // 'auto'
 */
export const formatId = (format: 'auto' | t.Mixed): string => (format === 'auto' ? 'auto' : `codec:${format.name}`);

/**
 * The JSON check and writer as a visitor of the value walk: refuses what JSON cannot store
 * faithfully, and writes the JSON text (the same text as `JSON.stringify`) into `out` when given.
 */
const jsonVisitor = (out: { text: string } | undefined): Visitor => ({
  enter: (value: unknown, walk: Walk): Container | undefined => {
    switch (typeof value) {
      case 'string':
        return void (out && (out.text += JSON.stringify(value)));
      case 'boolean':
        return void (out && (out.text += value ? 'true' : 'false'));
      case 'number':
        if (!Number.isFinite(value)) return walk.refuse(`${value}, which JSON cannot store; use a Float64Array or an io-ts codec`);
        if (Object.is(value, -0)) return walk.refuse('-0, which JSON stores as 0; use a Float64Array or an io-ts codec');
        return void (out && (out.text += String(value))); // as JSON writes a finite number
      case 'undefined':
        return walk.refuse('undefined, which JSON drops; use null or leave the key out');
      case 'object':
        break;
      default:
        return walk.refuse(value === HOLE ? 'a hole in a sparse array' : `a ${typeof value}, which JSON cannot store; give the output an io-ts codec`);
    }
    if (value === null) return void (out && (out.text += 'null'));
    if (Array.isArray(value)) {
      if (out) out.text += '[';
      return { kind: 'array', value };
    }
    if (!isPlainObject(value)) return walk.refuse(`${describeInstance(value)}; give the output an io-ts codec`);
    if (Object.getOwnPropertySymbols(value).length > 0) return walk.refuse('an object with symbol keys, which JSON drops; use string keys');
    if (out) out.text += '{';
    return { kind: 'object', value, keys: Object.keys(value) };
  },
  beforeChild: (container: Container, index: number): void => {
    if (out === undefined) return;
    if (index > 0) out.text += ',';
    if (container.kind === 'object') out.text += `${JSON.stringify(container.keys[index])}:`;
  },
  leave: (container: Container): void => void (out && (out.text += container.kind === 'array' ? ']' : '}')),
});

/**
 * The first part of a value that JSON cannot store faithfully, or `undefined` when it can.
 * `path` is where the value sits (it prefixes the path reported), `ancestors` the objects
 * enclosing it (a reference back to one is a cycle).
 *
 * @example
 * findNonJson({ a: [1, NaN] }); // { _tag: 'Unencodable', path: '.a[1]', reason: 'NaN, which JSON cannot store; ...' }
 */
export const findNonJson = (value: unknown, path = '', ancestors?: ReadonlySet<object>): Unencodable | undefined => {
  const checked = walkValue(value, jsonVisitor(undefined), ancestors);
  return E.isRight(checked) ? undefined : { ...checked.left, path: path + checked.left.path };
};

/**
 * A value as JSON text (the text `JSON.stringify` writes, at any depth), or the first part of
 * it JSON cannot store faithfully.
 *
 * @example
 * toJsonText({ a: [1, 2] }); // Right('{"a":[1,2]}')
 */
export const toJsonText = (value: unknown): E.Either<Unencodable, string> => {
  const out = { text: '' };
  return E.map(() => out.text)(walkValue(value, jsonVisitor(out)));
};

const serializeAuto = (value: unknown, format: string, snapshot: boolean): E.Either<Unencodable, SerializedOutput> => {
  if (value === undefined) return E.right({ kind: 'none', format, bytes: new Uint8Array(0) });
  const dtype = typedArrayName(value);
  const binary = (d: string, view: Uint8Array): SerializedOutput =>
    // A copy unless asked otherwise: the bytes are what the value holds now, whatever is done to the value afterwards.
    snapshot ? { kind: 'bytes', dtype: d, format, bytes: view.slice() } : { kind: 'bytes', dtype: d, format, bytes: view, sharesMemory: true };
  if (dtype !== undefined) {
    const view = value as ArrayBufferView;
    return E.right(binary(dtype, new Uint8Array(view.buffer, view.byteOffset, view.byteLength)));
  }
  if (value instanceof ArrayBuffer) return E.right(binary('ArrayBuffer', new Uint8Array(value)));
  const bad = findNonJson(value);
  if (bad !== undefined) return E.left(bad);
  let text: string;
  try {
    text = JSON.stringify(value); // native and fast, but recursive
  } catch {
    // nested too deep for JSON.stringify: the walk writes the same text at any depth
    const written = toJsonText(value);
    if (E.isLeft(written)) return written;
    text = written.right;
  }
  return E.right({ kind: 'json', format, bytes: Buffer.from(text, 'utf8') });
};

// serialization

/**
 * Turns an output value into bytes according to its declared format, or says which part of it
 * cannot be stored faithfully. Synchronous, and the bytes are a snapshot (typed arrays and
 * `ArrayBuffer`s are copied, JSON is written out): the value may change afterwards. With
 * `{ snapshot: false }`, binary bytes are a view of the value instead (`sharesMemory`).
 *
 * @example
 * serializeOutput(new Float64Array([1, 2]), 'auto'); // Right({ kind: 'bytes', dtype: 'Float64Array', ... })
 * serializeOutput({ x: NaN }, 'auto'); // Left({ path: '.x', reason: 'NaN, which JSON cannot store; ...' })
 */
export const serializeOutput = (value: unknown, format: 'auto' | t.Mixed, options: SerializeOptions = {}): E.Either<Unencodable, SerializedOutput> => {
  const snapshot = options.snapshot ?? true;
  if (format === 'auto') return serializeAuto(value, 'auto', snapshot);
  let encoded: unknown;
  try {
    encoded = format.encode(value);
  } catch (e) {
    return E.left({ _tag: 'Unencodable', path: '', reason: `rejected by codec ${format.name}: ${toError(e).message}` });
  }
  return serializeAuto(encoded, formatId(format), snapshot);
};

const TYPED_ARRAYS: Readonly<Record<string, { new (buffer: ArrayBuffer, byteOffset: number, length: number): ArrayBufferView; BYTES_PER_ELEMENT: number }>> = {
  Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
  Float32Array, Float64Array, BigInt64Array, BigUint64Array,
};

const rebuildBytes = (bytes: Buffer, dtype: string | undefined): E.Either<UndecodableArtifact, unknown> => {
  if (dtype === 'Buffer') return E.right(bytes);
  if (dtype === 'ArrayBuffer') {
    return E.right(bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  }
  const Ctor = dtype === undefined ? undefined : TYPED_ARRAYS[dtype];
  if (Ctor === undefined) return E.left({ _tag: 'UndecodableArtifact', message: `unknown element type ${String(dtype)}` });
  if (bytes.byteLength % Ctor.BYTES_PER_ELEMENT !== 0) {
    return E.left({ _tag: 'UndecodableArtifact', message: `${bytes.byteLength} bytes is not a whole number of ${dtype} elements` });
  }
  const aligned = bytes.byteOffset % Ctor.BYTES_PER_ELEMENT === 0 ? bytes : Buffer.from(bytes);
  return E.right(new Ctor(aligned.buffer as ArrayBuffer, aligned.byteOffset, aligned.byteLength / Ctor.BYTES_PER_ELEMENT));
};

/**
 * JSON.parse defines every key, `__proto__` included, as an own data property
 * (it never calls the `__proto__` setter), so a stored value cannot reach a prototype.
 * Nothing is ever evaluated.
 */
const parseJsonSafely = (text: string): unknown => JSON.parse(text);

/**
 * Turns verified bytes back into the value they were made from, checking it with the
 * output's codec when it has one.
 *
 * @example
 * deserializeOutput(Buffer.from('[1,2]'), { id: 'x', kind: 'json', size: 5, format: 'auto' }, 'auto'); // Right([1, 2])
 */
export const deserializeOutput = (
  bytes: Buffer,
  descriptor: ArtifactDescriptor,
  format: 'auto' | t.Mixed,
): E.Either<UndecodableArtifact, unknown> => {
  let raw: E.Either<UndecodableArtifact, unknown>;
  switch (descriptor.kind) {
    case 'none':
      raw = E.right(undefined);
      break;
    case 'bytes':
      raw = rebuildBytes(bytes, descriptor.dtype);
      break;
    case 'json':
      try {
        raw = E.right(parseJsonSafely(bytes.toString('utf8')));
      } catch (e) {
        raw = E.left({ _tag: 'UndecodableArtifact', message: `not valid JSON (${toError(e).message})` });
      }
      break;
  }
  if (format === 'auto' || E.isLeft(raw)) return raw;
  const decoded = format.decode(raw.right);
  if (E.isLeft(decoded)) {
    return E.left({ _tag: 'UndecodableArtifact', message: `codec ${format.name} no longer accepts the stored value: ${PathReporter.report(decoded).slice(0, 3).join('; ')}` });
  }
  return E.right(decoded.right);
};
