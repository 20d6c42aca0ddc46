/**
 * Cache settings, their validation at the edge, and the pure functions of their precedence:
 * {@link settingsLayers} orders the layers (pipeline defaults < step settings < run config file <
 * runtime options < runtime options for one step), {@link resolveSettings} resolves them, and
 * {@link decideCache} decides from the resolved settings and the key lookup; above every layer,
 * a changed cache key always misses.
 *
 * @packageDocumentation
 */
import * as E from 'fp-ts/Either';
import * as t from 'io-ts';
import { defineOwn } from '../utils/own-property';
import { parseDuration } from '../format/duration';
import { preview } from '../format/preview';

// preview moved to the format module; the runner and the run configuration still import it from here
export { preview };

// model

/**
 * A step's cache policy. Every field may be set at any precedence layer; `undefined` means
 * "not set here".
 *
 * @example
 * const policy: CacheSettings = { version: '2', files: ['data/labels.csv'], expiresAfter: '7d' };
 */
export interface CacheSettings {
  /**
   * Whether a step may be served from the cache.
   * @default true
   */
  readonly enableCache?: boolean | undefined;
  /**
   * A manual code version that replaces the code fingerprint: bump it when the step's behaviour
   * changes; leave it when only its text does.
   * @example { version: '2024-06-refit' }
   */
  readonly version?: string | undefined;
  /**
   * Extra functions or values the result depends on, by name: functions are fingerprinted like
   * step code, values are hashed canonically.
   * @example { dependsOn: { tokenizer, vocabulary } }
   */
  readonly dependsOn?: Readonly<Record<string, unknown>> | undefined;
  /**
   * Paths (relative to the working directory) whose contents go into the key.
   * @example { files: ['data/train.csv'] }
   */
  readonly files?: readonly string[] | undefined;
  /**
   * Inputs that do not go into the key (a logger handle, a progress sink).
   * @example { ignoredInputs: ['progress'] }
   */
  readonly ignoredInputs?: readonly string[] | undefined;
  /**
   * Entries older than this are misses: milliseconds, or a duration like `'90s'`, `'30m'`, `'12h'`, `'7d'`.
   * @example { expiresAfter: '1h' }
   */
  readonly expiresAfter?: number | string | undefined;
  /**
   * A function of the step's input whose result (a string) goes into the key: an ETag, a table's
   * last-modified time, anything external the step reads.
   * @example { cacheKey: async () => (await fetchHead(url)).etag }
   */
  readonly cacheKey?: ((input: never) => string | Promise<string>) | undefined;
  /**
   * Execute even on a hit, and overwrite the entry.
   * @default false
   */
  readonly refresh?: boolean | undefined;
  /**
   * How long a step waits at most for its key's lock while another process executes the same key:
   * milliseconds, or a duration like `'90s'`, `'30m'`. Past it, the step fails with `LOCK_TIMEOUT`
   * naming the lock and its holder. Not part of the key.
   * @default the lock's own bound (10 minutes for the embedded file lock)
   * @example { lockTimeout: '2m' }
   */
  readonly lockTimeout?: number | string | undefined;
  /**
   * How long a step may run at most: milliseconds, or a duration like `'90s'`, `'30m'`. Past it,
   * the step fails with `STEP_TIMEOUT` naming the step and the limit, its downstream steps are
   * skipped, and nothing is cached for it. The step's promise is abandoned, not stopped: a step
   * that runs synchronously (a tight loop) cannot be interrupted, and its timeout is seen only
   * when it returns. Not part of the key.
   * @default no limit
   * @example { timeout: '15m' }
   */
  readonly timeout?: number | string | undefined;
  /**
   * How many more times a failing step is tried before it fails: a whole number, 0 or more. On a
   * queue each try is a new attempt of the job (on any worker), the pauses doubling from 1 second;
   * in-process the step is called again after 100 ms, 200 ms, 400 ms... Failures another try
   * cannot fix (invalid options, a code mismatch, outputs that cannot be stored, a timeout) fail
   * at once. Not part of the key.
   * @default 0
   * @example { retries: 2 }
   */
  readonly retries?: number | undefined;
}

/**
 * The names of the settings.
 *
 * @example
 * const name: CacheSettingName = 'expiresAfter';
 */
export type CacheSettingName = keyof CacheSettings;

/** Every setting's name, in a fixed order. */
export const CACHE_SETTING_NAMES: readonly CacheSettingName[] = ['enableCache', 'version', 'dependsOn', 'files', 'ignoredInputs', 'expiresAfter', 'cacheKey', 'refresh', 'lockTimeout', 'timeout', 'retries'];

/**
 * The resolved settings: defaults filled in where they exist.
 *
 * @example
 * const resolved: ResolvedCacheSettings = resolveSettings(settingsLayers({ pipelineDefaults: {}, stepSettings: {}, runConfig: {}, runtime: {}, stepName: 'train' })).settings;
 * resolved.enableCache; // true
 */
export type ResolvedCacheSettings = Omit<CacheSettings, 'enableCache' | 'refresh' | 'expiresAfter' | 'lockTimeout' | 'timeout' | 'retries'> & {
  readonly enableCache: boolean;
  readonly refresh: boolean;
  readonly retries: number;
  /** In milliseconds. */
  readonly expiresAfter?: number | undefined;
  /** In milliseconds. */
  readonly lockTimeout?: number | undefined;
  /** In milliseconds. */
  readonly timeout?: number | undefined;
};

/**
 * Settings given for a whole pipeline (as its defaults, or at run time), optionally with
 * settings for single steps by name.
 *
 * @example
 * trainingPipeline.withOptions({ enableCache: true, steps: { svc_trainer: { refresh: true } } });
 */
export interface PipelineSettings extends CacheSettings {
  readonly steps?: Readonly<Record<string, CacheSettings>> | undefined;
}

/**
 * The places settings come from, lowest precedence first: the pipeline's defaults (with its
 * defaults for the one step), the step's own settings, the run config file (with its settings for
 * the one step), the runtime options of the pipeline, and the runtime options for that one step.
 *
 * @example
 * const order: readonly SettingsLayerName[] = SETTINGS_LAYERS;
 */
export type SettingsLayerName = 'pipeline' | 'step' | 'runConfig' | 'runtime' | 'runtimeStep';

/**
 * The layers in precedence order, lowest first.
 *
 * @example
 * SETTINGS_LAYERS; // ['pipeline', 'step', 'runConfig', 'runtime', 'runtimeStep']
 */
export const SETTINGS_LAYERS: readonly SettingsLayerName[] = Object.freeze(['pipeline', 'step', 'runConfig', 'runtime', 'runtimeStep'] as const);

/**
 * One layer of settings; a field left `undefined` leaves the decision to lower layers.
 *
 * @example
 * const layer: SettingsLayer = { layer: 'step', settings: { enableCache: false } };
 */
export interface SettingsLayer {
  readonly layer: SettingsLayerName;
  readonly settings: CacheSettings;
}

/**
 * Where a resolved setting came from: a layer, or the built-in default.
 *
 * @example
 * const source: SettingSource = 'runtimeStep';
 */
export type SettingSource = SettingsLayerName | 'default';

/** The defaults of the settings that have one. */
export const DEFAULT_CACHE_SETTINGS: Pick<ResolvedCacheSettings, 'enableCache' | 'refresh' | 'retries'> = Object.freeze({ enableCache: true, refresh: false, retries: 0 });

/**
 * What the cache knows about a step's key: an intact entry exists for it (and how old it is), or not.
 *
 * @example
 * const lookup: CacheLookup = { _tag: 'Hit', ageMs: 1200 };
 */
export type CacheLookup = { readonly _tag: 'Hit'; readonly ageMs: number } | { readonly _tag: 'Miss' };

/**
 * The decision for one step, and which layer made it. `decidedBy: 'key'` means the key itself
 * decided: no intact entry exists for it.
 *
 * @example
 * const d: CacheDecision = { _tag: 'UseCache', decidedBy: 'default' };
 */
export type CacheDecision =
  | { readonly _tag: 'UseCache'; readonly decidedBy: SettingSource }
  | { readonly _tag: 'Execute'; readonly reason: 'cache-disabled'; readonly decidedBy: SettingSource }
  | { readonly _tag: 'Execute'; readonly reason: 'refresh'; readonly decidedBy: SettingSource }
  | { readonly _tag: 'Execute'; readonly reason: 'expired'; readonly decidedBy: SettingSource; readonly ageMs: number; readonly expiresAfterMs: number }
  | { readonly _tag: 'Execute'; readonly reason: 'no-entry'; readonly decidedBy: 'key' };

// resolution

/**
 * Resolved settings, and the layer each one came from.
 *
 * @example
 * const r: SettingsResolution = resolveSettings([{ layer: 'runtime', settings: { refresh: true } }]);
 * r.sources.refresh; // 'runtime'
 */
export interface SettingsResolution {
  readonly settings: ResolvedCacheSettings;
  readonly sources: { readonly [K in CacheSettingName]: SettingSource };
}

/**
 * Where one step's settings come from, as they are given: a pipeline's settings objects and the
 * step's own. Each pipeline-level object may hold settings for single steps under `steps`.
 *
 * @example
 * const sources: StepSettingsSources = { pipelineDefaults: {}, stepSettings: { version: '2' }, runConfig: {}, runtime: { refresh: true }, stepName: 'svc_trainer' };
 */
export interface StepSettingsSources {
  readonly pipelineDefaults: PipelineSettings;
  readonly stepSettings: CacheSettings;
  readonly runConfig: PipelineSettings;
  readonly runtime: PipelineSettings;
  readonly stepName: string;
}

/**
 * The order of precedence, as one pure function: one step's settings layers, lowest first. The
 * pipeline's defaults for one step beat its defaults for every step within the `pipeline` layer,
 * and likewise within `runConfig`; runtime settings for one step are a layer of their own, above all.
 *
 * @example
 * settingsLayers({ pipelineDefaults: {}, stepSettings: { enableCache: false }, runConfig: {}, runtime: { enableCache: true }, stepName: 'a' })
 *   .map((l) => l.layer); // ['pipeline', 'step', 'runConfig', 'runtime', 'runtimeStep']
 */
export const settingsLayers = (sources: StepSettingsSources): readonly SettingsLayer[] => {
  const { pipelineDefaults, stepSettings, runConfig, runtime, stepName } = sources;
  return Object.freeze([
    { layer: 'pipeline', settings: forStep(pipelineDefaults, stepName) },
    { layer: 'step', settings: stepSettings },
    { layer: 'runConfig', settings: forStep(runConfig, stepName) },
    { layer: 'runtime', settings: runtime },
    { layer: 'runtimeStep', settings: settingsForStep(runtime.steps, stepName) },
  ] satisfies SettingsLayer[]);
};

/** Pipeline-level settings for one step: its own settings under `steps` beat those for every step. */
const forStep = (settings: PipelineSettings, stepName: string): CacheSettings => {
  const own = settingsForStep(settings.steps, stepName);
  return own === NO_SETTINGS ? settings : mergeSettings(settings, own);
};

/**
 * Resolves settings over ordered layers: for every field, the last layer that defines it wins;
 * `undefined` never overrides. Also reports which layer each field came from.
 *
 * @example
 * resolveSettings([
 *   { layer: 'pipeline', settings: { enableCache: false } },
 *   { layer: 'step', settings: { enableCache: true } },
 * ]).sources.enableCache; // 'step'
 */
export const resolveSettings = (layers: readonly SettingsLayer[]): SettingsResolution => {
  const values: Record<string, unknown> = {};
  const sources: Record<string, SettingSource> = {};
  for (const name of CACHE_SETTING_NAMES) sources[name] = 'default';
  for (const { layer, settings } of layers) {
    for (const name of CACHE_SETTING_NAMES) {
      const value = settings[name];
      if (value !== undefined) {
        values[name] = value;
        sources[name] = layer;
      }
    }
  }
  const resolved = {
    ...values,
    enableCache: (values['enableCache'] as boolean | undefined) ?? DEFAULT_CACHE_SETTINGS.enableCache,
    refresh: (values['refresh'] as boolean | undefined) ?? DEFAULT_CACHE_SETTINGS.refresh,
    retries: (values['retries'] as number | undefined) ?? DEFAULT_CACHE_SETTINGS.retries,
    expiresAfter: parseDuration(values['expiresAfter']),
    lockTimeout: parseDuration(values['lockTimeout']),
    timeout: parseDuration(values['timeout']),
  } as ResolvedCacheSettings;
  return { settings: resolved, sources: sources as SettingsResolution['sources'] };
};

/**
 * The cache decision as one pure function: from a step's resolved settings (see
 * {@link resolveSettings}) and the key lookup, whether the step runs or is served from cache, and
 * who decided. Caching disabled, then refresh, then a miss, then expiry; only what is left is a
 * hit. A miss always executes, whatever the settings.
 *
 * @example
 * decideCache(resolveSettings([{ layer: 'runtime', settings: { enableCache: false } }]), { _tag: 'Hit', ageMs: 0 });
 * // { _tag: 'Execute', reason: 'cache-disabled', decidedBy: 'runtime' }
 */
export const decideCache = (resolved: SettingsResolution, lookup: CacheLookup): CacheDecision => {
  const { settings, sources } = resolved;
  if (!settings.enableCache) return { _tag: 'Execute', reason: 'cache-disabled', decidedBy: sources.enableCache };
  if (settings.refresh) return { _tag: 'Execute', reason: 'refresh', decidedBy: sources.refresh };
  if (lookup._tag === 'Miss') return { _tag: 'Execute', reason: 'no-entry', decidedBy: 'key' };
  if (settings.expiresAfter !== undefined && lookup.ageMs > settings.expiresAfter) {
    return { _tag: 'Execute', reason: 'expired', decidedBy: sources.expiresAfter, ageMs: lookup.ageMs, expiresAfterMs: settings.expiresAfter };
  }
  return { _tag: 'UseCache', decidedBy: sources.enableCache };
};

/**
 * Merges two settings objects: fields of `later` that are defined win.
 *
 * @example
 * mergeSettings({ enableCache: false }, { version: '2' }); // { enableCache: false, version: '2' }
 */
export const mergeSettings = (earlier: CacheSettings, later: CacheSettings): CacheSettings => {
  const merged: Record<string, unknown> = {};
  for (const name of CACHE_SETTING_NAMES) {
    const value = later[name] ?? earlier[name];
    if (value !== undefined) merged[name] = value;
  }
  return Object.freeze(merged) as CacheSettings;
};

/**
 * Merges pipeline-level settings, step by step for the per-step part.
 *
 * @example
 * mergePipelineSettings({ steps: { a: { refresh: true } } }, { steps: { a: { version: '2' } } });
 * // { steps: { a: { refresh: true, version: '2' } } }
 */
export const mergePipelineSettings = (earlier: PipelineSettings, later: PipelineSettings): PipelineSettings => {
  const merged = mergeSettings(earlier, later) as PipelineSettings & { steps?: Record<string, CacheSettings> };
  const names = new Set([...Object.keys(earlier.steps ?? {}), ...Object.keys(later.steps ?? {})]);
  if (names.size === 0) return merged;
  const steps: Record<string, CacheSettings> = {};
  for (const name of names) defineOwn(steps, name, mergeSettings(settingsForStep(earlier.steps, name), settingsForStep(later.steps, name)));
  return Object.freeze({ ...merged, steps: Object.freeze(steps) });
};

/**
 * The settings given for one step by name under `steps` (own entries only: a step may be called `toString`).
 *
 * @example
 * settingsForStep({ svc_trainer: { refresh: true } }, 'svc_trainer'); // { refresh: true }
 */
export const settingsForStep = (steps: Readonly<Record<string, CacheSettings>> | undefined, name: string): CacheSettings =>
  steps !== undefined && Object.hasOwn(steps, name) ? (steps[name] as CacheSettings) : NO_SETTINGS;

const NO_SETTINGS: CacheSettings = Object.freeze({});

// validation at the edge

const optional = <C extends t.Mixed>(codec: C) => t.union([codec, t.undefined]);

const DurationCodec = new t.Type<number | string, number | string, unknown>(
  'Duration',
  (u): u is number | string => parseDuration(u) !== undefined,
  (u, c) => (parseDuration(u) !== undefined ? t.success(u as number | string) : t.failure(u, c)),
  t.identity,
);

/** The longest wait a timer (and a lock's bound) can hold: 2^31 - 1 ms, about 24.8 days. */
const MAX_WAIT_MS = 2 ** 31 - 1;
const isWaitBound = (u: unknown): boolean => {
  const ms = parseDuration(u);
  return ms !== undefined && ms > 0 && ms <= MAX_WAIT_MS;
};

const WaitBoundCodec = new t.Type<number | string, number | string, unknown>(
  'WaitBound',
  (u): u is number | string => isWaitBound(u),
  (u, c) => (isWaitBound(u) ? t.success(u as number | string) : t.failure(u, c)),
  t.identity,
);

const NonEmptyString = new t.Type<string, string, unknown>(
  'NonEmptyString',
  (u): u is string => typeof u === 'string' && u.length > 0,
  (u, c) => (typeof u === 'string' && u.length > 0 ? t.success(u) : t.failure(u, c)),
  t.identity,
);

/** The most retries a step may ask for: enough for any flaky service, few enough that a typo (1e9) is refused. */
const MAX_RETRIES = 100;

const RetriesCodec = new t.Type<number, number, unknown>(
  'Retries',
  (u): u is number => Number.isInteger(u) && (u as number) >= 0 && (u as number) <= MAX_RETRIES,
  (u, c) => (Number.isInteger(u) && (u as number) >= 0 && (u as number) <= MAX_RETRIES ? t.success(u as number) : t.failure(u, c)),
  t.identity,
);

const FunctionCodec = new t.Type<(input: never) => string | Promise<string>, unknown, unknown>(
  'Function',
  (u): u is (input: never) => string => typeof u === 'function',
  (u, c) => (typeof u === 'function' ? t.success(u as (input: never) => string) : t.failure(u, c)),
  t.identity,
);

const PlainRecord = new t.Type<Record<string, unknown>, unknown, unknown>(
  'Record',
  (u): u is Record<string, unknown> => typeof u === 'object' && u !== null && !Array.isArray(u),
  (u, c) => (typeof u === 'object' && u !== null && !Array.isArray(u) ? t.success(u as Record<string, unknown>) : t.failure(u, c)),
  t.identity,
);

const FIELDS: { readonly [K in CacheSettingName]: { readonly codec: t.Mixed; readonly allowed: string } } = {
  enableCache: { codec: optional(t.boolean), allowed: 'true or false' },
  version: { codec: optional(NonEmptyString), allowed: 'a non-empty string' },
  dependsOn: { codec: optional(PlainRecord), allowed: 'an object of named functions or values, like { tokenizer }' },
  files: { codec: optional(t.readonlyArray(NonEmptyString)), allowed: 'an array of file paths' },
  ignoredInputs: { codec: optional(t.readonlyArray(NonEmptyString)), allowed: 'an array of input names' },
  expiresAfter: { codec: optional(DurationCodec), allowed: "a number of milliseconds (0 or more) or a duration like '90s', '30m', '12h', '7d'" },
  cacheKey: { codec: optional(FunctionCodec), allowed: 'a function of the step input returning a string' },
  refresh: { codec: optional(t.boolean), allowed: 'true or false' },
  lockTimeout: { codec: optional(WaitBoundCodec), allowed: "a number of milliseconds above 0 or a duration like '90s', '30m', '12h', at most 24 days" },
  timeout: { codec: optional(WaitBoundCodec), allowed: "a number of milliseconds above 0 or a duration like '90s', '30m', '12h', at most 24 days" },
  retries: { codec: optional(RetriesCodec), allowed: `a whole number from 0 to ${String(MAX_RETRIES)}` },
};

/**
 * An invalid setting, as data: the path of the field at fault (`''` for the settings object as a
 * whole, `steps.svc_trainer.refresh` for a per-step setting), the reason on its own (what was
 * given and what is allowed), and the whole message naming where the settings were given.
 *
 * @example
 * const e: InvalidSetting = {
 *   field: 'enableCache',
 *   reason: 'got "yes", expected true or false',
 *   message: 'Invalid option enableCache of step svc_trainer: got "yes", expected true or false.',
 * };
 */
export interface InvalidSetting {
  readonly field: string;
  readonly reason: string;
  readonly message: string;
}

const describeValue = (value: unknown): string => (typeof value === 'function' ? 'a function' : preview(value));

const validateFields = (input: unknown, where: string, extra: readonly string[]): E.Either<InvalidSetting, Record<string, unknown>> => {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    const reason = `expected an object like { enableCache: false }, got ${describeValue(input)}`;
    return E.left({ field: '', reason, message: `Options of ${where} must be an object like { enableCache: false }, got ${describeValue(input)}.` });
  }
  const known = [...CACHE_SETTING_NAMES, ...extra];
  for (const key of Object.keys(input)) {
    if (!known.includes(key)) {
      return E.left({ field: key, reason: `unknown option; known options: ${known.join(', ')}`, message: `Unknown option ${key} of ${where}; known options: ${known.join(', ')}.` });
    }
  }
  const out: Record<string, unknown> = {};
  for (const name of CACHE_SETTING_NAMES) {
    const value = (input as Record<string, unknown>)[name];
    const field = FIELDS[name];
    if (E.isLeft(field.codec.decode(value))) {
      const reason = `got ${describeValue(value)}, expected ${field.allowed}`;
      return E.left({ field: name, reason, message: `Invalid option ${name} of ${where}: ${reason}.` });
    }
    if (value !== undefined) out[name] = value;
  }
  return E.right(out);
};

/**
 * Validates user-supplied step settings, naming the field at fault and what it allows.
 *
 * @example
 * validateSettings({ enableCache: 'yes' }, 'step svc_trainer');
 * // Left({ field: 'enableCache', message: 'Invalid option enableCache of step svc_trainer: got "yes", expected true or false.' })
 */
export const validateSettings = (input: unknown, where: string): E.Either<InvalidSetting, CacheSettings> => {
  const fields = validateFields(input, where, []);
  return E.isLeft(fields) ? fields : E.right(Object.freeze(fields.right) as CacheSettings);
};

/**
 * Validates pipeline-level settings (defaults or runtime options), including per-step settings
 * under `steps`.
 *
 * @example
 * validatePipelineSettings({ steps: { svc_trainer: { refresh: 'yes' } } }, 'pipeline training_pipeline');
 * // Left({ field: 'steps.svc_trainer.refresh', ... })
 */
export const validatePipelineSettings = (input: unknown, where: string): E.Either<InvalidSetting, PipelineSettings> => {
  const fields = validateFields(input, where, ['steps']);
  if (E.isLeft(fields)) return fields;
  const steps: unknown = (input as { steps?: unknown }).steps;
  if (steps === undefined) return E.right(Object.freeze(fields.right) as PipelineSettings);
  if (typeof steps !== 'object' || steps === null || Array.isArray(steps)) {
    const reason = `got ${describeValue(steps)}, expected an object of settings by step name`;
    return E.left({ field: 'steps', reason, message: `Invalid option steps of ${where}: ${reason}.` });
  }
  const perStep: Record<string, CacheSettings> = {};
  for (const [name, settings] of Object.entries(steps)) {
    const valid = validateSettings(settings, `step ${name} in ${where}`);
    if (E.isLeft(valid)) return E.left({ ...valid.left, field: `steps.${name}${valid.left.field === '' ? '' : `.${valid.left.field}`}` });
    defineOwn(perStep, name, valid.right);
  }
  return E.right(Object.freeze({ ...fields.right, steps: Object.freeze(perStep) }) as PipelineSettings);
};
