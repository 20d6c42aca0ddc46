/**
 * The cache key of a step: a BLAKE3 hash over the canonical encoding of everything that decides
 * its result. Any change to any component gives a different key; equal components give the
 * same key in any process.
 *
 * @packageDocumentation
 */
import * as E from 'fp-ts/Either';
import { encodeCanonical } from '../encoding/canonical';

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
  const encoded = encodeCanonical([KEY_FORMAT_VERSION, parts.step, parts.code, parts.parameters, parts.inputs, parts.outputs, parts.settings]);
  if (E.isRight(encoded)) return E.right(hash(encoded.right));
  for (const [field, value] of Object.entries(parts.parameters)) {
    const one = encodeCanonical(value);
    if (E.isLeft(one)) return E.left({ _tag: 'UnencodableParameter', field, path: one.left.path, reason: one.left.reason });
  }
  return E.left({ _tag: 'UnencodableParameter', field: '(settings)', path: encoded.left.path, reason: encoded.left.reason });
};
