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

/** A record of well-formed strings and numbers (a step's usual parameters), its keys sorted; `undefined` when it is anything else. */
const scalarRecord = (value: unknown): Array<readonly [string, string | number]> | undefined => {
  if (!isPlainObject(value) || Object.getOwnPropertySymbols(value).length > 0) return undefined;
  const keys = Object.keys(value).sort();
  const pairs: Array<readonly [string, string | number]> = [];
  for (const key of keys) {
    const field = value[key];
    if (!key.isWellFormed() || !(typeof field === 'number' || (typeof field === 'string' && field.isWellFormed()))) return undefined;
    pairs.push([key, field]);
  }
  return pairs;
};

/**
 * @internal The canonical encoding of a key's parts, as `encodeCanonical` of
 * `[KEY_FORMAT_VERSION, step, code, parameters, inputs, outputs, settings]` gives it; `undefined`
 * when a part needs the general encoder (then it also says what cannot be encoded).
 */
export const encodeKeyFrame = (parts: StepKeyParts): Uint8Array | undefined => {
  if (!parts.step.isWellFormed() || !parts.code.isWellFormed()) return undefined;
  const records: Array<Array<readonly [string, string | number]> | Uint8Array> = [];
  for (const part of [parts.parameters, parts.inputs, parts.outputs, parts.settings]) {
    const record = scalarRecord(part);
    if (record !== undefined) {
      records.push(record);
      continue;
    }
    // Anything else is encoded on its own: a value's bytes are the same alone as inside the frame.
    const encoded = encodeCanonical(part);
    if (E.isLeft(encoded)) return undefined;
    records.push(encoded.right);
  }
  // At most 3 UTF-8 bytes per UTF-16 code unit: one buffer, written once, then cut to size.
  let bound = 14 + 5 * 2 + 3 * (parts.step.length + parts.code.length);
  for (const record of records) {
    if (record instanceof Uint8Array) bound += record.length;
    else {
      bound += 5;
      for (const [key, field] of record) bound += 10 + 3 * key.length + (typeof field === 'number' ? 9 : 3 * field.length);
    }
  }
  const out = new Uint8Array(bound);
  const view = new DataView(out.buffer);
  let at = 0;
  const writeText = (s: string): void => {
    const { written } = utf8.encodeInto(s, out.subarray(at + 5));
    out[at] = TAG_STRING;
    view.setUint32(at + 1, written);
    at += 5 + written;
  };
  out[0] = TAG_ARRAY;
  view.setUint32(1, 7);
  out[5] = TAG_NUMBER;
  view.setFloat64(6, KEY_FORMAT_VERSION);
  at = 14;
  writeText(parts.step);
  writeText(parts.code);
  for (const record of records) {
    if (record instanceof Uint8Array) {
      out.set(record, at);
      at += record.length;
      continue;
    }
    out[at] = TAG_OBJECT;
    view.setUint32(at + 1, record.length);
    at += 5;
    for (const [key, field] of record) {
      writeText(key);
      if (typeof field === 'string') writeText(field);
      else {
        out[at] = TAG_NUMBER;
        // One NaN, as the general encoder writes it.
        if (Number.isNaN(field)) view.setUint32(at + 1, 0x7ff80000), view.setUint32(at + 5, 0);
        else view.setFloat64(at + 1, field);
        at += 9;
      }
    }
  }
  return out.subarray(0, at);
};

// computation

/**
 * Computes a step key with the given hash function (see `keyHashFunction`).
 *
 * @example
 * const hash = await keyHashFunction();
 * computeStepKey(hash, parts); // Right('6f1e...')
 */
export const computeStepKey = (
  hash: (bytes: Uint8Array) => string,
  parts: StepKeyParts,
): E.Either<UnencodableParameter, string> => {
  const frame = encodeKeyFrame(parts);
  if (frame !== undefined) return E.right(hash(frame));
  const encoded = encodeCanonical([KEY_FORMAT_VERSION, parts.step, parts.code, parts.parameters, parts.inputs, parts.outputs, parts.settings]);
  if (E.isRight(encoded)) return E.right(hash(encoded.right));
  for (const [field, value] of Object.entries(parts.parameters)) {
    const one = encodeCanonical(value);
    if (E.isLeft(one)) return E.left({ _tag: 'UnencodableParameter', field, path: one.left.path, reason: one.left.reason });
  }
  return E.left({ _tag: 'UnencodableParameter', field: '(settings)', path: encoded.left.path, reason: encoded.left.reason });
};
