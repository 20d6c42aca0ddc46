/**
 * Run configuration files: pipeline-wide runtime settings, runtime settings for single steps and
 * the pipeline's parameters, kept in a JSON or YAML file next to the code.
 *
 * ```yaml
 * enableCache: true
 * parameters:
 *   gamma: 0.001
 * steps:
 *   svc_trainer:
 *     enableCache: false
 * store:            # optional: the team's stores (else the environment, else the embedded store)
 *   metadata: postgres://ann@db.team:5432/ml?schema=vision
 *   artifacts: s3://ml-team-cache/stepcache?region=eu-west-1
 * ```
 *
 * A file is data, never code: it is parsed without custom tags or merge keys, with alias
 * expansion capped, and every value is checked (settings by the same validators as
 * `withOptions`, parameters as JSON) and copied into frozen plain objects before anything sees it.
 * Failures are {@link RunConfigError} values naming the file, the field and what it allows.
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import * as t from 'io-ts';
import { Composer, CST, isMap, isScalar, isSeq, Parser, YAMLParseError, type Document, type DocumentOptions, type ParseOptions, type SchemaOptions, type ToJSOptions } from 'yaml';
import { StepcacheError } from '../errors';
import type { Pipeline, PipelineOutputs } from '../pipeline/pipeline';
import { preview, validatePipelineSettings, validateSettings, type CacheSettings, type PipelineSettings } from '../settings/settings';
import { NAME_PATTERN } from '../step/step';
import { defineOwn } from '../utils/own-property';
import { isPlainObject } from '../encoding/canonical';
import { parseArtifactsUrl, parseMetadataUrl } from '../store/urls';

// model

/**
 * A JSON value: what parameters in a run config may hold.
 *
 * @example
 * const gamma: JsonValue = { gamma: 0.001, kernels: ['rbf', 'linear'] };
 */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/**
 * The settings a file may hold: every {@link CacheSettings} field that is data. `dependsOn` and
 * `cacheKey` hold code (functions, values of the program) and can only be set in code.
 *
 * @example
 * const names: readonly RunConfigSettingName[] = RUN_CONFIG_SETTING_NAMES;
 */
export type RunConfigSettingName = 'enableCache' | 'version' | 'files' | 'ignoredInputs' | 'expiresAfter' | 'refresh' | 'lockTimeout' | 'timeout';

/**
 * The setting names a run config file may use, in a fixed order.
 *
 * @example
 * RUN_CONFIG_SETTING_NAMES.includes('enableCache'); // true
 * RUN_CONFIG_SETTING_NAMES.includes('dependsOn'); // false: it is code
 */
export const RUN_CONFIG_SETTING_NAMES: readonly RunConfigSettingName[] = Object.freeze(['enableCache', 'version', 'files', 'ignoredInputs', 'expiresAfter', 'refresh', 'lockTimeout', 'timeout'] as const);

/**
 * Runtime settings read from a file.
 *
 * @example
 * const s: RunConfigSettings = { enableCache: false, expiresAfter: '7d' };
 */
export type RunConfigSettings = Pick<CacheSettings, RunConfigSettingName>;

/**
 * A decoded run configuration: frozen plain data.
 *
 * @example
 * const config: RunConfig = {
 *   source: 'configs/train.yaml',
 *   settings: { enableCache: true },
 *   steps: { svc_trainer: { enableCache: false } },
 *   parameters: { gamma: 0.001 },
 * };
 */
export interface RunConfig {
  /** Where the configuration came from (a file path, or a label), for messages. */
  readonly source: string;
  /** Runtime settings for the whole pipeline. */
  readonly settings: RunConfigSettings;
  /** Runtime settings for single steps, by step name. */
  readonly steps: Readonly<Record<string, RunConfigSettings>>;
  /** The pipeline's parameters. */
  readonly parameters: Readonly<Record<string, JsonValue>>;
  /**
   * The stores of the file's `store: { metadata, artifacts }` section, as runner options
   * (`createRunner({ ...config.store })`); absent when the file has none.
   */
  readonly store?: RunConfigStore;
}

/**
 * The `store` section of a run config, as the runner options it stands for. Each URL was checked
 * when the file was read.
 *
 * @example
 * const store: RunConfigStore = { metadataUrl: 'postgres://ann@db.team/ml', artifactsUrl: 's3://ml-team-cache/stepcache' };
 * const runner = createRunner({ ...store });
 */
export interface RunConfigStore {
  readonly metadataUrl?: string;
  readonly artifactsUrl?: string;
}

/**
 * Why a run configuration could not be used. Every message names the file; `field` is the path of
 * the field at fault (`steps.svc_trainer.enableCache`), or `''` for the file as a whole.
 *
 * - `ConfigUnreadable`: the file cannot be read, or its extension is not `.json`, `.yaml` or `.yml`.
 * - `ConfigSyntax`: the text is not valid JSON or YAML (with `line` and `column` when the parser gives them).
 * - `ConfigInvalid`: the content parsed, but a field is unknown or holds a value it does not allow.
 *
 * @example
 * const e: RunConfigError = {
 *   _tag: 'ConfigInvalid',
 *   file: 'train.yaml',
 *   field: 'steps.svc_trainer.enableCache',
 *   message: 'Invalid steps.svc_trainer.enableCache in run config train.yaml: got "yes", expected true or false.',
 * };
 */
export type RunConfigError =
  | { readonly _tag: 'ConfigUnreadable'; readonly file: string; readonly field: string; readonly message: string }
  | { readonly _tag: 'ConfigSyntax'; readonly file: string; readonly field: string; readonly message: string; readonly line?: number; readonly column?: number }
  | { readonly _tag: 'ConfigInvalid'; readonly file: string; readonly field: string; readonly message: string };

/** The formats a run config file may have, by extension. */
const FORMATS: Readonly<Record<string, 'json' | 'yaml'>> = { '.json': 'json', '.yaml': 'yaml', '.yml': 'yaml' };

/** Settings that hold code, with what they hold. */
const CODE_SETTINGS: Readonly<Record<string, string>> = {
  dependsOn: 'functions or values of your program',
  cacheKey: 'a function of the step input',
};

const TOP_LEVEL_KEYS: readonly string[] = [...RUN_CONFIG_SETTING_NAMES, 'steps', 'parameters', 'store'];

const STORE_KEYS: readonly string[] = ['metadata', 'artifacts'];

/**
 * Deeper documents are refused: no real configuration nests this far, and it keeps every later
 * step (YAML composition, validation, copying) far from the stack limit.
 */
const MAX_DEPTH = 64;

/** The most alias expansions a YAML file may need (yaml's own default, stated here on purpose). */
const MAX_ALIAS_COUNT = 100;

// constructors

const unreadable = (file: string, message: string): RunConfigError => ({ _tag: 'ConfigUnreadable', file, field: '', message });

const syntax = (file: string, message: string, position?: { readonly line: number; readonly column: number }): RunConfigError =>
  position === undefined ? { _tag: 'ConfigSyntax', file, field: '', message } : { _tag: 'ConfigSyntax', file, field: '', message, line: position.line, column: position.column };

const invalid = (file: string, field: string, message: string): RunConfigError => ({ _tag: 'ConfigInvalid', file, field, message });

// utils

/**
 * @internal A field path: `a.b` for plain names, `a["b c"]` for anything else.
 *
 * @example
 * fieldPath('steps', 'svc trainer'); // 'steps["svc trainer"]'
 */
export const fieldPath = (parent: string, key: string): string => {
  if (/^[A-Za-z_$][\w$-]*$/.test(key)) return parent === '' ? key : `${parent}.${key}`;
  return `${parent}[${JSON.stringify(key)}]`;
};

const describeValue = (value: unknown): string => {
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && !isPlainObject(value)) {
    const name: unknown = Object.getPrototypeOf(value)?.constructor?.name;
    return typeof name === 'string' && name !== '' ? `an instance of ${name}` : 'an object with a custom prototype';
  }
  return preview(value);
};

const JSON_ALLOWED = 'JSON data (null, true or false, a finite number, a string, an array or an object)';

/**
 * Copies a value into frozen plain JSON data, or names the first part that is not JSON.
 * Objects come out as plain objects whose keys are all own data properties (`__proto__` too).
 * Its depth and cycle checks are backstops: decoding runs {@link tooDeep} over the input first.
 */
const copyJson = (value: unknown, field: string, ancestors: Set<object>, depth: number): E.Either<{ readonly field: string; readonly message: string }, JsonValue> => {
  const no = (message: string) => E.left({ field, message });
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return E.right(value);
    case 'number':
      return Number.isFinite(value) ? E.right(value) : no(`got ${String(value)}, expected ${JSON_ALLOWED}`);
    case 'object':
      break;
    default:
      return no(`got ${describeValue(value)}, expected ${JSON_ALLOWED}`);
  }
  if (value === null) return E.right(null);
  if (depth >= MAX_DEPTH) return no(`nested more than ${MAX_DEPTH} levels deep; expected ${JSON_ALLOWED} of reasonable depth`);
  if (ancestors.has(value)) return no(`refers back to an enclosing value (a cycle, as a YAML alias can make); expected ${JSON_ALLOWED}`);
  if (!Array.isArray(value) && !isPlainObject(value)) return no(`got ${describeValue(value)}, expected ${JSON_ALLOWED}`);
  ancestors.add(value);
  try {
    if (Array.isArray(value)) {
      const out: JsonValue[] = [];
      for (let i = 0; i < value.length; i++) {
        const item = copyJson(value[i], `${field}[${i}]`, ancestors, depth + 1);
        if (E.isLeft(item)) return item;
        out.push(item.right);
      }
      return E.right(Object.freeze(out));
    }
    const out: Record<string, JsonValue> = {};
    for (const key of Object.keys(value)) {
      const item = copyJson(value[key], fieldPath(field, key), ancestors, depth + 1);
      if (E.isLeft(item)) return item;
      defineOwn(out, key, item.right);
    }
    return E.right(Object.freeze(out));
  } finally {
    ancestors.delete(value);
  }
};

interface Visit {
  readonly value: unknown;
  readonly depth: number;
  readonly field: string;
  readonly parent: Visit | undefined;
}

/**
 * The first place where a value nests more than {@link MAX_DEPTH} levels deep (the value itself
 * being level 1), or refers back to an enclosing value, or `undefined`. Iterative, so any depth is
 * safe to inspect. Only arrays and plain objects are entered.
 */
const tooDeep = (input: unknown): { readonly field: string; readonly cycle: boolean } | undefined => {
  const deepest = new Map<object, number>();
  const stack: Visit[] = [{ value: input, depth: 1, field: '', parent: undefined }];
  for (let visit = stack.pop(); visit !== undefined; visit = stack.pop()) {
    const { value, depth, field } = visit;
    if (typeof value !== 'object' || value === null || !(Array.isArray(value) || isPlainObject(value))) continue;
    if (depth > MAX_DEPTH) {
      // Name the cycle, if this path has one: the first value met again on the way down.
      const path: Visit[] = [];
      for (let v: Visit | undefined = visit; v !== undefined; v = v.parent) path.unshift(v);
      const met = new Set<unknown>();
      for (const v of path) {
        if (met.has(v.value)) return { field: v.field, cycle: true };
        met.add(v.value);
      }
      return { field, cycle: false };
    }
    if ((deepest.get(value) ?? 0) >= depth) continue; // already explored from at least this deep
    deepest.set(value, depth);
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) stack.push({ value: value[i], depth: depth + 1, field: `${field}[${i}]`, parent: visit });
    } else {
      for (const key of Object.keys(value)) stack.push({ value: value[key], depth: depth + 1, field: fieldPath(field, key), parent: visit });
    }
  }
  return undefined;
};

/** Checks the keys of one settings object: unknown keys and settings that are code are refused. */
const checkKeys = (object: Record<string, unknown>, allowed: readonly string[], parent: string, source: string): E.Either<RunConfigError, void> => {
  for (const key of Object.keys(object)) {
    if (allowed.includes(key)) continue;
    const field = fieldPath(parent, key);
    const code = Object.hasOwn(CODE_SETTINGS, key) ? CODE_SETTINGS[key] : undefined;
    if (code !== undefined) {
      return E.left(
        invalid(source, field, `${field} in run config ${source} cannot come from a file: ${key} holds code (${code}). Set it where the step or pipeline is defined, e.g. step(fn).withOptions({ ${key} }) or pipeline.withOptions({ ${key} }).`),
      );
    }
    return E.left(invalid(source, field, `Unknown key ${preview(key)}${parent === '' ? '' : ` in ${parent}`} of run config ${source}; allowed keys: ${allowed.join(', ')}.`));
  }
  return E.right(undefined);
};

/** Picks the file settings of an object that passed a validator, copying arrays. */
const settingsOf = (valid: CacheSettings): RunConfigSettings => {
  const out: Record<string, unknown> = {};
  for (const name of RUN_CONFIG_SETTING_NAMES) {
    const value = valid[name];
    if (value !== undefined) out[name] = Array.isArray(value) ? Object.freeze([...(value as readonly string[])]) : value;
  }
  return Object.freeze(out) as RunConfigSettings;
};

// decoding

/** The structure of a run config, below the checks of its keys: io-ts decides the shapes. */
const RunConfigShape = t.partial({
  steps: t.record(t.string, t.UnknownRecord),
  parameters: t.UnknownRecord,
});

const shapeMessage = (source: string, errors: t.Errors): { readonly field: string; readonly message: string } => {
  const first = errors[0];
  const keys = (first?.context ?? []).map((c) => c.key).filter((k) => k !== '');
  const field = keys.reduce(fieldPath, '');
  const got = describeValue(first?.value);
  const allowed =
    keys.length === 1 && keys[0] === 'steps'
      ? 'an object of settings by step name, like { svc_trainer: { enableCache: false } }'
      : keys[0] === 'steps'
        ? `an object of settings, like { enableCache: false }; allowed keys: ${RUN_CONFIG_SETTING_NAMES.join(', ')}`
        : keys[0] === 'parameters'
          ? 'an object of parameter values, like { gamma: 0.001 }'
          : 'an object';
  return { field, message: `Invalid ${field} in run config ${source}: got ${got}, expected ${allowed}.` };
};

const decode = (input: unknown, source: string): E.Either<RunConfigError, RunConfig> => {
  if (!t.UnknownRecord.is(input) || Array.isArray(input)) {
    return E.left(invalid(source, '', `Run config ${source} must be an object like { enableCache: true, parameters: { gamma: 0.001 }, steps: { svc_trainer: { enableCache: false } } }, got ${describeValue(input)}.`));
  }
  const deep = tooDeep(input);
  if (deep !== undefined) {
    const why = deep.cycle ? 'refers back to a value that encloses it (a cycle, as a YAML alias can make)' : `nests more than ${MAX_DEPTH} levels deep`;
    return E.left(invalid(source, deep.field, `Invalid ${deep.field} in run config ${source}: it ${why}; a run config holds plain, shallow data.`));
  }
  const keys = checkKeys(input, TOP_LEVEL_KEYS, '', source);
  if (E.isLeft(keys)) return keys;

  const shape = RunConfigShape.decode(input);
  if (E.isLeft(shape)) {
    const { field, message } = shapeMessage(source, shape.left);
    return E.left(invalid(source, field, message));
  }

  const where = `run config ${source}`;
  const top: Record<string, unknown> = {};
  for (const name of RUN_CONFIG_SETTING_NAMES) if (Object.hasOwn(input, name)) top[name] = input[name];
  const settings = validatePipelineSettings(top, where);
  if (E.isLeft(settings)) {
    const field = settings.left.field;
    return E.left(invalid(source, field, `Invalid ${field} in ${where}: ${settings.left.reason}.`));
  }

  const steps: Record<string, RunConfigSettings> = {};
  for (const [name, stepSettings] of Object.entries(shape.right.steps ?? {})) {
    const stepField = fieldPath('steps', name);
    if (name === '__proto__' || !NAME_PATTERN.test(name)) {
      return E.left(
        invalid(source, stepField, `Invalid step name ${preview(name)} under steps in ${where}: expected the name of a step of the pipeline (letters, digits, "_", "." or "-", starting with a letter or "_"; not __proto__).`),
      );
    }
    const stepKeys = checkKeys(stepSettings, RUN_CONFIG_SETTING_NAMES, stepField, source);
    if (E.isLeft(stepKeys)) return stepKeys;
    const stepWhere = `step ${name} in ${where}`;
    const valid = validateSettings(stepSettings, stepWhere);
    if (E.isLeft(valid)) {
      const field = `${stepField}.${valid.left.field}`;
      return E.left(invalid(source, field, `Invalid ${field} in ${where}: ${valid.left.reason}.`));
    }
    defineOwn(steps, name, settingsOf(valid.right));
  }

  let parameters: Readonly<Record<string, JsonValue>> = Object.freeze({});
  if (shape.right.parameters !== undefined) {
    const copied = copyJson(shape.right.parameters, 'parameters', new Set(), 0);
    if (E.isLeft(copied)) return E.left(invalid(source, copied.left.field, `Invalid ${copied.left.field} in ${where}: ${copied.left.message}.`));
    parameters = copied.right as Readonly<Record<string, JsonValue>>;
  }

  const store = decodeStore(input['store'], source);
  if (E.isLeft(store)) return store;

  return E.right(Object.freeze({ source, settings: settingsOf(settings.right), steps: Object.freeze(steps), parameters, ...(store.right === undefined ? {} : { store: store.right }) }));
};

/** The `store` section: an object of URLs, each checked by the parser of its store. */
const decodeStore = (section: unknown, source: string): E.Either<RunConfigError, RunConfigStore | undefined> => {
  if (section === undefined) return E.right(undefined);
  if (!isPlainObject(section)) {
    return E.left(invalid(source, 'store', `Invalid store in run config ${source}: got ${describeValue(section)}, expected an object like { metadata: 'postgres://...', artifacts: 's3://bucket/prefix' }.`));
  }
  const keys = checkKeys(section, STORE_KEYS, 'store', source);
  if (E.isLeft(keys)) return keys;
  const out: { metadataUrl?: string; artifactsUrl?: string } = {};
  for (const [key, parse, option] of [
    ['metadata', parseMetadataUrl, 'metadataUrl'],
    ['artifacts', parseArtifactsUrl, 'artifactsUrl'],
  ] as const) {
    const value = section[key];
    if (value === undefined) continue;
    const field = `store.${key}`;
    if (typeof value !== 'string') return E.left(invalid(source, field, `Invalid ${field} in run config ${source}: got ${describeValue(value)}, expected a URL.`));
    const parsed = parse(value, `${field} in run config ${source}`);
    if (E.isLeft(parsed)) return E.left(invalid(source, field, parsed.left.message));
    out[option] = value;
  }
  return E.right(Object.freeze(out));
};

/**
 * Decodes a parsed run configuration (the value JSON.parse or a YAML parser returned): io-ts
 * checks the structure, the settings validators check every setting, parameters must be JSON.
 * Unknown keys, settings that are code (`dependsOn`, `cacheKey`) and invalid values are refused
 * with a message naming `source`, the field path and what the field allows. Never throws.
 *
 * @example
 * decodeRunConfig({ steps: { svc_trainer: { enableCache: 'yes' } } }, 'train.yaml');
 * // Left({ _tag: 'ConfigInvalid', file: 'train.yaml', field: 'steps.svc_trainer.enableCache',
 * //   message: 'Invalid steps.svc_trainer.enableCache in run config train.yaml: got "yes", expected true or false.' })
 * decodeRunConfig({ parameters: { gamma: 0.001 } }, 'train.yaml');
 * // Right({ source: 'train.yaml', settings: {}, steps: {}, parameters: { gamma: 0.001 } })
 */
export const decodeRunConfig = (input: unknown, source: string): E.Either<RunConfigError, RunConfig> => {
  try {
    return decode(input, source);
  } catch (e) {
    // Only exotic inputs get here (a getter or a proxy that throws); files never produce them.
    return E.left(invalid(source, '', `Run config ${source} could not be read as data: ${e instanceof Error ? e.message : String(e)}.`));
  }
};

// parsing

/**
 * Options that keep YAML a data format: the YAML 1.2 core schema only (no `!!js/function`, no
 * `!!binary`, no timestamps), no custom tags, no `<<` merge keys, string keys only, unique keys,
 * one document, and alias expansion capped against "billion laughs" documents.
 */
const YAML_OPTIONS: ParseOptions & DocumentOptions & SchemaOptions = {
  version: '1.2',
  schema: 'core',
  customTags: [],
  resolveKnownTags: false,
  merge: false,
  stringKeys: true,
  // yaml compares each key with every earlier key of its map (quadratic: 10 s at 40,000 keys);
  // duplicates are found in one pass instead, by firstDuplicateKey.
  uniqueKeys: false,
  strict: true,
  intAsBigInt: false,
  logLevel: 'error',
};

const TO_JS_OPTIONS: ToJSOptions = { maxAliasCount: MAX_ALIAS_COUNT, mapAsMap: false };

/** Line and column (1-based) of an offset in a text. */
const positionAt = (text: string, offset: number): { readonly line: number; readonly column: number } => {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < Math.min(offset, text.length); i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
};

const at = (position: { readonly line: number; readonly column: number } | undefined): string => (position === undefined ? '' : ` at line ${position.line}, column ${position.column}`);

const parseJson = (text: string, source: string): E.Either<RunConfigError, unknown> => {
  try {
    // JSON.parse defines every key as an own data property, `__proto__` included.
    return E.right(JSON.parse(text));
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const offset = /at position (\d+)/.exec(message)?.[1];
    const position = offset === undefined ? undefined : positionAt(text, Number(offset));
    return E.left(syntax(source, `Invalid JSON in ${source}${at(position)}: ${message.replace(/ in JSON at position \d+.*$/s, '')}.`, position));
  }
};

/**
 * The offset of the first collection nested more than {@link MAX_DEPTH} levels deep in a YAML
 * text, from yaml's concrete syntax tree (built without recursion), or `undefined`. Checked before
 * composing: yaml composes recursively, and a deeply nested text exhausts the stack there, which on
 * Node 20 can abort the whole process when V8 happens to compile a regular expression at that point.
 */
const yamlTooDeepAt = (tokens: readonly CST.Token[]): number | undefined => {
  const stack: Array<{ readonly token: CST.Token; readonly depth: number }> = [];
  for (const token of tokens) if (token.type === 'document' && token.value !== undefined) stack.push({ token: token.value, depth: 1 });
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const { token, depth } = next;
    if (!CST.isCollection(token)) continue;
    if (depth > MAX_DEPTH) return token.offset;
    for (const item of token.items) {
      if (item.key !== undefined && item.key !== null) stack.push({ token: item.key, depth: depth + 1 });
      if (item.value !== undefined) stack.push({ token: item.value, depth: depth + 1 });
    }
  }
  return undefined;
};

/**
 * The offset of the first key (in the text) that repeats an earlier key of its map, or `undefined`:
 * one pass over the composed document with a set per map, without recursion.
 */
const firstDuplicateKey = (doc: Document): number | undefined => {
  let first: number | undefined;
  const stack: unknown[] = [doc.contents];
  for (let node = stack.pop(); stack.length > 0 || node !== undefined; node = stack.pop()) {
    if (isSeq(node)) for (const item of node.items) stack.push(item);
    if (!isMap(node)) continue;
    const seen = new Set<unknown>();
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? pair.key.value : pair.key;
      if (seen.has(key)) {
        const offset = isScalar(pair.key) ? pair.key.range?.[0] : undefined;
        if (offset !== undefined && (first === undefined || offset < first)) first = offset;
      }
      seen.add(key);
      stack.push(pair.value);
    }
  }
  return first;
};

const parseYaml = (text: string, source: string): E.Either<RunConfigError, unknown> => {
  let doc: Document.Parsed | undefined;
  try {
    // The text is parsed once: its syntax tree is checked for depth, then composed.
    const tokens = Array.from(new Parser().parse(text));
    const deepAt = yamlTooDeepAt(tokens);
    if (deepAt !== undefined) {
      const position = positionAt(text, deepAt);
      return E.left(syntax(source, `Invalid YAML in ${source}${at(position)}: nested more than ${MAX_DEPTH} levels deep; a run config holds shallow data.`, position));
    }
    for (const composed of new Composer(YAML_OPTIONS).compose(tokens, true, text.length)) {
      if (doc === undefined) doc = composed;
      else {
        doc.errors.push(new YAMLParseError([composed.range[0], composed.range[1]], 'MULTIPLE_DOCS', 'Source contains multiple documents, and a run config is one'));
        break;
      }
    }
  } catch (e) {
    return E.left(syntax(source, `Invalid YAML in ${source}: ${e instanceof Error ? e.message : String(e)}.`));
  }
  if (doc === undefined) return E.right({});
  // Warnings are errors here: an unresolved tag would otherwise turn silently into a string.
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem !== undefined) {
    const position = positionAt(text, problem.pos[0]);
    const reason = problem.message.replace(/ at line \d+, column \d+:?[\s\S]*$/, '');
    return E.left(syntax(source, `Invalid YAML in ${source}${at(position)}: ${reason}${problem.code === 'TAG_RESOLVE_FAILED' ? ' (tags are not allowed in run config files)' : ''}.`, position));
  }
  const duplicateAt = firstDuplicateKey(doc);
  if (duplicateAt !== undefined) {
    const position = positionAt(text, duplicateAt);
    return E.left(syntax(source, `Invalid YAML in ${source}${at(position)}: Map keys must be unique.`, position));
  }
  if (doc.contents === null) return E.right({}); // an empty file, or comments only
  try {
    return E.right(doc.toJS(TO_JS_OPTIONS));
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (/alias/i.test(message)) {
      return E.left(syntax(source, `Invalid YAML in ${source}: its aliases expand too much (${message}; at most ${MAX_ALIAS_COUNT} alias expansions are allowed).`));
    }
    return E.left(syntax(source, `Invalid YAML in ${source}: ${message}.`));
  }
};

/**
 * Parses and decodes the text of a run config file in the given format. Never throws.
 *
 * @example
 * parseRunConfigText('parameters:\n  gamma: 0.001\n', 'yaml', 'train.yaml');
 * // Right({ source: 'train.yaml', settings: {}, steps: {}, parameters: { gamma: 0.001 } })
 * parseRunConfigText('enableCache: [', 'yaml', 'train.yaml');
 * // Left({ _tag: 'ConfigSyntax', file: 'train.yaml', line: 1, ... })
 */
export const parseRunConfigText = (text: string, format: 'json' | 'yaml', source: string): E.Either<RunConfigError, RunConfig> => {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const parsed = format === 'json' ? parseJson(body, source) : parseYaml(body, source);
  return E.isLeft(parsed) ? parsed : decodeRunConfig(parsed.right, source);
};

// loading

/**
 * Reads a run config file: `.json` as JSON, `.yaml` or `.yml` as YAML (decided by the extension),
 * UTF-8 only. Resolves to a {@link RunConfigError} for any problem; never rejects.
 *
 * @example
 * const config = await loadRunConfig('configs/train.yaml');
 * if (E.isLeft(config)) console.error(config.left.message);
 */
export const loadRunConfig = async (file: string): Promise<E.Either<RunConfigError, RunConfig>> => {
  const extension = path.extname(file).toLowerCase();
  const format = Object.hasOwn(FORMATS, extension) ? FORMATS[extension] : undefined;
  if (format === undefined) {
    return E.left(unreadable(file, `Run config ${file} has ${extension === '' ? 'no extension' : `the extension ${extension}`}; use one of ${Object.keys(FORMATS).join(', ')}.`));
  }
  let bytes: Buffer;
  try {
    bytes = await fs.promises.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'it does not exist' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : `${code ?? (e instanceof Error ? e.message : String(e))}`;
    return E.left(unreadable(file, `Run config ${file} cannot be read: ${why}.`));
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return E.left(unreadable(file, `Run config ${file} is not UTF-8 text.`));
  }
  return parseRunConfigText(text, format, file);
};

/**
 * {@link loadRunConfig} for the Promise API: resolves to the config, or rejects with a
 * `StepcacheError` of code `INVALID_OPTIONS` whose message names the file and the field.
 *
 * @example
 * const config = await readRunConfig('configs/train.yaml');
 * const { pipeline, params } = applyRunConfig(trainingPipeline, config);
 * await createRunner().run(pipeline, params);
 */
export const readRunConfig = async (file: string): Promise<RunConfig> => {
  const config = await loadRunConfig(file);
  if (E.isRight(config)) return config.right;
  const { message, field } = config.left;
  throw new StepcacheError('INVALID_OPTIONS', message, field === '' ? {} : { field });
};

// applying

/**
 * Applies a run config to a pipeline: its settings and per-step settings become the pipeline's
 * run config layer (`pipeline.withRunConfig`), above every step setting and below the runtime
 * options of `pipeline.withOptions`; its parameters are returned for `runner.run`. The parameters are
 * only known to be JSON here; the pipeline's definition receives them as they are. Step names are
 * checked against the compiled pipeline when the run starts (an unknown one is an
 * `INVALID_OPTIONS` error naming `steps.<name>`).
 *
 * @example
 * const { pipeline, params } = applyRunConfig(trainingPipeline, await readRunConfig('train.yaml'));
 * const run = await createRunner().run(pipeline, params);
 */
export const applyRunConfig = <P, O extends PipelineOutputs | void>(pipe: Pipeline<P, O>, config: RunConfig): { readonly pipeline: Pipeline<P, O>; readonly params: P } => {
  const options: PipelineSettings = Object.keys(config.steps).length === 0 ? config.settings : { ...config.settings, steps: config.steps };
  return { pipeline: pipe.withRunConfig(options), params: config.parameters as unknown as P };
};
