/**
 * The cache key of a step: a BLAKE3 hash over the canonical encoding of everything that decides
 * its result. Any change to any component gives a different key; equal components give the
 * same key in any process.
 *
 * @packageDocumentation
 */
import * as E from 'fp-ts/Either';
import { encodeCanonical, isPlainObject } from '../encoding/canonical';

// model

/** Bumped whenever the key layout changes, so old entries can never match new keys. */
export const KEY_FORMAT_VERSION = 2;

/**
 * Everything a step key is made of.
 *
 * @example
 * const parts: StepKeyParts = {
 *   step: 'svc_trainer', code: 'function svc_trainer(...) {...}', parameters: { gamma: 0.002 },
 *   inputs: { X_train: 'json//ab12...' }, outputs: { output: 'auto' }, settings: {},
 * };
 */
export interface StepKeyParts {
  readonly step: string;
  /** The code fingerprint. */
  readonly code: string;
  /** Plain values passed to the step, with constant defaults for those left out; ignored inputs are not here. */
  readonly parameters: Readonly<Record<string, unknown>>;
  /** Content digests of input artifacts, by input name. */
  readonly inputs: Readonly<Record<string, string>>;
  /** How each output is stored, by output name. */
  readonly outputs: Readonly<Record<string, string>>;
  /** Settings that change what the step computes or how its result is kept. */
  readonly settings: Readonly<Record<string, unknown>>;
}

/**
 * A parameter that cannot be part of a key, with the path inside it.
 *
 * @example
 * const e: UnencodableParameter = { _tag: 'UnencodableParameter', field: 'model', path: '.predict', reason: 'a function' };
 */
export interface UnencodableParameter {
  readonly _tag: 'UnencodableParameter';
  readonly field: string;
  readonly path: string;
  readonly reason: string;
}

// the key's frame, written directly

/*
 * Every step of a run encodes one small array of strings and records of strings and numbers: walking it as a
 * general value costs several times more than the hash. The frame below writes the same bytes as
 * `encodeCanonical` (tags and framing of src/encoding/canonical.ts: a tag byte, big-endian u32
 * counts and UTF-8 lengths, object keys sorted by code unit), and gives way to it for anything
 * else (test/key.test.ts checks the two agree).
 */
const TAG_NUMBER = 0x05;
const TAG_STRING = 0x07;
const TAG_ARRAY = 0x09;
const TAG_OBJECT = 0x0b;
const utf8 = new TextEncoder();

/**
 * The one buffer frames are written into, grown when a frame needs more: a key is hashed as soon
 * as its frame is written, so no frame outlives the next (the exported {@link encodeKeyFrame}
 * hands back a copy).
 */
let scratch = new Uint8Array(1024);
let scratchView = new DataView(scratch.buffer);

/** Makes room for `needed` more bytes after `at`, keeping what is written. */
const reserve = (at: number, needed: number): void => {
  if (at + needed <= scratch.length) return;
  const grown = new Uint8Array(Math.max(2 * scratch.length, at + needed));
  grown.set(scratch.subarray(0, at));
  scratch = grown;
  scratchView = new DataView(grown.buffer);
};

/**
 * Writes a string's tag, UTF-8 length and bytes at `at`; returns where it ends. ASCII (names,
 * hex digests, codes: nearly every string of a key) is copied code unit by code unit, which is
 * its UTF-8; anything else goes through the encoder (which needs a view of the buffer, one
 * allocation per string).
 */
const writeText = (at: number, s: string): number => {
  reserve(at, 5 + 3 * s.length); // at most 3 UTF-8 bytes per UTF-16 code unit
  const start = at + 5;
  let i = 0;
  for (; i < s.length; i++) {
    const unit = s.charCodeAt(i);
    if (unit >= 0x80) break;
    scratch[start + i] = unit;
  }
  const written = i === s.length ? i : i + utf8.encodeInto(s.slice(i), scratch.subarray(start + i)).written;
  scratch[at] = TAG_STRING;
  scratchView.setUint32(at + 1, written);
  return at + 5 + written;
};

/**
 * Writes a record of well-formed strings and numbers (a step's usual parameters), keys sorted by
 * code unit, at `at`; returns where it ends, or -1 when the record is anything else (what was
 * written past `at` is then to be overwritten).
 */
const writeScalarRecord = (at: number, value: unknown): number => {
  if (!isPlainObject(value) || Object.getOwnPropertySymbols(value).length > 0) return -1;
  const keys = Object.keys(value);
  if (keys.length > 1) keys.sort();
  reserve(at, 5);
  scratch[at] = TAG_OBJECT;
  scratchView.setUint32(at + 1, keys.length);
  let end = at + 5;
  for (const key of keys) {
    const field = value[key];
    if (!key.isWellFormed()) return -1;
    if (typeof field === 'string') {
      if (!field.isWellFormed()) return -1;
      end = writeText(writeText(end, key), field);
    } else if (typeof field === 'number') {
      end = writeText(end, key);
      reserve(end, 9);
      scratch[end] = TAG_NUMBER;
      // One NaN, as the general encoder writes it.
      if (Number.isNaN(field)) scratchView.setUint32(end + 1, 0x7ff80000), scratchView.setUint32(end + 5, 0);
      else scratchView.setFloat64(end + 1, field);
      end += 9;
    } else return -1;
  }
  return end;
};

/**
 * The frame written into the scratch buffer (valid until the next frame is written), or
 * `undefined` when a part needs the general encoder.
 */
const writeKeyFrame = (parts: StepKeyParts): Uint8Array | undefined => {
  if (!parts.step.isWellFormed() || !parts.code.isWellFormed()) return undefined;
  reserve(0, 14);
  scratch[0] = TAG_ARRAY;
  scratchView.setUint32(1, 7);
  scratch[5] = TAG_NUMBER;
  scratchView.setFloat64(6, KEY_FORMAT_VERSION);
  let at = writeText(writeText(14, parts.step), parts.code);
  at = writeRecord(at, parts.parameters);
  if (at !== -1) at = writeRecord(at, parts.inputs);
  if (at !== -1) at = writeRecord(at, parts.outputs);
  if (at !== -1) at = writeRecord(at, parts.settings);
  return at === -1 ? undefined : scratch.subarray(0, at);
};

/** Writes one record of a key at `at`, as its scalar record or else by the general encoder; returns where it ends, or -1 when it cannot be encoded. */
const writeRecord = (at: number, part: unknown): number => {
  const end = writeScalarRecord(at, part);
  if (end !== -1) return end;
  // Anything else is encoded on its own: a value's bytes are the same alone as inside the frame.
  const encoded = encodeCanonical(part);
  if (E.isLeft(encoded)) return -1;
  reserve(at, encoded.right.length);
  scratch.set(encoded.right, at);
  return at + encoded.right.length;
};

/**
 * @internal The canonical encoding of a key's parts, as `encodeCanonical` of
 * `[KEY_FORMAT_VERSION, step, code, parameters, inputs, outputs, settings]` gives it; `undefined`
 * when a part needs the general encoder (then it also says what cannot be encoded).
 */
export const encodeKeyFrame = (parts: StepKeyParts): Uint8Array | undefined => writeKeyFrame(parts)?.slice();

// computation

/**
 * Computes a step key with the given hash function (see `keyHashFunction`), which must read the
 * bytes it is given before it returns (they are overwritten by the next key).
 *
 * @example
 * const hash = await keyHashFunction();
 * computeStepKey(hash, parts); // Right('6f1e...')
 */
export const computeStepKey = (
  hash: (bytes: Uint8Array) => string,
  parts: StepKeyParts,
): E.Either<UnencodableParameter, string> => {
  // The hash reads the frame at once: the scratch buffer it is in is written again only by the next key.
  const frame = writeKeyFrame(parts);
  if (frame !== undefined) return E.right(hash(frame));
  const encoded = encodeCanonical([KEY_FORMAT_VERSION, parts.step, parts.code, parts.parameters, parts.inputs, parts.outputs, parts.settings]);
  if (E.isRight(encoded)) return E.right(hash(encoded.right));
  for (const [field, value] of Object.entries(parts.parameters)) {
    const one = encodeCanonical(value);
    if (E.isLeft(one)) return E.left({ _tag: 'UnencodableParameter', field, path: one.left.path, reason: one.left.reason });
  }
  return E.left({ _tag: 'UnencodableParameter', field: '(settings)', path: encoded.left.path, reason: encoded.left.reason });
};
