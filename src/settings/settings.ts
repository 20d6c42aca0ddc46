/**
 * Cache settings, their validation at the edge, and the one pure function that
 * resolves them by precedence: pipeline defaults < step settings < runtime options,
 * and above all of them, a changed cache key.
 *
 * @packageDocumentation
 */
import * as E from 'fp-ts/Either';
import * as t from 'io-ts';

// model

/**
 * Settings that decide whether a step may be served from the cache.
 *
 * @example
 * const settings: CacheSettings = { enableCache: false };
 */
export interface CacheSettings {
  /**
   * Whether a step may be served from the cache.
   * @default true
   */
  readonly enableCache?: boolean | undefined;
}

/** The fully resolved settings: every field has a value. */
export type ResolvedCacheSettings = { readonly [K in keyof CacheSettings]-?: Exclude<CacheSettings[K], undefined> };

/**
 * The places settings come from, lowest precedence first.
 *
 * @example
 * const order: readonly SettingsLayerName[] = SETTINGS_LAYERS; // ['pipeline', 'step', 'runtime']
 */
export type SettingsLayerName = 'pipeline' | 'step' | 'runtime';

/** The layers in precedence order, lowest first. */
export const SETTINGS_LAYERS: readonly SettingsLayerName[] = ['pipeline', 'step', 'runtime'];

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

/** Where a resolved setting came from: a layer, or the built-in default. */
export type SettingSource = SettingsLayerName | 'default';

/** The default of every setting. */
export const DEFAULT_CACHE_SETTINGS: ResolvedCacheSettings = { enableCache: true };

/**
 * What the cache knows about a step's key: an intact entry exists for it, or not.
 *
 * @example
 * const lookup: CacheLookup = { _tag: 'Miss' };
 */
export type CacheLookup = { readonly _tag: 'Hit' } | { readonly _tag: 'Miss' };

/**
 * The decision for one step, and which layer made it.
 * `decidedBy: 'key'` means the key itself decided: no intact entry exists for it.
 *
 * @example
 * const d: CacheDecision = { _tag: 'UseCache', decidedBy: 'default' };
 */
export type CacheDecision =
  | { readonly _tag: 'UseCache'; readonly decidedBy: SettingSource }
  | { readonly _tag: 'Execute'; readonly reason: 'cache-disabled'; readonly decidedBy: SettingSource }
  | { readonly _tag: 'Execute'; readonly reason: 'no-entry'; readonly decidedBy: 'key' };

// resolution

/**
 * Resolves settings over ordered layers: for every field, the last layer that defines it wins;
 * `undefined` never overrides. Also reports which layer each field came from.
 *
 * @example
 * resolveSettings([
 *   { layer: 'pipeline', settings: { enableCache: false } },
 *   { layer: 'step', settings: { enableCache: true } },
 * ]); // { settings: { enableCache: true }, sources: { enableCache: 'step' } }
 */
export const resolveSettings = (
  layers: readonly SettingsLayer[],
): { readonly settings: ResolvedCacheSettings; readonly sources: { readonly [K in keyof CacheSettings]-?: SettingSource } } => {
  let enableCache: boolean = DEFAULT_CACHE_SETTINGS.enableCache;
  let source: SettingSource = 'default';
  for (const { layer, settings } of layers) {
    if (settings.enableCache !== undefined) {
      enableCache = settings.enableCache;
      source = layer;
    }
  }
  return { settings: { enableCache }, sources: { enableCache: source } };
};

/**
 * The precedence rule as one pure function: from the settings layers and the key lookup,
 * whether the step runs or is served from cache, and who decided.
 * A miss always executes, whatever the settings; a hit is used only when caching is enabled.
 *
 * @example
 * decideCache([{ layer: 'runtime', settings: { enableCache: false } }], { _tag: 'Hit' });
 * // { _tag: 'Execute', reason: 'cache-disabled', decidedBy: 'runtime' }
 */
export const decideCache = (layers: readonly SettingsLayer[], lookup: CacheLookup): CacheDecision => {
  const { settings, sources } = resolveSettings(layers);
  if (!settings.enableCache) return { _tag: 'Execute', reason: 'cache-disabled', decidedBy: sources.enableCache };
  if (lookup._tag === 'Miss') return { _tag: 'Execute', reason: 'no-entry', decidedBy: 'key' };
  return { _tag: 'UseCache', decidedBy: sources.enableCache };
};

/**
 * Merges two settings objects: fields of `later` that are defined win.
 *
 * @example
 * mergeSettings({ enableCache: false }, {}); // { enableCache: false }
 */
export const mergeSettings = (earlier: CacheSettings, later: CacheSettings): CacheSettings => {
  const merged: { enableCache?: boolean } = {};
  const enableCache = later.enableCache ?? earlier.enableCache;
  if (enableCache !== undefined) merged.enableCache = enableCache;
  return Object.freeze(merged);
};

// validation at the edge

const CacheSettingsCodec = t.partial({ enableCache: t.union([t.boolean, t.undefined]) });

const ALLOWED: Record<keyof CacheSettings, string> = { enableCache: 'true or false' };

/**
 * Validates user-supplied settings, naming the field at fault and what it allows.
 *
 * @example
 * validateSettings({ enableCache: 'yes' }, 'step svc_trainer');
 * // Left('Invalid option enableCache of step svc_trainer: got "yes", expected true or false.')
 */
export const validateSettings = (input: unknown, where: string): E.Either<{ readonly field: string; readonly message: string }, CacheSettings> => {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return E.left({ field: '', message: `Options of ${where} must be an object like { enableCache: false }, got ${preview(input)}.` });
  }
  for (const key of Object.keys(input)) {
    if (!Object.prototype.hasOwnProperty.call(ALLOWED, key)) {
      return E.left({
        field: key,
        message: `Unknown option ${key} of ${where}; known options: ${Object.keys(ALLOWED).join(', ')}.`,
      });
    }
  }
  const decoded = CacheSettingsCodec.decode(input);
  if (E.isLeft(decoded)) {
    const first = decoded.left[0];
    const field = (first?.context.find((c) => c.key !== '')?.key ?? '') as keyof CacheSettings;
    return E.left({
      field,
      message: `Invalid option ${field} of ${where}: got ${preview(first?.value)}, expected ${ALLOWED[field] ?? 'a valid value'}.`,
    });
  }
  return E.right(mergeSettings({}, decoded.right as CacheSettings));
};

/**
 * A short, readable rendering of any value for messages.
 *
 * @example
 * preview('yes'); // '"yes"'
 */
export const preview = (value: unknown, max = 60): string => {
  let text: string;
  try {
    text = typeof value === 'string' ? JSON.stringify(value) : typeof value === 'bigint' ? `${value}n` : Object.is(value, -0) ? '-0' : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  if (typeof value === 'number' && !Number.isFinite(value)) text = String(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
};
