/**
 * The cache key of one step in one run: its code (fingerprint or manual version), parameters,
 * input contents, output formats, and the cache policy's extra components (dependencies, files,
 * the cache-key function's result), together with the readable components kept for explaining
 * misses.
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { parameterComponent, type KeyComponents } from '../cache/components';
import { computeStepKey } from '../cache/key';
import { effectiveParameters, parameterDefaultsOf } from '../cache/parameter-defaults';
import { encodeCanonical } from '../encoding/canonical';
import { StepcacheError, toError } from '../errors';
import { fingerprintDependency, fingerprintOutputCodec, withParts, type CallSite, type CodeFingerprint } from '../fingerprint';
import { createContentHasher } from '../hash/hashers';
import type { GraphNode, OutputRef } from '../pipeline/pipeline';
import type { ResolvedCacheSettings } from '../settings/settings';
import { artifactDigest, formatId, type ArtifactDescriptor } from '../store/serialize';
import { defineOwn } from '../utils/own-property';
import type { RunWarningKind } from './events';

// model

/** A step's key, the input digests it was computed from, and its readable components. */
export interface StepKey {
  readonly key: string;
  /**
   * What stands for the step's function: `fingerprint:<hash>` (its own code fingerprint), or
   * `version:<version>`. An executor checks it against the code it runs. (The key itself also
   * covers the codecs of the step's inputs: see {@link withInputCodecs}.)
   */
  readonly code: string;
  readonly inputDigests: readonly string[];
  /** Computed on demand: only executed steps store them. */
  readonly components: () => KeyComponents;
}

/** What computing keys needs from the run. */
export interface KeyEnvironment {
  readonly hashKey: (bytes: Uint8Array) => string;
  /** Raises a warning of the run about one step. */
  readonly warn: (kind: RunWarningKind, step: string, message: string) => void;
  /** Computes (or finds kept) the code fingerprint of a function defined at a site. */
  readonly fingerprint: (fn: Function, site: CallSite | undefined) => CodeFingerprint;
  /** The descriptor of an upstream output, once known. */
  readonly descriptorOf: (node: number, output: string) => ArtifactDescriptor | undefined;
  /** A node of the run's graph, by index (to find the codecs of a step's inputs). */
  readonly nodeOf?: (node: number) => GraphNode | undefined;
}

/**
 * Loads the value of an upstream output (for a step whose `cacheKey` asks for its inputs).
 *
 * @example
 * const inputValue: InputLoader = (ref) => loadOutput(ctx, ref.node, ref.output);
 */
export type InputLoader = (ref: OutputRef) => Promise<E.Either<StepcacheError, unknown>>;

// code fingerprints

/**
 * The fingerprints of one run (one key environment), by function: each is computed once per run,
 * so that the steps of a run sharing a function agree, and again in the next run, where an edited
 * file, an environment variable or an argument read by the code may have changed it (computing it
 * again is cheap when nothing it observed changed).
 */
const fingerprintsOfRun = new WeakMap<KeyEnvironment, WeakMap<object, CodeFingerprint>>();

const runFingerprints = (env: KeyEnvironment): WeakMap<object, CodeFingerprint> => {
  let fingerprints = fingerprintsOfRun.get(env);
  if (fingerprints === undefined) {
    fingerprints = new WeakMap();
    fingerprintsOfRun.set(env, fingerprints);
  }
  return fingerprints;
};

const warned = new Set<string>();

/**
 * The code fingerprint of a step function, computed once per function per run (per key
 * environment); warns once per step when the fingerprint is shallow or the function captures
 * variables it cannot see.
 *
 * @example
 * codeFingerprintOf(env, node).hash; // '3b9f…'
 */
export const codeFingerprintOf = (env: KeyEnvironment, node: GraphNode): CodeFingerprint => {
  const fn = node.step.fn;
  const fingerprints = runFingerprints(env);
  let fingerprint = fingerprints.get(fn);
  if (fingerprint === undefined) {
    fingerprint = env.fingerprint(fn, node.step.site);
    // A shallow fingerprint is cheap, and may cover values that change (a notebook's cells): computed each time.
    if (!fingerprint.shallow) fingerprints.set(fn, fingerprint);
  }
  // Nothing to warn of (the common case): no per-step text to build and look up.
  if (!fingerprint.shallow && fingerprint.warnings.length === 0 && fingerprint.capturedVariables.length === 0) return fingerprint;
  const once = `${node.name}\0${fingerprint.hash}\0${fingerprint.warnings.join('\0')}`;
  if (!warned.has(once)) {
    warned.add(once);
    if (fingerprint.shallow) {
      const beyondText = fingerprint.parts.some((p) => p.kind !== 'source' && p.kind !== 'shallow');
      env.warn(
        'shallow-fingerprint',
        node.name,
        beyondText
          ? `Step ${node.name}: its fingerprint is shallow, because ${fingerprint.reason ?? 'its source was not found'}; changes to that code will not be noticed (set a version, or list it in dependsOn).`
          : `Step ${node.name}: only the function's own text is fingerprinted, because ${fingerprint.reason ?? 'its source was not found'}; changes to the helpers it calls will not be noticed (set a version, or list them in dependsOn).`,
      );
    }
    for (const warning of fingerprint.warnings) env.warn('fingerprint-caveat', node.name, `Step ${node.name}: ${warning}.`);
    for (const name of fingerprint.capturedVariables) {
      env.warn('captured-variable', node.name, `Step ${node.name} uses ${name} from an enclosing function, whose value cannot be fingerprinted; pass ${name} as a parameter so that a change to it re-runs the step.`);
    }
  }
  return fingerprint;
};

/** The fingerprint of each codec object, found where the first step that stores an output with it is defined. */
const codecFingerprints = new WeakMap<object, CodeFingerprint | null>();

/**
 * A step's code fingerprint with the codecs of its inputs: an input decoded by an io-ts codec
 * brings the codec's code and the class it decodes to (member by member), whose methods the step
 * may call on the value, whatever its parameter's type says.
 *
 * @example
 * withInputCodecs(env, node, codeFingerprintOf(env, node), []).parts; // […, 'Model.predict', 'modelCodec']
 */
export const withInputCodecs = (env: KeyEnvironment, node: GraphNode, fingerprint: CodeFingerprint, ignored: readonly string[]): CodeFingerprint => {
  let result = fingerprint;
  for (const field of Object.keys(node.inputs)) {
    const ref = node.inputs[field] as OutputRef;
    if (ignored.includes(field)) continue;
    const upstream = env.nodeOf?.(ref.node);
    const format = upstream?.step.outputSpec?.[ref.output];
    if (upstream === undefined || format === undefined || format === 'auto') continue;
    let codec = codecFingerprints.get(format);
    if (codec === undefined) {
      codec = fingerprintOutputCodec(upstream.step.site, ref.output, env.hashKey) ?? null;
      codecFingerprints.set(format, codec);
    }
    if (codec !== null && !codec.shallow) result = withParts(result, codec.parts, env.hashKey);
  }
  return result;
};

// parameters

/**
 * The parameters that go into a step's key: the ones passed, with constant defaults filled in for
 * those left out, without inputs wired from upstream steps nor ignored inputs (which are never
 * encoded). A default that is not a constant is reported once per step: its value cannot be
 * known, so the key has only what is passed.
 *
 * @example
 * keyedParameters(env, node, ['logger']); // { X: [[1]], gamma: 0.001 }
 */
export const keyedParameters = (env: KeyEnvironment, node: GraphNode, ignored: readonly string[]): Readonly<Record<string, unknown>> => {
  const defaults = parameterDefaultsOf(node.step.fn);
  // Nothing to fill in, leave out or warn of (the usual step): the parameters passed, as they are
  // (a node's parameters never hold its inputs).
  if (ignored.length === 0 && defaults.known.size === 0 && defaults.unknown.size === 0) return node.parameters;
  const skip = new Set([...Object.keys(node.inputs), ...ignored]);
  for (const [name, text] of defaults.unknown) {
    if (skip.has(name)) continue;
    const once = `${node.name}\0default\0${name}\0${text}`;
    if (warned.has(once)) continue;
    warned.add(once);
    env.warn(
      'fingerprint-caveat',
      node.name,
      `Step ${node.name}: the default of ${name} (${text}) is not a constant, so its value cannot be known before the step runs; the key has ${name} only when it is passed (passing the default explicitly and leaving it out are different keys).`,
    );
  }
  return effectiveParameters(node.parameters, defaults, skip);
};

// policy components

const dependencyDigests = (env: KeyEnvironment, node: GraphNode, dependsOn: Readonly<Record<string, unknown>>): E.Either<StepcacheError, Record<string, string>> => {
  const digests: Record<string, string> = {};
  for (const [name, value] of Object.entries(dependsOn)) {
    if (typeof value === 'function') {
      const fingerprints = runFingerprints(env);
      let fingerprint = fingerprints.get(value);
      if (fingerprint === undefined) {
        fingerprint = fingerprintDependency(value, node.step.site, env.hashKey);
        fingerprints.set(value, fingerprint);
      }
      digests[name] = fingerprint.hash;
      continue;
    }
    const encoded = encodeCanonical(value);
    if (E.isLeft(encoded)) {
      return E.left(new StepcacheError('UNENCODABLE_VALUE', `dependsOn.${name}${encoded.left.path} of step ${node.name} cannot be part of a cache key: it is ${encoded.left.reason}.`, { step: node.name, field: `dependsOn.${name}` }));
    }
    digests[name] = env.hashKey(encoded.right);
  }
  return E.right(digests);
};

const fileDigests = async (files: readonly string[]): Promise<Record<string, string>> => {
  const digests: Record<string, string> = {};
  await Promise.all(
    files.map(async (file) => {
      try {
        const bytes = await fs.promises.readFile(path.resolve(file));
        const hasher = await createContentHasher();
        hasher.update(bytes);
        digests[file] = hasher.digest();
      } catch (e) {
        digests[file] = `unreadable:${(e as NodeJS.ErrnoException).code ?? 'error'}`;
      }
    }),
  );
  return digests;
};

/** What a step's `cacheKey` function receives: its parameters and the values of its inputs. */
const cacheKeyArgument = async (node: GraphNode, inputValue: InputLoader): Promise<E.Either<StepcacheError, Record<string, unknown>>> => {
  const argument: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(node.parameters)) defineOwn(argument, name, value);
  const fields = Object.entries(node.inputs);
  const values = await Promise.all(fields.map(([, ref]) => inputValue(ref)));
  for (const [i, [field]] of fields.entries()) {
    const value = values[i] as E.Either<StepcacheError, unknown>;
    if (E.isLeft(value)) return value;
    defineOwn(argument, field, value.right);
  }
  return E.right(argument);
};

const userCacheKey = async (node: GraphNode, cacheKey: (input: never) => string | Promise<string>, inputValue: InputLoader): Promise<E.Either<StepcacheError, string>> => {
  const argument = await cacheKeyArgument(node, inputValue);
  if (E.isLeft(argument)) return argument;
  try {
    const value: unknown = await cacheKey(argument.right as never);
    if (typeof value === 'string') return E.right(value);
    return E.left(new StepcacheError('INVALID_OPTIONS', `The cacheKey function of step ${node.name} must return a string, got ${typeof value}.`, { step: node.name, field: 'cacheKey' }));
  } catch (e) {
    return E.left(new StepcacheError('STEP_FAILED', `The cacheKey function of step ${node.name} failed: ${toError(e).message}`, { step: node.name, field: 'cacheKey', cause: e }));
  }
};

// the key

/**
 * The output formats of a step, by output name, as they enter its key: the same for every step
 * with one output declaration (a node's output names are its declaration's names, or the default one).
 */
const outputFormats = new WeakMap<object, Readonly<Record<string, string>>>();
let defaultOutputFormats: Readonly<Record<string, string>> | undefined;

const outputFormatsOf = (node: GraphNode): Readonly<Record<string, string>> => {
  const spec = node.step.outputSpec;
  const known = spec === undefined ? defaultOutputFormats : outputFormats.get(spec);
  if (known !== undefined) return known;
  const formats = Object.freeze(Object.fromEntries(node.outputNames.map((o) => [o, formatId(spec?.[o] ?? 'auto')])));
  if (spec === undefined) defaultOutputFormats = formats;
  else outputFormats.set(spec, formats);
  return formats;
};

const NOTHING: Readonly<Record<string, string>> = Object.freeze({});
const NONE_IGNORED: readonly string[] = Object.freeze([]);

/** `fingerprint:<hash>` of each fingerprint, made once (the steps of a run share a few). */
const codes = new WeakMap<CodeFingerprint, string>();
const codeOf = (fingerprint: CodeFingerprint): string => {
  let code = codes.get(fingerprint);
  if (code === undefined) codes.set(fingerprint, (code = `fingerprint:${fingerprint.hash}`));
  return code;
};

/** What a key is made of that needs no waiting: everything but the digests of `files` and the `cacheKey` function's result. */
interface KeyBase {
  readonly parameters: Readonly<Record<string, unknown>>;
  readonly inputs: Readonly<Record<string, string>>;
  readonly inputDigests: readonly string[];
  readonly outputs: Readonly<Record<string, string>>;
  readonly fingerprint: CodeFingerprint | undefined;
  readonly code: string;
  readonly keyCode: string;
  readonly dependsOn: Readonly<Record<string, string>>;
}

const keyBaseOf = (env: KeyEnvironment, node: GraphNode, settings: ResolvedCacheSettings): E.Either<StepcacheError, KeyBase> => {
  const ignored = settings.ignoredInputs ?? NONE_IGNORED;
  const parameters = keyedParameters(env, node, ignored);
  const inputs: Record<string, string> = {};
  const inputDigests: string[] = [];
  for (const field of Object.keys(node.inputs)) {
    const ref = node.inputs[field] as OutputRef;
    const descriptor = env.descriptorOf(ref.node, ref.output);
    if (descriptor === undefined) return E.left(new StepcacheError('ARTIFACT_UNAVAILABLE', `Input ${field} of step ${node.name} has no artifact.`, { step: node.name, field }));
    const digest = artifactDigest(descriptor);
    inputDigests.push(digest);
    if (!ignored.includes(field)) inputs[field] = digest;
  }
  const own = settings.version === undefined ? codeFingerprintOf(env, node) : undefined;
  const fingerprint = own === undefined ? undefined : withInputCodecs(env, node, own, ignored);
  const code = own === undefined ? `version:${settings.version ?? ''}` : codeOf(own);
  // In the key (and its components): the function's code with the codecs of its inputs.
  const keyCode = fingerprint === undefined ? code : codeOf(fingerprint);
  let dependsOn = NOTHING;
  if (settings.dependsOn !== undefined) {
    const digests = dependencyDigests(env, node, settings.dependsOn);
    if (E.isLeft(digests)) return digests;
    dependsOn = digests.right;
  }
  return E.right({ parameters, inputs, inputDigests, outputs: outputFormatsOf(node), fingerprint, code, keyCode, dependsOn });
};

/** The key from its base and what was waited for (the digests of `files`, the `cacheKey` function's result, when the settings have them). */
const keyFrom = (env: KeyEnvironment, node: GraphNode, settings: ResolvedCacheSettings, base: KeyBase, files: Readonly<Record<string, string>>, cacheKey: string | undefined): E.Either<StepcacheError, StepKey> => {
  const { parameters, inputs, inputDigests, outputs, fingerprint, code, keyCode, dependsOn } = base;
  const withFiles = settings.files !== undefined && settings.files.length > 0;
  const policy: Record<string, unknown> =
    settings.dependsOn === undefined && !withFiles && cacheKey === undefined
      ? NOTHING
      : { ...(settings.dependsOn === undefined ? {} : { dependsOn }), ...(withFiles ? { files } : {}), ...(cacheKey === undefined ? {} : { cacheKey }) };
  const key = computeStepKey(env.hashKey, { step: node.name, code: keyCode, parameters, inputs, outputs, settings: policy });
  if (E.isLeft(key)) {
    const { field, path: inner, reason } = key.left;
    return E.left(
      new StepcacheError(
        'UNENCODABLE_VALUE',
        `Parameter ${field}${inner} of step ${node.name} cannot be part of a cache key: it is ${reason}. If it does not change the result, it can be left out of the key instead: step(fn).withOptions({ ignoredInputs: ['${field}'] }).`,
        { step: node.name, field },
      ),
    );
  }
  const components = (): KeyComponents => ({
    code: keyCode,
    ...(fingerprint === undefined ? {} : { codeParts: fingerprint.parts }),
    parameters: Object.fromEntries(Object.entries(parameters).map(([name, value]) => [name, parameterComponent(env.hashKey, value)])),
    inputs: Object.fromEntries(
      Object.entries(node.inputs)
        .filter(([field]) => field in inputs)
        .map(([field, ref]) => [field, { digest: inputs[field] as string, step: ref.step, output: ref.output }]),
    ),
    outputs: { ...outputs },
    dependsOn: { ...dependsOn },
    files: { ...files },
    ...(cacheKey === undefined ? {} : { cacheKey }),
  });
  return E.right({ key: key.right, code, inputDigests, components });
};

/** Whether a step's key needs waiting for something: files to read, or its `cacheKey` function (which may load its inputs). */
const keyWaits = (settings: ResolvedCacheSettings): boolean => (settings.files !== undefined && settings.files.length > 0) || settings.cacheKey !== undefined;

/**
 * A step's key computed at once, as {@link stepKeyOf} computes it, when it needs no waiting
 * (no `files`, no `cacheKey` function: the usual step); `undefined` when it does.
 *
 * @example
 * const now = stepKeyNow(env, node, settings);
 * const key = now ?? (await stepKeyOf(env, node, settings, inputValue));
 */
export const stepKeyNow = (env: KeyEnvironment, node: GraphNode, settings: ResolvedCacheSettings): E.Either<StepcacheError, StepKey> | undefined => {
  if (keyWaits(settings)) return undefined;
  const base = keyBaseOf(env, node, settings);
  return E.isLeft(base) ? base : keyFrom(env, node, settings, base.right, NOTHING, undefined);
};

/**
 * Computes a step's key from what is known in the run: its upstream outputs' descriptors must be
 * known. `inputValue` is asked for the upstream values only when the step has a `cacheKey`.
 *
 * @example
 * const key = await stepKeyOf(env, node, settings, (ref) => loadOutput(ctx, ref.node, ref.output));
 * if (key._tag === 'Right') key.right.key; // 64 hex characters
 */
export const stepKeyOf = async (env: KeyEnvironment, node: GraphNode, settings: ResolvedCacheSettings, inputValue: InputLoader): Promise<E.Either<StepcacheError, StepKey>> => {
  const base = keyBaseOf(env, node, settings);
  if (E.isLeft(base)) return base;
  const files = settings.files !== undefined && settings.files.length > 0 ? await fileDigests(settings.files) : NOTHING;
  let cacheKey: string | undefined;
  if (settings.cacheKey !== undefined) {
    const value = await userCacheKey(node, settings.cacheKey, inputValue);
    if (E.isLeft(value)) return value;
    cacheKey = value.right;
  }
  return keyFrom(env, node, settings, base.right, files, cacheKey);
};
